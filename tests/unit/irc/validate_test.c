/* Nickname and channel name checks. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct name_case {
    const char *s;
    size_t len; /* 0: strlen */
    size_t max;
    bool ok;
};

/* clang-format off */
static const struct name_case nick_cases[] = {
    {"alice", 0, 30, true},
    {"a", 0, 30, true},
    {"[a]-b_c^", 0, 30, true},
    {"`x", 0, 30, true},
    {"{|}", 0, 30, true},
    {"\\o/", 0, 30, false}, /* '/' */
    {"Z9-", 0, 30, true},
    {"abcde", 0, 5, true},
    {"abcdef", 0, 5, false},
    {"", 0, 30, false},
    {"1abc", 0, 30, false},
    {"-abc", 0, 30, false},
    {"a b", 0, 30, false},
    {"a!b", 0, 30, false},
    {"a@b", 0, 30, false},
    {"a,b", 0, 30, false},
    {"a.b", 0, 30, false},
    {"a*", 0, 30, false},
    {"a?", 0, 30, false},
    {"#chan", 0, 30, false},
    {":nick", 0, 30, false},
    {"~nick", 0, 30, false},
    {"ni~ck", 0, 30, false},
    {"caf\xc3\xa9", 0, 30, false},
    {"a\0b", 3, 30, false},
    {"a\tb", 0, 30, false},
};
/* clang-format on */

/* clang-format off */
static const struct name_case chan_cases[] = {
    {"#a", 0, 64, true},
    {"#pchat-dev", 0, 64, true},
    {"#caf\xc3\xa9", 0, 64, true},
    {"##", 0, 64, true},
    {"#a.b/c[d]", 0, 64, true},
    {"#abcd", 0, 5, true},
    {"#abcde", 0, 5, false},
    {"#", 0, 64, false},
    {"", 0, 64, false},
    {"a", 0, 64, false},
    {"&local", 0, 64, false},
    {"#a,b", 0, 64, false},
    {"#a b", 0, 64, false},
    {"#a:b", 0, 64, false},
    {"#a\a", 0, 64, false},
    {"#a\r", 0, 64, false},
    {"#a\n", 0, 64, false},
    {"#a\0", 3, 64, false},
    {"#\xff", 0, 64, false},
    {"#\xc3", 0, 64, false},
    {"#\xed\xa0\x80", 0, 64, false},
};

/* clang-format on */

static void
run(const struct name_case *cases, size_t n,
    bool (*check)(const char *, size_t, size_t))
{
    for (size_t i = 0; i < n; i++) {
        const struct name_case *c = &cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->s);
        print_message("# %s\n", c->s);
        assert_int_equal(check(c->s, len, c->max), c->ok);
    }
}

static void
test_nicks(void **state)
{
    run(nick_cases, N_ELEMS(nick_cases), pc_irc_nick_valid);
}

static void
test_chans(void **state)
{
    run(chan_cases, N_ELEMS(chan_cases), pc_irc_chan_valid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nicks),
        cmocka_unit_test(test_chans),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
