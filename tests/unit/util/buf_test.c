/* Bounded buffers: the cap, printf growth, consume, shrink. */
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

static char big[5000];

static int
setup(void **state)
{
    memset(big, 'z', sizeof(big));
    return 0;
}

static void
test_cap(void **state)
{
    struct pc_buf b;

    pc_buf_init(&b, 16);
    assert_null(b.data);
    assert_int_equal(pc_buf_append(&b, "", 0), 0);
    assert_null(b.data); /* nothing allocated for nothing */
    assert_int_equal(pc_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(pc_buf_append_str(&b, "abcdef"), 0);
    assert_int_equal(b.len, 16);
    assert_true(b.cap <= b.max);
    /* Past the cap: refused whole, nothing appended. */
    assert_int_equal(pc_buf_append(&b, "x", 1), PC_E2BIG);
    assert_int_equal(b.len, 16);
    assert_memory_equal(b.data, "0123456789abcdef", 16);
    pc_buf_free(&b);

    /* A single append larger than the cap, and a huge length that would
     * overflow len + extra. */
    pc_buf_init(&b, 100);
    assert_int_equal(pc_buf_append(&b, big, 101), PC_E2BIG);
    assert_int_equal(pc_buf_append(&b, "ab", 2), 0);
    assert_int_equal(pc_buf_append(&b, big, SIZE_MAX), PC_E2BIG);
    assert_int_equal(pc_buf_append(&b, big, SIZE_MAX - 1), PC_E2BIG);
    assert_int_equal(b.len, 2);
    assert_int_equal(pc_buf_append(&b, big, 98), 0);
    assert_int_equal(b.len, 100);
    assert_int_equal(b.cap, 100);
    pc_buf_free(&b);

    /* A zero cap takes nothing. */
    pc_buf_init(&b, 0);
    assert_int_equal(pc_buf_append(&b, "a", 1), PC_E2BIG);
    assert_int_equal(pc_buf_printf(&b, "%s", "a"), PC_E2BIG);
    assert_int_equal(pc_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 0);
    pc_buf_free(&b);
}

static void
test_printf(void **state)
{
    struct pc_buf b;

    pc_buf_init(&b, 4096);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(pc_buf_printf(&b, "%03d,", i), 0);
    }
    assert_int_equal(b.len, 400);
    assert_memory_equal(b.data, "000,001,", 8);
    assert_memory_equal(b.data + 396, "099,", 4);
    /* Longer than the internal 512-byte scratch: formatted in place. */
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), 0);
    assert_int_equal(b.len, 1400);
    assert_int_equal(pc_buf_printf(&b, "<%.*s>", 998, big), 0);
    assert_int_equal(b.len, 2400);
    assert_int_equal(b.data[1400], '<');
    assert_int_equal(b.data[2399], '>');
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), 0);
    assert_int_equal(pc_buf_printf(&b, "%.*s", 1000, big), PC_E2BIG);
    assert_int_equal(b.len, 3400);
    assert_int_equal(pc_buf_append(&b, big, 696), 0);
    assert_int_equal(pc_buf_append(&b, big, 1), PC_E2BIG);
    assert_int_equal(pc_buf_printf(&b, "%s", "x"), PC_E2BIG);
    assert_int_equal(b.len, 4096);
    pc_buf_free(&b);
}

/* Text that ends exactly at the cap fits, whether it is shorter or longer
 * than the scratch buffer (the long case once failed with PC_E2BIG: it
 * reserved room for vsnprintf's NUL). */
static void
test_printf_exact_cap(void **state)
{
    static const size_t sizes[] = {1, 100, 511, 512, 513, 600, 1000, 4096};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct pc_buf b;
        size_t n = sizes[i];
        pc_buf_init(&b, n);
        assert_int_equal(pc_buf_printf(&b, "%.*s", (int)n, big), 0);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, big, n);
        assert_int_equal(pc_buf_printf(&b, "%s", "y"), PC_E2BIG);
        pc_buf_free(&b);

        /* The same with something already in the buffer. */
        pc_buf_init(&b, n + 3);
        assert_int_equal(pc_buf_append(&b, "abc", 3), 0);
        assert_int_equal(pc_buf_printf(&b, "%.*s", (int)n, big), 0);
        assert_int_equal(b.len, n + 3);
        assert_memory_equal(b.data, "abc", 3);
        assert_memory_equal(b.data + 3, big, n);
        pc_buf_free(&b);
    }
}

static void
test_consume(void **state)
{
    struct pc_buf b;

    pc_buf_init(&b, 64);
    pc_buf_consume(&b, 0);
    pc_buf_consume(&b, 5); /* on an empty buffer: nothing happens */
    assert_int_equal(b.len, 0);
    assert_int_equal(pc_buf_append_str(&b, "PING a\r\nPING b\r\n"), 0);
    pc_buf_consume(&b, 0);
    assert_int_equal(b.len, 16);
    pc_buf_consume(&b, 8);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "PING b\r\n", 8);
    /* Space freed by consume is usable again up to the cap. */
    assert_int_equal(pc_buf_append(&b, big, 56), 0);
    assert_int_equal(b.len, 64);
    pc_buf_consume(&b, 1000); /* more than held: empties */
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    pc_buf_shrink(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 64); /* the cap survives shrink */
    assert_int_equal(pc_buf_append_str(&b, "again"), 0);
    /* shrink keeps a buffer that still holds data */
    pc_buf_shrink(&b);
    assert_non_null(b.data);
    assert_memory_equal(b.data, "again", 5);
    pc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    pc_buf_free(&b);
    pc_buf_free(&b); /* idempotent */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_exact_cap),
        cmocka_unit_test(test_consume),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, setup, NULL);
}
