/* Framing: LF or CR LF ends a line; a bare CR does not; the length limit
 * applies to the line without its terminator. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct frame_case {
    const char *buf;
    size_t max;
    ssize_t rc;      /* bytes to consume, 0 or an error */
    size_t line_len; /* when rc > 0 */
};

/* clang-format off */
static const struct frame_case frame_cases[] = {
    {"PING x\r\nNEXT", 512, 8, 6},
    {"PING x\nNEXT", 512, 7, 6},
    {"PING x", 512, 0, 0},
    {"PING x\r", 512, 0, 0},
    {"\r\n", 512, 2, 0},
    {"\n", 512, 1, 0},
    {"", 512, 0, 0},
    /* A bare CR is part of the line (pc_irc_parse rejects it). */
    {"PING\rx\n", 512, 7, 6},
    {"PING x\r\r\n", 512, 9, 7},
    /* Only the first line is framed. */
    {"A\nB\n", 512, 2, 1},
    {"\r\nB\n", 512, 2, 0},
    /* Exactly max bytes before the terminator, and one more. */
    {"abcd\n", 4, 5, 4},
    {"abcd\r\n", 4, 6, 4},
    {"abcde\n", 4, PC_IRC_ETOOLONG, 0},
    {"abcde\r\n", 4, PC_IRC_ETOOLONG, 0},
    /* Without a terminator: max + 1 may still be the CR of a CR LF. */
    {"abcd", 4, 0, 0},
    {"abcd\r", 4, 0, 0},
    {"abcde", 4, PC_IRC_ETOOLONG, 0},
    {"abcd\r\r", 4, PC_IRC_ETOOLONG, 0},
    {"abcdef", 4, PC_IRC_ETOOLONG, 0},
    /* An LF past the window does not help. */
    {"abcdefgh\n", 4, PC_IRC_ETOOLONG, 0},
    {"", 0, 0, 0},
    {"\n", 0, 1, 0},
    {"\r\n", 0, 2, 0},
    {"a\n", 0, PC_IRC_ETOOLONG, 0},
};

/* clang-format on */

static void
test_cases(void **state)
{
    for (size_t i = 0; i < N_ELEMS(frame_cases); i++) {
        const struct frame_case *c = &frame_cases[i];
        size_t line_len = 99999;
        ssize_t rc = pc_irc_frame(c->buf, strlen(c->buf), c->max, &line_len);

        print_message("# case %zu\n", i);
        assert_int_equal(rc, c->rc);
        if (rc > 0) {
            assert_int_equal(line_len, c->line_len);
        }
    }
}

/* The whole budget of the reader: PC_IRC_LINE_MAX before CR LF. */
static void
test_line_max(void **state)
{
    static char big[PC_IRC_LINE_MAX + 8];
    size_t n = 0;

    memset(big, 'a', sizeof(big));
    big[PC_IRC_LINE_MAX] = '\r';
    big[PC_IRC_LINE_MAX + 1] = '\n';
    assert_int_equal(pc_irc_frame(big, sizeof(big), PC_IRC_LINE_MAX, &n),
                     PC_IRC_LINE_MAX + 2);
    assert_int_equal(n, PC_IRC_LINE_MAX);
    /* Partial: still waiting at max + 1 bytes. */
    assert_int_equal(
        pc_irc_frame(big, PC_IRC_LINE_MAX + 1, PC_IRC_LINE_MAX, &n), 0);
    big[PC_IRC_LINE_MAX] = 'a';
    assert_int_equal(pc_irc_frame(big, sizeof(big), PC_IRC_LINE_MAX, &n),
                     PC_IRC_ETOOLONG);
}

/* Framing a stream line by line consumes it all and sees every line. */
static void
test_stream(void **state)
{
    const char *s = "NICK a\r\nUSER a 0 * :A\n\r\nPING :x y\r\n";
    const char *want[] = {"NICK a", "USER a 0 * :A", "", "PING :x y"};
    size_t off = 0, len = strlen(s), k = 0;

    for (;;) {
        size_t n = 0;
        ssize_t rc = pc_irc_frame(s + off, len - off, 512, &n);
        if (rc == 0) {
            break;
        }
        assert_true(rc > 0);
        assert_true(k < N_ELEMS(want));
        assert_int_equal(n, strlen(want[k]));
        assert_memory_equal(s + off, want[k], n);
        off += (size_t)rc;
        k++;
    }
    assert_int_equal(off, len);
    assert_int_equal(k, N_ELEMS(want));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_line_max),
        cmocka_unit_test(test_stream),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
