#include "config.h"

#include "pool/bus.h"

#include "pool/bus_impl.h"

int
pc_bus_publish(struct pc_bus *b, const void *data, size_t len)
{
    return b->ops->publish(b, data, len);
}

void
pc_bus_dispatch(struct pc_bus *b)
{
    b->ops->dispatch(b);
}

uint64_t
pc_bus_node_id(const struct pc_bus *b)
{
    return b->node_id;
}

const char *
pc_bus_backend(const struct pc_bus *b)
{
    return b->ops->name;
}

void
pc_bus_free(struct pc_bus *b)
{
    if (b != NULL) {
        b->ops->free(b);
    }
}
