#include "config.h"

#include "util/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char map_tomb_storage;
#define MAP_TOMB (&map_tomb_storage)

uint64_t
pc_hash(const void *data, size_t len)
{
    /* FNV-1a, 64 bit, with a final mix: keys are short names. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void
pc_map_init(struct pc_map *m)
{
    memset(m, 0, sizeof(*m));
}

void
pc_map_free(struct pc_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL && m->slots[i].key != MAP_TOMB) {
            free(m->slots[i].key);
        }
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static struct pc_map_slot *
map_find(const struct pc_map *m, const char *key, uint64_t h)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct pc_map_slot *s = &m->slots[i];
        if (s->key == NULL) {
            return NULL;
        }
        if (s->key != MAP_TOMB && s->hash == h && strcmp(s->key, key) == 0) {
            return s;
        }
    }
}

static int
map_grow(struct pc_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    /* Rehash in place of tombstones when the map is not really full. */
    if (m->count * 2 < m->cap) {
        cap = m->cap;
    }
    struct pc_map_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        struct pc_map_slot *s = &m->slots[i];
        if (s->key == NULL || s->key == MAP_TOMB) {
            continue;
        }
        size_t j = s->hash & (cap - 1);
        while (slots[j].key != NULL) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->count;
    return 0;
}

void *
pc_map_get(const struct pc_map *m, const char *key)
{
    struct pc_map_slot *s = map_find(m, key, pc_hash(key, strlen(key)));
    return s ? s->value : NULL;
}

int
pc_map_put(struct pc_map *m, const char *key, void *value)
{
    uint64_t h = pc_hash(key, strlen(key));
    struct pc_map_slot *s = map_find(m, key, h);

    if (s != NULL) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        int rc = map_grow(m);
        if (rc < 0) {
            return rc;
        }
    }
    char *copy = strdup(key);
    if (copy == NULL) {
        return -ENOMEM;
    }
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key != NULL && m->slots[i].key != MAP_TOMB) {
        i = (i + 1) & (m->cap - 1);
    }
    if (m->slots[i].key == NULL) {
        m->used++;
    }
    m->slots[i].key = copy;
    m->slots[i].hash = h;
    m->slots[i].value = value;
    m->count++;
    return 0;
}

void *
pc_map_del(struct pc_map *m, const char *key)
{
    struct pc_map_slot *s = map_find(m, key, pc_hash(key, strlen(key)));
    if (s == NULL) {
        return NULL;
    }
    void *v = s->value;
    free(s->key);
    s->key = MAP_TOMB;
    s->value = NULL;
    m->count--;
    return v;
}

void *
pc_map_next(const struct pc_map *m, size_t *pos, const char **key)
{
    while (*pos < m->cap) {
        struct pc_map_slot *s = &m->slots[(*pos)++];
        if (s->key != NULL && s->key != MAP_TOMB) {
            if (key != NULL) {
                *key = s->key;
            }
            return s->value;
        }
    }
    return NULL;
}
