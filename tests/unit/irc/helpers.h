/* Shared by the IRC unit tests. Include after <cmocka.h>. */
#ifndef PC_TESTS_UNIT_IRC_HELPERS_H
#define PC_TESTS_UNIT_IRC_HELPERS_H

#include <string.h>

#include "irc/irc.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A slice equals a C string. */
static inline void
assert_slice(struct pc_irc_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static inline int
parse_str(const char *line, struct pc_irc_msg *m)
{
    return pc_irc_parse(line, strlen(line), m);
}

/* The unescaped value of a tag, NUL-terminated, in a static buffer. */
static inline const char *
tag_value(const struct pc_irc_tag *t)
{
    static char out[PC_IRC_TAGS_MAX];
    ssize_t n = pc_irc_tag_unescape(out, sizeof(out) - 1, t->value.p,
                                    t->value.len);
    assert_true(n >= 0);
    out[n] = '\0';
    return out;
}

#endif
