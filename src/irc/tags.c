#include "config.h"

#include "irc/irc.h"

/* Tag keys and the escaping of tag values (IRCv3 message-tags):
 *
 *   key    = [ '+' ] [ vendor '/' ] name
 *   vendor = a host name: letters, digits, '-' and '.'
 *   name   = one or more letters, digits and '-'
 *
 * In a value ';' ' ' '\' CR LF travel as "\:" "\s" "\\" "\r" "\n". */

static bool
is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}

bool
pc_irc_tag_key_valid(const char *p, size_t len)
{
    size_t i = 0;
    size_t name = 0; /* where the name starts */

    if (len > 0 && p[0] == '+') {
        i = 1;
    }
    name = i;
    for (size_t k = i; k < len; k++) {
        if (p[k] == '/') {
            if (k == i || name != i) {
                return false; /* an empty vendor, or a second '/' */
            }
            name = k + 1;
        }
    }
    if (name == len) {
        return false; /* no name */
    }
    for (size_t k = i; k < len; k++) {
        char c = p[k];
        if (is_alnum(c) || c == '-' || (k < name && (c == '.' || c == '/'))) {
            continue;
        }
        return false;
    }
    return true;
}

static char
escape_char(char c)
{
    switch (c) {
    case ';':
        return ':';
    case ' ':
        return 's';
    case '\\':
        return '\\';
    case '\r':
        return 'r';
    case '\n':
        return 'n';
    default:
        return 0;
    }
}

ssize_t
pc_irc_tag_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char e = escape_char(src[i]);
        if (e != 0) {
            if (cap - o < 2) {
                return -1;
            }
            dst[o++] = '\\';
            dst[o++] = e;
        } else {
            if (cap - o < 1) {
                return -1;
            }
            dst[o++] = src[i];
        }
    }
    return (ssize_t)o;
}

static char
unescape_char(char c)
{
    switch (c) {
    case ':':
        return ';';
    case 's':
        return ' ';
    case 'r':
        return '\r';
    case 'n':
        return '\n';
    default:
        return c; /* "\\" and unknown escapes: the character itself */
    }
}

ssize_t
pc_irc_tag_unescape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\') {
            if (i + 1 == len) {
                break; /* a lone backslash at the end is dropped */
            }
            c = unescape_char(src[++i]);
        }
        if (o == cap) {
            return -1;
        }
        dst[o++] = c;
    }
    return (ssize_t)o;
}
