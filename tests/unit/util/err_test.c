/* Error codes and their names. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"

static void
test_own_codes(void **state)
{
    assert_string_equal(pc_strerror(0), "success");
    assert_string_equal(pc_strerror(PC_EBASE), "unknown pchat error");
    assert_string_equal(pc_strerror(PC_E2BIG), "input over its limit");
    assert_string_equal(pc_strerror(PC_EUNKNOWN),
                        "outcome unknown (connection lost)");
    assert_string_equal(pc_strerror(PC_ECONFIG), "invalid configuration");
    assert_string_equal(pc_strerror(PC_ESCHEMA),
                        "database schema is newer than this program");
    /* Every code up to PC_ELAST has a name of its own. */
    for (int e = PC_EBASE - 1; e > PC_ELAST; e--) {
        const char *s = pc_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown pchat error");
        for (int f = e - 1; f > PC_ELAST; f--) {
            assert_string_not_equal(s, pc_strerror(f));
        }
    }
}

static void
test_errno(void **state)
{
    /* -errno (and libuv's codes, which are -errno on Unix) pass through. */
    assert_string_equal(pc_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(pc_strerror(-ENOMEM), strerror(ENOMEM));
    assert_non_null(pc_strerror(PC_ELAST));
    assert_non_null(pc_strerror(-99999));
    assert_string_equal(pc_strerror(5), "invalid error code");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_codes),
        cmocka_unit_test(test_errno),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
