/* Tag value escaping (IRCv3 message-tags) and tag key validation. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "irc/irc.h"

struct esc_case {
    const char *raw;
    const char *escaped;
};

/* Both ways: escape(raw) == escaped and unescape(escaped) == raw. */
/* clang-format off */
static const struct esc_case esc_cases[] = {
    {"", ""},
    {"plain", "plain"},
    {"a b", "a\\sb"},
    {"semi;colon", "semi\\:colon"},
    {"back\\slash", "back\\\\slash"},
    {"cr\rlf\n", "cr\\rlf\\n"},
    {"; \\\r\n", "\\:\\s\\\\\\r\\n"},
    {"b\\and\nk", "b\\\\and\\nk"},
    {"72 45", "72\\s45"},
    {"gh;764", "gh\\:764"},
    {"\\\\;\\s \r\n", "\\\\\\\\\\:\\\\s\\s\\r\\n"},
    {"value\\ntest", "value\\\\ntest"},
    {"a=b:c", "a=b:c"},
    {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9\\s\xe2\x82\xac"},
    {"\\", "\\\\"},
    {"  ", "\\s\\s"},
};

/* clang-format on */

static void
test_both_ways(void **state)
{
    char out[64];

    for (size_t i = 0; i < N_ELEMS(esc_cases); i++) {
        const struct esc_case *c = &esc_cases[i];
        ssize_t n = pc_irc_tag_escape(out, sizeof(out), c->raw, strlen(c->raw));
        assert_int_equal(n, strlen(c->escaped));
        assert_memory_equal(out, c->escaped, (size_t)n);
        n = pc_irc_tag_unescape(out, sizeof(out), c->escaped,
                                strlen(c->escaped));
        assert_int_equal(n, strlen(c->raw));
        assert_memory_equal(out, c->raw, (size_t)n);
    }
}

/* Only unescape: the lenient readings the spec asks for. */
/* clang-format off */
static const struct esc_case unesc_cases[] = {
    {"value1", "value\\1"},     /* unknown escape: the character */
    {"value1", "value1\\"},     /* trailing backslash: dropped */
    {"abc", "a\\bc\\"},
    {"", "\\"},
    {"\\", "\\\\\\"},
    {"x", "\\x"},
    {"S", "\\S"},               /* escapes are case-sensitive */
    {"N", "\\N"},
    {"t", "\\t"},
    {"=", "\\="},
    {"\\n", "\\\\n"},           /* one character at a time */
};

/* clang-format on */

static void
test_unescape_lenient(void **state)
{
    char out[64];

    for (size_t i = 0; i < N_ELEMS(unesc_cases); i++) {
        const struct esc_case *c = &unesc_cases[i];
        ssize_t n = pc_irc_tag_unescape(out, sizeof(out), c->escaped,
                                        strlen(c->escaped));
        assert_int_equal(n, strlen(c->raw));
        assert_memory_equal(out, c->raw, (size_t)n);
    }
}

static void
test_capacity(void **state)
{
    char out[8];

    /* Exactly enough, then one byte short. */
    assert_int_equal(pc_irc_tag_escape(out, 4, "a b", 3), 4);
    assert_int_equal(pc_irc_tag_escape(out, 3, "a b", 3), -1);
    assert_int_equal(pc_irc_tag_escape(out, 2, "a b", 3), -1);
    assert_int_equal(pc_irc_tag_escape(out, 1, ";", 1), -1);
    assert_int_equal(pc_irc_tag_escape(out, 0, "", 0), 0);
    assert_int_equal(pc_irc_tag_escape(out, 0, "a", 1), -1);
    assert_int_equal(pc_irc_tag_unescape(out, 3, "a\\sb", 4), 3);
    assert_int_equal(pc_irc_tag_unescape(out, 2, "a\\sb", 4), -1);
    assert_int_equal(pc_irc_tag_unescape(out, 0, "\\", 1), 0);
    assert_int_equal(pc_irc_tag_unescape(out, 0, "", 0), 0);
    assert_int_equal(pc_irc_tag_unescape(out, 0, "a", 1), -1);
}

/* Every byte value survives escape then unescape, and the escaped form
 * holds none of the bytes a tag value may not carry. */
static void
test_all_bytes(void **state)
{
    char raw[256], esc[512], back[256];

    for (int i = 0; i < 256; i++) {
        raw[i] = (char)i;
    }
    ssize_t n = pc_irc_tag_escape(esc, sizeof(esc), raw, sizeof(raw));
    assert_int_equal(n, 256 + 5);
    for (ssize_t i = 0; i < n; i++) {
        assert_true(esc[i] != ';' && esc[i] != ' ' && esc[i] != '\r'
                    && esc[i] != '\n');
    }
    ssize_t m = pc_irc_tag_unescape(back, sizeof(back), esc, (size_t)n);
    assert_int_equal(m, 256);
    assert_memory_equal(back, raw, 256);
}

static void
test_keys(void **state)
{
    /* clang-format off */
    static const char *const good[] = {
        "a",          "label",        "+typing",       "msgid",
        "draft/reply", "+draft/react", "example.com/x", "+example.com/a-b",
        "A-9",        "-",            "0",             "a.b-c.d/e-f",
        "x/y",        "+x-1.y/z",
    };
    /* clang-format on */
    /* clang-format off */
    static const char *const bad[] = {
        "",      "+",     "++a",    "a+",     "/",       "/a",   "a/",
        "+/a",   "a/b/c", "a_b",    "a.b",    "ex_am/x", "a b",  "a;b",
        "a=b",   "a\\b",  "\xc3\xa9", "a/b.c", "@a",      "a/+b", ".",
    };
    /* clang-format on */
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        print_message("# good %s\n", good[i]);
        assert_true(pc_irc_tag_key_valid(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        print_message("# bad %s\n", bad[i]);
        assert_false(pc_irc_tag_key_valid(bad[i], strlen(bad[i])));
    }
    /* The length is honoured: a prefix of a bad key can be good. */
    assert_true(pc_irc_tag_key_valid("ab_c", 2));
    assert_false(pc_irc_tag_key_valid("a\0b", 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_ways),
        cmocka_unit_test(test_unescape_lenient),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_all_bytes),
        cmocka_unit_test(test_keys),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
