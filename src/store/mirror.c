#include "config.h"

#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* The mirror watcher: see store.h. Its connection is its own, because a
 * COMMIT waiting for a missing standby blocks every later statement on the
 * store's connection (pipeline order), and the watcher must still be able
 * to look and, with the availability policy, to switch. */

/* One row: the configured names, how many standbys count as synchronous
 * now, how many are needed (FIRST n / ANY n, else 1), how many stream,
 * whether the names come from postgresql.auto.conf (ALTER SYSTEM: our
 * switch), whether this role may see pg_stat_replication's details, and
 * synchronous_commit. */
static const char mirror_status_sql[] =
    "WITH s AS (SELECT current_setting('synchronous_standby_names') AS names,"
    " (SELECT sourcefile FROM pg_settings"
    " WHERE name = 'synchronous_standby_names') AS file),"
    " r AS (SELECT count(*) FILTER (WHERE sync_state IN ('sync', 'quorum'))"
    " AS nsync, count(*) FILTER (WHERE state = 'streaming') AS streaming"
    " FROM pg_stat_replication)"
    " SELECT s.names, r.nsync,"
    " coalesce((regexp_match(s.names,"
    " '^\\s*(?:first\\s+|any\\s+)?(\\d+)\\s*\\(', 'i'))[1]::int, 1),"
    " r.streaming, coalesce(s.file LIKE '%postgresql.auto.conf', false),"
    " pg_has_role('pg_read_all_stats', 'USAGE'),"
    " current_setting('synchronous_commit'), pg_is_in_recovery()"
    " FROM s, r";
static const char mirror_async_sql[] =
    "ALTER SYSTEM SET synchronous_standby_names = ''";
static const char mirror_reset_sql[] =
    "ALTER SYSTEM RESET synchronous_standby_names";
static const char mirror_reload_sql[] = "SELECT pg_reload_conf()";

enum mirror_step {
    STEP_IDLE,
    STEP_STATUS,   /* status query in flight */
    STEP_ALTER,    /* ALTER SYSTEM in flight */
    STEP_RELOAD,   /* pg_reload_conf() in flight */
};

struct pc_mirror {
    uv_loop_t *loop;
    struct pc_mirror_cfg cfg;
    struct pc_store *store; /* the one whose writes are held */
    struct pc_store *mon;   /* our own connection */
    uv_timer_t timer;
    enum pc_mirror_state state;
    enum mirror_step step;
    bool to_async;          /* the ALTER under way: to async, or back */
    uint64_t missing_since; /* 0: not missing */
    uint64_t switches;
    uint64_t settle_ms;     /* no new switch before this (a reload is
                               seen by our session a little later) */
    bool warned_commit;
    bool warned_reads;
    bool check_failing; /* logged once until a check succeeds */
    bool closing;
    unsigned handles;
    void (*done_cb)(void *);
    void *done_arg;
};

static void mirror_check(struct pc_mirror *m);

const char *
pc_mirror_state_name(enum pc_mirror_state st)
{
    switch (st) {
    case PC_MIRROR_UNKNOWN: return "unknown";
    case PC_MIRROR_NONE: return "none";
    case PC_MIRROR_SYNC: return "sync";
    case PC_MIRROR_MISSING: return "missing";
    case PC_MIRROR_ASYNC: return "async";
    case PC_MIRROR_BLIND: return "blind";
    }
    return "?";
}

const char *
pc_mirror_policy_name(enum pc_mirror_policy p)
{
    return p == PC_MIRROR_AVAILABILITY ? "availability" : "durability";
}

int
pc_mirror_parse_policy(const char *name, enum pc_mirror_policy *out)
{
    if (strcmp(name, "durability") == 0) {
        *out = PC_MIRROR_DURABILITY;
    } else if (strcmp(name, "availability") == 0) {
        *out = PC_MIRROR_AVAILABILITY;
    } else {
        return PC_ECONFIG;
    }
    return 0;
}

static void
set_state(struct pc_mirror *m, enum pc_mirror_state st, const char *names,
          long long streaming)
{
    if (m->state != st) {
        enum pc_mirror_state was = m->state;
        m->state = st;
        switch (st) {
        case PC_MIRROR_UNKNOWN:
            pc_log(PC_LOG_DEBUG, "mirror", "mirror state unknown until the "
                   "next check; writes held");
            break;
        case PC_MIRROR_NONE:
            pc_log(PC_LOG_NOTICE, "mirror", "no synchronous standby is "
                   "configured (synchronous_standby_names is empty): "
                   "acknowledged posts live on one database server");
            break;
        case PC_MIRROR_SYNC:
            pc_log(was == PC_MIRROR_UNKNOWN ? PC_LOG_INFO : PC_LOG_NOTICE,
                   "mirror", "mirror in sync synchronous_standby_names=%s "
                   "streaming=%lld", names, streaming);
            break;
        case PC_MIRROR_MISSING:
            pc_log(PC_LOG_WARN, "mirror", "mirror missing: no synchronous "
                   "standby streaming (synchronous_standby_names=%s); posts "
                   "are held and refused after database.post_timeout_ms "
                   "policy=%s%s", names,
                   pc_mirror_policy_name(m->cfg.policy),
                   m->cfg.policy == PC_MIRROR_AVAILABILITY
                       ? " (switching to asynchronous after "
                         "database.mirror_timeout_ms)"
                       : "");
            break;
        case PC_MIRROR_ASYNC:
            pc_log(PC_LOG_WARN, "mirror", "database is in asynchronous "
                   "commit (switched by the availability policy): "
                   "acknowledged posts live on one server until a standby "
                   "streams again");
            break;
        case PC_MIRROR_BLIND:
            pc_log(PC_LOG_WARN, "mirror", "this role cannot read "
                   "pg_stat_replication: the mirror is not watched and "
                   "writes are never held (GRANT pg_monitor TO the pchat "
                   "role)");
            break;
        }
    }
    if (st != PC_MIRROR_MISSING) {
        m->missing_since = 0;
    } else if (m->missing_since == 0) {
        m->missing_since = pc_now_ms();
    }
    pc_store_hold_writes(m->store, st == PC_MIRROR_UNKNOWN
                                       || st == PC_MIRROR_MISSING);
    if (st != PC_MIRROR_SYNC) {
        pc_store_reads_standby(m->store, false);
    }
}

static uint64_t
query_deadline(const struct pc_mirror *m)
{
    uint32_t ms = m->cfg.check_ms * 4;
    return pc_now_ms() + (ms < 2000 ? 2000 : ms);
}

static void on_alter(void *arg, int status, PGresult *res);

/* ALTER SYSTEM (to async, or back), then pg_reload_conf(). */
static void
mirror_switch(struct pc_mirror *m, bool to_async)
{
    m->to_async = to_async;
    m->step = STEP_ALTER;
    if (pc_store_query_sql(m->mon, to_async ? mirror_async_sql
                                            : mirror_reset_sql,
                           NULL, 0, query_deadline(m), on_alter, m)
        < 0) {
        m->step = STEP_IDLE;
    }
}

static void
on_alter(void *arg, int status, PGresult *res)
{
    struct pc_mirror *m = arg;
    enum mirror_step step = m->step;
    uint64_t missing_ms = m->missing_since ? pc_now_ms() - m->missing_since
                                           : 0;

    m->step = STEP_IDLE;
    if (m->closing) {
        return;
    }
    if (status != 0) {
        const char *why = status == PC_EDB
                              ? PQresultErrorField(res,
                                                   PG_DIAG_MESSAGE_PRIMARY)
                              : pc_strerror(status);
        pc_log(PC_LOG_ERR, "mirror", "cannot switch the database %s: %s "
               "(the pchat role needs GRANT ALTER SYSTEM ON PARAMETER "
               "synchronous_standby_names and EXECUTE on pg_reload_conf(), "
               "or an operator switches by hand: see docs/database.md)",
               m->to_async ? "to asynchronous commit" : "back to synchronous",
               why != NULL ? why : "?");
        /* Not again before another full timeout. */
        if (m->missing_since != 0) {
            m->missing_since = pc_now_ms();
        }
        return;
    }
    if (step == STEP_ALTER) {
        /* The ALTER is done: now the reload, whose answer ends the switch. */
        m->step = STEP_RELOAD;
        if (pc_store_query_sql(m->mon, mirror_reload_sql, NULL, 0,
                               query_deadline(m), on_alter, m)
            < 0) {
            m->step = STEP_IDLE;
        }
        return;
    }
    m->settle_ms = pc_now_ms() + 1000;
    if (m->to_async) {
        m->switches++;
        pc_log(PC_LOG_CRIT, "mirror", "MIRROR LOST: database switched to "
               "ASYNCHRONOUS commit after %" PRIu64 " ms without a "
               "synchronous standby (database.mirror_policy = availability); "
               "acknowledged posts live on ONE server until the mirror is "
               "back server=%s",
               missing_ms, pc_store_server(m->mon));
        /* Our own session may see the reload a little later: the state is
         * known now (on_status ignores the stale view while settling). */
        set_state(m, PC_MIRROR_ASYNC, "", 0);
    } else {
        pc_log(PC_LOG_NOTICE, "mirror", "mirror back: synchronous commit "
               "restored (ALTER SYSTEM RESET synchronous_standby_names) "
               "server=%s", pc_store_server(m->mon));
    }
    mirror_check(m);
}

static void
on_status(void *arg, int status, PGresult *res)
{
    struct pc_mirror *m = arg;

    m->step = STEP_IDLE;
    if (m->closing) {
        return;
    }
    if (status != 0 || PQntuples(res) != 1 || PQnfields(res) != 8) {
        if (status == PC_EDB && !m->check_failing) {
            const char *why = PQresultErrorField(res,
                                                 PG_DIAG_MESSAGE_PRIMARY);
            m->check_failing = true;
            pc_log(PC_LOG_WARN, "mirror", "mirror check failed: %s",
                   why != NULL ? why : "?");
        }
        return; /* the state stands; the next tick tries again */
    }
    m->check_failing = false;
    const char *names = PQgetvalue(res, 0, 0);
    long long nsync = atoll(PQgetvalue(res, 0, 1));
    long long needed = atoll(PQgetvalue(res, 0, 2));
    long long streaming = atoll(PQgetvalue(res, 0, 3));
    bool altered = PQgetvalue(res, 0, 4)[0] == 't';
    bool priv = PQgetvalue(res, 0, 5)[0] == 't';
    const char *commit = PQgetvalue(res, 0, 6);
    bool recovery = PQgetvalue(res, 0, 7)[0] == 't';

    if (recovery) {
        /* A standby (a conninfo without target_session_attrs): it takes no
         * writes, so there is nothing to hold for. */
        set_state(m, PC_MIRROR_NONE, names, streaming);
        return;
    }
    if (m->state == PC_MIRROR_ASYNC && names[0] != '\0'
        && pc_now_ms() < m->settle_ms) {
        return; /* the switch's reload not seen by this session yet */
    }
    if (!m->warned_commit && strcmp(commit, "on") != 0
        && strcmp(commit, "remote_apply") != 0
        && strcmp(commit, "remote_write") != 0) {
        m->warned_commit = true;
        pc_log(PC_LOG_WARN, "mirror", "synchronous_commit = %s: COMMIT does "
               "not wait for the mirror; set it to on", commit);
    }
    /* A standby answers history reads the same as the primary only if it
     * has applied every acknowledged commit: each streaming standby is
     * one COMMIT waits for, and waits for it to apply. */
    bool apply = strcmp(commit, "remote_apply") == 0;
    bool reads = priv && apply && names[0] != '\0' && nsync >= needed
                 && streaming > 0 && needed >= streaming;
    if (!apply && !m->warned_reads) {
        m->warned_reads = true;
        pc_log(PC_LOG_INFO, "mirror", "synchronous_commit = %s, not "
               "remote_apply: history reads (if "
               "database.read_standby_conninfo is set) stay on the primary",
               commit);
    }
    pc_store_reads_standby(m->store, reads);
    if (!priv) {
        set_state(m, PC_MIRROR_BLIND, names, streaming);
    } else if (names[0] == '\0') {
        set_state(m, altered ? PC_MIRROR_ASYNC : PC_MIRROR_NONE, names,
                  streaming);
        if (altered && streaming > 0 && pc_now_ms() >= m->settle_ms) {
            mirror_switch(m, false);
        }
    } else if (nsync >= needed) {
        set_state(m, PC_MIRROR_SYNC, names, streaming);
    } else {
        set_state(m, PC_MIRROR_MISSING, names, streaming);
        if (m->cfg.policy == PC_MIRROR_AVAILABILITY
            && pc_now_ms() - m->missing_since >= m->cfg.timeout_ms
            && pc_now_ms() >= m->settle_ms) {
            mirror_switch(m, true);
        }
    }
}

static void
mirror_check(struct pc_mirror *m)
{
    if (m->closing || m->step != STEP_IDLE
        || pc_store_state(m->mon) != PC_STORE_READY) {
        return;
    }
    m->step = STEP_STATUS;
    if (pc_store_query_sql(m->mon, mirror_status_sql, NULL, 0,
                           query_deadline(m), on_status, m)
        < 0) {
        m->step = STEP_IDLE;
    }
}

static void
on_timer(uv_timer_t *t)
{
    mirror_check(t->data);
}

static void
on_mon_state(void *arg, enum pc_store_state st)
{
    struct pc_mirror *m = arg;

    if (st == PC_STORE_READY) {
        mirror_check(m);
    } else if (m->state != PC_MIRROR_UNKNOWN) {
        /* Another server may answer next (a failover): hold the writes
         * until it has been looked at. */
        set_state(m, PC_MIRROR_UNKNOWN, "", 0);
    }
}

int
pc_mirror_new(struct pc_mirror **out, uv_loop_t *loop,
              const struct pc_mirror_cfg *cfg, struct pc_store *store)
{
    struct pc_mirror *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL) {
        return -ENOMEM;
    }
    m->loop = loop;
    m->cfg = *cfg;
    m->cfg.store.max_in_flight = 4;
    if (m->cfg.check_ms == 0) {
        m->cfg.check_ms = 500;
    }
    m->store = store;
    m->state = PC_MIRROR_UNKNOWN;
    rc = pc_store_new(&m->mon, loop, &m->cfg.store, on_mon_state, m);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->cfg.store.conninfo = NULL; /* the watcher's store keeps its copy */
    pc_store_set_name(m->mon, "pchatd-mirror");
    (void)uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->handles = 2;
    pc_store_hold_writes(store, true);
    *out = m;
    return 0;
}

int
pc_mirror_start(struct pc_mirror *m)
{
    (void)uv_timer_start(&m->timer, on_timer, m->cfg.check_ms,
                         m->cfg.check_ms);
    return pc_store_start(m->mon);
}

enum pc_mirror_state
pc_mirror_state(const struct pc_mirror *m)
{
    return m->state;
}

uint64_t
pc_mirror_async_switches(const struct pc_mirror *m)
{
    return m->switches;
}

static void
mirror_gone(struct pc_mirror *m)
{
    if (--m->handles == 0) {
        if (m->done_cb != NULL) {
            m->done_cb(m->done_arg);
        }
        free(m);
    }
}

static void
on_timer_closed(uv_handle_t *h)
{
    mirror_gone(h->data);
}

static void
on_mon_closed(void *arg)
{
    mirror_gone(arg);
}

void
pc_mirror_close(struct pc_mirror *m, void (*done_cb)(void *), void *done_arg)
{
    if (m->closing) {
        return;
    }
    m->closing = true;
    m->done_cb = done_cb;
    m->done_arg = done_arg;
    pc_store_hold_writes(m->store, false);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
    pc_store_close(m->mon, on_mon_closed, m);
}
