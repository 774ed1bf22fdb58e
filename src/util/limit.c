#include "config.h"

#include "util/limit.h"

#include <stdlib.h>

struct limit_bucket {
    double tokens;
    uint64_t at_ms;
};

void
pc_limit_init(struct pc_limit *l, uint32_t burst, uint32_t interval_ms,
              size_t max_keys)
{
    pc_map_init(&l->map);
    l->burst = burst > 0 ? burst : 1;
    l->interval_ms = interval_ms > 0 ? interval_ms : 1;
    l->max_keys = max_keys > 0 ? max_keys : 1;
}

static void
clear_all(struct pc_limit *l)
{
    size_t pos = 0;
    const char *key;
    struct limit_bucket *b;
    while ((b = pc_map_next(&l->map, &pos, &key)) != NULL) {
        (void)pc_map_del(&l->map, key);
        free(b);
    }
}

void
pc_limit_free(struct pc_limit *l)
{
    clear_all(l);
    pc_map_free(&l->map);
}

static double
level(const struct pc_limit *l, const struct limit_bucket *b, uint64_t now)
{
    double t = b->tokens;
    if (now > b->at_ms) {
        t += (double)(now - b->at_ms) / (double)l->interval_ms;
    }
    return t > l->burst ? l->burst : t;
}

unsigned
pc_limit_wait_s(const struct pc_limit *l, const char *key, uint64_t now_ms)
{
    const struct limit_bucket *b = pc_map_get(&l->map, key);
    if (b == NULL) {
        return 0;
    }
    double t = level(l, b, now_ms);
    if (t >= 1.0) {
        return 0;
    }
    return (unsigned)((1.0 - t) * l->interval_ms / 1000.0) + 1;
}

/* Drops the buckets that are full again; clears everything if that is not
 * enough (a flood of distinct keys must not grow the table). */
static void
prune(struct pc_limit *l, uint64_t now)
{
    size_t pos = 0;
    const char *key;
    struct limit_bucket *b;
    while ((b = pc_map_next(&l->map, &pos, &key)) != NULL) {
        if (level(l, b, now) >= l->burst) {
            (void)pc_map_del(&l->map, key);
            free(b);
        }
    }
    if (l->map.count >= l->max_keys) {
        clear_all(l);
    }
}

void
pc_limit_fail(struct pc_limit *l, const char *key, uint64_t now_ms)
{
    struct limit_bucket *b = pc_map_get(&l->map, key);
    if (b == NULL) {
        if (l->map.count >= l->max_keys) {
            prune(l, now_ms);
        }
        b = calloc(1, sizeof(*b));
        if (b == NULL || pc_map_put(&l->map, key, b) < 0) {
            free(b);
            return;
        }
        b->tokens = l->burst;
        b->at_ms = now_ms;
    }
    b->tokens = level(l, b, now_ms) - 1.0;
    b->at_ms = now_ms;
}

void
pc_limit_reset(struct pc_limit *l, const char *key)
{
    free(pc_map_del(&l->map, key));
}
