/* pchat-bench: an IRC load generator on libuv.
 *
 * It acts as N IRC clients: each connects (plain or TLS, bound round-robin
 * to many loopback source addresses so that N can exceed one address's
 * ephemeral port range), negotiates capabilities (CAP LS 302, optional SASL
 * PLAIN), registers, answers PING and joins its room. Senders then post at
 * a target rate, or as fast as their echoes come back with a window of
 * posts in flight. Every post carries the monotonic time it was queued, so
 * every receiver computes post -> delivery latency into a log-bucket
 * histogram. The echo (echo-message) is the acknowledgement; other members'
 * copies are fan-out deliveries.
 *
 * Work is split over --procs worker processes (a process holds at most
 * 20,000 descriptors here), each with one libuv loop, one shared read
 * buffer, line framing in place (no allocation per line) and one coalesced
 * write per client per loop pass. The parent only coordinates: it waits
 * until every worker has its clients joined, tells them all one start time,
 * reads the server's CPU and RSS from /proc at the window's edges, and
 * merges the workers' results, which they send through a pipe as JSON. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "util/buf.h"
#include "util/err.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define BENCH_MAX_PROCS 64
#define BENCH_OUT_MAX (4u << 20)  /* per-client output cap */
#define BENCH_LINE_MAX 16384      /* a partial input line longer is dropped */
#define BENCH_RESULT_MAX (4u << 20)

/* ------------------------------------------------------------------ */
/* Latency histogram: 32 sub-buckets per power of two of nanoseconds, so a
 * bucket is within about 3% of its values (HdrHistogram's idea, fixed
 * precision). The exact maximum is kept beside it. */

#define HIST_SUB_BITS 5u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

struct bench_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t sum_us;
    uint64_t b[HIST_BUCKETS];
};

static size_t
hist_index(uint64_t v)
{
    if (v < HIST_SUB) {
        return (size_t)v;
    }
    unsigned lg = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = lg - HIST_SUB_BITS;
    return (size_t)(lg - HIST_SUB_BITS + 1u) * HIST_SUB
           + (size_t)((v >> shift) & (HIST_SUB - 1u));
}

/* The middle of a bucket. */
static double
hist_mid(size_t idx)
{
    if (idx < HIST_SUB) {
        return (double)idx;
    }
    unsigned shift = (unsigned)(idx / HIST_SUB) - 1u;
    uint64_t sub = idx % HIST_SUB;
    uint64_t low = (HIST_SUB + sub) << shift;
    return (double)low + (double)(1ull << shift) / 2.0;
}

static void
hist_add(struct bench_hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->count++;
    h->sum_us += ns / 1000u;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

/* Percentile p (0-100) in microseconds; 0 when empty. */
static double
hist_pct_us(const struct bench_hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->count);
    uint64_t seen = 0;
    if (want == 0) {
        want = 1;
    }
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            double v = hist_mid(i);
            if (v > (double)h->max_ns) {
                v = (double)h->max_ns;
            }
            return v / 1000.0;
        }
    }
    return (double)h->max_ns / 1000.0;
}

/* ------------------------------------------------------------------ */
/* Options, the plan (who is in which room) and the results. */

enum bench_dist { DIST_ROUND_ROBIN, DIST_UNIFORM, DIST_ONE, DIST_ZIPF };

struct bench_opts {
    const char *host;
    int port;
    bool tls;
    int clients;
    int procs;
    int rooms;
    enum bench_dist dist;
    double dist_arg;
    double rate;
    int senders;
    int window;
    double duration;
    double warmup;
    double connect_rate;
    double connect_timeout;
    bool idle;
    bool handshake_only; /* TLS: hold each connection once its handshake is
                            done, without registering */
    bool json;
    bool caps;
    unsigned cap_mask; /* --caps: exactly these (0 = from --cap) */
    const char *sasl; /* user:pass */
    int server_pid;
    const char *nick_prefix;
    const char *room_prefix;
    int body_len;
    /* Source addresses: nsrc of them (1 = let the kernel choose). */
    uint32_t src_base; /* host order; 0 = the count form */
    int nsrc;
};

struct bench_plan {
    int32_t *room_of; /* per client id */
    uint32_t *room_size;
    int rooms;
    int senders;
};

enum bench_err {
    E_CONNECT,
    E_TLS,
    E_CLOSED,
    E_WRITE,
    E_ERROR_LINE,
    E_FAIL,
    E_NICK,
    E_CAP,
    E_SASL,
    E_NUMERIC,
    E_BACKLOG,
    E_TIMEOUT,
    E_COUNT
};

static const char *const bench_err_names[E_COUNT] = {
    "connect", "tls",         "closed", "write", "error_line", "fail",
    "nick",    "cap_nak",     "sasl",   "numeric", "backlog",  "timeout",
};

#define BENCH_COUNTERS(X)                                                     \
    X(attempted) X(connected) X(handshaken) X(registered) X(joined) X(held)   \
    X(posts) X(acks) X(deliveries) X(echo_clients)

#define BENCH_LAST_TIMES(X)                                                   \
    X(t_last_connected) X(t_last_handshake) X(t_last_registered)              \
    X(t_last_joined)

struct bench_stats {
#define X(n) uint64_t n;
    BENCH_COUNTERS(X)
    BENCH_LAST_TIMES(X)
#undef X
    uint64_t t_first_attempt;
    uint64_t err[E_COUNT];
    double cpu_window_secs; /* this process during the window */
    double cpu_total_secs;  /* this process, whole run */
    double window_secs;
    struct bench_hist lat;  /* post -> delivery to other members */
    struct bench_hist ack;  /* post -> own echo */
};

/* ------------------------------------------------------------------ */
/* Clock and /proc. */

static uint64_t
now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_until_ns(uint64_t t)
{
    struct timespec ts = {
        .tv_sec = (time_t)(t / 1000000000u),
        .tv_nsec = (long)(t % 1000000000u),
    };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
           == EINTR) {
    }
}

/* utime + stime of a process from /proc/PID/stat (pid 0: this process). */
static double
proc_cpu_secs(int pid)
{
    char path[64], buf[1024];
    if (pid == 0) {
        (void)snprintf(path, sizeof(path), "/proc/self/stat");
    } else {
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    unsigned long ut = 0, st = 0;
    /* After the command: state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st)
        != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long
proc_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    (void)snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    (void)fclose(f);
    return kib;
}

/* ------------------------------------------------------------------ */
/* A worker process: its clients and its loop. */

enum bench_state {
    ST_NEW,
    ST_CONNECTING,
    ST_TLS,
    ST_REGISTERING,
    ST_JOINING,
    ST_READY,
    ST_DEAD
};

/* PH_DRAIN: the window is over, no more posts; the answers to the posts
 * sent in it are still counted, until they are all in (or a timeout). */
enum bench_phase { PH_CONNECT, PH_WAIT_GO, PH_RUN, PH_DRAIN, PH_DONE };

#define DRAIN_MAX_NS 3000000000ull  /* answers later than this are lost */
#define DRAIN_GRACE_NS 50000000ull  /* after the last echo: deliveries */

/* Capabilities we may ask for, as bits. */
enum {
    CAP_ECHO = 1u << 0,
    CAP_TAGS = 1u << 1,
    CAP_TIME = 1u << 2,
    CAP_LABEL = 1u << 3,
    CAP_BATCH = 1u << 4,
    CAP_SASL = 1u << 5,
};

static const struct {
    const char *name;
    unsigned bit;
} bench_caps[] = {
    {"echo-message", CAP_ECHO},   {"message-tags", CAP_TAGS},
    {"server-time", CAP_TIME},    {"labeled-response", CAP_LABEL},
    {"batch", CAP_BATCH},         {"sasl", CAP_SASL},
};

struct bench_worker;

struct bench_client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct bench_worker *w;
    SSL *ssl;
    struct pc_buf out;      /* queued plaintext (plain: the wire bytes) */
    struct pc_buf wire;     /* TLS records waiting to be written */
    struct pc_buf inflight; /* bytes handed to uv_write */
    struct pc_buf part;     /* an incomplete input line */
    struct bench_client *next_dirty;
    uint64_t seq;
    uint32_t id;
    int32_t room;
    int32_t pending; /* posts without their echo yet */
    uint8_t state;
    uint8_t caps_offered;
    uint8_t caps_acked;
    bool sender;
    bool writing;
    bool dirty;
    bool nick_retry;
};

struct bench_worker {
    uv_loop_t *loop;
    const struct bench_opts *o;
    const struct bench_plan *plan;
    struct bench_client *clients;
    int nclients;
    int proc;
    uint32_t *senders;
    int nsenders;
    int sender_rr;
    SSL_CTX *tls;
    uv_timer_t tick;
    uv_check_t flush;
    uv_pipe_t ctl;
    char ctl_buf[128];
    size_t ctl_len;
    int up_fd;
    struct bench_client *dirty;
    struct bench_stats st;
    enum bench_phase phase;
    int next_connect;
    int dead;
    int ready; /* clients in ST_READY now */
    uint64_t t_start_ns, t_go_ns, t_measure_ns, t_end_ns, t_last_tick_ns;
    uint64_t t_quiet_ns; /* PH_DRAIN: since when nothing is pending */
    bool posting;
    bool measuring; /* the window's CPU reading is taken (cpu0); what is
                       counted goes by the posts' send times (in_window) */
    double rate, credit;
    double cpu0;
    char sasl_b64[512];
    char rbuf[65536];
    char plain[65536];
};

static void client_flush(struct bench_client *c);
static void client_post(struct bench_client *c);

/* Whether a post sent at t (its timestamp) belongs to the measured window. */
static bool
in_window(const struct bench_worker *w, uint64_t t)
{
    return t >= w->t_measure_ns && t < w->t_end_ns;
}

static void
mark_dirty(struct bench_client *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = c->w->dirty;
        c->w->dirty = c;
    }
}

static void
client_close(struct bench_client *c, int kind)
{
    if (c->state == ST_DEAD) {
        return;
    }
    if (kind >= 0) {
        c->w->st.err[kind]++;
    }
    if (c->state == ST_READY) {
        c->w->ready--;
    }
    c->state = ST_DEAD;
    c->w->dead++;
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
    }
}

/* Queues one line; the check handle writes once per loop pass. */
static void client_send(struct bench_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_send(struct bench_client *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n > sizeof(line) - 3) {
        n = (int)sizeof(line) - 3;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    if (pc_buf_append(&c->out, line, (size_t)n) < 0) {
        c->w->st.err[E_BACKLOG]++;
        return;
    }
    mark_dirty(c);
}

static void
on_written(uv_write_t *req, int status)
{
    struct bench_client *c = req->data;
    c->writing = false;
    pc_buf_reset(&c->inflight);
    if (c->state == ST_DEAD) {
        return;
    }
    if (status < 0) {
        client_close(c, E_WRITE);
        return;
    }
    if (c->out.len > 0 || c->wire.len > 0
        || (c->ssl != NULL && BIO_ctrl_pending(SSL_get_wbio(c->ssl)) > 0)) {
        mark_dirty(c);
    }
}

/* Moves TLS output (handshake records, or encrypted application data) from
 * the memory BIO to c->wire. */
static void
tls_drain(struct bench_client *c)
{
    BIO *wb = SSL_get_wbio(c->ssl);
    for (;;) {
        int n = BIO_read(wb, c->w->plain, (int)sizeof(c->w->plain));
        if (n <= 0) {
            break;
        }
        if (pc_buf_append(&c->wire, c->w->plain, (size_t)n) < 0) {
            c->w->st.err[E_BACKLOG]++;
            break;
        }
    }
}

static void
client_flush(struct bench_client *c)
{
    if (c->state == ST_DEAD || c->state == ST_NEW
        || c->state == ST_CONNECTING || c->writing) {
        return;
    }
    struct pc_buf *src = &c->out;
    if (c->ssl != NULL) {
        if (c->state != ST_TLS && c->out.len > 0) {
            if (SSL_write(c->ssl, c->out.data, (int)c->out.len) <= 0) {
                client_close(c, E_TLS);
                return;
            }
            pc_buf_reset(&c->out);
        }
        tls_drain(c);
        src = &c->wire;
    }
    if (src->len == 0) {
        return;
    }
    uv_buf_t buf = uv_buf_init(src->data, (unsigned)src->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)src->len) {
        pc_buf_reset(src);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        client_close(c, E_WRITE);
        return;
    }
    if (n < 0) {
        n = 0;
    }
    /* The rest goes through uv_write: swap the buffers so that new lines
     * queue while these bytes are in flight. */
    struct pc_buf tmp = c->inflight;
    c->inflight = *src;
    *src = tmp;
    pc_buf_reset(src);
    buf = uv_buf_init(c->inflight.data + n, (unsigned)(c->inflight.len - (size_t)n));
    c->wreq.data = c;
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        c->writing = false;
        client_close(c, E_WRITE);
    }
}

static void
flush_all(struct bench_worker *w)
{
    while (w->dirty != NULL) {
        struct bench_client *c = w->dirty;
        w->dirty = c->next_dirty;
        c->dirty = false;
        client_flush(c);
    }
}

/* After the poll phase: everything the input queued goes out in one write
 * per client. */
static void
on_check(uv_check_t *h)
{
    flush_all(h->data);
}

/* ------------------------------------------------------------------ */
/* Registration. */

static void
base64(const unsigned char *in, size_t n, char *out, size_t cap)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static unsigned
caps_wanted(const struct bench_opts *o)
{
    unsigned want = CAP_ECHO;
    if (o->cap_mask != 0) {
        want = o->cap_mask;
    } else if (o->caps) {
        want |= CAP_TAGS | CAP_TIME | CAP_LABEL | CAP_BATCH;
    }
    if (o->sasl != NULL) {
        want |= CAP_SASL;
    }
    return want;
}

static void
start_register(struct bench_client *c)
{
    struct bench_worker *w = c->w;
    c->state = ST_REGISTERING;
    client_send(c, "CAP LS 302");
    client_send(c, "NICK %s%u", w->o->nick_prefix, c->id);
    client_send(c, "USER %s%u 0 * :pchat-bench", w->o->nick_prefix, c->id);
}

/* CAP LS lines: note which of our caps are offered; on the last line ask
 * for them (or end negotiation when there is none). */
static void
on_cap(struct bench_client *c, char *rest)
{
    struct bench_worker *w = c->w;
    /* rest: "<nick> <sub> [*] :caps" */
    char *sub = strchr(rest, ' ');
    if (sub == NULL) {
        return;
    }
    sub++;
    char *list = strstr(sub, " :");
    bool more = strstr(sub, " * :") != NULL;
    list = list != NULL ? list + 2 : NULL;
    unsigned bits = 0;
    if (list != NULL) {
        char *save = NULL;
        for (char *tok = strtok_r(list, " ", &save); tok != NULL;
             tok = strtok_r(NULL, " ", &save)) {
            size_t tl = strcspn(tok, "=");
            for (size_t i = 0; i < sizeof(bench_caps) / sizeof(bench_caps[0]);
                 i++) {
                if (strlen(bench_caps[i].name) == tl
                    && strncmp(tok, bench_caps[i].name, tl) == 0) {
                    bits |= bench_caps[i].bit;
                }
            }
        }
    }
    if (strncmp(sub, "LS", 2) == 0) {
        c->caps_offered |= (uint8_t)bits;
        if (more) {
            return;
        }
        if (w->o->sasl != NULL && !(c->caps_offered & CAP_SASL)) {
            w->st.err[E_SASL]++; /* asked for, not offered */
        }
        unsigned req = c->caps_offered & caps_wanted(w->o);
        if (req == 0) {
            client_send(c, "CAP END");
            return;
        }
        char line[256];
        size_t len = 0;
        line[0] = '\0';
        for (size_t i = 0; i < sizeof(bench_caps) / sizeof(bench_caps[0]);
             i++) {
            if (req & bench_caps[i].bit) {
                int n = snprintf(line + len, sizeof(line) - len, "%s%s",
                                 len ? " " : "", bench_caps[i].name);
                if (n > 0 && (size_t)n < sizeof(line) - len) {
                    len += (size_t)n;
                }
            }
        }
        client_send(c, "CAP REQ :%s", line);
    } else if (strncmp(sub, "ACK", 3) == 0) {
        c->caps_acked |= (uint8_t)bits;
        if (bits & CAP_ECHO) {
            w->st.echo_clients++;
        }
        if ((c->caps_acked & CAP_SASL) && w->o->sasl != NULL) {
            client_send(c, "AUTHENTICATE PLAIN");
        } else {
            client_send(c, "CAP END");
        }
    } else if (strncmp(sub, "NAK", 3) == 0) {
        w->st.err[E_CAP]++;
        client_send(c, "CAP END");
    }
}

static void
on_registered(struct bench_client *c)
{
    struct bench_worker *w = c->w;
    w->st.registered++;
    w->st.t_last_registered = now_ns();
    if (c->room >= 0) {
        c->state = ST_JOINING;
        client_send(c, "JOIN #%s%d", w->o->room_prefix, c->room);
    } else {
        c->state = ST_READY;
        w->ready++;
        w->st.joined++;
        w->st.t_last_joined = w->st.t_last_registered;
    }
}

/* ------------------------------------------------------------------ */
/* Input: one line, NUL-terminated in place. */

static void
on_privmsg(struct bench_client *c, char *rest)
{
    struct bench_worker *w = c->w;
    char *body = strstr(rest, " :");
    if (body == NULL || strncmp(body + 2, "pb ", 3) != 0) {
        return;
    }
    char *p = body + 5;
    uint64_t sent = strtoull(p, &p, 10);
    unsigned long from = strtoul(p, NULL, 10);
    uint64_t now = now_ns();
    uint64_t lat = now > sent ? now - sent : 0;
    /* Counted by when the post was sent, not when its answer came: posts,
     * acks and deliveries then cover the same posts, whatever was in
     * flight at either end of the window. */
    bool counted = in_window(w, sent);
    if (from == c->id) {
        c->pending--;
        if (counted) {
            w->st.acks++;
            hist_add(&w->st.ack, lat);
        }
        if (w->posting && c->sender && w->o->rate <= 0) {
            client_post(c);
        }
    } else if (counted) {
        w->st.deliveries++;
        hist_add(&w->st.lat, lat);
    }
}

/* A post that will not be echoed (FAIL, 404): keep the window full. */
static void
post_refused(struct bench_client *c)
{
    if (c->pending > 0) {
        c->pending--;
    }
    if (c->w->posting && c->sender && c->w->o->rate <= 0) {
        client_post(c);
    }
}

static void
on_line(struct bench_client *c, char *p)
{
    struct bench_worker *w = c->w;

    if (*p == '@') {
        p = strchr(p, ' ');
        if (p == NULL) {
            return;
        }
        p++;
    }
    if (*p == ':') {
        p = strchr(p, ' ');
        if (p == NULL) {
            return;
        }
        p++;
    }
    char *cmd = p;
    char *rest = strchr(p, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
    } else {
        rest = p + strlen(p);
    }
    if (cmd[0] == 'P' && strcmp(cmd, "PRIVMSG") == 0) {
        on_privmsg(c, rest);
        return;
    }
    if (strcmp(cmd, "PING") == 0) {
        client_send(c, "PONG %s", rest);
        return;
    }
    if (cmd[0] >= '0' && cmd[0] <= '9' && cmd[1] != '\0' && cmd[2] != '\0'
        && cmd[3] == '\0') {
        int num = atoi(cmd);
        switch (num) {
        case 1:
            on_registered(c);
            return;
        case 366:
            if (c->state == ST_JOINING) {
                c->state = ST_READY;
                w->ready++;
                w->st.joined++;
                w->st.t_last_joined = now_ns();
            }
            return;
        case 433:
        case 432:
        case 436:
            w->st.err[E_NICK]++;
            if (c->state == ST_REGISTERING) {
                client_send(c, "NICK %s%u_%u", w->o->nick_prefix, c->id,
                            (unsigned)(now_ns() % 100000u));
            }
            return;
        case 903:
            client_send(c, "CAP END");
            return;
        case 902:
        case 904:
        case 905:
        case 906:
            w->st.err[E_SASL]++;
            client_send(c, "CAP END");
            return;
        case 404:
            w->st.err[E_NUMERIC]++;
            post_refused(c);
            return;
        case 421:
            /* A server without CAP: registration goes on without it. */
            if (strstr(rest, " CAP ") != NULL) {
                return;
            }
            w->st.err[E_NUMERIC]++;
            return;
        case 422: /* no MOTD */
            return;
        default:
            if (num >= 400 && num < 600 && num != 900) {
                w->st.err[E_NUMERIC]++;
            }
            return;
        }
    }
    if (strcmp(cmd, "CAP") == 0) {
        on_cap(c, rest);
        return;
    }
    if (strcmp(cmd, "AUTHENTICATE") == 0) {
        if (rest[0] == '+') {
            client_send(c, "AUTHENTICATE %s", w->sasl_b64);
        }
        return;
    }
    if (strcmp(cmd, "FAIL") == 0) {
        w->st.err[E_FAIL]++;
        if (strncmp(rest, "PRIVMSG ", 8) == 0) {
            post_refused(c);
        }
        return;
    }
    if (strcmp(cmd, "ERROR") == 0) {
        client_close(c, E_ERROR_LINE);
        return;
    }
}

/* Frames lines in place in `data` (a shared buffer we may write to); only
 * an incomplete last line is copied, into c->part. */
static void
client_feed(struct bench_client *c, char *data, size_t len)
{
    char *p = data;
    char *end = data + len;

    if (c->part.len > 0) {
        char *nl = memchr(p, '\n', len);
        size_t take = nl != NULL ? (size_t)(nl - p) : len;
        if (pc_buf_append(&c->part, p, take) < 0) {
            pc_buf_reset(&c->part); /* an absurd line: drop it */
            c->w->st.err[E_NUMERIC]++;
        }
        if (nl == NULL) {
            return;
        }
        if (c->part.len > 0 && c->part.data[c->part.len - 1] == '\r') {
            c->part.len--;
        }
        if (pc_buf_append(&c->part, "", 1) == 0) {
            on_line(c, c->part.data);
        }
        pc_buf_reset(&c->part);
        pc_buf_shrink(&c->part);
        if (c->state == ST_DEAD) {
            return;
        }
        p = nl + 1;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            if (pc_buf_append(&c->part, p, (size_t)(end - p)) < 0) {
                pc_buf_reset(&c->part);
            }
            return;
        }
        char *e = nl;
        if (e > p && e[-1] == '\r') {
            e--;
        }
        *e = '\0';
        if (e > p) {
            on_line(c, p);
        }
        if (c->state == ST_DEAD) {
            return;
        }
        p = nl + 1;
    }
}

static void
tls_input(struct bench_client *c, const char *data, size_t len)
{
    struct bench_worker *w = c->w;
    if (len > 0 && BIO_write(SSL_get_rbio(c->ssl), data, (int)len) <= 0) {
        client_close(c, E_TLS);
        return;
    }
    if (c->state == ST_TLS) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            w->st.handshaken++;
            w->st.t_last_handshake = now_ns();
            if (w->o->handshake_only) {
                c->state = ST_READY;
                w->ready++;
            } else {
                start_register(c);
            }
        } else {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                client_close(c, E_TLS);
                return;
            }
        }
    }
    while (c->state != ST_TLS && c->state != ST_DEAD) {
        int n = SSL_read(c->ssl, w->plain, (int)sizeof(w->plain));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN) {
                client_close(c, E_CLOSED);
                return;
            }
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                client_close(c, E_TLS);
                return;
            }
            break;
        }
        client_feed(c, w->plain, (size_t)n);
    }
    if (c->state != ST_DEAD
        && BIO_ctrl_pending(SSL_get_wbio(c->ssl)) > 0) {
        mark_dirty(c);
    }
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct bench_client *c = h->data;
    buf->base = c->w->rbuf;
    buf->len = sizeof(c->w->rbuf);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct bench_client *c = s->data;
    if (n < 0) {
        client_close(c, E_CLOSED);
        return;
    }
    if (n == 0) {
        return;
    }
    if (c->ssl != NULL) {
        tls_input(c, buf->base, (size_t)n);
    } else {
        client_feed(c, buf->base, (size_t)n);
    }
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct bench_client *c = req->data;
    struct bench_worker *w = c->w;
    if (c->state == ST_DEAD) {
        return;
    }
    if (status < 0) {
        client_close(c, E_CONNECT);
        return;
    }
    w->st.connected++;
    w->st.t_last_connected = now_ns();
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        client_close(c, E_CONNECT);
        return;
    }
    if (w->tls != NULL) {
        c->ssl = SSL_new(w->tls);
        if (c->ssl == NULL) {
            client_close(c, E_TLS);
            return;
        }
        SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_connect_state(c->ssl);
        c->state = ST_TLS;
        tls_input(c, "", 0);
        mark_dirty(c);
    } else {
        start_register(c);
    }
}

static void
src_addr(const struct bench_opts *o, uint32_t k, char *out, size_t cap)
{
    uint32_t a;
    if (o->src_base != 0) {
        a = o->src_base + 1u + k;
    } else {
        /* The count form: 127.1.1.1, 127.1.1.2, ... 250 per /24. */
        a = (127u << 24) | ((1u + k / 62500u) << 16)
            | ((1u + (k / 250u) % 250u) << 8) | (1u + k % 250u);
    }
    (void)snprintf(out, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u,
                   (a >> 8) & 255u, a & 255u);
}

static void
client_start(struct bench_worker *w, struct bench_client *c)
{
    const struct bench_opts *o = w->o;
    struct sockaddr_storage dst;

    c->state = ST_CONNECTING;
    w->st.attempted++;
    if (w->st.t_first_attempt == 0) {
        w->st.t_first_attempt = now_ns();
    }
    if (strchr(o->host, ':') != NULL) {
        (void)uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&dst);
    } else {
        (void)uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&dst);
    }
    int rc = uv_tcp_init_ex(w->loop, &c->tcp, dst.ss_family);
    if (rc != 0) {
        /* Nothing to close: the handle was never initialised. */
        c->state = ST_DEAD;
        w->dead++;
        w->st.err[E_CONNECT]++;
        return;
    }
    c->tcp.data = c;
    c->creq.data = c;
    if (o->nsrc > 1 && dst.ss_family == AF_INET) {
        struct sockaddr_in src;
        char a[32];
        uv_os_fd_t fd;
        int one = 1;
        src_addr(o, c->id % (uint32_t)o->nsrc, a, sizeof(a));
        (void)uv_ip4_addr(a, 0, &src);
        /* The port is then chosen at connect() from the whole 4-tuple, so
         * each source address has its own ephemeral range. */
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                             sizeof(one));
        }
        if (uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0) != 0) {
            client_close(c, E_CONNECT);
            return;
        }
    }
    if (uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect)
        != 0) {
        client_close(c, E_CONNECT);
    }
}

/* ------------------------------------------------------------------ */
/* Posting and phases. */

static void
client_post(struct bench_client *c)
{
    static const char pad[] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    struct bench_worker *w = c->w;
    int padlen = w->o->body_len - 40;

    if (c->state != ST_READY) {
        return;
    }
    if (padlen < 0) {
        padlen = 0;
    }
    if (padlen > (int)sizeof(pad) - 1) {
        padlen = (int)sizeof(pad) - 1;
    }
    uint64_t sent = now_ns();
    client_send(c, "PRIVMSG #%s%d :pb %" PRIu64 " %u %" PRIu64 " %.*s",
                w->o->room_prefix, c->room, sent, c->id, ++c->seq, padlen,
                pad);
    c->pending++;
    if (in_window(w, sent)) {
        w->st.posts++;
    }
}

static void
report_up(struct bench_worker *w, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(w->up_fd, text, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        text += n;
        len -= (size_t)n;
    }
}

static void
stats_json(const struct bench_stats *s, struct pc_buf *out)
{
    (void)pc_buf_append_str(out, "{");
#define X(n) (void)pc_buf_printf(out, "\"" #n "\":%" PRIu64 ",", s->n);
    BENCH_COUNTERS(X)
    BENCH_LAST_TIMES(X)
#undef X
    (void)pc_buf_printf(out, "\"t_first_attempt\":%" PRIu64 ",",
                        s->t_first_attempt);
    (void)pc_buf_printf(out, "\"cpu_window_secs\":%.4f,\"cpu_total_secs\":%.4f,"
                        "\"window_secs\":%.6f,\"err\":[",
                        s->cpu_window_secs, s->cpu_total_secs, s->window_secs);
    for (int i = 0; i < E_COUNT; i++) {
        (void)pc_buf_printf(out, "%s%" PRIu64, i ? "," : "", s->err[i]);
    }
    const struct bench_hist *hs[2] = {&s->lat, &s->ack};
    const char *names[2] = {"lat", "ack"};
    for (int k = 0; k < 2; k++) {
        const struct bench_hist *h = hs[k];
        (void)pc_buf_printf(out, "],\"%s\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64,
                            names[k], h->count, h->max_ns, h->sum_us);
        for (size_t i = 0; i < HIST_BUCKETS; i++) {
            if (h->b[i] != 0) {
                (void)pc_buf_printf(out, ",%zu,%" PRIu64, i, h->b[i]);
            }
        }
    }
    (void)pc_buf_append_str(out, "]}");
}

/* The end of the window: posting stops; the answers still due are
 * awaited (PH_DRAIN) before the result goes up. */
static void
worker_end_window(struct bench_worker *w, uint64_t now)
{
    w->measuring = false;
    w->posting = false;
    w->phase = PH_DRAIN;
    w->t_quiet_ns = 0;
    w->st.window_secs = (double)(now - w->t_measure_ns) / 1e9;
    w->st.cpu_window_secs = proc_cpu_secs(0) - w->cpu0;
}

static bool
worker_pending(const struct bench_worker *w)
{
    for (int i = 0; i < w->nclients; i++) {
        if (w->clients[i].state == ST_READY && w->clients[i].pending > 0) {
            return true;
        }
    }
    return false;
}

static void
worker_finish(struct bench_worker *w)
{
    struct pc_buf out;

    w->phase = PH_DONE;
    w->st.cpu_total_secs = proc_cpu_secs(0);
    for (int i = 0; i < w->nclients; i++) {
        if (w->clients[i].state == ST_READY) {
            w->st.held++;
        }
    }
    pc_buf_init(&out, BENCH_RESULT_MAX);
    (void)pc_buf_append_str(&out, "result ");
    stats_json(&w->st, &out);
    (void)pc_buf_append(&out, "\n", 1);
    report_up(w, out.data, out.len);
    pc_buf_free(&out);
}

static void
worker_start_posting(struct bench_worker *w)
{
    w->posting = true;
    if (w->o->rate > 0) {
        return;
    }
    for (int i = 0; i < w->nsenders; i++) {
        struct bench_client *c = &w->clients[w->senders[i]];
        for (int k = 0; k < w->o->window; k++) {
            client_post(c);
        }
    }
}

static void
worker_pace(struct bench_worker *w, uint64_t now)
{
    w->credit += (double)(now - w->t_last_tick_ns) / 1e9 * w->rate;
    if (w->credit > w->rate) {
        w->credit = w->rate; /* at most a second of catching up */
    }
    int idle = 0;
    while (w->credit >= 1.0 && idle < w->nsenders) {
        struct bench_client *c = &w->clients[w->senders[w->sender_rr]];
        w->sender_rr = (w->sender_rr + 1) % w->nsenders;
        if (c->state != ST_READY) {
            idle++;
            continue;
        }
        idle = 0;
        client_post(c);
        w->credit -= 1.0;
    }
}

static void
on_tick(uv_timer_t *t)
{
    struct bench_worker *w = t->data;
    const struct bench_opts *o = w->o;
    uint64_t now = now_ns();

    if (w->phase == PH_CONNECT) {
        double since = (double)(now - w->t_start_ns) / 1e9;
        int allowed = w->nclients;
        if (o->connect_rate > 0) {
            allowed = (int)(since * o->connect_rate / o->procs) + 1;
        }
        int batch = 0;
        while (w->next_connect < w->nclients && w->next_connect < allowed
               && batch < 1000) {
            client_start(w, &w->clients[w->next_connect++]);
            batch++;
        }
        bool settled = w->next_connect == w->nclients
                       && w->ready + w->dead >= w->nclients;
        if (settled || since > o->connect_timeout) {
            for (int i = 0; i < w->nclients; i++) {
                if (w->clients[i].state != ST_READY
                    && w->clients[i].state != ST_DEAD) {
                    w->st.err[E_TIMEOUT]++;
                }
            }
            w->phase = PH_WAIT_GO;
            report_up(w, "ready\n", 6);
        }
    } else if (w->phase == PH_RUN) {
        if (!w->posting && now >= w->t_go_ns && !w->o->idle) {
            worker_start_posting(w);
        }
        if (!w->measuring && now >= w->t_measure_ns) {
            w->measuring = true;
            w->cpu0 = proc_cpu_secs(0);
        }
        if (now >= w->t_end_ns) {
            worker_end_window(w, now);
        } else if (w->posting && w->rate > 0 && w->nsenders > 0) {
            worker_pace(w, now);
        }
    } else if (w->phase == PH_DRAIN) {
        /* Every echo in, then a moment for the deliveries to the other
         * members, which the server wrote in the same pass. */
        if (worker_pending(w)) {
            w->t_quiet_ns = 0;
        } else if (w->t_quiet_ns == 0) {
            w->t_quiet_ns = now;
        }
        if ((w->t_quiet_ns != 0 && now - w->t_quiet_ns >= DRAIN_GRACE_NS)
            || now - w->t_end_ns >= DRAIN_MAX_NS) {
            worker_finish(w);
        }
    }
    w->t_last_tick_ns = now;
    /* Timers run before the poll phase: posts queued here must not wait
     * for the poll to return (up to a tick) before they are written. */
    flush_all(w);
}

/* The parent's control pipe: "go <monotonic ns>\n", then EOF to quit. */
static void
on_ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct bench_worker *w = h->data;
    buf->base = w->ctl_buf + w->ctl_len;
    buf->len = sizeof(w->ctl_buf) - 1 - w->ctl_len;
}

static void
on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct bench_worker *w = s->data;
    if (n < 0) {
        uv_stop(w->loop);
        return;
    }
    w->ctl_len += (size_t)n;
    w->ctl_buf[w->ctl_len] = '\0';
    char *nl = strchr(w->ctl_buf, '\n');
    if (nl == NULL) {
        if (w->ctl_len >= sizeof(w->ctl_buf) - 1) {
            w->ctl_len = 0;
        }
        return;
    }
    if (strncmp(w->ctl_buf, "go ", 3) == 0 && w->phase == PH_WAIT_GO) {
        w->t_go_ns = strtoull(w->ctl_buf + 3, NULL, 10);
        w->t_measure_ns = w->t_go_ns + (uint64_t)(w->o->warmup * 1e9);
        w->t_end_ns = w->t_measure_ns + (uint64_t)(w->o->duration * 1e9);
        w->phase = PH_RUN;
    }
    w->ctl_len = 0;
}

static int
worker_run(const struct bench_opts *o, const struct bench_plan *plan, int proc,
           int up_fd, int ctl_fd)
{
    static struct bench_worker wk; /* large buffers: not on the stack */
    struct bench_worker *w = &wk;
    int total_senders = 0;

    w->loop = uv_default_loop();
    w->o = o;
    w->plan = plan;
    w->proc = proc;
    w->up_fd = up_fd;
    w->nclients = (o->clients - proc + o->procs - 1) / o->procs;
    w->clients = calloc((size_t)w->nclients, sizeof(*w->clients));
    w->senders = calloc((size_t)w->nclients + 1, sizeof(*w->senders));
    if (w->clients == NULL || w->senders == NULL) {
        return -ENOMEM;
    }
    /* Clients are dealt to processes like cards (id = proc + k * procs), so
     * senders (the lowest ids) are spread over every process. */
    for (int k = 0; k < w->nclients; k++) {
        struct bench_client *c = &w->clients[k];
        c->w = w;
        c->id = (uint32_t)(proc + k * o->procs);
        c->room = plan->room_of[c->id];
        c->state = ST_NEW;
        c->sender = !o->idle && (int)c->id < plan->senders;
        pc_buf_init(&c->out, BENCH_OUT_MAX);
        pc_buf_init(&c->wire, BENCH_OUT_MAX);
        pc_buf_init(&c->inflight, BENCH_OUT_MAX);
        pc_buf_init(&c->part, BENCH_LINE_MAX);
        if (c->sender) {
            w->senders[w->nsenders++] = (uint32_t)k;
        }
    }
    total_senders = o->idle ? 0 : plan->senders;
    w->rate = total_senders > 0 ? o->rate * w->nsenders / total_senders : 0;
    if (o->sasl != NULL) {
        /* PLAIN: authzid NUL authcid NUL password. */
        unsigned char raw[300];
        const char *colon = strchr(o->sasl, ':');
        size_t ul = colon != NULL ? (size_t)(colon - o->sasl) : strlen(o->sasl);
        const char *pass = colon != NULL ? colon + 1 : "";
        size_t pl = strlen(pass);
        if (2 * ul + pl + 2 > sizeof(raw)) {
            return -EINVAL;
        }
        memcpy(raw, o->sasl, ul);
        raw[ul] = 0;
        memcpy(raw + ul + 1, o->sasl, ul);
        raw[2 * ul + 1] = 0;
        memcpy(raw + 2 * ul + 2, pass, pl);
        base64(raw, 2 * ul + 2 + pl, w->sasl_b64, sizeof(w->sasl_b64));
    }
    if (o->tls) {
        w->tls = SSL_CTX_new(TLS_client_method());
        if (w->tls == NULL) {
            return -ENOMEM;
        }
        SSL_CTX_set_verify(w->tls, SSL_VERIFY_NONE, NULL);
        /* Every connection does a full handshake, as after a failover. */
        (void)SSL_CTX_set_session_cache_mode(w->tls, SSL_SESS_CACHE_OFF);
        (void)SSL_CTX_set_mode(w->tls, SSL_MODE_RELEASE_BUFFERS);
    }
    w->t_start_ns = now_ns();
    w->t_last_tick_ns = w->t_start_ns;
    w->phase = PH_CONNECT;
    (void)uv_timer_init(w->loop, &w->tick);
    w->tick.data = w;
    (void)uv_timer_start(&w->tick, on_tick, 1, 1);
    (void)uv_check_init(w->loop, &w->flush);
    w->flush.data = w;
    (void)uv_check_start(&w->flush, on_check);
    (void)uv_pipe_init(w->loop, &w->ctl, 0);
    w->ctl.data = w;
    if (uv_pipe_open(&w->ctl, ctl_fd) != 0
        || uv_read_start((uv_stream_t *)&w->ctl, on_ctl_alloc, on_ctl_read)
               != 0) {
        return -EIO;
    }
    (void)uv_run(w->loop, UV_RUN_DEFAULT);
    /* The process exits now; the kernel closes every socket at once. */
    return 0;
}

/* ------------------------------------------------------------------ */
/* The parent: plan, coordinate, merge, report. */

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int
plan_build(struct bench_opts *o, struct bench_plan *p)
{
    int n = o->clients;

    p->room_of = calloc((size_t)n, sizeof(*p->room_of));
    if (p->room_of == NULL) {
        return -ENOMEM;
    }
    switch (o->dist) {
    case DIST_ROUND_ROBIN:
        if (o->rooms <= 0) {
            o->rooms = n / 10 > 0 ? n / 10 : 1;
        }
        for (int i = 0; i < n; i++) {
            p->room_of[i] = i % o->rooms;
        }
        break;
    case DIST_UNIFORM: {
        int k = (int)o->dist_arg;
        o->rooms = (n + k - 1) / k;
        for (int i = 0; i < n; i++) {
            p->room_of[i] = i % o->rooms;
        }
        break;
    }
    case DIST_ONE: {
        int k = o->dist_arg > 0 ? (int)o->dist_arg : n;
        if (k > n) {
            k = n;
        }
        if (k == n) {
            o->rooms = 1;
        } else if (o->rooms < 2) {
            o->rooms = 1 + ((n - k) + 9) / 10;
        }
        for (int i = 0; i < n; i++) {
            p->room_of[i] = i < k ? 0 : 1 + (i - k) % (o->rooms - 1);
        }
        break;
    }
    case DIST_ZIPF: {
        if (o->rooms <= 0) {
            o->rooms = n / 10 > 0 ? n / 10 : 1;
        }
        if (o->rooms > n) {
            o->rooms = n;
        }
        double *cdf = calloc((size_t)o->rooms, sizeof(double));
        if (cdf == NULL) {
            return -ENOMEM;
        }
        double sum = 0;
        for (int r = 0; r < o->rooms; r++) {
            sum += 1.0 / pow((double)(r + 1), o->dist_arg);
            cdf[r] = sum;
        }
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < n; i++) {
            if (i < o->rooms) {
                p->room_of[i] = i; /* no room is empty */
                continue;
            }
            double u = (double)(xorshift(&seed) >> 11) / 9007199254740992.0
                       * sum;
            int lo = 0, hi = o->rooms - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (cdf[mid] < u) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            p->room_of[i] = lo;
        }
        free(cdf);
        break;
    }
    }
    p->rooms = o->rooms;
    p->room_size = calloc((size_t)p->rooms, sizeof(*p->room_size));
    if (p->room_size == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        p->room_size[p->room_of[i]]++;
    }
    if (o->senders < 0) {
        o->senders = o->rooms < n ? o->rooms : n;
    }
    if (o->senders > n) {
        o->senders = n;
    }
    p->senders = o->idle ? 0 : o->senders;
    return 0;
}

/* Reads one line from a worker into `line` (NUL-terminated, no newline);
 * returns its length, or a negative code on EOF or timeout. */
static int
read_line(int fd, struct pc_buf *acc, struct pc_buf *line, uint64_t deadline)
{
    for (;;) {
        char *nl = acc->len ? memchr(acc->data, '\n', acc->len) : NULL;
        if (nl != NULL) {
            size_t l = (size_t)(nl - acc->data);
            pc_buf_reset(line);
            if (pc_buf_append(line, acc->data, l) < 0
                || pc_buf_append(line, "", 1) < 0) {
                return PC_E2BIG;
            }
            pc_buf_consume(acc, l + 1);
            return (int)l;
        }
        uint64_t now = now_ns();
        if (now >= deadline) {
            return PC_ETIMEDOUT;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            continue;
        }
        char tmp[65536];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -EPIPE;
        }
        if (pc_buf_append(acc, tmp, (size_t)n) < 0) {
            return PC_E2BIG;
        }
    }
}

/* Our own JSON, so a small scanner is enough: "key":number and
 * "key":[numbers]. */
static const char *
json_key(const char *s, const char *key)
{
    char pat[64];
    (void)snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p != NULL ? p + strlen(pat) : NULL;
}

static uint64_t
json_u64(const char *s, const char *key)
{
    const char *p = json_key(s, key);
    return p != NULL ? strtoull(p, NULL, 10) : 0;
}

static double
json_double(const char *s, const char *key)
{
    const char *p = json_key(s, key);
    return p != NULL ? strtod(p, NULL) : 0;
}

/* Parses "[a,b,c...]" into at most max values; returns how many. */
static size_t
json_array(const char *s, const char *key, uint64_t *vals, size_t max,
           const char **after)
{
    const char *p = json_key(s, key);
    size_t n = 0;
    if (p == NULL || *p != '[') {
        return 0;
    }
    p++;
    while (*p != ']' && *p != '\0') {
        char *e;
        uint64_t v = strtoull(p, &e, 10);
        if (e == p) {
            break;
        }
        if (n < max) {
            vals[n] = v;
        }
        n++;
        p = e;
        if (*p == ',') {
            p++;
        }
    }
    if (after != NULL) {
        *after = p;
    }
    return n;
}

static void
hist_parse(const char *s, const char *key, struct bench_hist *h)
{
    const char *p = json_key(s, key);
    if (p == NULL || *p != '[') {
        return;
    }
    p++;
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        char *e;
        v[i] = strtoull(p, &e, 10);
        p = *e == ',' ? e + 1 : e;
    }
    h->count += v[0];
    if (v[1] > h->max_ns) {
        h->max_ns = v[1];
    }
    h->sum_us += v[2];
    while (*p != ']' && *p != '\0') {
        char *e;
        uint64_t idx = strtoull(p, &e, 10);
        if (*e != ',') {
            break;
        }
        uint64_t cnt = strtoull(e + 1, &e, 10);
        if (idx < HIST_BUCKETS) {
            h->b[idx] += cnt;
        }
        p = *e == ',' ? e + 1 : e;
    }
}

static void
stats_merge_json(struct bench_stats *t, const char *s)
{
#define X(n) t->n += json_u64(s, #n);
    BENCH_COUNTERS(X)
#undef X
#define X(n)                                                                  \
    {                                                                         \
        uint64_t v = json_u64(s, #n);                                         \
        if (v > t->n) {                                                       \
            t->n = v;                                                         \
        }                                                                     \
    }
    BENCH_LAST_TIMES(X)
#undef X
    uint64_t first = json_u64(s, "t_first_attempt");
    if (first != 0 && (t->t_first_attempt == 0 || first < t->t_first_attempt)) {
        t->t_first_attempt = first;
    }
    t->cpu_window_secs += json_double(s, "cpu_window_secs");
    t->cpu_total_secs += json_double(s, "cpu_total_secs");
    double ws = json_double(s, "window_secs");
    if (ws > t->window_secs) {
        t->window_secs = ws;
    }
    uint64_t errs[E_COUNT];
    size_t ne = json_array(s, "err", errs, E_COUNT, NULL);
    for (size_t i = 0; i < ne && i < E_COUNT; i++) {
        t->err[i] += errs[i];
    }
    hist_parse(s, "lat", &t->lat);
    hist_parse(s, "ack", &t->ack);
}

struct bench_server {
    long rss_before_kib, rss_joined_kib, rss_after_kib;
    double cpu_start, cpu_joined, cpu_window_start, cpu_window_end;
};

static double
rate_of(uint64_t n, uint64_t t0, uint64_t t1)
{
    if (n == 0 || t1 <= t0) {
        return 0;
    }
    return (double)n / ((double)(t1 - t0) / 1e9);
}

static void
json_hist(const char *name, const struct bench_hist *h)
{
    printf("\"%s\": {\"count\": %" PRIu64 ", \"mean\": %.1f, \"p50\": %.1f, "
           "\"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}",
           name, h->count, h->count ? (double)h->sum_us / (double)h->count : 0,
           hist_pct_us(h, 50), hist_pct_us(h, 90), hist_pct_us(h, 99),
           hist_pct_us(h, 99.9), (double)h->max_ns / 1000.0);
}

static void
report(const struct bench_opts *o, const struct bench_plan *p,
       const struct bench_stats *t, const struct bench_server *sv,
       double wall, int workers_ok)
{
    double secs = t->window_secs > 0 ? t->window_secs : o->duration;
    double hs_rate = rate_of(t->handshaken, t->t_first_attempt,
                             t->t_last_handshake);
    double conn_rate = rate_of(t->connected, t->t_first_attempt,
                               t->t_last_connected);
    double reg_rate = rate_of(t->registered, t->t_first_attempt,
                              t->t_last_registered);
    double join_secs = t->t_last_joined > t->t_first_attempt
                           ? (double)(t->t_last_joined - t->t_first_attempt) / 1e9
                           : 0;
    double reg_secs = t->t_last_registered > t->t_first_attempt
                          ? (double)(t->t_last_registered - t->t_first_attempt)
                                / 1e9
                          : 0;
    bool srv = o->server_pid > 0;
    double srv_cpu = srv ? sv->cpu_window_end - sv->cpu_window_start : -1;
    double srv_cpu_conn = srv ? sv->cpu_joined - sv->cpu_start : -1;
    double per_conn = -1;
    if (srv && sv->rss_before_kib >= 0 && sv->rss_after_kib >= 0
        && t->held > 0) {
        per_conn = (double)(sv->rss_after_kib - sv->rss_before_kib) * 1024.0
                   / (double)t->held;
    }
    uint64_t errs_total = 0;
    for (int i = 0; i < E_COUNT; i++) {
        errs_total += t->err[i];
    }
    uint32_t rmin = UINT32_MAX, rmax = 0;
    double fanout = 0;
    for (int r = 0; r < p->rooms; r++) {
        if (p->room_size[r] < rmin) {
            rmin = p->room_size[r];
        }
        if (p->room_size[r] > rmax) {
            rmax = p->room_size[r];
        }
    }
    for (int i = 0; i < p->senders; i++) {
        fanout += (double)p->room_size[p->room_of[i]] - 1.0;
    }
    fanout = p->senders > 0 ? fanout / p->senders : 0;

    if (o->json) {
        printf("{\"clients\": %d, \"procs\": %d, \"tls\": %s, \"rooms\": %d, "
               "\"room_size_min\": %u, \"room_size_max\": %u, "
               "\"fanout_per_post\": %.2f, \"senders\": %d, "
               "\"rate_target\": %.0f, \"window\": %d, \"idle\": %s, "
               "\"src_addrs\": %d, \"workers_reported\": %d, ",
               o->clients, o->procs, o->tls ? "true" : "false", p->rooms,
               rmin, rmax, fanout, p->senders, o->rate, o->window,
               o->idle ? "true" : "false", o->nsrc, workers_ok);
        printf("\"attempted\": %" PRIu64 ", \"connected\": %" PRIu64
               ", \"handshaken\": %" PRIu64 ", \"registered\": %" PRIu64
               ", \"joined\": %" PRIu64 ", \"held\": %" PRIu64
               ", \"echo_clients\": %" PRIu64 ", ",
               t->attempted, t->connected, t->handshaken, t->registered,
               t->joined, t->held, t->echo_clients);
        char hs[32] = "null";
        if (o->tls) {
            (void)snprintf(hs, sizeof(hs), "%.1f", hs_rate);
        }
        printf("\"connects_per_sec\": %.1f, \"handshakes_per_sec\": %s, "
               "\"registrations_per_sec\": %.1f, \"connect_secs\": %.3f, "
               "\"join_secs\": %.3f, ",
               conn_rate, hs, reg_rate, reg_secs, join_secs);
        printf("\"measure_secs\": %.3f, \"posts\": %" PRIu64
               ", \"posts_per_sec\": %.1f, \"acks\": %" PRIu64
               ", \"acks_per_sec\": %.1f, \"deliveries\": %" PRIu64
               ", \"deliveries_per_sec\": %.1f, ",
               secs, t->posts, (double)t->posts / secs, t->acks,
               (double)t->acks / secs, t->deliveries,
               (double)t->deliveries / secs);
        json_hist("latency_us", &t->lat);
        printf(", ");
        json_hist("ack_latency_us", &t->ack);
        printf(", \"errors\": {\"total\": %" PRIu64, errs_total);
        for (int i = 0; i < E_COUNT; i++) {
            printf(", \"%s\": %" PRIu64, bench_err_names[i], t->err[i]);
        }
        printf("}, \"bench_cpu_secs\": %.2f, \"bench_cpu_pct\": %.1f, "
               "\"bench_cpu_total_secs\": %.2f, ",
               t->cpu_window_secs, 100.0 * t->cpu_window_secs / secs,
               t->cpu_total_secs);
        printf("\"server_pid\": %d, \"server_cpu_secs\": %.2f, "
               "\"server_cpu_pct\": %.1f, \"server_cpu_connect_secs\": %.2f, "
               "\"server_rss_kib_before\": %ld, \"server_rss_kib_joined\": %ld, "
               "\"server_rss_kib_after\": %ld, \"server_bytes_per_conn\": %.0f, "
               "\"wall_secs\": %.2f}\n",
               o->server_pid, srv_cpu, srv ? 100.0 * srv_cpu / secs : -1,
               srv_cpu_conn, srv ? sv->rss_before_kib : -1,
               srv ? sv->rss_joined_kib : -1, srv ? sv->rss_after_kib : -1,
               per_conn, wall);
        return;
    }
    printf("pchat-bench: %d %s clients to %s:%d in %d process(es), %d source "
           "address(es)\n",
           o->clients, o->tls ? "TLS" : "plain", o->host, o->port, o->procs,
           o->nsrc);
    printf("  rooms %d (members %u..%u), senders %d, fan-out %.1f per post, "
           "%s\n",
           p->rooms, rmin == UINT32_MAX ? 0 : rmin, rmax, p->senders, fanout,
           o->idle ? "idle"
           : o->rate > 0 ? "paced"
                         : "as fast as echoes allow");
    printf("%-34s %14s\n", "metric", "value");
    printf("%-34s %14" PRIu64 "\n", "connections attempted", t->attempted);
    printf("%-34s %14" PRIu64 "\n", "connections established", t->connected);
    if (o->tls) {
        printf("%-34s %14" PRIu64 "\n", "TLS handshakes", t->handshaken);
        printf("%-34s %14.0f\n", "TLS handshakes/s", hs_rate);
    }
    printf("%-34s %14" PRIu64 "\n", "registered", t->registered);
    printf("%-34s %14.0f\n", "registrations/s", reg_rate);
    printf("%-34s %14.3f\n", "connect+register secs", reg_secs);
    printf("%-34s %14" PRIu64 "\n", "joined", t->joined);
    printf("%-34s %14" PRIu64 "\n", "held at end", t->held);
    if (!o->idle) {
        printf("%-34s %14" PRIu64 "\n", "clients with echo-message",
               t->echo_clients);
        printf("%-34s %14.3f\n", "measured secs", secs);
        printf("%-34s %14.0f\n", "posts/s", (double)t->posts / secs);
        printf("%-34s %14.0f\n", "acks/s (echoes)", (double)t->acks / secs);
        printf("%-34s %14.0f\n", "deliveries/s (fan-out)",
               (double)t->deliveries / secs);
        printf("%-34s %14.1f\n", "latency p50 us", hist_pct_us(&t->lat, 50));
        printf("%-34s %14.1f\n", "latency p99 us", hist_pct_us(&t->lat, 99));
        printf("%-34s %14.1f\n", "latency p99.9 us",
               hist_pct_us(&t->lat, 99.9));
        printf("%-34s %14.1f\n", "latency max us",
               (double)t->lat.max_ns / 1000.0);
        printf("%-34s %14.1f\n", "echo latency p50 us",
               hist_pct_us(&t->ack, 50));
        printf("%-34s %14.1f\n", "echo latency p99 us",
               hist_pct_us(&t->ack, 99));
    }
    printf("%-34s %14" PRIu64 "\n", "errors", errs_total);
    for (int i = 0; i < E_COUNT; i++) {
        if (t->err[i] != 0) {
            char label[64];
            (void)snprintf(label, sizeof(label), "  errors: %s",
                           bench_err_names[i]);
            printf("%-34s %14" PRIu64 "\n", label, t->err[i]);
        }
    }
    printf("%-34s %14.2f (%.0f%% of a core)\n", "bench CPU secs in window",
           t->cpu_window_secs, 100.0 * t->cpu_window_secs / secs);
    printf("%-34s %14.2f\n", "bench CPU secs total", t->cpu_total_secs);
    if (srv) {
        printf("%-34s %14.2f (%.0f%% of a core)\n",
               "server CPU secs in window", srv_cpu, 100.0 * srv_cpu / secs);
        printf("%-34s %14.2f\n", "server CPU secs connecting", srv_cpu_conn);
        printf("%-34s %8ld -> %ld KiB\n", "server RSS", sv->rss_before_kib,
               sv->rss_after_kib);
        printf("%-34s %14.0f\n", "server bytes per connection", per_conn);
    }
    printf("%-34s %14.2f\n", "wall secs", wall);
}

static void
usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: pchat-bench [options]\n"
        "  --host H              server address (default 127.0.0.1)\n"
        "  --port P              server port (default 6667)\n"
        "  --tls                 TLS (no verification, full handshakes)\n"
        "  --clients N           connections (default 100)\n"
        "  --procs P             worker processes (default 1; one holds at\n"
        "                        most the descriptor limit)\n"
        "  --src-addrs SPEC      bind outgoing sockets round-robin to loopback\n"
        "                        sources: K (127.1.1.1 ... K addresses),\n"
        "                        127.2.0.0/16 (every host) or 127.2.0.0/16:K\n"
        "  --rooms R             rooms (default N/10)\n"
        "  --room-size D         uniform:K (rooms of K), one:K (one room of K,\n"
        "                        the rest in --rooms - 1 others), one (all in\n"
        "                        one room), zipf:S (Zipf sizes, exponent S)\n"
        "  --senders S           posting clients, spread over rooms\n"
        "                        (default: one per room)\n"
        "  --rate M              posts per second in total (0 = as fast as\n"
        "                        echoes allow with --window W per sender)\n"
        "  --window W            posts in flight per sender (default 1)\n"
        "  --body-len B          message body length (default 60)\n"
        "  --duration D          measured seconds (default 10); the answers to\n"
        "                        the posts sent in them are awaited after\n"
        "  --warmup W            seconds posting before measuring (default 2)\n"
        "  --connect-rate C      new connections per second (0 = at once)\n"
        "  --connect-timeout T   give up waiting for joins (default 120 s)\n"
        "  --idle                connect, register, join, hold, report\n"
        "  --handshake-only      with --tls: connect, complete the TLS\n"
        "                        handshake, hold (no IRC), report\n"
        "  --cap                 request echo-message message-tags server-time\n"
        "                        labeled-response batch (else echo-message)\n"
        "  --caps LIST           request exactly these, comma-separated\n"
        "  --sasl USER:PASS      SASL PLAIN during registration\n"
        "  --nick-prefix X       nick prefix (default b): nicks are X<id>\n"
        "  --room-prefix X       room prefix (default bench): rooms #X<n>;\n"
        "                        generators sharing rooms share this\n"
        "  --server-pid PID      report the server's CPU and RSS from /proc\n"
        "  --json                one JSON object instead of the table\n");
}

static int
parse_src(const char *s, struct bench_opts *o)
{
    char *end;
    if (strchr(s, '.') == NULL) {
        long k = strtol(s, &end, 10);
        if (*end != '\0' || k < 1 || k > 62500 * 4) {
            return -EINVAL;
        }
        o->nsrc = (int)k;
        o->src_base = 0;
        return 0;
    }
    char addr[32];
    size_t al = strcspn(s, "/");
    if (al >= sizeof(addr) || s[al] != '/') {
        return -EINVAL;
    }
    memcpy(addr, s, al);
    addr[al] = '\0';
    struct in_addr in;
    if (inet_pton(AF_INET, addr, &in) != 1) {
        return -EINVAL;
    }
    long prefix = strtol(s + al + 1, &end, 10);
    if (prefix < 8 || prefix > 30) {
        return -EINVAL;
    }
    uint32_t a = ntohl(in.s_addr);
    uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
    if ((a >> 24) != 127u) {
        return -EINVAL; /* loopback sources only */
    }
    long hosts = (1L << (32 - prefix)) - 2;
    long k = hosts;
    if (*end == ':' || *end == ',') {
        k = strtol(end + 1, &end, 10);
    }
    if (*end != '\0' || k < 1 || k > hosts || k > 1000000) {
        return -EINVAL;
    }
    o->src_base = a & mask;
    o->nsrc = (int)k;
    return 0;
}

static int
parse_caps(const char *s, struct bench_opts *o)
{
    o->cap_mask = 0;
    while (*s != '\0') {
        size_t l = strcspn(s, ", ");
        bool found = false;
        for (size_t i = 0; i < sizeof(bench_caps) / sizeof(bench_caps[0]);
             i++) {
            if (strlen(bench_caps[i].name) == l
                && strncmp(s, bench_caps[i].name, l) == 0) {
                o->cap_mask |= bench_caps[i].bit;
                found = true;
            }
        }
        if (!found && l > 0) {
            return -EINVAL;
        }
        s += l;
        s += strspn(s, ", ");
    }
    return 0;
}

static int
parse_dist(const char *s, struct bench_opts *o)
{
    const char *colon = strchr(s, ':');
    double arg = colon != NULL ? atof(colon + 1) : 0;
    size_t nl = colon != NULL ? (size_t)(colon - s) : strlen(s);
    if (nl == 7 && strncmp(s, "uniform", 7) == 0 && arg >= 1) {
        o->dist = DIST_UNIFORM;
    } else if (nl == 3 && strncmp(s, "one", 3) == 0) {
        o->dist = DIST_ONE;
    } else if (nl == 4 && strncmp(s, "zipf", 4) == 0 && arg > 0) {
        o->dist = DIST_ZIPF;
    } else {
        return -EINVAL;
    }
    o->dist_arg = arg;
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, NULL, 'H'},        {"port", 1, NULL, 'p'},
        {"tls", 0, NULL, 'T'},         {"clients", 1, NULL, 'n'},
        {"procs", 1, NULL, 'P'},       {"src-addrs", 1, NULL, 'S'},
        {"rooms", 1, NULL, 'r'},       {"room-size", 1, NULL, 'z'},
        {"senders", 1, NULL, 's'},     {"rate", 1, NULL, 'R'},
        {"window", 1, NULL, 'w'},      {"duration", 1, NULL, 'd'},
        {"warmup", 1, NULL, 'W'},      {"connect-rate", 1, NULL, 'c'},
        {"connect-timeout", 1, NULL, 't'}, {"idle", 0, NULL, 'I'},
        {"json", 0, NULL, 'j'},        {"server-pid", 1, NULL, 'x'},
        {"nick-prefix", 1, NULL, 'N'}, {"body-len", 1, NULL, 'b'},
        {"cap", 0, NULL, 'C'},         {"sasl", 1, NULL, 'A'},
        {"room-prefix", 1, NULL, 'Q'}, {"caps", 1, NULL, 'K'},
        {"handshake-only", 0, NULL, 'O'},
        {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bench_opts o = {
        .host = "127.0.0.1",
        .port = 6667,
        .clients = 100,
        .procs = 1,
        .rooms = 0,
        .senders = -1,
        .window = 1,
        .duration = 10,
        .warmup = 2,
        .connect_timeout = 120,
        .nick_prefix = "b",
        .room_prefix = "bench",
        .body_len = 60,
        .nsrc = 1,
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'H':
            o.host = strcmp(optarg, "localhost") == 0 ? "127.0.0.1" : optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'T':
            o.tls = true;
            break;
        case 'n':
            o.clients = atoi(optarg);
            break;
        case 'P':
            o.procs = atoi(optarg);
            break;
        case 'S':
            if (parse_src(optarg, &o) < 0) {
                (void)fprintf(stderr, "pchat-bench: bad --src-addrs %s\n",
                              optarg);
                return 2;
            }
            break;
        case 'r':
            o.rooms = atoi(optarg);
            break;
        case 'z':
            if (parse_dist(optarg, &o) < 0) {
                (void)fprintf(stderr, "pchat-bench: bad --room-size %s\n",
                              optarg);
                return 2;
            }
            break;
        case 's':
            o.senders = atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 'w':
            o.window = atoi(optarg);
            break;
        case 'd':
            o.duration = atof(optarg);
            break;
        case 'W':
            o.warmup = atof(optarg);
            break;
        case 'c':
            o.connect_rate = atof(optarg);
            break;
        case 't':
            o.connect_timeout = atof(optarg);
            break;
        case 'I':
            o.idle = true;
            break;
        case 'O':
            o.handshake_only = o.idle = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 'x':
            o.server_pid = atoi(optarg);
            break;
        case 'N':
            o.nick_prefix = optarg;
            break;
        case 'Q':
            o.room_prefix = optarg;
            break;
        case 'b':
            o.body_len = atoi(optarg);
            break;
        case 'C':
            o.caps = true;
            break;
        case 'A':
            o.sasl = optarg;
            break;
        case 'K':
            if (parse_caps(optarg, &o) < 0) {
                (void)fprintf(stderr, "pchat-bench: bad --caps %s\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || o.clients < 1 || o.procs < 1
        || o.procs > BENCH_MAX_PROCS || o.procs > o.clients || o.port < 1
        || o.port > 65535 || o.window < 1 || o.duration < 0 || o.warmup < 0
        || strlen(o.nick_prefix) > 12 || strlen(o.room_prefix) > 32
        || (o.handshake_only && !o.tls)) {
        usage(stderr);
        return 2;
    }

    /* Descriptors: one per client, plus a few; raise the soft limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        long per = (o.clients + o.procs - 1) / o.procs;
        if ((rlim_t)per + 32 > rl.rlim_cur) {
            (void)fprintf(stderr,
                          "pchat-bench: %ld clients per process exceed the "
                          "descriptor limit %lu; use more --procs\n",
                          per, (unsigned long)rl.rlim_cur);
            return 2;
        }
    }
    (void)signal(SIGPIPE, SIG_IGN);

    struct bench_plan plan;
    memset(&plan, 0, sizeof(plan));
    if (plan_build(&o, &plan) < 0) {
        (void)fprintf(stderr, "pchat-bench: out of memory\n");
        return 1;
    }
    if (o.rate <= 0 && !o.idle && plan.senders > 0 && o.duration > 0) {
        /* As fast as echoes allow needs echo-message; checked at the end. */
    }

    struct bench_server sv = {.rss_before_kib = -1, .rss_after_kib = -1,
                              .rss_joined_kib = -1};
    if (o.server_pid > 0) {
        sv.rss_before_kib = proc_rss_kib(o.server_pid);
        sv.cpu_start = proc_cpu_secs(o.server_pid);
        if (sv.rss_before_kib < 0) {
            (void)fprintf(stderr, "pchat-bench: cannot read /proc/%d\n",
                          o.server_pid);
            return 2;
        }
    }
    uint64_t t0 = now_ns();
    (void)fflush(stdout);

    pid_t pids[BENCH_MAX_PROCS];
    int up[BENCH_MAX_PROCS], down[BENCH_MAX_PROCS];
    for (int p = 0; p < o.procs; p++) {
        int u[2], d[2];
        if (pipe2(u, O_CLOEXEC) != 0 || pipe2(d, O_CLOEXEC) != 0) {
            perror("pchat-bench: pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("pchat-bench: fork");
            return 1;
        }
        if (pid == 0) {
            (void)close(u[0]);
            (void)close(d[1]);
            for (int q = 0; q < p; q++) {
                (void)close(up[q]);
                (void)close(down[q]);
            }
            int rc = worker_run(&o, &plan, p, u[1], d[0]);
            if (rc < 0) {
                (void)fprintf(stderr, "pchat-bench: worker %d: %s\n", p,
                              strerror(-rc));
            }
            _exit(rc < 0 ? 1 : 0);
        }
        (void)close(u[1]);
        (void)close(d[0]);
        pids[p] = pid;
        up[p] = u[0];
        down[p] = d[1];
    }

    /* Every worker reports "ready" once its clients are joined (or the
     * connect timeout passed); then all start together. */
    struct pc_buf acc[BENCH_MAX_PROCS];
    struct pc_buf line;
    bool alive[BENCH_MAX_PROCS];
    pc_buf_init(&line, BENCH_RESULT_MAX);
    uint64_t deadline = now_ns() + (uint64_t)((o.connect_timeout + 30) * 1e9);
    for (int p = 0; p < o.procs; p++) {
        pc_buf_init(&acc[p], BENCH_RESULT_MAX);
        alive[p] = read_line(up[p], &acc[p], &line, deadline) >= 0
                   && strcmp(line.data, "ready") == 0;
    }
    if (o.server_pid > 0) {
        sv.cpu_joined = proc_cpu_secs(o.server_pid);
        sv.rss_joined_kib = proc_rss_kib(o.server_pid);
    }
    uint64_t go = now_ns() + 20000000u;
    uint64_t t_measure = go + (uint64_t)(o.warmup * 1e9);
    uint64_t t_end = t_measure + (uint64_t)(o.duration * 1e9);
    for (int p = 0; p < o.procs; p++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "go %" PRIu64 "\n", go);
        if (alive[p] && write(down[p], msg, (size_t)n) != n) {
            alive[p] = false;
        }
    }
    if (o.server_pid > 0) {
        sleep_until_ns(t_measure);
        sv.cpu_window_start = proc_cpu_secs(o.server_pid);
        sleep_until_ns(t_end);
        sv.cpu_window_end = proc_cpu_secs(o.server_pid);
        sv.rss_after_kib = proc_rss_kib(o.server_pid);
    }

    struct bench_stats *total = calloc(1, sizeof(*total));
    if (total == NULL) {
        return 1;
    }
    int ok = 0;
    deadline = t_end + 30000000000ull;
    for (int p = 0; p < o.procs; p++) {
        if (alive[p] && read_line(up[p], &acc[p], &line, deadline) >= 0
            && strncmp(line.data, "result ", 7) == 0) {
            stats_merge_json(total, line.data + 7);
            ok++;
        } else {
            (void)fprintf(stderr, "pchat-bench: worker %d sent no result\n",
                          p);
        }
        pc_buf_free(&acc[p]);
    }
    pc_buf_free(&line);
    /* Closing the control pipes ends the workers (and their connections). */
    for (int p = 0; p < o.procs; p++) {
        (void)close(down[p]);
    }
    for (int p = 0; p < o.procs; p++) {
        int status;
        (void)waitpid(pids[p], &status, 0);
        (void)close(up[p]);
    }
    double wall = (double)(now_ns() - t0) / 1e9;
    report(&o, &plan, total, &sv, wall, ok);
    /* Nothing came up (or a worker failed): an error for scripts. */
    uint64_t up_count = o.handshake_only ? total->handshaken : total->registered;
    int rc = up_count == 0 || ok < o.procs ? 1 : 0;
    free(total);
    free(plan.room_of);
    free(plan.room_size);
    return rc;
}
