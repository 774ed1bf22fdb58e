#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "chat/internal.h"
#include "chat/wire.h"
#include "util/err.h"
#include "util/log.h"

/* The pool: what the members of a pool tell each other besides room
 * messages. Each member is authoritative for its own clients; it applies a
 * change at once and publishes it; the others apply it when it arrives, in
 * the bus's total order, and tell their own clients. Users of other members
 * are sessions without a connection (member != 0), so NAMES, WHO, WHOIS
 * and nick checks see them like local ones.
 *
 * Nicknames: a member grants a free nick at once and announces it; if two
 * members granted one nick at the same time, the announcement delivered
 * first (the same on every member) wins, and the loser's member renames its
 * client. */

#define GAP_WAIT_MS 300  /* how long a later seq waits for an earlier one */
#define GAP_FETCH_MAX 1000

static bool
pool_on(const struct pc_chat *c)
{
    return c->pooled && c->bus != NULL;
}

static void
publish(struct pc_chat *c, struct pc_buf *b, int rc)
{
    if (rc == 0) {
        rc = pc_bus_publish(c->bus, b->data, b->len);
    }
    if (rc < 0) {
        pc_log(PC_LOG_ERR, "pool", "cannot publish a pool event: %s",
               pc_strerror(rc));
    }
}

/* A session as others name it: its member (0 for the publisher) and id. */
static int
wire_sess(struct pc_buf *b, const struct pc_chat *c,
          const struct pc_session *s)
{
    int rc = pc_wire_u64(b, s->member ? s->member : c->self);
    return rc ? rc : pc_wire_u64(b, s->member ? s->remote_id : s->id);
}

static int
wire_room(struct pc_buf *b, const struct pc_room *r)
{
    int rc = pc_wire_u64(b, (uint64_t)r->id);
    rc = rc ? rc : pc_wire_str(b, r->name);
    rc = rc ? rc : pc_wire_str(b, r->topic);
    rc = rc ? rc : pc_wire_str(b, r->topic_by);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)r->topic_at);
    rc = rc ? rc : pc_wire_u64(b, r->modes);
    rc = rc ? rc : pc_wire_str(b, r->key);
    rc = rc ? rc : pc_wire_u64(b, r->limit);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)r->created_at);
    return rc;
}

static void
remote_key(uint64_t member, uint64_t id, char key[48])
{
    (void)snprintf(key, 48, "%" PRIx64 ":%" PRIu64, member, id);
}

static struct pc_session *
find_sess(struct pc_chat *c, uint64_t member, uint64_t id)
{
    if (member == c->self) {
        return pc_sess_by_id(c, id);
    }
    char key[48];
    remote_key(member, id, key);
    return pc_map_get(&c->remote, key);
}

static char *
dup_slice(struct pc_irc_str s)
{
    return pc_strndup(s.p, s.len);
}

/* Reads a room and merges it into ours (creating it if unknown). */
static struct pc_room *
read_room(struct pc_chat *c, struct pc_wire_reader *r, bool update)
{
    char idkey[24];
    int64_t id = (int64_t)pc_wire_rd_u64(r);
    struct pc_irc_str name = pc_wire_rd_str(r);
    struct pc_irc_str topic = pc_wire_rd_str(r);
    struct pc_irc_str topic_by = pc_wire_rd_str(r);
    int64_t topic_at = (int64_t)pc_wire_rd_u64(r);
    unsigned modes = (unsigned)pc_wire_rd_u64(r);
    struct pc_irc_str key = pc_wire_rd_str(r);
    uint32_t limit = (uint32_t)pc_wire_rd_u64(r);
    int64_t created = (int64_t)pc_wire_rd_u64(r);

    if (r->bad || name.len == 0 || name.len > PC_CHAN_MAX) {
        r->bad = true;
        return NULL;
    }
    (void)snprintf(idkey, sizeof(idkey), "%" PRId64, id);
    struct pc_room *room = pc_map_get(&c->rooms_by_id, idkey);
    bool fresh = false;
    if (room == NULL) {
        char n[PC_CHAN_MAX + 1];
        pc_slice(n, sizeof(n), name);
        room = pc_room_find(c, n);
        if (room == NULL) {
            room = calloc(1, sizeof(*room));
            if (room == NULL) {
                return NULL;
            }
            room->name = strdup(n);
            room->folded = malloc(name.len + 1);
            if (room->name == NULL || room->folded == NULL) {
                pc_room_free(room);
                return NULL;
            }
            pc_irc_casefold(room->folded, n, name.len);
            if (pc_map_put(&c->rooms, room->folded, room) < 0) {
                pc_room_free(room);
                return NULL;
            }
        }
        if (!room->loaded) {
            room->id = id;
            room->loaded = true;
            room->created_at = created;
            (void)pc_map_put(&c->rooms_by_id, idkey, room);
            fresh = true;
        }
    }
    if (fresh || update) {
        free(room->topic);
        free(room->topic_by);
        free(room->key);
        room->topic = dup_slice(topic);
        room->topic_by = dup_slice(topic_by);
        room->topic_at = topic_at;
        room->modes = modes;
        room->key = key.len ? dup_slice(key) : NULL;
        room->limit = limit;
    }
    return room;
}

/* Publishing (no-ops on a single server). */

void
pc_pool_user(struct pc_chat *c, struct pc_session *s)
{
    if (!pool_on(c) || s->member != 0) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_USER);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : pc_wire_str(b, s->nick);
    rc = rc ? rc : pc_wire_str(b, s->user);
    rc = rc ? rc : pc_wire_str(b, s->host);
    rc = rc ? rc : pc_wire_str(b, s->realname);
    rc = rc ? rc : pc_wire_str(b, s->away);
    rc = rc ? rc : pc_wire_u64(b, s->nrooms);
    for (size_t i = 0; rc == 0 && i < s->nrooms; i++) {
        rc = wire_room(b, s->rooms[i].room);
        rc = rc ? rc : pc_wire_u64(b, s->rooms[i].flags);
    }
    /* Protocol 3: the account (empty if not logged in). */
    rc = rc ? rc : pc_wire_str(b, s->account);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)s->account_id);
    publish(c, b, rc);
}

void
pc_pool_nick(struct pc_chat *c, struct pc_session *s)
{
    if (!pool_on(c) || s->member != 0) {
        return;
    }
    s->nick_confirmed = false;
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_NICK);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : pc_wire_str(b, s->nick);
    publish(c, b, rc);
}

void
pc_pool_join(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
             unsigned flags)
{
    if (!pool_on(c) || s->member != 0) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_JOIN);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : wire_room(b, r);
    rc = rc ? rc : pc_wire_u64(b, flags);
    publish(c, b, rc);
}

void
pc_pool_part(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
             const char *line)
{
    if (!pool_on(c)) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_PART);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)r->id);
    rc = rc ? rc : pc_wire_str(b, line);
    publish(c, b, rc);
}

void
pc_pool_quit(struct pc_chat *c, struct pc_session *s, const char *reason)
{
    if (!pool_on(c) || s->member != 0) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_QUIT);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : pc_wire_str(b, reason);
    publish(c, b, rc);
}

void
pc_pool_room(struct pc_chat *c, struct pc_room *r, const char *line)
{
    if (!pool_on(c)) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_ROOM);
    rc = rc ? rc : wire_room(b, r);
    rc = rc ? rc : pc_wire_str(b, line);
    publish(c, b, rc);
}

void
pc_pool_flags(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
              unsigned flags)
{
    if (!pool_on(c)) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_FLAGS);
    rc = rc ? rc : wire_sess(b, c, s);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)r->id);
    rc = rc ? rc : pc_wire_u64(b, flags);
    publish(c, b, rc);
}

void
pc_pool_dm(struct pc_chat *c, struct pc_session *to, uint64_t at_ms,
           const char *msgid, const char *source, const char *account,
           enum pc_msg_kind kind, const char *tags, const char *text,
           size_t len)
{
    if (!pool_on(c) || to->member == 0) {
        return;
    }
    char *body = pc_strndup(text, len);
    if (body == NULL) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_DM);
    rc = rc ? rc : wire_sess(b, c, to);
    rc = rc ? rc : pc_wire_u64(b, at_ms);
    rc = rc ? rc : pc_wire_u8(b, kind);
    rc = rc ? rc : pc_wire_str(b, msgid);
    rc = rc ? rc : pc_wire_str(b, source);
    rc = rc ? rc : pc_wire_str(b, account ? account : "");
    rc = rc ? rc : pc_wire_str(b, tags ? tags : "");
    rc = rc ? rc : pc_wire_str(b, body);
    free(body);
    publish(c, b, rc);
}

void
pc_pool_tagmsg(struct pc_chat *c, struct pc_room *r, uint64_t at_ms,
               const char *msgid, const char *source, const char *account,
               const char *tags)
{
    if (!pool_on(c)) {
        return;
    }
    struct pc_buf *b = &c->scratch;
    pc_buf_reset(b);
    int rc = pc_wire_u8(b, WIRE_TAGMSG);
    /* No session: the member and id pair is (publisher, 0). */
    rc = rc ? rc : pc_wire_u64(b, c->self);
    rc = rc ? rc : pc_wire_u64(b, 0);
    rc = rc ? rc : pc_wire_u64(b, (uint64_t)r->id);
    rc = rc ? rc : pc_wire_u64(b, at_ms);
    rc = rc ? rc : pc_wire_str(b, msgid);
    rc = rc ? rc : pc_wire_str(b, source);
    rc = rc ? rc : pc_wire_str(b, account ? account : "");
    rc = rc ? rc : pc_wire_str(b, tags);
    publish(c, b, rc);
}

/* Applying what other members publish. */

static void
send_line_to_room(struct pc_room *r, struct pc_irc_str line)
{
    char buf[PC_IRC_LINE_MAX + 2];
    if (line.len == 0 || line.len + 2 > sizeof(buf)) {
        return;
    }
    memcpy(buf, line.p, line.len);
    buf[line.len] = '\r';
    buf[line.len + 1] = '\n';
    pc_room_send(r, buf, line.len + 2, NULL);
}

/* Gives a local client that lost its nick to an earlier claim elsewhere a
 * unique one instead. */
static void
rename_loser(struct pc_chat *c, struct pc_session *s)
{
    char mask[160], line[PC_IRC_BODY_MAX];
    char nick[PC_NICK_MAX + 1];

    (void)snprintf(nick, sizeof(nick), "Guest%" PRIu64, s->id);
    pc_sess_num(s, "433", "%s :Nickname is already in use on another "
                "server; you are now %s", s->nick, nick);
    int n = snprintf(line, sizeof(line), ":%s NICK %s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), nick);
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_sess_send_raw(s, line, (size_t)n);
        for (size_t i = 0; i < s->nrooms; i++) {
            pc_room_send(s->rooms[i].room, line, (size_t)n, s);
        }
    }
    (void)snprintf(s->nick, sizeof(s->nick), "%s", nick);
    pc_irc_casefold(s->nick_folded, nick, strlen(nick));
    (void)pc_map_put(&c->nicks, s->nick_folded, s);
    pc_pool_nick(c, s);
}

/* Records that `s` (remote) now holds `nick`, unless an earlier claim
 * holds it; a local client that had it unconfirmed loses it. */
static void
claim_nick(struct pc_chat *c, struct pc_session *s, const char *nick)
{
    char folded[PC_NICK_MAX + 1];
    size_t len = strlen(nick);

    if (len == 0 || len > PC_NICK_MAX) {
        return;
    }
    pc_irc_casefold(folded, nick, len);
    struct pc_session *cur = pc_map_get(&c->nicks, folded);
    if (cur != NULL && cur != s) {
        if (cur->member == 0 && !cur->nick_confirmed) {
            rename_loser(c, cur);
        } else {
            return; /* the earlier claim stands; its owner renames s */
        }
    }
    if (s->nick_folded[0] != '\0' && pc_map_get(&c->nicks, s->nick_folded) == s) {
        (void)pc_map_del(&c->nicks, s->nick_folded);
    }
    (void)snprintf(s->nick, sizeof(s->nick), "%s", nick);
    (void)snprintf(s->nick_folded, sizeof(s->nick_folded), "%s", folded);
    (void)pc_map_put(&c->nicks, folded, s);
}

static struct pc_session *
remote_get(struct pc_chat *c, uint64_t member, uint64_t id, bool create)
{
    char key[48];
    remote_key(member, id, key);
    struct pc_session *s = pc_map_get(&c->remote, key);
    if (s != NULL || !create) {
        return s;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->chat = c;
    s->member = member;
    s->remote_id = id;
    s->state = SESS_ACTIVE;
    s->connected_ms = s->last_rx_ms = pc_now_ms();
    pc_buf_init(&s->in, 0);
    pc_buf_init(&s->reply.lines, 0);
    if (pc_map_put(&c->remote, key, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void
remote_drop(struct pc_chat *c, struct pc_session *s, const char *reason)
{
    char key[48];

    pc_sess_announce_quit(s, reason);
    while (s->nrooms > 0) {
        pc_room_remove_member(s->rooms[0].room, s);
    }
    if (s->nick_folded[0] && pc_map_get(&c->nicks, s->nick_folded) == s) {
        (void)pc_map_del(&c->nicks, s->nick_folded);
    }
    remote_key(s->member, s->remote_id, key);
    (void)pc_map_del(&c->remote, key);
    free(s->rooms);
    free(s->realname);
    free(s->away);
    free(s);
}

static void
apply_join(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
           unsigned flags, bool announce)
{
    if (pc_sess_in_room(s, r, NULL)) {
        pc_sess_set_flags(s, r, flags);
        return;
    }
    if (pc_room_add_member(r, s, flags) < 0) {
        return;
    }
    if (announce) {
        pc_room_send_join(r, s, s);
    }
}

bool
pc_pool_deliver(struct pc_chat *c, uint64_t from, const unsigned char *p,
                size_t len)
{
    struct pc_wire_reader r = {p + 1, len - 1, false};
    unsigned type = p[0];
    bool mine = from == c->self;

    if (type < WIRE_USER || type > WIRE_TAGMSG) {
        return false;
    }
    uint64_t member = pc_wire_rd_u64(&r);
    uint64_t id = pc_wire_rd_u64(&r);
    pc_log(PC_LOG_TRACE, "pool", "event type=%u from=%" PRIx64 " mine=%d "
           "member=%" PRIx64 " id=%" PRIu64, type, from, mine, member, id);

    switch (type) {
    case WIRE_USER:
    case WIRE_NICK: {
        char nick[PC_NICK_MAX + 1];
        pc_slice(nick, sizeof(nick), pc_wire_rd_str(&r));
        if (r.bad) {
            break;
        }
        if (mine) {
            /* Our own announcement came back: the nick is ours unless an
             * earlier claim took it (we were renamed then). */
            struct pc_session *s = pc_sess_by_id(c, id);
            if (s != NULL && pc_irc_casecmp(s->nick, nick) == 0) {
                s->nick_confirmed = true;
            }
            return true;
        }
        bool known = remote_get(c, member, id, false) != NULL;
        struct pc_session *s = remote_get(c, member, id, true);
        if (s == NULL) {
            break;
        }
        if (type == WIRE_NICK && s->nick[0] != '\0'
            && strcmp(s->nick, nick) != 0) {
            char mask[160], line[PC_IRC_BODY_MAX];
            int n = snprintf(line, sizeof(line), ":%s NICK %s\r\n",
                             pc_sess_mask(s, mask, sizeof(mask)), nick);
            for (size_t i = 0; n > 0 && i < s->nrooms; i++) {
                pc_room_send(s->rooms[i].room, line, (size_t)n, s);
            }
        }
        claim_nick(c, s, nick);
        if (type == WIRE_NICK) {
            break;
        }
        pc_slice(s->user, sizeof(s->user), pc_wire_rd_str(&r));
        pc_slice(s->host, sizeof(s->host), pc_wire_rd_str(&r));
        free(s->realname);
        s->realname = dup_slice(pc_wire_rd_str(&r));
        struct pc_irc_str away = pc_wire_rd_str(&r);
        free(s->away);
        s->away = away.len ? dup_slice(away) : NULL;
        uint64_t nrooms = pc_wire_rd_u64(&r);
        for (uint64_t i = 0; i < nrooms && !r.bad; i++) {
            struct pc_room *room = read_room(c, &r, false);
            unsigned flags = (unsigned)pc_wire_rd_u64(&r);
            if (room != NULL && !r.bad) {
                apply_join(c, s, room, flags, false);
            }
        }
        char account[PC_NICK_MAX + 1];
        pc_slice(account, sizeof(account), pc_wire_rd_str(&r));
        int64_t account_id = (int64_t)pc_wire_rd_u64(&r);
        if (!r.bad && strcmp(account, s->account) != 0) {
            (void)snprintf(s->account, sizeof(s->account), "%s", account);
            s->account_id = account[0] ? account_id : 0;
            if (known) {
                pc_account_notify(s); /* logged in after registering */
            }
        }
        break;
    }
    case WIRE_JOIN: {
        struct pc_room *room = read_room(c, &r, false);
        unsigned flags = (unsigned)pc_wire_rd_u64(&r);
        if (mine || r.bad || room == NULL) {
            break;
        }
        struct pc_session *s = remote_get(c, member, id, false);
        if (s != NULL) {
            apply_join(c, s, room, flags, true);
        }
        break;
    }
    case WIRE_PART: {
        char key[24];
        int64_t room_id = (int64_t)pc_wire_rd_u64(&r);
        struct pc_irc_str line = pc_wire_rd_str(&r);
        if (mine || r.bad) {
            break;
        }
        (void)snprintf(key, sizeof(key), "%" PRId64, room_id);
        struct pc_room *room = pc_map_get(&c->rooms_by_id, key);
        struct pc_session *s = find_sess(c, member, id);
        if (room == NULL || s == NULL || !pc_sess_in_room(s, room, NULL)) {
            break;
        }
        send_line_to_room(room, line);
        pc_room_remove_member(room, s);
        break;
    }
    case WIRE_QUIT: {
        struct pc_irc_str reason = pc_wire_rd_str(&r);
        char why[400];
        pc_slice(why, sizeof(why), reason);
        struct pc_session *s = mine ? NULL : remote_get(c, member, id, false);
        if (s != NULL && !r.bad) {
            remote_drop(c, s, why);
        }
        break;
    }
    case WIRE_ROOM: {
        /* The member id pair was the room id: reread from the start. */
        r.p = p + 1;
        r.left = len - 1;
        struct pc_room *room = read_room(c, &r, !mine);
        struct pc_irc_str line = pc_wire_rd_str(&r);
        if (!mine && !r.bad && room != NULL) {
            send_line_to_room(room, line);
        }
        break;
    }
    case WIRE_FLAGS: {
        char key[24];
        int64_t room_id = (int64_t)pc_wire_rd_u64(&r);
        unsigned flags = (unsigned)pc_wire_rd_u64(&r);
        (void)snprintf(key, sizeof(key), "%" PRId64, room_id);
        struct pc_room *room = pc_map_get(&c->rooms_by_id, key);
        struct pc_session *s = find_sess(c, member, id);
        if (!mine && !r.bad && room != NULL && s != NULL) {
            pc_sess_set_flags(s, room, flags);
        }
        break;
    }
    case WIRE_DM: {
        uint64_t at_ms = pc_wire_rd_u64(&r);
        unsigned kind = pc_wire_rd_u8(&r);
        char msgid[PC_MSGID_LEN + 1], source[PC_IRC_BODY_MAX];
        char account[PC_NICK_MAX + 1], tags[PC_IRC_CLIENT_TAGS_MAX];
        pc_slice(msgid, sizeof(msgid), pc_wire_rd_str(&r));
        pc_slice(source, sizeof(source), pc_wire_rd_str(&r));
        pc_slice(account, sizeof(account), pc_wire_rd_str(&r));
        pc_slice(tags, sizeof(tags), pc_wire_rd_str(&r));
        struct pc_irc_str text = pc_wire_rd_str(&r);
        /* Only the member the target is on delivers it. */
        struct pc_session *to = member == c->self ? pc_sess_by_id(c, id) : NULL;
        if (r.bad || to == NULL || kind > MSG_TAGMSG) {
            break;
        }
        pc_msg_to_local_user(to, at_ms, msgid, source, account,
                             (enum pc_msg_kind)kind, tags, text.p, text.len);
        break;
    }
    case WIRE_TAGMSG: {
        char key[24];
        int64_t room_id = (int64_t)pc_wire_rd_u64(&r);
        uint64_t at_ms = pc_wire_rd_u64(&r);
        char msgid[PC_MSGID_LEN + 1], source[PC_IRC_BODY_MAX];
        char account[PC_NICK_MAX + 1], tags[PC_IRC_CLIENT_TAGS_MAX];
        pc_slice(msgid, sizeof(msgid), pc_wire_rd_str(&r));
        pc_slice(source, sizeof(source), pc_wire_rd_str(&r));
        pc_slice(account, sizeof(account), pc_wire_rd_str(&r));
        pc_slice(tags, sizeof(tags), pc_wire_rd_str(&r));
        (void)snprintf(key, sizeof(key), "%" PRId64, room_id);
        struct pc_room *room = pc_map_get(&c->rooms_by_id, key);
        if (!mine && !r.bad && room != NULL && tags[0] != '\0') {
            pc_tagmsg_to_room(room, NULL, at_ms, msgid, source, account,
                              tags);
        }
        break;
    }
    default:
        return false;
    }
    if (r.bad) {
        pc_log(PC_LOG_WARN, "pool", "ignored malformed pool event type=%u "
               "from=%" PRIx64 " len=%zu", type, from, len);
    }
    return true;
}

/* Membership: the users of members that left are gone; members that joined
 * hear about everyone here. */
static void
pool_membership(void *arg, const uint64_t *members, size_t nmembers,
                const uint64_t *left, size_t nleft, const uint64_t *joined,
                size_t njoined)
{
    struct pc_chat *c = arg;
    size_t pos = 0;
    struct pc_session *s;

    for (size_t i = 0; i < nleft; i++) {
        unsigned dropped = 0;
        pos = 0;
        while ((s = pc_map_next(&c->remote, &pos, NULL)) != NULL) {
            if (s->member == left[i]) {
                remote_drop(c, s, "*.pool *.split");
                dropped++;
            }
        }
        pc_log(PC_LOG_NOTICE, "pool", "member %" PRIx64 " left: %u of its "
               "users gone", left[i], dropped);
    }
    bool others = false;
    for (size_t i = 0; i < njoined; i++) {
        others = others || joined[i] != c->self;
    }
    if (!others) {
        return;
    }
    pos = 0;
    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        if (s->state == SESS_ACTIVE) {
            pc_pool_user(c, s);
        }
    }
}

const struct pc_bus_cbs pc_chat_pool_cbs = {
    .deliver = pc_chat_deliver,
    .membership = pool_membership,
};

/* Sequence gaps. */

void
pc_pool_hold(struct pc_chat *c, struct pc_room *r, int64_t seq, uint64_t from,
             const void *data, size_t len)
{
    struct pc_pending **pp = &r->pending;
    while (*pp != NULL && (*pp)->seq < seq) {
        pp = &(*pp)->next;
    }
    if (*pp != NULL && (*pp)->seq == seq) {
        return; /* a duplicate */
    }
    struct pc_pending *p = malloc(sizeof(*p) + len);
    if (p == NULL) {
        return;
    }
    p->seq = seq;
    p->from = from;
    p->len = len;
    memcpy(p->data, data, len);
    p->next = *pp;
    *pp = p;
    if (r->pending_since_ms == 0) {
        r->pending_since_ms = pc_now_ms();
    }
    /* A pool checks for gaps all the time; a single server only while
     * something waits (pc_pool_gap_check stops it again). */
    if (!uv_is_active((uv_handle_t *)&c->gap_timer)) {
        (void)uv_timer_start(&c->gap_timer, pc_pool_gap_check, 100, 100);
    }
}

void
pc_pool_release(struct pc_chat *c, struct pc_room *r)
{
    while (r->pending != NULL && r->pending->seq <= r->last_seq + 1) {
        struct pc_pending *p = r->pending;
        r->pending = p->next;
        if (p->seq == r->last_seq + 1) {
            pc_deliver_room_wire(c, p->from, p->data, p->len, false);
        }
        free(p);
    }
}

struct gap_ctx {
    struct pc_chat *chat;
    int64_t room_id;
    int64_t upto; /* the first held seq */
};

static void
gap_filled(void *arg, int status, PGresult *res)
{
    struct gap_ctx *g = arg;
    struct pc_chat *c = g->chat;
    char key[24];

    (void)snprintf(key, sizeof(key), "%" PRId64, g->room_id);
    struct pc_room *r = pc_map_get(&c->rooms_by_id, key);
    if (r != NULL && status == 0) {
        for (int i = 0; i < PQntuples(res); i++) {
            pc_deliver_room_row(c, r, res, i);
        }
        /* Seqs are taken only by committed transactions: anything still
         * missing below the held one does not exist. */
        if (r->last_seq < g->upto - 1) {
            r->last_seq = g->upto - 1;
        }
        r->pending_since_ms = 0;
        pc_pool_release(c, r);
        if (r->pending != NULL) {
            r->pending_since_ms = pc_now_ms();
        }
    } else if (r != NULL) {
        r->pending_since_ms = pc_now_ms(); /* try again later */
    }
    free(g);
}

void
pc_pool_gap_check(uv_timer_t *t)
{
    struct pc_chat *c = t->data;
    uint64_t now = pc_now_ms();
    size_t pos = 0;
    struct pc_room *r;
    bool held = false;

    while ((r = pc_map_next(&c->rooms, &pos, NULL)) != NULL) {
        held = held || r->pending != NULL;
        if (r->pending == NULL || r->pending_since_ms == 0
            || now - r->pending_since_ms < GAP_WAIT_MS) {
            continue;
        }
        struct gap_ctx *g = calloc(1, sizeof(*g));
        if (g == NULL) {
            continue;
        }
        g->chat = c;
        g->room_id = r->id;
        g->upto = r->pending->seq;
        char room[24], after[24], before[24], lim[24];
        int64_t want = g->upto - r->last_seq - 1;
        (void)snprintf(room, sizeof(room), "%" PRId64, r->id);
        (void)snprintf(after, sizeof(after), "%" PRId64, r->last_seq);
        (void)snprintf(before, sizeof(before), "%" PRId64, g->upto);
        (void)snprintf(lim, sizeof(lim), "%" PRId64,
                       want < GAP_FETCH_MAX ? want : GAP_FETCH_MAX);
        const char *params[4] = {room, after, before, lim};
        r->pending_since_ms = 0; /* one fetch at a time */
        pc_log(PC_LOG_INFO, "pool", "filling a gap from the database room=%s "
               "after=%s before=%s", r->name, after, before);
        if (pc_store_query(c->store, PC_STMT_HIST_AFTER, params, 4,
                           now + c->conf->db_post_timeout_ms, gap_filled, g)
            < 0) {
            free(g);
            r->pending_since_ms = now;
        }
    }
    if (!held && !c->pooled) {
        (void)uv_timer_stop(t);
    }
}
