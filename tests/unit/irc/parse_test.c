/* The IRC parser: vectors after the ircdocs parser tests (msg-split.yaml),
 * put in our own tables, and pchat's limits and error codes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct split_case {
    const char *line;
    const char *tags[6][2]; /* key, unescaped value: the final ones */
    const char *source;     /* NULL: none */
    const char *verb;
    const char *params[6]; /* up to the first NULL */
};

/* clang-format off */
static const struct split_case split_cases[] = {
    /* Plain, with a source, with a trailing parameter. */
    {"foo bar baz asdf", {{0}}, NULL, "foo", {"bar", "baz", "asdf"}},
    {":coolguy foo bar baz asdf", {{0}}, "coolguy", "foo",
     {"bar", "baz", "asdf"}},
    {"foo bar baz :asdf quux", {{0}}, NULL, "foo", {"bar", "baz", "asdf quux"}},
    {"foo bar baz :", {{0}}, NULL, "foo", {"bar", "baz", ""}},
    {"foo bar baz ::asdf", {{0}}, NULL, "foo", {"bar", "baz", ":asdf"}},
    {":coolguy foo bar baz :asdf quux", {{0}}, "coolguy", "foo",
     {"bar", "baz", "asdf quux"}},
    {":coolguy foo bar baz :  asdf quux ", {{0}}, "coolguy", "foo",
     {"bar", "baz", "  asdf quux "}},
    {":coolguy PRIVMSG bar :lol :) ", {{0}}, "coolguy", "PRIVMSG",
     {"bar", "lol :) "}},
    {":coolguy foo bar baz :", {{0}}, "coolguy", "foo", {"bar", "baz", ""}},
    {":coolguy foo bar baz :  ", {{0}}, "coolguy", "foo", {"bar", "baz", "  "}},
    /* Tags, escaped values, tags with a source. */
    {"@a=b;c=32;k;rt=ql7 foo",
     {{"a", "b"}, {"c", "32"}, {"k", ""}, {"rt", "ql7"}}, NULL, "foo", {0}},
    {"@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo",
     {{"a", "b\\and\nk"}, {"c", "72 45"}, {"d", "gh;764"}}, NULL, "foo", {0}},
    {"@c;h=;a=b :quux ab cd", {{"c", ""}, {"h", ""}, {"a", "b"}}, "quux", "ab",
     {"cd"}},
    /* The last parameter with and without ':'; none at all. */
    {":src JOIN #chan", {{0}}, "src", "JOIN", {"#chan"}},
    {":src JOIN :#chan", {{0}}, "src", "JOIN", {"#chan"}},
    {":src AWAY", {{0}}, "src", "AWAY", {0}},
    {":src AWAY ", {{0}}, "src", "AWAY", {0}},
    /* A tab is not a separator; control codes in the source stay. */
    {":cool\tguy foo bar baz", {{0}}, "cool\tguy", "foo", {"bar", "baz"}},
    {":coolguy!ag@net\x03" "5w\x03" "ork.admin PRIVMSG foo :bar baz", {{0}},
     "coolguy!ag@net\x03" "5w\x03" "ork.admin", "PRIVMSG", {"foo", "bar baz"}},
    {":coolguy!~ag@n\x02" "et\x03" "05w\x0f" "ork.admin PRIVMSG foo :bar baz",
     {{0}}, "coolguy!~ag@n\x02" "et\x03" "05w\x0f" "ork.admin", "PRIVMSG",
     {"foo", "bar baz"}},
    /* Vendor tags. */
    {"@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4= "
     ":irc.example.com COMMAND param1 param2 :param3 param3",
     {{"tag1", "value1"}, {"tag2", ""}, {"vendor1/tag3", "value2"},
      {"vendor2/tag4", ""}},
     "irc.example.com", "COMMAND", {"param1", "param2", "param3 param3"}},
    {"@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4 "
     "COMMAND param1 param2 :param3 param3",
     {{"tag1", "value1"}, {"tag2", ""}, {"vendor1/tag3", "value2"},
      {"vendor2/tag4", ""}},
     NULL, "COMMAND", {"param1", "param2", "param3 param3"}},
    {"COMMAND", {{0}}, NULL, "COMMAND", {0}},
    {"@foo=\\\\\\\\\\:\\\\s\\s\\r\\n COMMAND", {{"foo", "\\\\;\\s \r\n"}},
     NULL, "COMMAND", {0}},
    /* Sloppy spacing as some servers send it. */
    {":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
     {{0}}, "gravel.mozilla.org", "432",
     {"#momo", "Erroneous Nickname: Illegal characters"}},
    {":gravel.mozilla.org MODE #tckk +n ", {{0}}, "gravel.mozilla.org", "MODE",
     {"#tckk", "+n"}},
    {":services.esper.net MODE #foo-bar +o foobar  ", {{0}},
     "services.esper.net", "MODE", {"#foo-bar", "+o", "foobar"}},
    /* Escapes are read one character at a time; unknown ones keep the
     * character and a lone backslash at the end goes. */
    {"@tag1=value\\\\ntest COMMAND", {{"tag1", "value\\ntest"}}, NULL,
     "COMMAND", {0}},
    {"@tag1=value\\1 COMMAND", {{"tag1", "value1"}}, NULL, "COMMAND", {0}},
    {"@tag1=value1\\ COMMAND", {{"tag1", "value1"}}, NULL, "COMMAND", {0}},
    /* Duplicate keys: the last wins; a vendor makes another key. */
    {"@tag1=1;tag2=3;tag3=4;tag1=5 COMMAND",
     {{"tag1", "5"}, {"tag2", "3"}, {"tag3", "4"}}, NULL, "COMMAND", {0}},
    {"@tag1=1;tag2=3;tag3=4;tag1=5;vendor/tag2=8 COMMAND",
     {{"tag1", "5"}, {"tag2", "3"}, {"tag3", "4"}, {"vendor/tag2", "8"}},
     NULL, "COMMAND", {0}},
    {":SomeOp MODE #channel :+i", {{0}}, "SomeOp", "MODE", {"#channel", "+i"}},
    {":SomeOp MODE #channel +oo SomeUser :AnotherUser", {{0}}, "SomeOp",
     "MODE", {"#channel", "+oo", "SomeUser", "AnotherUser"}},
    /* pchat's own: runs of spaces anywhere, client-only tags. */
    {"foo   bar    baz", {{0}}, NULL, "foo", {"bar", "baz"}},
    {"  PING x", {{0}}, NULL, "PING", {"x"}},
    {"@a=1   :s   PING   x   :y  z", {{"a", "1"}}, "s", "PING",
     {"x", "y  z"}},
    {"@+example.com/typing=active;label=x1 TAGMSG #c",
     {{"+example.com/typing", "active"}, {"label", "x1"}}, NULL, "TAGMSG",
     {"#c"}},
    {"@a=b=c;d=\xc3\xa9 X", {{"a", "b=c"}, {"d", "\xc3\xa9"}}, NULL, "X", {0}},
};

/* clang-format on */

/* Every parsed key is one of the expected ones, and each expected key reads
 * back (through pc_irc_msg_tag, so the last duplicate) with its value. */
static void
check_tags(const struct pc_irc_msg *m, const char *const want[][2],
           size_t nwant)
{
    char key[64];

    for (size_t i = 0; i < m->ntags; i++) {
        bool found = false;
        assert_true(m->tags[i].key.len < sizeof(key));
        memcpy(key, m->tags[i].key.p, m->tags[i].key.len);
        key[m->tags[i].key.len] = '\0';
        for (size_t k = 0; k < nwant && want[k][0] != NULL; k++) {
            found = found || strcmp(want[k][0], key) == 0;
        }
        assert_true(found);
    }
    for (size_t k = 0; k < nwant && want[k][0] != NULL; k++) {
        const struct pc_irc_tag *t = pc_irc_msg_tag(m, want[k][0]);
        assert_non_null(t);
        assert_string_equal(tag_value(t), want[k][1]);
    }
}

static void
test_split(void **state)
{
    for (size_t i = 0; i < N_ELEMS(split_cases); i++) {
        const struct split_case *c = &split_cases[i];
        struct pc_irc_msg m;
        size_t n = 0;

        print_message("# %s\n", c->line);
        assert_int_equal(parse_str(c->line, &m), 0);
        check_tags(&m, c->tags, N_ELEMS(c->tags));
        if (c->tags[0][0] == NULL) {
            assert_int_equal(m.ntags, 0);
        }
        assert_slice(m.source, c->source != NULL ? c->source : "");
        assert_slice(m.command, c->verb);
        while (n < N_ELEMS(c->params) && c->params[n] != NULL) {
            n++;
        }
        assert_int_equal(m.nparams, n);
        for (size_t p = 0; p < n; p++) {
            assert_slice(m.params[p], c->params[p]);
        }
    }
}

struct err_case {
    const char *line;
    size_t len; /* 0: strlen */
    int rc;
};

/* clang-format off */
static const struct err_case err_cases[] = {
    {"", 0, PC_IRC_EEMPTY},
    {"   ", 0, PC_IRC_EEMPTY},
    /* No command. */
    {":src", 0, PC_IRC_ESYNTAX},
    {":src   ", 0, PC_IRC_ESYNTAX},
    {"@a=b", 0, PC_IRC_ESYNTAX},
    {"@a=b :src", 0, PC_IRC_ESYNTAX},
    {"@a=b   ", 0, PC_IRC_ESYNTAX},
    /* An empty source. */
    {": PING", 0, PC_IRC_ESYNTAX},
    {":", 0, PC_IRC_ESYNTAX},
    /* Commands: letters or exactly three digits. */
    {"12 x", 0, PC_IRC_ESYNTAX},
    {"1234 x", 0, PC_IRC_ESYNTAX},
    {"PRIV_MSG x", 0, PC_IRC_ESYNTAX},
    {"PRIVMSG2 x", 0, PC_IRC_ESYNTAX},
    {"#chan x", 0, PC_IRC_ESYNTAX},
    {"\xc3\xa9 x", 0, PC_IRC_ESYNTAX},
    /* NUL, CR and LF never belong in a line. */
    {"PING a\0b", 8, PC_IRC_ESYNTAX},
    {"\0", 1, PC_IRC_ESYNTAX},
    {"PING a\rb", 0, PC_IRC_ESYNTAX},
    {"PING a\r", 0, PC_IRC_ESYNTAX},
    {"PING a\nPING b", 0, PC_IRC_ESYNTAX},
    {"@a=\0 PING", 10, PC_IRC_ESYNTAX},
    /* Tag sections and keys. */
    {"@ PING", 0, PC_IRC_ESYNTAX},
    {"@; PING", 0, PC_IRC_ESYNTAX},
    {"@=x PING y", 0, PC_IRC_ESYNTAX},
    {"@+ PING y", 0, PC_IRC_ESYNTAX},
    {"@+=1 PING y", 0, PC_IRC_ESYNTAX},
    {"@a b=c PING", 0, PC_IRC_ESYNTAX}, /* "b=c" would be the command */
    {"@a/ PING", 0, PC_IRC_ESYNTAX},
    {"@/a PING", 0, PC_IRC_ESYNTAX},
    {"@+/a PING", 0, PC_IRC_ESYNTAX},
    {"@a/b/c PING", 0, PC_IRC_ESYNTAX},
    {"@a_b PING", 0, PC_IRC_ESYNTAX},
    {"@a.b PING", 0, PC_IRC_ESYNTAX}, /* '.' only in the vendor */
    {"@++a PING", 0, PC_IRC_ESYNTAX},
    {"@a+ PING", 0, PC_IRC_ESYNTAX},
    {"@\xc3\xa9=1 PING", 0, PC_IRC_ESYNTAX},
    {"@ex_ample.com/a PING", 0, PC_IRC_ESYNTAX},
    /* 16 parameters, counted with a trailing one. */
    {"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", 0, PC_IRC_ETOOMANY},
    {"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 :16", 0, PC_IRC_ETOOMANY},
    {"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 :", 0, PC_IRC_ETOOMANY},
};

/* clang-format on */

static void
test_errors(void **state)
{
    for (size_t i = 0; i < N_ELEMS(err_cases); i++) {
        const struct err_case *c = &err_cases[i];
        struct pc_irc_msg m;
        size_t len = c->len != 0 ? c->len : strlen(c->line);

        print_message("# %zu\n", i);
        assert_int_equal(pc_irc_parse(c->line, len, &m), c->rc);
    }
}

static void
test_good_keys(void **state)
{
    /* clang-format off */
    static const char *const lines[] = {
        "@+a.b/c-d PING", "@example.com/x PING", "@+typing=1 PING",
        "@A-9=1 PING",    "@a-b.c-d/e PING",     "@draft/reply=x PING",
    };
    /* clang-format on */
    for (size_t i = 0; i < N_ELEMS(lines); i++) {
        struct pc_irc_msg m;
        assert_int_equal(parse_str(lines[i], &m), 0);
        assert_int_equal(m.ntags, 1);
    }
}

static void
test_params_max(void **state)
{
    struct pc_irc_msg m;

    assert_int_equal(parse_str("C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", &m), 0);
    assert_int_equal(m.nparams, PC_IRC_MAX_PARAMS);
    assert_slice(m.params[14], "15");
    assert_int_equal(
        parse_str("C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 and more", &m), 0);
    assert_slice(m.params[14], "15 and more");
    /* Trailing spaces after the 15th are not a 16th. */
    assert_int_equal(parse_str("C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15   ", &m),
                     0);
    assert_int_equal(m.nparams, PC_IRC_MAX_PARAMS);
}

static void
test_tags_max(void **state)
{
    char line[PC_IRC_MAX_TAGS * 4 + 16];
    size_t n = 0;
    struct pc_irc_msg m;

    line[n++] = '@';
    for (int i = 0; i < PC_IRC_MAX_TAGS; i++) {
        line[n++] = (char)('a' + i % 26);
        line[n++] = (char)('a' + i / 26);
        line[n++] = ';';
    }
    memcpy(line + n - 1, " PING", 5);
    n += 4;
    assert_int_equal(pc_irc_parse(line, n, &m), 0);
    assert_int_equal(m.ntags, PC_IRC_MAX_TAGS);
    /* One more. */
    memcpy(line + n - 5, ";zz PING", 8);
    n += 3;
    assert_int_equal(pc_irc_parse(line, n, &m), PC_IRC_ETOOMANY);
}

/* The body may hold 510 bytes (512 with CR LF), counted after the tags. */
static void
test_body_limit(void **state)
{
    char big[PC_IRC_LINE_MAX];
    struct pc_irc_msg m;

    memset(big, 'a', sizeof(big));
    memcpy(big, "PRIVMSG #c :", 12);
    assert_int_equal(pc_irc_parse(big, PC_IRC_BODY_MAX - 2, &m), 0);
    assert_int_equal(m.params[1].len, PC_IRC_BODY_MAX - 2 - 12);
    assert_int_equal(pc_irc_parse(big, PC_IRC_BODY_MAX - 1, &m),
                     PC_IRC_ETOOLONG);

    /* With a source, the source counts. */
    memcpy(big, ":nick!u@h PRIVMSG #c :", 22);
    assert_int_equal(pc_irc_parse(big, PC_IRC_BODY_MAX - 2, &m), 0);
    assert_int_equal(pc_irc_parse(big, PC_IRC_BODY_MAX - 1, &m),
                     PC_IRC_ETOOLONG);

    /* With tags, only the body counts towards 510. */
    memcpy(big, "@a=b PRIVMSG #c :", 17);
    assert_int_equal(pc_irc_parse(big, 5 + PC_IRC_BODY_MAX - 2, &m), 0);
    assert_int_equal(pc_irc_parse(big, 5 + PC_IRC_BODY_MAX - 1, &m),
                     PC_IRC_ETOOLONG);
}

/* Tag data may be 4094 bytes: 4096 with the '@' and the space. */
static void
test_tags_limit(void **state)
{
    char big[PC_IRC_CLIENT_TAGS_MAX + PC_IRC_BODY_MAX];
    struct pc_irc_msg m;
    size_t t = PC_IRC_CLIENT_TAGS_MAX;

    memset(big, 'v', sizeof(big));
    memcpy(big, "@a=", 3);
    big[t - 1] = ' ';
    memcpy(big + t, "PING x", 6);
    assert_int_equal(pc_irc_parse(big, t + 6, &m), 0);
    assert_int_equal(m.tags[0].value.len, t - 4);
    assert_slice(m.command, "PING");

    /* A full tag section and a full body together. */
    memset(big + t, 'b', PC_IRC_BODY_MAX - 2);
    memcpy(big + t, "PRIVMSG #c :", 12);
    assert_int_equal(pc_irc_parse(big, t + PC_IRC_BODY_MAX - 2, &m), 0);
    assert_int_equal(pc_irc_parse(big, t + PC_IRC_BODY_MAX - 1, &m),
                     PC_IRC_ETOOLONG);

    /* One byte more of tags. */
    big[t - 1] = 'v';
    big[t] = ' ';
    memcpy(big + t + 1, "PING x", 6);
    assert_int_equal(pc_irc_parse(big, t + 7, &m), PC_IRC_ETOOLONG);
}

static void
test_empty_values(void **state)
{
    struct pc_irc_msg m;

    /* "k" and "k=" both read as an empty value. */
    assert_int_equal(parse_str("@k;j= PING", &m), 0);
    assert_int_equal(m.ntags, 2);
    assert_int_equal(m.tags[0].value.len, 0);
    assert_int_equal(m.tags[1].value.len, 0);
    /* Empty pairs between ';' are skipped. */
    assert_int_equal(parse_str("@a=b\\sc;;d= :src CMD", &m), 0);
    assert_int_equal(m.ntags, 2);
    assert_slice(m.tags[0].value, "b\\sc");
    assert_int_equal(parse_str("@;a; PING", &m), 0);
    assert_int_equal(m.ntags, 1);
}

static void
test_lookup(void **state)
{
    struct pc_irc_msg m;

    assert_int_equal(parse_str("@label=a;+label=c;label=b PING x", &m), 0);
    assert_slice(pc_irc_msg_tag(&m, "label")->value, "b");
    assert_slice(pc_irc_msg_tag(&m, "+label")->value, "c");
    assert_null(pc_irc_msg_tag(&m, "labe"));
    assert_null(pc_irc_msg_tag(&m, "labels"));
    assert_null(pc_irc_msg_tag(&m, "LABEL"));
}

static void
test_cmd(void **state)
{
    struct pc_irc_msg m;

    assert_int_equal(parse_str("privmsg #a :b", &m), 0);
    assert_true(pc_irc_cmd_is(&m, "PRIVMSG"));
    assert_false(pc_irc_cmd_is(&m, "PRIVMS"));
    assert_false(pc_irc_cmd_is(&m, "PRIVMSGS"));
    assert_false(pc_irc_cmd_is(&m, "NOTICE"));
    assert_int_equal(parse_str("PrIvMsG #a :b", &m), 0);
    assert_true(pc_irc_cmd_is(&m, "PRIVMSG"));
    assert_int_equal(parse_str("001 me :hi", &m), 0);
    assert_true(pc_irc_cmd_is(&m, "001"));

    assert_true(pc_irc_cmd_valid("001", 3));
    assert_true(pc_irc_cmd_valid("a", 1));
    assert_true(pc_irc_cmd_valid("CHATHISTORY", 11));
    assert_false(pc_irc_cmd_valid("", 0));
    assert_false(pc_irc_cmd_valid("01", 2));
    assert_false(pc_irc_cmd_valid("0001", 4));
    assert_false(pc_irc_cmd_valid("0a1", 3));
    assert_false(pc_irc_cmd_valid("A1", 2));
    assert_false(pc_irc_cmd_valid("A B", 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_good_keys),  cmocka_unit_test(test_params_max),
        cmocka_unit_test(test_tags_max),   cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_tags_limit), cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_lookup),     cmocka_unit_test(test_cmd),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
