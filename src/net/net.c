#include "config.h"

#include "net/net.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* Connections and listeners.
 *
 * Memory per idle connection is the point of several choices here: one
 * 64 KiB read buffer per loop shared by all connections (data is handed to
 * the owner synchronously), output buffers allocated only while there is
 * output, and OpenSSL's memory BIOs replaced when a burst made them grow.
 *
 * Output is only queued by pc_conn_write(); pc_net_flush(), once per loop
 * pass, turns everything a connection got in that pass into one write (and
 * for TLS one SSL_write, so one record instead of one per line). */

#define NET_READ_BUF (64 * 1024)
#define NET_SENDQ_DEFAULT (1024 * 1024)
#define NET_BIO_KEEP 4096 /* replace a drained BIO that grew past this */
#define NET_BACKLOG 4096

struct pc_net {
    uv_loop_t *loop;
    char rbuf[NET_READ_BUF];
    bool rbuf_busy;
    struct pc_conn *dirty; /* connections with output or a pending close */
    uint64_t next_id;
    uint64_t accept_errors_logged_ms;
};

struct pc_listener {
    uv_tcp_t tcp;
    struct pc_net *net;
    SSL_CTX *tls;
    pc_accept_cb cb;
    void *arg;
    int port;
};

enum conn_state {
    CONN_OPEN,
    CONN_CLOSING, /* flush what is queued, then close */
    CONN_ABORT,   /* close now, drop output */
    CONN_CLOSED   /* uv_close called */
};

struct pc_conn {
    uv_tcp_t tcp;
    struct pc_net *net;
    const struct pc_conn_cbs *cbs;
    void *data;
    uint64_t id;
    SSL *ssl;
    struct pc_buf pending;  /* plaintext queued in this pass */
    struct pc_buf wire;     /* bytes ready for the socket */
    struct pc_buf inflight; /* bytes handed to uv_write */
    uv_write_t wreq;
    size_t sendq_max;
    enum conn_state state;
    enum pc_conn_reason why;
    int err;
    bool writing;
    bool is_dirty;
    bool handshaken;
    bool in_read;
    bool paused;
    struct pc_conn *next_dirty;
    char *cert_fp;
    char peer[48];
};

int
pc_net_new(struct pc_net **out, uv_loop_t *loop)
{
    struct pc_net *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return -ENOMEM;
    }
    n->loop = loop;
    *out = n;
    return 0;
}

void
pc_net_free(struct pc_net *n)
{
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
    /* A client certificate is optional and never validated against a CA
     * here: its fingerprint is what binds it to an account (SASL EXTERNAL). */
    return 1;
}

static void
tls_error(char *err, size_t errlen, const char *what, const char *file)
{
    char ossl[256] = "";
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, ossl, sizeof(ossl));
    }
    ERR_clear_error();
    (void)snprintf(err, errlen, "%s %s%s%s", what, file ? file : "",
                   ossl[0] ? ": " : "", ossl);
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
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE
                                 | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
    (void)SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    /* Stateless tickets let reconnect storms resume without server state. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error(err, errlen, "cannot load certificate", cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error(err, errlen, "cannot load private key", key_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errlen, "private key does not match certificate",
                  key_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Memory BIOs. */

static BIO *
new_mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL) {
        BIO_set_mem_eof_return(b, -1); /* empty means "want more" */
    }
    return b;
}

static size_t
bio_capacity(BIO *b)
{
    BUF_MEM *bm = NULL;
    BIO_get_mem_ptr(b, &bm);
    return bm ? bm->max : 0;
}

/* Moves TLS output into the wire buffer. Returns 0 or a negative code. */
static int
drain_wbio(struct pc_conn *c)
{
    BIO *w = SSL_get_wbio(c->ssl);
    char tmp[16384];
    int n;

    while ((n = BIO_read(w, tmp, sizeof(tmp))) > 0) {
        int rc = pc_buf_append(&c->wire, tmp, (size_t)n);
        if (rc < 0) {
            return rc;
        }
    }
    if (bio_capacity(w) > NET_BIO_KEEP) {
        BIO *fresh = new_mem_bio();
        if (fresh != NULL) {
            SSL_set0_wbio(c->ssl, fresh);
        }
    }
    return 0;
}

/* Closing. */

static void
conn_fail(struct pc_conn *c, enum pc_conn_reason why, int err)
{
    if (c->state == CONN_CLOSED || c->state == CONN_ABORT) {
        return;
    }
    c->state = CONN_ABORT;
    c->why = why;
    c->err = err;
    mark_dirty(c);
}

void
pc_conn_close(struct pc_conn *c)
{
    if (c->state != CONN_OPEN) {
        return;
    }
    c->state = CONN_CLOSING;
    c->why = PC_CONN_LOCAL;
    if (!c->paused) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
    }
    mark_dirty(c);
}

static void
conn_closed(uv_handle_t *h)
{
    struct pc_conn *c = h->data;

    if (c->cbs != NULL && c->cbs->on_close != NULL) {
        c->cbs->on_close(c, c->why, c->err);
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
    }
    pc_buf_free(&c->pending);
    pc_buf_free(&c->wire);
    pc_buf_free(&c->inflight);
    free(c->cert_fp);
    free(c);
}

static void
conn_do_close(struct pc_conn *c)
{
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Reading. */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct pc_conn *c = h->data;
    struct pc_net *n = c->net;

    if (n->rbuf_busy) {
        /* Cannot happen with one loop thread, but never share the buffer. */
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    n->rbuf_busy = true;
    buf->base = n->rbuf;
    buf->len = sizeof(n->rbuf);
}

static void
compute_fingerprint(struct pc_conn *c)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (cert == NULL) {
        return;
    }
    if (X509_digest(cert, EVP_sha256(), md, &len) == 1) {
        c->cert_fp = malloc((size_t)len * 2 + 1);
        if (c->cert_fp != NULL) {
            for (unsigned int i = 0; i < len; i++) {
                (void)snprintf(c->cert_fp + 2 * i, 3, "%02x", md[i]);
            }
        }
    }
    X509_free(cert);
}

static void
tls_read(struct pc_conn *c, const char *data, size_t len)
{
    BIO *r = SSL_get_rbio(c->ssl);
    char plain[16384];

    if (BIO_write(r, data, (int)len) != (int)len) {
        conn_fail(c, PC_CONN_TLS, -ENOMEM);
        return;
    }
    if (!c->handshaken) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            c->handshaken = true;
            compute_fingerprint(c);
        } else {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                conn_fail(c, PC_CONN_TLS, PC_EPROTO);
                return;
            }
        }
    }
    while (c->handshaken && c->state == CONN_OPEN) {
        int n = SSL_read(c->ssl, plain, sizeof(plain));
        if (n > 0) {
            c->cbs->on_read(c, plain, (size_t)n);
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            break;
        }
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_fail(c, PC_CONN_EOF, 0); /* close_notify */
        } else {
            conn_fail(c, PC_CONN_TLS, PC_EPROTO);
        }
        return;
    }
    if (bio_capacity(r) > NET_BIO_KEEP && BIO_ctrl_pending(r) == 0) {
        BIO *fresh = new_mem_bio();
        if (fresh != NULL) {
            SSL_set0_rbio(c->ssl, fresh);
        }
    }
    /* Handshake messages, alerts, and (TLS 1.3) tickets to send. */
    if (BIO_ctrl_pending(SSL_get_wbio(c->ssl)) > 0) {
        if (drain_wbio(c) < 0) {
            conn_fail(c, PC_CONN_ERROR, -ENOMEM);
            return;
        }
        mark_dirty(c);
    }
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pc_conn *c = s->data;

    c->net->rbuf_busy = false;
    if (nread == 0 || c->state != CONN_OPEN) {
        return;
    }
    if (nread < 0) {
        conn_fail(c, nread == UV_EOF ? PC_CONN_EOF : PC_CONN_ERROR,
                  nread == UV_EOF ? 0 : (int)nread);
        return;
    }
    c->in_read = true;
    if (c->ssl != NULL) {
        tls_read(c, buf->base, (size_t)nread);
    } else {
        c->cbs->on_read(c, buf->base, (size_t)nread);
    }
    c->in_read = false;
}

/* Writing. */

int
pc_conn_write(struct pc_conn *c, const char *data, size_t len)
{
    if (c->state != CONN_OPEN) {
        return PC_ECANCELED;
    }
    size_t queued = c->pending.len + c->wire.len + c->inflight.len;
    if (queued + len > c->sendq_max) {
        conn_fail(c, PC_CONN_SENDQ, PC_E2BIG);
        return PC_E2BIG;
    }
    int rc = pc_buf_append(&c->pending, data, len);
    if (rc < 0) {
        conn_fail(c, PC_CONN_SENDQ, rc);
        return rc;
    }
    mark_dirty(c);
    return 0;
}

static void conn_flush(struct pc_conn *c);

static void
on_written(uv_write_t *req, int status)
{
    struct pc_conn *c = req->data;

    c->writing = false;
    pc_buf_free(&c->inflight);
    if (status < 0) {
        if (c->state != CONN_CLOSED) {
            conn_fail(c, PC_CONN_ERROR, status);
        }
        return;
    }
    if (c->state != CONN_CLOSED && (c->wire.len > 0 || c->pending.len > 0
                                    || c->state != CONN_OPEN)) {
        mark_dirty(c);
    }
}

/* Encrypts (TLS) the pass's output into the wire buffer. */
static int
conn_encode(struct pc_conn *c)
{
    if (c->pending.len == 0) {
        return 0;
    }
    if (c->ssl == NULL) {
        if (c->wire.len == 0) {
            /* Swap instead of copying. */
            struct pc_buf t = c->wire;
            c->wire = c->pending;
            c->pending = t;
            c->wire.max = c->pending.max;
            c->pending.max = t.max;
            return 0;
        }
        int rc = pc_buf_append(&c->wire, c->pending.data, c->pending.len);
        pc_buf_free(&c->pending);
        return rc;
    }
    if (!c->handshaken) {
        return 0; /* kept until the handshake is done */
    }
    size_t off = 0;
    while (off < c->pending.len) {
        int n = SSL_write(c->ssl, c->pending.data + off,
                          (int)(c->pending.len - off));
        if (n <= 0) {
            ERR_clear_error();
            return PC_EPROTO;
        }
        off += (size_t)n;
    }
    pc_buf_free(&c->pending);
    return drain_wbio(c);
}

static void
conn_flush(struct pc_conn *c)
{
    if (c->state == CONN_CLOSED) {
        return;
    }
    if (c->state == CONN_ABORT) {
        if (!c->writing) {
            conn_do_close(c);
        } else {
            /* uv_close cancels the write; its callback runs first. */
            conn_do_close(c);
        }
        return;
    }
    if (conn_encode(c) < 0) {
        conn_fail(c, PC_CONN_TLS, PC_EPROTO);
        conn_do_close(c);
        return;
    }
    if (c->state == CONN_CLOSING && c->ssl != NULL && c->handshaken
        && c->pending.len == 0 && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
        (void)drain_wbio(c);
    }
    if (!c->writing && c->wire.len > 0) {
        uv_buf_t b = uv_buf_init(c->wire.data, (unsigned)c->wire.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_fail(c, PC_CONN_ERROR, n);
            conn_do_close(c);
            return;
        }
        size_t done = n > 0 ? (size_t)n : 0;
        if (done == c->wire.len) {
            pc_buf_reset(&c->wire);
            pc_buf_shrink(&c->wire);
        } else {
            /* The rest goes out with uv_write; its bytes must stay put. */
            pc_buf_consume(&c->wire, done);
            c->inflight = c->wire;
            pc_buf_init(&c->wire, c->inflight.max);
            b = uv_buf_init(c->inflight.data, (unsigned)c->inflight.len);
            c->wreq.data = c;
            int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1,
                              on_written);
            if (rc < 0) {
                pc_buf_free(&c->inflight);
                conn_fail(c, PC_CONN_ERROR, rc);
                conn_do_close(c);
                return;
            }
            c->writing = true;
        }
    }
    if (c->state == CONN_CLOSING && !c->writing && c->wire.len == 0
        && (c->pending.len == 0 || (c->ssl != NULL && !c->handshaken))) {
        conn_do_close(c);
    }
}

void
pc_net_flush(struct pc_net *n)
{
    /* Connections marked during this walk (write callbacks cannot run
     * here) go on a fresh list for the next pass. */
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

static void
on_connection(uv_stream_t *server, int status)
{
    struct pc_listener *l = server->data;
    struct pc_net *n = l->net;
    struct pc_conn *c;

    if (status < 0) {
        uint64_t now = pc_now_ms();
        if (now - n->accept_errors_logged_ms > 10000) {
            n->accept_errors_logged_ms = now;
            pc_log(PC_LOG_WARN, "net", "accept failed: %s (descriptor "
                   "limit?)", uv_strerror(status));
        }
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->net = n;
    c->id = ++n->next_id;
    c->sendq_max = NET_SENDQ_DEFAULT;
    pc_buf_init(&c->pending, SIZE_MAX / 2);
    pc_buf_init(&c->wire, SIZE_MAX / 2);
    pc_buf_init(&c->inflight, SIZE_MAX / 2);
    (void)uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->state = CONN_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    (void)uv_tcp_keepalive(&c->tcp, 1, 60);

    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET6) {
            (void)uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer,
                              sizeof(c->peer));
        } else {
            (void)uv_ip4_name((struct sockaddr_in *)&ss, c->peer,
                              sizeof(c->peer));
        }
    }
    if (l->tls != NULL) {
        c->ssl = SSL_new(l->tls);
        BIO *r = new_mem_bio();
        BIO *w = new_mem_bio();
        if (c->ssl == NULL || r == NULL || w == NULL) {
            BIO_free(r);
            BIO_free(w);
            c->state = CONN_CLOSED;
            uv_close((uv_handle_t *)&c->tcp, conn_closed);
            return;
        }
        SSL_set_bio(c->ssl, r, w);
        SSL_set_accept_state(c->ssl);
    }
    l->cb(l, c, l->arg);
    if (c->cbs == NULL) {
        conn_fail(c, PC_CONN_LOCAL, 0);
        return;
    }
    if (c->state == CONN_OPEN
        && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_fail(c, PC_CONN_ERROR, -EIO);
    }
}

int
pc_listener_start(struct pc_net *n, struct pc_listener **out,
                  const char *host, int port, SSL_CTX *tls, pc_accept_cb cb,
                  void *arg)
{
    struct sockaddr_storage ss;
    struct pc_listener *l;
    unsigned flags = 0;
    int rc;

    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':') != NULL) {
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
        flags = UV_TCP_IPV6ONLY;
    } else {
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    }
    if (rc != 0) {
        return rc;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return -ENOMEM;
    }
    l->net = n;
    l->cb = cb;
    l->arg = arg;
    (void)uv_tcp_init(n->loop, &l->tcp);
    l->tcp.data = l;
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, flags);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&l->tcp, NET_BACKLOG, on_connection);
    }
    if (rc != 0) {
        l->tls = NULL;
        pc_listener_stop(l);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen) == 0) {
        l->port = ntohs(bound.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&bound)->sin6_port
                            : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (tls != NULL) {
        (void)SSL_CTX_up_ref(tls);
        l->tls = tls;
    }
    *out = l;
    return 0;
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
    if (l->tls != NULL) {
        SSL_CTX_free(l->tls);
    }
    free(l);
}

void
pc_listener_stop(struct pc_listener *l)
{
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
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
    return c->peer[0] ? c->peer : "unknown";
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
    return c->pending.len + c->wire.len + c->inflight.len;
}

void
pc_conn_pause(struct pc_conn *c)
{
    if (!c->paused && c->state == CONN_OPEN) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->paused = true;
}

void
pc_conn_resume(struct pc_conn *c)
{
    if (c->paused && c->state == CONN_OPEN) {
        (void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    c->paused = false;
}
