/* The configuration table: defaults, files, errors with their exact
 * file:line text, overrides, validation, reloadable keys and the generated
 * reference. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/conf.h"
#include "util/err.h"

static char path[64];

static void
write_file(const char *text)
{
    (void)snprintf(path, sizeof(path), "/tmp/pchat-conf-test-%d.ini",
                   (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Sets one key that must be accepted. */
static void
set_ok(struct pc_conf *c, const char *assignment)
{
    char err[256] = "";
    if (pc_conf_set(c, assignment, err, sizeof(err)) != 0) {
        fail_msg("%s: %s", assignment, err);
    }
}

/* The whole effective configuration as text, for comparisons. */
static char *
dump(const struct pc_conf *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_dump(c, f, false);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void
test_defaults(void **state)
{
    struct pc_conf c;
    char err[256];

    assert_int_equal(pc_conf_init(&c), 0);
    assert_string_equal(c.server_name, "pchat.local");
    assert_string_equal(c.network, "pchat");
    assert_string_equal(c.motd_file, "");
    assert_int_equal(c.max_clients, 19000);
    assert_string_equal(c.listen_plain, "127.0.0.1:6667");
    assert_string_equal(c.listen_tls, "127.0.0.1:6697");
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.db_conninfo, "host=/run/pchat/db dbname=pchat");
    assert_int_equal(c.db_connect_timeout_ms, 5000);
    assert_int_equal(c.db_backoff_min_ms, 100);
    assert_int_equal(c.db_backoff_max_ms, 5000);
    assert_int_equal(c.db_post_timeout_ms, 5000);
    assert_int_equal(c.db_max_batch, 512);
    assert_int_equal(c.nick_len, 30);
    assert_int_equal(c.channel_len, 64);
    assert_int_equal(c.topic_len, 390);
    assert_int_equal(c.max_joins, 50);
    assert_int_equal(c.sendq_bytes, 1048576);
    assert_int_equal(c.flood_burst, 20);
    assert_int_equal(c.flood_rate, 5);
    assert_int_equal(c.register_timeout_ms, 30000);
    assert_int_equal(c.ping_interval_ms, 120000);
    assert_int_equal(c.ping_timeout_ms, 60000);
    assert_int_equal(c.history_replay, 25);
    assert_int_equal(c.history_max, 500);
    assert_string_equal(c.log_level, "notice");
    assert_false(c.log_syslog);
    assert_string_equal(c.pool_backend, "local");
    assert_string_equal(c.pool_control_socket, "/run/pchat/pchatd.sock");
    /* A TLS listener without a certificate: invalid until configured. */
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_string_equal(err, "listen.tls is set but tls.cert and tls.key "
                             "are not (set both, or listen.tls = to turn "
                             "TLS off)");
    pc_conf_free(&c);
    pc_conf_free(&c); /* idempotent */
}

static void
test_file(void **state)
{
    struct pc_conf c;
    char err[256];

    write_file("; comment\n# another\n[server]\nname = chat.example.org\n\n"
               "  network = Example ; inline comment\n"
               "\tmax_clients=7\r\n"
               "[listen]\ntls = [::1]:6697\n"
               "plain = [::1]:7000, 127.0.0.1:7001 ,,\n"
               "[tls]\ncert = /etc/pchat/tls.crt\nkey = /etc/pchat/tls.key\n"
               "[database]\npost_timeout_ms = 0250\n"
               "conninfo = host=db1,db2 dbname=pchat "
               "target_session_attrs=read-write\n"
               "[log]\nsyslog = On\nlevel = debug\n"
               "[server]\nmotd_file = /etc/pchat/motd\n");
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.server_name, "chat.example.org");
    /* Indented keys are keys, not continuations of the line above. */
    assert_string_equal(c.network, "Example");
    assert_int_equal(c.max_clients, 7);
    assert_string_equal(c.listen_plain, "[::1]:7000, 127.0.0.1:7001 ,,");
    assert_int_equal(c.db_post_timeout_ms, 250);
    assert_string_equal(c.db_conninfo, "host=db1,db2 dbname=pchat "
                                       "target_session_attrs=read-write");
    assert_true(c.log_syslog);
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.motd_file, "/etc/pchat/motd");
    /* Keys the file does not name keep their defaults. */
    assert_int_equal(c.flood_burst, 20);
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), 0);
    pc_conf_free(&c);
    (void)unlink(path);
}

static void
test_bools(void **state)
{
    static const char *const yes[] = {"yes", "true", "on", "1", "TRUE"};
    static const char *const no[] = {"no", "false", "off", "0", "No"};
    struct pc_conf c;
    char set[64];

    assert_int_equal(pc_conf_init(&c), 0);
    for (size_t i = 0; i < 5; i++) {
        (void)snprintf(set, sizeof(set), "log.syslog=%s", yes[i]);
        set_ok(&c, set);
        assert_true(c.log_syslog);
        (void)snprintf(set, sizeof(set), "log.syslog=%s", no[i]);
        set_ok(&c, set);
        assert_false(c.log_syslog);
    }
    pc_conf_free(&c);
}

/* Loads text and expects exactly "<path>:<want>". */
static void
expect_error(const char *text, const char *want)
{
    struct pc_conf c;
    char err[512], full[512];

    write_file(text);
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), PC_ECONFIG);
    (void)snprintf(full, sizeof(full), "%s:%s", path, want);
    assert_string_equal(err, full);
    pc_conf_free(&c);
    (void)unlink(path);
}

static void
test_errors(void **state)
{
    expect_error("[server]\n\nnmae = x\n",
                 "3: unknown key 'nmae' in section [server]");
    expect_error("[nosuch]\nkey = 1\n",
                 "2: unknown key 'key' in section [nosuch]");
    expect_error("name = x\n", "1: key 'name' before any [section]");
    expect_error("[database]\npost_timeout_ms = -5\n",
                 "2: database.post_timeout_ms: '-5' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms = +5\n",
                 "2: database.post_timeout_ms: '+5' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms = 5x\n",
                 "2: database.post_timeout_ms: '5x' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms = 0x100\n",
                 "2: database.post_timeout_ms: '0x100' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms = 1 000\n",
                 "2: database.post_timeout_ms: '1 000' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms =\n",
                 "2: database.post_timeout_ms: '' is not a number "
                 "(allowed 100..600000)");
    expect_error("[database]\npost_timeout_ms = 99999999999999999999\n",
                 "2: database.post_timeout_ms: '99999999999999999999' is "
                 "out of range 100..600000");
    expect_error("[database]\npost_timeout_ms = 4294967296\n",
                 "2: database.post_timeout_ms: '4294967296' is out of range "
                 "100..600000");
    expect_error("[database]\npost_timeout_ms = 99\n",
                 "2: database.post_timeout_ms: '99' is out of range "
                 "100..600000");
    expect_error("[database]\npost_timeout_ms = 600001\n",
                 "2: database.post_timeout_ms: '600001' is out of range "
                 "100..600000");
    expect_error("[log]\nsyslog = maybe\n",
                 "2: log.syslog: 'maybe' is not yes or no (allowed yes, no, "
                 "true, false, on, off, 1, 0)");
    expect_error("[log]\nlevel = loud\n",
                 "2: log.level: 'loud' is not a log level (crit, error, "
                 "warn, notice, info, debug, trace)");
    expect_error("[pool]\nbackend = zookeeper\n",
                 "2: pool.backend: 'zookeeper' is not local or cpg");
    expect_error("[listen]\nplain = localhost\n",
                 "2: listen.plain: 'localhost' is not host:port (port "
                 "1..65535, IPv6 as [addr]:port)");
    expect_error("[listen]\nplain = 127.0.0.1:1, 127.0.0.1:70000\n",
                 "2: listen.plain: '127.0.0.1:70000' is not host:port (port "
                 "1..65535, IPv6 as [addr]:port)");
    expect_error("[listen]\ntls = ::1:6697\n",
                 "2: listen.tls: '::1:6697' is not host:port (port "
                 "1..65535, IPv6 as [addr]:port)");
    expect_error("[listen]\nplain = h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9\n",
                 "2: listen.plain: more than 8 addresses");
    expect_error("[server]\nname =\n",
                 "2: server.name: value of 0 characters (allowed 1..63)");
    expect_error("[server]\nname = "
                 "0123456789012345678901234567890123456789012345678901234567"
                 "890123\n",
                 "2: server.name: value of 64 characters (allowed 1..63)");
    expect_error("[server\nname = x\n",
                 "1: syntax error (expected [section] or key = value)");
    expect_error("[server]\nname x\n",
                 "2: syntax error (expected [section] or key = value)");
    /* A continuation line is not a continuation: it is an error. */
    expect_error("[database]\nconninfo = host=a\n  dbname=b port\n",
                 "3: unknown key 'dbname' in section [database]");
    expect_error("[database]\nconninfo = host=a\n  port\n",
                 "3: syntax error (expected [section] or key = value)");

    /* A line longer than libinih's buffer is refused, not cut in two. */
    char text[400];
    (void)snprintf(text, sizeof(text), "[database]\nconninfo = host=%0250d\n"
                   "[server]\nname = x\n", 0);
    expect_error(text, "2: line longer than 199 characters (for long "
                       "database settings use a libpq service file: "
                       "conninfo = service=NAME)");
    /* 199 characters fit, with or without a final newline. */
    struct pc_conf c;
    char err[256];
    (void)snprintf(text, sizeof(text), "[database]\nconninfo = %0188d\n", 7);
    write_file(text);
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(strlen(c.db_conninfo), 188);
    text[strlen(text) - 1] = '\0';
    write_file(text);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(strlen(c.db_conninfo), 188);
    pc_conf_free(&c);
    (void)unlink(path);

    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, "/nonexistent/pchatd.conf", err,
                                  sizeof(err)), PC_ECONFIG);
    assert_string_equal(err, "/nonexistent/pchatd.conf: No such file or "
                             "directory");
    pc_conf_free(&c);
}

static void
test_first_error_wins(void **state)
{
    expect_error("[server]\nname x\n[log]\nlevel = loud\n",
                 "2: syntax error (expected [section] or key = value)");
    expect_error("[log]\nlevel = loud\n[server]\nname x\n",
                 "2: log.level: 'loud' is not a log level (crit, error, "
                 "warn, notice, info, debug, trace)");
    expect_error("[log]\nlevel = debug\nnope = 1\nlevel = loud\n",
                 "3: unknown key 'nope' in section [log]");
}

static void
test_overrides(void **state)
{
    struct pc_conf c;
    char err[256];

    assert_int_equal(pc_conf_init(&c), 0);
    set_ok(&c, "log.level=trace");
    assert_string_equal(c.log_level, "trace");
    set_ok(&c, "limits.flood_rate=100");
    assert_int_equal(c.flood_rate, 100);
    /* The value may hold '=' and '.'. */
    set_ok(&c, "database.conninfo=host=db.example dbname=pchat");
    assert_string_equal(c.db_conninfo, "host=db.example dbname=pchat");
    set_ok(&c, "listen.tls=");
    assert_string_equal(c.listen_tls, "");

    assert_int_equal(pc_conf_set(&c, "nodot=1.5", err, sizeof(err)),
                     PC_ECONFIG);
    assert_string_equal(err, "-o nodot=1.5: expected section.key=value");
    assert_int_equal(pc_conf_set(&c, "log.level", err, sizeof(err)),
                     PC_ECONFIG);
    assert_string_equal(err, "-o log.level: expected section.key=value");
    assert_int_equal(pc_conf_set(&c, "log.nokey=1", err, sizeof(err)),
                     PC_ECONFIG);
    assert_string_equal(err, "-o log.nokey=1: unknown key 'nokey' in "
                             "section [log]");
    assert_int_equal(pc_conf_set(&c, "a-very-long-section-name-indeed-x.k=1",
                                 err, sizeof(err)), PC_ECONFIG);
    assert_int_equal(pc_conf_set(&c, "limits.nick_len=65", err, sizeof(err)),
                     PC_ECONFIG);
    assert_string_equal(err, "-o limits.nick_len: '65' is out of range "
                             "1..64");
    assert_int_equal(c.nick_len, 30);
    assert_int_equal(pc_conf_set(&c, "log.level=loud", err, sizeof(err)),
                     PC_ECONFIG);
    assert_string_equal(c.log_level, "trace");
    pc_conf_free(&c);
}

/* Overrides win over the file when applied after it (pchatd's order). */
static void
test_override_after_file(void **state)
{
    struct pc_conf c;
    char err[256];

    write_file("[limits]\nflood_burst = 3\n");
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.flood_burst, 3);
    set_ok(&c, "limits.flood_burst=9");
    assert_int_equal(c.flood_burst, 9);
    pc_conf_free(&c);
    (void)unlink(path);
}

static void
test_validate(void **state)
{
    struct pc_conf c;
    char err[256];

    assert_int_equal(pc_conf_init(&c), 0);
    set_ok(&c, "tls.cert=/c.pem");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    set_ok(&c, "tls.key=/k.pem");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), 0);

    set_ok(&c, "database.backoff_min_ms=9000");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_string_equal(err, "database.backoff_min_ms (9000) is larger than "
                             "database.backoff_max_ms (5000)");
    set_ok(&c, "database.backoff_max_ms=9000");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), 0);

    set_ok(&c, "listen.plain=");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), 0);
    set_ok(&c, "listen.tls=");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_string_equal(err, "no listener: set listen.plain or listen.tls");

    /* A list written into the struct directly is checked too. */
    free(c.listen_plain);
    c.listen_plain = strdup("127.0.0.1:0");
    assert_non_null(c.listen_plain);
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_string_equal(err, "listen.plain: '127.0.0.1:0' is not host:port "
                             "(port 1..65535, IPv6 as [addr]:port)");
    pc_conf_free(&c);
}

static void
test_reloadable(void **state)
{
    static const char *const reload[][2] = {
        {"tls", "cert"},          {"tls", "key"},
        {"log", "level"},         {"log", "syslog"},
        {"server", "motd_file"},  {"limits", "flood_burst"},
        {"limits", "flood_rate"},   {"auth", "required"},
        {"auth", "pbkdf2_iterations"}, {"auth", "fail_burst"},
        {"auth", "fail_interval_ms"}, {"tls", "session_tickets"},
    };
    static const char *const restart[][2] = {
        {"server", "name"},        {"server", "network"},
        {"server", "max_clients"}, {"listen", "plain"},
        {"listen", "tls"},         {"database", "conninfo"},
        {"database", "max_batch"}, {"limits", "nick_len"},
        {"limits", "sendq_bytes"}, {"history", "replay"},
        {"pool", "backend"},       {"pool", "control_socket"},
    };

    for (size_t i = 0; i < sizeof(reload) / sizeof(reload[0]); i++) {
        assert_true(pc_conf_reloadable(reload[i][0], reload[i][1]));
    }
    for (size_t i = 0; i < sizeof(restart) / sizeof(restart[0]); i++) {
        assert_false(pc_conf_reloadable(restart[i][0], restart[i][1]));
    }
    assert_false(pc_conf_reloadable("nosuch", "key"));

    /* Exactly those twelve are marked in the generated reference. */
    char *text = NULL;
    size_t len = 0, marked = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_doc_markdown(f);
    assert_int_equal(fclose(f), 0);
    for (const char *p = text; (p = strstr(p, " | yes | ")) != NULL; p++) {
        marked++;
    }
    assert_int_equal(marked, 12);
    free(text);
}

static void
test_hostport(void **state)
{
    char host[64], tiny[4];
    int port = 0;

    assert_int_equal(pc_conf_parse_hostport("1.2.3.4:80", 10, host,
                                            sizeof(host), &port), 0);
    assert_string_equal(host, "1.2.3.4");
    assert_int_equal(port, 80);
    assert_int_equal(pc_conf_parse_hostport("[::1]:6697", 10, host,
                                            sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 6697);
    assert_int_equal(pc_conf_parse_hostport("irc.example:65535", 17, host,
                                            sizeof(host), &port), 0);
    assert_string_equal(host, "irc.example");
    assert_int_equal(port, 65535);
    /* len bounds the input: the rest of a list is not read. */
    assert_int_equal(pc_conf_parse_hostport("h:1,h:2", 3, host, sizeof(host),
                                            &port), 0);
    assert_int_equal(port, 1);

    static const char *const bad[] = {
        "",        "::1:6697", "h:0",     ":80",    "[::1]",   "[::1]80",
        "[]:80",   "h:65536",  "h:",      "h",      "h:8x",    "h:-1",
        "h:123456", "[::1:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pc_conf_parse_hostport(bad[i], strlen(bad[i]), host, sizeof(host),
                                   &port) != PC_ECONFIG) {
            fail_msg("'%s' was accepted", bad[i]);
        }
    }
    /* A host longer than the caller's buffer is refused, not cut. */
    assert_int_equal(pc_conf_parse_hostport("abcd:1", 6, tiny, sizeof(tiny),
                                            &port), PC_ECONFIG);
    assert_int_equal(pc_conf_parse_hostport("abc:1", 5, tiny, sizeof(tiny),
                                            &port), 0);
    assert_string_equal(tiny, "abc");
}

static void
test_list_next(void **state)
{
    const char *list = " a:1, [::1]:2 ,,b:3\tc:4,";
    static const char *const want[] = {"a:1", "[::1]:2", "b:3", "c:4"};
    size_t pos = 0, len, n = 0;
    const char *item;

    while (pc_conf_list_next(list, &pos, &item, &len)) {
        assert_true(n < 4);
        assert_int_equal(len, strlen(want[n]));
        assert_memory_equal(item, want[n], len);
        n++;
    }
    assert_int_equal(n, 4);
    /* The end is sticky. */
    assert_false(pc_conf_list_next(list, &pos, &item, &len));
    pos = 0;
    assert_false(pc_conf_list_next("", &pos, &item, &len));
    pos = 0;
    assert_false(pc_conf_list_next(" , ", &pos, &item, &len));
}

/* --check-config's output is a configuration file that loads back to the
 * same settings. */
static void
test_dump_roundtrip(void **state)
{
    struct pc_conf a, b;
    char err[256];

    assert_int_equal(pc_conf_init(&a), 0);
    set_ok(&a, "log.syslog=on");
    set_ok(&a, "listen.plain=[::]:6667, 0.0.0.0:6668");
    set_ok(&a, "history.replay=0");
    char *text = dump(&a);
    assert_non_null(strstr(text, "[server]\nname = pchat.local\n"));
    assert_non_null(strstr(text, "\n[log]\nlevel = notice\nsyslog = yes\n"));
    write_file(text);
    assert_int_equal(pc_conf_init(&b), 0);
    assert_int_equal(pc_conf_load(&b, path, err, sizeof(err)), 0);
    char *again = dump(&b);
    assert_string_equal(text, again);
    free(text);
    free(again);
    pc_conf_free(&a);
    pc_conf_free(&b);
    (void)unlink(path);
}

static void
test_docs(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_doc_markdown(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "## [database]"));
    assert_non_null(strstr(text, "| `post_timeout_ms` | integer | `5000` | "
                                 "100..600000 |  | "));
    assert_non_null(strstr(text, "| `backend` | local\\|cpg | `local` |"));
    assert_non_null(strstr(text, "| `cert` | string | *(empty)* |"));
    free(text);

    f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_doc_man(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, ".SS [limits]\n"));
    assert_non_null(strstr(text, ".TP\n.B flood_rate\n(integer; default "
                                 "\\(lq5\\(rq; 1 to 1000000; reloaded on "
                                 "SIGHUP)\n"));
    free(text);
}

/* The example file, with every key uncommented, is the default
 * configuration. */
static void
test_example(void **state)
{
    struct pc_conf a, b;
    char err[256];
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_doc_example(f);
    assert_int_equal(fclose(f), 0);
    for (char *p = text; (p = strstr(p, "\n;")) != NULL;) {
        memmove(p + 1, p + 2, strlen(p + 2) + 1);
    }
    write_file(text);
    free(text);
    assert_int_equal(pc_conf_init(&a), 0);
    assert_int_equal(pc_conf_init(&b), 0);
    set_ok(&b, "server.name=other");
    assert_int_equal(pc_conf_load(&b, path, err, sizeof(err)), 0);
    char *da = dump(&a), *db = dump(&b);
    assert_string_equal(da, db);
    free(da);
    free(db);
    pc_conf_free(&a);
    pc_conf_free(&b);
    (void)unlink(path);
}

/* --check-config prints the configuration without database passwords. */
static void
test_conninfo_redact(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"host=db dbname=pchat", "host=db dbname=pchat"},
        {"host=db password=s3cret user=x", "host=db password=******** user=x"},
        {"password = 'a b\\'c' host=db", "password = ******** host=db"},
        {"host=db mypassword=x", "host=db mypassword=x"},
        {"postgresql://u:s3cret@db:5432/pchat", "postgresql://u:********@db:5432/pchat"},
        {"postgres://u@db/pchat?password=s3cret&sslmode=require",
         "postgres://u@db/pchat?password=********&sslmode=require"},
        {"postgresql://db/pchat", "postgresql://db/pchat"},
    };
    char out[256];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pc_conninfo_redact(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
    pc_conninfo_redact("host=db password=x", out, 5);
    assert_string_equal(out, "host");

    struct pc_conf c;
    assert_int_equal(pc_conf_init(&c), 0);
    set_ok(&c, "database.conninfo=host=db password=hunter2");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pc_conf_dump(&c, f, true);
    assert_int_equal(fclose(f), 0);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "password=********"));
    free(text);
    pc_conf_free(&c);
}

/* auth.required: auto follows the pool back end; yes and no are fixed. */
static void
test_auth_required(void **state)
{
    struct pc_conf c;
    char err[256];
    (void)state;
    assert_int_equal(pc_conf_init(&c), 0);
    assert_string_equal(c.auth_required, "auto");
    assert_false(pc_conf_auth_required(&c));
    set_ok(&c, "pool.backend=cpg");
    assert_true(pc_conf_auth_required(&c));
    set_ok(&c, "auth.required=off");
    assert_string_equal(c.auth_required, "no");
    assert_false(pc_conf_auth_required(&c));
    set_ok(&c, "pool.backend=local");
    set_ok(&c, "auth.required=TRUE");
    assert_string_equal(c.auth_required, "yes");
    assert_true(pc_conf_auth_required(&c));
    assert_int_equal(pc_conf_set(&c, "auth.required=maybe", err, sizeof(err)),
                     PC_ECONFIG);
    assert_non_null(strstr(err, "auto, yes or no"));
    pc_conf_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_override_after_file),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_reloadable),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_list_next),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_conninfo_redact),
        cmocka_unit_test(test_auth_required),
        cmocka_unit_test(test_docs),
        cmocka_unit_test(test_example),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
