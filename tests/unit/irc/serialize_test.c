/* The serialiser: vectors after the ircdocs parser tests (msg-join.yaml) in
 * our own tables, round trips through the parser, the limits and the cut of
 * a long last parameter at a UTF-8 boundary. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct join_case {
    const char *tags[3][2]; /* key, raw value (NULL: bare key) */
    const char *source;     /* NULL: none */
    const char *verb;
    const char *params[4]; /* up to the first NULL; the last is trailing */
    const char *want;      /* one of the lines msg-join accepts */
};

/* clang-format off */
static const struct join_case join_cases[] = {
    {{{0}}, NULL, "foo", {"bar", "baz", "asdf"}, "foo bar baz :asdf"},
    {{{0}}, "src", "AWAY", {0}, ":src AWAY"},
    {{{0}}, "src", "AWAY", {""}, ":src AWAY :"},
    {{{0}}, "coolguy", "foo", {"bar", "baz", "asdf"},
     ":coolguy foo bar baz :asdf"},
    {{{0}}, NULL, "foo", {"bar", "baz", "asdf quux"},
     "foo bar baz :asdf quux"},
    {{{0}}, NULL, "foo", {"bar", "baz", ""}, "foo bar baz :"},
    {{{0}}, NULL, "foo", {"bar", "baz", ":asdf"}, "foo bar baz ::asdf"},
    {{{0}}, "coolguy", "foo", {"bar", "baz", "  asdf quux "},
     ":coolguy foo bar baz :  asdf quux "},
    {{{0}}, "coolguy", "PRIVMSG", {"bar", "lol :) "},
     ":coolguy PRIVMSG bar :lol :) "},
    {{{0}}, "coolguy", "foo", {"bar", "baz", "  "}, ":coolguy foo bar baz :  "},
    {{{0}}, "coolguy", "foo", {"b\tar", "baz"}, ":coolguy foo b\tar :baz"},
    /* Tags: an empty value is written as a bare key. */
    {{{"asd", ""}}, "coolguy", "foo", {"bar", "baz", "  "},
     "@asd :coolguy foo bar baz :  "},
    {{{"asd", NULL}}, "coolguy", "foo", {"bar", "baz", "  "},
     "@asd :coolguy foo bar baz :  "},
    {{{"a", "b\\and\nk"}, {"d", "gh;764"}}, NULL, "foo", {0},
     "@a=b\\\\and\\nk;d=gh\\:764 foo"},
    {{{"a", "b\\and\nk"}, {"d", "gh;764"}}, NULL, "foo", {"par1", "par2"},
     "@a=b\\\\and\\nk;d=gh\\:764 foo par1 :par2"},
    {{{"foo", "\\\\;\\s \r\n"}}, NULL, "COMMAND", {0},
     "@foo=\\\\\\\\\\:\\\\s\\s\\r\\n COMMAND"},
    /* pchat's own. */
    {{{"time", "2026-01-01T00:00:00.000Z"}, {"+draft/reply", "x y"}},
     "nick!u@h", "PRIVMSG", {"#chan", "hello world"},
     "@time=2026-01-01T00:00:00.000Z;+draft/reply=x\\sy "
     ":nick!u@h PRIVMSG #chan :hello world"},
    {{{0}}, "irc.example", "001", {"alice", "Welcome"},
     ":irc.example 001 alice :Welcome"},
};

/* clang-format on */

static size_t
count_params(const char *const *params, size_t max)
{
    size_t n = 0;
    while (n < max && params[n] != NULL) {
        n++;
    }
    return n;
}

static ssize_t
build(const struct join_case *c, struct pc_irc_line *l)
{
    size_t np = count_params(c->params, N_ELEMS(c->params));

    pc_irc_line_init(l);
    for (size_t i = 0; i < N_ELEMS(c->tags) && c->tags[i][0] != NULL; i++) {
        const char *v = c->tags[i][1];
        pc_irc_line_tag(l, c->tags[i][0], v, v != NULL ? strlen(v) : 0);
    }
    if (c->source != NULL) {
        pc_irc_line_source(l, c->source);
    }
    pc_irc_line_cmd(l, c->verb);
    for (size_t i = 0; i < np; i++) {
        if (i + 1 < np) {
            pc_irc_line_param(l, c->params[i], strlen(c->params[i]));
        } else {
            pc_irc_line_trailing(l, c->params[i], strlen(c->params[i]));
        }
    }
    return pc_irc_line_end(l);
}

static void
test_join(void **state)
{
    for (size_t i = 0; i < N_ELEMS(join_cases); i++) {
        const struct join_case *c = &join_cases[i];
        struct pc_irc_line l;
        struct pc_irc_msg m;
        size_t np = count_params(c->params, N_ELEMS(c->params));

        print_message("# %s\n", c->want);
        ssize_t n = build(c, &l);
        assert_int_equal(n, strlen(c->want) + 2);
        assert_memory_equal(l.buf, c->want, strlen(c->want));
        assert_memory_equal(l.buf + n - 2, "\r\n", 2);

        /* And back: the same atoms. */
        assert_int_equal(pc_irc_parse(l.buf, (size_t)n - 2, &m), 0);
        assert_slice(m.source, c->source != NULL ? c->source : "");
        assert_slice(m.command, c->verb);
        assert_int_equal(m.nparams, np);
        for (size_t p = 0; p < np; p++) {
            assert_slice(m.params[p], c->params[p]);
        }
        for (size_t t = 0; t < m.ntags; t++) {
            const char *v = c->tags[t][1];
            assert_slice(m.tags[t].key, c->tags[t][0]);
            assert_string_equal(tag_value(&m.tags[t]), v != NULL ? v : "");
        }
    }
}

/* Tags as received go out as they came. */
static void
test_tag_raw(void **state)
{
    struct pc_irc_msg in;
    struct pc_irc_line l;
    const char *line = "@+a=x\\sy;+b;+example.com/c=\\: PRIVMSG #c :hi";

    assert_int_equal(parse_str(line, &in), 0);
    pc_irc_line_init(&l);
    for (size_t i = 0; i < in.ntags; i++) {
        pc_irc_line_tag_raw(&l, in.tags[i].key, in.tags[i].value);
    }
    pc_irc_line_cmd(&l, "PRIVMSG");
    pc_irc_line_param(&l, "#c", 2);
    pc_irc_line_trailing(&l, "hi", 2);
    ssize_t n = pc_irc_line_end(&l);
    assert_int_equal(n, strlen(line) + 2);
    assert_memory_equal(l.buf, line, strlen(line));
}

static ssize_t
one_error(int which)
{
    struct pc_irc_line l;
    struct pc_irc_str k = {"k", 1}, v = {"a b", 3}, kb = {"k=", 2};

    pc_irc_line_init(&l);
    switch (which) {
    case 0: /* no command */
        break;
    case 1: /* a source alone */
        pc_irc_line_source(&l, "s");
        break;
    case 2: /* a tag after the command */
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_tag(&l, "a", "b", 1);
        break;
    case 3: /* a source after the command */
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_source(&l, "s");
        break;
    case 4: /* two commands */
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_cmd(&l, "Y");
        break;
    case 5: /* a parameter before the command */
        pc_irc_line_param(&l, "p", 1);
        pc_irc_line_cmd(&l, "X");
        break;
    case 6: /* a parameter after the trailing one */
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_trailing(&l, "t", 1);
        pc_irc_line_param(&l, "p", 1);
        break;
    case 7: /* two trailing parameters */
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_trailing(&l, "t", 1);
        pc_irc_line_trailing(&l, "u", 1);
        break;
    case 8:
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_param(&l, "a b", 3);
        break;
    case 9:
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_param(&l, ":a", 2);
        break;
    case 10:
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_param(&l, "", 0);
        break;
    case 11:
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_param(&l, "a\r", 2);
        break;
    case 12:
        pc_irc_line_cmd(&l, "X");
        pc_irc_line_param(&l, "a\0b", 3);
        break;
    case 13: /* a line break smuggled in the text */
        pc_irc_line_cmd(&l, "PRIVMSG");
        pc_irc_line_param(&l, "#c", 2);
        pc_irc_line_trailing(&l, "hi\r\nQUIT :bye", 13);
        break;
    case 14:
        pc_irc_line_cmd(&l, "PRIVMSG");
        pc_irc_line_trailing(&l, "a\nb", 3);
        break;
    case 15: /* bad commands */
        pc_irc_line_cmd(&l, "PRIV MSG");
        break;
    case 16:
        pc_irc_line_cmd(&l, "");
        break;
    case 17:
        pc_irc_line_cmd(&l, "1234");
        break;
    case 18: /* bad sources */
        pc_irc_line_source(&l, "a b");
        pc_irc_line_cmd(&l, "X");
        break;
    case 19:
        pc_irc_line_source(&l, "");
        pc_irc_line_cmd(&l, "X");
        break;
    case 20: /* bad tag keys */
        pc_irc_line_tag(&l, "a b", "v", 1);
        pc_irc_line_cmd(&l, "X");
        break;
    case 21:
        pc_irc_line_tag(&l, "", NULL, 0);
        pc_irc_line_cmd(&l, "X");
        break;
    case 22: /* raw: a space in the value, '=' in the key */
        pc_irc_line_tag_raw(&l, k, v);
        pc_irc_line_cmd(&l, "X");
        break;
    case 23:
        pc_irc_line_tag_raw(&l, kb, v);
        pc_irc_line_cmd(&l, "X");
        break;
    default:
        fail();
    }
    return pc_irc_line_end(&l);
}

static void
test_errors(void **state)
{
    for (int i = 0; i <= 23; i++) {
        print_message("# error case %d\n", i);
        assert_int_equal(one_error(i), PC_IRC_ESYNTAX);
    }
}

static void
test_params_max(void **state)
{
    struct pc_irc_line l;

    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    for (int i = 0; i < PC_IRC_MAX_PARAMS - 1; i++) {
        pc_irc_line_param(&l, "p", 1);
    }
    pc_irc_line_trailing(&l, "last one", 8);
    assert_true(pc_irc_line_end(&l) > 0);
    assert_int_equal(l.nparams, PC_IRC_MAX_PARAMS);

    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    for (int i = 0; i < PC_IRC_MAX_PARAMS; i++) {
        pc_irc_line_param(&l, "p", 1);
    }
    pc_irc_line_trailing(&l, "one too many", 12);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ETOOMANY);
}

static void
test_end_twice(void **state)
{
    struct pc_irc_line l;

    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "PING");
    pc_irc_line_trailing(&l, "x", 1);
    assert_int_equal(pc_irc_line_end(&l), 9);
    assert_int_equal(pc_irc_line_end(&l), 9);
    assert_memory_equal(l.buf, "PING :x\r\n", 9);
}

/* A middle parameter that does not fit is an error; the first error stays. */
static void
test_too_long(void **state)
{
    static char p[PC_IRC_BODY_MAX];
    struct pc_irc_line l;

    memset(p, 'p', sizeof(p));
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, p, PC_IRC_BODY_MAX - 4); /* "X " + 508 = 510 */
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_BODY_MAX);

    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, p, PC_IRC_BODY_MAX - 3);
    pc_irc_line_param(&l, "a b", 3);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ETOOLONG);

    /* The source counts too. */
    pc_irc_line_init(&l);
    pc_irc_line_source(&l, "s");
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_param(&l, p, PC_IRC_BODY_MAX - 7);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_BODY_MAX);
}

/* Server tags: up to PC_IRC_TAGS_MAX with '@' and the space. */
static void
test_tags_limit(void **state)
{
    static char v[PC_IRC_TAGS_MAX];
    struct pc_irc_line l;
    size_t room = PC_IRC_TAGS_MAX - 4; /* "@k=" and ' ' */

    memset(v, 'v', sizeof(v));
    pc_irc_line_init(&l);
    pc_irc_line_tag(&l, "k", v, room);
    pc_irc_line_cmd(&l, "X");
    ssize_t n = pc_irc_line_end(&l);
    assert_int_equal(n, PC_IRC_TAGS_MAX + 1 + 2);
    assert_int_equal(l.body_start, PC_IRC_TAGS_MAX);

    pc_irc_line_init(&l);
    pc_irc_line_tag(&l, "k", v, room + 1);
    pc_irc_line_cmd(&l, "X");
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ETOOLONG);

    /* Escaping counts: a value of spaces doubles. */
    memset(v, ' ', sizeof(v));
    pc_irc_line_init(&l);
    pc_irc_line_tag(&l, "k", v, room / 2 + 1);
    pc_irc_line_cmd(&l, "X");
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_ETOOLONG);

    /* A full tag section and a full body in one line. */
    memset(v, 'v', sizeof(v));
    pc_irc_line_init(&l);
    pc_irc_line_tag(&l, "k", v, room);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_trailing(&l, v, PC_IRC_BODY_MAX);
    n = pc_irc_line_end(&l);
    assert_int_equal(n, PC_IRC_TAGS_MAX + PC_IRC_BODY_MAX);
    assert_true((size_t)n <= sizeof(l.buf));
}

/* Cuts of text made of `width`-byte characters, with every alignment: the
 * result is valid UTF-8, within the body limit, a prefix of the text, and
 * no more than a character shorter than the room. */
static void
check_cut(const char *ch, size_t width)
{
    static char text[1500];
    size_t n = 0;

    while (n + width <= sizeof(text)) {
        memcpy(text + n, ch, width);
        n += width;
    }
    for (size_t shift = 0; shift < width + 1; shift++) {
        struct pc_irc_line l;
        char target[8] = "#c";

        memset(target + 2, 'x', shift);
        target[2 + shift] = '\0';
        pc_irc_line_init(&l);
        pc_irc_line_source(&l, "s");
        pc_irc_line_cmd(&l, "PRIVMSG");
        pc_irc_line_param(&l, target, strlen(target));
        pc_irc_line_trailing(&l, text, n);
        ssize_t len = pc_irc_line_end(&l);

        size_t head = strlen(":s PRIVMSG ") + strlen(target) + 2;
        size_t room = PC_IRC_BODY_MAX - 2 - head;
        size_t kept = (size_t)len - 2 - head;
        assert_true(len > 0);
        assert_true((size_t)len <= PC_IRC_BODY_MAX);
        assert_memory_equal(l.buf + len - 2, "\r\n", 2);
        assert_true(pc_utf8_valid(l.buf, (size_t)len - 2));
        assert_memory_equal(l.buf + head, text, kept);
        assert_int_equal(kept % width, 0);
        assert_true(kept <= room && kept + width > room);
    }
}

static void
test_cut_utf8(void **state)
{
    check_cut("a", 1);
    check_cut("\xc3\xa9", 2);         /* é */
    check_cut("\xe2\x82\xac", 3);     /* € */
    check_cut("\xf0\x9f\x98\x80", 4); /* 😀 */
}

/* Text that fits exactly is not cut. */
static void
test_fits(void **state)
{
    static char text[PC_IRC_BODY_MAX];
    struct pc_irc_line l;

    memset(text, 't', sizeof(text));
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_trailing(&l, text, PC_IRC_BODY_MAX - 5); /* "X :" + 507 */
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_BODY_MAX);
    pc_irc_line_init(&l);
    pc_irc_line_cmd(&l, "X");
    pc_irc_line_trailing(&l, text, PC_IRC_BODY_MAX - 4);
    assert_int_equal(pc_irc_line_end(&l), PC_IRC_BODY_MAX);
    assert_int_equal(l.buf[PC_IRC_BODY_MAX - 3], 't');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),       cmocka_unit_test(test_tag_raw),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_params_max),
        cmocka_unit_test(test_end_twice),  cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_tags_limit), cmocka_unit_test(test_cut_utf8),
        cmocka_unit_test(test_fits),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
