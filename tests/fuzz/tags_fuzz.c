/* libFuzzer target: tag value escaping and tag keys.
 * - unescape(escape(x)) == x, and escape(x) holds no ';', ' ', CR or LF;
 * - unescape never grows its input, and escaping what it gives back then
 *   unescaping again gives the same bytes;
 * - a tag section built as "@<data> PING" either parses into tags whose keys
 *   pass pc_irc_tag_key_valid(), or fails with a parser error;
 * - too small an output buffer gives -1, never a write past it. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "irc/irc.h"

#define MAX_IN 4096

static void
check_escape(const char *in, size_t size)
{
    static char esc[2 * MAX_IN], back[MAX_IN];

    ssize_t e = pc_irc_tag_escape(esc, sizeof(esc), in, size);
    fuzz_check(e >= 0 && (size_t)e >= size && (size_t)e <= 2 * size);
    for (ssize_t i = 0; i < e; i++) {
        fuzz_check(esc[i] != ';' && esc[i] != ' ' && esc[i] != '\r'
                   && esc[i] != '\n');
    }
    ssize_t u = pc_irc_tag_unescape(back, sizeof(back), esc, (size_t)e);
    fuzz_check(u == (ssize_t)size && memcmp(back, in, size) == 0);

    /* One byte short of the escaped length must fail cleanly. */
    if (e > 0) {
        fuzz_check(pc_irc_tag_escape(esc, (size_t)e - 1, in, size) == -1);
    }
}

static void
check_unescape(const char *in, size_t size)
{
    static char out[MAX_IN], esc[2 * MAX_IN], back[MAX_IN];

    ssize_t u = pc_irc_tag_unescape(out, sizeof(out), in, size);
    fuzz_check(u >= 0 && (size_t)u <= size);
    ssize_t e = pc_irc_tag_escape(esc, sizeof(esc), out, (size_t)u);
    fuzz_check(e >= 0);
    ssize_t b = pc_irc_tag_unescape(back, sizeof(back), esc, (size_t)e);
    fuzz_check(b == u && memcmp(back, out, (size_t)u) == 0);
    if (u > 0) {
        fuzz_check(pc_irc_tag_unescape(out, (size_t)u - 1, in, size) == -1);
    }
}

static void
check_section(const char *in, size_t size)
{
    static char line[MAX_IN + 8];
    static struct pc_irc_msg m;

    line[0] = '@';
    memcpy(line + 1, in, size);
    memcpy(line + 1 + size, " PING", 5);
    int rc = pc_irc_parse(line, size + 6, &m);
    if (pc_irc_tag_key_valid(in, size)) {
        fuzz_check(rc == 0 && m.ntags == 1 && m.tags[0].key.len == size);
    }
    if (rc != 0) {
        fuzz_check(rc == PC_IRC_ESYNTAX || rc == PC_IRC_ETOOMANY
                   || rc == PC_IRC_ETOOLONG || rc == PC_IRC_EEMPTY);
        return;
    }
    for (size_t i = 0; i < m.ntags; i++) {
        const struct pc_irc_tag *t = &m.tags[i];
        fuzz_check(pc_irc_tag_key_valid(t->key.p, t->key.len));
        fuzz_check(memchr(t->value.p, ';', t->value.len) == NULL);
        fuzz_check(memchr(t->value.p, ' ', t->value.len) == NULL);
    }
    /* The key check agrees with the parser on a lone key. */
    if (memchr(in, ';', size) == NULL && memchr(in, '=', size) == NULL
        && memchr(in, ' ', size) == NULL) {
        fuzz_check(m.ntags == 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    if (size > MAX_IN) {
        return 0;
    }
    check_escape(in, size);
    check_unescape(in, size);
    check_section(in, size);
    (void)pc_irc_tag_key_valid(in, size);
    return 0;
}
