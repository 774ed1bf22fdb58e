/* The store engine and the migrations against a real PostgreSQL, started
 * by the test itself with tools/pg-private in a temporary directory. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <uv.h>

#include "store/migrations.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define PG_PORT  "5432"
#define PG_PORT2 "5433" /* a second server, in pg_dir/standby */

static char pg_dir[256];
static char pg_script[PATH_MAX];
static bool in_query; /* set while pc_store_query runs */

/* The private server. */

static int
pg_private_at(const char *cmd, const char *sub, const char *port)
{
    char line[PATH_MAX * 2 + 64];
    (void)snprintf(line, sizeof(line), "'%s' %s '%s%s%s' %s >/dev/null",
                   pg_script, cmd, pg_dir, *sub ? "/" : "", sub, port);
    return system(line);
}

static int
pg_private(const char *cmd)
{
    return pg_private_at(cmd, "", PG_PORT);
}

static void
conninfo_for(const char *db, char *out, size_t cap)
{
    (void)snprintf(out, cap, "host=%s port=%s dbname=%s user=pchat", pg_dir,
                   PG_PORT, db);
}

static void
quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *
db_connect(const char *db)
{
    char ci[PATH_MAX + 128];
    conninfo_for(db, ci, sizeof(ci));
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        print_error("connect %s: %s", db, PQerrorMessage(c));
        fail();
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static void
db_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        print_error("%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* The first column of the first row, as an integer (-1 if no row). */
static long
db_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long v = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        print_error("%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    if (PQntuples(r) > 0) {
        v = atol(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return v;
}

/* A fresh, empty database. */
static void
new_db(const char *name)
{
    char sql[256];
    PGconn *c = db_connect("pchat");
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
    db_exec(c, sql);
    (void)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    db_exec(c, sql);
    PQfinish(c);
}

static int nreported;

static void
count_report(const char *line)
{
    (void)line;
    nreported++;
}

static void
migrate_db(const char *name)
{
    char err[256];
    PGconn *c = db_connect(name);
    int rc = pc_migrate_apply(c, NULL, err, sizeof(err));
    if (rc != 0) {
        print_error("migrate: %s", err);
    }
    assert_int_equal(rc, 0);
    PQfinish(c);
}

/* Captures our own stderr (the log) into a file. */

static int saved_stderr = -1;
static char cap_path[PATH_MAX];

static void
capture_begin(void)
{
    (void)fflush(stderr);
    (void)snprintf(cap_path, sizeof(cap_path), "%s/capture.log", pg_dir);
    int fd = open(cap_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    (void)close(fd);
}

static char *
capture_end(void)
{
    static char text[65536];
    (void)fflush(stderr);
    (void)dup2(saved_stderr, 2);
    (void)close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(cap_path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    (void)fclose(f);
    (void)fputs(text, stderr); /* still shown in the test log */
    return text;
}

/* The loop and the store under test. */

struct qres {
    bool done;
    int status;
    int ntuples;
    int order;
    char val[128];
    char sqlstate[8];
};

struct fix {
    uv_loop_t loop;
    struct pc_store *s;
    enum pc_store_state state;
    unsigned nstate[PC_STORE_CLOSED + 1];
    bool freed;
    int ndone;
};

static void
on_state(void *arg, enum pc_store_state st)
{
    struct fix *f = arg;
    assert_false(in_query);
    f->state = st;
    f->nstate[st]++;
}

static struct fix *cur; /* for the completion order */

static void
on_result(void *arg, int status, PGresult *res)
{
    struct qres *r = arg;
    assert_false(in_query);
    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    r->order = cur ? ++cur->ndone : 0;
    if (status == 0 || status == PC_EDB) {
        assert_non_null(res);
    } else {
        assert_null(res);
    }
    if (res != NULL) {
        r->ntuples = PQntuples(res);
        if (r->ntuples > 0) {
            (void)snprintf(r->val, sizeof(r->val), "%s",
                           PQgetvalue(res, 0, 0));
        }
        const char *ss = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        (void)snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", ss ? ss : "");
    }
}

static int
submit(struct fix *f, enum pc_stmt stmt, const char *const *params, int n,
       uint64_t deadline_ms, struct qres *r)
{
    memset(r, 0, sizeof(*r));
    in_query = true;
    int rc = pc_store_query(f->s, stmt, params, n, deadline_ms, on_result, r);
    in_query = false;
    return rc;
}

static void
tick_noop(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*pred_fn)(const void *arg);

/* Runs the loop until pred(arg) holds or timeout_ms pass. */
static bool
run_until(struct fix *f, pred_fn pred, const void *arg, unsigned timeout_ms)
{
    uv_timer_t t;
    uint64_t end = pc_now_ms() + timeout_ms;
    bool ok;

    (void)uv_timer_init(&f->loop, &t);
    (void)uv_timer_start(&t, tick_noop, 10, 10);
    while (!(ok = pred == NULL ? false : pred(arg)) && pc_now_ms() < end) {
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static bool
is_done(const void *arg)
{
    return ((const struct qres *)arg)->done;
}

static bool
is_ready(const void *arg)
{
    return ((const struct fix *)arg)->state == PC_STORE_READY;
}

static bool
is_backoff(const void *arg)
{
    return ((const struct fix *)arg)->state == PC_STORE_BACKOFF;
}

static bool
is_freed(const void *arg)
{
    return ((const struct fix *)arg)->freed;
}

static void
fix_open(struct fix *f, const char *conninfo)
{
    struct pc_store_cfg cfg = {
        .conninfo = conninfo,
        .connect_timeout_ms = 3000,
        .backoff_min_ms = 50,
        .backoff_max_ms = 400,
        .max_in_flight = 4,
    };
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(pc_store_new(&f->s, &f->loop, &cfg, on_state, f), 0);
    assert_int_equal(pc_store_state(f->s), PC_STORE_DISCONNECTED);
    cur = f;
}

static void
fix_open_db(struct fix *f, const char *db)
{
    char ci[PATH_MAX + 128];
    conninfo_for(db, ci, sizeof(ci));
    fix_open(f, ci); /* the store keeps its own copy */
}

static void
on_freed(void *arg)
{
    ((struct fix *)arg)->freed = true;
}

/* Closes the store and checks that nothing is left on the loop. */
static void
fix_close(struct fix *f)
{
    pc_store_close(f->s, on_freed, f);
    assert_true(run_until(f, is_freed, f, 5000));
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    cur = NULL;
}

static void
start_ready(struct fix *f, const char *db)
{
    fix_open_db(f, db);
    assert_int_equal(pc_store_start(f->s), 0);
    assert_true(run_until(f, is_ready, f, 5000));
    assert_string_not_equal(pc_store_server(f->s), "-");
}

/* Migrations. */

static void
test_migrate_empty_then_again(void **state)
{
    char err[256];
    int version = -1;

    new_db("t_migrate");
    PGconn *c = db_connect("t_migrate");
    assert_int_equal(pc_migrate_current(c, &version, err, sizeof(err)), 0);
    assert_int_equal(version, 0);
    assert_true(pc_nmigrations > 0);
    assert_int_equal(pc_migrate_latest(),
                     pc_migrations[pc_nmigrations - 1].version);

    nreported = 0;
    assert_int_equal(pc_migrate_apply(c, count_report, err, sizeof(err)), 0);
    assert_int_equal(nreported, (int)pc_nmigrations);
    assert_int_equal(pc_migrate_current(c, &version, err, sizeof(err)), 0);
    assert_int_equal(version, pc_migrate_latest());
    assert_int_equal(db_long(c, "SELECT count(*) FROM pchat_schema"),
                     (long)pc_nmigrations);

    /* Again: nothing to do. */
    nreported = 0;
    assert_int_equal(pc_migrate_apply(c, count_report, err, sizeof(err)), 0);
    assert_int_equal(nreported, 0);
    assert_int_equal(db_long(c, "SELECT count(*) FROM pchat_schema"),
                     (long)pc_nmigrations);
    /* The advisory lock was let go. */
    assert_int_equal(db_long(c, "SELECT count(*) FROM pg_locks"
                                " WHERE locktype = 'advisory'"),
                     0);
    PQfinish(c);
}

struct migrator {
    pthread_barrier_t *go;
    int rc;
    int applied;
    char err[256];
};

static void *
migrate_thread(void *arg)
{
    struct migrator *m = arg;
    char ci[PATH_MAX + 128];
    conninfo_for("t_concurrent", ci, sizeof(ci));
    PGconn *c = PQconnectdb(ci);
    PQsetNoticeProcessor(c, quiet, NULL);
    (void)pthread_barrier_wait(m->go);
    if (PQstatus(c) != CONNECTION_OK) {
        m->rc = -1;
    } else {
        int before = 0, after = 0;
        m->rc = pc_migrate_current(c, &before, m->err, sizeof(m->err));
        if (m->rc == 0) {
            m->rc = pc_migrate_apply(c, NULL, m->err, sizeof(m->err));
        }
        if (m->rc == 0) {
            m->rc = pc_migrate_current(c, &after, m->err, sizeof(m->err));
        }
        m->applied = after;
    }
    PQfinish(c);
    return NULL;
}

static void
test_migrate_concurrent(void **state)
{
    pthread_barrier_t go;
    pthread_t th[2];
    struct migrator m[2];

    new_db("t_concurrent");
    assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
    for (int i = 0; i < 2; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        m[i].go = &go;
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &m[i]),
                         0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (m[i].rc != 0) {
            print_error("migrator %d: %s", i, m[i].err);
        }
        assert_int_equal(m[i].rc, 0);
        assert_int_equal(m[i].applied, pc_migrate_latest());
    }
    (void)pthread_barrier_destroy(&go);
    PGconn *c = db_connect("t_concurrent");
    assert_int_equal(db_long(c, "SELECT count(*) FROM pchat_schema"),
                     (long)pc_nmigrations);
    PQfinish(c);
}

static void
test_migrate_refuses_newer(void **state)
{
    char err[256];

    new_db("t_newer_m");
    migrate_db("t_newer_m");
    PGconn *c = db_connect("t_newer_m");
    db_exec(c, "INSERT INTO pchat_schema (version, name) VALUES (9999, 'x')");
    assert_int_equal(pc_migrate_apply(c, NULL, err, sizeof(err)),
                     PC_ESCHEMA);
    assert_non_null(strstr(err, "9999"));
    PQfinish(c);
}

/* The engine. */

/* A database newer than this program: the store never becomes ready. */
static void
test_schema_newer(void **state)
{
    struct fix f;

    new_db("t_newer");
    migrate_db("t_newer");
    PGconn *c = db_connect("t_newer");
    db_exec(c, "INSERT INTO pchat_schema (version, name) VALUES (9999, 'x')");
    PQfinish(c);

    capture_begin();
    fix_open_db(&f, "t_newer");
    assert_int_equal(pc_store_start(f.s), 0);
    (void)run_until(&f, NULL, NULL, 1000);
    char *log = capture_end();
    assert_int_equal(f.nstate[PC_STORE_READY], 0);
    assert_true(f.nstate[PC_STORE_BACKOFF] >= 2); /* it keeps trying */
    assert_non_null(strstr(log, "database schema version 9999 is newer than "
                                "this pchatd"));
    assert_non_null(strstr(log, "upgrade pchatd"));
    fix_close(&f);
}

/* No schema at all: backoff, and the log says what to run. */
static void
test_schema_missing(void **state)
{
    struct fix f;
    struct qres r;

    new_db("t_empty");
    capture_begin();
    fix_open_db(&f, "t_empty");
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0,
                            pc_now_ms() + 300, &r),
                     0);
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_done, &r, 3000));
    char *log = capture_end();
    assert_int_equal(r.status, PC_ETIMEDOUT);
    assert_int_equal(f.nstate[PC_STORE_READY], 0);
    assert_true(f.nstate[PC_STORE_BACKOFF] >= 1);
    assert_non_null(strstr(log, "pchatctl db migrate"));
    fix_close(&f);
}

static void
test_round_trip(void **state)
{
    struct fix f;
    struct qres r;
    char want[16];

    new_db("t_main");
    migrate_db("t_main");
    start_ready(&f, "t_main");
    assert_int_equal(pc_store_state(f.s), PC_STORE_READY);
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &r), 0);
    assert_false(r.done); /* never from inside pc_store_query */
    assert_true(run_until(&f, is_done, &r, 3000));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.ntuples, 1);
    (void)snprintf(want, sizeof(want), "%d", pc_migrate_latest());
    assert_string_equal(r.val, want);

    /* application_name is set unless the conninfo gives one. */
    PGconn *c = db_connect("t_main");
    assert_int_equal(db_long(c, "SELECT count(*) FROM pg_stat_activity"
                                " WHERE application_name = 'pchatd'"
                                " AND datname = 't_main'"),
                     1);
    PQfinish(c);
    fix_close(&f);
}

/* Queued before the connection exists; more than max_in_flight; answered
 * in order once ready. */
static void
test_queued_before_connect(void **state)
{
    struct fix f;
    struct qres r[10];
    char name[10][32];

    fix_open_db(&f, "t_main");
    for (int i = 0; i < 10; i++) {
        (void)snprintf(name[i], sizeof(name[i]), "#early%d", i);
        const char *p[2] = {name[i], name[i]};
        assert_int_equal(submit(&f, PC_STMT_ROOM_CREATE, p, 2, 0, &r[i]), 0);
    }
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_done, &r[9], 5000));
    for (int i = 0; i < 10; i++) {
        assert_true(r[i].done);
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].order, i + 1);
        assert_int_equal(r[i].ntuples, 1);
    }
    fix_close(&f);
}

/* A query sent again after PC_EUNKNOWN (pc_store_query_retry) goes ahead
 * of the first attempts still waiting, behind the retries before it: a
 * post retried behind a later one would take its seq after it. */
static void
test_retry_goes_first(void **state)
{
    struct fix f;
    struct qres first[2], retry[2];

    fix_open_db(&f, "t_main");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0,
                                &first[i]),
                         0);
    }
    for (int i = 0; i < 2; i++) {
        memset(&retry[i], 0, sizeof(retry[i]));
        in_query = true;
        assert_int_equal(pc_store_query_retry(f.s, PC_STMT_SCHEMA_VERSION,
                                              NULL, 0, on_result, &retry[i]),
                         0);
        in_query = false;
    }
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_done, &first[1], 5000));
    assert_int_equal(retry[0].order, 1);
    assert_int_equal(retry[1].order, 2);
    assert_int_equal(first[0].order, 3);
    assert_int_equal(first[1].order, 4);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(retry[i].status, 0);
        assert_int_equal(first[i].status, 0);
    }
    fix_close(&f);
}

/* One failing statement does not disturb the one after it, even when
 * both are in the pipeline together. */
static void
test_sql_error(void **state)
{
    struct fix f;
    struct qres bad, good, bad2;
    const char *p[4] = {"not-a-number", "nt", NULL, NULL};

    start_ready(&f, "t_main");
    assert_int_equal(submit(&f, PC_STMT_ROOM_SET_MODES, p, 4, 0, &bad), 0);
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &good),
                     0);
    /* Wrong parameter count: refused by the server, not by us. */
    assert_int_equal(submit(&f, PC_STMT_ROOM_SET_MODES, p, 1, 0, &bad2), 0);
    assert_true(run_until(&f, is_done, &bad2, 3000));
    assert_int_equal(bad.status, PC_EDB);
    assert_string_equal(bad.sqlstate, "22P02");
    assert_int_equal(good.status, 0);
    assert_int_equal(good.order, bad.order + 1);
    assert_int_equal(bad2.status, PC_EDB);
    assert_int_equal(pc_store_state(f.s), PC_STORE_READY);
    fix_close(&f);
}

static void
test_close_with_queued(void **state)
{
    struct fix f;
    struct qres r[3], late;

    fix_open_db(&f, "t_main");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0,
                                pc_now_ms() + 60000, &r[i]),
                         0);
    }
    assert_int_equal(pc_store_start(f.s), 0);
    pc_store_close(f.s, on_freed, &f);
    for (int i = 0; i < 3; i++) {
        assert_true(r[i].done);
        assert_int_equal(r[i].status, PC_ECANCELED);
    }
    /* Until it is freed, the store refuses new work. */
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &late),
                     PC_ECANCELED);
    assert_true(run_until(&f, is_freed, &f, 3000));
    assert_false(late.done);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* Closing from inside a query's callback, with more queries in the
 * pipeline and in the queue. */
struct closer {
    struct fix *f;
    struct qres r;
};

static void
close_from_cb(void *arg, int status, PGresult *res)
{
    struct closer *c = arg;
    on_result(&c->r, status, res);
    pc_store_close(c->f->s, on_freed, c->f);
    pc_store_close(c->f->s, on_freed, c->f); /* twice is harmless */
}

static void
test_close_in_callback(void **state)
{
    struct fix f;
    struct closer first = {&f, {0}};
    struct qres r[8];

    start_ready(&f, "t_main");
    assert_int_equal(pc_store_query(f.s, PC_STMT_SCHEMA_VERSION, NULL, 0, 0,
                                    close_from_cb, &first),
                     0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &r[i]),
                         0);
    }
    assert_true(run_until(&f, is_freed, &f, 3000));
    assert_int_equal(first.r.status, 0);
    for (int i = 0; i < 8; i++) {
        assert_true(r[i].done);
        /* Sent ones may have run; waiting ones did not. */
        assert_true(r[i].status == PC_EUNKNOWN
                    || r[i].status == PC_ECANCELED);
    }
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* LISTEN: a NOTIFY from another session reaches the callback, only for
 * our channel, and the LISTEN survives a lost connection. */
struct heard {
    int n;
    char payload[64];
};

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct heard *h = arg;
    assert_false(in_query);
    assert_string_equal(channel, "pchat_acl");
    h->n++;
    (void)snprintf(h->payload, sizeof(h->payload), "%s", payload);
}

static bool
heard_one(const void *arg)
{
    return ((const struct heard *)arg)->n > 0;
}

static bool
ready_again(const void *arg)
{
    const struct fix *f = arg;
    return f->state == PC_STORE_READY && f->nstate[PC_STORE_READY] >= 2;
}

static void
test_listen(void **state)
{
    struct fix f;
    struct heard h = {0};

    fix_open_db(&f, "t_main");
    assert_int_equal(pc_store_listen(f.s, "", on_notify, &h), -EINVAL);
    assert_int_equal(pc_store_listen(f.s, "pchat_acl", NULL, &h), -EINVAL);
    assert_int_equal(pc_store_listen(f.s, "pchat_acl", on_notify, &h), 0);
    assert_int_equal(pc_store_listen(f.s, "other", on_notify, &h), -EINVAL);
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_ready, &f, 5000));

    PGconn *c = db_connect("t_main");
    db_exec(c, "NOTIFY other, 'x'");
    db_exec(c, "NOTIFY pchat_acl, 'room 42'");
    assert_true(run_until(&f, heard_one, &h, 3000));
    assert_int_equal(h.n, 1);
    assert_string_equal(h.payload, "room 42");

    /* The connection is lost; the store reconnects and listens again. */
    db_exec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE application_name = 'pchatd' AND datname = 't_main'");
    assert_true(run_until(&f, ready_again, &f, 10000));
    h.n = 0;
    db_exec(c, "NOTIFY pchat_acl");
    assert_true(run_until(&f, heard_one, &h, 3000));
    assert_string_equal(h.payload, "");
    PQfinish(c);
    fix_close(&f);
}

/* The mirrored-database case: the first host is up but read-only, so
 * libpq (target_session_attrs=read-write) closes that socket and connects
 * to the second host on a new one, often with the same number. */
static void
test_multi_host(void **state)
{
    struct fix f;
    char ci[PATH_MAX + 256];
    struct qres r;

    assert_int_equal(pg_private_at("start", "standby", PG_PORT2), 0);
    char ro[512];
    (void)snprintf(ro, sizeof(ro),
                   "host=%s/standby port=%s dbname=pchat user=pchat", pg_dir,
                   PG_PORT2);
    PGconn *c = PQconnectdb(ro);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetNoticeProcessor(c, quiet, NULL);
    db_exec(c, "DROP DATABASE IF EXISTS t_main");
    db_exec(c, "CREATE DATABASE t_main");
    db_exec(c, "ALTER SYSTEM SET default_transaction_read_only = on");
    db_exec(c, "SELECT pg_reload_conf()");
    PQfinish(c);

    (void)snprintf(ci, sizeof(ci),
                   "host=%s/standby,%s port=%s,%s dbname=t_main user=pchat "
                   "target_session_attrs=read-write",
                   pg_dir, pg_dir, PG_PORT2, PG_PORT);
    fix_open(&f, ci);
    assert_int_equal(pc_store_start(f.s), 0);
    /* Well within one connect timeout, and without a retry. */
    assert_true(run_until(&f, is_ready, &f, 2000));
    assert_int_equal(f.nstate[PC_STORE_BACKOFF], 0);
    char want[512];
    (void)snprintf(want, sizeof(want), "%s:%s", pg_dir, PG_PORT);
    assert_string_equal(pc_store_server(f.s), want);

    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &r), 0);
    assert_true(run_until(&f, is_done, &r, 3000));
    assert_int_equal(r.status, 0);
    fix_close(&f);
    assert_int_equal(pg_private_at("stop", "standby", PG_PORT2), 0);
}

/* A URI works as well as key=value, and its application_name wins. */
static void
test_uri(void **state)
{
    struct fix f;
    char uri[512];

    (void)snprintf(uri, sizeof(uri),
                   "postgresql:///t_main?host=%s&port=%s&user=pchat"
                   "&application_name=pchat-uri-test",
                   pg_dir, PG_PORT);
    fix_open(&f, uri);
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_ready, &f, 3000));
    PGconn *c = db_connect("t_main");
    assert_int_equal(db_long(c, "SELECT count(*) FROM pg_stat_activity"
                                " WHERE application_name = 'pchat-uri-test'"),
                     1);
    PQfinish(c);
    fix_close(&f);
}

/* A rejected connection string: logged, then backoff. */
static void
test_bad_conninfo(void **state)
{
    struct fix f;

    capture_begin();
    fix_open(&f, "host=/nonexistent/pchat-test port=1 dbname=x");
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_backoff, &f, 2000));
    char *log = capture_end();
    assert_non_null(strstr(log, "/nonexistent/pchat-test"));
    assert_null(strstr(log, "\n\n"));
    fix_close(&f);
}

static PGconn *watch_conn;

static bool
lock_waiting(const void *arg)
{
    (void)arg;
    return db_long(watch_conn, "SELECT count(*) FROM pg_locks WHERE NOT granted") > 0;
}

static bool
all_done(const void *arg)
{
    const struct qres *r = arg;
    for (; r->order >= 0; r++) { /* ends with order -1 */
        if (!r->done) {
            return false;
        }
    }
    return true;
}

/* The server goes away with a query in flight and others waiting, and
 * comes back. */
static void
test_outage(void **state)
{
    struct fix f;
    struct qres stuck, ghost[2], waiting, again;
    char id[128];

    start_ready(&f, "t_main");

    /* A room whose row another session holds locked. */
    struct qres made;
    const char *cp[2] = {"#locked", "#locked"};
    assert_int_equal(submit(&f, PC_STMT_ROOM_CREATE, cp, 2, 0, &made), 0);
    assert_true(run_until(&f, is_done, &made, 3000));
    assert_int_equal(made.status, 0);
    (void)snprintf(id, sizeof(id), "%s", made.val);
    PGconn *holder = db_connect("t_main");
    watch_conn = db_connect("t_main");
    db_exec(holder, "BEGIN");
    char sql[256];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT 1 FROM rooms WHERE id = %s FOR UPDATE", id);
    db_exec(holder, sql);

    const char *tp[4] = {id, "new topic", "tester", "0"};
    assert_int_equal(submit(&f, PC_STMT_ROOM_SET_TOPIC, tp, 4, 0, &stuck), 0);
    assert_true(run_until(&f, lock_waiting, NULL, 3000));
    PQfinish(watch_conn);

    /* Stopped while the update waits on the lock. An immediate stop, so
     * that the holder's end cannot let the update commit first. */
    capture_begin();
    assert_int_equal(setenv("PG_STOP_MODE", "immediate", 1), 0);
    assert_int_equal(pg_private("stop"), 0);
    assert_int_equal(unsetenv("PG_STOP_MODE"), 0);
    assert_true(run_until(&f, is_done, &stuck, 5000));
    assert_int_equal(stuck.status, PC_EUNKNOWN);
    assert_true(run_until(&f, is_backoff, &f, 2000));
    PQfinish(holder);

    /* While it is down: deadlines pass and the queries never run. */
    const char *gp0[2] = {"#ghost0", "#ghost0"};
    const char *gp1[2] = {"#ghost1", "#ghost1"};
    assert_int_equal(submit(&f, PC_STMT_ROOM_CREATE, gp0, 2,
                            pc_now_ms() + 200, &ghost[0]),
                     0);
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &waiting),
                     0);
    assert_int_equal(submit(&f, PC_STMT_ROOM_CREATE, gp1, 2,
                            pc_now_ms() + 300, &ghost[1]),
                     0);
    assert_true(run_until(&f, is_done, &ghost[1], 3000));
    assert_true(ghost[0].done);
    assert_int_equal(ghost[0].status, PC_ETIMEDOUT);
    assert_int_equal(ghost[1].status, PC_ETIMEDOUT);
    assert_false(waiting.done); /* no deadline: it waits */
    assert_int_equal(f.nstate[PC_STORE_READY], 1);

    /* Back: the store reconnects by itself and the waiting query runs. */
    assert_int_equal(pg_private("start"), 0);
    assert_true(run_until(&f, is_done, &waiting, 10000));
    char *log = capture_end();
    assert_int_equal(waiting.status, 0);
    assert_int_equal(pc_store_state(f.s), PC_STORE_READY);
    assert_int_equal(f.nstate[PC_STORE_READY], 2);
    assert_non_null(strstr(log, "database ready"));

    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &again),
                     0);
    assert_true(run_until(&f, is_done, &again, 3000));
    assert_int_equal(again.status, 0);

    PGconn *c = db_connect("t_main");
    assert_int_equal(db_long(c, "SELECT count(*) FROM rooms"
                                " WHERE name LIKE '#ghost%'"),
                     0);
    PQfinish(c);
    fix_close(&f);
}

/* Many queries through a small pipeline, some with deadlines far off. */
static void
test_many(void **state)
{
    struct fix f;
    enum { N = 500 };
    static struct qres r[N + 1];

    start_ready(&f, "t_main");
    for (int i = 0; i < N; i++) {
        assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0,
                                i % 2 ? pc_now_ms() + 60000 : 0, &r[i]),
                         0);
    }
    r[N].order = -1;
    assert_true(run_until(&f, all_done, r, 10000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].order, i + 1);
    }
    fix_close(&f);
}

/* The fixture: one private server for the whole run. */

/* History reads through a reader connection (here to the same server,
 * which stands for the standby): answered there, a failure there is asked
 * again of the primary, and closing with a reader open frees everything. */
static bool
is_reading(const void *arg)
{
    return pc_store_reading_standby(((const struct fix *)arg)->s);
}

static void
test_reader(void **state)
{
    static const char *const seq_of[2] = {"1",
                                          "00000000-0000-0000-0000-000000000000"};
    static const char *const bad[2] = {"not a number", "x"};
    char ci[PATH_MAX + 128];
    struct fix f;
    struct qres r;

    new_db("t_reader");
    migrate_db("t_reader");
    conninfo_for("t_reader", ci, sizeof(ci));
    fix_open(&f, ci);
    assert_int_equal(pc_store_set_reader(f.s, ci), 0);
    assert_int_equal(pc_store_set_reader(f.s, ci), -EINVAL);
    assert_int_equal(pc_store_start(f.s), 0);
    assert_true(run_until(&f, is_ready, &f, 5000));
    assert_false(pc_store_reading_standby(f.s)); /* not allowed yet */
    pc_store_reads_standby(f.s, true);
    assert_true(run_until(&f, is_reading, &f, 5000));

    PGconn *c = db_connect("t_reader");
    assert_int_equal(submit(&f, PC_STMT_HIST_SEQ_OF, seq_of, 2, 0, &r), 0);
    assert_true(run_until(&f, is_done, &r, 3000));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.ntuples, 0);
    /* The reader answered: it ran a statement beyond its setup. */
    assert_int_equal(db_long(c, "SELECT count(*) FROM pg_stat_activity"
                                " WHERE application_name = 'pchatd-reader'"
                                " AND query LIKE '%FROM messages WHERE room_id"
                                " = $1 AND msgid%'"),
                     1);
    /* An error there: asked again of the primary, whose error is final. */
    capture_begin();
    assert_int_equal(submit(&f, PC_STMT_HIST_SEQ_OF, bad, 2, 0, &r), 0);
    assert_true(run_until(&f, is_done, &r, 3000));
    const char *log = capture_end();
    assert_int_equal(r.status, PC_EDB);
    assert_string_equal(r.sqlstate, "22P02");
    assert_non_null(strstr(log, "asking the primary"));
    /* Closing with a read queued on the reader: canceled, once. */
    assert_int_equal(submit(&f, PC_STMT_HIST_SEQ_OF, seq_of, 2, 0, &r), 0);
    PQfinish(c);
    fix_close(&f);
    assert_true(r.done);
    assert_int_equal(r.status, PC_ECANCELED);
}

/* The mirror watcher. */

struct mfix {
    struct pc_mirror *m;
    enum pc_mirror_state want;
    bool freed;
};

static bool
mirror_is(const void *arg)
{
    const struct mfix *mf = arg;
    return pc_mirror_state(mf->m) == mf->want;
}

static bool
mirror_freed(const void *arg)
{
    return ((const struct mfix *)arg)->freed;
}

static void
on_mirror_freed(void *arg)
{
    ((struct mfix *)arg)->freed = true;
}

static void
mirror_open(struct fix *f, struct mfix *mf, enum pc_mirror_policy policy)
{
    char ci[PATH_MAX + 128];
    struct pc_mirror_cfg cfg = {
        .store = {.conninfo = ci, .connect_timeout_ms = 3000,
                  .backoff_min_ms = 50, .backoff_max_ms = 400},
        .policy = policy,
        .timeout_ms = 300,
        .check_ms = 50,
    };
    conninfo_for("t_mirror", ci, sizeof(ci));
    memset(mf, 0, sizeof(*mf));
    assert_int_equal(pc_mirror_new(&mf->m, &f->loop, &cfg, f->s), 0);
    /* Held until the first look. */
    assert_true(pc_store_writes_held(f->s));
    assert_int_equal(pc_mirror_start(mf->m), 0);
}

static void
mirror_close(struct fix *f, struct mfix *mf)
{
    pc_mirror_close(mf->m, on_mirror_freed, mf);
    assert_true(run_until(f, mirror_freed, mf, 5000));
    assert_false(pc_store_writes_held(f->s));
}

static void
test_mirror_policies(void **state)
{
    static const char *const empty[8] = {"{}", "{}", "{}", "{}",
                                         "{}", "{}", "{}", "{}"};
    struct fix f;
    struct mfix mf;
    struct qres w, r;
    enum pc_mirror_policy pol;

    assert_int_equal(pc_mirror_parse_policy("availability", &pol), 0);
    assert_int_equal(pol, PC_MIRROR_AVAILABILITY);
    assert_int_equal(pc_mirror_parse_policy("sometimes", &pol), PC_ECONFIG);
    new_db("t_mirror");
    migrate_db("t_mirror");
    start_ready(&f, "t_mirror");
    PGconn *c = db_connect("t_mirror");

    /* One server, nothing configured: nothing to wait for. */
    mirror_open(&f, &mf, PC_MIRROR_DURABILITY);
    mf.want = PC_MIRROR_NONE;
    assert_true(run_until(&f, mirror_is, &mf, 5000));
    assert_false(pc_store_writes_held(f.s));

    /* A synchronous standby that never comes: writes are held (and time
     * out unsent), reads go past them; nothing is switched. */
    capture_begin();
    db_exec(c, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    db_exec(c, "SELECT pg_reload_conf()");
    mf.want = PC_MIRROR_MISSING;
    assert_true(run_until(&f, mirror_is, &mf, 5000));
    assert_true(pc_store_writes_held(f.s));
    assert_int_equal(submit(&f, PC_STMT_POST, empty, 8, pc_now_ms() + 300,
                            &w),
                     0);
    assert_int_equal(submit(&f, PC_STMT_SCHEMA_VERSION, NULL, 0, 0, &r), 0);
    assert_true(run_until(&f, is_done, &r, 3000));
    assert_int_equal(r.status, 0);
    assert_false(w.done);
    assert_true(run_until(&f, is_done, &w, 3000));
    assert_int_equal(w.status, PC_ETIMEDOUT);
    (void)run_until(&f, NULL, NULL, 500); /* longer than timeout_ms */
    assert_int_equal(pc_mirror_state(mf.m), PC_MIRROR_MISSING);
    assert_int_equal(pc_mirror_async_switches(mf.m), 0);
    mirror_close(&f, &mf);

    /* availability: switched to asynchronous after timeout_ms; writes
     * flow again. */
    mirror_open(&f, &mf, PC_MIRROR_AVAILABILITY);
    mf.want = PC_MIRROR_ASYNC;
    assert_true(run_until(&f, mirror_is, &mf, 5000));
    assert_int_equal(pc_mirror_async_switches(mf.m), 1);
    assert_false(pc_store_writes_held(f.s));
    assert_int_equal(db_long(c, "SELECT length(current_setting("
                                "'synchronous_standby_names'))"),
                     0);
    assert_int_equal(submit(&f, PC_STMT_POST, empty, 8, pc_now_ms() + 3000,
                            &w),
                     0);
    assert_true(run_until(&f, is_done, &w, 3000));
    assert_int_equal(w.status, 0);
    mirror_close(&f, &mf);
    const char *log = capture_end();
    assert_non_null(strstr(log, "mirror missing"));
    assert_non_null(strstr(log, "MIRROR LOST"));

    db_exec(c, "ALTER SYSTEM RESET synchronous_standby_names");
    db_exec(c, "SELECT pg_reload_conf()");
    PQfinish(c);
    fix_close(&f);
}

static void
on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "store_test: timed out\n";
    (void)write(2, msg, sizeof(msg) - 1);
    (void)pg_private_at("stop", "standby", PG_PORT2);
    (void)pg_private("stop");
    _exit(1);
}

static int
group_setup(void **state)
{
    const char *src = getenv("PCHAT_SRCDIR");
    if (src == NULL) {
        src = getenv("srcdir");
    }
    if (src == NULL) {
        src = PC_TEST_SRCDIR;
    }
    (void)snprintf(pg_script, sizeof(pg_script), "%s/tools/pg-private", src);
    (void)snprintf(pg_dir, sizeof(pg_dir), "/tmp/pchat-store-XXXXXX");
    if (mkdtemp(pg_dir) == NULL) {
        return -1;
    }
    if (pg_private("start") != 0) {
        (void)fprintf(stderr, "cannot start PostgreSQL with %s\n", pg_script);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)pg_private_at("stop", "standby", PG_PORT2);
    (void)pg_private("stop");
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_empty_then_again),
        cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_migrate_refuses_newer),
        cmocka_unit_test(test_schema_newer),
        cmocka_unit_test(test_schema_missing),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_queued_before_connect),
        cmocka_unit_test(test_sql_error),
        cmocka_unit_test(test_close_with_queued),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_multi_host),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_bad_conninfo),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_retry_goes_first),
        cmocka_unit_test(test_outage),
        cmocka_unit_test(test_mirror_policies),
        cmocka_unit_test(test_reader),
    };
    (void)signal(SIGALRM, on_alarm);
    (void)alarm(300);
    pc_log_set_level(PC_LOG_DEBUG);
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
