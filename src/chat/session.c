#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/internal.h"
#include "irc/numeric.h"
#include "util/err.h"
#include "util/log.h"

/* Input held for a throttled client before it is cut off: a client may
 * queue this much before the kernel's buffers push back on it. */
#define SESS_INBUF_MAX (64 * 1024 + PC_IRC_LINE_MAX)
/* How often throttled sessions get their turn as flood tokens come back. */
#define SESS_THROTTLE_TICK_MS 100

char *
pc_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void
pc_slice(char *dst, size_t cap, struct pc_irc_str src)
{
    size_t n = src.len < cap - 1 ? src.len : cap - 1;
    memcpy(dst, src.p, n);
    dst[n] = '\0';
}

const char *
pc_server_name(const struct pc_chat *c)
{
    return c->conf->server_name;
}

static void
id_key(uint64_t id, char key[24])
{
    (void)snprintf(key, 24, "%" PRIu64, id);
}

struct pc_session *
pc_sess_by_id(struct pc_chat *c, uint64_t id)
{
    char key[24];
    id_key(id, key);
    struct pc_session *s = pc_map_get(&c->sessions, key);
    return s != NULL && s->state != SESS_CLOSING ? s : NULL;
}

struct pc_session *
pc_sess_by_nick(struct pc_chat *c, const char *nick)
{
    char folded[PC_NICK_MAX + 1];
    size_t len = strlen(nick);
    if (len > PC_NICK_MAX) {
        return NULL;
    }
    pc_irc_casefold(folded, nick, len);
    return pc_map_get(&c->nicks, folded);
}

const char *
pc_sess_mask(const struct pc_session *s, char *buf, size_t cap)
{
    (void)snprintf(buf, cap, "%s!%s@%s", s->nick, s->user[0] ? s->user : "~u",
                   s->host);
    return buf;
}

bool
pc_sess_in_room(const struct pc_session *s, const struct pc_room *r,
                unsigned *flags)
{
    for (size_t i = 0; i < s->nrooms; i++) {
        if (s->rooms[i].room == r) {
            if (flags != NULL) {
                *flags = s->rooms[i].flags;
            }
            return true;
        }
    }
    return false;
}

void
pc_sess_set_flags(struct pc_session *s, const struct pc_room *r,
                  unsigned flags)
{
    for (size_t i = 0; i < s->nrooms; i++) {
        if (s->rooms[i].room == r) {
            s->rooms[i].flags = flags;
        }
    }
}

/* Output. */

static void
sess_write(struct pc_session *s, const char *data, size_t len)
{
    if (s->state == SESS_CLOSING || s->conn == NULL) {
        return;
    }
    if (s->reply.on) {
        s->reply.count++;
        if (pc_buf_append(&s->reply.lines, data, len) == 0) {
            return;
        }
        /* A reply too large to label goes out unlabeled. */
    }
    (void)pc_conn_write(s->conn, data, len);
}

void
pc_sess_send_raw(struct pc_session *s, const char *line, size_t len)
{
    /* Never let a CR, LF or NUL inside a line split it on the client. */
    size_t body = len >= 2 ? len - 2 : len;
    for (size_t i = 0; i < body; i++) {
        if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0') {
            char cut[PC_IRC_LINE_MAX + 2];
            if (i + 2 > sizeof(cut)) {
                return;
            }
            memcpy(cut, line, i);
            cut[i] = '\r';
            cut[i + 1] = '\n';
            sess_write(s, cut, i + 2);
            return;
        }
    }
    sess_write(s, line, len);
}

void
pc_sess_send_line(struct pc_session *s, struct pc_irc_line *l)
{
    ssize_t n = pc_irc_line_end(l);
    if (n > 0) {
        pc_sess_send_raw(s, l->buf, (size_t)n);
    }
}

static void sess_vsendf(struct pc_session *s, const char *prefix,
                        const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
sess_vsendf(struct pc_session *s, const char *prefix, const char *fmt,
            va_list ap)
{
    char line[PC_IRC_BODY_MAX + 64];
    size_t n = 0;
    int w;

    w = snprintf(line, sizeof(line), ":%s %s", pc_server_name(s->chat),
                 prefix);
    if (w < 0) {
        return;
    }
    n = (size_t)w < sizeof(line) ? (size_t)w : sizeof(line) - 1;
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (w < 0) {
        return;
    }
    n += (size_t)w;
    if (n > PC_IRC_BODY_MAX - 2) {
        /* Cut at a UTF-8 character boundary. */
        n = PC_IRC_BODY_MAX - 2;
        while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    line[n++] = '\r';
    line[n++] = '\n';
    pc_sess_send_raw(s, line, n);
}

void
pc_sess_sendf(struct pc_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sess_vsendf(s, "", fmt, ap);
    va_end(ap);
}

void
pc_sess_num(struct pc_session *s, const char *num, const char *fmt, ...)
{
    char prefix[PC_NICK_MAX + 8];
    va_list ap;

    (void)snprintf(prefix, sizeof(prefix), "%s %s ", num,
                   s->nick[0] ? s->nick : "*");
    va_start(ap, fmt);
    sess_vsendf(s, prefix, fmt, ap);
    va_end(ap);
}

void
pc_sess_std(struct pc_session *s, const char *type, const char *cmd,
            const char *code, const char *context, const char *text)
{
    struct pc_irc_line l;

    pc_irc_line_init(&l);
    pc_irc_line_source(&l, pc_server_name(s->chat));
    pc_irc_line_cmd(&l, type);
    pc_irc_line_param(&l, cmd, strlen(cmd));
    pc_irc_line_param(&l, code, strlen(code));
    if (context != NULL && context[0] != '\0' && context[0] != ':'
        && strchr(context, ' ') == NULL) {
        pc_irc_line_param(&l, context, strlen(context));
    }
    pc_irc_line_trailing(&l, text, strlen(text));
    pc_sess_send_line(s, &l);
}

void
pc_sess_tags(const struct pc_session *s, struct pc_irc_line *l,
             uint64_t at_ms, const char *msgid)
{
    if (s->caps & CAP_SERVER_TIME) {
        char when[32];
        pc_time_format(at_ms, when);
        pc_irc_line_tag(l, "time", when, strlen(when));
    }
    if (msgid != NULL && (s->caps & CAP_MESSAGE_TAGS)) {
        pc_irc_line_tag(l, "msgid", msgid, strlen(msgid));
    }
}

void
pc_line_client_tags(const struct pc_session *to, struct pc_irc_line *l,
                    const char *tags, size_t len)
{
    if (!(to->caps & CAP_MESSAGE_TAGS) || tags == NULL || len == 0) {
        return;
    }
    /* "+k=v;+k2" as the sender wrote them (already escaped). */
    const char *p = tags;
    const char *end = p + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        struct pc_irc_str k = {p, (size_t)((eq ? eq : stop) - p)};
        struct pc_irc_str v = {eq ? eq + 1 : stop,
                               eq ? (size_t)(stop - eq - 1) : 0};
        pc_irc_line_tag_raw(l, k, v);
        p = semi ? semi + 1 : end;
    }
}

/* Labeled responses (IRCv3 labeled-response): lines produced while
 * handling a labeled command are collected, then sent with the label on
 * the only line, wrapped in a labeled-response batch, or as an ACK. */

void
pc_reply_begin(struct pc_session *s, const char *label)
{
    if (label == NULL || label[0] == '\0'
        || !(s->caps & CAP_LABELED_RESPONSE)) {
        return;
    }
    s->reply.on = true;
    (void)snprintf(s->reply.label, sizeof(s->reply.label), "%s", label);
    s->reply.count = 0;
    pc_buf_reset(&s->reply.lines);
}

/* Writes `line` with extra tags (already escaped, "k=v;k=v") in front. */
static void
write_tagged(struct pc_session *s, const char *tags, const char *line,
             size_t len)
{
    char out[PC_IRC_LINE_MAX + 2];
    int n;

    if (line[0] == '@') {
        n = snprintf(out, sizeof(out), "@%s;%.*s", tags, (int)(len - 1),
                     line + 1);
    } else {
        n = snprintf(out, sizeof(out), "@%s %.*s", tags, (int)len, line);
    }
    if (n > 0 && (size_t)n < sizeof(out)) {
        (void)pc_conn_write(s->conn, out, (size_t)n);
    } else {
        (void)pc_conn_write(s->conn, line, len);
    }
}

/* True if the line's tag section has a batch tag. */
static bool
in_batch(const char *line, size_t len)
{
    if (len < 8 || line[0] != '@') {
        return false;
    }
    const char *sp = memchr(line, ' ', len);
    size_t tlen = sp ? (size_t)(sp - line) : len;
    for (size_t i = 1; i + 6 <= tlen; i++) {
        if ((line[i - 1] == '@' || line[i - 1] == ';')
            && memcmp(line + i, "batch=", 6) == 0) {
            return true;
        }
    }
    return false;
}

void
pc_reply_detach(struct pc_session *s)
{
    if (!s->reply.on) {
        return;
    }
    s->reply.on = false;
    if (s->reply.count > 0 && s->conn != NULL) {
        (void)pc_conn_write(s->conn, s->reply.lines.data, s->reply.lines.len);
    }
    pc_buf_reset(&s->reply.lines);
}

void
pc_reply_end(struct pc_session *s)
{
    char label[3 * PC_LABEL_MAX + 16];
    char esc[3 * PC_LABEL_MAX + 1];

    if (!s->reply.on) {
        return;
    }
    s->reply.on = false;
    if (s->state == SESS_CLOSING || s->conn == NULL) {
        pc_buf_reset(&s->reply.lines);
        return;
    }
    ssize_t e = pc_irc_tag_escape(esc, sizeof(esc) - 1, s->reply.label,
                                  strlen(s->reply.label));
    if (e < 0) {
        e = 0;
    }
    esc[e] = '\0';
    (void)snprintf(label, sizeof(label), "label=%s", esc);

    if (s->reply.count == 0) {
        char ack[sizeof(label) + 80];
        int n = snprintf(ack, sizeof(ack), "@%s :%s ACK\r\n", label,
                         pc_server_name(s->chat));
        if (n > 0 && (size_t)n < sizeof(ack)) {
            (void)pc_conn_write(s->conn, ack, (size_t)n);
        }
    } else if (s->reply.count == 1) {
        write_tagged(s, label, s->reply.lines.data, s->reply.lines.len);
    } else if (!(s->caps & CAP_BATCH)) {
        (void)pc_conn_write(s->conn, s->reply.lines.data, s->reply.lines.len);
    } else {
        char ref[24];
        char start[sizeof(label) + 120];
        (void)snprintf(ref, sizeof(ref), "L%" PRIu64, ++s->chat->next_batch);
        int n = snprintf(start, sizeof(start),
                         "@%s :%s BATCH +%s labeled-response\r\n", label,
                         pc_server_name(s->chat), ref);
        if (n > 0 && (size_t)n < sizeof(start)) {
            (void)pc_conn_write(s->conn, start, (size_t)n);
        }
        char btag[40];
        (void)snprintf(btag, sizeof(btag), "batch=%s", ref);
        const char *p = s->reply.lines.data;
        const char *end = p + s->reply.lines.len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            if (in_batch(p, len)) {
                /* Already inside an inner batch: its lines carry only
                 * that batch's tag; the inner BATCH start carries ours. */
                (void)pc_conn_write(s->conn, p, len);
            } else {
                write_tagged(s, btag, p, len);
            }
            p += len;
        }
        n = snprintf(start, sizeof(start), ":%s BATCH -%s\r\n",
                     pc_server_name(s->chat), ref);
        if (n > 0 && (size_t)n < sizeof(start)) {
            (void)pc_conn_write(s->conn, start, (size_t)n);
        }
    }
    pc_buf_reset(&s->reply.lines);
    pc_buf_shrink(&s->reply.lines);
}

/* Lifecycle. */

static void sess_on_read(struct pc_conn *conn, const char *data, size_t len);
static void sess_on_close(struct pc_conn *conn, enum pc_conn_reason why,
                          int err);

static const struct pc_conn_cbs sess_conn_cbs = {
    .on_read = sess_on_read,
    .on_close = sess_on_close,
};

void
pc_chat_accept(struct pc_listener *l, struct pc_conn *conn, void *arg)
{
    struct pc_chat *c = arg;
    struct pc_session *s;
    char key[24];

    if (c->shutting_down || c->nsessions >= c->conf->max_clients) {
        static const char full[] = "ERROR :Server is full, try again later\r\n";
        static const char down[] = "ERROR :Server is shutting down\r\n";
        pc_conn_setup(conn, &sess_conn_cbs, NULL);
        if (c->shutting_down) {
            (void)pc_conn_write(conn, down, sizeof(down) - 1);
        } else {
            (void)pc_conn_write(conn, full, sizeof(full) - 1);
        }
        pc_conn_close(conn);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        pc_conn_setup(conn, &sess_conn_cbs, NULL);
        pc_conn_close(conn);
        return;
    }
    s->id = ++c->next_sess_id;
    s->chat = c;
    s->conn = conn;
    s->state = SESS_NEW;
    s->connected_ms = pc_now_ms();
    s->last_rx_ms = s->connected_ms;
    s->tokens = c->conf->flood_burst;
    s->tokens_ms = s->connected_ms;
    (void)snprintf(s->host, sizeof(s->host), "%s", pc_conn_peer(conn));
    pc_buf_init(&s->in, SESS_INBUF_MAX);
    pc_buf_init(&s->reply.lines, 256 * 1024);
    id_key(s->id, key);
    if (pc_map_put(&c->sessions, key, s) < 0) {
        free(s);
        pc_conn_setup(conn, &sess_conn_cbs, NULL);
        pc_conn_close(conn);
        return;
    }
    c->nsessions++;
    pc_conn_set_sendq_max(conn, c->conf->sendq_bytes);
    pc_conn_setup(conn, &sess_conn_cbs, s);
    pc_log(PC_LOG_DEBUG, "session", "connected id=%" PRIu64 " peer=%s tls=%d",
           s->id, s->host, pc_conn_is_tls(conn));
}

void
pc_sess_tell_peers(struct pc_session *s, const char *line, size_t len)
{
    pc_sess_tell_peers_cap(s, line, len, 0);
}

void
pc_sess_tell_peers_cap(struct pc_session *s, const char *line, size_t len,
                       unsigned caps)
{
    /* Each peer hears it once, however many rooms it shares with s. */
    for (size_t i = 0; i < s->nrooms; i++) {
        struct pc_room *r = s->rooms[i].room;
        for (size_t j = 0; j < r->nmembers; j++) {
            struct pc_session *m = r->members[j];
            if (m == s || m->state == SESS_CLOSING
                || (caps != 0 && !(m->caps & caps))) {
                continue;
            }
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++) {
                seen = pc_sess_in_room(m, s->rooms[k].room, NULL);
            }
            if (!seen) {
                pc_sess_send_raw(m, line, len);
            }
        }
    }
}

void
pc_sess_announce_quit(struct pc_session *s, const char *reason)
{
    char line[PC_IRC_BODY_MAX + 64];
    char mask[160];
    int n = snprintf(line, sizeof(line), ":%s QUIT :%s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), reason);
    if (n > 0 && (size_t)n >= sizeof(line)) {
        /* A long reason is cut; the line still ends properly. */
        n = (int)sizeof(line) - 1;
        line[n - 2] = '\r';
        line[n - 1] = '\n';
    }
    if (n > 0) {
        pc_sess_tell_peers(s, line, (size_t)n);
    }
}

/* Announces the departure to every room and frees nothing: the session
 * lives until its connection's close callback. */
static void
sess_depart(struct pc_session *s, const char *reason)
{
    struct pc_chat *c = s->chat;

    if (s->state == SESS_ACTIVE) {
        pc_pool_quit(c, s, reason);
        pc_sess_announce_quit(s, reason);
        c->nregistered--;
    }
    /* Removing a room shrinks s->rooms (swap with the last): take the
     * first until none is left. */
    while (s->nrooms > 0) {
        pc_room_remove_member(s->rooms[0].room, s);
    }
    if (s->nick_folded[0] != '\0'
        && pc_map_get(&c->nicks, s->nick_folded) == s) {
        (void)pc_map_del(&c->nicks, s->nick_folded);
    }
    if (s->throttled) {
        struct pc_session **pp = &c->throttled;
        while (*pp != NULL && *pp != s) {
            pp = &(*pp)->next_throttled;
        }
        if (*pp == s) {
            *pp = s->next_throttled;
        }
        s->throttled = false;
    }
    s->state = SESS_CLOSING;
}

void
pc_sess_error_close(struct pc_session *s, const char *reason)
{
    if (s->state == SESS_CLOSING) {
        return;
    }
    pc_reply_end(s);
    char line[PC_IRC_BODY_MAX];
    int n = snprintf(line, sizeof(line), "ERROR :%s\r\n", reason);
    if (n > 0 && (size_t)n < sizeof(line)) {
        (void)pc_conn_write(s->conn, line, (size_t)n);
    }
    sess_depart(s, reason);
    pc_conn_close(s->conn);
}

void
pc_sess_quit(struct pc_session *s, const char *reason)
{
    pc_sess_error_close(s, reason);
}

static void
sess_free(struct pc_session *s)
{
    char key[24];
    id_key(s->id, key);
    (void)pc_map_del(&s->chat->sessions, key);
    s->chat->nsessions--;
    pc_buf_free(&s->in);
    pc_buf_free(&s->reply.lines);
    free(s->rooms);
    free(s->realname);
    free(s->away);
    pc_sasl_session_free(s);
    free(s);
}

static void
sess_on_close(struct pc_conn *conn, enum pc_conn_reason why, int err)
{
    struct pc_session *s = pc_conn_data(conn);
    if (s == NULL) {
        return;
    }
    struct pc_chat *c = s->chat;
    if (s->state != SESS_CLOSING) {
        const char *reason = why == PC_CONN_SENDQ ? "Max SendQ exceeded"
                             : why == PC_CONN_TLS ? "TLS error"
                             : why == PC_CONN_EOF ? "Connection closed"
                                                  : "Connection error";
        s->reply.on = false;
        sess_depart(s, reason);
    }
    s->conn = NULL;
    pc_log(PC_LOG_DEBUG, "session", "closed id=%" PRIu64 " why=%d err=%s",
           s->id, (int)why, pc_strerror(err));
    sess_free(s);
    if (c->shutting_down && c->nsessions == 0 && c->shutdown_done != NULL) {
        pc_post_kick(c);
    }
}

/* Input. */

static bool
sess_take_token(struct pc_session *s)
{
    const struct pc_conf *conf = s->chat->conf;
    uint64_t now = pc_now_ms();

    s->tokens += (double)(now - s->tokens_ms) * conf->flood_rate / 1000.0;
    s->tokens_ms = now;
    if (s->tokens > conf->flood_burst) {
        s->tokens = conf->flood_burst;
    }
    if (s->tokens < 1.0) {
        return false;
    }
    s->tokens -= 1.0;
    return true;
}

/* Queues s for throttle_tick, which runs its held input. */
static void
sess_queue_held(struct pc_session *s)
{
    struct pc_chat *c = s->chat;
    s->throttled = true;
    s->next_throttled = c->throttled;
    c->throttled = s;
}

static void
sess_throttle(struct pc_session *s)
{
    if (s->throttled) {
        return;
    }
    sess_queue_held(s);
    pc_conn_pause(s->conn);
}

static void
sess_line(struct pc_session *s, const char *line, size_t len)
{
    struct pc_irc_msg msg;
    int rc = pc_irc_parse(line, len, &msg);

    if (rc == PC_IRC_EEMPTY) {
        return;
    }
    if (rc == PC_IRC_ETOOLONG) {
        pc_sess_num(s, PC_ERR_INPUTTOOLONG, ":Input line was too long");
        return;
    }
    if (rc < 0) {
        pc_log(PC_LOG_DEBUG, "session", "malformed line id=%" PRIu64, s->id);
        return;
    }
    if (!pc_utf8_valid(line, len)) {
        char cmd[32];
        pc_slice(cmd, sizeof(cmd), msg.command);
        pc_sess_std(s, "FAIL", cmd[0] ? cmd : "*", "INVALID_UTF8", NULL,
                    "Message rejected: it is not valid UTF-8");
        return;
    }
    pc_cmd_dispatch(s, &msg);
}

/* Processes complete lines in data; returns the bytes consumed. Stops when
 * the session runs out of flood tokens or starts closing. */
static size_t
sess_process(struct pc_session *s, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len && s->state != SESS_CLOSING && s->joins_waiting == 0) {
        size_t line_len = 0;
        if (s->discarding) {
            const char *nl = memchr(data + off, '\n', len - off);
            if (nl == NULL) {
                return len;
            }
            off = (size_t)(nl - data) + 1;
            s->discarding = false;
            continue;
        }
        ssize_t n = pc_irc_frame(data + off, len - off, PC_IRC_LINE_MAX,
                                 &line_len);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            pc_sess_num(s, PC_ERR_INPUTTOOLONG, ":Input line was too long");
            s->discarding = true;
            continue;
        }
        if (!sess_take_token(s)) {
            sess_throttle(s);
            break;
        }
        s->last_rx_ms = pc_now_ms();
        s->ping_out = false;
        sess_line(s, data + off, line_len);
        off += (size_t)n;
    }
    return off;
}

/* Runs the input held in s->in as far as it can go now. */
static void
sess_run_held(struct pc_session *s)
{
    size_t used = sess_process(s, s->in.data, s->in.len);
    if (s->state != SESS_CLOSING) {
        pc_buf_consume(&s->in, used);
        pc_buf_shrink(&s->in);
    }
}

static void
sess_on_read(struct pc_conn *conn, const char *data, size_t len)
{
    struct pc_session *s = pc_conn_data(conn);

    if (s == NULL || s->state == SESS_CLOSING) {
        return;
    }
    if (s->in.len == 0 && !s->throttled && s->joins_waiting == 0) {
        size_t used = sess_process(s, data, len);
        if (s->state == SESS_CLOSING || used == len) {
            return;
        }
        data += used;
        len -= used;
    }
    if (pc_buf_append(&s->in, data, len) < 0) {
        pc_sess_error_close(s, "Excess Flood");
        return;
    }
    if (!s->throttled) {
        sess_run_held(s);
    }
}

static void throttle_tick(uv_timer_t *t);

/* The input held behind a JOIN runs at once on the throttle timer (not on
 * the stack of the callback that answered the JOIN). */
void
pc_sess_join_done(struct pc_session *s)
{
    struct pc_chat *c = s->chat;

    if (s->joins_waiting > 0) {
        s->joins_waiting--;
    }
    if (s->joins_waiting > 0 || s->in.len == 0 || s->state == SESS_CLOSING
        || s->throttled) {
        return; /* a throttled session is already queued */
    }
    sess_queue_held(s);
    (void)uv_timer_start(&c->throttle_timer, throttle_tick, 0,
                         SESS_THROTTLE_TICK_MS);
}

/* Gives throttled sessions their turn as tokens come back. */
static void
throttle_tick(uv_timer_t *t)
{
    struct pc_chat *c = t->data;
    struct pc_session *list = c->throttled;

    c->throttled = NULL;
    while (list != NULL) {
        struct pc_session *s = list;
        list = s->next_throttled;
        s->throttled = false;
        if (s->state == SESS_CLOSING) {
            continue;
        }
        sess_run_held(s);
        if (s->state == SESS_CLOSING) {
            continue;
        }
        if (!s->throttled) {
            pc_conn_resume(s->conn);
        }
    }
}

/* Registration and ping timeouts, checked for every session once a second
 * rather than with a timer per session (memory per idle client). */
static void
sweep_tick(uv_timer_t *t)
{
    struct pc_chat *c = t->data;
    const struct pc_conf *conf = c->conf;
    uint64_t now = pc_now_ms();
    size_t pos = 0;
    struct pc_session *s;

    /* Posts queued behind stuck batches still time out. (Not while
     * shutting down: the kick may then end the drain.) */
    if (!c->shutting_down) {
        pc_post_kick(c);
    }
    /* Handshakes and bursts leave freed memory in malloc's arenas; give it
     * back once things are quiet, so idle memory is what idle clients use. */
    if (c->nsessions != c->swept_sessions) {
        c->swept_sessions = c->nsessions;
        c->trim_pending = true;
    } else if (c->trim_pending) {
        c->trim_pending = false;
        (void)malloc_trim(0);
    }
    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        if (s->state == SESS_CLOSING) {
            continue;
        }
        if (s->state == SESS_NEW) {
            if (now - s->connected_ms > conf->register_timeout_ms) {
                pc_sess_error_close(s, "Registration timed out");
            }
            continue;
        }
        uint64_t idle = now - s->last_rx_ms;
        if (s->ping_out && idle > (uint64_t)conf->ping_interval_ms
                                      + conf->ping_timeout_ms) {
            char why[64];
            (void)snprintf(why, sizeof(why), "Ping timeout: %u seconds",
                           (unsigned)(idle / 1000));
            pc_sess_error_close(s, why);
        } else if (!s->ping_out && idle > conf->ping_interval_ms) {
            s->ping_out = true;
            pc_sess_sendf(s, "PING :%s", pc_server_name(c));
        }
    }
}

int
pc_chat_new(struct pc_chat **out, uv_loop_t *loop,
            const struct pc_conf *conf, struct pc_store *store)
{
    struct pc_chat *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    c->loop = loop;
    c->conf = conf; /* pc_sasl_init reads the auth.* limits */
    if (pc_sasl_init(c) < 0) {
        free(c);
        return -ENOMEM;
    }
    c->store = store;
    pc_map_init(&c->sessions);
    pc_map_init(&c->nicks);
    pc_map_init(&c->rooms);
    pc_map_init(&c->rooms_by_id);
    pc_map_init(&c->remote);
    c->posts_tail = &c->posts;
    c->started_wall_ms = pc_wall_ms();
    pc_buf_init(&c->scratch, 16 * 1024 * 1024);
    pc_buf_init(&c->room_wire, 16 * 1024 * 1024);
    (void)uv_timer_init(loop, &c->sweep_timer);
    (void)uv_timer_init(loop, &c->throttle_timer);
    (void)uv_timer_init(loop, &c->gap_timer);
    c->sweep_timer.data = c;
    c->throttle_timer.data = c;
    c->gap_timer.data = c;
    c->timers_open = 3;
    (void)uv_timer_start(&c->sweep_timer, sweep_tick, 1000, 1000);
    (void)uv_timer_start(&c->throttle_timer, throttle_tick,
                         SESS_THROTTLE_TICK_MS, SESS_THROTTLE_TICK_MS);
    *out = c;
    /* The room model listens before the store starts (pc_store_listen). */
    int rc = pc_acl_new(c);
    if (rc < 0) {
        pc_chat_free(c);
        *out = NULL;
        return rc;
    }
    return 0;
}

void
pc_chat_set_bus(struct pc_chat *c, struct pc_bus *bus)
{
    c->bus = bus;
}

void
pc_chat_set_pool(struct pc_chat *c, uint64_t self)
{
    c->pooled = true;
    c->self = self;
    (void)uv_timer_start(&c->gap_timer, pc_pool_gap_check, 100, 100);
}

const struct pc_bus_cbs pc_chat_bus_cbs = {
    .deliver = pc_chat_deliver,
};

uint64_t
pc_chat_sessions(const struct pc_chat *c)
{
    return c->nsessions;
}

void
pc_chat_store_state(void *arg, enum pc_store_state st)
{
    struct pc_chat *c = arg;

    c->store_ready = st == PC_STORE_READY;
    if (c->store_ready && !c->rooms_loaded) {
        pc_rooms_load(c);
    }
    if (c->store_ready) {
        /* Notifications sent while disconnected are lost: reload. */
        pc_acl_reload(c);
    }
}

void
pc_chat_reload(struct pc_chat *c, const struct pc_conf *conf)
{
    c->conf = conf;
}

void
pc_chat_shutdown(struct pc_chat *c, void (*done)(void *), void *arg)
{
    /* Posts already accepted are finished first (pc_post_kick): their
     * authors get their echo or a FAIL before the sessions close. */
    c->shutting_down = true;
    c->shutdown_done = done;
    c->shutdown_arg = arg;
    pc_post_kick(c);
}

void
pc_chat_disconnect_all(struct pc_chat *c, const char *reason)
{
    size_t pos = 0;
    struct pc_session *s;

    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        if (s->state != SESS_CLOSING) {
            pc_sess_error_close(s, reason);
        }
    }
}

static void
timer_closed(uv_handle_t *h)
{
    struct pc_chat *c = h->data;
    if (--c->timers_open == 0) {
        pc_buf_free(&c->scratch);
        pc_buf_free(&c->room_wire);
        free(c);
    }
}

void
pc_chat_free(struct pc_chat *c)
{
    size_t pos = 0;
    struct pc_room *r;

    pc_sasl_free(c);
    while ((r = pc_map_next(&c->rooms, &pos, NULL)) != NULL) {
        pc_room_free(r);
    }
    while (c->posts != NULL) {
        struct pc_post *p = c->posts;
        c->posts = p->next;
        pc_post_free(p);
    }
    pos = 0;
    struct pc_session *rs;
    while ((rs = pc_map_next(&c->remote, &pos, NULL)) != NULL) {
        free(rs->rooms);
        free(rs->realname);
        free(rs->away);
        free(rs);
    }
    pc_map_free(&c->remote);
    pc_acl_free(c);
    pc_map_free(&c->rooms);
    pc_map_free(&c->rooms_by_id);
    pc_map_free(&c->sessions);
    pc_map_free(&c->nicks);
    uv_close((uv_handle_t *)&c->sweep_timer, timer_closed);
    uv_close((uv_handle_t *)&c->throttle_timer, timer_closed);
    uv_close((uv_handle_t *)&c->gap_timer, timer_closed);
}
