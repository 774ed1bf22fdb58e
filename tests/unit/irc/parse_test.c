/* The IRC parser and framing: vectors in the style of the ircdocs parser
 * tests (msg-split), written for pchat's API. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "irc/irc.h"

static int
parse(const char *line, struct pc_irc_msg *m)
{
    return pc_irc_parse(line, strlen(line), m);
}

static void
assert_slice(struct pc_irc_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

struct split_case {
    const char *line;
    const char *source;
    const char *command;
    int nparams;
    const char *params[4];
};

static const struct split_case split_cases[] = {
    {"foo bar baz asdf", "", "foo", 3, {"bar", "baz", "asdf"}},
    {":coolguy foo bar baz asdf", "coolguy", "foo", 3, {"bar", "baz", "asdf"}},
    {"foo bar baz :asdf quux", "", "foo", 3, {"bar", "baz", "asdf quux"}},
    {"foo bar baz :", "", "foo", 3, {"bar", "baz", ""}},
    {"foo bar baz ::asdf", "", "foo", 3, {"bar", "baz", ":asdf"}},
    {":coolguy foo bar baz :  asdf quux ", "coolguy", "foo", 3,
     {"bar", "baz", "  asdf quux "}},
    {":coolguy PRIVMSG bar :lol :) ", "coolguy", "PRIVMSG", 2,
     {"bar", "lol :) "}},
    {":coolguy foo bar baz :", "coolguy", "foo", 3, {"bar", "baz", ""}},
    {":coolguy foo bar baz :  ", "coolguy", "foo", 3, {"bar", "baz", "  "}},
    {":src JOIN #chan", "src", "JOIN", 1, {"#chan"}},
    {":src JOIN :#chan", "src", "JOIN", 1, {"#chan"}},
    {":src AWAY", "src", "AWAY", 0, {NULL}},
    {":src AWAY ", "src", "AWAY", 0, {NULL}},
    {":cool\tguy foo bar baz", "cool\tguy", "foo", 2, {"bar", "baz"}},
    {":gravel.mozilla.org 432  #momo :Erroneous Nickname", "gravel.mozilla.org",
     "432", 2, {"#momo", "Erroneous Nickname"}},
    {"foo   bar    baz", "", "foo", 2, {"bar", "baz"}},
    {"  PING x", "", "PING", 1, {"x"}},
};

static void
test_split(void **state)
{
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        const struct split_case *c = &split_cases[i];
        struct pc_irc_msg m;
        assert_int_equal(parse(c->line, &m), 0);
        assert_slice(m.source, c->source);
        assert_slice(m.command, c->command);
        assert_int_equal(m.nparams, c->nparams);
        for (int p = 0; p < c->nparams; p++) {
            assert_slice(m.params[p], c->params[p]);
        }
    }
}

static void
test_tags(void **state)
{
    struct pc_irc_msg m;
    assert_int_equal(parse("@a=b;c=32;k;rt=ql7 foo", &m), 0);
    assert_int_equal(m.ntags, 4);
    assert_slice(m.tags[0].key, "a");
    assert_slice(m.tags[0].value, "b");
    assert_slice(m.tags[2].key, "k");
    assert_int_equal(m.tags[2].value.len, 0);
    assert_slice(m.command, "foo");

    assert_int_equal(parse("@+example.com/typing=active;label=x1 TAGMSG #c",
                           &m), 0);
    assert_slice(m.tags[0].key, "+example.com/typing");
    const struct pc_irc_tag *t = pc_irc_msg_tag(&m, "label");
    assert_non_null(t);
    assert_slice(t->value, "x1");
    assert_null(pc_irc_msg_tag(&m, "missing"));

    /* Duplicate keys: the last one wins. */
    assert_int_equal(parse("@label=a;label=b PING x", &m), 0);
    assert_slice(pc_irc_msg_tag(&m, "label")->value, "b");

    /* Empty tags between semicolons are skipped; escaped values stay. */
    assert_int_equal(parse("@a=b\\sc;;d= :src CMD", &m), 0);
    assert_int_equal(m.ntags, 2);
    assert_slice(m.tags[0].value, "b\\sc");

    /* Invalid keys. */
    assert_int_equal(parse("@=x PING y", &m), PC_IRC_ESYNTAX);
    assert_int_equal(parse("@+ PING y", &m), PC_IRC_ESYNTAX);
    /* "b=c" would be the command, and is not one. */
    assert_int_equal(parse("@a b=c PING", &m), PC_IRC_ESYNTAX);
}

static void
test_errors(void **state)
{
    struct pc_irc_msg m;
    char big[PC_IRC_LINE_MAX + 16];

    assert_int_equal(parse("", &m), PC_IRC_EEMPTY);
    assert_int_equal(parse("   ", &m), PC_IRC_EEMPTY);
    assert_int_equal(parse(":src", &m), PC_IRC_EEMPTY);
    assert_int_equal(parse("12 x", &m), PC_IRC_ESYNTAX);
    assert_int_equal(parse("PRIV_MSG x", &m), PC_IRC_ESYNTAX);
    assert_int_equal(parse(": PING", &m), PC_IRC_ESYNTAX);
    assert_int_equal(pc_irc_parse("PING a\0b", 8, &m), PC_IRC_ESYNTAX);
    assert_int_equal(parse("PING a\rb", &m), PC_IRC_ESYNTAX);

    /* 15 parameters pass, 16 do not. */
    assert_int_equal(parse("C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", &m), 0);
    assert_int_equal(m.nparams, 15);
    assert_int_equal(parse("C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", &m),
                     PC_IRC_ETOOMANY);

    /* Body limit: 510 bytes without CR LF. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "PRIVMSG #c :", 12);
    assert_int_equal(pc_irc_parse(big, 510, &m), 0);
    assert_int_equal(pc_irc_parse(big, 511, &m), PC_IRC_ETOOLONG);

    /* Tag limit: 4096 bytes including '@' and the space. */
    big[0] = '@';
    big[1] = 'a';
    big[2] = '=';
    memset(big + 3, 'v', sizeof(big) - 3);
    big[4095] = ' ';
    memcpy(big + 4096, "PING x", 6);
    assert_int_equal(pc_irc_parse(big, 4102, &m), 0);
    big[4095] = 'v';
    big[4096] = ' ';
    memcpy(big + 4097, "PING x", 6);
    assert_int_equal(pc_irc_parse(big, 4103, &m), PC_IRC_ETOOLONG);
}

static void
test_frame(void **state)
{
    size_t n = 0;
    assert_int_equal(pc_irc_frame("PING x\r\nNEXT", 12, 512, &n), 8);
    assert_int_equal(n, 6);
    assert_int_equal(pc_irc_frame("PING x\nNEXT", 11, 512, &n), 7);
    assert_int_equal(n, 6);
    assert_int_equal(pc_irc_frame("PING x", 6, 512, &n), 0);
    assert_int_equal(pc_irc_frame("\r\n", 2, 512, &n), 2);
    assert_int_equal(n, 0);

    char big[600];
    memset(big, 'a', sizeof(big));
    assert_int_equal(pc_irc_frame(big, sizeof(big), 512, &n), PC_IRC_ETOOLONG);
    big[520] = '\n';
    assert_int_equal(pc_irc_frame(big, 521, 512, &n), PC_IRC_ETOOLONG);
    /* Exactly max bytes before the terminator is fine. */
    big[512] = '\n';
    assert_int_equal(pc_irc_frame(big, 513, 512, &n), 513);
    assert_int_equal(n, 512);
}

static void
test_cmd_is(void **state)
{
    struct pc_irc_msg m;
    assert_int_equal(parse("privmsg #a :b", &m), 0);
    assert_true(pc_irc_cmd_is(&m, "PRIVMSG"));
    assert_false(pc_irc_cmd_is(&m, "PRIVMS"));
    assert_false(pc_irc_cmd_is(&m, "NOTICE"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),  cmocka_unit_test(test_tags),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_frame),
        cmocka_unit_test(test_cmd_is),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
