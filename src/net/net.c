#include "config.h"

#include "net/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* Listeners and client connections.
 *
 * Memory per idle connection drives several choices here:
 * - one 64 KiB read buffer (and a 16 KiB one for a TLS record's plaintext)
 *   per pc_net, shared by every connection: data is handed to on_read
 *   synchronously;
 * - no input buffer in net at all, and an output buffer only while there is
 *   output (freed when drained);
 * - the write request and the bytes it carries are one allocation that
 *   exists only while a write is in flight;
 * - TLS goes through one small BIO of our own per connection instead of
 *   two BIO_s_mem: it reads ciphertext straight from the read buffer and
 *   writes it into the connection's `wire` buffer, which is handed to the
 *   write request without a copy. Two memory BIOs cost about 1.9 KB per idle
 *   connection (structures, locks, and buffers that keep their high-water
 *   size); this one costs a BIO structure. SSL_MODE_RELEASE_BUFFERS frees
 *   the record buffers of idle connections.
 *
 * Output is only queued by pc_conn_write(); pc_net_flush(), once per loop
 * pass, turns what a connection got in that pass into uv_try_write calls
 * (and for TLS into 16 KiB records, not one record per line), and queues a
 * single uv_write for what the socket did not take.
 *
 * The listener owns its socket and watches it with a uv_poll_t instead of
 * uv_listen(), because libuv has no way to stop accepting on a listening
 * stream: on EMFILE its accept loop would call us back with the same error
 * until the descriptor limit eases. Here an accept error stops the poll
 * handle for NET_ACCEPT_PAUSE_MS and leaves the clients in the backlog, as
 * nginx does. */

#define NET_READ_BUF         (64 * 1024)
#define NET_TLS_CHUNK        (16 * 1024) /* plaintext per SSL_write, a record */
#define NET_TLS_BATCH        (64 * 1024) /* ciphertext per socket write */
#define NET_SENDQ_DEFAULT    (1024 * 1024)
#define NET_BACKLOG          4096
#define NET_ACCEPT_BATCH     128 /* accepts per wake-up, for fairness */
#define NET_ACCEPT_PAUSE_MS  500
#define NET_ACCEPT_LOG_MS    10000 /* at most one accept warning per 10 s */
#define NET_KEEPALIVE_S      60
#define NET_CLOSE_TIMEOUT_MS 10000 /* a closing peer that reads nothing */
/* The first reads of a connection are ACKed at once (TCP_QUICKACK). A
 * client that writes its TLS Finished and then CAP, NICK and USER in
 * separate small writes, with Nagle on (most do), sends each only when
 * the one before is ACKed, and until pchatd has something to answer the
 * kernel delays that ACK by 40 ms: registering took 44 ms on loopback
 * instead of 2 ms. Later reads keep the kernel's own ACK policy. */
#define NET_QUICKACK_READS   8
/* TLS handshakes in progress at once. In a reconnect storm of thousands of
 * clients, handshakes all run at once let their transient allocations
 * (record buffers, key shares, transcripts) interleave with the state of
 * the connections that stay, and the heap keeps the holes: 29-43 KB per
 * idle TLS connection after 8,000 at once instead of 17-19 KB. So every TLS
 * connection is accepted at once (the kernel's queues stay short), but
 * beyond the limit its socket is not read, and its ClientHello waits in the
 * kernel, until a handshake ends. Pacing the handshakes also paces the
 * registrations and joins behind them (19,000 at once: every JOIN served,
 * where 4,000-9,000 timed out waiting for their room without the limit).
 * A handshake stops counting after NET_HANDSHAKE_SLOT_MS (checked at each
 * loop pass), done or not, so that clients which never finish one slow a
 * storm down (to NET_MAX_HANDSHAKES per slot time) but cannot stop it; on
 * a starved CPU a shorter slot let the limit lapse (250 ms: 44 KB per
 * connection after 3,000 at once). */
#define NET_MAX_HANDSHAKES    256
#define NET_HANDSHAKE_SLOT_MS 1000

struct pc_net {
    uv_loop_t *loop;
    unsigned int close_timeout_ms;
    struct pc_conn *dirty; /* connections with output or a close to do */
    uint64_t next_id;
    uint64_t accept_log_ms; /* next time an accept error may be logged */
    /* TLS handshakes that count against NET_MAX_HANDSHAKES, oldest first,
     * and the connections waiting for one to end. */
    struct hs_list {
        struct pc_conn *head, *tail;
    } hs_run, hs_wait;
    unsigned handshaking; /* in hs_run */
    unsigned waiting;     /* in hs_wait */
    unsigned accept_errors; /* accept errors not logged since then */
    BIO_METHOD *bio_method; /* the connections' TLS transport */
    /* Ciphertext the TLS BIO of `tls_in_conn` may read, during tls_read. */
    const struct pc_conn *tls_in_conn;
    const char *tls_in;
    size_t tls_in_len;
    char rbuf[NET_READ_BUF];
    char plain[NET_TLS_CHUNK]; /* one record's plaintext */
};

struct pc_listener {
    uv_poll_t poll;
    uv_timer_t pause; /* resumes accepting after an error */
    struct pc_net *net;
    SSL_CTX *tls;
    pc_accept_cb cb;
    void *arg;
    int fd;
    int port;
    int handles; /* handles not yet closed, once stopping */
    bool stopping;
};

enum conn_hs {
    HS_NONE,    /* plain, handshake done, or no longer counted */
    HS_WAITING, /* in net->hs_wait: not read yet */
    HS_RUNNING  /* in net->hs_run */
};

enum conn_state {
    CONN_OPEN,
    CONN_CLOSING, /* flush what is queued, then close */
    CONN_ABORT,   /* close at the next flush, drop output */
    CONN_CLOSED   /* uv_close called */
};

/* One write in flight: the request and the bytes it points at. */
struct net_wreq {
    uv_write_t req;
    struct pc_conn *conn;
    char *mem; /* owned: freed with the request */
    size_t len;
};

struct pc_conn {
    uv_tcp_t tcp;
    struct pc_net *net;
    const struct pc_conn_cbs *cbs;
    void *data;
    SSL *ssl;
    char *cert_fp;
    struct net_wreq *wreq; /* the write in flight, or NULL */
    uv_timer_t *linger;    /* bounds a close that waits for a write */
    struct pc_conn *next_dirty;
    struct pc_conn *hs_prev, *hs_next; /* in net->hs_run or hs_wait */
    uint64_t hs_start_ms;
    struct pc_buf out;  /* queued output (TLS: plaintext) */
    struct pc_buf wire; /* TLS: ciphertext not yet written */
    uint64_t id;
    size_t sendq_max;
    int err;
    unsigned char state;   /* enum conn_state */
    unsigned char why;     /* enum pc_conn_reason */
    unsigned char handles; /* handles not yet closed, once CLOSED */
    bool is_dirty;
    bool paused;
    bool handshaken;
    unsigned char hs; /* enum conn_hs */
    unsigned char quick_reads; /* reads still ACKed at once */
    char peer[46];     /* INET6_ADDRSTRLEN */
};

static BIO_METHOD *tls_bio_method(void);
static void handshake_over(struct pc_conn *c);

int
pc_net_new(struct pc_net **out, uv_loop_t *loop)
{
    struct pc_net *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return -ENOMEM;
    }
    n->loop = loop;
    n->close_timeout_ms = NET_CLOSE_TIMEOUT_MS;
    n->bio_method = tls_bio_method();
    if (n->bio_method == NULL) {
        ERR_clear_error();
        free(n);
        return -ENOMEM;
    }
    *out = n;
    return 0;
}

void
pc_net_set_close_timeout(struct pc_net *n, unsigned int timeout_ms)
{
    n->close_timeout_ms = timeout_ms;
}

void
pc_net_free(struct pc_net *n)
{
    if (n == NULL) {
        return;
    }
    BIO_meth_free(n->bio_method);
    free(n);
}

static void
mark_dirty(struct pc_conn *c)
{
    if (!c->is_dirty) {
        c->is_dirty = true;
        c->next_dirty = c->net->dirty;
        c->net->dirty = c;
    }
}

/* TLS context. */

static int
accept_any_cert(int ok, X509_STORE_CTX *ctx)
{
    /* A client certificate is optional and never checked against a CA
     * here: its fingerprint is what binds it to an account (SASL EXTERNAL). */
    return 1;
}

static void
tls_error(char *err, size_t errlen, const char *what, const char *file)
{
    char ossl[256] = "";
    unsigned long e = ERR_peek_last_error();

    if (e != 0) {
        ERR_error_string_n(e, ossl, sizeof(ossl));
    }
    ERR_clear_error();
    if (err != NULL && errlen > 0) {
        (void)snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "",
                       file ? file : "", ossl[0] ? ": " : "", ossl);
    }
}

void
pc_tls_set_tickets(SSL_CTX *ctx, bool on)
{
    (void)SSL_CTX_set_num_tickets(ctx, on ? 1 : 0);
}

SSL_CTX *
pc_tls_server_ctx(const char *cert_file, const char *key_file, char *err,
                  size_t errlen)
{
    static const unsigned char sid_ctx[] = "pchatd";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_error(err, errlen, "cannot create a TLS context", NULL);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tls_error(err, errlen, "cannot set the minimum TLS version", NULL);
        goto fail;
    }
    /* SSL_MODE_RELEASE_BUFFERS is set per connection once its handshake
     * is done: during the handshake it would free and allocate the 16 KiB
     * record buffers again for every flight. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_ENABLE_PARTIAL_WRITE);
    /* TLS 1.3: AES-128-GCM with SHA-256 first. Its key schedule and
     * transcript hash use SHA-256, which the CPU accelerates (SHA-NI) where
     * SHA-384 is plain code: a cheaper handshake for the same security
     * margin the TLS 1.3 mandatory suite gives. */
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
                                      "TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") != 1) {
        tls_error(err, errlen, "cannot set the TLS 1.3 cipher suites", NULL);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE
                                 | SSL_OP_NO_COMPRESSION);
    /* Ask for a client certificate, accept any or none. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
    (void)SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    /* No server-side cache, and no session ticket unless the caller asks
     * for one (pc_tls_set_tickets): issuing it is 14% of a handshake's
     * server CPU (bench/tls-cost), for clients that rarely resume. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    (void)SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error(err, errlen, "cannot load certificate", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        tls_error(err, errlen,
                  ERR_GET_LIB(e) == ERR_LIB_X509
                          && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH
                      ? "private key does not match certificate"
                      : "cannot load private key",
                  key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errlen, "private key does not match certificate",
                  key_file);
        goto fail;
    }
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The TLS transport: a BIO whose data is its connection. Reads take the
 * ciphertext tls_read() is working on, writes append to the wire buffer. */

static int
tls_bio_write(BIO *b, const char *data, int len)
{
    struct pc_conn *c = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (c == NULL || len < 0
        || pc_buf_append(&c->wire, data, (size_t)len) < 0) {
        return -1;
    }
    return len;
}

static int
tls_bio_read(BIO *b, char *out, int len)
{
    struct pc_conn *c = BIO_get_data(b);
    struct pc_net *n;
    size_t k;

    BIO_clear_retry_flags(b);
    if (c == NULL || len <= 0) {
        return 0;
    }
    n = c->net;
    if (n->tls_in_conn != c || n->tls_in_len == 0) {
        BIO_set_retry_read(b); /* want more: the next socket read */
        return -1;
    }
    k = n->tls_in_len < (size_t)len ? n->tls_in_len : (size_t)len;
    memcpy(out, n->tls_in, k);
    n->tls_in += k;
    n->tls_in_len -= k;
    return (int)k;
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    /* OpenSSL flushes after each handshake flight; the flush that counts is
     * pc_net_flush. Everything else (kTLS, pending counts) is "no". */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *
tls_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(),
                                 "pchat connection");
    if (m == NULL) {
        return NULL;
    }
    if (BIO_meth_set_write(m, tls_bio_write) != 1
        || BIO_meth_set_read(m, tls_bio_read) != 1
        || BIO_meth_set_ctrl(m, tls_bio_ctrl) != 1
        || BIO_meth_set_create(m, tls_bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* Closing. */

/* Stops reading and marks the connection for the flush that closes it.
 * The first reason given is the one reported. */
static void
conn_end(struct pc_conn *c, enum conn_state to, enum pc_conn_reason why,
         int err)
{
    if (c->state >= to || c->state == CONN_CLOSED) {
        return;
    }
    if (c->state == CONN_OPEN) {
        c->why = (unsigned char)why;
        c->err = err;
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        handshake_over(c);
    }
    c->state = (unsigned char)to;
    mark_dirty(c);
}

static void
conn_abort(struct pc_conn *c, enum pc_conn_reason why, int err)
{
    conn_end(c, CONN_ABORT, why, err);
}

void
pc_conn_close(struct pc_conn *c)
{
    conn_end(c, CONN_CLOSING, PC_CONN_LOCAL, 0);
}

static void
conn_handle_closed(uv_handle_t *h)
{
    struct pc_conn *c = h->data;

    if (--c->handles > 0) {
        return;
    }
    if (c->cbs != NULL && c->cbs->on_close != NULL) {
        c->cbs->on_close(c, (enum pc_conn_reason)c->why, c->err);
    }
    handshake_over(c); /* normally done when the connection ended */
    SSL_free(c->ssl);  /* and its BIO */
    pc_buf_free(&c->out);
    pc_buf_free(&c->wire);
    free(c->cert_fp);
    free(c->linger);
    free(c);
}

static void
conn_do_close(struct pc_conn *c)
{
    c->state = CONN_CLOSED;
    c->handles = 1;
    if (c->linger != NULL) {
        c->handles++;
        uv_close((uv_handle_t *)c->linger, conn_handle_closed);
    }
    /* A write in flight gets its callback (UV_ECANCELED) before ours. */
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void
linger_expired(uv_timer_t *t)
{
    struct pc_conn *c = t->data;

    /* The reason stays (the close was asked for); the error tells why the
     * output was dropped. */
    if (c->err == 0) {
        c->err = PC_ETIMEDOUT;
    }
    conn_abort(c, PC_CONN_ERROR, PC_ETIMEDOUT);
}

/* Waits a while for the peer to take the last output, not forever. */
static void
conn_start_linger(struct pc_conn *c)
{
    if (c->linger != NULL) {
        return;
    }
    c->linger = malloc(sizeof(*c->linger));
    if (c->linger == NULL) {
        conn_abort(c, PC_CONN_ERROR, -ENOMEM);
        return;
    }
    (void)uv_timer_init(c->net->loop, c->linger);
    c->linger->data = c;
    (void)uv_timer_start(c->linger, linger_expired, c->net->close_timeout_ms,
                         0);
}

/* Reading. */

static void
conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct pc_conn *c = h->data;

    buf->base = c->net->rbuf;
    buf->len = sizeof(c->net->rbuf);
}

static void
compute_fingerprint(struct pc_conn *c)
{
    static const char hex[] = "0123456789abcdef";
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1) {
        ERR_clear_error();
        return;
    }
    c->cert_fp = malloc((size_t)len * 2 + 1);
    if (c->cert_fp == NULL) {
        return;
    }
    for (unsigned int i = 0; i < len; i++) {
        c->cert_fp[2 * i] = hex[md[i] >> 4];
        c->cert_fp[2 * i + 1] = hex[md[i] & 0xf];
    }
    c->cert_fp[2 * len] = '\0';
}

static void
tls_process(struct pc_conn *c)
{
    struct pc_net *n = c->net;
    bool handshake_done = false;

    if (!c->handshaken) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                /* The alert OpenSSL wrote still goes out (a client offering
                 * only TLS 1.1 learns why); queued output does not. */
                conn_end(c, CONN_CLOSING, PC_CONN_TLS, PC_EPROTO);
            }
            return;
        }
        c->handshaken = true;
        handshake_done = true;
        handshake_over(c);
        (void)SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
        compute_fingerprint(c);
    }
    /* Everything read is delivered, even if on_read pauses. Not into the
     * read buffer: a record begun in an earlier read decrypts to more bytes
     * than it took from this one, over ciphertext still to be read. */
    while (c->state == CONN_OPEN) {
        int k = SSL_read(c->ssl, n->plain, (int)sizeof(n->plain));
        if (k > 0) {
            c->cbs->on_read(c, n->plain, (size_t)k);
            continue;
        }
        int e = SSL_get_error(c->ssl, k);
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_end(c, CONN_CLOSING, PC_CONN_EOF, 0); /* close_notify */
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            conn_abort(c, PC_CONN_TLS, PC_EPROTO);
        }
        break;
    }
    /* The record buffers of the handshake go now that nothing is pending
     * (the mode frees them only after the next record in each direction,
     * and an idle client may send or get nothing more for hours). */
    if (handshake_done && c->state == CONN_OPEN) {
        (void)SSL_free_buffers(c->ssl);
    }
}

static void
tls_read(struct pc_conn *c, const char *data, size_t len)
{
    struct pc_net *n = c->net;

    n->tls_in_conn = c;
    n->tls_in = data;
    n->tls_in_len = len;
    tls_process(c);
    /* What is left after a close or an error is dropped. */
    n->tls_in_conn = NULL;
    n->tls_in = NULL;
    n->tls_in_len = 0;
    /* Handshake flights, tickets, alerts: out at the next flush, as is
     * output queued before the handshake finished. */
    if (c->wire.len > 0 || (c->handshaken && c->out.len > 0)) {
        mark_dirty(c);
    }
}

static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pc_conn *c = s->data;

    if (nread == 0 || c->state != CONN_OPEN) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF) {
            conn_end(c, CONN_CLOSING, PC_CONN_EOF, 0);
        } else {
            conn_abort(c, PC_CONN_ERROR, (int)nread);
        }
        return;
    }
    if (c->quick_reads > 0) {
        /* Linux clears the flag as it sees fit: set it after each read. */
        static const int one = 1;
        uv_os_fd_t fd;
        c->quick_reads--;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        }
    }
    if (c->ssl != NULL) {
        tls_read(c, buf->base, (size_t)nread);
    } else {
        c->cbs->on_read(c, buf->base, (size_t)nread);
    }
}

/* Writing. */

static size_t
conn_queued(const struct pc_conn *c)
{
    return c->out.len + c->wire.len + (c->wreq != NULL ? c->wreq->len : 0);
}

int
pc_conn_write(struct pc_conn *c, const char *data, size_t len)
{
    int rc;

    if (c->state != CONN_OPEN) {
        return PC_ECANCELED;
    }
    if (len > c->sendq_max || conn_queued(c) > c->sendq_max - len) {
        conn_abort(c, PC_CONN_SENDQ, PC_E2BIG);
        return PC_E2BIG;
    }
    rc = pc_buf_append(&c->out, data, len);
    if (rc < 0) {
        conn_abort(c, PC_CONN_SENDQ, rc);
        return rc;
    }
    mark_dirty(c);
    return 0;
}

static void
conn_written(uv_write_t *req, int status)
{
    struct net_wreq *w = req->data;
    struct pc_conn *c = w->conn;

    c->wreq = NULL;
    free(w->mem);
    free(w);
    if (c->state == CONN_CLOSED) {
        return;
    }
    if (status < 0) {
        conn_abort(c, PC_CONN_ERROR, status);
        return;
    }
    mark_dirty(c); /* the rest, or the close that waited */
}

/* Writes the len bytes at mem now if the socket takes them, and gives the
 * rest, with mem itself (no copy), to the connection's one write request.
 * mem is freed either way. */
static int
conn_send(struct pc_conn *c, char *mem, size_t len)
{
    uv_buf_t b = uv_buf_init(mem, (unsigned int)len);
    struct net_wreq *w;
    int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

    if (rc == UV_EAGAIN) {
        rc = 0;
    }
    if (rc < 0 || (size_t)rc == len) {
        free(mem);
        return rc < 0 ? rc : 0;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        free(mem);
        return -ENOMEM;
    }
    w->conn = c;
    w->mem = mem;
    w->len = len - (size_t)rc;
    b = uv_buf_init(mem + rc, (unsigned int)w->len);
    w->req.data = w;
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_written);
    if (rc < 0) {
        free(w->mem);
        free(w);
        return rc;
    }
    c->wreq = w;
    return 0;
}

static int
flush_plain(struct pc_conn *c)
{
    char *mem = c->out.data;
    size_t len = c->out.len;

    if (len == 0) {
        pc_buf_free(&c->out);
        return 0;
    }
    pc_buf_init(&c->out, c->out.max); /* mem now belongs to conn_send */
    return conn_send(c, mem, len);
}

/* Encrypts queued plaintext a record at a time into the wire buffer, after
 * whatever the handshake left there, and writes it out in batches until the
 * socket is full. Plaintext not yet encrypted stays queued. */
static int
flush_tls(struct pc_conn *c)
{
    size_t off = 0;
    bool shut = false;
    int rc = 0;

    if (!c->handshaken && c->state == CONN_CLOSING) {
        pc_buf_free(&c->out); /* nothing can carry it */
    }
    while (rc == 0 && c->wreq == NULL) {
        while (c->wire.len < NET_TLS_BATCH) {
            if (c->handshaken && off < c->out.len) {
                size_t chunk = c->out.len - off;
                if (chunk > NET_TLS_CHUNK) {
                    chunk = NET_TLS_CHUNK;
                }
                int k = SSL_write(c->ssl, c->out.data + off, (int)chunk);
                if (k <= 0) {
                    ERR_clear_error();
                    rc = PC_EPROTO;
                    break;
                }
                off += (size_t)k;
                continue;
            }
            if (c->state == CONN_CLOSING && c->handshaken && !shut
                && off == c->out.len
                && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
                shut = true;
                (void)SSL_shutdown(c->ssl); /* close_notify */
                ERR_clear_error();
                continue;
            }
            break;
        }
        if (rc < 0 || c->wire.len == 0) {
            break;
        }
        char *mem = c->wire.data; /* now belongs to conn_send */
        size_t len = c->wire.len;
        pc_buf_init(&c->wire, c->wire.max);
        rc = conn_send(c, mem, len);
    }
    pc_buf_consume(&c->out, off);
    if (c->out.len == 0) {
        pc_buf_free(&c->out);
    }
    return rc;
}

static bool
conn_drained(const struct pc_conn *c)
{
    return c->wreq == NULL && c->out.len == 0 && c->wire.len == 0;
}

static void
conn_flush(struct pc_conn *c)
{
    int rc;

    if (c->state == CONN_CLOSED) {
        return;
    }
    if (c->state == CONN_ABORT) {
        conn_do_close(c);
        return;
    }
    /* With a write in flight, its callback marks the connection again. */
    rc = c->wreq != NULL ? 0 : c->ssl != NULL ? flush_tls(c) : flush_plain(c);
    if (rc < 0) {
        conn_end(c, CONN_ABORT, rc == PC_EPROTO ? PC_CONN_TLS : PC_CONN_ERROR,
                 rc);
        conn_do_close(c);
        return;
    }
    if (c->state == CONN_CLOSING) {
        if (conn_drained(c)) {
            conn_do_close(c);
        } else {
            conn_start_linger(c);
        }
    }
}

/* TLS handshake slots (NET_MAX_HANDSHAKES). */

static void
hs_append(struct hs_list *q, struct pc_conn *c)
{
    c->hs_next = NULL;
    c->hs_prev = q->tail;
    *(q->tail != NULL ? &q->tail->hs_next : &q->head) = c;
    q->tail = c;
}

static void
hs_remove(struct hs_list *q, struct pc_conn *c)
{
    *(c->hs_prev != NULL ? &c->hs_prev->hs_next : &q->head) = c->hs_next;
    *(c->hs_next != NULL ? &c->hs_next->hs_prev : &q->tail) = c->hs_prev;
    c->hs_prev = c->hs_next = NULL;
}

/* A connection's handshake is done, or it ended, or it stops counting:
 * its slot (or its place in the queue) is free. */
static void
handshake_over(struct pc_conn *c)
{
    struct pc_net *n = c->net;

    if (c->hs == HS_RUNNING) {
        hs_remove(&n->hs_run, c);
        n->handshaking--;
    } else if (c->hs == HS_WAITING) {
        hs_remove(&n->hs_wait, c);
        n->waiting--;
    }
    c->hs = HS_NONE;
}

void
pc_net_handshakes(const struct pc_net *n, unsigned *running,
                  unsigned *waiting)
{
    *running = n->handshaking;
    *waiting = n->waiting;
}

/* Handshakes past their slot time stop counting; waiting connections take
 * the free slots, oldest first, and are read from now on. */
static void
handshake_grant(struct pc_net *n)
{
    uint64_t now = uv_now(n->loop);

    while (n->hs_run.head != NULL
           && now - n->hs_run.head->hs_start_ms >= NET_HANDSHAKE_SLOT_MS) {
        handshake_over(n->hs_run.head);
    }
    while (n->handshaking < NET_MAX_HANDSHAKES && n->hs_wait.head != NULL) {
        struct pc_conn *c = n->hs_wait.head;
        hs_remove(&n->hs_wait, c);
        n->waiting--;
        c->hs = HS_RUNNING;
        c->hs_start_ms = now;
        hs_append(&n->hs_run, c);
        n->handshaking++;
        if (!c->paused && c->state == CONN_OPEN) {
            int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc,
                                   conn_on_read);
            if (rc != 0) {
                conn_abort(c, PC_CONN_ERROR, rc);
            }
        }
    }
}

void
pc_net_flush(struct pc_net *n)
{
    if (n->hs_wait.head != NULL) {
        handshake_grant(n);
    }
    /* A connection marked again during the walk (an abort found while
     * flushing) is taken by the next round; write callbacks cannot run
     * here, so this ends. */
    while (n->dirty != NULL) {
        struct pc_conn *list = n->dirty;
        n->dirty = NULL;
        while (list != NULL) {
            struct pc_conn *c = list;
            list = c->next_dirty;
            c->is_dirty = false;
            c->next_dirty = NULL;
            conn_flush(c);
        }
    }
}

/* Accepting. */

static void listener_on_readable(uv_poll_t *p, int status, int events);

static void
accept_resume(uv_timer_t *t)
{
    struct pc_listener *l = t->data;
    if (!l->stopping) {
        (void)uv_poll_start(&l->poll, UV_READABLE, listener_on_readable);
    }
}

/* Stops accepting for a while; the backlog keeps the clients waiting. */
static void
accept_pause(struct pc_listener *l, int err)
{
    struct pc_net *n = l->net;
    uint64_t now = pc_now_ms();

    if (l->stopping) {
        return;
    }
    if (now >= n->accept_log_ms) {
        pc_log(PC_LOG_WARN, "net",
               "accept failed, pausing accepts: %s port=%d pause_ms=%d "
               "suppressed=%u",
               pc_strerror(err), l->port, NET_ACCEPT_PAUSE_MS,
               n->accept_errors);
        n->accept_log_ms = now + NET_ACCEPT_LOG_MS;
        n->accept_errors = 0;
    } else {
        n->accept_errors++;
    }
    (void)uv_poll_stop(&l->poll);
    (void)uv_timer_start(&l->pause, accept_resume, NET_ACCEPT_PAUSE_MS, 0);
}

static void
conn_free_unopened(uv_handle_t *h)
{
    free(h->data);
}

static void
peer_name(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    int rc;

    if (ss->ss_family == AF_INET6) {
        rc = uv_ip6_name((const struct sockaddr_in6 *)ss, out, outlen);
    } else if (ss->ss_family == AF_INET) {
        rc = uv_ip4_name((const struct sockaddr_in *)ss, out, outlen);
    } else {
        rc = UV_EINVAL;
    }
    if (rc != 0) {
        (void)snprintf(out, outlen, "unknown");
    }
}

/* Wraps an accepted socket. Returns 0 or a negative code (fd closed). */
static int
conn_accept(struct pc_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct pc_net *n = l->net;
    struct pc_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        (void)close(fd);
        return -ENOMEM;
    }
    c->net = n;
    c->sendq_max = NET_SENDQ_DEFAULT;
    pc_buf_init(&c->out, SIZE_MAX / 2);
    pc_buf_init(&c->wire, SIZE_MAX / 2);
    (void)uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) {
        (void)close(fd);
        uv_close((uv_handle_t *)&c->tcp, conn_free_unopened);
        return rc;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    (void)uv_tcp_keepalive(&c->tcp, 1, NET_KEEPALIVE_S);
    c->quick_reads = NET_QUICKACK_READS;
    peer_name(ss, c->peer, sizeof(c->peer));
    if (l->tls != NULL) {
        BIO *b = BIO_new(n->bio_method);
        c->ssl = SSL_new(l->tls);
        if (c->ssl == NULL || b == NULL) {
            BIO_free(b);
            SSL_free(c->ssl);
            ERR_clear_error();
            uv_close((uv_handle_t *)&c->tcp, conn_free_unopened);
            return -ENOMEM;
        }
        BIO_set_data(b, c);
        SSL_set_bio(c->ssl, b, b); /* one reference for both directions */
        SSL_set_accept_state(c->ssl);
        /* Read once a handshake slot is free (pc_net_flush). */
        c->hs = HS_WAITING;
        hs_append(&n->hs_wait, c);
        n->waiting++;
    }
    c->id = ++n->next_id;
    /* Reading starts first, so the accept callback may pause or close;
     * nothing is read before it returns. */
    rc = c->hs == HS_WAITING
             ? 0
             : uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
    l->cb(l, c, l->arg);
    if (c->cbs == NULL || c->cbs->on_read == NULL) {
        conn_end(c, CONN_CLOSING, PC_CONN_LOCAL, 0);
    } else if (rc != 0) {
        conn_abort(c, PC_CONN_ERROR, rc);
    }
    return 0;
}

static void
listener_on_readable(uv_poll_t *p, int status, int events)
{
    struct pc_listener *l = p->data;

    if (status < 0) {
        accept_pause(l, status);
        return;
    }
    for (int i = 0; i < NET_ACCEPT_BATCH && !l->stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
#if EWOULDBLOCK != EAGAIN
            if (e == EWOULDBLOCK) {
                e = EAGAIN;
            }
#endif
            if (e == EAGAIN) {
                return;
            }
            /* The client gave up, or Linux passed on a network error of the
             * new connection: try the next one. */
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM
                || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN
                || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP
                || e == ENETUNREACH) {
                continue;
            }
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected. */
            accept_pause(l, -e);
            return;
        }
        int rc = conn_accept(l, fd, &ss);
        if (rc < 0) {
            accept_pause(l, rc);
            return;
        }
    }
}

int
pc_listener_start(struct pc_net *n, struct pc_listener **out, const char *host,
                  int port, SSL_CTX *tls, pc_accept_cb cb, void *arg)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct pc_listener *l = NULL;
    int one = 1;
    int fd = -1;
    int rc;

    memset(&ss, 0, sizeof(ss));
    if (port < 0 || port > 65535) {
        return UV_EINVAL;
    }
    if (strchr(host, ':') != NULL) {
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
        sslen = sizeof(struct sockaddr_in6);
    } else {
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
        sslen = sizeof(struct sockaddr_in);
    }
    if (rc != 0) {
        return rc;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || (ss.ss_family == AF_INET6
            && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))
                   != 0)
        || bind(fd, (struct sockaddr *)&ss, sslen) != 0
        || listen(fd, NET_BACKLOG) != 0) {
        rc = -errno;
        goto fail;
    }
    sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        rc = -errno;
        goto fail;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    l->net = n;
    l->cb = cb;
    l->arg = arg;
    l->fd = fd;
    l->port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
    rc = uv_poll_init_socket(n->loop, &l->poll, fd);
    if (rc != 0) {
        goto fail; /* not initialised: nothing to close */
    }
    (void)uv_timer_init(n->loop, &l->pause);
    l->poll.data = l;
    l->pause.data = l;
    rc = uv_poll_start(&l->poll, UV_READABLE, listener_on_readable);
    if (rc != 0) {
        pc_listener_stop(l); /* closes fd and frees l */
        return rc;
    }
    if (tls != NULL) {
        (void)SSL_CTX_up_ref(tls);
        l->tls = tls;
    }
    *out = l;
    return 0;

fail:
    free(l);
    (void)close(fd);
    return rc;
}

int
pc_listener_port(const struct pc_listener *l)
{
    return l->port;
}

void
pc_listener_set_tls(struct pc_listener *l, SSL_CTX *tls)
{
    if (l->tls == NULL || tls == NULL) {
        return; /* a plain listener stays plain */
    }
    (void)SSL_CTX_up_ref(tls);
    SSL_CTX_free(l->tls);
    l->tls = tls;
}

static void
listener_closed(uv_handle_t *h)
{
    struct pc_listener *l = h->data;

    if (--l->handles > 0) {
        return;
    }
    (void)close(l->fd);
    SSL_CTX_free(l->tls);
    free(l);
}

void
pc_listener_stop(struct pc_listener *l)
{
    if (l->stopping) {
        return;
    }
    l->stopping = true;
    l->handles = 2;
    uv_close((uv_handle_t *)&l->poll, listener_closed);
    uv_close((uv_handle_t *)&l->pause, listener_closed);
}

/* Accessors. */

void
pc_conn_setup(struct pc_conn *c, const struct pc_conn_cbs *cbs, void *data)
{
    c->cbs = cbs;
    c->data = data;
}

void *
pc_conn_data(const struct pc_conn *c)
{
    return c->data;
}

uint64_t
pc_conn_id(const struct pc_conn *c)
{
    return c->id;
}

const char *
pc_conn_peer(const struct pc_conn *c)
{
    return c->peer;
}

bool
pc_conn_is_tls(const struct pc_conn *c)
{
    return c->ssl != NULL;
}

const char *
pc_conn_cert_fp(const struct pc_conn *c)
{
    return c->cert_fp;
}

void
pc_conn_set_sendq_max(struct pc_conn *c, size_t max)
{
    c->sendq_max = max;
}

size_t
pc_conn_pending(const struct pc_conn *c)
{
    return conn_queued(c);
}

void
pc_conn_pause(struct pc_conn *c)
{
    if (!c->paused && c->state == CONN_OPEN && c->hs != HS_WAITING) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->paused = true;
}

void
pc_conn_resume(struct pc_conn *c)
{
    if (c->paused && c->state == CONN_OPEN && c->hs != HS_WAITING) {
        int rc =
            uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
        if (rc != 0) {
            conn_abort(c, PC_CONN_ERROR, rc);
        }
    }
    c->paused = false;
}
