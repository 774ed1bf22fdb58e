#include "config.h"

#include <string.h>

#include "irc/irc.h"

/* Builds one line into a fixed buffer. The first component that does not
 * fit sets err; later calls then do nothing, so callers check once at
 * pc_irc_line_end(). */

void
pc_irc_line_init(struct pc_irc_line *l)
{
    l->len = 0;
    l->body_start = 0;
    l->in_body = false;
    l->ntags = 0;
    l->nparams = 0;
    l->err = 0;
}

static void
put(struct pc_irc_line *l, const char *p, size_t n, size_t limit)
{
    if (l->err != 0) {
        return;
    }
    if (l->len + n > limit) {
        l->err = PC_IRC_ETOOLONG;
        return;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

/* Tag section: "@k=v;k2=v2 " within PC_IRC_TAGS_MAX bytes. */
static void
tag_begin(struct pc_irc_line *l)
{
    if (l->err == 0 && l->in_body) {
        l->err = PC_IRC_ESYNTAX; /* tags after the source or command */
        return;
    }
    put(l, l->ntags == 0 ? "@" : ";", 1, PC_IRC_TAGS_MAX - 1);
}

void
pc_irc_line_tag(struct pc_irc_line *l, const char *key, const char *value,
                size_t value_len)
{
    tag_begin(l);
    put(l, key, strlen(key), PC_IRC_TAGS_MAX - 1);
    if (value != NULL && value_len > 0 && l->err == 0) {
        put(l, "=", 1, PC_IRC_TAGS_MAX - 1);
        if (l->err == 0) {
            size_t room = PC_IRC_TAGS_MAX - 1 - l->len;
            ssize_t n = pc_irc_tag_escape(l->buf + l->len, room, value,
                                          value_len);
            if (n < 0) {
                l->err = PC_IRC_ETOOLONG;
            } else {
                l->len += (size_t)n;
            }
        }
    }
    l->ntags++;
}

void
pc_irc_line_tag_raw(struct pc_irc_line *l, struct pc_irc_str key,
                    struct pc_irc_str value)
{
    tag_begin(l);
    put(l, key.p, key.len, PC_IRC_TAGS_MAX - 1);
    if (value.len > 0) {
        put(l, "=", 1, PC_IRC_TAGS_MAX - 1);
        put(l, value.p, value.len, PC_IRC_TAGS_MAX - 1);
    }
    l->ntags++;
}

static void
body_begin(struct pc_irc_line *l)
{
    if (!l->in_body && l->err == 0) {
        if (l->ntags > 0) {
            put(l, " ", 1, PC_IRC_TAGS_MAX);
        }
        l->body_start = l->len;
        l->in_body = true;
    }
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
    body_begin(l);
    if (l->len != l->body_start && l->err == 0) {
        l->err = PC_IRC_ESYNTAX;
        return;
    }
    put(l, ":", 1, body_limit(l));
    put(l, source, strlen(source), body_limit(l));
    put(l, " ", 1, body_limit(l));
}

void
pc_irc_line_cmd(struct pc_irc_line *l, const char *command)
{
    body_begin(l);
    put(l, command, strlen(command), body_limit(l));
}

void
pc_irc_line_param(struct pc_irc_line *l, const char *p, size_t len)
{
    if (l->err != 0) {
        return;
    }
    if (len == 0 || p[0] == ':' || memchr(p, ' ', len) != NULL) {
        l->err = PC_IRC_ESYNTAX;
        return;
    }
    put(l, " ", 1, body_limit(l));
    put(l, p, len, body_limit(l));
    l->nparams++;
}

void
pc_irc_line_trailing(struct pc_irc_line *l, const char *p, size_t len)
{
    if (l->err != 0) {
        return;
    }
    put(l, " :", 2, body_limit(l));
    if (l->err != 0) {
        return;
    }
    size_t room = body_limit(l) - l->len;
    if (len > room) {
        /* Cut the text at a UTF-8 character boundary. */
        len = room;
        while (len > 0 && ((unsigned char)p[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    put(l, p, len, body_limit(l));
    l->nparams++;
}

ssize_t
pc_irc_line_end(struct pc_irc_line *l)
{
    if (l->err != 0) {
        return l->err;
    }
    if (!l->in_body) {
        return PC_IRC_ESYNTAX; /* no command */
    }
    l->buf[l->len++] = '\r';
    l->buf[l->len++] = '\n';
    return (ssize_t)l->len;
}
