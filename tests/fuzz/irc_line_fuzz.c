/* libFuzzer target: framing, parsing and the serialiser over a stream of
 * lines. Invariants:
 * - a framed line is shorter than what it consumes and within the limit;
 * - a parsed message serialises without error, to one line with no NUL,
 *   CR or LF before its CR LF, and parses again to the same tags, source,
 *   command and parameters (the last may be cut to a prefix when the ':'
 *   the serialiser adds pushes it past the body limit). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "irc/irc.h"

static bool
same(struct pc_irc_str a, struct pc_irc_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* a copy of the slice as a C string; the parser never lets a NUL in. */
static void
cstr(char *dst, struct pc_irc_str s)
{
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
}

static void
check_roundtrip(const struct pc_irc_msg *m)
{
    static struct pc_irc_line l;
    static struct pc_irc_msg again;
    char cmd[PC_IRC_BODY_MAX], src[PC_IRC_BODY_MAX];

    cstr(cmd, m->command);
    cstr(src, m->source);
    pc_irc_line_init(&l);
    for (size_t i = 0; i < m->ntags; i++) {
        pc_irc_line_tag_raw(&l, m->tags[i].key, m->tags[i].value);
    }
    if (m->source.len > 0) {
        pc_irc_line_source(&l, src);
    }
    pc_irc_line_cmd(&l, cmd);
    for (size_t i = 0; i < m->nparams; i++) {
        if (i + 1 == m->nparams) {
            pc_irc_line_trailing(&l, m->params[i].p, m->params[i].len);
        } else {
            pc_irc_line_param(&l, m->params[i].p, m->params[i].len);
        }
    }
    ssize_t n = pc_irc_line_end(&l);
    fuzz_check(n >= 2 && (size_t)n <= sizeof(l.buf));
    fuzz_check(l.buf[n - 2] == '\r' && l.buf[n - 1] == '\n');
    fuzz_check((size_t)n - l.body_start <= PC_IRC_BODY_MAX);
    size_t len = (size_t)n - 2;
    fuzz_check(memchr(l.buf, '\0', len) == NULL
               && memchr(l.buf, '\r', len) == NULL
               && memchr(l.buf, '\n', len) == NULL);

    fuzz_check(pc_irc_parse(l.buf, len, &again) == 0);
    fuzz_check(same(again.command, m->command));
    fuzz_check(same(again.source, m->source));
    fuzz_check(again.ntags == m->ntags && again.nparams == m->nparams);
    for (size_t i = 0; i < m->ntags; i++) {
        fuzz_check(same(again.tags[i].key, m->tags[i].key));
        fuzz_check(same(again.tags[i].value, m->tags[i].value));
    }
    for (size_t i = 0; i < m->nparams; i++) {
        struct pc_irc_str a = again.params[i], b = m->params[i];
        if (i + 1 == m->nparams && a.len < b.len) {
            fuzz_check(memcmp(a.p, b.p, a.len) == 0);
            fuzz_check(b.len - a.len <= 4); /* the ':' and a split character */
        } else {
            fuzz_check(same(a, b));
        }
    }
}

static void
check_tags(const struct pc_irc_msg *m)
{
    static char tmp[PC_IRC_LINE_MAX];

    for (size_t i = 0; i < m->ntags; i++) {
        const struct pc_irc_tag *t = &m->tags[i];
        fuzz_check(pc_irc_tag_key_valid(t->key.p, t->key.len));
        ssize_t u =
            pc_irc_tag_unescape(tmp, sizeof(tmp), t->value.p, t->value.len);
        fuzz_check(u >= 0 && (size_t)u <= t->value.len);
        /* The lookup finds this key, at this place or a later one. */
        char key[PC_IRC_CLIENT_TAGS_MAX];
        cstr(key, t->key);
        const struct pc_irc_tag *found = pc_irc_msg_tag(m, key);
        fuzz_check(found != NULL && found >= t && same(found->key, t->key));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;

    while (off < size) {
        size_t line_len = 0;
        ssize_t n =
            pc_irc_frame(buf + off, size - off, PC_IRC_LINE_MAX, &line_len);
        if (n == 0) {
            line_len = size - off; /* the unterminated tail, as one line */
            n = (ssize_t)line_len;
        } else if (n < 0) {
            fuzz_check(n == PC_IRC_ETOOLONG);
            const char *nl = memchr(buf + off, '\n', size - off);
            if (nl == NULL) {
                break;
            }
            off = (size_t)(nl - buf) + 1;
            continue;
        } else {
            fuzz_check(line_len < (size_t)n && line_len <= PC_IRC_LINE_MAX);
        }
        static struct pc_irc_msg m;
        int rc = pc_irc_parse(buf + off, line_len, &m);
        if (rc == 0) {
            fuzz_check(pc_irc_cmd_valid(m.command.p, m.command.len));
            fuzz_check(m.nparams <= PC_IRC_MAX_PARAMS);
            fuzz_check(m.ntags <= PC_IRC_MAX_TAGS);
            check_tags(&m);
            (void)pc_utf8_valid(buf + off, line_len);
            check_roundtrip(&m);
        } else {
            fuzz_check(rc == PC_IRC_EEMPTY || rc == PC_IRC_ESYNTAX
                       || rc == PC_IRC_ETOOMANY || rc == PC_IRC_ETOOLONG);
        }
        off += (size_t)n;
    }
    return 0;
}
