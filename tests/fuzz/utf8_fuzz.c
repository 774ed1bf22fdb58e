/* libFuzzer target: UTF-8 validation against a second, differently written
 * decoder (ranges of Unicode table 3-7), and the cut at a character
 * boundary: a cut of valid text stays valid and loses less than one
 * character. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "irc/irc.h"

static bool
in(uint8_t c, uint8_t lo, uint8_t hi)
{
    return c >= lo && c <= hi;
}

/* Table 3-7, "well-formed UTF-8 byte sequences", row by row. */
static bool
reference_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const uint8_t *p = s + i;
        size_t left = len - i;
        size_t n = 0;

        if (p[0] <= 0x7F) {
            n = 1;
        } else if (in(p[0], 0xC2, 0xDF) && left >= 2 && in(p[1], 0x80, 0xBF)) {
            n = 2;
        } else if (left >= 3 && in(p[2], 0x80, 0xBF)
                   && ((p[0] == 0xE0 && in(p[1], 0xA0, 0xBF))
                       || (in(p[0], 0xE1, 0xEC) && in(p[1], 0x80, 0xBF))
                       || (p[0] == 0xED && in(p[1], 0x80, 0x9F))
                       || (in(p[0], 0xEE, 0xEF) && in(p[1], 0x80, 0xBF)))) {
            n = 3;
        } else if (left >= 4 && in(p[2], 0x80, 0xBF) && in(p[3], 0x80, 0xBF)
                   && ((p[0] == 0xF0 && in(p[1], 0x90, 0xBF))
                       || (in(p[0], 0xF1, 0xF3) && in(p[1], 0x80, 0xBF))
                       || (p[0] == 0xF4 && in(p[1], 0x80, 0x8F)))) {
            n = 4;
        } else {
            return false;
        }
        i += n;
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool ok = pc_utf8_valid(s, size);

    fuzz_check(ok == reference_valid(data, size));
    /* Every cut point: within bounds, and valid text stays valid. */
    for (size_t max = 0; max <= size && max < 64; max++) {
        size_t n = pc_utf8_cut(s, size, max);
        fuzz_check(n <= max);
        if (ok) {
            fuzz_check(max - n < 4);
            fuzz_check(pc_utf8_valid(s, n));
        }
    }
    if (size > 0) {
        size_t n = pc_utf8_cut(s, size, size - 1);
        fuzz_check(n <= size - 1);
        if (ok) {
            fuzz_check(pc_utf8_valid(s, n) && size - 1 - n < 4);
        }
    }
    fuzz_check(pc_utf8_cut(s, size, size) == size);
    return 0;
}
