/* A string-keyed hash map (open addressing, linear probing). Keys are
 * copied; values are caller-owned pointers. Callers that need IRC case
 * insensitivity fold the key first (irc/casemap.h). */
#ifndef PC_UTIL_MAP_H
#define PC_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

struct pc_map_slot {
    char *key; /* NULL: empty; PC_MAP_TOMB: deleted */
    uint64_t hash;
    void *value;
};

struct pc_map {
    struct pc_map_slot *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
};

void pc_map_init(struct pc_map *m);
void pc_map_free(struct pc_map *m);
void *pc_map_get(const struct pc_map *m, const char *key);
/* Inserts or replaces; returns 0 or -ENOMEM. */
int pc_map_put(struct pc_map *m, const char *key, void *value);
/* Removes and returns the value, or NULL. */
void *pc_map_del(struct pc_map *m, const char *key);
/* Iteration: start with *pos = 0; returns the next value or NULL at the end.
 * The map must not change during an iteration, except by deleting the entry
 * just returned. */
void *pc_map_next(const struct pc_map *m, size_t *pos, const char **key);

uint64_t pc_hash(const void *data, size_t len);

#endif
