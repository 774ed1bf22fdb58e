#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool/bus.h"
#include "pool/bus_impl.h"

/* A single server is a pool of one: payloads are queued and handed back in
 * publication order at the next dispatch. */

struct local_item {
    struct local_item *next;
    size_t len;
    char data[];
};

struct bus_local {
    struct pc_bus base;
    struct local_item *head;
    struct local_item **tail;
};

static int
local_publish(struct pc_bus *b, const void *data, size_t len)
{
    struct bus_local *l = (struct bus_local *)b;
    struct local_item *it = malloc(sizeof(*it) + len);

    if (it == NULL) {
        return -ENOMEM;
    }
    it->next = NULL;
    it->len = len;
    memcpy(it->data, data, len);
    *l->tail = it;
    l->tail = &it->next;
    return 0;
}

static void
local_dispatch(struct pc_bus *b)
{
    struct bus_local *l = (struct bus_local *)b;

    /* Items published while delivering go out in this same pass, after
     * the ones before them. */
    while (l->head != NULL) {
        struct local_item *it = l->head;
        l->head = it->next;
        if (l->head == NULL) {
            l->tail = &l->head;
        }
        b->cbs.deliver(b->arg, b->node_id, it->data, it->len);
        free(it);
    }
}

static void
local_free(struct pc_bus *b)
{
    struct bus_local *l = (struct bus_local *)b;

    while (l->head != NULL) {
        struct local_item *it = l->head;
        l->head = it->next;
        free(it);
    }
    free(l);
}

static const struct pc_bus_ops local_ops = {
    .name = "local",
    .publish = local_publish,
    .dispatch = local_dispatch,
    .free = local_free,
};

int
pc_bus_local_new(struct pc_bus **out, uv_loop_t *loop,
                 const struct pc_bus_cbs *cbs, void *arg)
{
    struct bus_local *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        return -ENOMEM;
    }
    l->base.ops = &local_ops;
    l->base.cbs = *cbs;
    l->base.arg = arg;
    l->base.loop = loop;
    l->base.node_id = 1;
    l->tail = &l->head;
    /* A pool of one always has quorum: the quorum callback never fires. */
    *out = &l->base;
    return 0;
}
