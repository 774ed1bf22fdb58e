/* pchatd: wiring only. Reads the configuration, creates the worker's loop,
 * store, bus, chat service and listeners, and handles signals. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "chat/chat.h"
#include "http/http.h"
#include "pchatd/control.h"
#include "pchatd/notify.h"
#include "net/net.h"
#include "pool/bus.h"
#include "store/store.h"
#include "util/conf.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_LISTENERS (2 * PC_CONF_MAX_LISTEN)
#define DRAIN_TIMEOUT_MS 10000
/* Pool protocol version: members speaking another are ignored. */
/* 2: several payloads per CPG message; 3: USER carries the account */
#define PC_POOL_PROTOCOL 4

struct pc_worker {
    uv_loop_t loop;
    struct pc_conf conf;
    const char *conf_path;
    char **overrides;
    int noverrides;
    struct pc_net *net;
    struct pc_store *store;
    struct pc_mirror *mirror; /* watches the synchronous standby */
    struct pc_bus *bus;
    struct pc_chat *chat;
    struct pc_http *http; /* the administration API, if admin.listen */
    SSL_CTX *tls;
    struct pc_listener *listeners[MAX_LISTENERS];
    int nlisteners;
    uv_check_t pass;     /* after I/O callbacks */
    uv_prepare_t before; /* before the loop sleeps (timer callbacks' output) */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    struct pc_control *control;
    bool active;  /* role: listeners open (active) or closed (standby) */
    bool quorate; /* the pool has quorum: a node without it serves no one */
    struct pc_bus_cbs bus_cbs; /* the chat service's, plus quorum */
    bool draining;
    bool hard_exit; /* the drain timed out: exit without cleaning up */
    int exit_code;
};

static void
usage(FILE *out)
{
    (void)fprintf(out,
        "usage: pchatd [-c FILE] [-o section.key=value]... [--check-config]\n"
        "              [--log-level LEVEL] [--role active|standby]\n"
        "              [--version] [--help]\n"
        "\n"
        "  -c, --config FILE     configuration file (INI)\n"
        "  -o, --set S.K=V       override one key, e.g. -o log.level=debug\n"
        "  -t, --check-config    validate the configuration and exit\n"
        "  -l, --log-level LEVEL same as -o log.level=LEVEL\n"
        "  -f, --foreground      accepted for compatibility (always)\n"
        "  -r, --role ROLE       start active (default) or standby\n"
        "  -V, --version         print the version and exit\n");
}

/* Loads defaults, the file and the command-line overrides, in that order. */
static int
load_conf(struct pc_worker *w, struct pc_conf *conf, char *err, size_t errlen)
{
    int rc = pc_conf_init(conf);
    if (rc < 0) {
        (void)snprintf(err, errlen, "out of memory");
        return rc;
    }
    if (w->conf_path != NULL) {
        rc = pc_conf_load(conf, w->conf_path, err, errlen);
    }
    for (int i = 0; rc == 0 && i < w->noverrides; i++) {
        rc = pc_conf_set(conf, w->overrides[i], err, errlen);
    }
    if (rc == 0) {
        rc = pc_conf_validate(conf, err, errlen);
    }
    if (rc < 0) {
        pc_conf_free(conf);
    }
    return rc;
}

static void
apply_logging(const struct pc_conf *conf)
{
    int level = pc_log_level_parse(conf->log_level);
    pc_log_set_level(level > 0 ? (enum pc_log_level)level : PC_LOG_NOTICE);
    pc_log_use_syslog(conf->log_syslog, "pchatd");
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    pc_log(PC_LOG_NOTICE, "main", "descriptor limit %llu (soft = hard); "
           "raise LimitNOFILE= in the service unit for more clients",
           (unsigned long long)rl.rlim_cur);
}

/* Refuses to run against a schema this build does not know. Blocking, at
 * start only; an unreachable database is not an error here (the store
 * retries and checks again on every connection). */
static int
check_schema(const struct pc_conf *conf)
{
    char timeout[16];
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {conf->db_conninfo, timeout, NULL};
    char err[256];
    int version = 0;

    (void)snprintf(timeout, sizeof(timeout), "%u",
                   conf->db_connect_timeout_ms / 1000 + 1);
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) != CONNECTION_OK) {
        pc_log(PC_LOG_WARN, "main", "database not reachable at start, will "
               "keep trying: %s", strtok(PQerrorMessage(db), "\n"));
        PQfinish(db);
        return 0;
    }
    int rc = pc_migrate_current(db, &version, err, sizeof(err));
    PQfinish(db);
    if (rc < 0) {
        pc_log(PC_LOG_WARN, "main", "cannot read schema version: %s", err);
        return 0;
    }
    if (version > pc_migrate_latest()) {
        pc_log(PC_LOG_CRIT, "main", "database schema version %d is newer "
               "than this pchatd knows (%d); upgrade pchatd", version,
               pc_migrate_latest());
        return PC_ESCHEMA;
    }
    if (version < pc_migrate_latest()) {
        pc_log(PC_LOG_CRIT, "main", "database schema version %d is older "
               "than this pchatd needs (%d); run: pchatctl db migrate",
               version, pc_migrate_latest());
        return PC_ESCHEMA;
    }
    return 0;
}

static int
start_listeners(struct pc_worker *w, const char *list, SSL_CTX *tls)
{
    char *copy = strdup(list);
    char *save = NULL;
    int rc = 0;

    if (copy == NULL) {
        return -ENOMEM;
    }
    for (char *item = strtok_r(copy, ", ", &save); item != NULL && rc == 0;
         item = strtok_r(NULL, ", ", &save)) {
        char host[64];
        int port = 0;
        if (w->nlisteners == MAX_LISTENERS) {
            rc = PC_ECONFIG;
            break;
        }
        rc = pc_conf_parse_hostport(item, strlen(item), host, sizeof(host),
                                    &port);
        if (rc == 0) {
            rc = pc_listener_start(w->net, &w->listeners[w->nlisteners], host,
                                   port, tls, pc_chat_accept, w->chat);
        }
        if (rc < 0) {
            pc_log(PC_LOG_CRIT, "main", "cannot listen on %s: %s", item,
                   pc_strerror(rc));
        } else {
            w->nlisteners++;
            pc_log(PC_LOG_NOTICE, "main", "listening on %s (%s)", item,
                   tls ? "TLS" : "plain");
        }
    }
    free(copy);
    return rc;
}

static int
open_listeners(struct pc_worker *w)
{
    int rc = start_listeners(w, w->conf.listen_plain, NULL);
    if (rc == 0 && w->tls != NULL) {
        rc = start_listeners(w, w->conf.listen_tls, w->tls);
    }
    return rc;
}

static void
stop_listeners(struct pc_worker *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        pc_listener_stop(w->listeners[i]);
    }
    w->nlisteners = 0;
}

static int open_listeners(struct pc_worker *w);

/* Serving clients needs both the active role and quorum. */
static void
apply_serving(struct pc_worker *w, const char *why)
{
    bool serve = w->active && w->quorate && !w->draining;

    if (serve && w->nlisteners == 0) {
        if (open_listeners(w) < 0) {
            stop_listeners(w);
        }
    } else if (!serve && w->nlisteners > 0) {
        stop_listeners(w);
        pc_chat_disconnect_all(w->chat, why);
    }
}

static int
control_set_role(void *arg, const char *role, struct pc_buf *out)
{
    struct pc_worker *w = arg;

    if (strcmp(role, "active") != 0 && strcmp(role, "standby") != 0) {
        (void)pc_buf_printf(out, "error unknown role '%s' (active, standby)\n",
                            role);
        return PC_ECONFIG;
    }
    bool active = strcmp(role, "active") == 0;
    if (active != w->active) {
        pc_log(PC_LOG_NOTICE, "main", "role %s -> %s",
               w->active ? "active" : "standby", role);
    }
    w->active = active;
    apply_serving(w, "Server switching to standby, reconnect please");
    if (active && w->quorate && w->nlisteners == 0) {
        (void)pc_buf_printf(out, "error cannot open the client listeners\n");
        return PC_ECONFIG;
    }
    (void)pc_buf_printf(out, "ok role=%s serving=%s\n", role,
                        w->nlisteners > 0 ? "yes" : "no");
    return 0;
}

static void
control_status(void *arg, struct pc_buf *out)
{
    struct pc_worker *w = arg;

    (void)pc_buf_printf(out,
                        "version=%s\npid=%ld\nrole=%s\nserving=%s\n"
                        "quorate=%s\nbus=%s\nnode=%u\ndatabase=%s\n"
                        "clients=%" PRIu64 "\ndraining=%s\n"
                        "mirror=%s\nmirror_policy=%s\n"
                        "mirror_async_switches=%" PRIu64 "\n"
                        "history_reads=%s\n",
                        PACKAGE_VERSION, (long)getpid(),
                        w->active ? "active" : "standby",
                        w->nlisteners > 0 ? "yes" : "no",
                        w->quorate ? "yes" : "no", pc_bus_backend(w->bus),
                        (unsigned)PC_BUS_NODE(pc_bus_node_id(w->bus)),
                        pc_store_state_name(pc_store_state(w->store)),
                        pc_chat_sessions(w->chat),
                        w->draining ? "yes" : "no",
                        w->mirror ? pc_mirror_state_name(
                                        pc_mirror_state(w->mirror))
                                  : "-",
                        w->conf.db_mirror_policy,
                        w->mirror ? pc_mirror_async_switches(w->mirror) : 0,
                        pc_store_reading_standby(w->store) ? "standby"
                                                           : "primary");
}

static const struct pc_control_ops control_ops = {
    .status = control_status,
    .set_role = control_set_role,
};

/* Sends the pass's posts to the database, delivers what the bus brought,
 * then writes every client's output once. */
static void
end_of_pass(struct pc_worker *w)
{
    pc_chat_end_of_pass(w->chat);
    pc_bus_dispatch(w->bus);
    pc_net_flush(w->net);
}

static void
on_pass(uv_check_t *h)
{
    end_of_pass(h->data);
}

static void
on_before_sleep(uv_prepare_t *h)
{
    end_of_pass(h->data);
}

static void
store_state(void *arg, enum pc_store_state st)
{
    struct pc_worker *w = arg;
    /* The store logs its own failures; this is the state change. */
    pc_log(PC_LOG_DEBUG, "store", "database %s server=%s",
           pc_store_state_name(st), pc_store_server(w->store));
    pc_chat_store_state(w->chat, st);
}

static void
close_all(struct pc_worker *w)
{
    stop_listeners(w);
    /* Before the store: its cancelled queries come back to the API. */
    pc_http_stop(w->http);
    w->http = NULL;
    pc_control_stop(w->control);
    w->control = NULL;
    uv_signal_stop(&w->sig_term);
    uv_signal_stop(&w->sig_int);
    uv_signal_stop(&w->sig_hup);
    uv_close((uv_handle_t *)&w->sig_term, NULL);
    uv_close((uv_handle_t *)&w->sig_int, NULL);
    uv_close((uv_handle_t *)&w->sig_hup, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    if (w->net != NULL) {
        pc_net_flush(w->net);
    }
    uv_close((uv_handle_t *)&w->pass, NULL);
    uv_close((uv_handle_t *)&w->before, NULL);
    /* The mirror watcher holds the store's writes: it goes first. */
    if (w->mirror != NULL) {
        pc_mirror_close(w->mirror, NULL, NULL);
        w->mirror = NULL;
    }
    /* The store first: its last callbacks still reach the chat service. */
    if (w->store != NULL) {
        pc_store_close(w->store, NULL, NULL);
    }
    if (w->chat != NULL) {
        pc_chat_free(w->chat);
    }
    /* The cpg back end closes its handles: the loop can then end. */
    pc_bus_free(w->bus);
    w->bus = NULL;
}

static void
drained(void *arg)
{
    struct pc_worker *w = arg;
    pc_log(PC_LOG_NOTICE, "main", "drained, exiting");
    close_all(w);
}

static void
drain_timeout(uv_timer_t *t)
{
    struct pc_worker *w = t->data;
    pc_log(PC_LOG_WARN, "main", "drain took over %d ms, exiting anyway",
           DRAIN_TIMEOUT_MS);
    w->exit_code = 1;
    w->hard_exit = true;
    uv_stop(&w->loop);
}

static void
on_terminate(uv_signal_t *h, int signum)
{
    struct pc_worker *w = h->data;
    if (w->draining) {
        return;
    }
    w->draining = true;
    (void)pc_sd_notify("STOPPING=1\nSTATUS=draining clients");
    pc_log(PC_LOG_NOTICE, "main", "signal %d: stopping listeners and "
           "draining clients", signum);
    stop_listeners(w);
    (void)uv_timer_start(&w->drain_timer, drain_timeout, DRAIN_TIMEOUT_MS, 0);
    uv_unref((uv_handle_t *)&w->drain_timer);
    pc_chat_shutdown(w->chat, drained, w);
}

/* The IRC listeners' TLS context, as configured (the admin API's has no
 * session tickets). */
static SSL_CTX *
irc_tls_ctx(const struct pc_conf *conf, char *err, size_t errlen)
{
    SSL_CTX *ctx = pc_tls_server_ctx(conf->tls_cert, conf->tls_key, err,
                                     errlen);
    if (ctx != NULL) {
        pc_tls_set_tickets(ctx, conf->tls_session_tickets);
    }
    return ctx;
}

static void
on_reload(uv_signal_t *h, int signum)
{
    struct pc_worker *w = h->data;
    struct pc_conf fresh;
    char err[512];

    (void)pc_sd_notify("RELOADING=1");
    if (load_conf(w, &fresh, err, sizeof(err)) < 0) {
        pc_log(PC_LOG_ERR, "main", "reload refused, keeping the running "
               "configuration: %s", err);
        (void)pc_sd_notify("READY=1\nSTATUS=reload refused, see the log");
        return;
    }
    /* Only reloadable keys change: the rest of the running configuration
     * stays, so the new values are copied key by key. */
    free(w->conf.log_level);
    w->conf.log_level = fresh.log_level;
    fresh.log_level = NULL;
    w->conf.log_syslog = fresh.log_syslog;
    free(w->conf.motd_file);
    w->conf.motd_file = fresh.motd_file;
    fresh.motd_file = NULL;
    w->conf.flood_burst = fresh.flood_burst;
    w->conf.flood_rate = fresh.flood_rate;
    apply_logging(&w->conf);
    if (fresh.tls_cert[0] != '\0' && w->tls != NULL) {
        char terr[512];
        SSL_CTX *ctx = irc_tls_ctx(&fresh, terr, sizeof(terr));
        if (ctx == NULL) {
            pc_log(PC_LOG_ERR, "main", "TLS reload failed, keeping the old "
                   "certificate: %s", terr);
        } else {
            for (int i = 0; i < w->nlisteners; i++) {
                pc_listener_set_tls(w->listeners[i], ctx);
            }
            SSL_CTX_free(w->tls);
            w->tls = ctx;
        }
    }
    pc_conf_free(&fresh);
    pc_chat_reload(w->chat, &w->conf);
    pc_log(PC_LOG_NOTICE, "main", "configuration reloaded (signal %d) "
           "log.level=%s", signum, w->conf.log_level);
    (void)pc_sd_notify("READY=1");
}

/* The pool's callbacks go to the chat service; quorum is ours: a node
 * without quorum serves no one, at once. */
static void
pool_deliver(void *arg, uint64_t from, const void *data, size_t len)
{
    struct pc_worker *w = arg;
    pc_chat_pool_cbs.deliver(w->chat, from, data, len);
}

static void
pool_membership(void *arg, const uint64_t *m, size_t nm, const uint64_t *l,
                size_t nl, const uint64_t *j, size_t nj)
{
    struct pc_worker *w = arg;
    pc_chat_pool_cbs.membership(w->chat, m, nm, l, nl, j, nj);
}

static void
on_quorum(void *arg, int quorate)
{
    struct pc_worker *w = arg;
    w->quorate = quorate != 0;
    apply_serving(w, "This node lost the pool's quorum; reconnect to "
                     "another node");
}

/* The administration API: open on every node whatever its role (it only
 * talks to the database), HTTPS only. */
static int
start_admin(struct pc_worker *w)
{
    const struct pc_conf *c = &w->conf;
    char err[512], host[64];
    int port = 0;
    const char *cert = c->admin_cert[0] ? c->admin_cert : c->tls_cert;
    const char *key = c->admin_key[0] ? c->admin_key : c->tls_key;

    int rc = pc_conf_parse_hostport(c->admin_listen, strlen(c->admin_listen),
                                    host, sizeof(host), &port);
    if (rc < 0) {
        pc_log(PC_LOG_CRIT, "main", "admin.listen: bad address %s",
               c->admin_listen);
        return rc;
    }
    SSL_CTX *tls = pc_tls_server_ctx(cert, key, err, sizeof(err));
    if (tls == NULL) {
        pc_log(PC_LOG_CRIT, "main", "admin TLS: %s", err);
        return PC_ECONFIG;
    }
    struct pc_http_cfg hcfg = {
        .host = host,
        .port = port,
        .tls = tls,
        .max_body = c->admin_max_body,
        .max_conns = c->admin_max_conns,
        .query_timeout_ms = c->db_post_timeout_ms,
        .iterations = c->auth_pbkdf2_iterations,
        .idle_timeout_ms = c->admin_idle_timeout_ms,
        .fail_burst = c->auth_fail_burst,
        .fail_interval_ms = c->auth_fail_interval_ms,
    };
    rc = pc_http_start(&w->http, &w->loop, w->net, w->store, &hcfg);
    SSL_CTX_free(tls); /* the listener holds its own reference */
    if (rc < 0) {
        pc_log(PC_LOG_CRIT, "main", "cannot listen on %s (admin): %s",
               c->admin_listen, pc_strerror(rc));
        return rc;
    }
    pc_log(PC_LOG_NOTICE, "main", "administration API on %s (HTTPS)",
           c->admin_listen);
    return 0;
}

/* Creates the services and opens the listeners; on failure the caller
 * closes whatever was made (close_all copes with missing pieces). */
static int
start_worker(struct pc_worker *w, bool standby)
{
    char err[512];
    struct pc_store_cfg scfg = {
        .conninfo = w->conf.db_conninfo,
        .connect_timeout_ms = w->conf.db_connect_timeout_ms,
        .backoff_min_ms = w->conf.db_backoff_min_ms,
        .backoff_max_ms = w->conf.db_backoff_max_ms,
        .max_in_flight = 64,
    };
    int rc = pc_net_new(&w->net, &w->loop);

    if (rc == 0) {
        rc = pc_store_new(&w->store, &w->loop, &scfg, store_state, w);
    }
    if (rc == 0 && w->conf.db_read_standby_conninfo[0] != '\0') {
        rc = pc_store_set_reader(w->store, w->conf.db_read_standby_conninfo);
    }
    if (rc == 0) {
        struct pc_mirror_cfg mcfg = {
            .store = scfg,
            .timeout_ms = w->conf.db_mirror_timeout_ms,
            .check_ms = w->conf.db_mirror_check_ms,
        };
        rc = pc_mirror_parse_policy(w->conf.db_mirror_policy, &mcfg.policy);
        if (rc == 0) {
            rc = pc_mirror_new(&w->mirror, &w->loop, &mcfg, w->store);
        }
    }
    if (rc == 0) {
        rc = pc_chat_new(&w->chat, &w->loop, &w->conf, w->store);
    }
    if (rc == 0 && strcmp(w->conf.pool_backend, "cpg") == 0) {
#ifdef HAVE_COROSYNC
        char group[128];
        (void)snprintf(group, sizeof(group), "pchat:%s", w->conf.network);
        w->bus_cbs.deliver = pool_deliver;
        w->bus_cbs.membership = pool_membership;
        w->bus_cbs.quorum = on_quorum;
        w->quorate = false; /* until Corosync says otherwise */
        rc = pc_bus_cpg_new(&w->bus, &w->loop, group, PC_POOL_PROTOCOL,
                            &w->bus_cbs, w);
        if (rc == 0) {
            pc_chat_set_pool(w->chat, pc_bus_node_id(w->bus));
        }
#else
        pc_log(PC_LOG_CRIT, "main", "pool.backend = cpg, but this pchatd was "
               "built without Corosync");
        rc = PC_ECONFIG;
#endif
    } else if (rc == 0) {
        w->quorate = true;
        rc = pc_bus_local_new(&w->bus, &w->loop, &pc_chat_bus_cbs, w->chat);
    }
    if (rc < 0) {
        pc_log(PC_LOG_CRIT, "main", "start-up failed: %s", pc_strerror(rc));
        return rc;
    }
    pc_chat_set_bus(w->chat, w->bus);
    if (w->conf.listen_tls[0] != '\0') {
        w->tls = irc_tls_ctx(&w->conf, err, sizeof(err));
        if (w->tls == NULL) {
            pc_log(PC_LOG_CRIT, "main", "TLS: %s", err);
            return PC_ECONFIG;
        }
    }
    w->active = !standby;
    if (w->active && w->quorate && open_listeners(w) < 0) {
        return PC_ECONFIG;
    }
    if (w->conf.admin_listen[0] != '\0' && start_admin(w) < 0) {
        return PC_ECONFIG;
    }
    if (w->conf.pool_control_socket[0] != '\0') {
        rc = pc_control_start(&w->control, &w->loop,
                              w->conf.pool_control_socket, &control_ops, w);
        if (rc < 0) {
            pc_log(PC_LOG_CRIT, "main", "control socket %s: %s",
                   w->conf.pool_control_socket, pc_strerror(rc));
            return rc;
        }
    }
    (void)uv_check_start(&w->pass, on_pass);
    (void)uv_prepare_start(&w->before, on_before_sleep);
    (void)uv_signal_start(&w->sig_term, on_terminate, SIGTERM);
    (void)uv_signal_start(&w->sig_int, on_terminate, SIGINT);
    (void)uv_signal_start(&w->sig_hup, on_reload, SIGHUP);
    (void)pc_store_start(w->store);
    (void)pc_mirror_start(w->mirror);
    pc_log(PC_LOG_NOTICE, "main", "pchatd %s started server=%s bus=%s role=%s",
           PACKAGE_VERSION, w->conf.server_name, pc_bus_backend(w->bus),
           w->active ? "active" : "standby");
    /* Listeners are open (or, on a standby, deliberately closed): ready
     * for `systemctl start` to return (Type=notify). */
    (void)pc_sd_notify(w->active ? "READY=1\nSTATUS=active, serving clients"
                                 : "READY=1\nSTATUS=standby");
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'o'},
        {"check-config", no_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"foreground", no_argument, NULL, 'f'},
        {"role", required_argument, NULL, 'r'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pc_worker w;
    bool check_only = false;
    bool start_standby = false;
    char err[512];
    char *level_override = NULL;
    int opt, rc;

    memset(&w, 0, sizeof(w));
    w.overrides = calloc((size_t)argc + 1, sizeof(char *));
    if (w.overrides == NULL) {
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "c:o:tl:fr:Vh", longopts, NULL))
           != -1) {
        switch (opt) {
        case 'c':
            w.conf_path = optarg;
            break;
        case 'o':
            w.overrides[w.noverrides++] = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'l':
            free(level_override);
            level_override = malloc(strlen(optarg) + 16);
            if (level_override == NULL) {
                return 1;
            }
            (void)snprintf(level_override, strlen(optarg) + 16,
                           "log.level=%s", optarg);
            w.overrides[w.noverrides++] = level_override;
            break;
        case 'f':
            break;
        case 'r':
            if (strcmp(optarg, "active") != 0 && strcmp(optarg, "standby") != 0) {
                (void)fprintf(stderr, "pchatd: --role is active or standby\n");
                return 2;
            }
            start_standby = strcmp(optarg, "standby") == 0;
            break;
        case 'V':
            (void)printf("pchatd %s\n", PACKAGE_VERSION);
            free(w.overrides);
            free(level_override);
            return 0;
        case 'h':
            usage(stdout);
            free(w.overrides);
            free(level_override);
            return 0;
        default:
            usage(stderr);
            free(w.overrides);
            free(level_override);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        free(w.overrides);
        free(level_override);
        return 2;
    }
    if (load_conf(&w, &w.conf, err, sizeof(err)) < 0) {
        (void)fprintf(stderr, "pchatd: %s\n", err);
        free(w.overrides);
        free(level_override);
        return 1;
    }
    if (check_only) {
        pc_conf_dump(&w.conf, stdout, true);
        (void)fprintf(stderr, "pchatd: configuration OK\n");
        pc_conf_free(&w.conf);
        free(w.overrides);
        free(level_override);
        return 0;
    }
    apply_logging(&w.conf);
    (void)signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    if (check_schema(&w.conf) < 0) {
        pc_conf_free(&w.conf);
        free(w.overrides);
        free(level_override);
        return 1;
    }
    rc = uv_loop_init(&w.loop);
    if (rc != 0) {
        pc_log(PC_LOG_CRIT, "main", "event loop: %s", pc_strerror(rc));
        return 1;
    }
    /* Handles first, so that every later failure can close the same set. */
    (void)uv_check_init(&w.loop, &w.pass);
    (void)uv_prepare_init(&w.loop, &w.before);
    (void)uv_timer_init(&w.loop, &w.drain_timer);
    (void)uv_signal_init(&w.loop, &w.sig_term);
    (void)uv_signal_init(&w.loop, &w.sig_int);
    (void)uv_signal_init(&w.loop, &w.sig_hup);
    w.pass.data = w.before.data = w.drain_timer.data = &w;
    w.sig_term.data = w.sig_int.data = w.sig_hup.data = &w;
    w.exit_code = start_worker(&w, start_standby) < 0 ? 1 : 0;
    if (w.exit_code == 0) {
        (void)uv_run(&w.loop, UV_RUN_DEFAULT);
        if (w.hard_exit) {
            pc_log(PC_LOG_NOTICE, "main", "stopped (drain timeout)");
            return w.exit_code;
        }
    } else {
        close_all(&w);
    }
    /* Let the close callbacks run, then check nothing was left open. */
    (void)uv_run(&w.loop, UV_RUN_DEFAULT);
    pc_net_free(w.net);
    if (w.tls != NULL) {
        SSL_CTX_free(w.tls);
    }
    rc = uv_loop_close(&w.loop);
    if (rc != 0) {
        pc_log(PC_LOG_WARN, "main", "loop closed with handles open: %s",
               pc_strerror(rc));
    }
    pc_conf_free(&w.conf);
    free(w.overrides);
    free(level_override);
    pc_log(PC_LOG_NOTICE, "main", "stopped");
    return w.exit_code;
}
