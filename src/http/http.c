#include "config.h"

#include "http/http.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "auth/auth.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/limit.h"
#include "util/log.h"
#include "util/time.h"

#define URL_MAX     2048
#define FIELD_MAX   64  /* header names we keep track of */
#define AUTH_MAX    512 /* the Authorization header's value */
#define HEADERS_MAX (16 * 1024)
#define SALT_LEN    16
#define SENDQ_MAX   (16u * 1024 * 1024)

enum hstate {
    H_READING, /* parsing a request */
    H_BUSY,    /* a request is being answered; input waits in `rest` */
};

/* What a request asks for, once routed. */
struct route;

struct hconn {
    struct pc_http *h;
    struct pc_conn *conn; /* NULL once closed */
    struct hconn *next, *prev;
    http_parser parser;
    enum hstate state;
    bool busy;       /* a query or work item holds this connection */
    bool pumping;    /* inside pump(): answers given at once loop there */
    bool keep_alive; /* of the current request */
    bool bad;        /* the request broke a limit: answered, then closed */
    int bad_status;
    const char *bad_text;
    struct pc_buf rest; /* input received while busy */
    uint64_t since_ms;  /* when the request being read could start */
    size_t header_bytes;
    /* The request. */
    char url[URL_MAX + 1];
    size_t url_len;
    char field[FIELD_MAX + 1];
    size_t field_len;
    bool in_auth; /* the header value being read is Authorization */
    bool last_was_value;
    char auth[AUTH_MAX + 1];
    size_t auth_len;
    struct pc_buf body;
    /* Processing. */
    struct pc_http_req req;
    char actor[PC_AUTH_NAME_MAX + 1];
    char login[PC_AUTH_NAME_MAX + 1]; /* the name being checked, folded */
    char cred[PC_AUTH_PASS_MAX + 1];  /* the Basic credentials' password */
    size_t cred_len;
    uv_work_t work;
    struct pc_auth_keys keys;
    bool work_ok;
};

struct pc_http {
    uv_loop_t *loop;
    struct pc_net *net;
    struct pc_store *store;
    struct pc_listener *listener;
    struct pc_http_cfg cfg;
    struct hconn *conns;
    unsigned nconns;
    bool stopping;
    uv_timer_t idle_timer;     /* closes connections idle for too long */
    struct pc_limit fail_addr; /* failed logins per client address */
    struct pc_limit fail_name; /* and per account name */
    bool timer_open;
    http_parser_settings settings;
};

/* Clears secrets. Out of line: gcc 12 with the sanitizers mistakes
 * &hc->keys for its first member and warns about the size. */
__attribute__((noinline)) static void
wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

/* ---------------------------------------------------------- responses */

static const char *
status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void conn_next(struct hconn *hc);

static void
clear_request(struct hconn *hc)
{
    pc_http_req_clear(&hc->req);
    hc->url_len = 0;
    hc->field_len = 0;
    hc->in_auth = false;
    hc->last_was_value = false;
    hc->auth_len = 0;
    hc->header_bytes = 0;
    hc->actor[0] = '\0';
    hc->login[0] = '\0';
    wipe(hc->cred, sizeof(hc->cred));
    hc->cred_len = 0;
    wipe(&hc->keys, sizeof(hc->keys));
    pc_buf_reset(&hc->body);
    pc_buf_shrink(&hc->body);
}

/* Sends the answer to the current request (body: JSON text, or NULL for
 * {"ok":true}), then reads the next one or closes. */
static void
respond(struct hconn *hc, int status, const char *body)
{
    char head[512];

    if (hc->conn == NULL) {
        return;
    }
    if (body == NULL) {
        body = "{\"ok\":true}";
    }
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s"
                     "Connection: %s\r\n\r\n",
                     status, status_text(status), blen + 1,
                     status == 401 ? "WWW-Authenticate: Basic realm=\"pchat\", "
                                     "charset=\"UTF-8\"\r\n"
                                   : "",
                     hc->keep_alive ? "keep-alive" : "close");
    pc_log(status >= 500 ? PC_LOG_WARN : PC_LOG_INFO, "http",
           "%s %.*s -> %d conn=%llu peer=%s actor=%s",
           http_method_str((enum http_method)hc->parser.method),
           (int)(hc->url_len > 200 ? 200 : hc->url_len), hc->url, status,
           (unsigned long long)pc_conn_id(hc->conn), pc_conn_peer(hc->conn),
           hc->actor[0] ? hc->actor : "-");
    if (pc_conn_write(hc->conn, head, (size_t)n) < 0
        || pc_conn_write(hc->conn, body, blen) < 0
        || pc_conn_write(hc->conn, "\n", 1) < 0) {
        return; /* the connection closes itself */
    }
    clear_request(hc);
    if (!hc->keep_alive) {
        pc_conn_close(hc->conn);
        return;
    }
    conn_next(hc);
}

static void
respond_error(struct hconn *hc, int status, const char *message,
              const char *code)
{
    json_t *j = json_pack("{s:s}", "error", message);
    if (j != NULL && code != NULL) {
        (void)json_object_set_new(j, "code", json_string(code));
    }
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    respond(hc, status, text ? text : "{\"error\":\"out of memory\"}");
    free(text);
    json_decref(j);
}

/* ------------------------------------------------------ lifetime */

static void
http_maybe_free(struct pc_http *h)
{
    if (h->stopping && h->conns == NULL && h->listener == NULL
        && !h->timer_open) {
        pc_limit_free(&h->fail_addr);
        pc_limit_free(&h->fail_name);
        free(h);
    }
}

static void
hconn_free(struct hconn *hc)
{
    struct pc_http *h = hc->h;

    clear_request(hc);
    pc_buf_free(&hc->body);
    pc_buf_free(&hc->rest);
    if (hc->prev) {
        hc->prev->next = hc->next;
    } else {
        h->conns = hc->next;
    }
    if (hc->next) {
        hc->next->prev = hc->prev;
    }
    h->nconns--;
    free(hc);
    http_maybe_free(h);
}

/* Ends an asynchronous step: false if the connection went away meanwhile
 * (it is then freed here and the step must stop). */
static bool
step_done(struct hconn *hc)
{
    hc->busy = false;
    if (hc->conn == NULL) {
        hconn_free(hc);
        return false;
    }
    return true;
}

/* ------------------------------------------------------ the database */

static int
sqlstate_status(const char *state)
{
    if (state == NULL) {
        return 500;
    }
    if (strcmp(state, "42501") == 0) {
        return 403;
    }
    if (strcmp(state, "P0002") == 0) {
        return 404;
    }
    if (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0) {
        return 409;
    }
    if (strncmp(state, "22", 2) == 0) {
        return 400; /* data exceptions: bad value, date, number */
    }
    return 500;
}

/* The text[] literal of the arguments: {"a","b",NULL}. */
static char *
array_literal(char *const *args, int nargs)
{
    struct pc_buf b;
    /* Arguments are at most 1 KiB each, doubled by escaping. */
    pc_buf_init(&b, (size_t)PC_HTTP_MAX_ARGS * (1024 * 2 + 8) + 16);
    int rc = pc_buf_append_str(&b, "{");
    for (int i = 0; rc == 0 && i < nargs; i++) {
        if (i > 0) {
            rc = pc_buf_append_str(&b, ",");
        }
        if (args[i] == NULL) {
            rc = rc ? rc : pc_buf_append_str(&b, "NULL");
            continue;
        }
        rc = rc ? rc : pc_buf_append_str(&b, "\"");
        for (const char *p = args[i]; rc == 0 && *p; p++) {
            if (*p == '"' || *p == '\\') {
                rc = pc_buf_append(&b, "\\", 1);
            }
            rc = rc ? rc : pc_buf_append(&b, p, 1);
        }
        rc = rc ? rc : pc_buf_append_str(&b, "\"");
    }
    rc = rc ? rc : pc_buf_append(&b, "}", 2);
    if (rc < 0) {
        pc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

typedef void (*query_cb)(struct hconn *hc, PGresult *res);

struct qctx {
    struct hconn *hc;
    query_cb cb;
};

static void
query_done(void *arg, int status, PGresult *res)
{
    struct qctx *q = arg;
    struct hconn *hc = q->hc;
    query_cb cb = q->cb;

    free(q);
    if (!step_done(hc)) {
        return;
    }
    if (status == PC_EDB) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        int http = sqlstate_status(state);
        if (http == 500) {
            pc_log(PC_LOG_ERR, "http", "database error %s: %s",
                   state ? state : "?", msg ? msg : "?");
            msg = "internal error";
        }
        respond_error(hc, http, msg ? msg : "database error", state);
        return;
    }
    if (status < 0) {
        respond_error(hc, 503,
                      status == PC_EUNKNOWN
                          ? "the database connection was lost: the change "
                            "may or may not have been made"
                          : "the database is not available",
                      NULL);
        return;
    }
    cb(hc, res);
}

/* Runs pchat_admin_call(actor, op, args) and passes the answer to cb. */
static void
call(struct hconn *hc, const char *actor, const char *op, char *const *args,
     int nargs, query_cb cb)
{
    struct pc_http *h = hc->h;
    char *arr = array_literal(args, nargs);
    struct qctx *q = malloc(sizeof(*q));

    if (arr == NULL || q == NULL) {
        free(arr);
        free(q);
        respond_error(hc, 500, "out of memory", NULL);
        return;
    }
    q->hc = hc;
    q->cb = cb;
    const char *params[3] = {actor, op, arr};
    int rc =
        pc_store_query(h->store, PC_STMT_ADM_CALL, params, 3,
                       pc_now_ms() + h->cfg.query_timeout_ms, query_done, q);
    free(arr);
    if (rc < 0) {
        free(q);
        respond_error(hc, 503, "the database is not available", NULL);
        return;
    }
    hc->busy = true;
}

static void
op_done(struct hconn *hc, PGresult *res)
{
    const char *text = NULL;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        text = PQgetvalue(res, 0, 0);
    }
    respond(hc, hc->req.status, text);
}

/* ------------------------------------------------- the thread pool */

static void
derive_work(uv_work_t *w)
{
    struct hconn *hc = w->data;
    unsigned char salt[SALT_LEN];

    hc->work_ok =
        getrandom(salt, sizeof(salt), 0) == (ssize_t)sizeof(salt)
        && pc_auth_derive(hc->req.pass, hc->req.pass_len, salt, sizeof(salt),
                          hc->h->cfg.iterations, &hc->keys)
               == 0;
    pc_auth_thread_done();
}

static void
verify_work(uv_work_t *w)
{
    struct hconn *hc = w->data;
    hc->work_ok = pc_auth_plain_check(&hc->keys, hc->cred, hc->cred_len);
    pc_auth_thread_done();
}

static char *
hex_arg(const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 15];
    }
    s[2 * len] = '\0';
    return s;
}

static void
derive_after(uv_work_t *w, int status)
{
    struct hconn *hc = w->data;
    char iter[16];

    if (!step_done(hc)) {
        return;
    }
    wipe(hc->req.pass, sizeof(hc->req.pass));
    if (status < 0 || !hc->work_ok) {
        respond_error(hc, status < 0 ? 503 : 500,
                      "cannot derive the password's keys", NULL);
        return;
    }
    (void)snprintf(iter, sizeof(iter), "%u", (unsigned)hc->keys.iterations);
    int k = hc->req.key_arg;
    if (k < 0 || k + 4 > PC_HTTP_MAX_ARGS) {
        respond_error(hc, 500, "internal error", NULL);
        return;
    }
    hc->req.args[k] = strdup(iter);
    hc->req.args[k + 1] = hex_arg(hc->keys.salt, hc->keys.salt_len);
    hc->req.args[k + 2] = hex_arg(hc->keys.stored_key, PC_AUTH_KEY_LEN);
    hc->req.args[k + 3] = hex_arg(hc->keys.server_key, PC_AUTH_KEY_LEN);
    wipe(&hc->keys, sizeof(hc->keys));
    for (int i = 0; i < 4; i++) {
        if (hc->req.args[k + i] == NULL) {
            respond_error(hc, 500, "out of memory", NULL);
            return;
        }
    }
    call(hc, hc->actor, hc->req.op, hc->req.args, hc->req.nargs, op_done);
}

static void
run_op(struct hconn *hc)
{
    if (hc->req.derive) {
        hc->work.data = hc;
        if (uv_queue_work(hc->h->loop, &hc->work, derive_work, derive_after)
            < 0) {
            respond_error(hc, 500, "cannot queue work", NULL);
            return;
        }
        hc->busy = true;
        return;
    }
    call(hc, hc->actor, hc->req.op, hc->req.args, hc->req.nargs, op_done);
}

/* A failed login: counted against the client's address and the name it
 * tried (a client certificate counts against the address only). */
static void
login_failed(struct hconn *hc, const char *why)
{
    uint64_t now = pc_now_ms();
    if (hc->conn != NULL) {
        pc_limit_fail(&hc->h->fail_addr, pc_conn_peer(hc->conn), now);
    }
    if (hc->login[0] != '\0') {
        pc_limit_fail(&hc->h->fail_name, hc->login, now);
    }
    hc->actor[0] = '\0';
    respond_error(hc, 401, why, NULL);
}

static void
verify_after(uv_work_t *w, int status)
{
    struct hconn *hc = w->data;

    if (!step_done(hc)) {
        return;
    }
    bool ok = status == 0 && hc->work_ok;
    wipe(&hc->keys, sizeof(hc->keys));
    wipe(hc->cred, sizeof(hc->cred));
    hc->cred_len = 0;
    if (!ok) {
        login_failed(hc, "wrong account name or password");
        return;
    }
    run_op(hc);
}

/* The account's keys (or its certificate's account) came back. */
static void
auth_done(struct hconn *hc, PGresult *res)
{
    json_error_t jerr;
    json_t *j = NULL;
    const char *name = NULL, *salt = NULL, *stored = NULL, *server = NULL;
    json_int_t iter = 0;
    int disabled = 1;

    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        j = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    }
    if (j == NULL
        || json_unpack(j, "{s:s,s:b,s?I,s?s,s?s,s?s}", "name", &name,
                       "disabled", &disabled, "iterations", &iter, "salt",
                       &salt, "stored_key", &stored, "server_key", &server)
               != 0
        || disabled) {
        json_decref(j);
        login_failed(hc, "wrong account name or password");
        return;
    }
    (void)snprintf(hc->actor, sizeof(hc->actor), "%s", name);
    if (hc->auth_len == 0) { /* a client certificate: no password */
        json_decref(j);
        run_op(hc);
        return;
    }
    struct pc_auth_keys *k = &hc->keys;
    ssize_t sl =
        salt ? pc_auth_hex_decode(k->salt, sizeof(k->salt), salt, strlen(salt))
             : -1;
    bool ok = sl > 0 && iter > 0 && iter <= 10000000 && stored && server
              && pc_auth_hex_decode(k->stored_key, PC_AUTH_KEY_LEN, stored,
                                    strlen(stored))
                     == PC_AUTH_KEY_LEN
              && pc_auth_hex_decode(k->server_key, PC_AUTH_KEY_LEN, server,
                                    strlen(server))
                     == PC_AUTH_KEY_LEN;
    json_decref(j);
    if (!ok) { /* no password set: certificate-only account */
        login_failed(hc, "wrong account name or password");
        return;
    }
    k->salt_len = (size_t)sl;
    k->iterations = (uint32_t)iter;
    hc->work.data = hc;
    if (uv_queue_work(hc->h->loop, &hc->work, verify_work, verify_after) < 0) {
        respond_error(hc, 500, "cannot queue work", NULL);
        return;
    }
    hc->busy = true;
}

/* Refuses (429) a login from an address or for a name that failed too
 * often lately, before any work is done. */
static bool
too_many_failures(struct hconn *hc)
{
    char why[96];
    uint64_t now = pc_now_ms();
    unsigned a =
        pc_limit_wait_s(&hc->h->fail_addr, pc_conn_peer(hc->conn), now);
    unsigned n =
        hc->login[0] ? pc_limit_wait_s(&hc->h->fail_name, hc->login, now) : 0;
    unsigned wait = a > n ? a : n;
    if (wait == 0) {
        return false;
    }
    (void)snprintf(why, sizeof(why),
                   "too many failed logins: try again in %u s", wait);
    respond_error(hc, 429, why, NULL);
    return true;
}

static void
handle_request(struct hconn *hc)
{
    const char *why = NULL;

    if (hc->bad) {
        hc->keep_alive = false;
        respond_error(hc, hc->bad_status, hc->bad_text, NULL);
        return;
    }
    int status = pc_http_route(hc->parser.method, hc->url, hc->url_len,
                               hc->body.data, hc->body.len, &hc->req, &why);
    if (status != 0) {
        respond_error(hc, status, why, NULL);
        return;
    }
    /* Authenticate: HTTP Basic, else the client certificate. */
    char decoded[AUTH_MAX];
    char name[PC_AUTH_NAME_MAX + 1];
    char *lookup[1] = {name};
    if (hc->auth_len > 6 && strncasecmp(hc->auth, "Basic ", 6) == 0) {
        ssize_t n =
            pc_auth_b64_decode((unsigned char *)decoded, sizeof(decoded) - 1,
                               hc->auth + 6, hc->auth_len - 6);
        char *colon = n > 0 ? memchr(decoded, ':', (size_t)n) : NULL;
        size_t nlen = colon ? (size_t)(colon - decoded) : 0;
        size_t clen = colon ? (size_t)n - nlen - 1 : 0;
        if (colon == NULL || nlen == 0 || nlen > PC_AUTH_NAME_MAX || clen == 0
            || clen > PC_AUTH_PASS_MAX
            || memchr(decoded, '\0', (size_t)n) != NULL) {
            wipe(decoded, sizeof(decoded));
            login_failed(hc, "malformed Basic credentials");
            return;
        }
        memcpy(name, decoded, nlen);
        name[nlen] = '\0';
        for (size_t i = 0; i <= nlen; i++) {
            char ch = name[i];
            hc->login[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        if (too_many_failures(hc)) {
            wipe(decoded, sizeof(decoded));
            return;
        }
        memcpy(hc->cred, colon + 1, clen);
        hc->cred_len = clen;
        wipe(decoded, sizeof(decoded));
        call(hc, NULL, "auth", lookup, 1, auth_done);
        return;
    }
    const char *fp = pc_conn_cert_fp(hc->conn);
    if (hc->auth_len == 0 && fp != NULL) {
        if (too_many_failures(hc)) {
            return;
        }
        (void)snprintf(name, sizeof(name), "%s", fp);
        call(hc, NULL, "auth_cert", lookup, 1, auth_done);
        return;
    }
    respond_error(hc, 401,
                  hc->auth_len ? "only Basic authentication is supported"
                               : "authentication required (HTTP Basic or a "
                                 "client certificate bound to an account)",
                  NULL);
}

/* ------------------------------------------------ parser callbacks */

static struct hconn *
of(http_parser *p)
{
    return p->data;
}

static int
mark_bad(struct hconn *hc, int status, const char *text)
{
    if (!hc->bad) {
        hc->bad = true;
        hc->bad_status = status;
        hc->bad_text = text;
    }
    return 0;
}

static int
on_message_begin(http_parser *p)
{
    struct hconn *hc = of(p);
    clear_request(hc);
    hc->bad = false;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct hconn *hc = of(p);
    if (hc->url_len + len > URL_MAX) {
        return mark_bad(hc, 414, "request target too long");
    }
    memcpy(hc->url + hc->url_len, at, len);
    hc->url_len += len;
    hc->url[hc->url_len] = '\0';
    return 0;
}

/* Stops the parser once the headers pass their cap: they could go on for
 * ever. */
static int
count_header(struct hconn *hc, size_t len)
{
    hc->header_bytes += len;
    if (hc->header_bytes > HEADERS_MAX) {
        mark_bad(hc, 431, "request headers too large");
        return -1;
    }
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct hconn *hc = of(p);
    if (count_header(hc, len) < 0) {
        return -1;
    }
    if (hc->last_was_value || hc->field_len == 0) {
        /* A new header: count its ": " and CRLF too. */
        if (count_header(hc, 4) < 0) {
            return -1;
        }
        hc->field_len = 0;
        hc->last_was_value = false;
    }
    size_t room = FIELD_MAX - hc->field_len;
    size_t k = len < room ? len : room;
    memcpy(hc->field + hc->field_len, at, k);
    hc->field_len += k;
    hc->field[hc->field_len] = '\0';
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct hconn *hc = of(p);
    if (count_header(hc, len) < 0) {
        return -1;
    }
    if (!hc->last_was_value) {
        hc->last_was_value = true;
        hc->in_auth = strcasecmp(hc->field, "Authorization") == 0;
        if (hc->in_auth && hc->auth_len > 0) {
            return mark_bad(hc, 400, "more than one Authorization header");
        }
    }
    if (hc->in_auth && !hc->bad) {
        if (hc->auth_len + len > AUTH_MAX) {
            return mark_bad(hc, 431, "Authorization header too long");
        }
        memcpy(hc->auth + hc->auth_len, at, len);
        hc->auth_len += len;
        hc->auth[hc->auth_len] = '\0';
    }
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct hconn *hc = of(p);
    if ((p->flags & F_CONTENTLENGTH)
        && p->content_length > hc->h->cfg.max_body) {
        /* The body is not read: answer at once and close. */
        mark_bad(hc, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct hconn *hc = of(p);
    if (pc_buf_append(&hc->body, at, len) < 0) {
        mark_bad(hc, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct hconn *hc = of(p);
    hc->keep_alive = http_should_keep_alive(p) != 0;
    hc->state = H_BUSY;
    http_parser_pause(p, 1);
    return 0;
}

/* ---------------------------------------------------- connections */

/* Parses input; a complete request pauses the parser and is handled.
 * Input after it is put back into `rest` until the answer is out. */
static void
parse_some(struct hconn *hc, const char *data, size_t len)
{
    size_t n = http_parser_execute(&hc->parser, &hc->h->settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);

    if (e == HPE_PAUSED) {
        if (n < len && pc_buf_append(&hc->rest, data + n, len - n) < 0) {
            hc->keep_alive = false;
        }
        pc_conn_pause(hc->conn);
        handle_request(hc);
        return;
    }
    if (e != HPE_OK || hc->parser.upgrade) {
        /* Answer once, then close: the stream cannot be trusted now. */
        hc->keep_alive = false;
        hc->state = H_BUSY;
        pc_conn_pause(hc->conn);
        if (hc->bad) {
            respond_error(hc, hc->bad_status, hc->bad_text, NULL);
        } else {
            respond_error(hc, e == HPE_HEADER_OVERFLOW ? 431 : 400,
                          hc->parser.upgrade ? "upgrades are not supported"
                                             : http_errno_description(e),
                          NULL);
        }
    }
}

/* Handles the waiting input request after request, in a loop rather than
 * by recursion (an answer given at once would otherwise nest one call per
 * pipelined request). */
static void
pump(struct hconn *hc)
{
    hc->pumping = true;
    while (hc->conn != NULL && hc->state == H_READING && hc->rest.len > 0) {
        struct pc_buf input = hc->rest;
        pc_buf_init(&hc->rest, input.max);
        parse_some(hc, input.data, input.len);
        pc_buf_free(&input);
    }
    hc->pumping = false;
    if (hc->conn != NULL && hc->state == H_READING) {
        pc_conn_resume(hc->conn);
    }
}

static void
conn_next(struct hconn *hc)
{
    hc->state = H_READING;
    hc->since_ms = pc_now_ms();
    http_parser_pause(&hc->parser, 0);
    if (!hc->pumping) {
        pump(hc);
    }
}

static void
on_read(struct pc_conn *c, const char *data, size_t len)
{
    struct hconn *hc = pc_conn_data(c);
    if (pc_buf_append(&hc->rest, data, len) < 0) {
        /* More than a whole request's worth waiting: answer what is
         * complete, then close. */
        hc->keep_alive = false;
        pc_conn_pause(c);
        return;
    }
    if (hc->state == H_READING && !hc->pumping) {
        pump(hc);
    }
}

static void
on_close(struct pc_conn *c, enum pc_conn_reason why, int err)
{
    struct hconn *hc = pc_conn_data(c);
    hc->conn = NULL;
    if (!hc->busy) {
        hconn_free(hc);
    }
}

static const struct pc_conn_cbs conn_cbs = {on_read, on_close};

static void
on_accept(struct pc_listener *l, struct pc_conn *c, void *arg)
{
    struct pc_http *h = arg;
    if (h->stopping || h->nconns >= h->cfg.max_conns) {
        pc_log(PC_LOG_WARN, "http", "refused a connection from %s: %u open",
               pc_conn_peer(c), h->nconns);
        return; /* no callbacks: net closes it */
    }
    struct hconn *hc = calloc(1, sizeof(*hc));
    if (hc == NULL) {
        return;
    }
    hc->h = h;
    hc->conn = c;
    hc->since_ms = pc_now_ms();
    hc->req.key_arg = -1;
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    pc_buf_init(&hc->body, h->cfg.max_body);
    pc_buf_init(&hc->rest, h->cfg.max_body + HEADERS_MAX + URL_MAX);
    hc->next = h->conns;
    if (h->conns) {
        h->conns->prev = hc;
    }
    h->conns = hc;
    h->nconns++;
    pc_conn_set_sendq_max(c, SENDQ_MAX);
    pc_conn_setup(c, &conn_cbs, hc);
}

/* A connection that has not completed a request within idle_timeout_ms
 * (since it opened or since its last answer) is closed: idle keep-alive
 * connections and slow senders cannot hold the max_conns slots for ever.
 * Connections waiting for the database or the thread pool are left. */
static void
on_idle_timer(uv_timer_t *t)
{
    struct pc_http *h = t->data;
    uint64_t now = pc_now_ms();

    for (struct hconn *hc = h->conns; hc != NULL; hc = hc->next) {
        if (hc->conn != NULL && hc->state == H_READING
            && now - hc->since_ms > h->cfg.idle_timeout_ms) {
            pc_log(PC_LOG_INFO, "http",
                   "closing idle connection conn=%llu "
                   "peer=%s",
                   (unsigned long long)pc_conn_id(hc->conn),
                   pc_conn_peer(hc->conn));
            pc_conn_close(hc->conn);
        }
    }
}

static void
on_timer_closed(uv_handle_t *handle)
{
    struct pc_http *h = handle->data;
    h->timer_open = false;
    http_maybe_free(h);
}

int
pc_http_start(struct pc_http **out, uv_loop_t *loop, struct pc_net *net,
              struct pc_store *store, const struct pc_http_cfg *cfg)
{
    struct pc_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return -ENOMEM;
    }
    h->loop = loop;
    h->net = net;
    h->store = store;
    h->cfg = *cfg;
    http_parser_settings_init(&h->settings);
    h->settings.on_message_begin = on_message_begin;
    h->settings.on_url = on_url;
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_value = on_header_value;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;
    if (h->cfg.idle_timeout_ms == 0) {
        h->cfg.idle_timeout_ms = 30000;
    }
    pc_limit_init(&h->fail_addr, cfg->fail_burst, cfg->fail_interval_ms, 65536);
    pc_limit_init(&h->fail_name, cfg->fail_burst, cfg->fail_interval_ms, 65536);
    int rc = pc_listener_start(net, &h->listener, cfg->host, cfg->port,
                               cfg->tls, on_accept, h);
    if (rc < 0) {
        pc_limit_free(&h->fail_addr);
        pc_limit_free(&h->fail_name);
        free(h);
        return rc;
    }
    (void)uv_timer_init(loop, &h->idle_timer);
    h->idle_timer.data = h;
    h->timer_open = true;
    uint64_t every = h->cfg.idle_timeout_ms / 4 + 1;
    (void)uv_timer_start(&h->idle_timer, on_idle_timer, every, every);
    uv_unref((uv_handle_t *)&h->idle_timer);
    *out = h;
    return 0;
}

int
pc_http_port(const struct pc_http *h)
{
    return pc_listener_port(h->listener);
}

void
pc_http_stop(struct pc_http *h)
{
    if (h == NULL || h->stopping) {
        return;
    }
    h->stopping = true;
    pc_listener_stop(h->listener);
    h->listener = NULL;
    uv_timer_stop(&h->idle_timer);
    uv_close((uv_handle_t *)&h->idle_timer, on_timer_closed);
    for (struct hconn *hc = h->conns; hc != NULL; hc = hc->next) {
        if (hc->conn != NULL) {
            pc_conn_close(hc->conn);
        }
    }
    http_maybe_free(h);
}
