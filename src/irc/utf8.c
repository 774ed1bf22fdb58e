#include "config.h"

#include "irc/irc.h"

/* UTF-8 as RFC 3629 and Unicode table 3-7 define it. The lead byte gives the
 * length; C0, C1 and F5..FF never occur. The decoded value rules out the
 * overlong three- and four-byte forms, the surrogates D800..DFFF and
 * anything past U+10FFFF. */

static bool
is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

bool
pc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        unsigned long cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false; /* a continuation byte, C0, C1 or F5..FF */
        }
        if (len - i <= n) {
            return false; /* cut short */
        }
        for (size_t k = 1; k <= n; k++) {
            if (!is_cont(p[i + k])) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF
            || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

size_t
pc_utf8_cut(const char *s, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;

    if (len <= max) {
        return len;
    }
    /* s[max] exists. Back off over at most three continuation bytes: a
     * longer run is not UTF-8 and is cut anywhere. */
    for (size_t k = 0; k < 4 && k <= max; k++) {
        if (!is_cont(p[max - k])) {
            return max - k;
        }
    }
    return max;
}
