/* pchatctl's administration commands: accounts, groups, categories and
 * rooms. Each command is one call of a function of sql/content/0004_admin.sql
 * with the operator (NULL) as the actor, so pchatctl, the HTTPS API and the
 * IRC commands of room managers share one implementation and one set of
 * checks. Passwords never reach the database: the SCRAM-SHA-256 keys are
 * derived here (src/auth) and only they are sent. */
#include "config.h"

#include "pchatctl/admin.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "auth/auth.h"

enum {
    OPT_DESCRIPTION = 1 << 0,
    OPT_CATEGORY = 1 << 1,
    OPT_TYPE = 1 << 2,
    OPT_PRIVACY = 1 << 3,
    OPT_BEFORE = 1 << 4,
    OPT_ADMIN = 1 << 5,
    OPT_PASSWORD = 1 << 6, /* --password-stdin, --no-password, --iterations */
};

enum out_kind {
    OUT_DONE, /* print the message */
    OUT_LIST, /* a jsonb array */
    OUT_SHOW, /* a jsonb object */
    OUT_COUNT /* a number, printed into the message */
};

/* One command: up to three words, its positional arguments, the options it
 * takes and the SQL. $1..$nargs are the positional arguments; then come,
 * in this order, the options named in extra (d description, c category,
 * t type, p privacy, b before, a admin, k the four SCRAM key values). */
struct admin_cmd {
    const char *words[3];
    int nargs;
    const char *args_usage;
    unsigned opts;
    const char *extra;
    enum out_kind out;
    const char *sql;
    const char *done; /* printed after "<kind> <first argument>: " */
};

static const struct admin_cmd cmds[] = {
    {{"account", "add", NULL},
     1,
     "NAME [--admin] [--password-stdin|--no-password] [--iterations N]",
     OPT_ADMIN | OPT_PASSWORD,
     "ak",
     OUT_DONE,
     "SELECT pchat_account_create(NULL, $1, $2::boolean, $3::integer,"
     " $4::bytea, $5::bytea, $6::bytea)",
     "created"},
    {{"account", "passwd", NULL},
     1,
     "NAME [--password-stdin] [--iterations N]",
     OPT_PASSWORD,
     "k",
     OUT_DONE,
     "SELECT pchat_account_set_keys(NULL, $1, $2::integer, $3::bytea,"
     " $4::bytea, $5::bytea)",
     "password changed"},
    {{"account", "del", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_account_delete(NULL, $1)",
     "deleted"},
    {{"account", "set", NULL},
     3,
     "NAME admin|disabled|display_name VALUE",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_account_set(NULL, $1, $2, $3)",
     "changed"},
    {{"account", "cert", "add"},
     2,
     "NAME SHA256-FINGERPRINT",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_account_cert_add(NULL, $1, $2)",
     "certificate bound"},
    {{"account", "cert", "del"},
     1,
     "SHA256-FINGERPRINT",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_account_cert_remove(NULL, $1)",
     "unbound"},
    {{"account", "list", NULL},
     0,
     "",
     0,
     "",
     OUT_LIST,
     "SELECT pchat_account_list(NULL)",
     NULL},
    {{"group", "add", NULL},
     1,
     "NAME [--description TEXT]",
     OPT_DESCRIPTION,
     "d",
     OUT_DONE,
     "SELECT pchat_group_create(NULL, $1, $2)",
     "created"},
    {{"group", "del", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_group_delete(NULL, $1)",
     "deleted"},
    {{"group", "member", "add"},
     2,
     "GROUP ACCOUNT",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_group_add(NULL, $1, $2)",
     "changed"},
    {{"group", "member", "del"},
     2,
     "GROUP ACCOUNT",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_group_remove(NULL, $1, $2)",
     "changed"},
    {{"group", "list", NULL},
     0,
     "",
     0,
     "",
     OUT_LIST,
     "SELECT pchat_group_list(NULL)",
     NULL},
    {{"category", "add", NULL},
     1,
     "NAME [--description TEXT]",
     OPT_DESCRIPTION,
     "d",
     OUT_DONE,
     "SELECT pchat_category_create(NULL, $1, $2)",
     "created"},
    {{"category", "del", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_category_delete(NULL, $1)",
     "deleted"},
    {{"category", "set", NULL},
     3,
     "NAME description|invitations_allowed|uploads_allowed|history_kept VALUE",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_category_set(NULL, $1, $2, $3)",
     "changed"},
    {{"category", "grant", NULL},
     3,
     "NAME allowed|denied|creator PRINCIPAL",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_category_grant(NULL, $1, $2, $3)",
     "changed"},
    {{"category", "revoke", NULL},
     3,
     "NAME allowed|denied|creator PRINCIPAL",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_category_revoke(NULL, $1, $2, $3)",
     "changed"},
    {{"category", "list", NULL},
     0,
     "",
     0,
     "",
     OUT_LIST,
     "SELECT pchat_category_list(NULL)",
     NULL},
    {{"category", "show", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_SHOW,
     "SELECT pchat_category_show(NULL, $1)",
     NULL},
    {{"room", "add", NULL},
     1,
     "NAME [--category C] [--type normal|auditorium] "
     "[--privacy open|closed|secret] [--description TEXT]",
     OPT_CATEGORY | OPT_TYPE | OPT_PRIVACY | OPT_DESCRIPTION,
     "ctpd",
     OUT_DONE,
     "SELECT pchat_room_create(NULL, $1, $2, $3, $4, $5)",
     "created"},
    {{"room", "del", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_delete(NULL, $1)",
     "deleted"},
    {{"room", "set", NULL},
     3,
     "NAME description|topic|type|privacy|category|addin_url|disabled VALUE",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_set(NULL, $1, $2, $3)",
     "changed"},
    {{"room", "grant", NULL},
     3,
     "NAME member|manager|presenter PRINCIPAL",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_grant(NULL, $1, $2, $3)",
     "changed"},
    {{"room", "revoke", NULL},
     3,
     "NAME member|manager|presenter PRINCIPAL",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_revoke(NULL, $1, $2, $3)",
     "changed"},
    {{"room", "disable", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_set(NULL, $1, 'disabled', 'true')",
     "disabled"},
    {{"room", "enable", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_room_set(NULL, $1, 'disabled', 'false')",
     "enabled"},
    {{"room", "list", NULL},
     0,
     "",
     0,
     "",
     OUT_LIST,
     "SELECT pchat_room_list(NULL)",
     NULL},
    {{"room", "show", NULL},
     1,
     "NAME",
     0,
     "",
     OUT_SHOW,
     "SELECT pchat_room_show(NULL, $1)",
     NULL},
    {{"room", "clear-history", NULL},
     1,
     "NAME --before DATE",
     OPT_BEFORE,
     "b",
     OUT_COUNT,
     "SELECT pchat_room_clear_history(NULL, $1, $2::timestamptz)",
     "message(s) removed"},
    {{"room", "remove-message", NULL},
     1,
     "MSGID",
     0,
     "",
     OUT_DONE,
     "SELECT pchat_message_remove(NULL, $1)",
     "removed"},
};

#define NCMDS        (sizeof(cmds) / sizeof(cmds[0]))
#define MAX_PARAMS   8
#define SALT_LEN     16
#define DEFAULT_ITER 4096

struct admin_opts {
    const char *description, *category, *type, *privacy, *before;
    bool admin, password_stdin, no_password;
    unsigned long iterations;
};

void
pc_ctl_admin_usage(FILE *out)
{
    for (size_t i = 0; i < NCMDS; i++) {
        const struct admin_cmd *c = &cmds[i];
        (void)fprintf(out, "       pchatctl [--json] %s %s%s%s%s%s\n",
                      c->words[0], c->words[1], c->words[2] ? " " : "",
                      c->words[2] ? c->words[2] : "",
                      c->nargs || c->opts ? " " : "", c->args_usage);
    }
}

bool
pc_ctl_admin_is(const char *word)
{
    return strcmp(word, "account") == 0 || strcmp(word, "group") == 0
           || strcmp(word, "category") == 0 || strcmp(word, "room") == 0;
}

static const struct admin_cmd *
find_cmd(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < NCMDS; i++) {
        const struct admin_cmd *c = &cmds[i];
        int n = c->words[2] ? 3 : 2;
        if (argc < n) {
            continue;
        }
        bool match = true;
        for (int w = 0; w < n; w++) {
            if (strcmp(argv[w], c->words[w]) != 0) {
                match = false;
            }
        }
        if (match) {
            *used = n;
            return c;
        }
    }
    return NULL;
}

/* Reads one password: from stdin (one line), or from the terminal twice
 * with echo off. Returns its length, or -1 after printing why. */
static ssize_t
read_line(FILE *in, char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, in) == NULL) {
        return -1;
    }
    size_t len = strlen(buf);
    if (len == cap - 1 && buf[len - 1] != '\n') {
        return -2; /* too long */
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    return (ssize_t)len;
}

static ssize_t
prompt(FILE *tty, const char *text, char *buf, size_t cap)
{
    struct termios old, quiet;
    int fd = fileno(tty);
    bool restore = tcgetattr(fd, &old) == 0;

    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    (void)fputs(text, tty);
    (void)fflush(tty);
    ssize_t n = read_line(tty, buf, cap);
    (void)fputs("\n", tty);
    if (restore) {
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    }
    return n;
}

static ssize_t
get_password(bool from_stdin, char *buf, size_t cap)
{
    char again[PC_AUTH_PASS_MAX + 2];
    ssize_t n;

    if (from_stdin) {
        n = read_line(stdin, buf, cap);
    } else {
        FILE *tty = fopen("/dev/tty", "r+");
        if (tty == NULL) {
            (void)fprintf(stderr, "pchatctl: no terminal to ask for the "
                                  "password: use --password-stdin\n");
            return -1;
        }
        n = prompt(tty, "Password: ", buf, cap);
        if (n >= 0) {
            ssize_t m = prompt(tty, "Again: ", again, sizeof(again));
            if (m != n || memcmp(buf, again, (size_t)n) != 0) {
                (void)fprintf(stderr, "pchatctl: the passwords differ\n");
                n = -3;
            }
            explicit_bzero(again, sizeof(again));
        }
        (void)fclose(tty);
        if (n == -3) {
            return -1;
        }
    }
    if (n == -2) {
        (void)fprintf(stderr, "pchatctl: password longer than %d bytes\n",
                      PC_AUTH_PASS_MAX);
        return -1;
    }
    if (n <= 0) {
        (void)fprintf(stderr, "pchatctl: no password given\n");
        return -1;
    }
    return n;
}

static void
to_bytea(char *out, const unsigned char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = hex[in[i] >> 4];
        out[3 + 2 * i] = hex[in[i] & 15];
    }
    out[2 + 2 * len] = '\0';
}

/* The four SCRAM values as SQL parameters (text): iterations, salt, stored
 * key, server key; or four NULLs for an account without a password. */
struct key_params {
    char iter[16];
    char salt[2 * SALT_LEN + 3];
    char stored[2 * PC_AUTH_KEY_LEN + 3];
    char server[2 * PC_AUTH_KEY_LEN + 3];
};

static int
make_keys(const struct admin_opts *o, struct key_params *kp)
{
    char pass[PC_AUTH_PASS_MAX + 2];
    unsigned char salt[SALT_LEN];
    struct pc_auth_keys keys;

    ssize_t n = get_password(o->password_stdin, pass, sizeof(pass));
    if (n < 0) {
        explicit_bzero(pass, sizeof(pass));
        return -1;
    }
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
        (void)fprintf(stderr, "pchatctl: getrandom: %s\n", strerror(errno));
        explicit_bzero(pass, sizeof(pass));
        return -1;
    }
    int rc = pc_auth_derive(pass, (size_t)n, salt, sizeof(salt),
                            (uint32_t)o->iterations, &keys);
    explicit_bzero(pass, sizeof(pass));
    if (rc < 0) {
        (void)fprintf(stderr, "pchatctl: cannot derive the keys "
                              "(iterations out of range?)\n");
        return -1;
    }
    (void)snprintf(kp->iter, sizeof(kp->iter), "%lu", o->iterations);
    to_bytea(kp->salt, salt, sizeof(salt));
    to_bytea(kp->stored, keys.stored_key, sizeof(keys.stored_key));
    to_bytea(kp->server, keys.server_key, sizeof(keys.server_key));
    explicit_bzero(&keys, sizeof(keys));
    return 0;
}

static int
parse_opts(const struct admin_cmd *c, int argc, char **argv,
           struct admin_opts *o)
{
    static const struct option longopts[] = {
        {"description", required_argument, NULL, 'd'},
        {"category", required_argument, NULL, 'c'},
        {"type", required_argument, NULL, 't'},
        {"privacy", required_argument, NULL, 'p'},
        {"before", required_argument, NULL, 'b'},
        {"admin", no_argument, NULL, 'a'},
        {"password-stdin", no_argument, NULL, 's'},
        {"no-password", no_argument, NULL, 'n'},
        {"iterations", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    static const unsigned need[] = {
        ['d'] = OPT_DESCRIPTION, ['c'] = OPT_CATEGORY, ['t'] = OPT_TYPE,
        ['p'] = OPT_PRIVACY,     ['b'] = OPT_BEFORE,   ['a'] = OPT_ADMIN,
        ['s'] = OPT_PASSWORD,    ['n'] = OPT_PASSWORD, ['i'] = OPT_PASSWORD,
    };
    int opt;
    char *end;

    memset(o, 0, sizeof(*o));
    o->iterations = DEFAULT_ITER;
    optind = 0; /* GNU: start a fresh scan of this argument vector */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == '?' || opt == ':' || opt < 0
            || (size_t)opt >= sizeof(need) / sizeof(need[0])
            || (need[opt] & c->opts) == 0) {
            (void)fprintf(stderr, "pchatctl: %s: unknown or misplaced option\n",
                          argv[optind - 1]);
            return -1;
        }
        switch (opt) {
        case 'd':
            o->description = optarg;
            break;
        case 'c':
            o->category = optarg;
            break;
        case 't':
            o->type = optarg;
            break;
        case 'p':
            o->privacy = optarg;
            break;
        case 'b':
            o->before = optarg;
            break;
        case 'a':
            o->admin = true;
            break;
        case 's':
            o->password_stdin = true;
            break;
        case 'n':
            o->no_password = true;
            break;
        case 'i':
            errno = 0;
            o->iterations = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->iterations < 4096
                || o->iterations > 10000000) {
                (void)fprintf(stderr, "pchatctl: --iterations: 4096 to "
                                      "10000000\n");
                return -1;
            }
            break;
        default:
            return -1;
        }
    }
    if (argc - optind != c->nargs) {
        (void)fprintf(stderr, "pchatctl: %s %s takes %d argument(s)\n",
                      c->words[0], c->words[1], c->nargs);
        return -1;
    }
    if ((c->opts & OPT_BEFORE) && o->before == NULL) {
        (void)fprintf(stderr, "pchatctl: --before DATE is required\n");
        return -1;
    }
    if (o->no_password && o->password_stdin) {
        (void)fprintf(stderr, "pchatctl: --no-password and --password-stdin "
                              "exclude each other\n");
        return -1;
    }
    return 0;
}

/* Readable output of the listings: one line per object, its name first,
 * then key=value (lists joined by commas; empty values left out). */
static void
print_value(FILE *out, json_t *v)
{
    if (json_is_string(v)) {
        (void)fputs(json_string_value(v), out);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i > 0) {
                (void)fputc(',', out);
            }
            print_value(out, e);
        }
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        if (s != NULL) {
            (void)fputs(s, out);
            free(s);
        }
    }
}

static bool
is_empty(json_t *v)
{
    return (json_is_string(v) && json_string_length(v) == 0)
           || (json_is_array(v) && json_array_size(v) == 0);
}

static void
print_object(FILE *out, json_t *obj, bool one_line)
{
    const char *key;
    json_t *v;

    if (one_line) {
        print_value(out, json_object_get(obj, "name"));
    }
    json_object_foreach(obj, key, v)
    {
        if (one_line
            && (strcmp(key, "name") == 0 || is_empty(v)
                || strcmp(key, "created_at") == 0)) {
            continue;
        }
        (void)fprintf(out, one_line ? " %s=" : "%s: ", key);
        print_value(out, v);
        if (!one_line) {
            (void)fputc('\n', out);
        }
    }
    if (one_line) {
        (void)fputc('\n', out);
    }
}

static int
print_json(const char *text, enum out_kind kind, bool as_json)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    if (j == NULL) {
        (void)fprintf(stderr, "pchatctl: bad JSON from the database: %s\n",
                      jerr.text);
        return 1;
    }
    if (as_json) {
        (void)json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        (void)fputc('\n', stdout);
    } else if (kind == OUT_LIST) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            print_object(stdout, e, true);
        }
    } else {
        print_object(stdout, j, false);
    }
    json_decref(j);
    return 0;
}

static int
report_error(const PGresult *res, PGconn *db)
{
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (msg != NULL) {
        (void)fprintf(stderr, "pchatctl: %s (SQLSTATE %s)\n", msg,
                      state ? state : "?");
    } else {
        (void)fprintf(stderr, "pchatctl: %s", PQerrorMessage(db));
    }
    return 1;
}

int
pc_ctl_admin(PGconn *db, int argc, char **argv, bool as_json)
{
    const char *params[MAX_PARAMS];
    struct key_params kp;
    struct admin_opts o;
    int used = 0, n = 0, rc = 0;

    const struct admin_cmd *c = find_cmd(argc, argv, &used);
    if (c == NULL) {
        (void)fprintf(stderr, "pchatctl: unknown command\n");
        return 2;
    }
    /* getopt sees argv[0] as the program name: start at the last word. */
    if (parse_opts(c, argc - used + 1, argv + used - 1, &o) < 0) {
        (void)fprintf(stderr, "usage: pchatctl %s %s%s%s %s\n", c->words[0],
                      c->words[1], c->words[2] ? " " : "",
                      c->words[2] ? c->words[2] : "", c->args_usage);
        return 2;
    }
    char **args = argv + used - 1 + optind;
    for (int i = 0; i < c->nargs; i++) {
        params[n++] = args[i];
    }
    for (const char *e = c->extra; *e != '\0'; e++) {
        switch (*e) {
        case 'd':
            params[n++] = o.description;
            break;
        case 'c':
            params[n++] = o.category;
            break;
        case 't':
            params[n++] = o.type;
            break;
        case 'p':
            params[n++] = o.privacy;
            break;
        case 'b':
            params[n++] = o.before;
            break;
        case 'a':
            params[n++] = o.admin ? "true" : "false";
            break;
        case 'k':
            if (o.no_password) {
                params[n++] = NULL;
                params[n++] = NULL;
                params[n++] = NULL;
                params[n++] = NULL;
                break;
            }
            if (make_keys(&o, &kp) < 0) {
                return 1;
            }
            params[n++] = kp.iter;
            params[n++] = kp.salt;
            params[n++] = kp.stored;
            params[n++] = kp.server;
            break;
        default:
            return 2;
        }
    }
    PGresult *res = PQexecParams(db, c->sql, n, NULL, params, NULL, NULL, 0);
    explicit_bzero(&kp, sizeof(kp));
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1) {
        rc = report_error(res, db);
    } else if (c->out == OUT_LIST || c->out == OUT_SHOW) {
        rc = print_json(PQgetvalue(res, 0, 0), c->out, as_json);
    } else if (as_json) {
        json_t *j =
            json_pack("{s:b,s:s?}", "ok", 1, "result",
                      PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0));
        (void)json_dumpf(j, stdout, JSON_SORT_KEYS);
        (void)fputc('\n', stdout);
        json_decref(j);
    } else if (c->out == OUT_COUNT) {
        (void)printf("%s %s: %s %s\n", c->words[0], params[0],
                     PQgetvalue(res, 0, 0), c->done);
    } else {
        (void)printf("%s %s: %s\n", c->words[0], params[0], c->done);
    }
    PQclear(res);
    return rc;
}
