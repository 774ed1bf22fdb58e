/* Failure limiting: one token bucket per key (a client address, an account
 * name). A key starts with `burst` tokens, a failure takes one, and one
 * comes back every interval_ms up to `burst`; with less than one token,
 * attempts for that key are refused before any work is done. Buckets that
 * are full again are dropped, and the table never holds more than max_keys
 * (when full it is pruned, then cleared). SASL (chat/sasl.c) and the
 * admin API (http/) use it, both with auth.fail_burst and
 * auth.fail_interval_ms. */
#ifndef PC_UTIL_LIMIT_H
#define PC_UTIL_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "util/map.h"

struct pc_limit {
    struct pc_map map;
    uint32_t burst;
    uint32_t interval_ms;
    size_t max_keys;
};

void pc_limit_init(struct pc_limit *l, uint32_t burst, uint32_t interval_ms,
                   size_t max_keys);
void pc_limit_free(struct pc_limit *l);
/* Seconds until the next attempt for key is allowed; 0 if it is now. */
unsigned pc_limit_wait_s(const struct pc_limit *l, const char *key,
                         uint64_t now_ms);
/* Records one failure for key. */
void pc_limit_fail(struct pc_limit *l, const char *key, uint64_t now_ms);
/* Forgets key (a success). */
void pc_limit_reset(struct pc_limit *l, const char *key);

#endif
