/* util/: bounded buffers, the hash map, clocks and msgids. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/map.h"
#include "util/time.h"

static void
test_buf(void **state)
{
    struct pc_buf b;
    pc_buf_init(&b, 16);
    assert_int_equal(pc_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(pc_buf_append(&b, "abcdef", 6), 0);
    assert_int_equal(b.len, 16);
    assert_int_equal(pc_buf_append(&b, "x", 1), PC_E2BIG);
    assert_int_equal(b.len, 16);
    pc_buf_consume(&b, 10);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcdef", 6);
    pc_buf_reset(&b);
    pc_buf_shrink(&b);
    assert_null(b.data);
    pc_buf_free(&b);

    pc_buf_init(&b, 4096);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(pc_buf_printf(&b, "%03d,", i), 0);
    }
    assert_int_equal(b.len, 400);
    assert_memory_equal(b.data + 396, "099,", 4);
    char big[1000];
    memset(big, 'z', sizeof(big));
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), 0);
    assert_int_equal(b.len, 1400);
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), 0);
    assert_int_equal(b.len, 2400);
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), 0);
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), PC_E2BIG);
    assert_int_equal(b.len, 3400);
    assert_int_equal(pc_buf_append(&b, big, 696), 0);
    assert_int_equal(pc_buf_append(&b, big, 1), PC_E2BIG);
    pc_buf_free(&b);
}

static void
test_map(void **state)
{
    struct pc_map m;
    char key[32];
    static int values[5000];

    pc_map_init(&m);
    assert_null(pc_map_get(&m, "nothing"));
    for (int i = 0; i < 5000; i++) {
        (void)snprintf(key, sizeof(key), "key%d", i);
        values[i] = i;
        assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
    }
    assert_int_equal(m.count, 5000);
    for (int i = 0; i < 5000; i += 7) {
        (void)snprintf(key, sizeof(key), "key%d", i);
        int *v = pc_map_get(&m, key);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    /* Delete half, reinsert some: tombstones are reused or rehashed. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i += 2) {
            (void)snprintf(key, sizeof(key), "key%d", i);
            assert_ptr_equal(pc_map_del(&m, key), &values[i]);
        }
        assert_int_equal(m.count, 2500);
        for (int i = 0; i < 5000; i += 2) {
            (void)snprintf(key, sizeof(key), "key%d", i);
            assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
        }
        assert_int_equal(m.count, 5000);
    }
    assert_null(pc_map_del(&m, "absent"));
    /* Replace keeps the count. */
    assert_int_equal(pc_map_put(&m, "key1", &values[2]), 0);
    assert_int_equal(m.count, 5000);
    assert_ptr_equal(pc_map_get(&m, "key1"), &values[2]);

    size_t pos = 0, seen = 0;
    const char *k;
    while (pc_map_next(&m, &pos, &k) != NULL) {
        assert_non_null(k);
        seen++;
    }
    assert_int_equal(seen, 5000);
    /* Deleting the entry just returned during iteration is allowed. */
    pos = 0;
    while (pc_map_next(&m, &pos, &k) != NULL) {
        char copy[32];
        (void)snprintf(copy, sizeof(copy), "%s", k);
        (void)pc_map_del(&m, copy);
    }
    assert_int_equal(m.count, 0);
    pc_map_free(&m);
}

static void
test_time(void **state)
{
    char s[32];
    uint64_t back = 0;

    pc_time_format(1700000000123ULL, s);
    assert_string_equal(s, "2023-11-14T22:13:20.123Z");
    assert_int_equal(pc_time_parse(s, strlen(s), &back), 0);
    assert_int_equal(back, 1700000000123ULL);
    assert_int_equal(pc_time_parse("2023-11-14T22:13:20Z", 20, &back), 0);
    assert_int_equal(back, 1700000000000ULL);
    assert_int_equal(pc_time_parse("2023-11-14 22:13:20Z", 20, &back),
                     PC_EPROTO);
    assert_int_equal(pc_time_parse("2023-13-14T22:13:20Z", 20, &back),
                     PC_EPROTO);
    assert_int_equal(pc_time_parse("nonsense", 8, &back), PC_EPROTO);
    assert_true(pc_now_ms() > 0);
}

static void
test_msgid(void **state)
{
    struct pc_msgid_gen g = {0, 0};
    char prev[PC_MSGID_LEN + 1], cur[PC_MSGID_LEN + 1];

    pc_msgid_next(&g, prev);
    assert_true(pc_msgid_valid(prev, strlen(prev)));
    assert_int_equal(prev[14], '7'); /* version 7 */
    for (int i = 0; i < 100000; i++) {
        pc_msgid_next(&g, cur);
        /* Strictly increasing in the time-ordered prefix. */
        assert_true(memcmp(cur, prev, 19) > 0);
        memcpy(prev, cur, sizeof(cur));
    }
    assert_false(pc_msgid_valid("not-a-uuid", 10));
    assert_false(pc_msgid_valid("01a20e3f-ccda-7000-9055-AE89983A955D", 36));
    assert_true(pc_msgid_valid("01a20e3f-ccda-7000-9055-ae89983a955d", 36));
}

static void
test_strerror(void **state)
{
    assert_string_equal(pc_strerror(0), "success");
    assert_string_equal(pc_strerror(PC_E2BIG), "input over its limit");
    assert_string_equal(pc_strerror(PC_EUNKNOWN),
                        "outcome unknown (connection lost)");
    assert_non_null(pc_strerror(-2));
    assert_string_equal(pc_strerror(5), "invalid error code");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),   cmocka_unit_test(test_map),
        cmocka_unit_test(test_time),  cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_strerror),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
