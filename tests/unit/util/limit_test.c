/* Failure limiting with token buckets (util/limit.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "util/limit.h"

static void
test_burst_then_one_per_interval(void **state)
{
    struct pc_limit l;
    pc_limit_init(&l, 3, 10000, 100);
    uint64_t t = 1000000;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(pc_limit_wait_s(&l, "a", t), 0);
        pc_limit_fail(&l, "a", t);
    }
    /* Burst spent: wait a whole interval (10 s) for the next try. */
    assert_int_equal(pc_limit_wait_s(&l, "a", t), 11);
    assert_int_equal(pc_limit_wait_s(&l, "b", t), 0); /* other keys free */
    assert_true(pc_limit_wait_s(&l, "a", t + 5000) > 0);
    assert_int_equal(pc_limit_wait_s(&l, "a", t + 10000), 0);
    pc_limit_fail(&l, "a", t + 10000);
    assert_true(pc_limit_wait_s(&l, "a", t + 10000) > 0);
    /* A success forgets the key. */
    pc_limit_reset(&l, "a");
    assert_int_equal(pc_limit_wait_s(&l, "a", t + 10000), 0);
    pc_limit_free(&l);
}

static void
test_table_is_bounded(void **state)
{
    struct pc_limit l;
    char key[32];
    pc_limit_init(&l, 2, 1000, 50);

    for (int i = 0; i < 1000; i++) {
        (void)snprintf(key, sizeof(key), "k%d", i);
        pc_limit_fail(&l, key, 5000);
        assert_true(l.map.count <= 50);
    }
    /* Buckets full again are pruned first. */
    pc_limit_fail(&l, "late", 5000 + 10 * 1000);
    assert_true(l.map.count <= 2);
    pc_limit_free(&l);
}

static void
test_clock_going_back_is_harmless(void **state)
{
    struct pc_limit l;
    pc_limit_init(&l, 1, 1000, 10);
    pc_limit_fail(&l, "a", 5000);
    assert_true(pc_limit_wait_s(&l, "a", 4000) > 0);
    assert_int_equal(pc_limit_wait_s(&l, "a", 6000), 0);
    pc_limit_free(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_one_per_interval),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_clock_going_back_is_harmless),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
