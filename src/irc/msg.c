#include "config.h"

#include <string.h>

#include "irc/irc.h"

/* Framing and parsing. Lines end at LF; a CR right before it is dropped.
 * A lone CR inside a line is kept and later rejected as a NUL would be:
 * clients must not be able to smuggle a line break to other clients. */

ssize_t
pc_irc_frame(const char *buf, size_t len, size_t max, size_t *line_len)
{
    size_t scan = len < max + 2 ? len : max + 2;
    const char *nl = memchr(buf, '\n', scan);

    if (nl == NULL) {
        return len > max + 1 ? PC_IRC_ETOOLONG : 0;
    }
    size_t n = (size_t)(nl - buf);
    size_t body = n;
    if (body > 0 && buf[body - 1] == '\r') {
        body--;
    }
    if (body > max) {
        return PC_IRC_ETOOLONG;
    }
    *line_len = body;
    return (ssize_t)(n + 1);
}

static bool
tag_key_valid(const char *p, size_t len)
{
    size_t i = 0;
    if (len == 0) {
        return false;
    }
    if (p[0] == '+') {
        i = 1;
    }
    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '/'
              || c == '_')) {
            return false;
        }
    }
    return true;
}

static int
parse_tags(const char *p, size_t len, struct pc_irc_msg *msg)
{
    size_t i = 0;

    while (i < len) {
        size_t start = i;
        while (i < len && p[i] != ';') {
            i++;
        }
        size_t end = i;
        if (i < len) {
            i++; /* skip ';' */
        }
        if (end == start) {
            continue; /* empty tag: "a;;b" or a trailing ';' */
        }
        const char *eq = memchr(p + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - (p + start)) : end - start;
        if (!tag_key_valid(p + start, klen)) {
            return PC_IRC_ESYNTAX;
        }
        if (msg->ntags == PC_IRC_MAX_TAGS) {
            return PC_IRC_ETOOMANY;
        }
        struct pc_irc_tag *t = &msg->tags[msg->ntags++];
        t->key.p = p + start;
        t->key.len = klen;
        if (eq != NULL) {
            t->value.p = eq + 1;
            t->value.len = (size_t)((p + end) - (eq + 1));
        } else {
            t->value.p = p + end;
            t->value.len = 0;
        }
    }
    return 0;
}

static bool
command_valid(const char *p, size_t len)
{
    if (len == 3 && p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9'
        && p[2] >= '0' && p[2] <= '9') {
        return true;
    }
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

int
pc_irc_parse(const char *line, size_t len, struct pc_irc_msg *msg)
{
    size_t i = 0;

    msg->ntags = 0;
    msg->nparams = 0;
    msg->source.p = line;
    msg->source.len = 0;
    msg->command.p = line;
    msg->command.len = 0;

    if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL
        || memchr(line, '\n', len) != NULL) {
        return PC_IRC_ESYNTAX;
    }
    while (i < len && line[i] == ' ') {
        i++;
    }
    if (i == len) {
        return PC_IRC_EEMPTY;
    }
    if (line[i] == '@') {
        size_t start = i + 1;
        while (i < len && line[i] != ' ') {
            i++;
        }
        /* '@' + tags + ' ' must fit the client tag budget. */
        if (i - start + 2 > PC_IRC_CLIENT_TAGS_MAX) {
            return PC_IRC_ETOOLONG;
        }
        int rc = parse_tags(line + start, i - start, msg);
        if (rc < 0) {
            return rc;
        }
        while (i < len && line[i] == ' ') {
            i++;
        }
    }
    /* The rest is the body: 512 bytes with CR LF. */
    if (len - i > PC_IRC_BODY_MAX - 2) {
        return PC_IRC_ETOOLONG;
    }
    if (i < len && line[i] == ':') {
        size_t start = ++i;
        while (i < len && line[i] != ' ') {
            i++;
        }
        msg->source.p = line + start;
        msg->source.len = i - start;
        if (msg->source.len == 0) {
            return PC_IRC_ESYNTAX;
        }
        while (i < len && line[i] == ' ') {
            i++;
        }
    }
    size_t cstart = i;
    while (i < len && line[i] != ' ') {
        i++;
    }
    msg->command.p = line + cstart;
    msg->command.len = i - cstart;
    if (!command_valid(msg->command.p, msg->command.len)) {
        return msg->command.len == 0 ? PC_IRC_EEMPTY : PC_IRC_ESYNTAX;
    }
    for (;;) {
        while (i < len && line[i] == ' ') {
            i++;
        }
        if (i >= len) {
            break;
        }
        if (msg->nparams == PC_IRC_MAX_PARAMS) {
            return PC_IRC_ETOOMANY;
        }
        struct pc_irc_str *p = &msg->params[msg->nparams++];
        if (line[i] == ':') {
            p->p = line + i + 1;
            p->len = len - i - 1;
            break;
        }
        size_t start = i;
        while (i < len && line[i] != ' ') {
            i++;
        }
        p->p = line + start;
        p->len = i - start;
    }
    return 0;
}

const struct pc_irc_tag *
pc_irc_msg_tag(const struct pc_irc_msg *msg, const char *key)
{
    size_t klen = strlen(key);
    /* The last occurrence wins, as the message-tags spec says. */
    for (size_t i = msg->ntags; i > 0; i--) {
        const struct pc_irc_tag *t = &msg->tags[i - 1];
        if (t->key.len == klen && memcmp(t->key.p, key, klen) == 0) {
            return t;
        }
    }
    return NULL;
}

bool
pc_irc_cmd_is(const struct pc_irc_msg *msg, const char *upper)
{
    size_t n = strlen(upper);
    if (msg->command.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = msg->command.p[i];
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        if (c != upper[i]) {
            return false;
        }
    }
    return true;
}

ssize_t
pc_irc_tag_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char e = 0;
        switch (src[i]) {
        case ';': e = ':'; break;
        case ' ': e = 's'; break;
        case '\\': e = '\\'; break;
        case '\r': e = 'r'; break;
        case '\n': e = 'n'; break;
        default: break;
        }
        if (e != 0) {
            if (o + 2 > cap) {
                return -1;
            }
            dst[o++] = '\\';
            dst[o++] = e;
        } else {
            if (o + 1 > cap) {
                return -1;
            }
            dst[o++] = src[i];
        }
    }
    return (ssize_t)o;
}

ssize_t
pc_irc_tag_unescape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\') {
            if (i + 1 == len) {
                break; /* a trailing lone backslash is dropped */
            }
            char n = src[++i];
            switch (n) {
            case ':': c = ';'; break;
            case 's': c = ' '; break;
            case '\\': c = '\\'; break;
            case 'r': c = '\r'; break;
            case 'n': c = '\n'; break;
            default: c = n; break;
            }
        }
        if (o + 1 > cap) {
            return -1;
        }
        dst[o++] = c;
    }
    return (ssize_t)o;
}
