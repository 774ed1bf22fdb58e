#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "chat/internal.h"
#include "chat/wire.h"
#include "irc/numeric.h"
#include "util/err.h"
#include "util/log.h"

/* The durable post pipeline.
 *
 * Posts queue here; while fewer than POST_MAX_IN_FLIGHT batches are at the
 * database, the queue goes out as one call of pchat_post() (one transaction:
 * group commit). Only when its commit is confirmed is a post published on
 * the pool bus, and every node, this one included, delivers it to its
 * members in seq order; the author's echo is that delivery. */

#define POST_MAX_IN_FLIGHT 2

struct post_batch {
    struct pc_chat *chat;
    struct pc_post *posts; /* in the order sent */
    size_t count;
    uint64_t sent_ms;
};

void
pc_post_free(struct pc_post *p)
{
    free(p->source);
    free(p->account);
    free(p->body);
    free(p->tags);
    free(p);
}

/* PostgreSQL array literal: {"a","b",NULL} with " and \ escaped. */
static int
array_add(struct pc_buf *b, const char *v, bool first)
{
    int rc = pc_buf_append(b, first ? "" : ",", first ? 0 : 1);
    if (rc < 0) {
        return rc;
    }
    if (v == NULL) {
        return pc_buf_append_str(b, "NULL");
    }
    rc = pc_buf_append(b, "\"", 1);
    for (const char *p = v; *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\') {
            rc = pc_buf_append(b, "\\", 1);
        }
        if (rc == 0) {
            rc = pc_buf_append(b, p, 1);
        }
    }
    return rc == 0 ? pc_buf_append(b, "\"", 1) : rc;
}

static void post_batch_done(void *arg, int status, PGresult *res);

static void
post_fail(struct pc_chat *c, struct pc_post *p, const char *code,
          const char *text)
{
    struct pc_session *s = pc_sess_by_id(c, p->sess_id);
    if (s != NULL) {
        pc_reply_begin(s, p->label);
        pc_sess_std(s, "FAIL", p->kind ? "NOTICE" : "PRIVMSG", code,
                    p->target, text);
        pc_reply_end(s);
    }
    pc_post_free(p);
}

/* Closes every session once no post is pending, then reports the end of
 * the drain. */
static void
post_drain_check(struct pc_chat *c)
{
    size_t pos = 0;
    struct pc_session *s;

    if (!c->shutting_down || c->posts != NULL || c->batches_in_flight > 0) {
        return;
    }
    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        if (s->state != SESS_CLOSING) {
            pc_sess_error_close(s, "Server shutting down");
        }
    }
    if (c->nsessions == 0 && c->shutdown_done != NULL) {
        void (*done)(void *) = c->shutdown_done;
        c->shutdown_done = NULL;
        done(c->shutdown_arg);
    }
}

/* Sends b's posts as one call of pchat_post(). A retry (posts whose
 * outcome is unknown) has no deadline and goes ahead of every query not
 * sent yet. Returns 0, or a negative code (b is untouched). */
static int
post_batch_send(struct pc_chat *c, struct post_batch *b, uint64_t deadline,
                bool retry)
{
    struct pc_buf cols[8];
    const char *params[8];
    int rc = 0;

    for (int i = 0; i < 8; i++) {
        pc_buf_init(&cols[i], 64 * 1024 * 1024);
        rc = rc ? rc : pc_buf_append(&cols[i], "{", 1);
    }
    bool first = true;
    for (struct pc_post *p = b->posts; p != NULL && rc == 0; p = p->next) {
        char room[24], at[24], kind[4];
        (void)snprintf(room, sizeof(room), "%" PRId64, p->room_id);
        (void)snprintf(at, sizeof(at), "%" PRIu64, p->at_ms);
        (void)snprintf(kind, sizeof(kind), "%d", p->kind);
        rc = array_add(&cols[0], p->msgid, first);
        rc = rc ? rc : array_add(&cols[1], room, first);
        rc = rc ? rc : array_add(&cols[2], at, first);
        rc = rc ? rc : array_add(&cols[3], kind, first);
        rc = rc ? rc : array_add(&cols[4], p->source, first);
        rc = rc ? rc : array_add(&cols[5], p->account, first);
        rc = rc ? rc : array_add(&cols[6], p->body, first);
        rc = rc ? rc : array_add(&cols[7], p->tags, first);
        first = false;
    }
    for (int i = 0; i < 8; i++) {
        rc = rc ? rc : pc_buf_append(&cols[i], "}", 2); /* with NUL */
        params[i] = cols[i].data;
    }
    if (rc == 0) {
        rc = retry ? pc_store_query_retry(c->store, PC_STMT_POST, params, 8,
                                          post_batch_done, b)
                   : pc_store_query(c->store, PC_STMT_POST, params, 8,
                                    deadline, post_batch_done, b);
    }
    for (int i = 0; i < 8; i++) {
        pc_buf_free(&cols[i]);
    }
    if (rc == 0) {
        b->sent_ms = pc_now_ms();
    }
    return rc;
}

static void
post_send_batch(struct pc_chat *c)
{
    struct post_batch *b;
    uint64_t deadline = 0;
    bool retry;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->chat = c;
    /* Posts with an unknown outcome go in batches of their own without a
     * deadline: they must be resolved, never refused. */
    retry = c->posts->deadline_ms == 0;
    struct pc_post **tail = &b->posts;
    while (c->posts != NULL && b->count < c->conf->db_max_batch
           && (c->posts->deadline_ms == 0) == retry) {
        struct pc_post *p = c->posts;
        c->posts = p->next;
        c->nposts--;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
        b->count++;
        if (!retry && (deadline == 0 || p->deadline_ms < deadline)) {
            deadline = p->deadline_ms;
        }
    }
    if (c->posts == NULL) {
        c->posts_tail = &c->posts;
    }
    if (post_batch_send(c, b, deadline, retry) < 0) {
        while (b->posts != NULL) {
            struct pc_post *p = b->posts;
            b->posts = p->next;
            post_fail(c, p, "TEMPORARILY_UNAVAILABLE",
                      "Message could not be stored, try again later");
        }
        free(b);
        return;
    }
    c->batches_in_flight++;
}

/* Refuses the posts still queued here past their deadline: while the
 * batches at the database are stuck (a COMMIT waiting for a missing mirror,
 * writes held, outcomes being resolved), nothing else would. Posts with an
 * unknown outcome (deadline 0) stay. Called on each kick and each second
 * from the sweep.
 *
 * The queue is in submission order (requeued posts go back to the head,
 * ahead of the later ones), so deadlines only grow along it: the walk stops
 * at the first one still to come. Walking the whole queue on every kick
 * (one per post) cost 69% of pchatd's CPU at 20,000 posts/s with 4,000
 * queued. (Two batches requeued in the opposite order, or a shorter
 * post_timeout_ms after a reload, only make a post expire as late as the
 * ones ahead of it.) */
static void
post_expire(struct pc_chat *c)
{
    uint64_t now = pc_now_ms();
    struct pc_post **pp = &c->posts;

    while (*pp != NULL) {
        struct pc_post *p = *pp;
        if (p->deadline_ms == 0) {
            pp = &p->next;
            continue;
        }
        if (p->deadline_ms > now) {
            return; /* and so are the rest: the tail stays */
        }
        *pp = p->next;
        c->nposts--;
        post_fail(c, p, "TEMPORARILY_UNAVAILABLE",
                  "The message store is unavailable, message not sent");
    }
    c->posts_tail = pp;
}

void
pc_post_kick(struct pc_chat *c)
{
    post_expire(c);
    while (c->posts != NULL && c->batches_in_flight < POST_MAX_IN_FLIGHT) {
        post_send_batch(c);
    }
    post_drain_check(c);
}

/* With nothing at the database a post goes at once: when posts are sparse
 * that is the lowest latency. With a batch there already, the posts that
 * arrive in this loop pass go together at its end (pc_chat_end_of_pass):
 * sent one by one, the first post of each pass took the free slot alone,
 * and a transaction (a commit, an fsync) per post halved the rate when 200
 * clients each waited for their echo (2-chat.sh --rates 0 --window 1). */
void
pc_post_submit(struct pc_chat *c, struct pc_post *p)
{
    p->next = NULL;
    *c->posts_tail = p;
    c->posts_tail = &p->next;
    c->nposts++;
    if (c->batches_in_flight == 0) {
        pc_post_kick(c);
    }
}

void
pc_chat_end_of_pass(struct pc_chat *c)
{
    if (c->posts != NULL) {
        pc_post_kick(c);
    }
}

/* Puts posts back at the head of the queue, in order, for a retry. */
static void
post_requeue(struct pc_chat *c, struct pc_post *list)
{
    struct pc_post *last = list;
    if (list == NULL) {
        return;
    }
    for (struct pc_post *p = list; p != NULL; p = p->next) {
        last = p;
        c->nposts++;
    }
    last->next = c->posts;
    if (c->posts == NULL) {
        c->posts_tail = &last->next;
    }
    c->posts = list;
}

static void
post_publish(struct pc_chat *c, const struct pc_post *p, int64_t seq)
{
    struct pc_buf *b = &c->room_wire;
    int rc;

    pc_buf_reset(b);
    rc = pc_wire_u8(b, WIRE_ROOM_MSG);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)p->room_id);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)seq);
    rc = rc ? rc : pc_wire_u64(b, p->at_ms);
    rc = rc ? rc : pc_wire_u64(b, p->sess_id);
    rc = rc ? rc : pc_wire_u8(b, p->kind ? 1 : 0);
    rc = rc ? rc : pc_wire_str(b, p->msgid);
    rc = rc ? rc : pc_wire_str(b, p->target);
    rc = rc ? rc : pc_wire_str(b, p->source);
    rc = rc ? rc : pc_wire_str(b, p->account);
    rc = rc ? rc : pc_wire_str(b, p->body);
    rc = rc ? rc : pc_wire_str(b, p->tags);
    rc = rc ? rc : pc_wire_str(b, p->label);
    if (rc == 0) {
        rc = pc_bus_publish(c->bus, b->data, b->len);
    }
    if (rc < 0) {
        pc_log(PC_LOG_ERR, "post", "publishing stored message failed: %s "
               "msgid=%s", pc_strerror(rc), p->msgid);
    }
    /* In a pool, this node's own members need not wait for the message to
     * come back through Corosync: the commit gave its seq, and the reorder
     * buffer keeps it behind any earlier seq of the room still on its way
     * from another member. The copy from the bus is then a duplicate and
     * is dropped by seq. (Encoded in room_wire, not scratch: delivery may
     * publish a QUIT through scratch.) */
    if (rc == 0 && c->pooled) {
        pc_deliver_room_wire(c, pc_bus_node_id(c->bus),
                             (const unsigned char *)b->data, b->len, true);
    }
}

static void
post_batch_done(void *arg, int status, PGresult *res)
{
    struct post_batch *b = arg;
    struct pc_chat *c = b->chat;
    struct pc_post *list = b->posts;

    pc_log(PC_LOG_TRACE, "post", "batch done status=%d posts=%zu ms=%" PRIu64,
           status, b->count, pc_now_ms() - b->sent_ms);
    if (status == PC_EUNKNOWN) {
        /* Maybe committed: the same batch again, same msgids, until we
         * know; at once and ahead of the batches not sent yet, which hold
         * later posts (of the same authors, maybe): were it stored after
         * them, its posts would take later seqs. */
        for (struct pc_post *p = list; p != NULL; p = p->next) {
            p->deadline_ms = 0;
        }
        if (post_batch_send(c, b, 0, true) == 0) {
            return;
        }
    }
    c->batches_in_flight--;
    free(b);

    if (status == PC_EUNKNOWN) {
        /* Not even queued (the store is closing): at the head of ours. */
        post_requeue(c, list);
    } else if (status == PC_EDB) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool transient = state != NULL && (strncmp(state, "40", 2) == 0
                                           || strncmp(state, "23505", 5) == 0);
        pc_log(PC_LOG_WARN, "post", "batch failed sqlstate=%s: %s",
               state ? state : "?", PQresultErrorMessage(res));
        if (transient) {
            post_requeue(c, list);
        } else {
            while (list != NULL) {
                struct pc_post *p = list;
                list = p->next;
                post_fail(c, p, "MESSAGE_REJECTED",
                          "Message could not be stored");
            }
        }
    } else if (status != 0) {
        /* Never sent (deadline or shutdown): not stored, safe to refuse. */
        while (list != NULL) {
            struct pc_post *p = list;
            list = p->next;
            post_fail(c, p, "TEMPORARILY_UNAVAILABLE",
                      "The message store is unavailable, message not sent");
        }
    } else {
        int n = PQntuples(res);
        int i = 0;
        while (list != NULL) {
            struct pc_post *p = list;
            list = p->next;
            if (i < n && !PQgetisnull(res, i, 2)) {
                post_publish(c, p, strtoll(PQgetvalue(res, i, 2), NULL, 10));
                pc_post_free(p);
            } else {
                post_fail(c, p, "TARGET_GONE", "The room no longer exists");
            }
            i++;
        }
    }
    pc_post_kick(c);
}

/* Delivery, on every node, in bus order. */

struct room_msg {
    int64_t room_id;
    int64_t seq;
    uint64_t at_ms;
    uint64_t sess_id;
    int kind;
    struct pc_irc_str msgid, target, source, account, body, tags, label;
};

/* Builds the line a recipient sees; variants differ only by caps. */
static size_t
room_msg_line(const struct room_msg *m, const struct pc_session *s,
              const char *label, struct pc_irc_line *l)
{
    char msgid[PC_MSGID_LEN + 1];
    char target[PC_CHAN_MAX + 1];

    pc_slice(msgid, sizeof(msgid), m->msgid);
    pc_slice(target, sizeof(target), m->target);
    pc_irc_line_init(l);
    if (label != NULL && label[0] != '\0') {
        pc_irc_line_tag(l, "label", label, strlen(label));
    }
    pc_sess_tags(s, l, m->at_ms, msgid);
    pc_sess_account_tag(s, l, m->account.p, m->account.len);
    pc_line_client_tags(s, l, m->tags.p, m->tags.len);
    char source[PC_IRC_BODY_MAX];
    pc_slice(source, sizeof(source), m->source);
    pc_irc_line_source(l, source);
    pc_irc_line_cmd(l, m->kind ? "NOTICE" : "PRIVMSG");
    pc_irc_line_param(l, target, strlen(target));
    pc_irc_line_trailing(l, m->body.p, m->body.len);
    ssize_t n = pc_irc_line_end(l);
    return n > 0 ? (size_t)n : 0;
}

/* The author's answer to its post: the echo (echo-message), else an ACK
 * for a labeled post. */
static void
answer_author(struct pc_session *author, const struct room_msg *m)
{
    char label[PC_LABEL_MAX + 1];
    struct pc_irc_line l;

    pc_slice(label, sizeof(label), m->label);
    if (author->caps & CAP_ECHO_MESSAGE) {
        size_t n = room_msg_line(m, author,
                                 (author->caps & CAP_LABELED_RESPONSE) ? label
                                                                       : NULL,
                                 &l);
        if (n > 0) {
            pc_sess_send_raw(author, l.buf, n);
        }
    } else if (label[0] != '\0') {
        pc_reply_begin(author, label);
        pc_reply_end(author); /* ACK */
    }
}

/* confirm: this is the commit's confirmation on the author's node (not a
 * copy of it from the bus). */
static void
deliver_room_msg(struct pc_chat *c, uint64_t from, const struct room_msg *m,
                 bool confirm)
{
    char key[24];
    struct pc_room *r;
    struct pc_session *author = NULL;
    /* One serialised line per combination of the caps that change it. */
    struct pc_irc_line *variants[8] = {NULL};
    size_t lens[8] = {0};
    struct pc_irc_line lines[8];

    (void)snprintf(key, sizeof(key), "%" PRId64, m->room_id);
    r = pc_map_get(&c->rooms_by_id, key);
    if (r == NULL) {
        return;
    }
    if (from == pc_bus_node_id(c->bus)) {
        author = pc_sess_by_id(c, m->sess_id);
    }
    if (m->seq <= r->last_seq) {
        /* Already delivered. A post whose commit was confirmed only by its
         * retry (the connection was lost before the answer) may have
         * reached the room meanwhile, read back by a gap fill: its author
         * still waits for its answer. */
        if (confirm && author != NULL) {
            pc_log(PC_LOG_INFO, "post", "confirmed after its delivery "
                   "room=%s seq=%" PRId64 " last=%" PRId64, r->name, m->seq,
                   r->last_seq);
            answer_author(author, m);
        }
        return;
    }
    r->last_seq = m->seq;

    for (size_t i = 0; i < r->nmembers; i++) {
        struct pc_session *s = r->members[i];
        if (s == author || s->state != SESS_ACTIVE) {
            continue;
        }
        unsigned v = ((s->caps & CAP_SERVER_TIME) ? 1u : 0u)
                     | ((s->caps & CAP_MESSAGE_TAGS) ? 2u : 0u)
                     | ((s->caps & CAP_ACCOUNT_TAG) ? 4u : 0u);
        if (variants[v] == NULL) {
            variants[v] = &lines[v];
            lens[v] = room_msg_line(m, s, NULL, variants[v]);
        }
        if (lens[v] > 0) {
            pc_sess_send_raw(s, variants[v]->buf, lens[v]);
        }
    }
    if (author != NULL) {
        answer_author(author, m);
    }
}

void
pc_deliver_room_row(struct pc_chat *c, struct pc_room *r, void *pgres, int row)
{
    PGresult *res = pgres;
    struct room_msg m;
    struct pc_irc_str empty = {"", 0};

    m.room_id = r->id;
    m.seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    m.at_ms = strtoull(PQgetvalue(res, row, 2), NULL, 10);
    m.sess_id = 0;
    m.kind = atoi(PQgetvalue(res, row, 3)) ? 1 : 0;
    m.msgid.p = PQgetvalue(res, row, 1);
    m.msgid.len = strlen(m.msgid.p);
    m.target.p = r->name;
    m.target.len = strlen(r->name);
    m.source.p = PQgetvalue(res, row, 4);
    m.source.len = strlen(m.source.p);
    m.account.p = PQgetvalue(res, row, 5);
    m.account.len = strlen(m.account.p);
    m.body.p = PQgetvalue(res, row, 6);
    m.body.len = strlen(m.body.p);
    m.tags.p = PQgetvalue(res, row, 7);
    m.tags.len = strlen(m.tags.p);
    m.label = empty;
    deliver_room_msg(c, 0, &m, false);
}

/* Decodes a room message and delivers it, or holds it if an earlier seq
 * of its room has not arrived yet: in a pool, where two members commit to
 * one room, and on a single server after the database connection was
 * lost, when the retry of a post whose outcome was unknown may be answered
 * after a later post (delivering the later one first would drop the
 * earlier as already delivered). confirm: see deliver_room_msg(). */
void
pc_deliver_room_wire(struct pc_chat *c, uint64_t from,
                     const unsigned char *data, size_t len, bool confirm)
{
    struct pc_wire_reader r = {data + 1, len - 1, false};
    struct room_msg m;

    m.room_id = (int64_t)pc_wire_rd_u64(&r);
    m.seq = (int64_t)pc_wire_rd_u64(&r);
    m.at_ms = pc_wire_rd_u64(&r);
    m.sess_id = pc_wire_rd_u64(&r);
    m.kind = pc_wire_rd_u8(&r) ? 1 : 0;
    m.msgid = pc_wire_rd_str(&r);
    m.target = pc_wire_rd_str(&r);
    m.source = pc_wire_rd_str(&r);
    m.account = pc_wire_rd_str(&r);
    m.body = pc_wire_rd_str(&r);
    m.tags = pc_wire_rd_str(&r);
    m.label = pc_wire_rd_str(&r);
    if (r.bad || r.left != 0) {
        pc_log(PC_LOG_WARN, "pool", "ignored malformed room message "
               "from=%" PRIx64 " len=%zu", from, len);
        return;
    }
    char key[24];
    (void)snprintf(key, sizeof(key), "%" PRId64, m.room_id);
    struct pc_room *room = pc_map_get(&c->rooms_by_id, key);
    /* last_seq 0 is known too: an empty room, whose first message is 1. */
    if (room != NULL && m.seq > room->last_seq + 1) {
        pc_pool_hold(c, room, m.seq, from, data, len);
        return;
    }
    deliver_room_msg(c, from, &m, confirm);
    if (room != NULL) {
        pc_pool_release(c, room);
    }
}

void
pc_chat_deliver(void *arg, uint64_t from, const void *data, size_t len)
{
    struct pc_chat *c = arg;
    const unsigned char *p = data;

    if (len >= 1 && p[0] == WIRE_ROOM_MSG) {
        /* On a single server the bus's copy is the only one: it is the
         * confirmation; in a pool, post_publish() delivered it already. */
        pc_deliver_room_wire(c, from, p, len,
                             !c->pooled && from == pc_bus_node_id(c->bus));
        return;
    }
    if (len < 1 || !pc_pool_deliver(c, from, p, len)) {
        pc_log(PC_LOG_WARN, "pool", "ignored pool message of unknown type "
               "from=%" PRIx64 " len=%zu", from, len);
    }
}
