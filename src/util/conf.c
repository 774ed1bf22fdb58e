#include "config.h"

#include "util/conf.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/log.h"

/* Every key in one table: the parser, the command-line overrides, the
 * validation, --check-config and docs/config.md all read it. */

enum conf_type {
    CT_STRING,
    CT_UINT,
    CT_BOOL,
    CT_LEVEL,   /* log level name */
    CT_BACKEND, /* local | cpg */
    CT_MIRROR,  /* durability | availability */
    CT_AUTO,    /* auto | yes | no (stored as one of these three words) */
    CT_LISTEN,  /* comma-separated host:port list (may be empty) */
};

struct conf_key {
    const char *section;
    const char *name;
    enum conf_type type;
    size_t offset;
    const char *def;
    uint32_t min;
    uint32_t max;
    bool reloadable;
    const char *help;
};

#define OFF(f) offsetof(struct pc_conf, f)

static const struct conf_key conf_keys[] = {
    {"server", "name", CT_STRING, OFF(server_name), "pchat.local", 1, 63,
     false, "Server name shown to IRC clients (source of numerics)."},
    {"server", "network", CT_STRING, OFF(network), "pchat", 1, 32, false,
     "Network name (ISUPPORT NETWORK=)."},
    {"server", "motd_file", CT_STRING, OFF(motd_file), "", 0, 4096, true,
     "File with the message of the day; empty for none (422)."},
    {"server", "max_clients", CT_UINT, OFF(max_clients), "19000", 1,
     10000000, false,
     "Connections accepted at once; more are refused with ERROR."},
    {"listen", "plain", CT_LISTEN, OFF(listen_plain), "127.0.0.1:6667", 0,
     1024, false,
     "Plain IRC listeners, comma-separated host:port ([v6]:port); empty "
     "for none. Keep plain IRC on loopback."},
    {"listen", "tls", CT_LISTEN, OFF(listen_tls), "127.0.0.1:6697", 0, 1024,
     false, "TLS IRC listeners, comma-separated host:port; empty for none."},
    {"tls", "cert", CT_STRING, OFF(tls_cert), "", 0, 4096, true,
     "PEM certificate chain for the TLS listeners."},
    {"tls", "key", CT_STRING, OFF(tls_key), "", 0, 4096, true,
     "PEM private key for the TLS listeners."},
    {"tls", "session_tickets", CT_BOOL, OFF(tls_session_tickets), "no", 0, 1,
     true, "Give each client a TLS session ticket, so that it may resume "
     "on reconnecting to this pchatd process: 14% more server CPU per "
     "handshake, for clients that resume (most IRC clients do not)."},
    {"database", "conninfo", CT_STRING, OFF(db_conninfo),
     "host=/run/pchat/db dbname=pchat", 1, 4096, false,
     "libpq connection string or URI; several hosts with "
     "target_session_attrs=read-write for a mirrored database."},
    {"database", "connect_timeout_ms", CT_UINT, OFF(db_connect_timeout_ms),
     "5000", 100, 600000, false, "Time allowed for one connection attempt."},
    {"database", "backoff_min_ms", CT_UINT, OFF(db_backoff_min_ms), "100", 10,
     600000, false, "First wait before reconnecting after a failure."},
    {"database", "backoff_max_ms", CT_UINT, OFF(db_backoff_max_ms), "5000", 10,
     600000, false, "Longest wait between reconnection attempts."},
    {"database", "post_timeout_ms", CT_UINT, OFF(db_post_timeout_ms), "5000",
     100, 600000, false,
     "How long a post may wait for the database before it is refused with "
     "FAIL TEMPORARILY_UNAVAILABLE."},
    {"database", "mirror_policy", CT_MIRROR, OFF(db_mirror_policy),
     "durability", 0, 0, false,
     "When the synchronous standby is gone: durability (posts are held and "
     "refused after post_timeout_ms; nothing acknowledged lives on one "
     "server) or availability (after mirror_timeout_ms the primary is "
     "switched to asynchronous commit, and back when a standby streams; "
     "see docs/database.md)."},
    {"database", "mirror_timeout_ms", CT_UINT, OFF(db_mirror_timeout_ms),
     "3000", 0, 600000, false,
     "availability: how long the mirror may be missing before the switch "
     "to asynchronous commit."},
    {"database", "mirror_check_ms", CT_UINT, OFF(db_mirror_check_ms), "500",
     50, 60000, false,
     "How often a second connection checks that a synchronous standby is "
     "streaming."},
    {"database", "read_standby_conninfo", CT_STRING,
     OFF(db_read_standby_conninfo), "", 0, 4096, false,
     "History reads from a standby: a libpq conninfo, e.g. the same hosts "
     "with target_session_attrs=prefer-standby; empty for none. Used only "
     "while every streaming standby is synchronous and "
     "synchronous_commit = remote_apply; otherwise, or when it fails, reads "
     "go to the primary."},
    {"database", "max_batch", CT_UINT, OFF(db_max_batch), "512", 1, 65536,
     false, "Most posts stored in one transaction (group commit)."},
    {"limits", "nick_len", CT_UINT, OFF(nick_len), "30", 1, 64, false,
     "Longest nickname (NICKLEN)."},
    {"limits", "channel_len", CT_UINT, OFF(channel_len), "64", 2, 200, false,
     "Longest channel name (CHANNELLEN)."},
    {"limits", "topic_len", CT_UINT, OFF(topic_len), "390", 1, 390, false,
     "Longest topic (TOPICLEN)."},
    {"limits", "max_joins", CT_UINT, OFF(max_joins), "50", 1, 10000, false,
     "Channels one client may be in (CHANLIMIT)."},
    {"limits", "sendq_bytes", CT_UINT, OFF(sendq_bytes), "1048576", 4096,
     1073741824, false,
     "Output queued for one client before it is disconnected."},
    {"limits", "flood_burst", CT_UINT, OFF(flood_burst), "20", 1, 1000000,
     true, "Lines a client may send at once before throttling."},
    {"limits", "flood_rate", CT_UINT, OFF(flood_rate), "5", 1, 1000000, true,
     "Lines per second a client may send after its burst."},
    {"limits", "register_timeout_ms", CT_UINT, OFF(register_timeout_ms),
     "30000", 1000, 600000, false,
     "Time a connection has to register (NICK/USER/CAP END)."},
    {"limits", "ping_interval_ms", CT_UINT, OFF(ping_interval_ms), "120000",
     1000, 3600000, false, "Idle time before the server sends PING."},
    {"limits", "ping_timeout_ms", CT_UINT, OFF(ping_timeout_ms), "60000", 1000,
     3600000, false, "Time to answer that PING before disconnection."},
    {"history", "replay", CT_UINT, OFF(history_replay), "25", 0, 1000, false,
     "Messages replayed on JOIN to clients without draft/chathistory."},
    {"history", "max", CT_UINT, OFF(history_max), "500", 1, 10000, false,
     "Most messages one CHATHISTORY request returns (CHATHISTORY=)."},
    {"log", "level", CT_LEVEL, OFF(log_level), "notice", 0, 0, true,
     "crit, error, warn, notice, info, debug or trace."},
    {"log", "syslog", CT_BOOL, OFF(log_syslog), "no", 0, 1, true,
     "Log to syslog (daemon facility) instead of stderr."},
    {"auth", "required", CT_AUTO, OFF(auth_required), "auto", 0, 0, true,
     "Require SASL (PLAIN, SCRAM-SHA-256 or EXTERNAL) before registration: "
     "yes, no, or auto (yes in a pool, pool.backend = cpg; no on a single "
     "server, where logging in is optional)."},
    {"auth", "pbkdf2_iterations", CT_UINT, OFF(auth_pbkdf2_iterations),
     "4096", 4096, 10000000, true,
     "PBKDF2 iterations for new SCRAM-SHA-256 keys (and the made-up keys "
     "shown for unknown accounts)."},
    {"auth", "fail_burst", CT_UINT, OFF(auth_fail_burst), "5", 1, 1000000,
     true,
     "Failed logins allowed at once, per account and per client address, "
     "before further attempts are refused (904)."},
    {"auth", "fail_interval_ms", CT_UINT, OFF(auth_fail_interval_ms),
     "30000", 1, 86400000, true,
     "After the burst, one more failed login is allowed per this many "
     "milliseconds (token bucket)."},
    {"pool", "backend", CT_BACKEND, OFF(pool_backend), "local", 0, 0, false,
     "local (a single server) or cpg (a Corosync pool)."},
    {"pool", "control_socket", CT_STRING, OFF(pool_control_socket),
     "/run/pchat/pchatd.sock", 0, 107, false,
     "Unix socket for pchatctl and the Pacemaker agent; empty for none."},
    {"admin", "listen", CT_LISTEN, OFF(admin_listen), "", 0, 1024, false,
     "The HTTPS JSON administration API (docs/admin-guide.md): one "
     "host:port, e.g. 127.0.0.1:8011; empty (the default) for none."},
    {"admin", "cert", CT_STRING, OFF(admin_cert), "", 0, 4096, false,
     "PEM certificate chain of the administration API; empty: tls.cert."},
    {"admin", "key", CT_STRING, OFF(admin_key), "", 0, 4096, false,
     "PEM private key of the administration API; empty: tls.key."},
    {"admin", "max_body", CT_UINT, OFF(admin_max_body), "65536", 1024,
     16777216, false,
     "Largest request body the administration API accepts (413 beyond)."},
    {"admin", "max_conns", CT_UINT, OFF(admin_max_conns), "64", 1, 10000,
     false, "Administration API connections open at once."},
    {"admin", "idle_timeout_ms", CT_UINT, OFF(admin_idle_timeout_ms),
     "30000", 1000, 3600000, false,
     "An administration API connection that has not completed a request "
     "this long after it opened or after its last answer is closed."},
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static const char *const type_names[] = {
    [CT_STRING] = "string", [CT_UINT] = "integer", [CT_BOOL] = "boolean",
    [CT_LEVEL] = "log level", [CT_BACKEND] = "local|cpg",
    [CT_MIRROR] = "durability|availability",
    [CT_AUTO] = "auto|yes|no",
    [CT_LISTEN] = "address list",
};

static const struct conf_key *
find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(conf_keys[i].section, section) == 0
            && strcmp(conf_keys[i].name, name) == 0) {
            return &conf_keys[i];
        }
    }
    return NULL;
}

int
pc_conf_parse_hostport(const char *s, size_t len, char *host, size_t hostcap,
                       int *port)
{
    const char *colon;
    size_t hlen;

    if (len == 0) {
        return PC_ECONFIG;
    }
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || (size_t)(close - s) + 1 >= len
            || close[1] != ':') {
            return PC_ECONFIG;
        }
        hlen = (size_t)(close - s) - 1;
        if (hlen == 0 || hlen >= hostcap) {
            return PC_ECONFIG;
        }
        memcpy(host, s + 1, hlen);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = len; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (colon == NULL) {
            return PC_ECONFIG;
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= hostcap || memchr(s, ':', hlen) != NULL) {
            return PC_ECONFIG;
        }
        memcpy(host, s, hlen);
    }
    host[hlen] = '\0';
    size_t plen = len - (size_t)(colon + 1 - s);
    if (plen == 0 || plen > 5) {
        return PC_ECONFIG;
    }
    long p = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') {
            return PC_ECONFIG;
        }
        p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) {
        return PC_ECONFIG;
    }
    *port = (int)p;
    return 0;
}

bool
pc_conf_list_next(const char *list, size_t *pos, const char **item,
                  size_t *len)
{
    const char *p = list + *pos;

    while (*p == ' ' || *p == '\t' || *p == ',') {
        p++;
    }
    if (*p == '\0') {
        *pos = (size_t)(p - list);
        return false;
    }
    size_t n = strcspn(p, ", \t");
    *item = p;
    *len = n;
    *pos = (size_t)(p + n - list);
    return true;
}

static int
check_listen(const char *v, char *why, size_t whylen)
{
    size_t pos = 0, n, count = 0;
    const char *item;

    while (pc_conf_list_next(v, &pos, &item, &n)) {
        char host[64];
        int port;
        if (pc_conf_parse_hostport(item, n, host, sizeof(host), &port) < 0) {
            (void)snprintf(why, whylen, "'%.*s' is not host:port (port "
                           "1..65535, IPv6 as [addr]:port)", (int)n, item);
            return PC_ECONFIG;
        }
        if (++count > PC_CONF_MAX_LISTEN) {
            (void)snprintf(why, whylen, "more than %d addresses",
                           PC_CONF_MAX_LISTEN);
            return PC_ECONFIG;
        }
    }
    return 0;
}

/* Stores a value; on error writes why (without location) and returns
 * PC_ECONFIG. */
static int
set_value(struct pc_conf *c, const struct conf_key *k, const char *v,
          char *why, size_t whylen)
{
    char *base = (char *)c;

    switch (k->type) {
    case CT_UINT: {
        /* Digits only: strtoull alone would take spaces, signs and "-1". */
        char *end = NULL;
        if (v[0] < '0' || v[0] > '9') {
            (void)snprintf(why, whylen, "'%s' is not a number (allowed "
                           "%u..%u)", v, k->min, k->max);
            return PC_ECONFIG;
        }
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end != '\0') {
            (void)snprintf(why, whylen, "'%s' is not a number (allowed "
                           "%u..%u)", v, k->min, k->max);
            return PC_ECONFIG;
        }
        if (errno != 0 || n < k->min || n > k->max) {
            (void)snprintf(why, whylen, "'%s' is out of range %u..%u", v,
                           k->min, k->max);
            return PC_ECONFIG;
        }
        *(uint32_t *)(void *)(base + k->offset) = (uint32_t)n;
        return 0;
    }
    case CT_BOOL: {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
                *(bool *)(void *)(base + k->offset)
                    = strcasecmp(v, yes[i]) == 0;
                return 0;
            }
        }
        (void)snprintf(why, whylen, "'%s' is not yes or no (allowed yes, "
                       "no, true, false, on, off, 1, 0)", v);
        return PC_ECONFIG;
    }
    case CT_LEVEL:
        if (pc_log_level_parse(v) < 0) {
            (void)snprintf(why, whylen, "'%s' is not a log level (crit, "
                           "error, warn, notice, info, debug, trace)", v);
            return PC_ECONFIG;
        }
        break;
    case CT_BACKEND:
        if (strcmp(v, "local") != 0 && strcmp(v, "cpg") != 0) {
            (void)snprintf(why, whylen, "'%s' is not local or cpg", v);
            return PC_ECONFIG;
        }
        break;
    case CT_AUTO: {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};
        const char *word = strcasecmp(v, "auto") == 0 ? "auto" : NULL;
        for (size_t i = 0; i < 4 && word == NULL; i++) {
            word = strcasecmp(v, yes[i]) == 0  ? "yes"
                   : strcasecmp(v, no[i]) == 0 ? "no"
                                               : NULL;
        }
        if (word == NULL) {
            (void)snprintf(why, whylen, "'%s' is not auto, yes or no", v);
            return PC_ECONFIG;
        }
        v = word; /* stored normalised */
        break;
    }
    case CT_MIRROR:
        if (strcmp(v, "durability") != 0 && strcmp(v, "availability") != 0) {
            (void)snprintf(why, whylen, "'%s' is not durability or "
                           "availability", v);
            return PC_ECONFIG;
        }
        break;
    case CT_LISTEN:
        if (check_listen(v, why, whylen) < 0) {
            return PC_ECONFIG;
        }
        break;
    case CT_STRING:
        /* The value itself is not quoted: it may hold a password. */
        if (strlen(v) < k->min || strlen(v) > k->max) {
            (void)snprintf(why, whylen, "value of %zu characters (allowed "
                           "%u..%u)", strlen(v), k->min, k->max);
            return PC_ECONFIG;
        }
        break;
    }
    char *copy = strdup(v);
    if (copy == NULL) {
        (void)snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    char **slot = (char **)(void *)(base + k->offset);
    free(*slot);
    *slot = copy;
    return 0;
}

int
pc_conf_init(struct pc_conf *c)
{
    char why[128];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        if (set_value(c, &conf_keys[i], conf_keys[i].def, why, sizeof(why))
            < 0) {
            pc_conf_free(c);
            return -ENOMEM;
        }
    }
    return 0;
}

void
pc_conf_free(struct pc_conf *c)
{
    char *base = (char *)c;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->type != CT_UINT && k->type != CT_BOOL) {
            char **slot = (char **)(void *)(base + k->offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

struct load_ctx {
    struct pc_conf *conf;
    const char *path;
    char *err;
    size_t errlen;
    int failed; /* line of the first bad key, 0 if none */
    int lineno;
    FILE *f;
};

/* The reader feeds libinih one line at a time, which serves three ends:
 * - line numbers (Debian's libinih passes none to the handler, and the
 *   handler runs right after its line was read);
 * - lines longer than libinih's buffer (num bytes) are an error, not a
 *   value silently cut in two;
 * - leading blanks are removed, so an indented "key = value" is a key, not
 *   a continuation of the previous value (libinih's multi-line values). */
static char *
read_line(char *str, int num, void *stream)
{
    struct load_ctx *l = stream;

    if (l->failed || fgets(str, num, l->f) == NULL) {
        return NULL;
    }
    l->lineno++;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n') {
        int c = getc(l->f);
        if (c == '\r') {
            c = getc(l->f);
        }
        if (c != '\n' && c != EOF) {
            (void)snprintf(l->err, l->errlen, "%s:%d: line longer than %d "
                           "characters (for long database settings use a "
                           "libpq service file: conninfo = service=NAME)",
                           l->path, l->lineno, num - 1);
            l->failed = l->lineno;
            return NULL;
        }
    }
    size_t blanks = strspn(str, " \t");
    if (blanks > 0) {
        memmove(str, str + blanks, n - blanks + 1);
    }
    return str;
}

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *l = user;
    int lineno = l->lineno;
    char why[256];

    if (l->failed) {
        return 0;
    }
    const struct conf_key *k = find_key(section, name);
    if (k == NULL && section[0] == '\0') {
        (void)snprintf(l->err, l->errlen, "%s:%d: key '%s' before any "
                       "[section]", l->path, lineno, name);
        l->failed = lineno;
        return 0;
    }
    if (k == NULL) {
        (void)snprintf(l->err, l->errlen, "%s:%d: unknown key '%s' in "
                       "section [%s]", l->path, lineno, name, section);
        l->failed = lineno;
        return 0;
    }
    if (set_value(l->conf, k, value, why, sizeof(why)) < 0) {
        (void)snprintf(l->err, l->errlen, "%s:%d: %s.%s: %s", l->path, lineno,
                       section, name, why);
        l->failed = lineno;
        return 0;
    }
    return 1;
}

int
pc_conf_load(struct pc_conf *c, const char *path, char *err, size_t errlen)
{
    struct load_ctx l = {c, path, err, errlen, 0, 0, NULL};

    l.f = fopen(path, "r");
    if (l.f == NULL) {
        (void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return PC_ECONFIG;
    }
    int rc = ini_parse_stream(read_line, &l, on_ini, &l);
    (void)fclose(l.f);
    /* Report whichever error comes first in the file. */
    if (l.failed && (rc <= 0 || l.failed <= rc)) {
        return PC_ECONFIG;
    }
    if (rc != 0) {
        (void)snprintf(err, errlen, "%s:%d: syntax error (expected [section] "
                       "or key = value)", path, rc);
        return PC_ECONFIG;
    }
    return 0;
}

int
pc_conf_set(struct pc_conf *c, const char *assignment, char *err,
            size_t errlen)
{
    char section[32], name[64], why[256];
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');

    if (dot == NULL || eq == NULL || dot > eq
        || (size_t)(dot - assignment) >= sizeof(section)
        || (size_t)(eq - dot - 1) >= sizeof(name)) {
        (void)snprintf(err, errlen, "-o %s: expected section.key=value",
                       assignment);
        return PC_ECONFIG;
    }
    memcpy(section, assignment, (size_t)(dot - assignment));
    section[dot - assignment] = '\0';
    memcpy(name, dot + 1, (size_t)(eq - dot - 1));
    name[eq - dot - 1] = '\0';
    const struct conf_key *k = find_key(section, name);
    if (k == NULL) {
        (void)snprintf(err, errlen, "-o %s: unknown key '%s' in section [%s]",
                       assignment, name, section);
        return PC_ECONFIG;
    }
    if (set_value(c, k, eq + 1, why, sizeof(why)) < 0) {
        (void)snprintf(err, errlen, "-o %s.%s: %s", section, name, why);
        return PC_ECONFIG;
    }
    return 0;
}

int
pc_conf_validate(const struct pc_conf *c, char *err, size_t errlen)
{
    char why[256];

    /* Values set through the table were checked already; these checks
     * cover a struct filled in some other way. */
    if (check_listen(c->listen_plain, why, sizeof(why)) < 0) {
        (void)snprintf(err, errlen, "listen.plain: %s", why);
        return PC_ECONFIG;
    }
    if (check_listen(c->listen_tls, why, sizeof(why)) < 0) {
        (void)snprintf(err, errlen, "listen.tls: %s", why);
        return PC_ECONFIG;
    }
    if (c->listen_tls[0] != '\0'
        && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
        (void)snprintf(err, errlen, "listen.tls is set but tls.cert and "
                       "tls.key are not (set both, or listen.tls = to turn "
                       "TLS off)");
        return PC_ECONFIG;
    }
    if (c->db_backoff_min_ms > c->db_backoff_max_ms) {
        (void)snprintf(err, errlen, "database.backoff_min_ms (%u) is larger "
                       "than database.backoff_max_ms (%u)",
                       c->db_backoff_min_ms, c->db_backoff_max_ms);
        return PC_ECONFIG;
    }
    if (c->listen_plain[0] == '\0' && c->listen_tls[0] == '\0') {
        (void)snprintf(err, errlen, "no listener: set listen.plain or "
                       "listen.tls");
        return PC_ECONFIG;
    }
    if (c->admin_listen[0] != '\0'
        && ((c->admin_cert[0] == '\0' ? c->tls_cert : c->admin_cert)[0]
                == '\0'
            || (c->admin_key[0] == '\0' ? c->tls_key : c->admin_key)[0]
                   == '\0')) {
        (void)snprintf(err, errlen, "admin.listen is set but no certificate: "
                       "set admin.cert and admin.key (or tls.cert and "
                       "tls.key); the API is HTTPS only");
        return PC_ECONFIG;
    }
    if (strchr(c->admin_listen, ',') != NULL) {
        (void)snprintf(err, errlen, "admin.listen: one host:port only");
        return PC_ECONFIG;
    }
    return 0;
}

static void
value_str(const struct pc_conf *c, const struct conf_key *k, char *out,
          size_t cap)
{
    const char *base = (const char *)c;
    switch (k->type) {
    case CT_UINT:
        (void)snprintf(out, cap, "%u",
                       *(const uint32_t *)(const void *)(base + k->offset));
        break;
    case CT_BOOL:
        (void)snprintf(out, cap, "%s",
                       *(const bool *)(const void *)(base + k->offset) ? "yes"
                                                                      : "no");
        break;
    default: {
        const char *s = *(char *const *)(const void *)(base + k->offset);
        (void)snprintf(out, cap, "%s", s ? s : "");
        break;
    }
    }
}

#define REDACTED "********"

/* Appends n bytes of s to out (capacity cap, used *o), truncating. */
static void
put_n(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < cap; i++) {
        out[(*o)++] = s[i];
    }
}

/* Copies a libpq conninfo with its password replaced by REDACTED: in
 * key=value form (password=..., quoted or not) and in URI form
 * (postgresql://user:secret@host/db?password=secret). */
void
pc_conninfo_redact(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = in;
    const char *scheme = strstr(in, "://");

    if (cap == 0) {
        return;
    }
    if (scheme != NULL && (strncmp(in, "postgresql://", 13) == 0 ||
                           strncmp(in, "postgres://", 11) == 0)) {
        const char *auth = scheme + 3;
        size_t alen = strcspn(auth, "/?");
        const char *at = NULL;
        for (const char *q = auth; q < auth + alen; q++) {
            if (*q == '@') {
                at = q;
            }
        }
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            put_n(out, cap, &o, in, (size_t)(colon + 1 - in));
            put_n(out, cap, &o, REDACTED, strlen(REDACTED));
            p = at;
        }
        while (*p) {
            if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
                put_n(out, cap, &o, p, 10);
                put_n(out, cap, &o, REDACTED, strlen(REDACTED));
                p += 10 + strcspn(p + 10, "&");
            } else {
                put_n(out, cap, &o, p++, 1);
            }
        }
        out[o] = '\0';
        return;
    }
    while (*p) {
        bool key_start = p == in || p[-1] == ' ' || p[-1] == '\t';
        if (key_start && strncmp(p, "password", 8) == 0) {
            const char *q = p + 8 + strspn(p + 8, " \t");
            if (*q == '=') {
                q++;
                q += strspn(q, " \t");
                put_n(out, cap, &o, p, (size_t)(q - p));
                put_n(out, cap, &o, REDACTED, strlen(REDACTED));
                if (*q == '\'') { /* quoted, with \' and \\ escapes */
                    for (q++; *q && *q != '\''; q++) {
                        if (*q == '\\' && q[1]) {
                            q++;
                        }
                    }
                    q += *q != '\0';
                } else {
                    q += strcspn(q, " \t");
                }
                p = q;
                continue;
            }
        }
        put_n(out, cap, &o, p++, 1);
    }
    out[o] = '\0';
}

bool
pc_conf_auth_required(const struct pc_conf *c)
{
    if (c->auth_required == NULL || strcmp(c->auth_required, "auto") == 0) {
        return c->pool_backend != NULL && strcmp(c->pool_backend, "cpg") == 0;
    }
    return strcmp(c->auth_required, "yes") == 0;
}

void
pc_conf_dump(const struct pc_conf *c, FILE *out, bool redact)
{
    const char *section = "";
    char v[4200];
    char r[4200];

    for (size_t i = 0; i < NKEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            (void)fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        value_str(c, k, v, sizeof(v));
        size_t nl = strlen(k->name);
        if (redact && nl >= 8 && strcmp(k->name + nl - 8, "conninfo") == 0) {
            pc_conninfo_redact(v, r, sizeof(r));
            (void)fprintf(out, "%s = %s\n", k->name, r);
        } else {
            (void)fprintf(out, "%s = %s\n", k->name, v);
        }
    }
}

/* A table cell: a '|' would end the cell early. */
static void
md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') {
            (void)fputs("\\|", out);
        } else {
            (void)fputc(*s, out);
        }
    }
}

void
pc_conf_doc_markdown(FILE *out)
{
    const char *section = "";

    (void)fprintf(out,
                  "# pchatd configuration reference\n\n"
                  "Generated from the key table in src/util/conf.c "
                  "(`pchat-conf-doc --markdown`); do not edit by hand.\n\n"
                  "The file is INI: `[section]` headers and `key = value` "
                  "lines; `;` or `#` start comments. Every key can also be "
                  "set on the command line with `-o section.key=value`, "
                  "which wins over the file. `pchatd --check-config` "
                  "validates a file and prints the effective settings; "
                  "errors name the file, the line and the key.\n\n"
                  "Keys marked *yes* under *reload* take effect on SIGHUP; "
                  "the others "
                  "need a restart. A line may hold at most 199 characters; "
                  "put longer database settings in a libpq service file "
                  "(`conninfo = service=NAME`).\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            (void)fprintf(out, "\n## [%s]\n\n| key | type | default | "
                          "range | reload | description |\n| --- | --- | --- | "
                          "--- | --- | --- |\n", section);
        }
        char range[48] = "";
        if (k->type == CT_UINT) {
            (void)snprintf(range, sizeof(range), "%u..%u", k->min, k->max);
        } else if (k->type == CT_STRING) {
            (void)snprintf(range, sizeof(range), "%u..%u chars", k->min,
                           k->max);
        } else if (k->type == CT_LISTEN) {
            (void)snprintf(range, sizeof(range), "0..%d addresses",
                           PC_CONF_MAX_LISTEN);
        }
        (void)fprintf(out, "| `%s` | ", k->name);
        md_cell(out, type_names[k->type]);
        if (k->def[0] != '\0') {
            (void)fprintf(out, " | `%s` | ", k->def);
        } else {
            (void)fputs(" | *(empty)* | ", out);
        }
        (void)fprintf(out, "%s | %s | ", range, k->reloadable ? "yes" : "");
        md_cell(out, k->help);
        (void)fputs(" |\n", out);
    }
}

/* roff: a backslash is written as \e; a leading dot or quote is guarded. */
static void
roff_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'') {
        (void)fputs("\\&", out);
    }
    for (; *s; s++) {
        if (*s == '\\') {
            (void)fputs("\\e", out);
        } else {
            (void)fputc(*s, out);
        }
    }
}

void
pc_conf_doc_man(FILE *out)
{
    const char *section = "";

    for (size_t i = 0; i < NKEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            (void)fprintf(out, ".SS [%s]\n", section);
        }
        (void)fprintf(out, ".TP\n.B %s\n(%s; default ", k->name,
                      type_names[k->type]);
        if (k->def[0] != '\0') {
            (void)fputs("\\(lq", out);
            roff_text(out, k->def);
            (void)fputs("\\(rq", out);
        } else {
            (void)fputs("empty", out);
        }
        if (k->type == CT_UINT) {
            (void)fprintf(out, "; %u to %u", k->min, k->max);
        } else if (k->type == CT_STRING) {
            (void)fprintf(out, "; %u to %u characters", k->min, k->max);
        }
        (void)fprintf(out, "%s)\n", k->reloadable ? "; reloaded on SIGHUP" : "");
        roff_text(out, k->help);
        (void)fputc('\n', out);
    }
}

/* Writes text as "# " comment lines of at most 72 columns. */
static void
comment_wrapped(FILE *out, const char *s)
{
    while (*s) {
        size_t n = strlen(s);
        if (n > 70) {
            n = 70;
            while (n > 0 && s[n] != ' ') {
                n--;
            }
            if (n == 0) {
                n = strcspn(s, " ");
            }
        }
        (void)fprintf(out, "# %.*s\n", (int)n, s);
        s += n;
        while (*s == ' ') {
            s++;
        }
    }
}

void
pc_conf_doc_example(FILE *out)
{
    const char *section = "";

    (void)fprintf(out, "# pchatd configuration. Every key is shown with its "
                  "default,\n# commented out; see pchatd.conf(5) or "
                  "docs/config.md.\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            (void)fprintf(out, "\n[%s]\n", section);
        }
        comment_wrapped(out, k->help);
        (void)fprintf(out, ";%s =%s%s\n", k->name, k->def[0] ? " " : "",
                      k->def);
    }
}

bool
pc_conf_reloadable(const char *section, const char *name)
{
    const struct conf_key *k = find_key(section, name);
    return k != NULL && k->reloadable;
}
