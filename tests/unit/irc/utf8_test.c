/* UTF-8 validation (RFC 3629, Unicode table 3-7) and the cut at a character
 * boundary. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct utf8_case {
    const char *s;
    size_t len; /* 0: strlen */
    bool ok;
};

/* clang-format off */
static const struct utf8_case utf8_cases[] = {
    {"", 0, true},
    {"ascii", 0, true},
    {"\x01\x7f", 0, true},
    {"\0", 1, true}, /* U+0000 is a character (the parser rejects it) */
    {"caf\xc3\xa9", 0, true},
    {"\xc2\x80", 0, true},         /* U+0080, the first two-byte */
    {"\xdf\xbf", 0, true},         /* U+07FF */
    {"\xe0\xa0\x80", 0, true},     /* U+0800, the first three-byte */
    {"\xe2\x82\xac", 0, true},     /* euro sign */
    {"\xed\x9f\xbf", 0, true},     /* U+D7FF, before the surrogates */
    {"\xee\x80\x80", 0, true},     /* U+E000, after them */
    {"\xef\xbf\xbd", 0, true},     /* U+FFFD */
    {"\xef\xbf\xbf", 0, true},     /* U+FFFF: a noncharacter, still UTF-8 */
    {"\xf0\x90\x80\x80", 0, true}, /* U+10000, the first four-byte */
    {"\xf0\x9f\x98\x80", 0, true}, /* emoji */
    {"\xf4\x8f\xbf\xbf", 0, true}, /* U+10FFFF, the last */
    /* Cut short. */
    {"\xc3", 0, false},
    {"a\xe2\x82", 0, false},
    {"\xf0\x9f\x98", 0, false},
    {"\xe2\x82" "a", 0, false},
    /* Overlong forms. */
    {"\xc0\x80", 0, false},         /* NUL in two bytes */
    {"\xc0\xaf", 0, false},         /* '/' */
    {"\xc1\xbf", 0, false},
    {"\xe0\x80\xaf", 0, false},
    {"\xe0\x9f\xbf", 0, false},     /* U+07FF in three bytes */
    {"\xf0\x80\x80\xaf", 0, false},
    {"\xf0\x8f\xbf\xbf", 0, false}, /* U+FFFF in four bytes */
    /* Surrogates, alone and as a CESU-8 pair. */
    {"\xed\xa0\x80", 0, false},     /* U+D800 */
    {"\xed\xbf\xbf", 0, false},     /* U+DFFF */
    {"\xed\xa0\xbd\xed\xb8\x80", 0, false},
    /* Past U+10FFFF and the bytes that never occur. */
    {"\xf4\x90\x80\x80", 0, false}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, false},
    {"\xf7\xbf\xbf\xbf", 0, false},
    {"\xf8\x88\x80\x80\x80", 0, false}, /* old five-byte form */
    {"\xfc\x84\x80\x80\x80\x80", 0, false},
    {"\xfe", 0, false},
    {"\xff", 0, false},
    /* Continuation bytes where a lead should be, and the reverse. */
    {"\x80", 0, false},
    {"\xbf", 0, false},
    {"a\x80" "b", 0, false},
    {"\xc3\xa9\xa9", 0, false},
    {"\xc3" "a", 0, false},
    {"\xe2\x28\xa1", 0, false},
    {"\xf0\x9f\x98\x28", 0, false},
};

/* clang-format on */

static void
test_valid(void **state)
{
    for (size_t i = 0; i < N_ELEMS(utf8_cases); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->s);
        print_message("# case %zu\n", i);
        assert_int_equal(pc_utf8_valid(c->s, len), c->ok);
    }
}

/* Every code point from U+0000 to U+10FFFF, encoded here, is valid exactly
 * when it is not a surrogate. */
static void
test_all_code_points(void **state)
{
    for (unsigned long cp = 0; cp <= 0x10FFFF; cp++) {
        char b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (char)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (char)(0xC0 | (cp >> 6));
            b[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (char)(0xE0 | (cp >> 12));
            b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            b[0] = (char)(0xF0 | (cp >> 18));
            b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        bool want = !(cp >= 0xD800 && cp <= 0xDFFF);
        if (pc_utf8_valid(b, n) != want) {
            fail_msg("U+%04lX", cp);
        }
        /* Without its last byte it is never valid. */
        if (n > 1 && pc_utf8_valid(b, n - 1)) {
            fail_msg("U+%04lX cut short", cp);
        }
    }
}

/* Two-byte sequences: only C2..DF followed by 80..BF. */
static void
test_all_pairs(void **state)
{
    for (int a = 0x80; a < 0x100; a++) {
        for (int b = 0; b < 0x100; b++) {
            char s[2] = {(char)a, (char)b};
            bool want = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
            if (pc_utf8_valid(s, 2) != want) {
                fail_msg("%02X %02X", a, b);
            }
        }
    }
}

static void
test_cut(void **state)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                    "b";
    /* Byte offsets:   0 1   2   3   4   5   6   7   8   9   10 */
    static const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11};
    size_t len = strlen(s);

    for (size_t max = 0; max < N_ELEMS(want); max++) {
        assert_int_equal(pc_utf8_cut(s, len, max), want[max]);
        assert_true(pc_utf8_valid(s, pc_utf8_cut(s, len, max)));
    }
    assert_int_equal(pc_utf8_cut(s, len, 100), len);
    assert_int_equal(pc_utf8_cut("", 0, 0), 0);
    /* Not UTF-8: a run of continuation bytes is cut anywhere. */
    assert_int_equal(pc_utf8_cut("\x80\x80\x80\x80\x80\x80", 6, 5), 5);
    assert_int_equal(pc_utf8_cut("\x80\x80\x80", 3, 2), 2);
    assert_int_equal(pc_utf8_cut("a\x80\x80\x80", 4, 3), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_all_code_points),
        cmocka_unit_test(test_all_pairs),
        cmocka_unit_test(test_cut),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
