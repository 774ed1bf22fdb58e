/* The HTTPS JSON administration API (docs/admin-guide.md): HTTP/1.1 with
 * keep-alive on a TLS listener of src/net, requests parsed by http-parser,
 * authenticated by HTTP Basic (checked against the account's SCRAM keys on
 * the thread pool) or a client certificate bound to an account, and each
 * operation one call of sql/content/0004_admin.sql's pchat_admin_call with
 * the authenticated account as the actor, so the rights are the database's
 * (administrators everything, room managers their rooms). */
#ifndef PC_HTTP_HTTP_H
#define PC_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "auth/auth.h"
#include "net/net.h"
#include "store/store.h"

struct pc_http;

struct pc_http_cfg {
    const char *host;          /* numeric address */
    int port;                  /* 0: any free port */
    SSL_CTX *tls;              /* required: the API is never plain */
    size_t max_body;           /* bytes of a request body */
    unsigned max_conns;        /* connections at once */
    uint32_t query_timeout_ms; /* a request waits this long for the DB */
    uint32_t iterations;       /* PBKDF2 iterations for passwords set here */
    uint32_t idle_timeout_ms;  /* a request must complete within this long
                                  of the connection or the last answer */
    uint32_t fail_burst;       /* failed logins allowed at once, per client
                                  address and per account name ... */
    uint32_t fail_interval_ms; /* ... then one more per this long (429) */
};

/* Listens; returns 0 or a negative code (the listener's). */
int pc_http_start(struct pc_http **out, uv_loop_t *loop, struct pc_net *net,
                  struct pc_store *store, const struct pc_http_cfg *cfg);
int pc_http_port(const struct pc_http *h);
/* Stops listening and closes every connection; the object frees itself
 * once the last connection and the last request in flight are gone. Call
 * before the store is closed (its cancelled queries come back here). */
void pc_http_stop(struct pc_http *h);

/* One request, routed (route.c, pure): the operation of pchat_admin_call,
 * the status of its success, and its arguments (path segments, the
 * query's before=, the body's fields; NULL elements are SQL NULL). A body
 * field "password" reserves four arguments at key_arg for the SCRAM keys
 * pchatd derives from pass (derive true when one was given). */
#define PC_HTTP_MAX_ARGS 16

struct pc_http_req {
    const char *op;
    int status;
    char *args[PC_HTTP_MAX_ARGS];
    int nargs;
    int key_arg;
    bool derive;
    char pass[PC_AUTH_PASS_MAX + 1];
    size_t pass_len;
};

/* Routes a request: method is http_parser's enum http_method, url the
 * request target, body the whole body (may be empty). Returns 0 with req
 * filled, or an HTTP status (400, 404, 405) with *why set. req must start
 * zeroed (or cleared) and be cleared after use. */
int pc_http_route(int method, const char *url, size_t url_len, const char *body,
                  size_t body_len, struct pc_http_req *req, const char **why);
/* Frees the arguments and wipes the password. */
void pc_http_req_clear(struct pc_http_req *req);

/* Percent-decodes len bytes of s into out (cap bytes, NUL-terminated).
 * Returns the length, or -1 for a bad escape, a NUL byte or no room. */
int pc_http_unescape(const char *s, size_t len, char *out, size_t cap);

#endif
