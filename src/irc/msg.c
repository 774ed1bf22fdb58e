#include "config.h"

#include "irc/irc.h"

#include <string.h>

/* Framing and parsing (Modern IRC Client Protocol, "Message format", and the
 * IRCv3 message-tags spec).
 *
 * Lines end at LF; a CR right before it is dropped. A CR on its own is not a
 * terminator: it stays in the line and pc_irc_parse() rejects the line, as it
 * does a NUL. Treating a bare CR as a line break would let one client's text
 * end a line early in the view of some other client. */

ssize_t
pc_irc_frame(const char *buf, size_t len, size_t max, size_t *line_len)
{
    size_t scan = len < max + 2 ? len : max + 2;
    const char *nl = memchr(buf, '\n', scan);

    if (nl == NULL) {
        if (len > max + 1 || (len == max + 1 && buf[max] != '\r')) {
            return PC_IRC_ETOOLONG;
        }
        return 0;
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

static size_t
skip_spaces(const char *line, size_t len, size_t i)
{
    while (i < len && line[i] == ' ') {
        i++;
    }
    return i;
}

static size_t
skip_word(const char *line, size_t len, size_t i)
{
    while (i < len && line[i] != ' ') {
        i++;
    }
    return i;
}

/* "key[=value]" pairs separated by ';'. Empty pairs ("a;;b", a trailing
 * ';') are skipped, but the section must hold at least one tag. */
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
            i++; /* the ';' */
        }
        if (end == start) {
            continue;
        }
        const char *eq = memchr(p + start, '=', end - start);
        size_t klen = eq != NULL ? (size_t)(eq - (p + start)) : end - start;
        if (!pc_irc_tag_key_valid(p + start, klen)) {
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
    return msg->ntags == 0 ? PC_IRC_ESYNTAX : 0;
}

bool
pc_irc_cmd_valid(const char *p, size_t len)
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

/* Middle parameters are separated by one or more spaces; a parameter that
 * starts with ':' is the last one and runs to the end of the line, spaces
 * and all (it may be empty). */
static int
parse_params(const char *line, size_t len, size_t i, struct pc_irc_msg *msg)
{
    for (;;) {
        i = skip_spaces(line, len, i);
        if (i >= len) {
            return 0;
        }
        if (msg->nparams == PC_IRC_MAX_PARAMS) {
            return PC_IRC_ETOOMANY;
        }
        struct pc_irc_str *p = &msg->params[msg->nparams++];
        if (line[i] == ':') {
            p->p = line + i + 1;
            p->len = len - i - 1;
            return 0;
        }
        size_t start = i;
        i = skip_word(line, len, i);
        p->p = line + start;
        p->len = i - start;
    }
}

int
pc_irc_parse(const char *line, size_t len, struct pc_irc_msg *msg)
{
    size_t i;

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
    i = skip_spaces(line, len, 0);
    if (i == len) {
        return PC_IRC_EEMPTY;
    }
    if (line[i] == '@') {
        size_t start = i + 1;
        i = skip_word(line, len, start);
        /* '@', the tag data and one space within the client budget. */
        if (i - start + 2 > PC_IRC_CLIENT_TAGS_MAX) {
            return PC_IRC_ETOOLONG;
        }
        int rc = parse_tags(line + start, i - start, msg);
        if (rc < 0) {
            return rc;
        }
        i = skip_spaces(line, len, i);
    }
    /* The rest is the body: PC_IRC_BODY_MAX bytes with CR LF. */
    if (len - i > PC_IRC_BODY_MAX - 2) {
        return PC_IRC_ETOOLONG;
    }
    if (i < len && line[i] == ':') {
        size_t start = ++i;
        i = skip_word(line, len, i);
        msg->source.p = line + start;
        msg->source.len = i - start;
        if (msg->source.len == 0) {
            return PC_IRC_ESYNTAX;
        }
        i = skip_spaces(line, len, i);
    }
    size_t cstart = i;
    i = skip_word(line, len, i);
    msg->command.p = line + cstart;
    msg->command.len = i - cstart;
    if (!pc_irc_cmd_valid(msg->command.p, msg->command.len)) {
        return PC_IRC_ESYNTAX;
    }
    return parse_params(line, len, i, msg);
}

const struct pc_irc_tag *
pc_irc_msg_tag(const struct pc_irc_msg *msg, const char *key)
{
    size_t klen = strlen(key);

    /* The last occurrence wins. */
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
