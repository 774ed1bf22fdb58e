/* The room model's cache and what follows from it for connected users.
 *
 * Rooms carry their own attributes (category, type, privacy, disabled) and
 * principal lists; categories and group memberships live here. All of it
 * is reloaded from the database at every READY (notifications sent while
 * disconnected are lost) and on every NOTIFY pchat_acl: the payload names
 * what changed, but one reload is two queries over a few tables, so any
 * notification reloads everything (coalesced: one reload in flight, one
 * more queued at most). After a reload, every local member whose right to
 * be in a room is gone is parted with a reason, and role prefixes (@ for
 * managers, + for presenters of an auditorium) follow the roles. */
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

#define DEFAULT_CATEGORY 1
#define ACCT_ADMIN 1
#define ACCT_DISABLED 2

struct acl_cat {
    struct pc_policy_cat pol;
};

struct acl_groups {
    int64_t *ids;
    size_t n;
    size_t cap;
};

/* Room ids named by "room <id>" notifications: a room the next reload
 * does not find was deleted. */
struct id_set {
    int64_t *v;
    size_t n;
    size_t cap;
};

struct pc_acl {
    struct pc_map cats;   /* decimal id -> struct acl_cat */
    struct pc_map groups; /* decimal account id -> struct acl_groups */
    struct pc_map flagged; /* decimal account id -> ACCT_* bits (as a
                              pointer): administrators, disabled accounts */
    bool loaded;
    bool loading;
    bool again;
    uint64_t reloads;
    uint64_t gen;           /* reloads started */
    struct id_set notified; /* since the last reload started */
    struct id_set checking; /* by the reload in flight */
};

static void
id_set_add(struct id_set *s, int64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == id) {
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        void *p = realloc(s->v, cap * sizeof(*s->v));
        if (p == NULL) {
            return; /* a deletion noticed at the next restart */
        }
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = id;
}

static void
cat_free(struct acl_cat *k)
{
    pc_prin_list_clear(&k->pol.allowed);
    pc_prin_list_clear(&k->pol.denied);
    pc_prin_list_clear(&k->pol.creators);
    free(k);
}

static void
maps_free(struct pc_map *cats, struct pc_map *groups, struct pc_map *flagged)
{
    size_t pos = 0;
    struct acl_cat *k;
    struct acl_groups *g;

    while ((k = pc_map_next(cats, &pos, NULL)) != NULL) {
        cat_free(k);
    }
    pc_map_free(cats);
    pos = 0;
    while ((g = pc_map_next(groups, &pos, NULL)) != NULL) {
        free(g->ids);
        free(g);
    }
    pc_map_free(groups);
    pc_map_free(flagged); /* values are not pointers to memory */
}

/* An account deleted in the database (pchat_account_delete, 0011): its
 * local sessions end, as a disabled account's do after the reload. */
static void
close_deleted_account(struct pc_chat *c, int64_t account_id)
{
    size_t pos = 0;
    struct pc_session *s;

    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        /* Registered or not: a login finished before CAP END counts. */
        if (s->account_id != account_id || s->state == SESS_CLOSING) {
            continue;
        }
        pc_log(PC_LOG_NOTICE, "acl", "account deleted, closing "
               "session=%" PRIu64 " account=%s", s->id, s->account);
        pc_sess_error_close(s, "Your account was deleted");
    }
}

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct pc_chat *c = arg;
    long long id;
    pc_log(PC_LOG_DEBUG, "acl", "notified channel=%s payload=%s", channel,
           payload);
    if (sscanf(payload, "room %lld", &id) == 1) {
        id_set_add(&c->acl->notified, (int64_t)id);
    } else if (sscanf(payload, "account_deleted %lld", &id) == 1 && id > 0) {
        close_deleted_account(c, (int64_t)id);
    }
    pc_acl_reload(c);
}

int
pc_acl_new(struct pc_chat *c)
{
    c->acl = calloc(1, sizeof(*c->acl));
    if (c->acl == NULL) {
        return -ENOMEM;
    }
    pc_map_init(&c->acl->cats);
    pc_map_init(&c->acl->groups);
    pc_map_init(&c->acl->flagged);
    if (c->store != NULL) {
        int rc = pc_store_listen(c->store, "pchat_acl", on_notify, c);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

void
pc_acl_free(struct pc_chat *c)
{
    if (c->acl == NULL) {
        return;
    }
    maps_free(&c->acl->cats, &c->acl->groups, &c->acl->flagged);
    free(c->acl->notified.v);
    free(c->acl->checking.v);
    free(c->acl);
    c->acl = NULL;
}

bool
pc_acl_loaded(const struct pc_chat *c)
{
    return c->acl != NULL && c->acl->loaded;
}

static struct acl_cat *
cat_get(const struct pc_chat *c, int64_t id)
{
    char key[24];
    (void)snprintf(key, sizeof(key), "%" PRId64,
                   id != 0 ? id : DEFAULT_CATEGORY);
    return pc_map_get(&c->acl->cats, key);
}

static void
user_of(const struct pc_chat *c, const struct pc_session *s,
        struct pc_policy_user *u)
{
    char key[24];
    memset(u, 0, sizeof(*u));
    u->account_id = s->account_id;
    u->is_admin = s->is_admin;
    if (s->account_id != 0) {
        (void)snprintf(key, sizeof(key), "%" PRId64, s->account_id);
        const struct acl_groups *g = pc_map_get(&c->acl->groups, key);
        if (g != NULL) {
            u->groups = g->ids;
            u->ngroups = g->n;
        }
    }
}

void
pc_acl_rights(struct pc_chat *c, const struct pc_session *s,
              const struct pc_room *r, struct pc_rights *out)
{
    struct pc_policy_user u;
    const struct acl_cat *k = cat_get(c, r->category_id);
    struct pc_policy_room room = {
        .type = r->type,
        .privacy = r->privacy,
        .disabled = r->disabled,
        .members = &r->role_members,
        .managers = &r->role_managers,
        .presenters = &r->role_presenters,
        .cat = k ? &k->pol : NULL,
    };
    user_of(c, s, &u);
    pc_policy_rights(&room, &u, out);
}

bool
pc_acl_can_create(struct pc_chat *c, const struct pc_session *s,
                  int64_t category_id)
{
    struct pc_policy_user u;
    const struct acl_cat *k = cat_get(c, category_id);
    user_of(c, s, &u);
    return pc_policy_can_create(k ? &k->pol : NULL, &u);
}

bool
pc_acl_invitations(struct pc_chat *c, const struct pc_room *r)
{
    const struct acl_cat *k = cat_get(c, r->category_id);
    return k != NULL && k->pol.invitations_allowed;
}

unsigned
pc_acl_role_flags(struct pc_chat *c, const struct pc_session *s,
                  const struct pc_room *r)
{
    struct pc_rights rt;
    unsigned f = 0;
    pc_acl_rights(c, s, r, &rt);
    if (rt.manage) {
        f |= MEMBER_OP | MEMBER_ROLE_OP;
    }
    if (rt.presenter && r->type == PC_ROOM_AUDITORIUM) {
        f |= MEMBER_VOICE | MEMBER_ROLE_VOICE;
    }
    return f;
}

unsigned
pc_room_modes(const struct pc_room *r)
{
    unsigned m = r->modes;
    if (r->type == PC_ROOM_AUDITORIUM) {
        m |= MODE_MODERATED;
    }
    if (r->privacy == PC_PRIV_SECRET) {
        m |= MODE_SECRET;
    }
    if (r->privacy != PC_PRIV_OPEN) {
        m |= MODE_INVITE;
    }
    return m;
}

/* Applying a reload to connected users. */

static void
send_role_mode(struct pc_chat *c, struct pc_room *r, struct pc_session *s,
               bool plus, char letter)
{
    char line[PC_IRC_BODY_MAX];
    int n = snprintf(line, sizeof(line), ":%s MODE %s %c%c %s\r\n",
                     pc_server_name(c), r->name, plus ? '+' : '-', letter,
                     s->nick);
    if (n > 2 && (size_t)n < sizeof(line)) {
        pc_room_send(r, line, (size_t)n, NULL);
        line[n - 2] = '\0';
        pc_pool_room(c, r, line);
    }
}

/* Brings one local member's role flags in line with the roles. */
static void
apply_roles(struct pc_chat *c, struct pc_room *r, struct pc_session *s)
{
    unsigned cur = 0;
    (void)pc_sess_in_room(s, r, &cur);
    unsigned want = pc_acl_role_flags(c, s, r);
    unsigned next = cur;
    static const struct {
        unsigned flag, role;
        char letter;
    } kinds[] = {{MEMBER_OP, MEMBER_ROLE_OP, 'o'},
                 {MEMBER_VOICE, MEMBER_ROLE_VOICE, 'v'}};

    for (size_t i = 0; i < 2; i++) {
        if (want & kinds[i].role) {
            next |= kinds[i].flag | kinds[i].role;
        } else if (cur & kinds[i].role) {
            next &= ~(kinds[i].flag | kinds[i].role);
        }
    }
    if (next == cur) {
        return;
    }
    pc_sess_set_flags(s, r, next);
    pc_pool_flags(c, s, r, next);
    for (size_t i = 0; i < 2; i++) {
        if ((cur ^ next) & kinds[i].flag) {
            send_role_mode(c, r, s, (next & kinds[i].flag) != 0,
                           kinds[i].letter);
        }
    }
}

/* Accounts changed in the database: an administrator no longer (or
 * newly) one, a disabled or deleted account. */
static void
apply_accounts(struct pc_chat *c)
{
    size_t pos = 0;
    struct pc_session *s;

    while ((s = pc_map_next(&c->sessions, &pos, NULL)) != NULL) {
        char key[24];
        if (s->account_id == 0 || s->state != SESS_ACTIVE) {
            continue;
        }
        (void)snprintf(key, sizeof(key), "%" PRId64, s->account_id);
        uintptr_t f = (uintptr_t)pc_map_get(&c->acl->flagged, key);
        if (f & ACCT_DISABLED) {
            pc_log(PC_LOG_NOTICE, "acl", "account disabled, closing "
                   "session=%" PRIu64 " account=%s", s->id, s->account);
            pc_sess_error_close(s, "Your account was disabled");
            continue;
        }
        s->is_admin = (f & ACCT_ADMIN) != 0;
    }
}

static void
enforce(struct pc_chat *c)
{
    size_t pos = 0;
    struct pc_room *r;

    apply_accounts(c);
    while ((r = pc_map_next(&c->rooms, &pos, NULL)) != NULL) {
        if (!r->loaded) {
            continue;
        }
        for (size_t i = 0; i < r->nmembers;) {
            struct pc_session *s = r->members[i];
            struct pc_rights rt;
            if (s->member != 0 || s->state != SESS_ACTIVE) {
                i++; /* another node answers for its own users */
                continue;
            }
            unsigned flags = 0;
            (void)pc_sess_in_room(s, r, &flags);
            pc_acl_rights(c, s, r, &rt);
            bool guest = (flags & MEMBER_GUEST) && !rt.denied && !r->disabled;
            if (!rt.join && !guest) {
                /* Removes r->members[i]: the same index is next. */
                pc_room_part(s, r, r->disabled
                                       ? "Room disabled by an administrator"
                                       : "You may no longer be in this room");
                continue;
            }
            apply_roles(c, r, s);
            i++;
        }
    }
}

/* Reloading. */

/* A room deleted in the database (pchat_room_delete): its local members
 * are parted, the others are left to their own nodes, and it is
 * forgotten, so that its name is free again. */
static void
room_gone(struct pc_chat *c, struct pc_room *r)
{
    char key[24];

    pc_log(PC_LOG_NOTICE, "acl", "room deleted room=%s id=%" PRId64, r->name,
           r->id);
    while (r->nmembers > 0) {
        struct pc_session *s = r->members[r->nmembers - 1];
        if (s->member == 0) {
            pc_room_part(s, r, "Room deleted by an administrator");
        } else {
            pc_room_remove_member(r, s);
        }
    }
    r->disabled = true;
    if (r->waiting != NULL) {
        return; /* JOINs waiting for it hear 403 when the model loads */
    }
    (void)snprintf(key, sizeof(key), "%" PRId64, r->id);
    if (pc_map_get(&c->rooms_by_id, key) == r) {
        (void)pc_map_del(&c->rooms_by_id, key);
    }
    (void)pc_map_del(&c->rooms, r->folded);
    pc_room_free(r);
}

static void
rooms_cb(void *arg, int status, PGresult *res)
{
    struct pc_chat *c = arg;
    struct pc_acl *a = c->acl;
    if (status != 0) {
        return; /* acl_cb hears of it too and logs */
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct pc_room *r = pc_room_find(c, PQgetvalue(res, i, 1));
        const char *before = r && r->loaded && r->topic ? r->topic : "";
        char *old = r && r->loaded ? strdup(before) : NULL;
        r = pc_room_from_row(c, res, i);
        if (r != NULL) {
            r->acl_mark = a->gen;
        }
        if (r != NULL && old != NULL && r->topic != NULL
            && strcmp(old, r->topic) != 0) {
            /* Changed in the database: local members hear of it (every
             * node reloads, so nothing goes to the pool). */
            char line[PC_IRC_LINE_MAX];
            const char *by = r->topic_by && r->topic_by[0]
                                 ? r->topic_by
                                 : pc_server_name(c);
            int len = snprintf(line, sizeof(line), ":%s TOPIC %s :%s\r\n",
                               by, r->name, r->topic);
            if (len > 0 && (size_t)len < sizeof(line)) {
                for (size_t k = 0; k < r->nmembers; k++) {
                    if (r->members[k]->member == 0) {
                        pc_sess_send_raw(r->members[k], line, (size_t)len);
                    }
                }
            }
        }
        free(old);
    }
    c->rooms_loaded = true;
    /* A notified room the database no longer has was deleted. */
    for (size_t i = 0; i < a->checking.n; i++) {
        char key[24];
        (void)snprintf(key, sizeof(key), "%" PRId64, a->checking.v[i]);
        struct pc_room *r = pc_map_get(&c->rooms_by_id, key);
        if (r != NULL && r->loaded && r->acl_mark != a->gen) {
            room_gone(c, r);
        }
    }
    a->checking.n = 0;
}

static int
groups_add(struct pc_map *groups, int64_t account, int64_t group)
{
    char key[24];
    (void)snprintf(key, sizeof(key), "%" PRId64, account);
    struct acl_groups *g = pc_map_get(groups, key);
    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL || pc_map_put(groups, key, g) < 0) {
            free(g);
            return -ENOMEM;
        }
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        void *p = realloc(g->ids, cap * sizeof(*g->ids));
        if (p == NULL) {
            return -ENOMEM;
        }
        g->ids = p;
        g->cap = cap;
    }
    g->ids[g->n++] = group;
    return 0;
}

static struct pc_prin_list *
cat_list(struct acl_cat *k, const char *role)
{
    if (strcmp(role, "allowed") == 0) {
        return &k->pol.allowed;
    }
    if (strcmp(role, "denied") == 0) {
        return &k->pol.denied;
    }
    if (strcmp(role, "creator") == 0) {
        return &k->pol.creators;
    }
    return NULL;
}

static struct pc_prin_list *
room_list(struct pc_room *r, const char *role)
{
    if (strcmp(role, "member") == 0) {
        return &r->role_members;
    }
    if (strcmp(role, "manager") == 0) {
        return &r->role_managers;
    }
    if (strcmp(role, "presenter") == 0) {
        return &r->role_presenters;
    }
    return NULL;
}

/* Builds the new categories and groups in cats/groups and refills the
 * rooms' principal lists. Rows come in tag order c, p, r, g. */
static int
apply_rows(struct pc_chat *c, PGresult *res, struct pc_map *cats,
           struct pc_map *groups, struct pc_map *flagged)
{
    size_t pos = 0;
    struct pc_room *r;
    int n = PQntuples(res);

    while ((r = pc_map_next(&c->rooms, &pos, NULL)) != NULL) {
        r->role_members.n = r->role_managers.n = r->role_presenters.n = 0;
    }
    for (int i = 0; i < n; i++) {
        char tag = PQgetvalue(res, i, 0)[0];
        int64_t a = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        int64_t b = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        const char *role = PQgetvalue(res, i, 3);
        int kind = pc_prin_kind_parse(PQgetvalue(res, i, 4));
        char key[24];
        struct pc_prin_list *l = NULL;

        (void)snprintf(key, sizeof(key), "%" PRId64, a);
        if (tag == 'c') {
            struct acl_cat *k = calloc(1, sizeof(*k));
            if (k == NULL) {
                return -ENOMEM;
            }
            k->pol.invitations_allowed = (b & 1) != 0;
            k->pol.history_kept = (b & 2) != 0;
            if (pc_map_put(cats, key, k) < 0) {
                cat_free(k);
                return -ENOMEM;
            }
            continue;
        }
        if (tag == 'g') {
            if (groups_add(groups, a, b) < 0) {
                return -ENOMEM;
            }
            continue;
        }
        if (tag == 'a') {
            if (b != 0 && pc_map_put(flagged, key, (void *)(uintptr_t)b) < 0) {
                return -ENOMEM;
            }
            continue;
        }
        if (kind < 0) {
            continue;
        }
        if (tag == 'p') {
            struct acl_cat *k = pc_map_get(cats, key);
            l = k ? cat_list(k, role) : NULL;
        } else if (tag == 'r') {
            r = pc_map_get(&c->rooms_by_id, key);
            l = r ? room_list(r, role) : NULL;
        }
        if (l != NULL && pc_prin_list_add(l, (enum pc_prin_kind)kind, b) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void
acl_cb(void *arg, int status, PGresult *res)
{
    struct pc_chat *c = arg;
    struct pc_acl *a = c->acl;
    struct pc_map cats, groups, flagged;

    a->loading = false;
    if (c->shutting_down) {
        return;
    }
    if (status != 0) {
        pc_log(PC_LOG_WARN, "acl", "loading the room model failed: %s",
               pc_strerror(status));
        /* Kept as it was; the next READY or NOTIFY loads it again. */
        return;
    }
    uint64_t t0 = pc_now_ms();
    pc_map_init(&cats);
    pc_map_init(&groups);
    pc_map_init(&flagged);
    if (apply_rows(c, res, &cats, &groups, &flagged) < 0) {
        pc_log(PC_LOG_ERR, "acl", "out of memory loading the room model");
        maps_free(&cats, &groups, &flagged);
        return;
    }
    maps_free(&a->cats, &a->groups, &a->flagged);
    a->cats = cats;
    a->groups = groups;
    a->flagged = flagged;
    a->loaded = true;
    a->reloads++;
    enforce(c);
    /* The time on the loop: a notice when it is long enough to matter. */
    uint64_t ms = pc_now_ms() - t0;
    pc_log(ms >= 50 ? PC_LOG_NOTICE : PC_LOG_DEBUG, "acl",
           "room model loaded rows=%d reloads=%" PRIu64 " apply_ms=%" PRIu64,
           PQntuples(res), a->reloads, ms);
    /* JOINs whose room arrived before the model did. */
    size_t pos = 0;
    struct pc_room *r;
    while ((r = pc_map_next(&c->rooms, &pos, NULL)) != NULL) {
        if (r->loaded && r->waiting != NULL) {
            pc_room_finish_waiters(c, r, false);
        }
    }
    if (a->again) {
        a->again = false;
        pc_acl_reload(c);
    }
}

void
pc_acl_reload(struct pc_chat *c)
{
    struct pc_acl *a = c->acl;

    if (a == NULL || c->shutting_down) {
        return;
    }
    if (a->loading) {
        a->again = true;
        return;
    }
    /* The rooms notified so far are checked by this reload. */
    for (size_t i = 0; i < a->notified.n; i++) {
        id_set_add(&a->checking, a->notified.v[i]);
    }
    a->notified.n = 0;
    a->gen++;
    if (pc_store_query(c->store, PC_STMT_ROOM_LIST, NULL, 0, 0, rooms_cb, c)
            < 0
        || pc_store_query(c->store, PC_STMT_ACL_LOAD, NULL, 0, 0, acl_cb, c)
               < 0) {
        return;
    }
    a->loading = true;
}

/* Admin SQL functions called from IRC (ROOM, MODE +o/+v). */

struct adm_ctx {
    struct pc_chat *chat;
    uint64_t sess_id;
    char label[PC_LABEL_MAX + 1];
    char cmd[16];
    char room[PC_CHAN_MAX + 1];
    char *ok_text;
    bool json;
};

/* The database's message on one line, without the "ERROR:  " prefix. */
static void
db_message(PGresult *res, char *out, size_t cap)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                        : NULL;
    (void)snprintf(out, cap, "%s", m ? m : "database error");
    for (char *p = out; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            *p = ' ';
        }
    }
}

static void
send_json(struct pc_session *s, const struct adm_ctx *x, const char *json)
{
    /* A room's description can be long: the JSON goes out in pieces that
     * fit a line; a client joins the NOTE ROOM INFO lines. */
    size_t len = strlen(json), chunk = 300;
    char piece[301];
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        memcpy(piece, json + off, n);
        piece[n] = '\0';
        pc_sess_std(s, "NOTE", x->cmd, "INFO", x->room, piece);
    }
}

static void
adm_done(void *arg, int status, PGresult *res)
{
    struct adm_ctx *x = arg;
    struct pc_session *s = pc_sess_by_id(x->chat, x->sess_id);

    if (s != NULL) {
        char msg[400];
        pc_reply_begin(s, x->label);
        if (status == 0) {
            if (x->json && PQntuples(res) == 1) {
                send_json(s, x, PQgetvalue(res, 0, 0));
            }
            if (x->ok_text != NULL) {
                pc_sess_std(s, "NOTE", x->cmd, "OK", x->room, x->ok_text);
            }
        } else if (status == PC_EDB) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            db_message(res, msg, sizeof(msg));
            if (state != NULL && strcmp(state, "42501") == 0) {
                pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED, "%s :%s", x->room,
                            msg);
            } else if (state != NULL && strcmp(state, "P0002") == 0) {
                pc_sess_std(s, "FAIL", x->cmd, "NOT_FOUND", x->room, msg);
            } else if (state != NULL && (strcmp(state, "22023") == 0
                                         || strcmp(state, "23505") == 0)) {
                pc_sess_std(s, "FAIL", x->cmd, "INVALID_PARAMS", x->room,
                            msg);
            } else {
                pc_sess_std(s, "FAIL", x->cmd, "TEMPORARILY_UNAVAILABLE",
                            x->room, msg);
            }
        } else {
            pc_sess_std(s, "FAIL", x->cmd, "TEMPORARILY_UNAVAILABLE",
                        x->room, "The room store is unavailable, nothing "
                        "changed");
        }
        pc_reply_end(s);
    }
    free(x->ok_text);
    free(x);
}

void
pc_acl_admin_call(struct pc_session *s, enum pc_stmt stmt,
                  const char *const *params, int nparams, const char *cmd,
                  const char *room, const char *ok_text, bool json_reply)
{
    struct pc_chat *c = s->chat;
    struct adm_ctx *x = calloc(1, sizeof(*x));

    if (x == NULL) {
        return;
    }
    x->chat = c;
    x->sess_id = s->id;
    x->json = json_reply;
    (void)snprintf(x->cmd, sizeof(x->cmd), "%s", cmd);
    (void)snprintf(x->room, sizeof(x->room), "%s", room);
    if (s->reply.on) {
        (void)snprintf(x->label, sizeof(x->label), "%s", s->reply.label);
    }
    x->ok_text = ok_text ? strdup(ok_text) : NULL;
    if ((ok_text != NULL && x->ok_text == NULL)
        || pc_store_query(c->store, stmt, params, nparams,
                          pc_now_ms() + c->conf->db_post_timeout_ms, adm_done,
                          x) < 0) {
        pc_sess_std(s, "FAIL", cmd, "TEMPORARILY_UNAVAILABLE", room,
                    "The room store is unavailable, nothing changed");
        free(x->ok_text);
        free(x);
        return;
    }
    /* adm_done() answers the label. */
    pc_reply_detach(s);
}
