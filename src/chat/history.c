#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "chat/internal.h"
#include "irc/numeric.h"
#include "util/err.h"
#include "util/log.h"

/* History: replay on JOIN for clients without draft/chathistory, and the
 * CHATHISTORY command. Both read the same rows (stmts.c MSG_COLUMNS) and
 * run asynchronously; their contexts hold the session id, not a pointer. */

#define SEQ_MAX "9223372036854775807"

enum hist_step {
    STEP_RESOLVE_A, /* turning the first reference into a seq */
    STEP_RESOLVE_B, /* the second (BETWEEN) */
    STEP_FETCH,     /* the rows */
    STEP_FETCH_AFTER /* AROUND: the newer half */
};

enum hist_kind {
    HIST_REPLAY,
    HIST_LATEST,
    HIST_BEFORE,
    HIST_AFTER,
    HIST_AROUND,
    HIST_BETWEEN,
};

struct hist_ref {
    bool star;
    bool is_time;
    uint64_t at_ms;
    char msgid[PC_MSGID_LEN + 1];
    int64_t seq; /* resolved */
};

struct hist_ctx {
    struct pc_chat *chat;
    uint64_t sess_id;
    int64_t room_id;
    char target[PC_CHAN_MAX + 1];
    char label[PC_LABEL_MAX + 1];
    enum hist_kind kind;
    enum hist_step step;
    struct hist_ref a, b;
    unsigned limit;
    PGresult *older; /* AROUND: the older half, kept for output */
};

static void hist_next(struct hist_ctx *h);

static void
hist_free(struct hist_ctx *h)
{
    if (h->older != NULL) {
        PQclear(h->older);
    }
    free(h);
}

/* Writes one stored message to s, inside batch `ref` if non-NULL. */
static void
hist_send_row(struct pc_session *s, const char *target, const char *ref,
              PGresult *res, int row)
{
    struct pc_irc_line l;
    uint64_t at_ms = strtoull(PQgetvalue(res, row, 2), NULL, 10);
    const char *msgid = PQgetvalue(res, row, 1);
    const char *tags = PQgetvalue(res, row, 7);
    const char *body = PQgetvalue(res, row, 6);

    pc_irc_line_init(&l);
    if (ref != NULL) {
        pc_irc_line_tag(&l, "batch", ref, strlen(ref));
    }
    pc_sess_tags(s, &l, at_ms, msgid);
    pc_sess_account_tag(s, &l, PQgetvalue(res, row, 5),
                        strlen(PQgetvalue(res, row, 5)));
    if ((s->caps & CAP_MESSAGE_TAGS) && tags[0] != '\0') {
        const char *p = tags;
        while (*p) {
            const char *semi = strchr(p, ';');
            const char *stop = semi ? semi : p + strlen(p);
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            struct pc_irc_str k = {p, (size_t)((eq ? eq : stop) - p)};
            struct pc_irc_str v = {eq ? eq + 1 : stop,
                                   eq ? (size_t)(stop - eq - 1) : 0};
            pc_irc_line_tag_raw(&l, k, v);
            p = semi ? semi + 1 : stop;
        }
    }
    pc_irc_line_source(&l, PQgetvalue(res, row, 4));
    pc_irc_line_cmd(&l, atoi(PQgetvalue(res, row, 3)) ? "NOTICE" : "PRIVMSG");
    pc_irc_line_param(&l, target, strlen(target));
    pc_irc_line_trailing(&l, body, strlen(body));
    pc_sess_send_line(s, &l);
}

/* Rows come newest first (BEFORE) or oldest first (AFTER); output is always
 * oldest first. */
static void
hist_send_rows(struct pc_session *s, const char *target, const char *ref,
               PGresult *res, bool newest_first)
{
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        hist_send_row(s, target, ref, res, newest_first ? n - 1 - i : i);
    }
}

static void
hist_output(struct hist_ctx *h, PGresult *res, bool newest_first)
{
    struct pc_session *s = pc_sess_by_id(h->chat, h->sess_id);
    char ref[32];
    bool batch;

    if (s == NULL) {
        return;
    }
    (void)snprintf(ref, sizeof(ref), "h%" PRIu64, ++h->chat->next_batch);
    pc_reply_begin(s, h->label);
    if (h->kind == HIST_REPLAY) {
        batch = false;
    } else {
        batch = (s->caps & CAP_BATCH) != 0;
    }
    if (batch) {
        pc_sess_sendf(s, "BATCH +%s chathistory %s", ref, h->target);
    }
    if (h->older != NULL) {
        hist_send_rows(s, h->target, batch ? ref : NULL, h->older, true);
    }
    hist_send_rows(s, h->target, batch ? ref : NULL, res, newest_first);
    if (batch) {
        pc_sess_sendf(s, "BATCH -%s", ref);
    }
    pc_reply_end(s);
}

static void
hist_fail(struct hist_ctx *h, const char *code, const char *text)
{
    struct pc_session *s = pc_sess_by_id(h->chat, h->sess_id);
    if (s != NULL && h->kind != HIST_REPLAY) {
        pc_reply_begin(s, h->label);
        pc_sess_std(s, "FAIL", "CHATHISTORY", code, h->target, text);
        pc_reply_end(s);
    }
    hist_free(h);
}

static void
hist_cb(void *arg, int status, PGresult *res)
{
    struct hist_ctx *h = arg;

    if (status != 0) {
        pc_log(PC_LOG_DEBUG, "history", "query failed: %s",
               pc_strerror(status));
        hist_fail(h, "MESSAGE_ERROR", "History is unavailable, try again");
        return;
    }
    switch (h->step) {
    case STEP_RESOLVE_A:
    case STEP_RESOLVE_B: {
        struct hist_ref *ref = h->step == STEP_RESOLVE_A ? &h->a : &h->b;
        if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
            hist_fail(h, "INVALID_MSGREFTYPE", "Unknown message reference");
            return;
        }
        ref->seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (ref->is_time && h->step == STEP_RESOLVE_A
            && (h->kind == HIST_AFTER || h->kind == HIST_LATEST)) {
            /* "after t": the first seq at t+1ms or later, minus one. */
            ref->seq -= 1;
        }
        h->step = h->step == STEP_RESOLVE_A ? STEP_RESOLVE_B : STEP_FETCH;
        hist_next(h);
        return;
    }
    case STEP_FETCH:
        if (h->kind == HIST_AROUND) {
            h->older = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
            h->step = STEP_FETCH_AFTER;
            hist_next(h);
            return;
        }
        hist_output(h, res, h->kind == HIST_REPLAY || h->kind == HIST_LATEST
                                || h->kind == HIST_BEFORE
                                || (h->kind == HIST_BETWEEN
                                    && h->a.seq > h->b.seq));
        break;
    case STEP_FETCH_AFTER:
        hist_output(h, res, false);
        break;
    }
    hist_free(h);
}

static void
hist_query(struct hist_ctx *h, enum pc_stmt stmt, int64_t x, int64_t y,
           unsigned limit)
{
    char room[24], sx[24], sy[24], lim[16];
    const char *params[4] = {room, sx, sy, lim};

    (void)snprintf(room, sizeof(room), "%" PRId64, h->room_id);
    (void)snprintf(sx, sizeof(sx), "%" PRId64, x);
    (void)snprintf(sy, sizeof(sy), "%" PRId64, y);
    (void)snprintf(lim, sizeof(lim), "%u", limit);
    if (pc_store_query(h->chat->store, stmt, params, 4,
                       pc_now_ms() + h->chat->conf->db_post_timeout_ms,
                       hist_cb, h) < 0) {
        hist_fail(h, "MESSAGE_ERROR", "History is unavailable");
    }
}

static void
hist_resolve(struct hist_ctx *h, struct hist_ref *ref)
{
    char room[24], at[24];
    const char *params[2] = {room, NULL};
    enum pc_stmt stmt;

    (void)snprintf(room, sizeof(room), "%" PRId64, h->room_id);
    if (ref->is_time) {
        bool after = h->step == STEP_RESOLVE_A
                     && (h->kind == HIST_AFTER || h->kind == HIST_LATEST);
        (void)snprintf(at, sizeof(at), "%" PRIu64,
                       ref->at_ms + (after ? 1 : 0));
        params[1] = at;
        stmt = PC_STMT_HIST_SEQ_AT;
    } else {
        params[1] = ref->msgid;
        stmt = PC_STMT_HIST_SEQ_OF;
    }
    if (pc_store_query(h->chat->store, stmt, params, 2,
                       pc_now_ms() + h->chat->conf->db_post_timeout_ms,
                       hist_cb, h) < 0) {
        hist_fail(h, "MESSAGE_ERROR", "History is unavailable");
    }
}

static void
hist_next(struct hist_ctx *h)
{
    if (h->step == STEP_RESOLVE_A) {
        if (!h->a.star) {
            hist_resolve(h, &h->a);
            return;
        }
        h->step = STEP_RESOLVE_B;
    }
    if (h->step == STEP_RESOLVE_B) {
        if (h->kind == HIST_BETWEEN && !h->b.star) {
            hist_resolve(h, &h->b);
            return;
        }
        h->step = STEP_FETCH;
    }
    const int64_t top = INT64_MAX;
    switch (h->kind) {
    case HIST_REPLAY:
        hist_query(h, PC_STMT_HIST_BEFORE, h->a.seq + 1, 0, h->limit);
        break;
    case HIST_LATEST:
        hist_query(h, PC_STMT_HIST_BEFORE, top, h->a.star ? 0 : h->a.seq,
                   h->limit);
        break;
    case HIST_BEFORE:
        hist_query(h, PC_STMT_HIST_BEFORE, h->a.seq, 0, h->limit);
        break;
    case HIST_AFTER:
        hist_query(h, PC_STMT_HIST_AFTER, h->a.seq, top, h->limit);
        break;
    case HIST_AROUND:
        if (h->step == STEP_FETCH) {
            hist_query(h, PC_STMT_HIST_BEFORE, h->a.seq, 0, h->limit / 2);
        } else {
            hist_query(h, PC_STMT_HIST_AFTER, h->a.seq - 1, top,
                       h->limit - h->limit / 2);
        }
        break;
    case HIST_BETWEEN:
        if (h->a.seq <= h->b.seq) {
            hist_query(h, PC_STMT_HIST_AFTER, h->a.seq, h->b.seq, h->limit);
        } else {
            hist_query(h, PC_STMT_HIST_BEFORE, h->a.seq, h->b.seq, h->limit);
        }
        break;
    }
}

void
pc_history_replay(struct pc_session *s, struct pc_room *r)
{
    unsigned n = s->chat->conf->history_replay;
    if (n == 0 || r->last_seq == 0) {
        return;
    }
    struct hist_ctx *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return;
    }
    h->chat = s->chat;
    h->sess_id = s->id;
    h->room_id = r->id;
    (void)snprintf(h->target, sizeof(h->target), "%s", r->name);
    h->kind = HIST_REPLAY;
    h->step = STEP_FETCH;
    h->a.seq = r->last_seq; /* what was delivered before this JOIN */
    h->limit = n;
    hist_next(h);
}

static int
parse_ref(struct pc_irc_str p, struct hist_ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    if (p.len == 1 && p.p[0] == '*') {
        ref->star = true;
        return 0;
    }
    if (p.len > 6 && memcmp(p.p, "msgid=", 6) == 0) {
        if (!pc_msgid_valid(p.p + 6, p.len - 6)) {
            return -1;
        }
        memcpy(ref->msgid, p.p + 6, PC_MSGID_LEN);
        ref->msgid[PC_MSGID_LEN] = '\0';
        return 0;
    }
    if (p.len > 10 && memcmp(p.p, "timestamp=", 10) == 0) {
        ref->is_time = true;
        return pc_time_parse(p.p + 10, p.len - 10, &ref->at_ms) == 0 ? 0 : -1;
    }
    return -1;
}

static void
targets_cb(void *arg, int status, PGresult *res)
{
    struct hist_ctx *h = arg;
    struct pc_session *s = pc_sess_by_id(h->chat, h->sess_id);

    if (status != 0) {
        hist_fail(h, "MESSAGE_ERROR", "History is unavailable, try again");
        return;
    }
    if (s != NULL) {
        char ref[32];
        bool batch = (s->caps & CAP_BATCH) != 0;
        (void)snprintf(ref, sizeof(ref), "t%" PRIu64, ++h->chat->next_batch);
        pc_reply_begin(s, h->label);
        if (batch) {
            pc_sess_sendf(s, "BATCH +%s draft/chathistory-targets", ref);
        }
        for (int i = 0; i < PQntuples(res); i++) {
            struct pc_room *r = pc_room_find(h->chat, PQgetvalue(res, i, 0));
            char when[32];
            struct pc_rights rt;
            if (r == NULL || !pc_sess_in_room(s, r, NULL)) {
                continue;
            }
            pc_acl_rights(h->chat, s, r, &rt);
            if (!rt.history) {
                continue;
            }
            pc_time_format(strtoull(PQgetvalue(res, i, 1), NULL, 10), when);
            char ts[48];
            struct pc_irc_line l;
            (void)snprintf(ts, sizeof(ts), "timestamp=%s", when);
            pc_irc_line_init(&l);
            if (batch) {
                pc_irc_line_tag(&l, "batch", ref, strlen(ref));
            }
            pc_irc_line_source(&l, pc_server_name(h->chat));
            pc_irc_line_cmd(&l, "CHATHISTORY");
            pc_irc_line_param(&l, "TARGETS", 7);
            pc_irc_line_param(&l, r->name, strlen(r->name));
            pc_irc_line_param(&l, ts, strlen(ts));
            pc_sess_send_line(s, &l);
        }
        if (batch) {
            pc_sess_sendf(s, "BATCH -%s", ref);
        }
        pc_reply_end(s);
    }
    hist_free(h);
}

int
pc_cmd_chathistory(struct pc_session *s, const struct pc_irc_msg *m)
{
    static const struct {
        const char *name;
        enum hist_kind kind;
        size_t nrefs;
    } subs[] = {
        {"LATEST", HIST_LATEST, 1}, {"BEFORE", HIST_BEFORE, 1},
        {"AFTER", HIST_AFTER, 1},   {"AROUND", HIST_AROUND, 1},
        {"BETWEEN", HIST_BETWEEN, 2},
    };
    struct pc_chat *c = s->chat;
    char sub[16], target[PC_CHAN_MAX + 1];
    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    struct hist_ctx *h;

    pc_slice(sub, sizeof(sub), m->params[0]);
    for (char *p = sub; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    pc_slice(target, sizeof(target), m->params[1]);
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return 0;
    }
    h->chat = c;
    h->sess_id = s->id;
    (void)snprintf(h->target, sizeof(h->target), "%s", target);
    if (lt != NULL) {
        pc_slice(h->label, sizeof(h->label), lt->value);
    }

    if (strcmp(sub, "TARGETS") == 0) {
        struct hist_ref a, b;
        char from[24], to[24], lim[16];
        unsigned limit;
        if (m->nparams < 4 || parse_ref(m->params[1], &a) < 0 || !a.is_time
            || parse_ref(m->params[2], &b) < 0 || !b.is_time) {
            pc_sess_std(s, "FAIL", "CHATHISTORY", "INVALID_PARAMS", "TARGETS",
                        "TARGETS needs two timestamps and a limit");
            hist_free(h);
            return 0;
        }
        limit = (unsigned)strtoul(m->params[3].p, NULL, 10);
        if (limit == 0 || limit > c->conf->history_max) {
            limit = c->conf->history_max;
        }
        uint64_t lo = a.at_ms < b.at_ms ? a.at_ms : b.at_ms;
        uint64_t hi = a.at_ms < b.at_ms ? b.at_ms : a.at_ms;
        (void)snprintf(from, sizeof(from), "%" PRIu64, lo);
        (void)snprintf(to, sizeof(to), "%" PRIu64, hi);
        (void)snprintf(lim, sizeof(lim), "%u", limit);
        const char *params[3] = {from, to, lim};
        if (pc_store_query(c->store, PC_STMT_HIST_TARGETS, params, 3,
                           pc_now_ms() + c->conf->db_post_timeout_ms,
                           targets_cb, h) < 0) {
            hist_fail(h, "MESSAGE_ERROR", "History is unavailable");
        }
        return 0;
    }

    size_t i;
    for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(sub, subs[i].name) == 0) {
            break;
        }
    }
    if (i == sizeof(subs) / sizeof(subs[0])) {
        pc_sess_std(s, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub,
                    "Unknown subcommand");
        hist_free(h);
        return 0;
    }
    h->kind = subs[i].kind;
    size_t need = 2 + subs[i].nrefs + 1;
    if (m->nparams < need || parse_ref(m->params[2], &h->a) < 0
        || (subs[i].nrefs == 2 && parse_ref(m->params[3], &h->b) < 0)
        || (h->a.star && h->kind != HIST_LATEST)
        || (subs[i].nrefs == 2 && h->b.star)) {
        pc_sess_std(s, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub,
                    "Invalid message reference or missing limit");
        hist_free(h);
        return 0;
    }
    struct pc_irc_str lim = m->params[need - 1];
    char limbuf[16];
    pc_slice(limbuf, sizeof(limbuf), lim);
    h->limit = (unsigned)strtoul(limbuf, NULL, 10);
    if (h->limit == 0 || h->limit > c->conf->history_max) {
        h->limit = c->conf->history_max;
    }

    struct pc_room *r = pc_room_find(c, target);
    struct pc_rights rt = {0};
    if (r != NULL && r->loaded) {
        pc_acl_rights(c, s, r, &rt);
    }
    /* History is readable exactly by those who may join (the room model);
     * a room's own +i, +s or key also keeps out those not in it. */
    bool allowed = r != NULL && r->loaded && rt.history
                   && (pc_sess_in_room(s, r, NULL) || rt.member || rt.manage
                       || (!(r->modes & (MODE_SECRET | MODE_INVITE))
                           && r->key == NULL));
    if (!allowed) {
        /* A room one may not read looks the same as a missing one. */
        pc_sess_std(s, "FAIL", "CHATHISTORY", "INVALID_TARGET", target,
                    "No such channel or no access to its history");
        hist_free(h);
        return 0;
    }
    h->room_id = r->id;
    (void)snprintf(h->target, sizeof(h->target), "%s", r->name);
    h->step = STEP_RESOLVE_A;
    hist_next(h);
    return 0;
}
