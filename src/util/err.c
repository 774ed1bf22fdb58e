#include "config.h"

#include "util/err.h"

#include <string.h>

const char *
pc_strerror(int err)
{
    static const char *const own[] = {
        [0] = "unknown pchat error",
        [1] = "input over its limit",
        [2] = "protocol error",
        [3] = "outcome unknown (connection lost)",
        [4] = "canceled",
        [5] = "timed out",
        [6] = "database error",
        [7] = "invalid configuration",
        [8] = "not found",
        [9] = "already exists",
        [10] = "invalid UTF-8",
        [11] = "database schema is newer than this program",
    };

    if (err == 0) {
        return "success";
    }
    if (err <= PC_EBASE && err > PC_ELAST) {
        return own[PC_EBASE - err];
    }
    if (err < 0) {
        /* libuv codes are -errno on Unix, so strerror names both. */
        return strerror(-err);
    }
    return "invalid error code";
}
