/* The pool bus: how the nodes of a pool tell each other about room
 * messages after commit, presence and cache invalidations. Payloads are
 * opaque bytes encoded by chat/; the bus guarantees that every node,
 * including the sender, receives every published payload in one total
 * order. Back ends: `local` (a single server) and `cpg` (Corosync). */
#ifndef PC_POOL_BUS_H
#define PC_POOL_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct pc_bus;

struct pc_bus_cbs {
    /* A payload, in total order; `from` is the publishing member. */
    void (*deliver)(void *arg, uint64_t from, const void *data, size_t len);
    /* Membership changed: `members` are the pool members now, `left` the
     * ones that just left (their clients are gone), `joined` the new ones
     * (they need to hear who is online). */
    void (*membership)(void *arg, const uint64_t *members, size_t nmembers,
                       const uint64_t *left, size_t nleft,
                       const uint64_t *joined, size_t njoined);
    /* Quorum gained (1) or lost (0). */
    void (*quorum)(void *arg, int quorate);
};

/* The single-server back end: delivery happens at pc_bus_dispatch(), never
 * inside pc_bus_publish(). */
int pc_bus_local_new(struct pc_bus **out, uv_loop_t *loop,
                     const struct pc_bus_cbs *cbs, void *arg);

/* The Corosync back end: joins the CPG process group `group`; payloads
 * carry `version`, and payloads of another version are ignored with a log
 * line. Node ids are Corosync node ids. Reconnects by itself. */
int pc_bus_cpg_new(struct pc_bus **out, uv_loop_t *loop, const char *group,
                   uint16_t version, const struct pc_bus_cbs *cbs,
                   void *arg);

/* Copies the payload and queues it for every node. */
int pc_bus_publish(struct pc_bus *b, const void *data, size_t len);
/* Delivers what has arrived; the worker calls it once per loop pass,
 * before flushing client output. */
void pc_bus_dispatch(struct pc_bus *b);
/* This process's member id in the pool: Corosync node id << 32 | pid for
 * cpg (a restarted pchatd is a new member), 1 for local. */
uint64_t pc_bus_node_id(const struct pc_bus *b);
/* The Corosync node id part of a member id. */
#define PC_BUS_NODE(member) ((uint32_t)((member) >> 32))
const char *pc_bus_backend(const struct pc_bus *b);
void pc_bus_free(struct pc_bus *b);

#endif
