#include "config.h"

#include "irc/irc.h"

/* Casemapping rfc1459 (the one we announce in ISUPPORT): A-Z and [ \ ] ^
 * fold to a-z and { | } ~, that is 0x41..0x5E to 0x61..0x7E. No other byte
 * changes, so UTF-8 text folds safely byte by byte. */

char
pc_irc_fold_char(char c)
{
    if (c >= 'A' && c <= '^') {
        return (char)(c + ('a' - 'A'));
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
        unsigned char x = (unsigned char)pc_irc_fold_char(*a);
        unsigned char y = (unsigned char)pc_irc_fold_char(*b);
        if (x != y || x == '\0') {
            return (int)x - (int)y;
        }
    }
}
