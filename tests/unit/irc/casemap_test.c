/* Casemapping rfc1459: A-Z [ \ ] ^ fold to a-z { | } ~, nothing else. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

static void
test_fold_char(void **state)
{
    for (int c = 0; c < 256; c++) {
        char want = (char)c;
        if ((c >= 'A' && c <= 'Z') || c == '[' || c == '\\' || c == ']'
            || c == '^') {
            want = (char)(c + 32);
        }
        assert_int_equal(pc_irc_fold_char((char)c), want);
    }
    assert_int_equal(pc_irc_fold_char('_'), '_');
    assert_int_equal(pc_irc_fold_char('`'), '`');
    assert_int_equal(pc_irc_fold_char('~'), '~');
    assert_int_equal(pc_irc_fold_char('@'), '@');
}

static void
test_casefold(void **state)
{
    /* clang-format off */
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"", ""},
        {"Nick[]\\^", "nick{}|~"},
        {"#Chan-ABC", "#chan-abc"},
        {"ALL_CAPS`", "all_caps`"},
        {"caf\xc3\x89", "caf\xc3\x89"}, /* É: bytes untouched */
        {"{}|~", "{}|~"},
    };

    /* clang-format on */
    char out[32];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t n = strlen(cases[i].in);
        memset(out, 'X', sizeof(out));
        pc_irc_casefold(out, cases[i].in, n);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(out[n], '\0');
    }
    /* Only len bytes are read and written. */
    memset(out, 'X', sizeof(out));
    pc_irc_casefold(out, "ABCDEF", 3);
    assert_string_equal(out, "abc");
    assert_int_equal(out[4], 'X');
}

static void
test_casecmp(void **state)
{
    assert_int_equal(pc_irc_casecmp("FOO[x]", "foo{X}"), 0);
    assert_int_equal(pc_irc_casecmp("a\\b^", "A|B~"), 0);
    assert_int_equal(pc_irc_casecmp("", ""), 0);
    assert_true(pc_irc_casecmp("a", "b") < 0);
    assert_true(pc_irc_casecmp("B", "a") > 0);
    assert_true(pc_irc_casecmp("abc", "ab") > 0);
    assert_true(pc_irc_casecmp("ab", "abc") < 0);
    assert_true(pc_irc_casecmp("", "a") < 0);
    /* '_' and '`' are not letters here. */
    assert_true(pc_irc_casecmp("_", "`") != 0);
    /* Bytes above 0x7F compare as unsigned. */
    assert_true(pc_irc_casecmp("\xc3", "a") > 0);
    assert_true(pc_irc_casecmp("a", "\xc3") < 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_char),
        cmocka_unit_test(test_casefold),
        cmocka_unit_test(test_casecmp),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
