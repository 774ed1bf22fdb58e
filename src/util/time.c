#include "config.h"

#include "util/time.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/err.h"

uint64_t
pc_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
pc_wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
pc_time_format(uint64_t epoch_ms, char out[32])
{
    time_t sec = (time_t)(epoch_ms / 1000u);
    struct tm tm;
    char day[24];

    (void)gmtime_r(&sec, &tm);
    (void)strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    (void)snprintf(out, 32, "%s.%03uZ", day, (unsigned)(epoch_ms % 1000u));
}

static int
parse_digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return PC_EPROTO;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int
pc_time_parse(const char *s, size_t len, uint64_t *epoch_ms)
{
    /* YYYY-MM-DDTHH:MM:SS[.mmm]Z */
    int year, mon, mday, hour, min, sec, ms = 0;
    struct tm tm;

    if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T'
        || s[13] != ':' || s[16] != ':' || s[len - 1] != 'Z') {
        return PC_EPROTO;
    }
    if (parse_digits(s, 4, &year) || parse_digits(s + 5, 2, &mon)
        || parse_digits(s + 8, 2, &mday) || parse_digits(s + 11, 2, &hour)
        || parse_digits(s + 14, 2, &min) || parse_digits(s + 17, 2, &sec)) {
        return PC_EPROTO;
    }
    if (len == 24) {
        if (s[19] != '.' || parse_digits(s + 20, 3, &ms)) {
            return PC_EPROTO;
        }
    } else if (len != 20) {
        return PC_EPROTO;
    }
    if (mon < 1 || mon > 12 || mday < 1 || mday > 31 || hour > 23 || min > 59
        || sec > 60) {
        return PC_EPROTO;
    }
    /* timegm() would move 2023-02-30 to March 2 instead of refusing it. */
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mday > mdays[mon - 1] + (mon == 2 && leap)) {
        return PC_EPROTO;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t < 0) {
        return PC_EPROTO;
    }
    *epoch_ms = (uint64_t)t * 1000u + (uint64_t)ms;
    return 0;
}

void
pc_msgid_next(struct pc_msgid_gen *g, char out[PC_MSGID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t ms = pc_wall_ms();

    /* Strictly increasing per generator, even if the clock steps back. */
    if (ms > g->last_ms) {
        g->last_ms = ms;
        g->counter = 0;
    } else if (++g->counter > 0x0fff) {
        g->last_ms++;
        g->counter = 0;
    }
    ms = g->last_ms;
    if (getrandom(b + 8, 8, 0) != 8) {
        /* The kernel's pool is always ready after boot; keep ids unique. */
        uint64_t x = pc_now_ms() ^ (uint64_t)(uintptr_t)g;
        memcpy(b + 8, &x, 8);
    }
    for (int i = 0; i < 6; i++) {
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    }
    b[6] = (unsigned char)(0x70 | ((g->counter >> 8) & 0x0f));
    b[7] = (unsigned char)(g->counter & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

int
pc_msgid_valid(const char *s, size_t len)
{
    if (len != PC_MSGID_LEN) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return 0;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}
