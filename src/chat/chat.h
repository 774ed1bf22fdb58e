/* The chat service of one worker: IRC sessions, rooms, command handlers,
 * the durable post pipeline and history. */
#ifndef PC_CHAT_CHAT_H
#define PC_CHAT_CHAT_H

#include <stdint.h>
#include <uv.h>

#include "net/net.h"
#include "pool/bus.h"
#include "store/store.h"
#include "util/conf.h"

struct pc_chat;

/* conf must outlive the chat service; pc_chat_reload() may replace it. */
int pc_chat_new(struct pc_chat **out, uv_loop_t *loop,
                const struct pc_conf *conf, struct pc_store *store);
/* The bus is created after the chat service, since its callbacks are ours. */
void pc_chat_set_bus(struct pc_chat *c, struct pc_bus *bus);
extern const struct pc_bus_cbs pc_chat_bus_cbs;
/* The callbacks for a pool back end (cpg): also membership. */
extern const struct pc_bus_cbs pc_chat_pool_cbs;
/* Marks the chat service as part of a pool with member id `self`. */
void pc_chat_set_pool(struct pc_chat *c, uint64_t self);
/* Tells the chat service of database state changes. */
void pc_chat_store_state(void *chat, enum pc_store_state st);
/* Listener accept callback; arg is the struct pc_chat. */
void pc_chat_accept(struct pc_listener *l, struct pc_conn *conn, void *arg);
/* Applies reloadable settings from a new configuration. */
void pc_chat_reload(struct pc_chat *c, const struct pc_conf *conf);
/* Starts draining: tells clients, stops taking posts, and calls done once
 * every session is closed and no post is in flight. */
void pc_chat_shutdown(struct pc_chat *c, void (*done)(void *), void *arg);
void pc_chat_free(struct pc_chat *c);
/* Called once per loop pass, before the bus and the sockets are flushed:
 * sends the posts queued during the pass. */
void pc_chat_end_of_pass(struct pc_chat *c);
/* Disconnects every client with ERROR :reason (standby, quorum lost). */
void pc_chat_disconnect_all(struct pc_chat *c, const char *reason);
/* Counters for logs and status. */
uint64_t pc_chat_sessions(const struct pc_chat *c);

#endif
