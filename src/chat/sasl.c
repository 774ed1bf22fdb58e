#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/auth.h"
#include "chat/internal.h"
#include "irc/numeric.h"
#include "util/err.h"
#include "util/limit.h"
#include "util/log.h"

/* IRCv3 SASL (the AUTHENTICATE command) with PLAIN, SCRAM-SHA-256 and
 * EXTERNAL, accounts read from PostgreSQL through the store, the hashing
 * done on libuv's thread pool, and failed logins limited per account and
 * per client address with token buckets. docs/room-model.md, "Accounts and
 * SASL", describes what a client sees.
 *
 * An exchange lives in s->sasl. Everything asynchronous (a database
 * lookup, a job on the thread pool) carries the session id and the
 * exchange's generation: an answer for a session that closed, aborted or
 * started over finds nothing and is dropped. */

#define SASL_CHUNK     400   /* IRCv3: payload lines are cut at 400 bytes */
#define SASL_IN_MAX    4096  /* base64 bytes of one reassembled message */
#define FAIL_TRACK_MAX 65536 /* buckets kept per map before pruning */

enum sasl_mech { MECH_NONE, MECH_PLAIN, MECH_SCRAM, MECH_EXTERNAL };

enum sasl_state {
    ST_IDLE,
    ST_DATA,        /* mechanism chosen, waiting for the client's message */
    ST_BUSY,        /* database lookup or hashing job in flight */
    ST_SCRAM_FINAL, /* server-first sent, waiting for client-final */
    ST_SCRAM_ACK,   /* server-final sent, waiting for the empty answer */
};

struct pc_sasl {
    enum sasl_state state;
    enum sasl_mech mech;
    uint64_t gen;
    struct pc_buf in; /* base64 being reassembled */
    struct pc_scram scram;
    /* The account looked up (SCRAM keeps it between steps). */
    bool found;
    bool disabled;
    bool is_admin;
    int64_t account_id;
    char account[PC_NICK_MAX + 1];
};

struct pc_sasl_ctx {
    struct pc_chat *chat; /* NULL once the chat is freed */
    unsigned jobs;        /* thread-pool jobs in flight */
    struct pc_limit fail_addr; /* failed logins per client address */
    struct pc_limit fail_acct; /* and per (folded) account name */
    unsigned char secret[32]; /* made-up keys for unknown accounts */
};

static void sasl_reset(struct pc_session *s);

/* Setup. */

int
pc_sasl_init(struct pc_chat *c)
{
    struct pc_sasl_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return -ENOMEM;
    }
    if (RAND_bytes(x->secret, sizeof(x->secret)) != 1) {
        free(x);
        return -EIO;
    }
    x->chat = c;
    pc_limit_init(&x->fail_addr, c->conf->auth_fail_burst,
                  c->conf->auth_fail_interval_ms, FAIL_TRACK_MAX);
    pc_limit_init(&x->fail_acct, c->conf->auth_fail_burst,
                  c->conf->auth_fail_interval_ms, FAIL_TRACK_MAX);
    c->sasl = x;
    return 0;
}

static void
ctx_free(struct pc_sasl_ctx *x)
{
    pc_limit_free(&x->fail_addr);
    pc_limit_free(&x->fail_acct);
    OPENSSL_cleanse(x->secret, sizeof(x->secret));
    free(x);
}

void
pc_sasl_free(struct pc_chat *c)
{
    struct pc_sasl_ctx *x = c->sasl;
    if (x == NULL) {
        return;
    }
    c->sasl = NULL;
    x->chat = NULL;
    if (x->jobs == 0) {
        ctx_free(x);
    } /* else the last job's completion frees it */
}

void
pc_sasl_session_free(struct pc_session *s)
{
    if (s->sasl != NULL) {
        pc_buf_free(&s->sasl->in);
        OPENSSL_cleanse(s->sasl, sizeof(*s->sasl));
        free(s->sasl);
        s->sasl = NULL;
    }
}

/* IRCv3 sasl: registration completing while an exchange waits for the
 * client aborts it; one waiting for the database or the thread pool is
 * about to answer, and registration waits for it. */
bool
pc_sasl_hold_registration(struct pc_session *s)
{
    struct pc_sasl *a = s->sasl;

    if (a == NULL || a->state == ST_IDLE) {
        return false;
    }
    if (a->state == ST_BUSY) {
        return true;
    }
    sasl_reset(s);
    pc_sess_num(s, PC_ERR_SASLABORTED, ":SASL authentication aborted");
    return false;
}

/* Replies. */

static void
sasl_reset(struct pc_session *s)
{
    struct pc_sasl *a = s->sasl;
    if (a != NULL) {
        uint64_t gen = a->gen + 1;
        pc_buf_reset(&a->in);
        pc_buf_shrink(&a->in);
        memset(&a->scram, 0, sizeof(a->scram));
        a->state = ST_IDLE;
        a->mech = MECH_NONE;
        a->found = a->disabled = a->is_admin = false;
        a->account_id = 0;
        a->account[0] = '\0';
        a->gen = gen; /* late answers for the old exchange are dropped */
    }
}

/* Ends the exchange with 904 (and, for a login that may continue to a
 * registration, lets it go on). */
static void
sasl_fail(struct pc_session *s, const char *why)
{
    sasl_reset(s);
    pc_sess_num(s, PC_ERR_SASLFAIL, ":SASL authentication failed: %s", why);
    if (s->state == SESS_NEW) {
        pc_cmd_try_register(s);
    }
}

/* A failed attempt (wrong password, unknown account, no binding): counted
 * against the address and, when known, the account name. */
static void
sasl_fail_counted(struct pc_session *s, const char *account, const char *why)
{
    struct pc_sasl_ctx *x = s->chat->sasl;
    uint64_t now = pc_now_ms();
    pc_limit_fail(&x->fail_addr, s->host, now);
    if (account != NULL && account[0] != '\0') {
        char folded[PC_NICK_MAX + 1];
        size_t len = strlen(account);
        pc_irc_casefold(folded, account, len);
        pc_limit_fail(&x->fail_acct, folded, now);
    }
    pc_log(PC_LOG_NOTICE, "sasl",
           "login failed id=%" PRIu64 " peer=%s "
           "account=%s reason=%s",
           s->id, s->host, account ? account : "", why);
    sasl_fail(s, why);
}

/* True (and the exchange ended) if too many failures came from here or
 * for this account. */
static bool
rate_limited(struct pc_session *s, const char *account)
{
    struct pc_sasl_ctx *x = s->chat->sasl;
    char why[160];
    uint64_t now = pc_now_ms();
    unsigned wait = pc_limit_wait_s(&x->fail_addr, s->host, now);
    const char *what = "your address";

    if (wait == 0 && account != NULL) {
        char folded[PC_NICK_MAX + 1];
        size_t len = strlen(account);
        if (len <= PC_NICK_MAX) {
            pc_irc_casefold(folded, account, len);
            wait = pc_limit_wait_s(&x->fail_acct, folded, now);
            what = "this account";
        }
    }
    if (wait == 0) {
        return false;
    }
    (void)snprintf(why, sizeof(why),
                   "too many failed logins for %s, try "
                   "again in %u seconds",
                   what, wait);
    pc_log(PC_LOG_NOTICE, "sasl",
           "login refused id=%" PRIu64 " peer=%s "
           "reason=rate-limited",
           s->id, s->host);
    sasl_fail(s, why);
    return true;
}

/* Sends data to the client as AUTHENTICATE lines of base64, cut at 400
 * bytes (and an empty "+" after an exact multiple). */
static void
send_payload(struct pc_session *s, const char *data, size_t len)
{
    char b64[(PC_AUTH_MSG_MAX + 2) / 3 * 4 + 1];
    ssize_t n =
        pc_auth_b64_encode(b64, sizeof(b64), (const unsigned char *)data, len);
    if (n < 0) {
        sasl_fail(s, "internal error");
        return;
    }
    size_t off = 0;
    do {
        size_t chunk =
            (size_t)n - off > SASL_CHUNK ? SASL_CHUNK : (size_t)n - off;
        if (chunk == 0) {
            pc_sess_sendf(s, "AUTHENTICATE +");
        } else {
            pc_sess_sendf(s, "AUTHENTICATE %.*s", (int)chunk, b64 + off);
        }
        off += chunk;
        if (chunk < SASL_CHUNK) {
            break;
        }
    } while (true);
}

static bool name_ok(const struct pc_session *s, const char *name);

/* Login. */

static void
login(struct pc_session *s, int64_t id, const char *account, bool is_admin)
{
    struct pc_chat *c = s->chat;
    char folded[PC_NICK_MAX + 1];
    char mask[160];

    if (!name_ok(s, account)) {
        /* pchatctl refuses such names; a row written by hand may not. */
        pc_log(PC_LOG_WARN, "sasl",
               "account name is not a valid nick "
               "id=%" PRId64,
               id);
        sasl_fail(s, "the account name cannot be used as a nick");
        return;
    }
    pc_irc_casefold(folded, account, strlen(account));
    /* The nick is the account name. Someone not logged in who holds it on
     * this server is renamed; anyone else keeps it and the login fails. */
    struct pc_session *h = pc_map_get(&c->nicks, folded);
    if (h != NULL && h != s) {
        char guest[PC_NICK_MAX + 1];
        (void)snprintf(guest, sizeof(guest), "Guest%" PRIu64, h->id);
        if (h->member != 0 || h->account_id != 0
            || pc_cmd_set_nick(h, guest) < 0) {
            pc_sess_num(s, PC_ERR_NICKNAMEINUSE,
                        "%s :Nickname is already in "
                        "use: the account is logged in elsewhere",
                        account);
            sasl_fail(s, "the account is already connected");
            return;
        }
        pc_sess_std(h, "NOTE", "NICK", "ACCOUNT_NICK", account,
                    "That nick is an account name: its owner logged in");
    }
    if (pc_cmd_set_nick(s, account) < 0) {
        sasl_fail(s, "cannot take the account's nick");
        return;
    }
    s->account_id = id;
    (void)snprintf(s->account, sizeof(s->account), "%s", account);
    s->is_admin = is_admin;
    sasl_reset(s);
    pc_sess_num(s, PC_RPL_LOGGEDIN, "%s %s :You are now logged in as %s",
                pc_sess_mask(s, mask, sizeof(mask)), s->account, s->account);
    pc_sess_num(s, PC_RPL_SASLSUCCESS, ":SASL authentication successful");
    pc_log(PC_LOG_INFO, "sasl",
           "logged in id=%" PRIu64 " peer=%s account=%s "
           "admin=%d",
           s->id, s->host, s->account, s->is_admin);
    if (s->state == SESS_ACTIVE) {
        pc_account_notify(s);
        pc_pool_user(c, s);
    } else {
        pc_cmd_try_register(s);
    }
}

/* The thread pool: PLAIN derives keys, SCRAM checks the proof. */

struct job {
    uv_work_t req;
    struct pc_sasl_ctx *ctx;
    uint64_t sess_id;
    uint64_t gen;
    enum sasl_mech mech;
    struct pc_auth_keys keys;
    struct pc_auth_plain plain;
    struct pc_scram scram;
    char msg[PC_AUTH_MSG_MAX];
    size_t len;
    char out[PC_AUTH_MSG_MAX];
    ssize_t result; /* PLAIN: 1 ok, 0 not; SCRAM: length or error */
};

static void
job_work(uv_work_t *req)
{
    struct job *j = req->data;
    if (j->mech == MECH_PLAIN) {
        j->result =
            pc_auth_plain_check(&j->keys, j->plain.passwd, j->plain.passwd_len);
    } else {
        j->result = pc_scram_client_final(&j->scram, j->msg, j->len, j->out,
                                          sizeof(j->out));
    }
    pc_auth_thread_done();
}

static void
job_done(uv_work_t *req, int status)
{
    struct job *j = req->data;
    struct pc_sasl_ctx *x = j->ctx;
    struct pc_session *s = NULL;

    x->jobs--;
    if (x->chat == NULL) {
        if (x->jobs == 0) {
            ctx_free(x);
        }
        goto out;
    }
    s = pc_sess_by_id(x->chat, j->sess_id);
    if (s == NULL || s->sasl == NULL || s->sasl->gen != j->gen
        || s->sasl->state != ST_BUSY) {
        goto out;
    }
    struct pc_sasl *a = s->sasl;
    if (status < 0) {
        sasl_fail(s, "internal error");
        goto out;
    }
    if (j->mech == MECH_PLAIN) {
        if (j->result != 1 || !a->found) {
            sasl_fail_counted(s, j->plain.authcid, "invalid credentials");
        } else if (a->disabled) {
            sasl_fail(s, "the account is disabled");
        } else {
            login(s, a->account_id, a->account, a->is_admin);
        }
        goto out;
    }
    /* SCRAM */
    if (j->result == PC_EPROTO) {
        sasl_fail_counted(s, j->scram.user, "malformed SCRAM message");
    } else if (j->result < 0 || !a->found) {
        sasl_fail_counted(s, j->scram.user, "invalid credentials");
    } else if (a->disabled) {
        sasl_fail(s, "the account is disabled");
    } else {
        a->state = ST_SCRAM_ACK;
        send_payload(s, j->out, (size_t)j->result);
    }
out:
    OPENSSL_cleanse(j, sizeof(*j));
    free(j);
}

static struct job *
job_new(struct pc_session *s, enum sasl_mech mech)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->req.data = j;
        j->ctx = s->chat->sasl;
        j->sess_id = s->id;
        j->gen = s->sasl->gen;
        j->mech = mech;
    }
    return j;
}

static void
job_start(struct pc_session *s, struct job *j)
{
    s->sasl->state = ST_BUSY;
    if (uv_queue_work(s->chat->loop, &j->req, job_work, job_done) < 0) {
        free(j);
        sasl_fail(s, "internal error");
        return;
    }
    j->ctx->jobs++;
}

/* Keys for an account that does not exist (or has no password): stable
 * per name, so that asking twice shows the same salt, and never matching
 * any password. */
static void
fake_keys(struct pc_session *s, const char *name, struct pc_auth_keys *k)
{
    struct pc_sasl_ctx *x = s->chat->sasl;
    unsigned char mac[32];
    unsigned int len = sizeof(mac);
    char folded[PC_NICK_MAX + 1];
    size_t n = strlen(name);

    if (n > PC_NICK_MAX) {
        n = PC_NICK_MAX;
    }
    pc_irc_casefold(folded, name, n);
    (void)HMAC(EVP_sha256(), x->secret, sizeof(x->secret),
               (const unsigned char *)folded, n, mac, &len);
    memset(k, 0, sizeof(*k));
    k->iterations = s->chat->conf->auth_pbkdf2_iterations;
    k->salt_len = 16;
    memcpy(k->salt, mac, 16);
    (void)RAND_bytes(k->stored_key, sizeof(k->stored_key));
    (void)RAND_bytes(k->server_key, sizeof(k->server_key));
}

/* Reads an account row (stmts.c ACCOUNT_COLUMNS) into the exchange and
 * keys; false if the row has no usable SCRAM keys. */
static bool
read_account(struct pc_sasl *a, PGresult *res, struct pc_auth_keys *k)
{
    a->found = true;
    a->account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    (void)snprintf(a->account, sizeof(a->account), "%s", PQgetvalue(res, 0, 1));
    a->is_admin = PQgetvalue(res, 0, 2)[0] == 't';
    a->disabled = PQgetvalue(res, 0, 3)[0] == 't';
    if (k == NULL) {
        return true;
    }
    if (PQgetisnull(res, 0, 4)) {
        return false;
    }
    memset(k, 0, sizeof(*k));
    long iter = strtol(PQgetvalue(res, 0, 4), NULL, 10);
    const char *salt = PQgetvalue(res, 0, 5);
    const char *sk = PQgetvalue(res, 0, 6);
    const char *vk = PQgetvalue(res, 0, 7);
    ssize_t sl =
        pc_auth_hex_decode(k->salt, sizeof(k->salt), salt, strlen(salt));
    if (iter < 1 || iter > 10000000 || sl <= 0
        || pc_auth_hex_decode(k->stored_key, sizeof(k->stored_key), sk,
                              strlen(sk))
               != PC_AUTH_KEY_LEN
        || pc_auth_hex_decode(k->server_key, sizeof(k->server_key), vk,
                              strlen(vk))
               != PC_AUTH_KEY_LEN) {
        return false;
    }
    k->iterations = (uint32_t)iter;
    k->salt_len = (size_t)sl;
    return true;
}

/* SCRAM: server-first with the account's keys, or (keys NULL: no such
 * account, or one without a password) made-up ones, so that the answer
 * looks the same; the proof then fails. */
static void
scram_send_first(struct pc_session *s, const struct pc_auth_keys *keys)
{
    struct pc_sasl *a = s->sasl;
    struct pc_auth_keys fake;
    char nonce[32];
    char out[PC_AUTH_MSG_MAX];

    if (keys == NULL) {
        a->found = false;
        fake_keys(s, a->scram.user, &fake);
        keys = &fake;
    }
    ssize_t n =
        pc_auth_nonce(nonce, sizeof(nonce)) < 0
            ? PC_EPROTO
            : pc_scram_server_first(&a->scram, keys, nonce, out, sizeof(out));
    if (n < 0) {
        sasl_fail(s, "internal error");
        return;
    }
    a->state = ST_SCRAM_FINAL;
    send_payload(s, out, (size_t)n);
}

/* Database lookups. */

struct lookup {
    struct pc_chat *chat;
    uint64_t sess_id;
    uint64_t gen;
    struct pc_auth_plain plain; /* PLAIN: kept for the job */
};

static void
lookup_done(void *arg, int status, PGresult *res)
{
    struct lookup *l = arg;
    struct pc_session *s = pc_sess_by_id(l->chat, l->sess_id);
    struct pc_sasl *a = s != NULL ? s->sasl : NULL;

    if (a == NULL || a->gen != l->gen || a->state != ST_BUSY) {
        goto out;
    }
    if (status != 0) {
        pc_log(PC_LOG_WARN, "sasl", "account lookup failed id=%" PRIu64 ": %s",
               s->id, pc_strerror(status));
        sasl_fail(s, "the account store is unavailable, try again later");
        goto out;
    }
    bool row = PQntuples(res) == 1;
    struct pc_auth_keys keys;
    bool have_keys = false;
    if (row) {
        have_keys =
            read_account(a, res, a->mech == MECH_EXTERNAL ? NULL : &keys);
    }
    switch (a->mech) {
    case MECH_EXTERNAL:
        if (!row) {
            sasl_fail_counted(s, NULL,
                              "the certificate is not bound to an "
                              "account");
        } else if (l->plain.authzid[0] != '\0'
                   && pc_irc_casecmp(l->plain.authzid, a->account) != 0) {
            sasl_fail_counted(s, NULL,
                              "the certificate belongs to another "
                              "account");
        } else if (a->disabled) {
            sasl_fail(s, "the account is disabled");
        } else {
            login(s, a->account_id, a->account, a->is_admin);
        }
        break;
    case MECH_PLAIN: {
        struct job *j = job_new(s, MECH_PLAIN);
        if (j == NULL) {
            sasl_fail(s, "internal error");
            break;
        }
        j->plain = l->plain;
        if (have_keys) {
            j->keys = keys;
        } else {
            a->found = false; /* no password: PLAIN cannot succeed */
            fake_keys(s, l->plain.authcid, &j->keys);
        }
        job_start(s, j);
        break;
    }
    case MECH_SCRAM:
        scram_send_first(s, have_keys ? &keys : NULL);
        break;
    default:
        sasl_fail(s, "internal error");
        break;
    }
out:
    OPENSSL_cleanse(l, sizeof(*l));
    free(l);
}

static void
lookup_start(struct pc_session *s, enum pc_stmt stmt, const char *key,
             const struct pc_auth_plain *plain)
{
    struct pc_chat *c = s->chat;
    struct lookup *l = calloc(1, sizeof(*l));
    const char *params[1] = {key};

    if (l == NULL) {
        sasl_fail(s, "internal error");
        return;
    }
    l->chat = c;
    l->sess_id = s->id;
    l->gen = s->sasl->gen;
    if (plain != NULL) {
        l->plain = *plain;
    }
    s->sasl->state = ST_BUSY;
    if (pc_store_query(c->store, stmt, params, 1,
                       pc_now_ms() + c->conf->db_post_timeout_ms, lookup_done,
                       l)
        < 0) {
        free(l);
        sasl_fail(s, "the account store is unavailable, try again later");
    }
}

/* Mechanisms. */

static bool
name_ok(const struct pc_session *s, const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len <= s->chat->conf->nick_len
           && pc_irc_nick_valid(name, len, s->chat->conf->nick_len);
}

static void
on_plain(struct pc_session *s, const unsigned char *data, size_t len)
{
    struct pc_auth_plain p;
    char folded[PC_NICK_MAX + 1];

    if (pc_auth_plain_parse((const char *)data, len, &p) < 0) {
        sasl_fail_counted(s, NULL, "malformed PLAIN message");
        return;
    }
    if (p.authzid[0] != '\0' && pc_irc_casecmp(p.authzid, p.authcid) != 0) {
        OPENSSL_cleanse(&p, sizeof(p));
        sasl_fail(s, "logging in as another account is not supported");
        return;
    }
    if (!name_ok(s, p.authcid)) {
        OPENSSL_cleanse(&p, sizeof(p));
        sasl_fail_counted(s, NULL, "invalid credentials");
        return;
    }
    if (rate_limited(s, p.authcid)) {
        OPENSSL_cleanse(&p, sizeof(p));
        return;
    }
    pc_irc_casefold(folded, p.authcid, strlen(p.authcid));
    lookup_start(s, PC_STMT_ACCOUNT_BY_NAME, folded, &p);
    OPENSSL_cleanse(&p, sizeof(p));
}

static void
on_scram(struct pc_session *s, const unsigned char *data, size_t len)
{
    struct pc_sasl *a = s->sasl;
    char folded[PC_NICK_MAX + 1];

    if (a->state == ST_SCRAM_ACK) {
        if (len != 0) {
            sasl_fail(s, "unexpected data after server-final");
            return;
        }
        login(s, a->account_id, a->account, a->is_admin);
        return;
    }
    if (a->state == ST_SCRAM_FINAL) {
        struct job *j = job_new(s, MECH_SCRAM);
        if (j == NULL) {
            sasl_fail(s, "internal error");
            return;
        }
        if (len >= sizeof(j->msg)) {
            free(j);
            sasl_fail_counted(s, a->scram.user, "malformed SCRAM message");
            return;
        }
        memcpy(j->msg, data, len);
        j->len = len;
        j->scram = a->scram;
        job_start(s, j);
        return;
    }
    /* client-first */
    if (pc_scram_client_first(&a->scram, (const char *)data, len) < 0) {
        sasl_fail_counted(s, NULL, "malformed SCRAM message");
        return;
    }
    if (!name_ok(s, a->scram.user)) {
        /* No such account can exist: go on with made-up keys so the
         * answer looks like any other. */
        if (!rate_limited(s, NULL)) {
            scram_send_first(s, NULL);
        }
        return;
    }
    if (rate_limited(s, a->scram.user)) {
        return;
    }
    pc_irc_casefold(folded, a->scram.user, strlen(a->scram.user));
    lookup_start(s, PC_STMT_ACCOUNT_BY_NAME, folded, NULL);
}

static void
on_external(struct pc_session *s, const unsigned char *data, size_t len)
{
    struct pc_auth_plain authz;
    const char *fp = s->conn != NULL ? pc_conn_cert_fp(s->conn) : NULL;

    memset(&authz, 0, sizeof(authz));
    if (len >= sizeof(authz.authzid) || memchr(data, '\0', len) != NULL) {
        sasl_fail(s, "malformed EXTERNAL message");
        return;
    }
    memcpy(authz.authzid, data, len);
    if (fp == NULL) {
        sasl_fail(s, "no TLS client certificate");
        return;
    }
    lookup_start(s, PC_STMT_ACCOUNT_BY_CERT, fp, &authz);
}

static const struct {
    const char *name;
    enum sasl_mech mech;
} mechs[] = {
    {"PLAIN", MECH_PLAIN},
    {"SCRAM-SHA-256", MECH_SCRAM},
    {"EXTERNAL", MECH_EXTERNAL},
};

static void
start_mech(struct pc_session *s, struct pc_irc_str arg)
{
    enum sasl_mech mech = MECH_NONE;
    char name[32];

    pc_slice(name, sizeof(name), arg);
    for (char *p = name; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        if (arg.len < sizeof(name) && strcmp(name, mechs[i].name) == 0) {
            mech = mechs[i].mech;
        }
    }
    if (mech == MECH_NONE) {
        pc_sess_num(s, PC_RPL_SASLMECHS,
                    PC_SASL_MECHS " :are available SASL mechanisms");
        sasl_fail(s, "unknown mechanism");
        return;
    }
    if (rate_limited(s, NULL)) {
        return;
    }
    if (mech == MECH_EXTERNAL
        && (s->conn == NULL || pc_conn_cert_fp(s->conn) == NULL)) {
        sasl_fail(s, "no TLS client certificate");
        return;
    }
    if (s->sasl == NULL) {
        s->sasl = calloc(1, sizeof(*s->sasl));
        if (s->sasl == NULL) {
            pc_sess_num(s, PC_ERR_SASLFAIL,
                        ":SASL authentication failed: "
                        "out of memory");
            return;
        }
        pc_buf_init(&s->sasl->in, SASL_IN_MAX);
    }
    s->sasl->mech = mech;
    s->sasl->state = ST_DATA;
    pc_sess_sendf(s, "AUTHENTICATE +");
}

/* A whole client message arrived (decoded). */
static void
on_message(struct pc_session *s, const unsigned char *data, size_t len)
{
    switch (s->sasl->mech) {
    case MECH_PLAIN:
        on_plain(s, data, len);
        break;
    case MECH_SCRAM:
        on_scram(s, data, len);
        break;
    case MECH_EXTERNAL:
        on_external(s, data, len);
        break;
    default:
        sasl_fail(s, "internal error");
        break;
    }
}

void
pc_cmd_authenticate(struct pc_session *s, const struct pc_irc_msg *m)
{
    struct pc_irc_str arg = m->params[0];
    struct pc_sasl *a = s->sasl;

    if (arg.len == 1 && arg.p[0] == '*') {
        sasl_reset(s);
        pc_sess_num(s, PC_ERR_SASLABORTED, ":SASL authentication aborted");
        if (s->state == SESS_NEW) {
            pc_cmd_try_register(s);
        }
        return;
    }
    if (s->account_id != 0) {
        pc_sess_num(s, PC_ERR_SASLALREADY, ":You have already authenticated");
        return;
    }
    if (a == NULL || a->state == ST_IDLE) {
        start_mech(s, arg);
        return;
    }
    if (a->state == ST_BUSY) {
        sasl_fail(s, "data sent before the server answered");
        return;
    }
    if (arg.len > SASL_CHUNK) {
        sasl_reset(s);
        pc_sess_num(s, PC_ERR_SASLTOOLONG, ":SASL message too long");
        return;
    }
    if (arg.len == 0) {
        sasl_fail(s, "empty AUTHENTICATE line");
        return;
    }
    if (!(arg.len == 1 && arg.p[0] == '+')
        && pc_buf_append(&a->in, arg.p, arg.len) < 0) {
        sasl_reset(s);
        pc_sess_num(s, PC_ERR_SASLTOOLONG, ":SASL message too long");
        return;
    }
    if (arg.len == SASL_CHUNK) {
        return; /* more follows */
    }
    unsigned char raw[SASL_IN_MAX / 4 * 3];
    ssize_t n = pc_auth_b64_decode(raw, sizeof(raw), a->in.data, a->in.len);
    pc_buf_reset(&a->in);
    if (n < 0) {
        sasl_fail(s, "invalid base64");
        return;
    }
    on_message(s, raw, (size_t)n);
    OPENSSL_cleanse(raw, (size_t)n);
}

/* Accounts seen by others: extended-join, account-notify, account-tag. */

void
pc_room_send_join(struct pc_room *r, struct pc_session *s,
                  const struct pc_session *except)
{
    char mask[160];
    char plain[PC_IRC_BODY_MAX + 64];
    char ext[PC_IRC_BODY_MAX + 64];

    (void)pc_sess_mask(s, mask, sizeof(mask));
    int pn = snprintf(plain, sizeof(plain), ":%s JOIN %s\r\n", mask, r->name);
    int en = snprintf(ext, sizeof(ext), ":%s JOIN %s %s :%.200s\r\n", mask,
                      r->name, s->account[0] ? s->account : "*",
                      s->realname ? s->realname : "");
    if (pn <= 0 || (size_t)pn >= sizeof(plain) || en <= 0
        || (size_t)en >= sizeof(ext)) {
        return;
    }
    for (size_t i = 0; i < r->nmembers; i++) {
        struct pc_session *m = r->members[i];
        if (m == except) {
            continue;
        }
        if (m->caps & CAP_EXTENDED_JOIN) {
            pc_sess_send_raw(m, ext, (size_t)en);
        } else {
            pc_sess_send_raw(m, plain, (size_t)pn);
        }
    }
}

void
pc_account_notify(struct pc_session *s)
{
    char mask[160];
    char line[PC_IRC_BODY_MAX];
    int n = snprintf(line, sizeof(line), ":%s ACCOUNT %s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)),
                     s->account[0] ? s->account : "*");
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_sess_tell_peers_cap(s, line, (size_t)n, CAP_ACCOUNT_NOTIFY);
    }
}

void
pc_sess_account_tag(const struct pc_session *to, struct pc_irc_line *l,
                    const char *account, size_t len)
{
    if ((to->caps & CAP_ACCOUNT_TAG) && account != NULL && len > 0) {
        pc_irc_line_tag(l, "account", account, len);
    }
}
