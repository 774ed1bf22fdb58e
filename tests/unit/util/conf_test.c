/* The configuration table: defaults, files, overrides, errors. */
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
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void
test_defaults(void **state)
{
    struct pc_conf c;
    char err[256];
    assert_int_equal(pc_conf_init(&c), 0);
    assert_string_equal(c.server_name, "pchat.local");
    assert_string_equal(c.listen_plain, "127.0.0.1:6667");
    assert_int_equal(c.db_post_timeout_ms, 5000);
    assert_int_equal(c.flood_burst, 20);
    assert_false(c.log_syslog);
    /* TLS listener without certificate: invalid until configured. */
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_non_null(strstr(err, "tls.cert"));
    pc_conf_free(&c);
}

static void
test_file(void **state)
{
    struct pc_conf c;
    char err[256];
    write_file("; comment\n[server]\nname = chat.example.org\n\n"
               "[listen]\ntls =\nplain = [::1]:7000, 127.0.0.1:7001\n"
               "[database]\npost_timeout_ms = 250\n[log]\nsyslog = yes\n"
               "level = debug\n");
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.server_name, "chat.example.org");
    assert_int_equal(c.db_post_timeout_ms, 250);
    assert_true(c.log_syslog);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), 0);
    pc_conf_free(&c);
    (void)unlink(path);
}

static void
expect_error(const char *text, const char *want)
{
    struct pc_conf c;
    char err[256];
    write_file(text);
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, path, err, sizeof(err)), PC_ECONFIG);
    if (strstr(err, want) == NULL) {
        fail_msg("error '%s' does not contain '%s'", err, want);
    }
    pc_conf_free(&c);
    (void)unlink(path);
}

static void
test_errors(void **state)
{
    char want[128];
    write_file("");
    (void)snprintf(want, sizeof(want), "%s:3: unknown key 'nmae' in section "
                   "[server]", path);
    expect_error("[server]\n\nnmae = x\n", want);
    (void)snprintf(want, sizeof(want), "%s:2: database.post_timeout_ms: "
                   "'-5' is not a number", path);
    expect_error("[database]\npost_timeout_ms = -5\n", want);
    expect_error("[database]\npost_timeout_ms = 5x\n", "out of range");
    expect_error("[database]\npost_timeout_ms = 99999999999999999999\n",
                 "out of range");
    expect_error("[database]\npost_timeout_ms = 1\n", "out of range 100..");
    expect_error("[log]\nsyslog = maybe\n", "'maybe' is not yes or no");
    expect_error("[log]\nlevel = loud\n", "not a log level");
    expect_error("[pool]\nbackend = zookeeper\n", "not local or cpg");
    expect_error("[listen]\nplain = localhost\n", "is not host:port");
    expect_error("[listen]\nplain = 127.0.0.1:70000\n", "is not host:port");
    expect_error("[nosuch]\nkey = 1\n", "unknown key 'key' in section [nosuch]");
    expect_error("[server\nname = x\n", ":1: syntax error");
    struct pc_conf c;
    char err[256];
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_load(&c, "/nonexistent/pchatd.conf", err,
                                  sizeof(err)), PC_ECONFIG);
    assert_non_null(strstr(err, "No such file"));
    pc_conf_free(&c);
}

static void
test_overrides(void **state)
{
    struct pc_conf c;
    char err[256];
    assert_int_equal(pc_conf_init(&c), 0);
    assert_int_equal(pc_conf_set(&c, "log.level=trace", err, sizeof(err)), 0);
    assert_string_equal(c.log_level, "trace");
    assert_int_equal(pc_conf_set(&c, "limits.flood_rate=100", err,
                                 sizeof(err)), 0);
    assert_int_equal(c.flood_rate, 100);
    assert_int_equal(pc_conf_set(&c, "nodot=1", err, sizeof(err)),
                     PC_ECONFIG);
    assert_int_equal(pc_conf_set(&c, "log.nokey=1", err, sizeof(err)),
                     PC_ECONFIG);
    assert_non_null(strstr(err, "unknown key 'nokey'"));
    assert_int_equal(pc_conf_set(&c, "database.backoff_min_ms=9000", err,
                                 sizeof(err)), 0);
    assert_int_equal(pc_conf_set(&c, "listen.tls=", err, sizeof(err)), 0);
    assert_int_equal(pc_conf_validate(&c, err, sizeof(err)), PC_ECONFIG);
    assert_non_null(strstr(err, "backoff_min_ms"));
    assert_true(pc_conf_reloadable("log", "level"));
    assert_false(pc_conf_reloadable("database", "conninfo"));
    pc_conf_free(&c);
}

static void
test_hostport(void **state)
{
    char host[64];
    int port = 0;
    assert_int_equal(pc_conf_parse_hostport("1.2.3.4:80", 10, host,
                                            sizeof(host), &port), 0);
    assert_string_equal(host, "1.2.3.4");
    assert_int_equal(port, 80);
    assert_int_equal(pc_conf_parse_hostport("[::1]:6697", 10, host,
                                            sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 6697);
    assert_int_equal(pc_conf_parse_hostport("::1:6697", 8, host,
                                            sizeof(host), &port), PC_ECONFIG);
    assert_int_equal(pc_conf_parse_hostport("h:0", 3, host, sizeof(host),
                                            &port), PC_ECONFIG);
    assert_int_equal(pc_conf_parse_hostport(":80", 3, host, sizeof(host),
                                            &port), PC_ECONFIG);
    assert_int_equal(pc_conf_parse_hostport("[::1]", 5, host, sizeof(host),
                                            &port), PC_ECONFIG);
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
    assert_non_null(strstr(text, "| `post_timeout_ms` | integer | `5000` |"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_file),
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_hostport),  cmocka_unit_test(test_docs),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
