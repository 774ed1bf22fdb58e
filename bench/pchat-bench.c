/* pchat-bench: an IRC load generator on libuv.
 *
 * It opens N client connections (plain or TLS, from many loopback source
 * addresses, in one or several processes), registers them, joins rooms,
 * then posts at a target rate (or as fast as echoes allow) and measures:
 * connections held, handshake and registration rates, acknowledged posts
 * per second (the echo-message copy), fan-out deliveries per second, and
 * post-to-delivery latency percentiles. With --server-pid it also reads
 * the server's RSS and CPU time. Each process runs one loop; the parent
 * merges the children's results. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

/* Latency histogram: 16 sub-buckets per power of two of microseconds, so
 * every bucket is within 6% of its value; up to 2^31 us. */
#define HIST_SUB 16
#define HIST_BUCKETS (32 * HIST_SUB)

struct stats {
    uint64_t attempted;
    uint64_t connected;
    uint64_t registered;
    uint64_t joined;
    uint64_t held; /* still open at the end */
    uint64_t acks;
    uint64_t deliveries;
    uint64_t posts;
    uint64_t errors_connect;
    uint64_t errors_closed;
    uint64_t errors_fail; /* FAIL replies */
    uint64_t errors_other;
    double connect_secs;  /* from the first attempt to the last registration */
    double measure_secs;
    double cpu_secs;      /* this process */
    double server_cpu_secs; /* the server, during the measurement */
    long server_rss_kib;    /* the server at the end of the measurement */
    uint64_t hist[HIST_BUCKETS];
};

struct opts {
    const char *host;
    int port;
    bool tls;
    int clients;
    int src_addrs;
    int procs;
    int rooms;
    char dist[32];
    int dist_n;
    double rate;
    int senders;
    int window;
    double duration;
    double warmup;
    double connect_rate;
    bool idle;
    bool json;
    int server_pid;
    const char *nick_prefix;
    double connect_timeout;
    int body_len;
};

enum cstate { C_CONNECTING, C_TLS, C_REGISTERING, C_JOINING, C_READY, C_DEAD };

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct bench *b;
    int id;
    enum cstate state;
    SSL *ssl;
    char inbuf[8192];
    size_t inlen;
    char *out;
    size_t outlen, outcap;
    bool writing;
    uv_write_t wreq;
    char *wbuf;
    int room;        /* the room it posts to */
    int pending;     /* posts waiting for their echo */
    uint64_t seq;
    bool sender;
    bool dirty;
    struct client *next_dirty;
};

struct bench {
    uv_loop_t *loop;
    struct opts o;
    struct client *clients;
    int first, count; /* this process's slice of client ids */
    SSL_CTX *tls;
    struct stats st;
    uv_timer_t tick;
    uv_check_t flush;
    uint64_t t_start_ns, t_measure_ns, t_end_ns;
    uint64_t t_registered_ns;
    int next_to_connect;
    bool measuring;
    bool done;
    double send_credit;
    int sender_rr;
    char rbuf[65536];
    struct client *dirty;
    int *room_of; /* room per client id */
};

static long proc_rss_kib(int pid);
static double proc_cpu_secs(int pid);

static uint64_t
now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_self(void)
{
    struct rusage ru;
    (void)getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
hist_add(uint64_t *h, uint64_t us)
{
    if (us < HIST_SUB) {
        h[us]++;
        return;
    }
    int lg = 63 - __builtin_clzll(us);
    int shift = lg - 4;
    uint64_t sub = (us >> shift) & (HIST_SUB - 1);
    size_t idx = (size_t)(lg - 3) * HIST_SUB + sub;
    if (idx >= HIST_BUCKETS) {
        idx = HIST_BUCKETS - 1;
    }
    h[idx]++;
}

static double
hist_value(size_t idx)
{
    if (idx < HIST_SUB) {
        return (double)idx;
    }
    int lg = (int)(idx / HIST_SUB) + 3;
    uint64_t sub = idx % HIST_SUB;
    return (double)(((uint64_t)HIST_SUB + sub) << (lg - 4));
}

static double
hist_pct(const uint64_t *h, double p)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        total += h[i];
    }
    if (total == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)total);
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h[i];
        if (seen >= want) {
            return hist_value(i);
        }
    }
    return hist_value(HIST_BUCKETS - 1);
}

static double
hist_max(const uint64_t *h)
{
    for (size_t i = HIST_BUCKETS; i > 0; i--) {
        if (h[i - 1]) {
            return hist_value(i - 1);
        }
    }
    return 0;
}

/* Output. */

static void client_flush(struct client *c);

static void
mark_dirty(struct client *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = c->b->dirty;
        c->b->dirty = c;
    }
}

static void
queue_raw(struct client *c, const char *data, size_t len)
{
    if (c->outlen + len > c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 1024;
        while (cap < c->outlen + len) {
            cap *= 2;
        }
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            return;
        }
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
    mark_dirty(c);
}

static void
sendf(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sendf(struct client *c, const char *fmt, ...)
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
    queue_raw(c, line, (size_t)n);
}

static void
client_dead(struct client *c, uint64_t *counter)
{
    if (c->state == C_DEAD) {
        return;
    }
    c->state = C_DEAD;
    (*counter)++;
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
    }
}

static void
on_written(uv_write_t *req, int status)
{
    struct client *c = req->data;
    c->writing = false;
    free(c->wbuf);
    c->wbuf = NULL;
    if (status < 0) {
        client_dead(c, &c->b->st.errors_closed);
        return;
    }
    if (c->outlen > 0) {
        mark_dirty(c);
    }
}

static void
client_flush(struct client *c)
{
    if (c->state == C_DEAD || c->writing || c->outlen == 0
        || c->state == C_CONNECTING) {
        return;
    }
    char *data = c->out;
    size_t len = c->outlen;
    if (c->ssl != NULL) {
        if (c->state == C_TLS) {
            return; /* application data waits for the handshake */
        }
        if (SSL_write(c->ssl, c->out, (int)c->outlen) <= 0) {
            client_dead(c, &c->b->st.errors_other);
            return;
        }
        c->outlen = 0;
        BIO *w = SSL_get_wbio(c->ssl);
        len = (size_t)BIO_ctrl_pending(w);
        data = malloc(len ? len : 1);
        if (data == NULL) {
            return;
        }
        (void)BIO_read(w, data, (int)len);
    } else {
        c->out = NULL;
        c->outlen = 0;
        c->outcap = 0;
    }
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    c->wbuf = data;
    c->wreq.data = c;
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        c->writing = false;
        free(data);
        c->wbuf = NULL;
        client_dead(c, &c->b->st.errors_closed);
    }
}

static void
on_check(uv_check_t *h)
{
    struct bench *b = h->data;
    while (b->dirty != NULL) {
        struct client *c = b->dirty;
        b->dirty = c->next_dirty;
        c->dirty = false;
        client_flush(c);
    }
}

/* Posting. */

static void
post(struct client *c)
{
    struct bench *b = c->b;
    char pad[512];
    int padlen = b->o.body_len > 40 ? b->o.body_len - 40 : 0;
    if (padlen > (int)sizeof(pad) - 1) {
        padlen = (int)sizeof(pad) - 1;
    }
    memset(pad, 'x', (size_t)padlen);
    pad[padlen] = '\0';
    sendf(c, "PRIVMSG #bench%d :pb %" PRIu64 " %d %" PRIu64 " %s", c->room,
          now_ns(), c->id, ++c->seq, pad);
    c->pending++;
    if (b->measuring) {
        b->st.posts++;
    }
}

/* Input. */

static void
on_line(struct client *c, char *line, size_t len)
{
    struct bench *b = c->b;
    char *p = line;

    line[len] = '\0';
    if (*p == '@') {
        p = strchr(p, ' ');
        if (p == NULL) {
            return;
        }
        p++;
    }
    char *src = NULL;
    if (*p == ':') {
        src = p + 1;
        p = strchr(p, ' ');
        if (p == NULL) {
            return;
        }
        *p++ = '\0';
    }
    char *cmd = p;
    char *rest = strchr(p, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
    } else {
        rest = p + strlen(p);
    }
    if (strcmp(cmd, "PRIVMSG") == 0) {
        char *body = strstr(rest, " :");
        if (body == NULL || strncmp(body + 2, "pb ", 3) != 0) {
            return;
        }
        uint64_t sent = strtoull(body + 5, &body, 10);
        int from = (int)strtol(body, NULL, 10);
        uint64_t lat_us = (now_ns() - sent) / 1000;
        if (from == c->id) {
            c->pending--;
            if (b->measuring) {
                b->st.acks++;
                hist_add(b->st.hist, lat_us);
            }
            if (b->o.rate == 0 && c->sender && !b->done && b->o.duration > 0) {
                post(c);
            }
        } else if (b->measuring) {
            b->st.deliveries++;
            hist_add(b->st.hist, lat_us);
        }
        (void)src;
        return;
    }
    if (strcmp(cmd, "PING") == 0) {
        sendf(c, "PONG %s", rest);
        return;
    }
    if (strcmp(cmd, "001") == 0) {
        b->st.registered++;
        c->state = C_JOINING;
        sendf(c, "JOIN #bench%d", b->room_of[c->id]);
        return;
    }
    if (strcmp(cmd, "366") == 0 && c->state == C_JOINING) {
        c->state = C_READY;
        b->st.joined++;
        if (b->st.joined == (uint64_t)b->count) {
            b->t_registered_ns = now_ns();
        }
        return;
    }
    if (strcmp(cmd, "433") == 0) {
        sendf(c, "NICK %s%d_%u", b->o.nick_prefix, c->id, (unsigned)rand());
        return;
    }
    if (strcmp(cmd, "FAIL") == 0) {
        b->st.errors_fail++;
        c->pending--;
        return;
    }
    if (strcmp(cmd, "ERROR") == 0) {
        client_dead(c, &b->st.errors_closed);
        return;
    }
    if (cmd[0] == '4' && strlen(cmd) == 3 && strcmp(cmd, "422") != 0) {
        b->st.errors_other++;
    }
}

static void
feed(struct client *c, const char *data, size_t len)
{
    while (len > 0) {
        size_t room = sizeof(c->inbuf) - 1 - c->inlen;
        size_t n = len < room ? len : room;
        memcpy(c->inbuf + c->inlen, data, n);
        c->inlen += n;
        data += n;
        len -= n;
        size_t start = 0;
        for (size_t i = 0; i < c->inlen; i++) {
            if (c->inbuf[i] == '\n') {
                size_t l = i - start;
                if (l > 0 && c->inbuf[start + l - 1] == '\r') {
                    l--;
                }
                on_line(c, c->inbuf + start, l);
                start = i + 1;
                if (c->state == C_DEAD) {
                    return;
                }
            }
        }
        memmove(c->inbuf, c->inbuf + start, c->inlen - start);
        c->inlen -= start;
        if (c->inlen == sizeof(c->inbuf) - 1) {
            c->inlen = 0; /* an absurd line: drop it */
        }
    }
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct client *c = h->data;
    buf->base = c->b->rbuf;
    buf->len = sizeof(c->b->rbuf);
}

static void
start_register(struct client *c)
{
    struct bench *b = c->b;
    c->state = C_REGISTERING;
    sendf(c, "CAP LS 302");
    sendf(c, "CAP REQ :echo-message");
    sendf(c, "NICK %s%d", b->o.nick_prefix, c->id);
    sendf(c, "USER b 0 * :bench");
    sendf(c, "CAP END");
}

static void
tls_pump(struct client *c, const char *data, size_t len)
{
    char plain[16384];
    (void)BIO_write(SSL_get_rbio(c->ssl), data, (int)len);
    if (c->state == C_TLS) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            start_register(c);
        } else {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                client_dead(c, &c->b->st.errors_connect);
                return;
            }
        }
    }
    for (;;) {
        int n = SSL_read(c->ssl, plain, sizeof(plain));
        if (n <= 0) {
            break;
        }
        feed(c, plain, (size_t)n);
    }
    ERR_clear_error();
    /* Handshake output. */
    BIO *w = SSL_get_wbio(c->ssl);
    size_t pend = (size_t)BIO_ctrl_pending(w);
    if (pend > 0 && !c->writing) {
        char *out = malloc(pend);
        if (out != NULL) {
            (void)BIO_read(w, out, (int)pend);
            uv_buf_t buf = uv_buf_init(out, (unsigned)pend);
            c->wbuf = out;
            c->wreq.data = c;
            c->writing = true;
            if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1,
                         on_written) != 0) {
                c->writing = false;
                free(out);
                c->wbuf = NULL;
            }
        }
    }
    if (c->outlen > 0) {
        mark_dirty(c);
    }
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n < 0) {
        client_dead(c, &c->b->st.errors_closed);
        return;
    }
    if (c->ssl != NULL) {
        tls_pump(c, buf->base, (size_t)n);
    } else {
        feed(c, buf->base, (size_t)n);
    }
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    struct bench *b = c->b;
    if (status < 0) {
        client_dead(c, &b->st.errors_connect);
        return;
    }
    b->st.connected++;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    (void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (b->tls != NULL) {
        c->ssl = SSL_new(b->tls);
        SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_connect_state(c->ssl);
        c->state = C_TLS;
        tls_pump(c, "", 0);
    } else {
        start_register(c);
    }
}

static void
start_client(struct bench *b, int id)
{
    struct client *c = &b->clients[id - b->first];
    struct sockaddr_in dst, src;

    c->b = b;
    c->id = id;
    c->state = C_CONNECTING;
    c->room = b->room_of[id];
    (void)uv_tcp_init(b->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    b->st.attempted++;
    (void)uv_ip4_addr(b->o.host, b->o.port, &dst);
    if (b->o.src_addrs > 1) {
        int k = id % b->o.src_addrs;
        char a[32];
        (void)snprintf(a, sizeof(a), "127.%d.%d.%d", 1 + k / 62500,
                       1 + (k / 250) % 250, 1 + k % 250);
        (void)uv_ip4_addr(a, 0, &src);
        (void)uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
    }
    if (uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst,
                       on_connect) != 0) {
        client_dead(c, &b->st.errors_connect);
    }
}

/* Phases, driven by one 1 ms timer. */

static void
on_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = now_ns();
    double since = (double)(now - b->t_start_ns) / 1e9;

    /* Connecting at the configured rate. */
    if (b->next_to_connect < b->first + b->count) {
        int allowed = b->o.connect_rate > 0
                          ? (int)(since * b->o.connect_rate / b->o.procs)
                          : b->count;
        int batch = 0;
        while (b->next_to_connect < b->first + b->count
               && b->next_to_connect - b->first < allowed && batch < 500) {
            start_client(b, b->next_to_connect++);
            batch++;
        }
        return;
    }
    bool all_joined = b->st.joined + b->st.errors_connect + b->st.errors_closed
                      >= (uint64_t)b->count;
    if (b->t_measure_ns == 0) {
        if (!all_joined && since < b->o.connect_timeout) {
            return;
        }
        if (b->t_registered_ns == 0) {
            b->t_registered_ns = now;
        }
        b->st.connect_secs = (double)(b->t_registered_ns - b->t_start_ns) / 1e9;
        b->t_measure_ns = now + (uint64_t)(b->o.warmup * 1e9);
        /* As fast as echoes allow: each sender fills its window. */
        if (b->o.rate == 0 && b->o.duration > 0) {
            for (int i = 0; i < b->count; i++) {
                struct client *c = &b->clients[i];
                if (c->sender && c->state == C_READY) {
                    for (int w = 0; w < b->o.window; w++) {
                        post(c);
                    }
                }
            }
        }
        return;
    }
    if (!b->measuring && now >= b->t_measure_ns && !b->done) {
        b->measuring = true;
        b->st.cpu_secs = -cpu_self();
        if (b->o.server_pid && b->first == 0) {
            b->st.server_cpu_secs = -proc_cpu_secs(b->o.server_pid);
        }
    }
    if (b->measuring
        && now >= b->t_measure_ns + (uint64_t)(b->o.duration * 1e9)) {
        b->measuring = false;
        b->done = true;
        b->t_end_ns = now;
        b->st.measure_secs = (double)(now - b->t_measure_ns) / 1e9;
        b->st.cpu_secs += cpu_self();
        if (b->o.server_pid && b->first == 0) {
            b->st.server_cpu_secs += proc_cpu_secs(b->o.server_pid);
            b->st.server_rss_kib = proc_rss_kib(b->o.server_pid);
        }
        for (int i = 0; i < b->count; i++) {
            if (b->clients[i].state == C_READY) {
                b->st.held++;
            }
        }
        uv_stop(b->loop);
        return;
    }
    /* Paced posting. */
    if (b->o.rate > 0 && !b->done) {
        static uint64_t last;
        if (last == 0) {
            last = now;
        }
        b->send_credit += (double)(now - last) / 1e9 * b->o.rate / b->o.procs;
        last = now;
        int guard = 0;
        while (b->send_credit >= 1.0 && guard++ < 100000) {
            struct client *c = NULL;
            for (int tries = 0; tries < b->count; tries++) {
                struct client *x = &b->clients[b->sender_rr++ % b->count];
                if (x->sender && x->state == C_READY) {
                    c = x;
                    break;
                }
            }
            if (c == NULL) {
                break;
            }
            post(c);
            b->send_credit -= 1.0;
        }
    }
}

static int
run_worker(const struct opts *o, int first, int count, int *room_of,
           struct stats *out)
{
    struct bench b;
    memset(&b, 0, sizeof(b));
    b.loop = uv_default_loop();
    b.o = *o;
    b.first = first;
    b.count = count;
    b.room_of = room_of;
    b.clients = calloc((size_t)count, sizeof(struct client));
    if (b.clients == NULL) {
        return -1;
    }
    /* Senders: the first --senders client ids overall, spread over rooms. */
    for (int i = 0; i < count; i++) {
        b.clients[i].sender = first + i < o->senders && !o->idle;
    }
    if (o->tls) {
        b.tls = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(b.tls, SSL_VERIFY_NONE, NULL);
    }
    b.next_to_connect = first;
    b.t_start_ns = now_ns();
    (void)uv_timer_init(b.loop, &b.tick);
    b.tick.data = &b;
    (void)uv_timer_start(&b.tick, on_tick, 1, 1);
    (void)uv_check_init(b.loop, &b.flush);
    b.flush.data = &b;
    (void)uv_check_start(&b.flush, on_check);
    (void)uv_run(b.loop, UV_RUN_DEFAULT);
    *out = b.st;
    return 0; /* the process exits right after: no teardown needed */
}

static void
merge(struct stats *a, const struct stats *b)
{
    a->attempted += b->attempted;
    a->connected += b->connected;
    a->registered += b->registered;
    a->joined += b->joined;
    a->held += b->held;
    a->acks += b->acks;
    a->deliveries += b->deliveries;
    a->posts += b->posts;
    a->errors_connect += b->errors_connect;
    a->errors_closed += b->errors_closed;
    a->errors_fail += b->errors_fail;
    a->errors_other += b->errors_other;
    a->cpu_secs += b->cpu_secs;
    a->server_cpu_secs += b->server_cpu_secs;
    if (b->server_rss_kib > 0) {
        a->server_rss_kib = b->server_rss_kib;
    }
    if (b->connect_secs > a->connect_secs) {
        a->connect_secs = b->connect_secs;
    }
    if (b->measure_secs > a->measure_secs) {
        a->measure_secs = b->measure_secs;
    }
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        a->hist[i] += b->hist[i];
    }
}

/* Server figures from /proc. */
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

static double
proc_cpu_secs(int pid)
{
    char path[64], buf[1024];
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
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
    /* Fields after the command: state(3) ... utime(14) stime(15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void
usage(void)
{
    (void)fprintf(stderr,
        "usage: pchat-bench [options]\n"
        "  --host H --port P [--tls]      server (default 127.0.0.1:6667)\n"
        "  --clients N                     connections (default 100)\n"
        "  --procs P                       worker processes (default 1)\n"
        "  --src-addrs K                   bind to K loopback source addresses\n"
        "  --rooms R                       rooms (default N/10)\n"
        "  --senders S                     posting clients (default = rooms)\n"
        "  --rate M                        posts per second in total (0 = as fast\n"
        "                                  as echoes allow, --window W each)\n"
        "  --duration D --warmup W         seconds (default 10 and 2)\n"
        "  --connect-rate C                connections per second (0 = all at once)\n"
        "  --idle                          connect, register, join, hold, report\n"
        "  --body-len B                    message body length (default 60)\n"
        "  --server-pid PID                report the server's RSS and CPU\n"
        "  --json                          machine-readable output\n");
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, NULL, 'H'},      {"port", 1, NULL, 'p'},
        {"tls", 0, NULL, 'T'},       {"clients", 1, NULL, 'n'},
        {"procs", 1, NULL, 'P'},     {"src-addrs", 1, NULL, 'S'},
        {"rooms", 1, NULL, 'r'},     {"senders", 1, NULL, 's'},
        {"rate", 1, NULL, 'R'},      {"window", 1, NULL, 'w'},
        {"duration", 1, NULL, 'd'},  {"warmup", 1, NULL, 'W'},
        {"connect-rate", 1, NULL, 'c'}, {"idle", 0, NULL, 'I'},
        {"json", 0, NULL, 'j'},      {"server-pid", 1, NULL, 'x'},
        {"nick-prefix", 1, NULL, 'N'}, {"connect-timeout", 1, NULL, 't'},
        {"body-len", 1, NULL, 'b'},  {"room-size", 1, NULL, 'z'},
        {"help", 0, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    struct opts o = {
        .host = "127.0.0.1", .port = 6667, .clients = 100, .procs = 1,
        .src_addrs = 1, .rooms = 0, .rate = 0, .senders = -1, .window = 1,
        .duration = 10, .warmup = 2, .nick_prefix = "b", .connect_timeout = 120,
        .body_len = 60,
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'T': o.tls = true; break;
        case 'n': o.clients = atoi(optarg); break;
        case 'P': o.procs = atoi(optarg); break;
        case 'S': o.src_addrs = atoi(optarg); break;
        case 'r': o.rooms = atoi(optarg); break;
        case 's': o.senders = atoi(optarg); break;
        case 'R': o.rate = atof(optarg); break;
        case 'w': o.window = atoi(optarg); break;
        case 'd': o.duration = atof(optarg); break;
        case 'W': o.warmup = atof(optarg); break;
        case 'c': o.connect_rate = atof(optarg); break;
        case 'I': o.idle = true; break;
        case 'j': o.json = true; break;
        case 'x': o.server_pid = atoi(optarg); break;
        case 'N': o.nick_prefix = optarg; break;
        case 't': o.connect_timeout = atof(optarg); break;
        case 'b': o.body_len = atoi(optarg); break;
        case 'z': (void)snprintf(o.dist, sizeof(o.dist), "%s", optarg); break;
        default: usage(); return 2;
        }
    }
    if (o.clients < 1 || o.procs < 1 || o.procs > o.clients) {
        usage();
        return 2;
    }
    if (o.rooms <= 0) {
        o.rooms = o.clients / 10 > 0 ? o.clients / 10 : 1;
    }
    if (o.senders < 0) {
        o.senders = o.rooms;
    }
    if (o.idle) {
        o.senders = 0;
    }
    /* Room of each client: round robin, so sender i posts to room i. With
     * --room-size one: every client in room 0. */
    int *room_of = calloc((size_t)o.clients, sizeof(int));
    if (room_of == NULL) {
        return 1;
    }
    for (int i = 0; i < o.clients; i++) {
        room_of[i] = strcmp(o.dist, "one") == 0 ? 0 : i % o.rooms;
    }
    signal(SIGPIPE, SIG_IGN);

    long rss0 = o.server_pid ? proc_rss_kib(o.server_pid) : -1;
    uint64_t t0 = now_ns();

    struct stats total;
    memset(&total, 0, sizeof(total));
    int per = o.clients / o.procs;
    pid_t pids[256];
    int fds[256];
    if (o.procs > 256) {
        return 2;
    }
    for (int p = 0; p < o.procs; p++) {
        int first = p * per;
        int count = p == o.procs - 1 ? o.clients - first : per;
        int pipefd[2];
        if (pipe(pipefd) != 0) {
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            struct stats st;
            (void)close(pipefd[0]);
            memset(&st, 0, sizeof(st));
            (void)run_worker(&o, first, count, room_of, &st);
            ssize_t w = write(pipefd[1], &st, sizeof(st));
            _exit(w == (ssize_t)sizeof(st) ? 0 : 1);
        }
        (void)close(pipefd[1]);
        pids[p] = pid;
        fds[p] = pipefd[0];
    }
    for (int p = 0; p < o.procs; p++) {
        struct stats st;
        size_t got = 0;
        while (got < sizeof(st)) {
            ssize_t n = read(fds[p], (char *)&st + got, sizeof(st) - got);
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        if (got == sizeof(st)) {
            merge(&total, &st);
        } else {
            total.errors_other++;
        }
        (void)close(fds[p]);
    }
    for (int p = 0; p < o.procs; p++) {
        (void)waitpid(pids[p], NULL, 0);
    }
    double wall = (double)(now_ns() - t0) / 1e9;
    double secs = total.measure_secs > 0 ? total.measure_secs : 1;
    long rss1 = o.server_pid ? total.server_rss_kib : -1;
    double server_cpu = o.server_pid ? total.server_cpu_secs : -1;
    double per_conn = (rss0 >= 0 && rss1 >= 0 && total.held > 0)
                          ? (double)(rss1 - rss0) * 1024.0 / (double)total.held
                          : -1;
    double conn_rate = total.connect_secs > 0
                           ? (double)total.registered / total.connect_secs
                           : 0;

    if (o.json) {
        printf("{\"clients\": %d, \"procs\": %d, \"tls\": %s, \"rooms\": %d, "
               "\"senders\": %d, \"rate_target\": %.0f, "
               "\"connected\": %" PRIu64 ", \"registered\": %" PRIu64
               ", \"held\": %" PRIu64 ", \"connect_secs\": %.3f, "
               "\"registrations_per_sec\": %.1f, \"measure_secs\": %.3f, "
               "\"posts\": %" PRIu64 ", \"acks_per_sec\": %.1f, "
               "\"deliveries_per_sec\": %.1f, \"latency_us\": {\"p50\": %.0f, "
               "\"p99\": %.0f, \"p999\": %.0f, \"max\": %.0f}, "
               "\"errors\": {\"connect\": %" PRIu64 ", \"closed\": %" PRIu64
               ", \"fail\": %" PRIu64 ", \"other\": %" PRIu64 "}, "
               "\"bench_cpu_secs\": %.2f, \"server_cpu_secs\": %.2f, "
               "\"server_rss_kib_before\": %ld, \"server_rss_kib_after\": %ld, "
               "\"server_bytes_per_conn\": %.0f, \"wall_secs\": %.2f}\n",
               o.clients, o.procs, o.tls ? "true" : "false", o.rooms,
               o.senders, o.rate, total.connected, total.registered,
               total.held, total.connect_secs, conn_rate, secs, total.posts,
               (double)total.acks / secs, (double)total.deliveries / secs,
               hist_pct(total.hist, 50), hist_pct(total.hist, 99),
               hist_pct(total.hist, 99.9), hist_max(total.hist),
               total.errors_connect, total.errors_closed, total.errors_fail,
               total.errors_other, total.cpu_secs, server_cpu, rss0, rss1,
               per_conn, wall);
    } else {
        printf("clients %d (%s) in %d process(es), %d rooms, %d senders\n",
               o.clients, o.tls ? "TLS" : "plain", o.procs, o.rooms, o.senders);
        printf("  connected %" PRIu64 ", registered %" PRIu64 ", held %" PRIu64
               " ; %.0f registrations/s over %.2f s\n",
               total.connected, total.registered, total.held, conn_rate,
               total.connect_secs);
        printf("  measured %.2f s: posts %" PRIu64 ", acks %.0f/s, "
               "deliveries %.0f/s\n", secs, total.posts,
               (double)total.acks / secs, (double)total.deliveries / secs);
        printf("  latency us: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
               hist_pct(total.hist, 50), hist_pct(total.hist, 99),
               hist_pct(total.hist, 99.9), hist_max(total.hist));
        printf("  errors: connect %" PRIu64 ", closed %" PRIu64 ", FAIL %"
               PRIu64 ", other %" PRIu64 "\n", total.errors_connect,
               total.errors_closed, total.errors_fail, total.errors_other);
        printf("  cpu: bench %.2f s, server %.2f s during measurement\n",
               total.cpu_secs, server_cpu);
        if (per_conn >= 0) {
            printf("  server RSS %ld -> %ld KiB: %.0f bytes per connection\n",
                   rss0, rss1, per_conn);
        }
    }
    free(room_of);
    return total.registered == 0 ? 1 : 0;
}
