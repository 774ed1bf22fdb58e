#include "config.h"

#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* One PostgreSQL connection driven from the loop.
 *
 *   DISCONNECTED -> CONNECTING (PQconnectPoll; then the schema check and the
 *   prepared statements, pipelined) -> READY -> (failure) BACKOFF -> ...
 *
 * Queries wait in a FIFO and are sent in pipeline mode, each followed by its
 * own sync point so that one failing statement does not abort the next.
 * Results come back in order; a query is finished when its sync arrives.
 * Deadlines apply only while a query waits: once sent, it either answers or
 * fails with PC_EUNKNOWN when the connection is lost.
 *
 * pc_store_query() only queues; a prepare handle sends before the loop next
 * waits, so that no callback ever runs from inside it and the queries of
 * one loop pass leave in one write. */

#define STORE_TICK_MS 25

enum query_kind {
    Q_EXEC,    /* a prepared statement for a caller */
    Q_SCHEMA,  /* the schema version check at connect */
    Q_PREPARE, /* PQsendPrepare of one statement */
    Q_LISTEN,  /* LISTEN on the caller's channel */
};

struct store_query {
    struct store_query *next;
    enum query_kind kind;
    enum pc_stmt stmt;
    const char *sql; /* unprepared text (pc_store_query_sql), else stmt */
    int nparams;
    char **params;
    uint64_t deadline_ms;
    bool retry; /* pc_store_query_retry(): ahead of first attempts */
    pc_store_cb cb;
    void *arg;
    PGresult *res; /* first result, kept until the sync */
};

struct store_poll {
    uv_poll_t h;
    struct pc_store *s;
    int fd;
    int events;
};

/* The hosts of a multi-host conninfo ("host=a,b port=5432,5433"), one
 * list per keyword that has them. libpq tries the hosts in order within
 * one attempt, but in non-blocking mode it has no timeout of its own: a
 * host that swallows packets (an address nobody holds any more, a
 * powered-off server) keeps the attempt until our deadline, and the hosts
 * after it are never tried. So after an attempt times out, the next one
 * starts from the following host. */
enum { HL_HOST, HL_HOSTADDR, HL_PORT, HL_KEYS };
struct host_lists {
    char **v[HL_KEYS]; /* NULL where the conninfo does not list it */
    size_t n[HL_KEYS];
    size_t hosts;      /* how many hosts; rotation only when > 1 */
    size_t first;      /* where the next attempt starts */
};

static void hl_free(struct host_lists *hl);

struct pc_store {
    uv_loop_t *loop;
    struct pc_store_cfg cfg;
    char *conninfo;
    struct host_lists hl;
    pc_store_state_cb state_cb;
    void *state_arg;
    enum pc_store_state state;
    PGconn *conn;
    struct store_poll *poll;
    uv_timer_t conn_timer; /* connect timeout and backoff */
    uv_timer_t tick;       /* deadlines of waiting queries */
    /* Sends what pc_store_query() queued, once per loop pass. An idle
     * handle, not a prepare one: a query queued from another prepare
     * callback (the end of a pass) would otherwise wait for the next
     * wake-up, while an active idle handle keeps the loop from sleeping. */
    uv_idle_t kick;
    uint32_t backoff_ms;
    const char *name;             /* pc_store_set_name(), or NULL */
    struct pc_store *reader;      /* history reads (pc_store_set_reader) */
    bool reads_standby;           /* pc_store_reads_standby() */
    bool writes_held;             /* pc_store_hold_writes() */
    bool writes[PC_STMT_COUNT];   /* statements that may write */
    struct store_query *wait_head, **wait_tail;
    struct store_query *fly_head, **fly_tail;
    unsigned nfly;
    unsigned nprepare; /* setup queries still in flight */
    bool setup_failed;
    bool closing;
    unsigned handles;
    void (*done_cb)(void *);
    void *done_arg;
    char server[160];
    char last_error[512]; /* repeats of the same failure log at debug */
    unsigned failures;
    char *listen_channel; /* NULL: no LISTEN */
    pc_store_notify_cb notify_cb;
    void *notify_arg;
};

static void store_fail_conn(struct pc_store *s, const char *why);
static void store_pump(struct pc_store *s);
static struct store_query *take_expired(struct pc_store *s);
static void fail_expired(struct store_query *expired);

const char *
pc_store_state_name(enum pc_store_state st)
{
    switch (st) {
    case PC_STORE_DISCONNECTED: return "disconnected";
    case PC_STORE_CONNECTING: return "connecting";
    case PC_STORE_READY: return "ready";
    case PC_STORE_BACKOFF: return "backoff";
    case PC_STORE_CLOSED: return "closed";
    }
    return "?";
}

static void
set_state(struct pc_store *s, enum pc_store_state st)
{
    if (s->state == st) {
        return;
    }
    s->state = st;
    pc_log(PC_LOG_DEBUG, "store", "database state %s server=%s",
           pc_store_state_name(st), s->server[0] ? s->server : "-");
    if (s->state_cb != NULL && !s->closing) {
        s->state_cb(s->state_arg, st);
    }
}

static void
query_free(struct store_query *q)
{
    for (int i = 0; i < q->nparams; i++) {
        free(q->params[i]);
    }
    free(q->params);
    if (q->res != NULL) {
        PQclear(q->res);
    }
    free(q);
}

/* Finishes a caller's query: exactly one callback, then it is freed. */
static void
query_done(struct store_query *q, int status, PGresult *res)
{
    if (q->cb != NULL) {
        q->cb(q->arg, status, res);
    }
    query_free(q);
}

/* Polling. */

/* One of the store's handles has closed; the last one frees the store. */
static void
handle_gone(struct pc_store *s)
{
    if (--s->handles == 0 && s->closing) {
        if (s->done_cb != NULL) {
            s->done_cb(s->done_arg);
        }
        free(s->conninfo);
        hl_free(&s->hl);
        free(s->listen_channel);
        free(s);
    }
}

static void
poll_closed(uv_handle_t *h)
{
    struct store_poll *p = h->data;
    struct pc_store *s = p->s;
    free(p);
    handle_gone(s);
}

static void
poll_drop(struct pc_store *s)
{
    if (s->poll != NULL) {
        /* uv_close stops polling at once, so the fd may be closed after. */
        uv_close((uv_handle_t *)&s->poll->h, poll_closed);
        s->poll = NULL;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Polls the connection's socket for `events`, re-creating the handle when
 * libpq has switched sockets (it may, between PQconnectPoll steps: another
 * host or address, or a retry without SSL). `renew` re-creates it even if
 * the number is the same, since the new socket may have the closed one's
 * number, which epoll no longer watches. */
static int
poll_want(struct pc_store *s, int events, bool renew)
{
    int fd = PQsocket(s->conn);

    if (fd < 0) {
        return -EBADF;
    }
    if (s->poll != NULL && (renew || s->poll->fd != fd)) {
        poll_drop(s);
    }
    if (s->poll == NULL) {
        struct store_poll *p = calloc(1, sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        p->s = s;
        p->fd = fd;
        p->events = -1;
        int rc = uv_poll_init(s->loop, &p->h, fd);
        if (rc != 0) {
            free(p);
            return rc;
        }
        p->h.data = p;
        s->handles++;
        s->poll = p;
    }
    if (s->poll->events != events) {
        s->poll->events = events;
        return uv_poll_start(&s->poll->h, events, on_poll);
    }
    return 0;
}

/* Connecting. */

static void connect_start(struct pc_store *s);

static void
on_conn_timer(uv_timer_t *t)
{
    struct pc_store *s = t->data;
    if (s->state == PC_STORE_BACKOFF) {
        connect_start(s);
    } else if (s->state == PC_STORE_CONNECTING) {
        if (s->hl.hosts > 1) {
            s->hl.first = (s->hl.first + 1) % s->hl.hosts;
            pc_log(PC_LOG_INFO, "store", "next attempt starts from host %s",
                   s->hl.v[s->hl.n[HL_HOST] ? HL_HOST : HL_HOSTADDR]
                          [s->hl.first]);
        }
        store_fail_conn(s, "connection attempt timed out");
    }
}

static void
backoff(struct pc_store *s)
{
    uint32_t ms = s->backoff_ms ? s->backoff_ms * 2 : s->cfg.backoff_min_ms;
    if (ms > s->cfg.backoff_max_ms) {
        ms = s->cfg.backoff_max_ms;
    }
    s->backoff_ms = ms;
    /* Jitter of up to a quarter, so that a pool does not reconnect in step. */
    uint32_t jitter = ms / 4 ? (uint32_t)(pc_now_ms() % (ms / 4 + 1)) : 0;
    set_state(s, PC_STORE_BACKOFF);
    if (s->closing) {
        return; /* closed by the state callback */
    }
    (void)uv_timer_start(&s->conn_timer, on_conn_timer, ms + jitter, 0);
}

static const char *
one_line(const char *msg, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < cap; p++) {
        buf[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        if (n >= 2 && buf[n - 1] == ' ' && buf[n - 2] == ' ') {
            n--;
        }
    }
    while (n > 0 && buf[n - 1] == ' ') {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

static void
server_name(struct pc_store *s)
{
    const char *host = PQhost(s->conn), *port = PQport(s->conn);
    (void)snprintf(s->server, sizeof(s->server), "%s:%s",
                   host && *host ? host : "?", port && *port ? port : "?");
}

static void
store_fail_conn(struct pc_store *s, const char *why)
{
    char msg[512];

    if (!s->closing) {
        if (s->server[0] == '\0' && s->conn != NULL) {
            server_name(s); /* the host being tried */
        }
        one_line(why, msg, sizeof(msg));
        bool repeat = strcmp(msg, s->last_error) == 0;
        s->failures++;
        pc_log(s->state == PC_STORE_READY ? PC_LOG_ERR
               : repeat                   ? PC_LOG_DEBUG
                                          : PC_LOG_WARN,
               s->name ? s->name : "store", "database %s: %s%s",
               s->server[0] ? s->server : "-", msg,
               repeat ? "" : " (retrying with backoff)");
        (void)snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
    }
    poll_drop(s);
    (void)uv_timer_stop(&s->conn_timer);
    if (s->conn != NULL) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    /* Sent and unanswered: the outcome is unknown to us. */
    while (s->fly_head != NULL) {
        struct store_query *q = s->fly_head;
        s->fly_head = q->next;
        if (q->kind == Q_EXEC) {
            query_done(q, PC_EUNKNOWN, NULL);
        } else {
            query_free(q);
        }
    }
    s->fly_tail = &s->fly_head;
    s->nfly = 0;
    s->nprepare = 0;
    s->server[0] = '\0';
    if (s->closing) {
        return;
    }
    backoff(s);
}

/* Server notices (and libpq's own) go to our log, not to stderr. */
static void
on_notice(void *arg, const char *message)
{
    char msg[512];
    pc_log(PC_LOG_INFO, "store", "database says: %s",
           one_line(message, msg, sizeof(msg)));
}

static const char *const hl_keys[HL_KEYS] = {"host", "hostaddr", "port"};

static void
hl_free(struct host_lists *hl)
{
    for (int k = 0; k < HL_KEYS; k++) {
        for (size_t i = 0; i < hl->n[k]; i++) {
            free(hl->v[k][i]);
        }
        free(hl->v[k]);
        hl->v[k] = NULL;
        hl->n[k] = 0;
    }
    hl->hosts = 0;
}

/* Splits the conninfo's host, hostaddr and port lists; an unparsable
 * conninfo has none (libpq will say what is wrong with it). */
static int
hl_parse(struct host_lists *hl, const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL) {
        return 0;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        for (int k = 0; k < HL_KEYS; k++) {
            if (strcmp(o->keyword, hl_keys[k]) != 0 || o->val == NULL
                || o->val[0] == '\0') {
                continue;
            }
            size_t n = 1;
            for (const char *c = o->val; *c; c++) {
                n += *c == ',';
            }
            hl->v[k] = calloc(n, sizeof(char *));
            if (hl->v[k] == NULL) {
                PQconninfoFree(opts);
                return -ENOMEM;
            }
            const char *p = o->val;
            for (size_t i = 0; i < n; i++) {
                size_t len = strcspn(p, ",");
                hl->v[k][i] = strndup(p, len);
                if (hl->v[k][i] == NULL) {
                    hl->n[k] = i;
                    PQconninfoFree(opts);
                    return -ENOMEM;
                }
                p += len + (p[len] == ',');
            }
            hl->n[k] = n;
        }
    }
    PQconninfoFree(opts);
    hl->hosts = hl->n[HL_HOST] > hl->n[HL_HOSTADDR] ? hl->n[HL_HOST]
                                                    : hl->n[HL_HOSTADDR];
    return 0;
}

/* A list starting from `first`: "b,c,a". Lists of another length than
 * the hosts' (one port for all) are left as they are. */
static char *
hl_rotated(const struct host_lists *hl, int k)
{
    size_t n = hl->n[k], len = 0;
    if (n != hl->hosts) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        len += strlen(hl->v[k][i]) + 1;
    }
    char *out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            (void)strcat(out, ",");
        }
        (void)strcat(out, hl->v[k][(hl->first + i) % n]);
    }
    return out;
}

static void
connect_start(struct pc_store *s)
{
    char timeout[16];
    /* Keys before dbname are defaults the conninfo may override: over TCP,
     * a server that vanishes (a partition, a dead host) is noticed within
     * about 20 s even with queries in flight, not after hours. Keys after
     * it are ours. */
    const char *keys[11] = {"keepalives_idle", "keepalives_interval",
                            "keepalives_count", "tcp_user_timeout",
                            "dbname", "connect_timeout",
                            "fallback_application_name", NULL};
    const char *vals[11] = {"10", "3", "3", "20000",
                            s->conninfo, timeout,
                            s->name ? s->name : "pchatd", NULL};
    char *rotated[HL_KEYS] = {NULL, NULL, NULL};
    int nk = 7;

    (void)snprintf(timeout, sizeof(timeout), "%u",
                   (s->cfg.connect_timeout_ms + 999) / 1000);
    if (s->hl.hosts > 1 && s->hl.first != 0) {
        for (int k = 0; k < HL_KEYS; k++) {
            rotated[k] = hl_rotated(&s->hl, k);
            if (rotated[k] != NULL) {
                keys[nk] = hl_keys[k];
                vals[nk++] = rotated[k];
            }
        }
        keys[nk] = NULL;
        vals[nk] = NULL;
    }
    set_state(s, PC_STORE_CONNECTING);
    if (s->closing) {
        return;
    }
    s->setup_failed = false;
    s->conn = PQconnectStartParams(keys, vals, 1);
    for (int k = 0; k < HL_KEYS; k++) {
        free(rotated[k]);
    }
    if (s->conn == NULL) {
        store_fail_conn(s, "out of memory");
        return;
    }
    if (PQstatus(s->conn) == CONNECTION_BAD) {
        store_fail_conn(s, PQerrorMessage(s->conn));
        return;
    }
    (void)PQsetnonblocking(s->conn, 1);
    PQsetNoticeProcessor(s->conn, on_notice, s);
    (void)uv_timer_start(&s->conn_timer, on_conn_timer,
                         s->cfg.connect_timeout_ms, 0);
    if (poll_want(s, UV_WRITABLE, true) < 0) {
        store_fail_conn(s, "cannot poll the database socket");
    }
}

static void
fly_push(struct pc_store *s, struct store_query *q)
{
    q->next = NULL;
    *s->fly_tail = q;
    s->fly_tail = &q->next;
    s->nfly++;
}

static int
send_setup(struct pc_store *s)
{
    struct store_query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return -ENOMEM;
    }
    q->kind = Q_SCHEMA;
    if (!PQsendQueryParams(s->conn, pc_stmts[PC_STMT_SCHEMA_VERSION].sql, 0,
                           NULL, NULL, NULL, NULL, 0)
        || !PQpipelineSync(s->conn)) {
        free(q);
        return PC_EDB;
    }
    fly_push(s, q);
    s->nprepare = 1;
    for (int i = 0; i < PC_STMT_COUNT; i++) {
        q = calloc(1, sizeof(*q));
        if (q == NULL) {
            return -ENOMEM;
        }
        q->kind = Q_PREPARE;
        q->stmt = (enum pc_stmt)i;
        if (!PQsendPrepare(s->conn, pc_stmts[i].name, pc_stmts[i].sql,
                           pc_stmts[i].nparams, NULL)
            || !PQpipelineSync(s->conn)) {
            free(q);
            return PC_EDB;
        }
        fly_push(s, q);
        s->nprepare++;
    }
    if (s->listen_channel != NULL) {
        char *ident = PQescapeIdentifier(s->conn, s->listen_channel,
                                         strlen(s->listen_channel));
        char sql[160];
        int n = ident ? snprintf(sql, sizeof(sql), "LISTEN %s", ident) : -1;
        PQfreemem(ident);
        if (n < 0 || (size_t)n >= sizeof(sql)) {
            return PC_EDB;
        }
        q = calloc(1, sizeof(*q));
        if (q == NULL) {
            return -ENOMEM;
        }
        q->kind = Q_LISTEN;
        if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0)
            || !PQpipelineSync(s->conn)) {
            free(q);
            return PC_EDB;
        }
        fly_push(s, q);
        s->nprepare++;
    }
    return 0;
}

static void
connected(struct pc_store *s)
{
    (void)uv_timer_stop(&s->conn_timer);
    server_name(s);
    if (!PQenterPipelineMode(s->conn) || send_setup(s) < 0) {
        store_fail_conn(s, PQerrorMessage(s->conn));
        return;
    }
    store_pump(s);
}

/* Results. */

static void
setup_result(struct pc_store *s, struct store_query *q)
{
    PGresult *res = q->res;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    char msg[512];

    if (q->kind == Q_SCHEMA) {
        int version = 0;
        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            version = atoi(PQgetvalue(res, 0, 0));
        } else {
            const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                    : NULL;
            if (state == NULL || strcmp(state, "42P01") != 0) {
                pc_log(PC_LOG_ERR, "store", "schema check failed: %s",
                       one_line(res ? PQresultErrorMessage(res) : "no result",
                                msg, sizeof(msg)));
                s->setup_failed = true;
                return;
            }
            /* No pchat_schema table: version 0. */
            pc_log(PC_LOG_ERR, "store", "database has no pchat schema "
                   "(no table pchat_schema); apply the migrations: pchatctl "
                   "db migrate");
            s->setup_failed = true;
            return;
        }
        if (version != pc_migrate_latest()) {
            if (version > pc_migrate_latest()) {
                pc_log(PC_LOG_ERR, "store", "database schema version %d is "
                       "newer than this pchatd (knows up to %d); upgrade "
                       "pchatd", version, pc_migrate_latest());
            } else {
                pc_log(PC_LOG_ERR, "store", "database schema version %d is "
                       "older than this pchatd needs (%d); run: pchatctl db "
                       "migrate", version, pc_migrate_latest());
            }
            s->setup_failed = true;
        }
        return;
    }
    if (st != PGRES_COMMAND_OK && !s->setup_failed) {
        pc_log(PC_LOG_ERR, "store", "cannot %s %s: %s",
               q->kind == Q_LISTEN ? "listen on" : "prepare statement",
               q->kind == Q_LISTEN ? s->listen_channel
                                   : pc_stmts[q->stmt].name,
               one_line(res ? PQresultErrorMessage(res) : "no result", msg,
                        sizeof(msg)));
        s->setup_failed = true;
    }
}

/* Called at each sync point: the head of the in-flight FIFO is done. */
static void
finish_head(struct pc_store *s)
{
    struct store_query *q = s->fly_head;

    if (q == NULL) {
        return;
    }
    s->fly_head = q->next;
    if (s->fly_head == NULL) {
        s->fly_tail = &s->fly_head;
    }
    s->nfly--;
    if (q->kind != Q_EXEC) {
        setup_result(s, q);
        query_free(q);
        if (--s->nprepare == 0) {
            if (s->setup_failed) {
                store_fail_conn(s, "connection refused for the reasons above");
                return;
            }
            s->backoff_ms = 0;
            pc_log(PC_LOG_NOTICE, s->name ? s->name : "store",
                   "database ready server=%s "
                   "schema=%d failed_attempts=%u", s->server,
                   pc_migrate_latest(), s->failures);
            s->failures = 0;
            s->last_error[0] = '\0';
            set_state(s, PC_STORE_READY);
        }
        return;
    }
    PGresult *res = q->res;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int status = (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) ? 0
                                                                    : PC_EDB;
    q->res = NULL;
    query_done(q, status, res);
    if (res != NULL) {
        PQclear(res);
    }
}

/* Hands the notifications libpq has read to the LISTEN callback. */
static void
deliver_notifies(struct pc_store *s)
{
    PGnotify *n;

    while (s->conn != NULL && !s->closing
           && (n = PQnotifies(s->conn)) != NULL) {
        if (s->notify_cb != NULL && s->listen_channel != NULL
            && strcmp(n->relname, s->listen_channel) == 0) {
            s->notify_cb(s->notify_arg, n->relname,
                         n->extra ? n->extra : "");
        }
        PQfreemem(n);
    }
}

static void
read_results(struct pc_store *s)
{
    int nulls = 0;

    if (!PQconsumeInput(s->conn)) {
        store_fail_conn(s, PQerrorMessage(s->conn));
        return;
    }
    deliver_notifies(s);
    while (s->conn != NULL && !PQisBusy(s->conn)) {
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL) {
            /* The end of one statement's results; two in a row: no more. */
            if (++nulls == 2 || s->fly_head == NULL) {
                break;
            }
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            finish_head(s);
            continue;
        }
        struct store_query *q = s->fly_head;
        if (q == NULL) {
            PQclear(res);
            store_fail_conn(s, "result without a query (protocol error)");
            return;
        }
        if (q->res == NULL) {
            q->res = res;
        } else {
            PQclear(res);
        }
    }
    deliver_notifies(s);
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_BAD) {
        store_fail_conn(s, PQerrorMessage(s->conn));
    }
}

/* Sends waiting queries while the pipeline has room. */
static void
store_pump(struct pc_store *s)
{
    struct store_query *expired = NULL;

    if (s->conn == NULL) {
        return;
    }
    /* A query past its deadline is never sent, even if the tick has not
     * seen it yet: its caller may already have given up. */
    if (s->state == PC_STORE_READY && s->wait_head != NULL
        && s->nfly < s->cfg.max_in_flight) {
        expired = take_expired(s);
    }
    /* While writes are held, they keep their place and reads go past. */
    struct store_query **pp = &s->wait_head;
    while (s->state == PC_STORE_READY && *pp != NULL
           && s->nfly < s->cfg.max_in_flight) {
        struct store_query *q = *pp;
        if (s->writes_held && q->sql == NULL && s->writes[q->stmt]) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        if (*pp == NULL) {
            s->wait_tail = pp;
        }
        int sent = q->sql != NULL
                       ? PQsendQueryParams(s->conn, q->sql, q->nparams, NULL,
                                           (const char *const *)q->params,
                                           NULL, NULL, 0)
                       : PQsendQueryPrepared(s->conn, pc_stmts[q->stmt].name,
                                             q->nparams,
                                             (const char *const *)q->params,
                                             NULL, NULL, 0);
        if (!sent || !PQpipelineSync(s->conn)) {
            /* Not sent, or sent without its sync, which the server never
             * commits: put it back and treat the connection as lost. */
            q->next = *pp;
            *pp = q;
            if (q->next == NULL) {
                s->wait_tail = &q->next;
            }
            store_fail_conn(s, PQerrorMessage(s->conn));
            fail_expired(expired);
            return;
        }
        fly_push(s, q);
    }
    int f = PQflush(s->conn);
    if (f < 0) {
        store_fail_conn(s, PQerrorMessage(s->conn));
    } else if (poll_want(s, UV_READABLE | (f == 1 ? UV_WRITABLE : 0), false)
               < 0) {
        store_fail_conn(s, "cannot poll the database socket");
    }
    fail_expired(expired);
}

static void
on_kick(uv_idle_t *h)
{
    struct pc_store *s = h->data;
    (void)uv_idle_stop(h);
    store_pump(s);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
    struct store_poll *p = h->data;
    struct pc_store *s = p->s;

    if (s->poll != p || s->conn == NULL) {
        return;
    }
    if (status < 0) {
        /* An error on the socket (libuv stops polling it): let libpq find
         * out what it is, so that it can move on to the next host and so
         * that the log gets its message rather than libuv's. */
        p->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (s->state == PC_STORE_CONNECTING && s->nprepare == 0) {
        switch (PQconnectPoll(s->conn)) {
        case PGRES_POLLING_FAILED:
            store_fail_conn(s, PQerrorMessage(s->conn));
            return;
        case PGRES_POLLING_OK:
            connected(s);
            return;
        case PGRES_POLLING_READING:
            if (poll_want(s, UV_READABLE, true) < 0) {
                store_fail_conn(s, "cannot poll the database socket");
            }
            return;
        default:
            if (poll_want(s, UV_WRITABLE, true) < 0) {
                store_fail_conn(s, "cannot poll the database socket");
            }
            return;
        }
    }
    if (events & UV_READABLE) {
        read_results(s);
    }
    if (s->conn != NULL && status < 0) {
        /* libpq saw nothing wrong: do not spin on a broken socket. */
        store_fail_conn(s, uv_strerror(status));
        return;
    }
    if (s->conn != NULL) {
        store_pump(s);
    }
}

/* Deadlines. */

/* Takes the waiting queries whose deadline has passed out of the FIFO. */
static struct store_query *
take_expired(struct pc_store *s)
{
    uint64_t now = pc_now_ms();
    struct store_query **pp = &s->wait_head;
    struct store_query *expired = NULL, **etail = &expired;

    while (*pp != NULL) {
        struct store_query *q = *pp;
        if (q->deadline_ms != 0 && q->deadline_ms <= now) {
            *pp = q->next;
            q->next = NULL;
            *etail = q;
            etail = &q->next;
        } else {
            pp = &q->next;
        }
    }
    s->wait_tail = pp;
    return expired;
}

/* Their callbacks, last thing before returning to the loop: they may queue
 * new queries or close the store. */
static void
fail_expired(struct store_query *expired)
{
    while (expired != NULL) {
        struct store_query *q = expired;
        expired = q->next;
        query_done(q, PC_ETIMEDOUT, NULL);
    }
}

static void
on_tick(uv_timer_t *t)
{
    struct pc_store *s = t->data;
    struct store_query *expired = take_expired(s);

    if (s->wait_head == NULL) {
        (void)uv_timer_stop(&s->tick);
    }
    fail_expired(expired);
}

/* API. */

/* A statement that may write waits for the mirror's confirmation at COMMIT
 * (PostgreSQL makes only transactions that wrote wait), so it is held while
 * the mirror is missing. Judged from the text, erring towards "writes":
 * data-changing commands, and the functions that change data. */
static bool
stmt_may_write(const char *sql)
{
    static const char *const words[] = {
        "insert ", "update ", "delete ", "alter ",  "pg_notify",
        "pchat_post", "pchat_admin", "setval", "nextval", NULL};
    char low[4096];
    size_t n = 0;

    for (const char *p = sql; *p != '\0' && n + 1 < sizeof(low); p++) {
        low[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + ('a' - 'A') : *p);
    }
    low[n] = '\0';
    for (int i = 0; words[i] != NULL; i++) {
        if (strstr(low, words[i]) != NULL) {
            return true;
        }
    }
    return n + 1 >= sizeof(low); /* too long to judge */
}

int
pc_store_new(struct pc_store **out, uv_loop_t *loop,
             const struct pc_store_cfg *cfg, pc_store_state_cb state_cb,
             void *state_arg)
{
    struct pc_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return -ENOMEM;
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (s->cfg.max_in_flight == 0) {
        s->cfg.max_in_flight = 64;
    }
    if (s->cfg.backoff_min_ms == 0) {
        s->cfg.backoff_min_ms = 100;
    }
    if (s->cfg.backoff_max_ms < s->cfg.backoff_min_ms) {
        s->cfg.backoff_max_ms = s->cfg.backoff_min_ms;
    }
    if (s->cfg.connect_timeout_ms == 0) {
        s->cfg.connect_timeout_ms = 5000;
    }
    s->conninfo = strdup(cfg->conninfo ? cfg->conninfo : "");
    if (s->conninfo == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->cfg.conninfo = s->conninfo;
    if (hl_parse(&s->hl, s->conninfo) < 0) {
        hl_free(&s->hl);
        free(s->conninfo);
        free(s);
        return -ENOMEM;
    }
    s->state_cb = state_cb;
    s->state_arg = state_arg;
    s->state = PC_STORE_DISCONNECTED;
    for (int i = 0; i < PC_STMT_COUNT; i++) {
        s->writes[i] = stmt_may_write(pc_stmts[i].sql);
    }
    s->wait_tail = &s->wait_head;
    s->fly_tail = &s->fly_head;
    (void)uv_timer_init(loop, &s->conn_timer);
    (void)uv_timer_init(loop, &s->tick);
    (void)uv_idle_init(loop, &s->kick);
    s->conn_timer.data = s;
    s->tick.data = s;
    s->kick.data = s;
    s->handles = 3;
    *out = s;
    return 0;
}

void
pc_store_set_name(struct pc_store *s, const char *name)
{
    s->name = name;
}

int
pc_store_start(struct pc_store *s)
{
    if (s->state == PC_STORE_DISCONNECTED) {
        connect_start(s);
    }
    if (s->reader != NULL) {
        (void)pc_store_start(s->reader);
    }
    return 0;
}

/* Copies nparams strings (NULL stays NULL) into a new array; *out is NULL
 * for none. */
static int
params_copy(char ***out, const char *const *params, int nparams)
{
    *out = NULL;
    if (nparams <= 0) {
        return 0;
    }
    char **copy = calloc((size_t)nparams, sizeof(char *));
    if (copy == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < nparams; i++) {
        if (params[i] != NULL && (copy[i] = strdup(params[i])) == NULL) {
            while (i-- > 0) {
                free(copy[i]);
            }
            free(copy);
            return -ENOMEM;
        }
    }
    *out = copy;
    return 0;
}

/* History reads on the standby. */

/* Statements that only read committed history, which a standby that has
 * applied every acknowledged commit answers the same as the primary. */
static bool
stmt_reads_history(enum pc_stmt stmt)
{
    switch (stmt) {
    case PC_STMT_HIST_BEFORE:
    case PC_STMT_HIST_AFTER:
    case PC_STMT_HIST_SEQ_OF:
    case PC_STMT_HIST_SEQ_AT:
    case PC_STMT_HIST_TARGETS:
        return true;
    default:
        return false;
    }
}

/* A read sent to the standby, kept so that it can go to the primary
 * instead if the standby does not answer. */
struct reroute {
    struct pc_store *s;
    enum pc_stmt stmt;
    int nparams;
    char **params;
    uint64_t deadline_ms;
    pc_store_cb cb;
    void *arg;
};

static void
reroute_free(struct reroute *rr)
{
    for (int i = 0; i < rr->nparams; i++) {
        free(rr->params[i]);
    }
    free(rr->params);
    free(rr);
}

static int queue_query(struct pc_store *s, enum pc_stmt stmt,
                       const char *sql, const char *const *params,
                       int nparams, uint64_t deadline_ms, bool retry,
                       pc_store_cb cb, void *arg);

static void
on_reader_result(void *arg, int status, PGresult *res)
{
    struct reroute *rr = arg;
    struct pc_store *s = rr->s;

    if (status == 0) {
        rr->cb(rr->arg, 0, res);
    } else if (s->closing
               || queue_query(s, rr->stmt, NULL,
                              (const char *const *)rr->params, rr->nparams,
                              rr->deadline_ms, false, rr->cb, rr->arg)
                      < 0) {
        rr->cb(rr->arg, PC_ECANCELED, NULL);
    } else if (status == PC_EDB) {
        /* E.g. canceled for a conflict with recovery: the primary answers
         * instead (a read only: resending it is harmless). */
        pc_log(PC_LOG_INFO, "store", "history read on the standby failed, "
               "asking the primary: %s",
               PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                   ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                   : "?");
    }
    reroute_free(rr);
}

static int
reader_query(struct pc_store *s, enum pc_stmt stmt,
             const char *const *params, int nparams, uint64_t deadline_ms,
             pc_store_cb cb, void *arg)
{
    struct reroute *rr = calloc(1, sizeof(*rr));
    if (rr == NULL) {
        return -ENOMEM;
    }
    *rr = (struct reroute){s, stmt, 0, NULL, deadline_ms, cb, arg};
    if (params_copy(&rr->params, params, nparams) < 0) {
        free(rr);
        return -ENOMEM;
    }
    rr->nparams = nparams;
    int rc = pc_store_query(s->reader, stmt, params, nparams, deadline_ms,
                            on_reader_result, rr);
    if (rc < 0) {
        reroute_free(rr);
    }
    return rc;
}

int
pc_store_set_reader(struct pc_store *s, const char *conninfo)
{
    struct pc_store_cfg cfg = s->cfg;

    if (s->reader != NULL || s->state != PC_STORE_DISCONNECTED) {
        return -EINVAL;
    }
    cfg.conninfo = conninfo;
    int rc = pc_store_new(&s->reader, s->loop, &cfg, NULL, NULL);
    if (rc < 0) {
        return rc;
    }
    pc_store_set_name(s->reader, "pchatd-reader");
    s->handles++;
    return 0;
}

void
pc_store_reads_standby(struct pc_store *s, bool ok)
{
    if (s->reader == NULL || s->reads_standby == ok) {
        return;
    }
    s->reads_standby = ok;
    pc_log(PC_LOG_NOTICE, "store", "history reads go to %s",
           ok ? "the standby (database.read_standby_conninfo)"
              : "the primary");
}

bool
pc_store_reading_standby(const struct pc_store *s)
{
    return s->reader != NULL && s->reads_standby
           && s->reader->state == PC_STORE_READY;
}

/* A retry goes behind the retries already waiting and ahead of every
 * first attempt (see pc_store_query_retry). */
static void
wait_insert(struct pc_store *s, struct store_query *q)
{
    struct store_query **pp = s->wait_tail;

    if (q->retry) {
        pp = &s->wait_head;
        while (*pp != NULL && (*pp)->retry) {
            pp = &(*pp)->next;
        }
    }
    q->next = *pp;
    *pp = q;
    if (q->next == NULL) {
        s->wait_tail = &q->next;
    }
}

static int
queue_query(struct pc_store *s, enum pc_stmt stmt, const char *sql,
            const char *const *params, int nparams, uint64_t deadline_ms,
            bool retry, pc_store_cb cb, void *arg)
{
    struct store_query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return -ENOMEM;
    }
    q->kind = Q_EXEC;
    q->stmt = stmt;
    q->sql = sql;
    q->deadline_ms = deadline_ms;
    q->cb = cb;
    q->arg = arg;
    if (params_copy(&q->params, params, nparams) < 0) {
        free(q);
        return -ENOMEM;
    }
    q->nparams = nparams;
    q->retry = retry;
    wait_insert(s, q);
    if (deadline_ms != 0 && !uv_is_active((uv_handle_t *)&s->tick)) {
        (void)uv_timer_start(&s->tick, on_tick, STORE_TICK_MS, STORE_TICK_MS);
    }
    if (s->state == PC_STORE_READY) {
        (void)uv_idle_start(&s->kick, on_kick);
    }
    return 0;
}

int
pc_store_listen(struct pc_store *s, const char *channel,
                pc_store_notify_cb cb, void *arg)
{
    size_t len = channel ? strlen(channel) : 0;

    /* NAMEDATALEN - 1: PostgreSQL would truncate a longer name. */
    if (len == 0 || len > 63 || cb == NULL || s->listen_channel != NULL) {
        return -EINVAL;
    }
    s->listen_channel = strdup(channel);
    if (s->listen_channel == NULL) {
        return -ENOMEM;
    }
    s->notify_cb = cb;
    s->notify_arg = arg;
    return 0;
}

int
pc_store_query(struct pc_store *s, enum pc_stmt stmt,
               const char *const *params, int nparams, uint64_t deadline_ms,
               pc_store_cb cb, void *arg)
{
    if (s->closing || (unsigned)stmt >= PC_STMT_COUNT) {
        return PC_ECANCELED;
    }
    if (stmt_reads_history(stmt) && pc_store_reading_standby(s)) {
        return reader_query(s, stmt, params, nparams, deadline_ms, cb, arg);
    }
    return queue_query(s, stmt, NULL, params, nparams, deadline_ms, false,
                       cb, arg);
}

int
pc_store_query_retry(struct pc_store *s, enum pc_stmt stmt,
                     const char *const *params, int nparams,
                     pc_store_cb cb, void *arg)
{
    if (s->closing || (unsigned)stmt >= PC_STMT_COUNT) {
        return PC_ECANCELED;
    }
    return queue_query(s, stmt, NULL, params, nparams, 0, true, cb, arg);
}

int
pc_store_query_sql(struct pc_store *s, const char *sql,
                   const char *const *params, int nparams,
                   uint64_t deadline_ms, pc_store_cb cb, void *arg)
{
    if (s->closing || sql == NULL) {
        return PC_ECANCELED;
    }
    return queue_query(s, PC_STMT_COUNT, sql, params, nparams, deadline_ms,
                       false, cb, arg);
}

void
pc_store_hold_writes(struct pc_store *s, bool hold)
{
    if (s->writes_held == hold) {
        return;
    }
    s->writes_held = hold;
    if (!hold && s->state == PC_STORE_READY && s->wait_head != NULL) {
        (void)uv_idle_start(&s->kick, on_kick);
    }
}

bool
pc_store_writes_held(const struct pc_store *s)
{
    return s->writes_held;
}

enum pc_store_state
pc_store_state(const struct pc_store *s)
{
    return s->state;
}

const char *
pc_store_server(const struct pc_store *s)
{
    return s->server[0] ? s->server : "-";
}

static void
own_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void
reader_closed(void *arg)
{
    handle_gone(arg);
}

void
pc_store_close(struct pc_store *s, void (*done_cb)(void *), void *done_arg)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->done_cb = done_cb;
    s->done_arg = done_arg;
    /* Waiting queries never ran. */
    while (s->wait_head != NULL) {
        struct store_query *q = s->wait_head;
        s->wait_head = q->next;
        query_done(q, PC_ECANCELED, NULL);
    }
    s->wait_tail = &s->wait_head;
    store_fail_conn(s, "closing");
    s->state = PC_STORE_CLOSED;
    if (s->reader != NULL) {
        /* Its reads fall back here, find the store closing and end with
         * PC_ECANCELED. */
        pc_store_close(s->reader, reader_closed, s);
    }
    uv_close((uv_handle_t *)&s->conn_timer, own_handle_closed);
    uv_close((uv_handle_t *)&s->tick, own_handle_closed);
    uv_close((uv_handle_t *)&s->kick, own_handle_closed);
}
