/* Clocks, IRCv3 server-time text and UUIDv7 message ids. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/time.h"

static void
test_format(void **state)
{
    char s[32];

    pc_time_format(0, s);
    assert_string_equal(s, "1970-01-01T00:00:00.000Z");
    pc_time_format(1700000000123ULL, s);
    assert_string_equal(s, "2023-11-14T22:13:20.123Z");
    pc_time_format(1709164800007ULL, s); /* a leap day */
    assert_string_equal(s, "2024-02-29T00:00:00.007Z");
    pc_time_format(4102444799999ULL, s);
    assert_string_equal(s, "2099-12-31T23:59:59.999Z");
    assert_int_equal(strlen(s), 24);
}

static void
test_roundtrip(void **state)
{
    char s[32];
    uint64_t back;
    uint64_t ms = 1000;

    /* Steps of about 37 days and a few hours, 1970 to 2100, with every
     * millisecond digit. */
    for (int i = 0; i < 1300; i++) {
        ms += 3210987654ULL + (uint64_t)i;
        pc_time_format(ms, s);
        assert_int_equal(pc_time_parse(s, strlen(s), &back), 0);
        assert_true(back == ms);
    }
    /* The current time. */
    ms = pc_wall_ms();
    pc_time_format(ms, s);
    assert_int_equal(pc_time_parse(s, strlen(s), &back), 0);
    assert_true(back == ms);
    /* Without milliseconds. */
    assert_int_equal(pc_time_parse("2023-11-14T22:13:20Z", 20, &back), 0);
    assert_true(back == 1700000000000ULL);
    /* len bounds the input (a tag value inside a longer line). */
    assert_int_equal(pc_time_parse("2023-11-14T22:13:20.123Z;x", 24, &back),
                     0);
    assert_true(back == 1700000000123ULL);
    assert_int_equal(pc_time_parse("2024-02-29T12:00:00Z", 20, &back), 0);
    assert_int_equal(pc_time_parse("2000-02-29T12:00:00Z", 20, &back), 0);
}

static void
test_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "nonsense",
        "2023-11-14 22:13:20Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20z",
        "2023-11-14T22:13:20.1Z",
        "2023-11-14T22:13:20.12Z",
        "2023-11-14T22:13:20.1234Z",
        "2023-11-14T22:13:20,123Z",
        "2023-11-14T22:13:2xZ",
        "2023-11-14T22:13:20.12xZ",
        "2023/11/14T22:13:20Z",
        "+023-11-14T22:13:20Z",
        "2023-00-14T22:13:20Z",
        "2023-13-14T22:13:20Z",
        "2023-11-00T22:13:20Z",
        "2023-11-32T22:13:20Z",
        "2023-11-31T22:13:20Z", /* November has 30 days */
        "2023-02-29T22:13:20Z", /* 2023 is not a leap year */
        "1900-02-29T22:13:20Z",
        "2023-11-14T24:00:00Z",
        "2023-11-14T22:60:00Z",
        "2023-11-14T22:13:61Z",
        "1969-12-31T23:59:59Z", /* before the epoch */
    };
    uint64_t back = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pc_time_parse(bad[i], strlen(bad[i]), &back) != PC_EPROTO) {
            fail_msg("'%s' was accepted", bad[i]);
        }
    }
    assert_true(back == 42); /* untouched on error */
}

static void
test_clocks(void **state)
{
    uint64_t a = pc_now_ms();
    uint64_t w = pc_wall_ms();

    assert_true(w > 1700000000000ULL); /* after 2023 */
    for (int i = 0; i < 1000; i++) {
        uint64_t b = pc_now_ms();
        assert_true(b >= a);
        a = b;
    }
}

/* The 48-bit millisecond time at the front of a UUIDv7. */
static uint64_t
msgid_ms(const char *id)
{
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return strtoull(hex, NULL, 16);
}

static void
test_msgid_format(void **state)
{
    struct pc_msgid_gen g = {0, 0};
    char id[PC_MSGID_LEN + 1];

    for (int i = 0; i < 1000; i++) {
        uint64_t before = pc_wall_ms();
        pc_msgid_next(&g, id);
        assert_int_equal(strlen(id), PC_MSGID_LEN);
        assert_true(pc_msgid_valid(id, strlen(id)));
        assert_int_equal(id[14], '7'); /* version 7 */
        assert_non_null(strchr("89ab", id[19])); /* RFC 9562 variant */
        /* The time prefix is the wall clock (or just past it, when more
         * than 4096 ids were made in one millisecond). */
        uint64_t ms = msgid_ms(id);
        assert_true(ms >= before);
        assert_true(ms <= pc_wall_ms() + 1000);
    }
}

static void
test_msgid_increasing(void **state)
{
    struct pc_msgid_gen g = {0, 0};
    char prev[PC_MSGID_LEN + 1], cur[PC_MSGID_LEN + 1];

    pc_msgid_next(&g, prev);
    for (int i = 0; i < 100000; i++) {
        pc_msgid_next(&g, cur);
        assert_true(pc_msgid_valid(cur, PC_MSGID_LEN));
        /* Strictly increasing in the time and counter prefix, so in the
         * whole text too. */
        if (memcmp(cur, prev, 18) <= 0) {
            fail_msg("%s after %s", cur, prev);
        }
        memcpy(prev, cur, sizeof(cur));
    }

    /* A clock that stepped back: ids keep increasing from the last one. */
    g.last_ms = pc_wall_ms() + 3600 * 1000;
    g.counter = 0;
    pc_msgid_next(&g, prev);
    for (int i = 0; i < 10000; i++) {
        pc_msgid_next(&g, cur);
        assert_true(memcmp(cur, prev, 18) > 0);
        memcpy(prev, cur, sizeof(cur));
    }

    /* Counter overflow within one millisecond moves to the next one. */
    g.counter = 0x0ffe;
    uint64_t ms = g.last_ms;
    pc_msgid_next(&g, cur);
    assert_true(g.last_ms == ms && g.counter == 0x0fff);
    pc_msgid_next(&g, cur);
    assert_true(g.last_ms == ms + 1 && g.counter == 0);
    assert_true(msgid_ms(cur) == ms + 1);
}

static void
test_msgid_unique(void **state)
{
    struct pc_msgid_gen a = {0, 0}, b = {0, 0};
    char x[PC_MSGID_LEN + 1], y[PC_MSGID_LEN + 1];

    /* Two generators in the same millisecond differ in the random bits. */
    for (int i = 0; i < 1000; i++) {
        pc_msgid_next(&a, x);
        pc_msgid_next(&b, y);
        assert_string_not_equal(x, y);
    }
}

static void
test_msgid_valid(void **state)
{
    assert_true(pc_msgid_valid("01a20e3f-ccda-7000-9055-ae89983a955d", 36));
    /* Any version. */
    assert_true(pc_msgid_valid("f47ac10b-58cc-4372-a567-0e02b2c3d479", 36));
    assert_false(pc_msgid_valid("not-a-uuid", 10));
    assert_false(pc_msgid_valid("", 0));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055-AE89983A955D", 36));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055-ae89983a955", 35));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055-ae89983a955dd", 37));
    assert_false(pc_msgid_valid("01a20e3fxccda-7000-9055-ae89983a955d", 36));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055-ae89983a955g", 36));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055ae89983a955d-", 36));
    assert_false(pc_msgid_valid("{1a20e3f-ccda-7000-9055-ae89983a955d", 36));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_msgid_format),
        cmocka_unit_test(test_msgid_increasing),
        cmocka_unit_test(test_msgid_unique),
        cmocka_unit_test(test_msgid_valid),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
