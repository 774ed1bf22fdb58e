/* PostgreSQL access on the libuv loop: libpq in non-blocking pipeline mode,
 * a FIFO of queries on named prepared statements, reconnection with backoff
 * over a multi-host conninfo, and schema migrations. */
#ifndef PC_STORE_STORE_H
#define PC_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <libpq-fe.h>

#include "store/stmts.h"

struct pc_store;

struct pc_store_cfg {
    const char *conninfo;        /* libpq conninfo or URI, may be multi-host */
    uint32_t connect_timeout_ms; /* one attempt, all hosts */
    uint32_t backoff_min_ms;     /* first retry after a failure */
    uint32_t backoff_max_ms;     /* doubling stops here */
    uint32_t max_in_flight;      /* queries sent but not answered */
};

enum pc_store_state {
    PC_STORE_DISCONNECTED,
    PC_STORE_CONNECTING,
    PC_STORE_READY,
    PC_STORE_BACKOFF,
    PC_STORE_CLOSED,
};

/* Query completion, called exactly once, never from inside
 * pc_store_query():
 *   0             res holds the rows (PGRES_TUPLES_OK or COMMAND_OK);
 *   PC_EDB        res holds the error (PQresultErrorField for SQLSTATE);
 *   PC_ETIMEDOUT  the deadline passed before the query was sent: it did not
 *                 run;
 *   PC_EUNKNOWN   it was sent and the connection was lost before the
 *                 answer: it may or may not have committed;
 *   PC_ECANCELED  the store is closing; it did not run.
 * res is NULL unless status is 0 or PC_EDB, and is valid only during the
 * callback. */
typedef void (*pc_store_cb)(void *arg, int status, PGresult *res);
/* Told of every state change (logging, metrics, retrying parked work). */
typedef void (*pc_store_state_cb)(void *arg, enum pc_store_state state);

int pc_store_new(struct pc_store **out, uv_loop_t *loop,
                 const struct pc_store_cfg *cfg, pc_store_state_cb state_cb,
                 void *state_arg);
/* Names the connection in the log and as application_name (default
 * "store", "pchatd"); name is a constant. Before pc_store_start(). */
void pc_store_set_name(struct pc_store *s, const char *name);
/* A second connection for history reads (database.read_standby_conninfo,
 * e.g. target_session_attrs=prefer-standby). The history statements go
 * there while pc_store_reads_standby() allows it and it is connected; a
 * read that fails there is sent to the primary instead. Before
 * pc_store_start(); -EINVAL if called twice. */
int pc_store_set_reader(struct pc_store *s, const char *conninfo);
/* Set by the mirror watcher: true only while every streaming standby is a
 * synchronous one and COMMIT waits for it to apply (synchronous_commit =
 * remote_apply), so that a standby shows every acknowledged message. */
void pc_store_reads_standby(struct pc_store *s, bool ok);
/* History reads go to the standby now. */
bool pc_store_reading_standby(const struct pc_store *s);
/* Starts connecting (asynchronously). */
int pc_store_start(struct pc_store *s);
/* Queues a statement. params are copied (NULL elements are SQL NULL);
 * deadline_ms is on pc_now_ms()'s clock, 0 for none: a query still unsent
 * then fails with PC_ETIMEDOUT, whether the database is up or not. It is
 * sent before the loop next waits. Returns 0, or a negative code if the
 * store is closed (the callback then never runs). */
int pc_store_query(struct pc_store *s, enum pc_stmt stmt,
                   const char *const *params, int nparams,
                   uint64_t deadline_ms, pc_store_cb cb, void *arg);
/* Queues a statement again whose earlier attempt ended with PC_EUNKNOWN:
 * it goes ahead of every query not sent yet (behind the retries already
 * waiting), so that it keeps its place before the queries queued after
 * the lost one; a post retried behind a later post would take its seq
 * after it. No deadline: an outcome must be found. Returns as
 * pc_store_query(). */
int pc_store_query_retry(struct pc_store *s, enum pc_stmt stmt,
                         const char *const *params, int nparams,
                         pc_store_cb cb, void *arg);
/* The same for an unprepared statement; sql is not copied (a string
 * constant). For the store's own monitoring (mirror.c). */
int pc_store_query_sql(struct pc_store *s, const char *sql,
                       const char *const *params, int nparams,
                       uint64_t deadline_ms, pc_store_cb cb, void *arg);
/* While held, the statements that may write (and so would wait for the
 * mirror at COMMIT) stay queued in order, their deadlines running; reads
 * are sent past them. */
void pc_store_hold_writes(struct pc_store *s, bool hold);
bool pc_store_writes_held(const struct pc_store *s);
/* LISTEN: told of each NOTIFY on `channel` (payload may be ""), from the
 * loop, never from inside a store call. The LISTEN is issued again on every
 * (re)connection, before the store reports READY; notifications sent while
 * disconnected are lost, so a caller reloads what it caches on READY. One
 * channel per store; call before pc_store_start(). The callback may queue
 * queries and may close the store. Returns 0, -EINVAL (bad name, or a
 * channel already set) or -ENOMEM. */
typedef void (*pc_store_notify_cb)(void *arg, const char *channel,
                                   const char *payload);
int pc_store_listen(struct pc_store *s, const char *channel,
                    pc_store_notify_cb cb, void *arg);
enum pc_store_state pc_store_state(const struct pc_store *s);
const char *pc_store_state_name(enum pc_store_state st);
/* Host and port of the server now connected, for logs ("db1:5432"). */
const char *pc_store_server(const struct pc_store *s);
/* Fails every queued query with PC_ECANCELED (and every query already
 * sent with PC_EUNKNOWN) before it returns, closes the connection and frees
 * the store once its handles are closed; done_cb may be NULL. Safe from
 * inside any of the store's callbacks; a second call does nothing. */
void pc_store_close(struct pc_store *s, void (*done_cb)(void *),
                    void *done_arg);

/* The mirror watcher (mirror.c): a second connection that reads, every
 * check_ms, whether a COMMIT on the primary would wait for a synchronous
 * standby that is not there. While it would (or until the first answer after
 * a reconnection), the store's writes are held, so that posts are refused
 * at their deadline instead of hanging in COMMIT. With the availability
 * policy, once the mirror has been missing for timeout_ms, it switches the
 * primary to asynchronous commit (ALTER SYSTEM SET
 * synchronous_standby_names = ''; pg_reload_conf()), and back (ALTER SYSTEM
 * RESET) once a standby streams again. */
enum pc_mirror_policy {
    PC_MIRROR_DURABILITY,   /* never acknowledge what one server holds */
    PC_MIRROR_AVAILABILITY, /* drop to asynchronous after timeout_ms */
};

enum pc_mirror_state {
    PC_MIRROR_UNKNOWN, /* not checked yet on this connection: writes held */
    PC_MIRROR_NONE,    /* no synchronous standby configured (one server) */
    PC_MIRROR_SYNC,    /* enough synchronous standbys are streaming */
    PC_MIRROR_MISSING, /* commits would wait: writes held */
    PC_MIRROR_ASYNC,   /* switched to asynchronous by the availability policy */
    PC_MIRROR_BLIND,   /* the role may not read pg_stat_replication */
};

struct pc_mirror;

struct pc_mirror_cfg {
    struct pc_store_cfg store; /* the watcher's own connection */
    enum pc_mirror_policy policy;
    uint32_t timeout_ms; /* availability: missing this long -> async */
    uint32_t check_ms;   /* interval between checks */
};

int pc_mirror_new(struct pc_mirror **out, uv_loop_t *loop,
                  const struct pc_mirror_cfg *cfg, struct pc_store *store);
int pc_mirror_start(struct pc_mirror *m);
enum pc_mirror_state pc_mirror_state(const struct pc_mirror *m);
const char *pc_mirror_state_name(enum pc_mirror_state st);
const char *pc_mirror_policy_name(enum pc_mirror_policy p);
/* "durability" or "availability"; returns 0 or PC_ECONFIG. */
int pc_mirror_parse_policy(const char *name, enum pc_mirror_policy *out);
/* Switches to asynchronous so far (availability policy). */
uint64_t pc_mirror_async_switches(const struct pc_mirror *m);
/* Releases the store's writes, closes the watcher's connection and frees it
 * once its handles are closed. Call before closing the store. */
void pc_mirror_close(struct pc_mirror *m, void (*done_cb)(void *),
                     void *done_arg);

/* Migrations (blocking: for pchatctl and start-up only, never on a loop). */

/* Number of the newest migration built into this program. */
int pc_migrate_latest(void);
/* Applies every missing migration in order, each in its own transaction,
 * under an advisory lock so that concurrent runs wait for each other.
 * Writes a line per applied migration to `report` when non-NULL. Returns 0
 * or a negative code with a message in err. */
int pc_migrate_apply(PGconn *conn, void (*report)(const char *line),
                     char *err, size_t errlen);
/* Reads the schema version of the database (0 if none). Returns 0 or a
 * negative code with a message in err. */
int pc_migrate_current(PGconn *conn, int *version, char *err,
                       size_t errlen);

#endif
