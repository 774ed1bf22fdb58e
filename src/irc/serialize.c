#include "config.h"

#include "irc/irc.h"

#include <string.h>

/* Builds one line into a fixed buffer:
 *
 *   [ '@' tags ' ' ] [ ':' source ' ' ] command *( ' ' param ) [ " :" last ]
 *   CR LF
 *
 * The tag section may use PC_IRC_TAGS_MAX bytes with its '@' and space; the
 * body PC_IRC_BODY_MAX with its CR LF. The first error is kept in err and
 * later calls do nothing, so callers check once at pc_irc_line_end(). */

void
pc_irc_line_init(struct pc_irc_line *l)
{
    l->len = 0;
    l->body_start = 0;
    l->in_body = false;
    l->ntags = 0;
    l->nparams = 0;
    l->err = 0;
    l->has_cmd = false;
    l->has_trailing = false;
}

static void
fail(struct pc_irc_line *l, int err)
{
    if (l->err == 0) {
        l->err = err;
    }
}

static void
put(struct pc_irc_line *l, const char *p, size_t n, size_t limit)
{
    if (l->err != 0) {
        return;
    }
    if (n > limit - l->len) {
        l->err = PC_IRC_ETOOLONG;
        return;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

/* True if p[0..len) holds a byte of `bad` (a NUL-terminated set, where NUL
 * itself is always bad). */
static bool
has_any(const char *p, size_t len, const char *bad)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\0' || strchr(bad, p[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* The tag section, "@k=v;k2=v2", keeps room for the space after it. */
#define TAGS_LIMIT (PC_IRC_TAGS_MAX - 1)

static void
tag_begin(struct pc_irc_line *l)
{
    if (l->in_body) {
        fail(l, PC_IRC_ESYNTAX); /* tags after the source or command */
    }
    put(l, l->ntags == 0 ? "@" : ";", 1, TAGS_LIMIT);
    l->ntags++;
}

void
pc_irc_line_tag(struct pc_irc_line *l, const char *key, const char *value,
                size_t value_len)
{
    size_t klen = strlen(key);

    if (!pc_irc_tag_key_valid(key, klen)) {
        fail(l, PC_IRC_ESYNTAX);
    }
    tag_begin(l);
    put(l, key, klen, TAGS_LIMIT);
    if (value == NULL || value_len == 0) {
        return;
    }
    put(l, "=", 1, TAGS_LIMIT);
    if (l->err != 0) {
        return;
    }
    ssize_t n = pc_irc_tag_escape(l->buf + l->len, TAGS_LIMIT - l->len, value,
                                  value_len);
    if (n < 0) {
        fail(l, PC_IRC_ETOOLONG);
        return;
    }
    l->len += (size_t)n;
}

void
pc_irc_line_tag_raw(struct pc_irc_line *l, struct pc_irc_str key,
                    struct pc_irc_str value)
{
    if (key.len == 0 || has_any(key.p, key.len, " ;=\r\n")
        || has_any(value.p, value.len, " ;\r\n")) {
        fail(l, PC_IRC_ESYNTAX);
    }
    tag_begin(l);
    put(l, key.p, key.len, TAGS_LIMIT);
    if (value.len > 0) {
        put(l, "=", 1, TAGS_LIMIT);
        put(l, value.p, value.len, TAGS_LIMIT);
    }
}

static void
body_begin(struct pc_irc_line *l)
{
    if (l->in_body || l->err != 0) {
        return;
    }
    if (l->ntags > 0) {
        put(l, " ", 1, PC_IRC_TAGS_MAX);
    }
    l->body_start = l->len;
    l->in_body = true;
}

/* The body may hold PC_IRC_BODY_MAX - 2 bytes before CR LF. */
static size_t
body_limit(const struct pc_irc_line *l)
{
    return l->body_start + PC_IRC_BODY_MAX - 2;
}

void
pc_irc_line_source(struct pc_irc_line *l, const char *source)
{
    size_t n = strlen(source);

    body_begin(l);
    if (l->len != l->body_start || n == 0 || has_any(source, n, " \r\n")) {
        fail(l, PC_IRC_ESYNTAX); /* not first in the body, or a bad source */
    }
    put(l, ":", 1, body_limit(l));
    put(l, source, n, body_limit(l));
    put(l, " ", 1, body_limit(l));
}

void
pc_irc_line_cmd(struct pc_irc_line *l, const char *command)
{
    size_t n = strlen(command);

    body_begin(l);
    if (l->has_cmd || !pc_irc_cmd_valid(command, n)) {
        fail(l, PC_IRC_ESYNTAX);
    }
    put(l, command, n, body_limit(l));
    l->has_cmd = true;
}

/* Checks that a parameter may come now. */
static void
param_begin(struct pc_irc_line *l)
{
    if (!l->has_cmd || l->has_trailing) {
        fail(l, PC_IRC_ESYNTAX);
    } else if (l->nparams == PC_IRC_MAX_PARAMS) {
        fail(l, PC_IRC_ETOOMANY);
    }
    l->nparams++;
}

void
pc_irc_line_param(struct pc_irc_line *l, const char *p, size_t len)
{
    param_begin(l);
    if (len == 0 || p[0] == ':' || has_any(p, len, " \r\n")) {
        fail(l, PC_IRC_ESYNTAX);
    }
    put(l, " ", 1, body_limit(l));
    put(l, p, len, body_limit(l));
}

void
pc_irc_line_trailing(struct pc_irc_line *l, const char *p, size_t len)
{
    param_begin(l);
    if (has_any(p, len, "\r\n")) {
        fail(l, PC_IRC_ESYNTAX);
    }
    l->has_trailing = true;
    put(l, " :", 2, body_limit(l));
    if (l->err != 0) {
        return;
    }
    /* Text past the limit is cut at a UTF-8 character boundary. */
    len = pc_utf8_cut(p, len, body_limit(l) - l->len);
    put(l, p, len, body_limit(l));
}

ssize_t
pc_irc_line_end(struct pc_irc_line *l)
{
    if (l->err != 0) {
        return l->err;
    }
    if (!l->has_cmd) {
        return PC_IRC_ESYNTAX;
    }
    if (l->len >= 2 && l->buf[l->len - 1] == '\n') {
        return (ssize_t)l->len; /* ended already: no LF can be in the body */
    }
    /* The buffer always has room: the body limit keeps two bytes back. */
    l->buf[l->len++] = '\r';
    l->buf[l->len++] = '\n';
    return (ssize_t)l->len;
}
