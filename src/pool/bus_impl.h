/* What every bus back end provides (private to pool/). */
#ifndef PC_POOL_BUS_IMPL_H
#define PC_POOL_BUS_IMPL_H

#include "pool/bus.h"

struct pc_bus_ops {
    const char *name;
    int (*publish)(struct pc_bus *b, const void *data, size_t len);
    void (*dispatch)(struct pc_bus *b);
    void (*free)(struct pc_bus *b);
};

struct pc_bus {
    const struct pc_bus_ops *ops;
    struct pc_bus_cbs cbs;
    void *arg;
    uv_loop_t *loop;
    uint64_t node_id;
};

#endif
