/* Clocks and time-ordered identifiers. */
#ifndef PC_UTIL_TIME_H
#define PC_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for deadlines and timeouts. */
uint64_t pc_now_ms(void);
/* Wall-clock milliseconds since the Unix epoch. */
uint64_t pc_wall_ms(void);
/* Formats epoch milliseconds as IRCv3 server-time: 2026-11-24T15:09:15.123Z
 * (24 characters plus NUL). */
void pc_time_format(uint64_t epoch_ms, char out[32]);
/* Parses that format back; returns 0 or PC_EPROTO. */
int pc_time_parse(const char *s, size_t len, uint64_t *epoch_ms);

/* A UUIDv7 message id: 48 bits of epoch milliseconds, then a counter that
 * keeps ids from one generator strictly increasing, then random bits. */
struct pc_msgid_gen {
    uint64_t last_ms;
    uint16_t counter;
};

#define PC_MSGID_LEN 36 /* canonical UUID text, without NUL */

void pc_msgid_next(struct pc_msgid_gen *g, char out[PC_MSGID_LEN + 1]);
/* Checks the canonical UUID text form (any version). */
int pc_msgid_valid(const char *s, size_t len);

#endif
