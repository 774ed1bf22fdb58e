#include "config.h"

#include "irc/irc.h"

/* Nickname and channel name checks. */

static bool
is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* [ ] \ ` _ ^ { | } */
static bool
is_nick_special(char c)
{
    return (c >= '[' && c <= '`') || (c >= '{' && c <= '}');
}

bool
pc_irc_nick_valid(const char *s, size_t len, size_t maxlen)
{
    if (len == 0 || len > maxlen) {
        return false;
    }
    if (!is_letter(s[0]) && !is_nick_special(s[0])) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!is_letter(c) && !is_nick_special(c) && !(c >= '0' && c <= '9')
            && c != '-') {
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
        if (c == ' ' || c == ',' || c == ':' || c == '\a' || c == '\r'
            || c == '\n' || c == '\0') {
            return false;
        }
    }
    return pc_utf8_valid(s, len);
}
