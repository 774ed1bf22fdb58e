/* libFuzzer target: framing, parsing, tag unescaping and the serialiser.
 * Invariant: a parsed message serialised again parses to the same command,
 * parameters and tags. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "irc/irc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same_slice(struct pc_irc_str a, struct pc_irc_str b)
{
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
        abort();
    }
}

static void
check_roundtrip(const struct pc_irc_msg *m)
{
    struct pc_irc_line l;
    struct pc_irc_msg again;
    char cmd[64], src[PC_IRC_BODY_MAX];

    if (m->command.len >= sizeof(cmd) || m->source.len >= sizeof(src)) {
        return;
    }
    memcpy(cmd, m->command.p, m->command.len);
    cmd[m->command.len] = '\0';
    memcpy(src, m->source.p, m->source.len);
    src[m->source.len] = '\0';

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
    if (n < 0) {
        return; /* e.g. a tag section larger than a server may send */
    }
    if (n < 2 || l.buf[n - 2] != '\r' || l.buf[n - 1] != '\n') {
        abort();
    }
    if (pc_irc_parse(l.buf, (size_t)n - 2, &again) != 0) {
        abort();
    }
    same_slice(again.command, m->command);
    same_slice(again.source, m->source);
    if (again.nparams != m->nparams || again.ntags != m->ntags) {
        abort();
    }
    for (size_t i = 0; i < m->nparams; i++) {
        /* The serialiser may cut a long last parameter; compare prefixes. */
        if (i + 1 == m->nparams && again.params[i].len < m->params[i].len) {
            if (memcmp(again.params[i].p, m->params[i].p,
                       again.params[i].len) != 0) {
                abort();
            }
            continue;
        }
        same_slice(again.params[i], m->params[i]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;

    while (off < size) {
        size_t line_len = 0;
        ssize_t n = pc_irc_frame(buf + off, size - off, PC_IRC_LINE_MAX,
                                 &line_len);
        if (n == 0) {
            line_len = size - off; /* the unterminated tail, as one line */
            n = (ssize_t)line_len;
        } else if (n < 0) {
            const char *nl = memchr(buf + off, '\n', size - off);
            if (nl == NULL) {
                break;
            }
            off = (size_t)(nl - buf) + 1;
            continue;
        }
        struct pc_irc_msg m;
        if (pc_irc_parse(buf + off, line_len, &m) == 0) {
            char tmp[PC_IRC_LINE_MAX];
            for (size_t i = 0; i < m.ntags; i++) {
                ssize_t u = pc_irc_tag_unescape(tmp, sizeof(tmp),
                                                m.tags[i].value.p,
                                                m.tags[i].value.len);
                if (u < 0 || (size_t)u > m.tags[i].value.len) {
                    abort();
                }
            }
            (void)pc_utf8_valid(buf + off, line_len);
            check_roundtrip(&m);
        }
        off += (size_t)n;
    }
    return 0;
}
