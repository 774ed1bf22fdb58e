/* Serialiser, tag escaping, casemapping, UTF-8 and name validation. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "irc/irc.h"

static void
test_escape_roundtrip(void **state)
{
    static const struct {
        const char *raw;
        const char *escaped;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"a b", "a\\sb"},
        {"semi;colon", "semi\\:colon"},
        {"back\\slash", "back\\\\slash"},
        {"cr\rlf\n", "cr\\rlf\\n"},
        {"; \\\r\n", "\\:\\s\\\\\\r\\n"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ssize_t n = pc_irc_tag_escape(out, sizeof(out), cases[i].raw,
                                      strlen(cases[i].raw));
        assert_int_equal(n, strlen(cases[i].escaped));
        assert_memory_equal(out, cases[i].escaped, (size_t)n);
        n = pc_irc_tag_unescape(out, sizeof(out), cases[i].escaped,
                                strlen(cases[i].escaped));
        assert_int_equal(n, strlen(cases[i].raw));
        assert_memory_equal(out, cases[i].raw, (size_t)n);
    }
    /* Unknown escapes keep the character; a lone trailing '\' is dropped. */
    ssize_t n = pc_irc_tag_unescape(out, sizeof(out), "a\\bc\\", 5);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "abc", 3);
    /* No room: -1. */
    assert_int_equal(pc_irc_tag_escape(out, 2, "a b", 3), -1);
}

static void
test_serialize(void **state)
{
    struct pc_irc_line l;
    struct pc_irc_msg m;

    pc_irc_line_init(&l);
    pc_irc_line_tag(&l, "time", "2026-01-01T00:00:00.000Z", 24);
    pc_irc_line_tag(&l, "label", "a b;c", 5);
    pc_irc_line_source(&l, "nick!u@h");
    pc_irc_line_cmd(&l, "PRIVMSG");
    pc_irc_line_param(&l, "#chan", 5);
    pc_irc_line_trailing(&l, "hello world", 11);
    ssize_t n = pc_irc_line_end(&l);
    const char *want = "@time=2026-01-01T00:00:00.000Z;label=a\\sb\\:c "
                       ":nick!u@h PRIVMSG #chan :hello world\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(l.buf, want, (size_t)n);

    /* Round trip through the parser. */
    assert_int_equal(pc_irc_parse(l.buf, (size_t)n - 2, &m), 0);
    assert_int_equal(m.ntags, 2);
    assert_int_equal(m.nparams, 2);
    char v[16];
    ssize_t vn = pc_irc_tag_unescape(v, sizeof(v), m.tags[1].value.p,
                                     m.tags[1].value.len);
    assert_int_equal(vn, 5);
    assert_memory_equal(v, "a b;c", 5);

    /* Bad middle parameters. */
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, "a b", 3);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ESYNTAX);
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, ":a", 2);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ESYNTAX);
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, "", 0);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ESYNTAX);
}

static void
test_truncate_utf8(void **state)
{
    struct pc_irc_line l;
    char text[1200];
    /* "é" is two bytes: a cut must not split it. */
    for (size_t i = 0; i + 1 < sizeof(text); i += 2) {
        text[i] = (char)0xC3;
        text[i + 1] = (char)0xA9;
    }
    pc_irc_line_init(&l);
    pc_irc_line_source(&l, "s");
    pc_irc_line_cmd(&l, "PRIVMSG");
    pc_irc_line_param(&l, "#c", 2);
    pc_irc_line_trailing(&l, text, sizeof(text));
    ssize_t n = pc_irc_line_end(&l);
    assert_true(n > 0);
    assert_true((size_t)n <= PC_IRC_BODY_MAX);
    assert_true(pc_utf8_valid(l.buf, (size_t)n - 2));
    assert_memory_equal(l.buf + n - 2, "\r\n", 2);
}

static void
test_casemap(void **state)
{
    char out[32];
    pc_irc_casefold(out, "Nick[]\\^", 8);
    assert_string_equal(out, "nick{}|~");
    assert_int_equal(pc_irc_casecmp("FOO[x]", "foo{X}"), 0);
    assert_true(pc_irc_casecmp("a", "b") < 0);
    assert_true(pc_irc_casecmp("abc", "ab") > 0);
    assert_int_equal(pc_irc_fold_char('_'), '_');
}

static void
test_utf8(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"ascii", true},
        {"caf\xc3\xa9", true},
        {"\xe2\x82\xac", true},            /* euro sign */
        {"\xf0\x9f\x98\x80", true},        /* emoji */
        {"\xf4\x8f\xbf\xbf", true},        /* U+10FFFF */
        {"\xc3", false},                   /* truncated */
        {"\xc0\xaf", false},               /* overlong '/' */
        {"\xe0\x80\xaf", false},           /* overlong */
        {"\xf0\x80\x80\xaf", false},       /* overlong */
        {"\xed\xa0\x80", false},           /* surrogate */
        {"\xf4\x90\x80\x80", false},       /* > U+10FFFF */
        {"\xff", false},
        {"\x80", false},                   /* lone continuation */
        {"a\xe2\x82", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pc_utf8_valid(cases[i].s, strlen(cases[i].s)),
                         cases[i].ok);
    }
}

static void
test_names(void **state)
{
    assert_true(pc_irc_nick_valid("alice", 5, 30));
    assert_true(pc_irc_nick_valid("[a]-b_c^", 8, 30));
    assert_false(pc_irc_nick_valid("1abc", 4, 30));
    assert_false(pc_irc_nick_valid("-abc", 4, 30));
    assert_false(pc_irc_nick_valid("a b", 3, 30));
    assert_false(pc_irc_nick_valid("a!b", 3, 30));
    assert_false(pc_irc_nick_valid("", 0, 30));
    assert_false(pc_irc_nick_valid("abcdef", 6, 5));
    assert_true(pc_irc_chan_valid("#a", 2, 64));
    assert_true(pc_irc_chan_valid("#caf\xc3\xa9", 6, 64));
    assert_false(pc_irc_chan_valid("#", 1, 64));
    assert_false(pc_irc_chan_valid("a", 1, 64));
    assert_false(pc_irc_chan_valid("#a,b", 4, 64));
    assert_false(pc_irc_chan_valid("#a b", 4, 64));
    assert_false(pc_irc_chan_valid("#a\a", 3, 64));
    assert_false(pc_irc_chan_valid("#\xff", 2, 64));
    assert_false(pc_irc_chan_valid("#abcdef", 7, 5));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_serialize),
        cmocka_unit_test(test_truncate_utf8),
        cmocka_unit_test(test_casemap),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_names),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
