/* Listeners and client connections on the libuv loop: TCP with
 * TCP_NODELAY, TLS through OpenSSL memory BIOs, and output coalesced into
 * one write per connection per loop pass. */
#ifndef PC_NET_NET_H
#define PC_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

struct pc_net;      /* per-loop state: shared read buffer, dirty list */
struct pc_listener; /* one bound address */
struct pc_conn;     /* one client connection */

/* Why a connection closed, passed to the close callback. */
enum pc_conn_reason {
    PC_CONN_EOF = 1,      /* peer closed */
    PC_CONN_ERROR = 2,    /* socket error */
    PC_CONN_TLS = 3,      /* TLS handshake or record error */
    PC_CONN_SENDQ = 4,    /* output over its cap (slow reader) */
    PC_CONN_LOCAL = 5,    /* pc_conn_close() */
};

struct pc_conn_cbs {
    /* Plaintext bytes from the peer. May call pc_conn_write / _close. */
    void (*on_read)(struct pc_conn *c, const char *data, size_t len);
    /* Called exactly once, after the socket is closed; the connection is
     * freed right after this returns. */
    void (*on_close)(struct pc_conn *c, enum pc_conn_reason why, int err);
};

/* Called for each accepted connection. Set callbacks and user data with
 * pc_conn_setup(); a connection with no callbacks is closed. */
typedef void (*pc_accept_cb)(struct pc_listener *l, struct pc_conn *c,
                             void *arg);

int pc_net_new(struct pc_net **out, uv_loop_t *loop);
/* Writes all pending output of every connection; call once per loop pass
 * (from the worker's check handle). */
void pc_net_flush(struct pc_net *n);
void pc_net_free(struct pc_net *n); /* after every listener/conn closed */
/* How long a closing connection may wait for the peer to take its last
 * output before it is dropped (default 10 s). */
void pc_net_set_close_timeout(struct pc_net *n, unsigned int timeout_ms);
/* TLS handshakes counted against the limit of those run at once, and TLS
 * connections accepted but waiting for one of them to end. */
void pc_net_handshakes(const struct pc_net *n, unsigned *running,
                       unsigned *waiting);

/* TLS server context: TLS 1.2+, record buffers released once a connection's
 * handshake is done (SSL_MODE_RELEASE_BUFFERS). Returns NULL and
 * writes a reason (file and OpenSSL error) into err on failure. */
SSL_CTX *pc_tls_server_ctx(const char *cert_file, const char *key_file,
                           char *err, size_t errlen);

/* Whether clients get a session ticket (stateless resumption with this
 * process's ticket keys); the context above gives none. */
void pc_tls_set_tickets(SSL_CTX *ctx, bool on);

/* Listens on host:port (numeric IPv4/IPv6). tls NULL means plain. The
 * listener takes a reference on tls (SSL_CTX_up_ref). */
int pc_listener_start(struct pc_net *n, struct pc_listener **out,
                      const char *host, int port, SSL_CTX *tls,
                      pc_accept_cb cb, void *arg);
/* The port actually bound (useful with port 0). */
int pc_listener_port(const struct pc_listener *l);
/* Swaps the TLS context used for new connections (certificate reload). */
void pc_listener_set_tls(struct pc_listener *l, SSL_CTX *tls);
/* Stops accepting and frees the listener once its handle is closed. */
void pc_listener_stop(struct pc_listener *l);

void pc_conn_setup(struct pc_conn *c, const struct pc_conn_cbs *cbs,
                   void *data);
void *pc_conn_data(const struct pc_conn *c);
uint64_t pc_conn_id(const struct pc_conn *c);
/* Numeric peer address ("127.0.0.1", "::1"). */
const char *pc_conn_peer(const struct pc_conn *c);
bool pc_conn_is_tls(const struct pc_conn *c);
/* SHA-256 fingerprint (lower-case hex) of the client certificate, or NULL. */
const char *pc_conn_cert_fp(const struct pc_conn *c);
/* Queues bytes; they go out at the next pc_net_flush. Returns PC_E2BIG and
 * closes the connection (PC_CONN_SENDQ) if the queue would exceed sendq_max
 * bytes. */
int pc_conn_write(struct pc_conn *c, const char *data, size_t len);
void pc_conn_set_sendq_max(struct pc_conn *c, size_t max);
size_t pc_conn_pending(const struct pc_conn *c);
/* Stops/resumes reading (flood control). */
void pc_conn_pause(struct pc_conn *c);
void pc_conn_resume(struct pc_conn *c);
/* Flushes what is queued, then closes (TLS close_notify included). The
 * close callback follows; no on_read after this. Safe to call twice. */
void pc_conn_close(struct pc_conn *c);

#endif
