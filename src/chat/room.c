#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "chat/internal.h"
#include "irc/numeric.h"
#include "util/err.h"
#include "util/log.h"

static const struct {
    char letter;
    unsigned bit;
} room_mode_letters[] = {
    {'i', MODE_INVITE},    {'m', MODE_MODERATED}, {'n', MODE_NOEXTERNAL},
    {'s', MODE_SECRET},    {'t', MODE_TOPICLOCK},
};

struct pc_room *
pc_room_find(struct pc_chat *c, const char *name)
{
    char folded[PC_CHAN_MAX + 1];
    size_t len = strlen(name);
    if (len > PC_CHAN_MAX) {
        return NULL;
    }
    pc_irc_casefold(folded, name, len);
    return pc_map_get(&c->rooms, folded);
}

static char *
col_dup(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return NULL;
    }
    return strdup(PQgetvalue(res, row, col));
}

static int64_t
col_i64(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return 0;
    }
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static unsigned
modes_parse(const char *s)
{
    unsigned m = 0;
    for (; s != NULL && *s; s++) {
        for (size_t i = 0; i < sizeof(room_mode_letters) / sizeof(room_mode_letters[0]); i++) {
            if (room_mode_letters[i].letter == *s) {
                m |= room_mode_letters[i].bit;
            }
        }
    }
    return m;
}

void
pc_room_modes_str(const struct pc_room *r, bool show_key, char *out,
                  size_t cap)
{
    size_t n = 0;
    out[n++] = '+';
    unsigned modes = pc_room_modes(r);
    for (size_t i = 0; i < sizeof(room_mode_letters) / sizeof(room_mode_letters[0]); i++) {
        if (modes & room_mode_letters[i].bit) {
            out[n++] = room_mode_letters[i].letter;
        }
    }
    if (r->key != NULL) {
        out[n++] = 'k';
    }
    if (r->limit > 0) {
        out[n++] = 'l';
    }
    out[n] = '\0';
    if (r->key != NULL) {
        n += (size_t)snprintf(out + n, cap - n, " %s",
                              show_key ? r->key : "*");
    }
    if (r->limit > 0 && n < cap) {
        (void)snprintf(out + n, cap - n, " %u", r->limit);
    }
}

/* Row shape of PC_STMT_ROOM_LIST and PC_STMT_ROOM_CREATE. Returns the room,
 * merged into the one already known by that id. */
struct pc_room *
pc_room_from_row(struct pc_chat *c, void *pgresult, int row)
{
    PGresult *res = pgresult;
    char idkey[24];
    const char *name = PQgetvalue(res, row, 1);
    char folded[PC_CHAN_MAX + 1];
    size_t len = strlen(name);

    if (len == 0 || len > PC_CHAN_MAX) {
        return NULL;
    }
    pc_irc_casefold(folded, name, len);
    struct pc_room *r = pc_map_get(&c->rooms, folded);
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
        r->folded = strdup(folded);
        r->name = strdup(name);
        if (r->folded == NULL || r->name == NULL
            || pc_map_put(&c->rooms, folded, r) < 0) {
            pc_room_free(r);
            return NULL;
        }
    }
    /* The room model's columns are the database's word, even for a room
     * already known (a reload after NOTIFY pchat_acl). */
    if (PQnfields(res) >= 14) {
        const char *type = PQgetvalue(res, row, 11);
        const char *privacy = PQgetvalue(res, row, 12);
        r->category_id = col_i64(res, row, 10);
        r->type = strcmp(type, "auditorium") == 0 ? PC_ROOM_AUDITORIUM
                                                  : PC_ROOM_NORMAL;
        r->privacy = strcmp(privacy, "secret") == 0   ? PC_PRIV_SECRET
                     : strcmp(privacy, "closed") == 0 ? PC_PRIV_CLOSED
                                                      : PC_PRIV_OPEN;
        r->disabled = strcmp(PQgetvalue(res, row, 13), "t") == 0;
    }
    if (r->loaded) {
        /* A topic set in the database (pchatctl, the HTTP API, ROOM SET
         * topic) replaces ours when it is at least as new. */
        const char *topic = PQgetvalue(res, row, 2);
        int64_t at = col_i64(res, row, 4);
        if (at >= r->topic_at && !PQgetisnull(res, row, 2)
            && (r->topic == NULL || strcmp(topic, r->topic) != 0)) {
            free(r->topic);
            free(r->topic_by);
            r->topic = col_dup(res, row, 2);
            r->topic_by = col_dup(res, row, 3);
            r->topic_at = at;
        }
        return r;
    }
    r->id = col_i64(res, row, 0);
    free(r->topic);
    free(r->topic_by);
    free(r->key);
    r->topic = col_dup(res, row, 2);
    r->topic_by = col_dup(res, row, 3);
    r->topic_at = col_i64(res, row, 4);
    r->modes = modes_parse(PQgetvalue(res, row, 5));
    r->key = col_dup(res, row, 6);
    r->limit = (uint32_t)col_i64(res, row, 7);
    r->created_at = col_i64(res, row, 8);
    r->last_seq = col_i64(res, row, 9);
    r->loaded = true;
    (void)snprintf(idkey, sizeof(idkey), "%" PRId64, r->id);
    (void)pc_map_put(&c->rooms_by_id, idkey, r);
    return r;
}

void
pc_room_free(struct pc_room *r)
{
    while (r->pending != NULL) {
        struct pc_pending *p = r->pending;
        r->pending = p->next;
        free(p);
    }
    while (r->waiting != NULL) {
        struct pc_join_wait *w = r->waiting;
        r->waiting = w->next;
        free(w->key);
        free(w);
    }
    for (size_t i = 0; i < r->ninvites; i++) {
        free(r->invites[i]);
    }
    free(r->invites);
    free(r->members);
    pc_prin_list_clear(&r->role_members);
    pc_prin_list_clear(&r->role_managers);
    pc_prin_list_clear(&r->role_presenters);
    free(r->name);
    free(r->folded);
    free(r->topic);
    free(r->topic_by);
    free(r->key);
    free(r);
}

int
pc_room_add_member(struct pc_room *r, struct pc_session *s, unsigned flags)
{
    if (r->nmembers == r->capmembers) {
        size_t cap = r->capmembers ? r->capmembers * 2 : 8;
        void *p = realloc(r->members, cap * sizeof(*r->members));
        if (p == NULL) {
            return -ENOMEM;
        }
        r->members = p;
        r->capmembers = cap;
    }
    if (s->nrooms == s->caprooms) {
        size_t cap = s->caprooms ? s->caprooms * 2 : 4;
        void *p = realloc(s->rooms, cap * sizeof(*s->rooms));
        if (p == NULL) {
            return -ENOMEM;
        }
        s->rooms = p;
        s->caprooms = cap;
    }
    r->members[r->nmembers++] = s;
    s->rooms[s->nrooms].room = r;
    s->rooms[s->nrooms].flags = flags;
    s->nrooms++;
    return 0;
}

/* Removes s from r and r from s. */
void
pc_room_remove_member(struct pc_room *r, struct pc_session *s)
{
    for (size_t i = 0; i < r->nmembers; i++) {
        if (r->members[i] == s) {
            r->members[i] = r->members[--r->nmembers];
            break;
        }
    }
    for (size_t i = 0; i < s->nrooms; i++) {
        if (s->rooms[i].room == r) {
            s->rooms[i] = s->rooms[--s->nrooms];
            break;
        }
    }
}

void
pc_room_send(struct pc_room *r, const char *line, size_t len,
             const struct pc_session *except)
{
    for (size_t i = 0; i < r->nmembers; i++) {
        if (r->members[i] != except) {
            pc_sess_send_raw(r->members[i], line, len);
        }
    }
}

bool
pc_room_invited(const struct pc_room *r, const char *nick_folded)
{
    for (size_t i = 0; i < r->ninvites; i++) {
        if (strcmp(r->invites[i], nick_folded) == 0) {
            return true;
        }
    }
    return false;
}

void
pc_room_uninvite(struct pc_room *r, const char *nick_folded)
{
    for (size_t i = 0; i < r->ninvites; i++) {
        if (strcmp(r->invites[i], nick_folded) == 0) {
            free(r->invites[i]);
            r->invites[i] = r->invites[--r->ninvites];
            return;
        }
    }
}

int
pc_room_invite(struct pc_room *r, const char *nick_folded)
{
    if (pc_room_invited(r, nick_folded)) {
        return 0;
    }
    /* Invitations are volatile and few; keep the list bounded. */
    if (r->ninvites >= 256) {
        pc_room_uninvite(r, r->invites[0]);
    }
    char **p = realloc(r->invites, (r->ninvites + 1) * sizeof(*p));
    if (p == NULL) {
        return -ENOMEM;
    }
    r->invites = p;
    r->invites[r->ninvites] = strdup(nick_folded);
    if (r->invites[r->ninvites] == NULL) {
        return -ENOMEM;
    }
    r->ninvites++;
    return 0;
}

static void
rooms_loaded_cb(void *arg, int status, PGresult *res)
{
    struct pc_chat *c = arg;

    c->rooms_loading = false;
    if (status != 0) {
        pc_log(PC_LOG_WARN, "rooms", "loading rooms failed: %s",
               pc_strerror(status));
        return;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        (void)pc_room_from_row(c, res, i);
    }
    c->rooms_loaded = true;
    pc_log(PC_LOG_NOTICE, "rooms", "loaded rooms count=%d", n);
}

void
pc_rooms_load(struct pc_chat *c)
{
    if (c->rooms_loading) {
        return;
    }
    if (pc_store_query(c->store, PC_STMT_ROOM_LIST, NULL, 0, 0,
                       rooms_loaded_cb, c) == 0) {
        c->rooms_loading = true;
    }
}

void
pc_send_topic(struct pc_session *s, struct pc_room *r, bool silent)
{
    if (r->topic == NULL || r->topic[0] == '\0') {
        if (!silent) {
            pc_sess_num(s, PC_RPL_NOTOPIC, "%s :No topic is set", r->name);
        }
        return;
    }
    pc_sess_num(s, PC_RPL_TOPIC, "%s :%s", r->name, r->topic);
    pc_sess_num(s, PC_RPL_TOPICWHOTIME, "%s %s %" PRId64, r->name,
                r->topic_by && r->topic_by[0] ? r->topic_by : "*",
                r->topic_at);
}

void
pc_send_names(struct pc_session *s, struct pc_room *r)
{
    char line[PC_IRC_BODY_MAX];
    size_t head, n;
    unsigned myflags;
    bool member = pc_sess_in_room(s, r, &myflags);
    bool secret = (pc_room_modes(r) & MODE_SECRET) != 0;
    const char *sym = secret ? "@" : "=";
    struct pc_rights rt;

    pc_acl_rights(s->chat, s, r, &rt);
    /* A room one may not see answers like a missing one. */
    if (!member && (!rt.see || (secret && !rt.member && !rt.manage))) {
        pc_sess_num(s, PC_RPL_ENDOFNAMES, "%s :End of /NAMES list", r->name);
        return;
    }
    int w = snprintf(line, sizeof(line), ":%s %s %s %s %s :",
                     pc_server_name(s->chat), PC_RPL_NAMREPLY, s->nick, sym,
                     r->name);
    if (w < 0 || (size_t)w >= sizeof(line)) {
        return;
    }
    head = n = (size_t)w;
    for (size_t i = 0; i < r->nmembers; i++) {
        struct pc_session *m = r->members[i];
        unsigned f = 0;
        char entry[PC_NICK_MAX + 100];
        char prefix[3];
        size_t pn = 0;

        if (m->invisible && !member) {
            continue;
        }
        (void)pc_sess_in_room(m, r, &f);
        if (f & MEMBER_OP) {
            prefix[pn++] = '@';
        }
        if ((f & MEMBER_VOICE) && (pn == 0 || (s->caps & CAP_MULTI_PREFIX))) {
            prefix[pn++] = '+';
        }
        prefix[pn] = '\0';
        if (s->caps & CAP_USERHOST_IN_NAMES) {
            char mask[160];
            w = snprintf(entry, sizeof(entry), "%s%s", prefix,
                         pc_sess_mask(m, mask, sizeof(mask)));
        } else {
            w = snprintf(entry, sizeof(entry), "%s%s", prefix, m->nick);
        }
        if (w < 0) {
            continue;
        }
        size_t elen = (size_t)w < sizeof(entry) ? (size_t)w : sizeof(entry) - 1;
        if (n + elen + 3 > PC_IRC_BODY_MAX - 2 && n > head) {
            line[n++] = '\r';
            line[n++] = '\n';
            pc_sess_send_raw(s, line, n);
            n = head;
        }
        if (n > head) {
            line[n++] = ' ';
        }
        memcpy(line + n, entry, elen);
        n += elen;
    }
    if (n > head) {
        line[n++] = '\r';
        line[n++] = '\n';
        pc_sess_send_raw(s, line, n);
    }
    pc_sess_num(s, PC_RPL_ENDOFNAMES, "%s :End of /NAMES list", r->name);
}

void
pc_room_part(struct pc_session *s, struct pc_room *r, const char *reason)
{
    char mask[160];
    char line[PC_IRC_BODY_MAX + 64];
    int n = snprintf(line, sizeof(line), ":%s PART %s%s%s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), r->name,
                     reason[0] ? " :" : "", reason);
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_room_send(r, line, (size_t)n, NULL);
        line[n - 2] = '\0';
        pc_pool_part(s->chat, s, r, line);
    }
    pc_room_remove_member(r, s);
}

/* Whoever opens an empty room of the default category that has no
 * managers gets a volatile @, as on a plain IRC server; other rooms have
 * their managers (docs/room-model.md). */
static bool
volatile_op(const struct pc_room *r)
{
    return r->nmembers == 0 && r->role_managers.n == 0
           && (r->category_id == 0 || r->category_id == 1);
}

void
pc_join_room(struct pc_session *s, struct pc_room *r, const char *key)
{
    unsigned flags = 0;
    struct pc_rights rt;

    if (pc_sess_in_room(s, r, NULL)) {
        return;
    }
    pc_acl_rights(s->chat, s, r, &rt);
    bool invited = pc_room_invited(r, s->nick_folded);
    /* A manager's invitation lets a non-member in once (not a denied
     * principal, not into a disabled room). */
    bool pass = invited && !rt.denied && !r->disabled;
    if (!rt.see && !pass) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", r->name);
        return;
    }
    if (r->disabled) {
        pc_sess_num(s, PC_ERR_BANNEDFROMCHAN,
                    "%s :Cannot join channel (room disabled)", r->name);
        return;
    }
    if (!rt.join && !pass) {
        pc_sess_num(s, PC_ERR_INVITEONLYCHAN,
                    "%s :Cannot join channel (+i, members only)", r->name);
        return;
    }
    if (s->nrooms >= s->chat->conf->max_joins) {
        pc_sess_num(s, PC_ERR_TOOMANYCHANNELS,
                    "%s :You have joined too many channels", r->name);
        return;
    }
    if ((r->modes & MODE_INVITE) && !invited && !rt.member && !rt.manage) {
        pc_sess_num(s, PC_ERR_INVITEONLYCHAN, "%s :Cannot join channel (+i)",
                    r->name);
        return;
    }
    if (r->key != NULL && !invited
        && (key == NULL || strcmp(key, r->key) != 0)) {
        pc_sess_num(s, PC_ERR_BADCHANNELKEY, "%s :Cannot join channel (+k)",
                    r->name);
        return;
    }
    if (r->limit > 0 && r->nmembers >= r->limit && !invited) {
        pc_sess_num(s, PC_ERR_CHANNELISFULL, "%s :Cannot join channel (+l)",
                    r->name);
        return;
    }
    flags = pc_acl_role_flags(s->chat, s, r);
    if (!rt.join) {
        flags |= MEMBER_GUEST;
    }
    if (volatile_op(r)) {
        flags |= MEMBER_OP;
    }
    if (pc_room_add_member(r, s, flags) < 0) {
        pc_sess_std(s, "FAIL", "JOIN", "TEMPORARILY_UNAVAILABLE", r->name,
                    "Out of memory");
        return;
    }
    pc_room_uninvite(r, s->nick_folded);
    pc_pool_join(s->chat, s, r, flags);

    pc_room_send_join(r, s, NULL);
    pc_send_topic(s, r, true);
    pc_send_names(s, r);
    if (!(s->caps & CAP_CHATHISTORY) && rt.history) {
        pc_history_replay(s, r);
    }
}
