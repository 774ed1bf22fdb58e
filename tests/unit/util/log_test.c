/* Log levels: names, parsing, filtering, the stderr line format. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/log.h"

static void
test_levels(void **state)
{
    static const char *const names[] = {"crit", "error", "warn", "notice",
                                        "info", "debug", "trace"};

    for (int i = 0; i < 7; i++) {
        assert_int_equal(pc_log_level_parse(names[i]), PC_LOG_CRIT + i);
        assert_string_equal(pc_log_level_name(PC_LOG_CRIT + i), names[i]);
    }
    assert_int_equal(pc_log_level_parse("warning"), PC_LOG_WARN);
    assert_int_equal(pc_log_level_parse("loud"), -1);
    assert_int_equal(pc_log_level_parse(""), -1);
    assert_int_equal(pc_log_level_parse("Notice"), -1);
    assert_string_equal(pc_log_level_name((enum pc_log_level)1), "?");
    assert_string_equal(pc_log_level_name((enum pc_log_level)9), "?");
}

/* Runs pc_log with stderr sent to a file and returns what it wrote. */
static char out[2048];

static const char *
captured(void (*fn)(void))
{
    FILE *f = tmpfile();
    assert_non_null(f);
    (void)fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    fn();
    (void)fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    (void)close(saved);
    rewind(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    (void)fclose(f);
    return out;
}

static void
log_some(void)
{
    pc_log(PC_LOG_DEBUG, "c1", "hidden %d", 1);
    pc_log(PC_LOG_NOTICE, "c1 peer=1.2.3.4", "shown %s", "x=1");
    pc_log(PC_LOG_CRIT, NULL, "no context");
}

static void
test_filter_and_format(void **state)
{
    pc_log_set_level(PC_LOG_NOTICE);
    assert_int_equal(pc_log_get_level(), PC_LOG_NOTICE);
    assert_true(pc_log_enabled(PC_LOG_WARN));
    assert_false(pc_log_enabled(PC_LOG_INFO));

    const char *s = captured(log_some);
    assert_null(strstr(s, "hidden"));
    /* 2026-11-24T15:09:15.123Z notice c1 peer=1.2.3.4: shown x=1 */
    const char *line = strstr(s, "Z notice c1 peer=1.2.3.4: shown x=1\n");
    assert_non_null(line);
    assert_int_equal(line - s, 23);
    assert_non_null(strstr(s, "Z crit   no context\n"));

    pc_log_set_level(PC_LOG_TRACE);
    s = captured(log_some);
    assert_non_null(strstr(s, "Z debug  c1: hidden 1\n"));
    pc_log_set_level(PC_LOG_NOTICE);
}

static void
log_long(void)
{
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pc_log(PC_LOG_ERR, "ctx", "%s", big);
}

static void
test_long_message(void **state)
{
    /* Cut to the line buffer, still one whole line. */
    const char *s = captured(log_long);
    assert_true(strlen(s) < 1200);
    assert_int_equal(s[strlen(s) - 1], '\n');
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
}

static void
log_odd_level(void)
{
    pc_log((enum pc_log_level)1, "ctx", "below crit");
}

static void
test_odd_level(void **state)
{
    /* A level outside the table is printed as "?", not read past it. */
    const char *s = captured(log_odd_level);
    assert_non_null(strstr(s, "Z ?      ctx: below crit\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_filter_and_format),
        cmocka_unit_test(test_long_message),
        cmocka_unit_test(test_odd_level),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
