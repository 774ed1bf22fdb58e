#include "config.h"

#include <string.h>

#include "irc/irc.h"

/* Casemapping (rfc1459) and validation of names and text. */

char
pc_irc_fold_char(char c)
{
    if (c >= 'A' && c <= '^') { /* A-Z [ \ ] ^ */
        return (char)(c + 32);
    }
    return c;
}

void
pc_irc_casefold(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        dst[i] = pc_irc_fold_char(src[i]);
    }
    dst[len] = '\0';
}

int
pc_irc_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = pc_irc_fold_char(*a);
        char y = pc_irc_fold_char(*b);
        if (x != y || x == '\0') {
            return (unsigned char)x - (unsigned char)y;
        }
    }
}

bool
pc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong lead, or > F4 */
        }
        if (len - i <= n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false; /* overlong, out of range or a surrogate */
        }
        i += n + 1;
    }
    return true;
}

static bool
nick_special(char c)
{
    return strchr("[]\\`_^{|}", c) != NULL && c != '\0';
}

bool
pc_irc_nick_valid(const char *s, size_t len, size_t maxlen)
{
    if (len == 0 || len > maxlen) {
        return false;
    }
    char c = s[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || nick_special(c))) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || nick_special(c))) {
            return false;
        }
    }
    return true;
}

bool
pc_irc_chan_valid(const char *s, size_t len, size_t maxlen)
{
    if (len < 2 || len > maxlen || s[0] != '#') {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == ',' || c == '\a' || c == '\r' || c == '\n'
            || c == '\0' || c == ':') {
            return false;
        }
    }
    return pc_utf8_valid(s, len);
}
