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

/* The command table: each row names its handler, the parameters it needs
 * and whether registration must come first. Dispatch checks both once, so
 * handlers never do. */

enum { CMD_PRE_REG = 1u << 0 };

struct cmd_def {
    const char *name;
    void (*fn)(struct pc_session *s, const struct pc_irc_msg *m);
    unsigned min_params;
    unsigned flags;
};

const struct pc_cap_def pc_caps[] = {
    {"cap-notify", CAP_CAP_NOTIFY},
    {"message-tags", CAP_MESSAGE_TAGS},
    {"server-time", CAP_SERVER_TIME},
    {"echo-message", CAP_ECHO_MESSAGE},
    {"batch", CAP_BATCH},
    {"labeled-response", CAP_LABELED_RESPONSE},
    {"draft/chathistory", CAP_CHATHISTORY},
    {"multi-prefix", CAP_MULTI_PREFIX},
    {"userhost-in-names", CAP_USERHOST_IN_NAMES},
    {"away-notify", CAP_AWAY_NOTIFY},
    {"sasl", CAP_SASL},
    {"account-tag", CAP_ACCOUNT_TAG},
    {"account-notify", CAP_ACCOUNT_NOTIFY},
    {"extended-join", CAP_EXTENDED_JOIN},
    {NULL, 0},
};

static void
param(char *dst, size_t cap, const struct pc_irc_msg *m, size_t i)
{
    if (i < m->nparams) {
        pc_slice(dst, cap, m->params[i]);
    } else {
        dst[0] = '\0';
    }
}

/* Registration. */

static void
send_welcome(struct pc_session *s)
{
    struct pc_chat *c = s->chat;
    char mask[160];
    char created[32];

    pc_time_format(c->started_wall_ms, created);
    pc_sess_num(s, PC_RPL_WELCOME, ":Welcome to the %s network, %s",
                c->conf->network, pc_sess_mask(s, mask, sizeof(mask)));
    pc_sess_num(s, PC_RPL_YOURHOST, ":Your host is %s, running version "
                PACKAGE_NAME "-" PACKAGE_VERSION, pc_server_name(c));
    pc_sess_num(s, PC_RPL_CREATED, ":This server was created %s", created);
    pc_sess_num(s, PC_RPL_MYINFO, "%s " PACKAGE_NAME "-" PACKAGE_VERSION
                " i iklmnostv klov", pc_server_name(c));
    pc_send_isupport(s);
}

void
pc_send_isupport(struct pc_session *s)
{
    const struct pc_conf *conf = s->chat->conf;

    pc_sess_num(s, PC_RPL_ISUPPORT,
                "AWAYLEN=390 CASEMAPPING=rfc1459 CHANLIMIT=#:%u "
                "CHANMODES=,k,l,imnst CHANNELLEN=%u CHANTYPES=# "
                "CHATHISTORY=%u ELIST= KICKLEN=390 MODES=4 "
                ":are supported by this server",
                conf->max_joins, conf->channel_len, conf->history_max);
    pc_sess_num(s, PC_RPL_ISUPPORT,
                "MSGREFTYPES=msgid,timestamp NETWORK=%s NICKLEN=%u "
                "PREFIX=(ov)@+ STATUSMSG=@+ TARGMAX=PRIVMSG:4,NOTICE:4,"
                "JOIN:,PART:,NAMES:1,WHOIS:1 TOPICLEN=%u UTF8ONLY "
                ":are supported by this server",
                conf->network, conf->nick_len, conf->topic_len);
}

static void cmd_lusers(struct pc_session *s, const struct pc_irc_msg *m);
static void cmd_motd(struct pc_session *s, const struct pc_irc_msg *m);

static void
try_register(struct pc_session *s)
{
    struct pc_chat *c = s->chat;

    if (s->state != SESS_NEW || s->nick[0] == '\0' || !s->has_user
        || s->cap_negotiating) {
        return;
    }
    if (pc_map_get(&c->nicks, s->nick_folded) != s) {
        return;
    }
    if (pc_sasl_hold_registration(s)) {
        return; /* the login's answer comes first */
    }
    if (pc_conf_auth_required(c->conf) && s->account_id == 0) {
        pc_sess_std(s, "FAIL", "*", "ACCOUNT_REQUIRED", NULL,
                    "This server requires an account: log in with SASL "
                    "(" PC_SASL_MECHS ")");
        pc_sess_error_close(s, "An account is required: log in with SASL");
        return;
    }
    s->state = SESS_ACTIVE;
    c->nregistered++;
    if (c->nregistered > c->max_registered) {
        c->max_registered = c->nregistered;
    }
    pc_pool_user(c, s);
    send_welcome(s);
    cmd_lusers(s, NULL);
    cmd_motd(s, NULL);
    pc_log(PC_LOG_INFO, "session", "registered id=%" PRIu64 " nick=%s "
           "peer=%s caps=%#x", s->id, s->nick, s->host, s->caps);
}

void
pc_cmd_try_register(struct pc_session *s)
{
    try_register(s);
}

static void
cap_list(struct pc_session *s, const char *sub, unsigned mask, bool values)
{
    char list[400];
    size_t n = 0;

    list[0] = '\0';
    for (const struct pc_cap_def *d = pc_caps; d->name != NULL; d++) {
        if (!(mask & d->bit)) {
            continue;
        }
        /* CAP LS 302 lists the SASL mechanisms with the cap. */
        const char *val = values && d->bit == CAP_SASL ? "=" PC_SASL_MECHS
                                                       : "";
        int w = snprintf(list + n, sizeof(list) - n, "%s%s%s", n ? " " : "",
                         d->name, val);
        if (w > 0 && (size_t)w < sizeof(list) - n) {
            n += (size_t)w;
        }
    }
    /* soju.im/account-required: informational, never requested (REQ gets
     * NAK as for any unknown cap). */
    if (strcmp(sub, "LS") == 0 && pc_conf_auth_required(s->chat->conf)
        && n + 26 < sizeof(list)) {
        memcpy(list + n, " soju.im/account-required", 26);
    }
    pc_sess_sendf(s, "CAP %s %s :%s", s->nick[0] ? s->nick : "*", sub, list);
}

static void
cmd_cap(struct pc_session *s, const struct pc_irc_msg *m)
{
    char sub[16];
    unsigned all = 0;

    for (const struct pc_cap_def *d = pc_caps; d->name != NULL; d++) {
        all |= d->bit;
    }
    param(sub, sizeof(sub), m, 0);
    for (char *p = sub; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    if (strcmp(sub, "LS") == 0) {
        if (s->state == SESS_NEW) {
            s->cap_negotiating = true;
        }
        if (m->nparams > 1 && atoi(m->params[1].p) >= 302) {
            s->cap_302 = true;
            s->caps |= CAP_CAP_NOTIFY;
        }
        cap_list(s, "LS", all, s->cap_302);
    } else if (strcmp(sub, "LIST") == 0) {
        cap_list(s, "LIST", s->caps, false);
    } else if (strcmp(sub, "REQ") == 0) {
        char req[512];
        unsigned add = 0, del = 0;
        bool ok = m->nparams > 1;
        param(req, sizeof(req), m, 1);
        if (s->state == SESS_NEW) {
            s->cap_negotiating = true;
        }
        for (char *tok = strtok(req, " "); tok != NULL && ok;
             tok = strtok(NULL, " ")) {
            bool minus = tok[0] == '-';
            const struct pc_cap_def *d;
            for (d = pc_caps; d->name != NULL; d++) {
                if (strcmp(d->name, tok + (minus ? 1 : 0)) == 0) {
                    break;
                }
            }
            if (d->name == NULL) {
                ok = false;
            } else if (minus) {
                del |= d->bit;
            } else {
                add |= d->bit;
            }
        }
        param(req, sizeof(req), m, 1);
        if (ok) {
            s->caps = (s->caps | add) & ~del;
            pc_sess_sendf(s, "CAP %s ACK :%s", s->nick[0] ? s->nick : "*",
                          req);
        } else {
            pc_sess_sendf(s, "CAP %s NAK :%s", s->nick[0] ? s->nick : "*",
                          req);
        }
    } else if (strcmp(sub, "END") == 0) {
        s->cap_negotiating = false;
        try_register(s);
    } else {
        pc_sess_num(s, PC_ERR_INVALIDCAPCMD, "%s :Invalid CAP command",
                    sub[0] ? sub : "*");
    }
}

static void
cmd_pass(struct pc_session *s, const struct pc_irc_msg *m)
{
    if (s->state != SESS_NEW) {
        pc_sess_num(s, PC_ERR_ALREADYREGISTERED, ":You may not reregister");
    }
    /* Server passwords are not used; accounts come with SASL. */
}

static void
cmd_nick(struct pc_session *s, const struct pc_irc_msg *m)
{
    struct pc_chat *c = s->chat;
    char nick[PC_NICK_MAX + 1];

    if (m->nparams == 0 || m->params[0].len == 0) {
        pc_sess_num(s, PC_ERR_NONICKNAMEGIVEN, ":No nickname given");
        return;
    }
    if (!pc_irc_nick_valid(m->params[0].p, m->params[0].len,
                           c->conf->nick_len)) {
        char bad[PC_NICK_MAX + 1];
        pc_slice(bad, sizeof(bad), m->params[0]);
        for (char *p = bad; *p; p++) {
            if (*p == ' ' || *p == ':') {
                *p = '_';
            }
        }
        pc_sess_num(s, PC_ERR_ERRONEUSNICKNAME, "%s :Erroneous nickname",
                    bad[0] ? bad : "*");
        return;
    }
    pc_slice(nick, sizeof(nick), m->params[0]);
    /* A logged-in user's nick is the account name (docs/room-model.md). */
    if (s->account_id != 0 && pc_irc_casecmp(nick, s->account) != 0) {
        pc_sess_num(s, PC_ERR_NICKLOCKED, ":You must use a nick assigned to "
                    "you: your account name, %s", s->account);
        return;
    }
    if (pc_cmd_set_nick(s, s->account_id != 0 ? s->account : nick)
        == PC_EEXIST) {
        pc_sess_num(s, PC_ERR_NICKNAMEINUSE, "%s :Nickname is already in use",
                    nick);
        return;
    }
    try_register(s);
}

int
pc_cmd_set_nick(struct pc_session *s, const char *nick)
{
    struct pc_chat *c = s->chat;
    char folded[PC_NICK_MAX + 1];

    pc_irc_casefold(folded, nick, strlen(nick));
    struct pc_session *other = pc_map_get(&c->nicks, folded);
    if (other != NULL && other != s) {
        return PC_EEXIST;
    }
    if (strcmp(nick, s->nick) == 0) {
        return 0;
    }
    if (s->state == SESS_ACTIVE) {
        char mask[160];
        char line[PC_IRC_BODY_MAX];
        int n = snprintf(line, sizeof(line), ":%s NICK %s\r\n",
                         pc_sess_mask(s, mask, sizeof(mask)), nick);
        if (n > 0 && (size_t)n < sizeof(line)) {
            pc_sess_send_raw(s, line, (size_t)n);
            pc_sess_tell_peers(s, line, (size_t)n);
        }
    }
    if (s->nick_folded[0] != '\0') {
        (void)pc_map_del(&c->nicks, s->nick_folded);
    }
    if (pc_map_put(&c->nicks, folded, s) < 0) {
        pc_sess_error_close(s, "Out of memory");
        return -ENOMEM;
    }
    (void)snprintf(s->nick, sizeof(s->nick), "%s", nick);
    (void)snprintf(s->nick_folded, sizeof(s->nick_folded), "%s", folded);
    if (s->state == SESS_ACTIVE) {
        pc_pool_nick(c, s);
    }
    return 0;
}

static void
cmd_user(struct pc_session *s, const struct pc_irc_msg *m)
{
    if (s->state != SESS_NEW || s->has_user) {
        pc_sess_num(s, PC_ERR_ALREADYREGISTERED, ":You may not reregister");
        return;
    }
    char user[sizeof(s->user) - 1];
    pc_slice(user, sizeof(user), m->params[0]);
    /* Keep the user name to characters that are safe in a mask. */
    size_t o = 0;
    for (const char *p = user; *p && o < sizeof(s->user) - 2; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch > ' ' && ch < 0x7f && ch != '@' && ch != '!' && ch != ':') {
            s->user[1 + o++] = (char)ch;
        }
    }
    s->user[0] = '~';
    s->user[1 + o] = '\0';
    if (o == 0) {
        (void)snprintf(s->user, sizeof(s->user), "~user");
    }
    s->realname = pc_strndup(m->params[3].p, m->params[3].len < 128
                                                 ? m->params[3].len
                                                 : 128);
    s->has_user = true;
    try_register(s);
}

static void
cmd_ping(struct pc_session *s, const struct pc_irc_msg *m)
{
    char token[PC_IRC_BODY_MAX];
    param(token, sizeof(token), m, 0);
    pc_sess_sendf(s, "PONG %s :%s", pc_server_name(s->chat), token);
}

static void
cmd_pong(struct pc_session *s, const struct pc_irc_msg *m)
{
    s->ping_out = false;
}

static void
cmd_quit(struct pc_session *s, const struct pc_irc_msg *m)
{
    char reason[400];
    char quit[420];
    param(reason, sizeof(reason), m, 0);
    (void)snprintf(quit, sizeof(quit), "Quit: %s", reason);
    pc_sess_quit(s, quit);
}

/* Server queries. */

static void
cmd_motd(struct pc_session *s, const struct pc_irc_msg *m)
{
    const char *path = s->chat->conf->motd_file;
    FILE *f = path && path[0] ? fopen(path, "r") : NULL;
    char line[400];

    if (f == NULL) {
        pc_sess_num(s, PC_ERR_NOMOTD, ":MOTD File is missing");
        return;
    }
    pc_sess_num(s, PC_RPL_MOTDSTART, ":- %s Message of the day - ",
                pc_server_name(s->chat));
    for (int i = 0; i < 200 && fgets(line, sizeof(line), f) != NULL; i++) {
        line[strcspn(line, "\r\n")] = '\0';
        pc_sess_num(s, PC_RPL_MOTD, ":- %s", line);
    }
    (void)fclose(f);
    pc_sess_num(s, PC_RPL_ENDOFMOTD, ":End of /MOTD command.");
}

static void
cmd_lusers(struct pc_session *s, const struct pc_irc_msg *m)
{
    struct pc_chat *c = s->chat;
    uint64_t unknown = c->nsessions - c->nregistered;

    pc_sess_num(s, PC_RPL_LUSERCLIENT,
                ":There are %" PRIu64 " users and 0 invisible on 1 servers",
                c->nregistered);
    pc_sess_num(s, PC_RPL_LUSEROP, "0 :operator(s) online");
    pc_sess_num(s, PC_RPL_LUSERUNKNOWN, "%" PRIu64 " :unknown connection(s)",
                unknown);
    pc_sess_num(s, PC_RPL_LUSERCHANNELS, "%zu :channels formed",
                c->rooms.count);
    pc_sess_num(s, PC_RPL_LUSERME, ":I have %" PRIu64 " clients and 0 servers",
                c->nregistered);
    pc_sess_num(s, PC_RPL_LOCALUSERS, "%" PRIu64 " %" PRIu64
                " :Current local users %" PRIu64 ", max %" PRIu64,
                c->nregistered, c->max_registered, c->nregistered,
                c->max_registered);
    pc_sess_num(s, PC_RPL_GLOBALUSERS, "%" PRIu64 " %" PRIu64
                " :Current global users %" PRIu64 ", max %" PRIu64,
                c->nregistered, c->max_registered, c->nregistered,
                c->max_registered);
}

static void
cmd_version(struct pc_session *s, const struct pc_irc_msg *m)
{
    pc_sess_num(s, PC_RPL_VERSION, PACKAGE_NAME "-" PACKAGE_VERSION
                " %s :persistent chat", pc_server_name(s->chat));
    pc_send_isupport(s);
}

static void
cmd_time(struct pc_session *s, const struct pc_irc_msg *m)
{
    char when[32];
    pc_time_format(pc_wall_ms(), when);
    pc_sess_num(s, PC_RPL_TIME, "%s :%s", pc_server_name(s->chat), when);
}

/* Rooms. */

/* The room by name if this session may see it (docs/room-model.md): a
 * room one may not see is answered exactly like a missing one. */
static struct pc_room *
visible_room(struct pc_session *s, const char *name, struct pc_rights *rt)
{
    struct pc_rights tmp;
    struct pc_room *r = pc_room_find(s->chat, name);
    if (rt == NULL) {
        rt = &tmp;
    }
    if (r == NULL || !r->loaded) {
        return NULL;
    }
    pc_acl_rights(s->chat, s, r, rt);
    if (!rt->see && !pc_sess_in_room(s, r, NULL)) {
        return NULL;
    }
    return r;
}

struct create_ctx {
    struct pc_chat *chat;
    char name[PC_CHAN_MAX + 1];
    char folded[PC_CHAN_MAX + 1];
    int64_t creator; /* account id, 0 if not logged in */
    bool admin;
    bool retried;
};

static void room_created(void *arg, int status, PGresult *res);

/* Creates the room, or finds it if it exists. */
static int
room_create_send(struct create_ctx *cc)
{
    struct pc_chat *c = cc->chat;
    char account[24];
    (void)snprintf(account, sizeof(account), "%" PRId64, cc->creator);
    const char *params[4] = {cc->name, cc->folded,
                             cc->creator ? account : NULL,
                             cc->admin ? "t" : "f"};
    return pc_store_query(c->store, PC_STMT_ROOM_CREATE_AS, params, 4,
                          pc_now_ms() + c->conf->db_post_timeout_ms,
                          room_created, cc);
}

/* Everyone waiting for the room joins now, or hears why not; refused: the
 * room does not exist and they may not create it. */
void
pc_room_finish_waiters(struct pc_chat *c, struct pc_room *r, bool refused)
{
    while (r->waiting != NULL) {
        struct pc_join_wait *w = r->waiting;
        r->waiting = w->next;
        struct pc_session *s = pc_sess_by_id(c, w->sess_id);
        if (s != NULL) {
            pc_reply_begin(s, w->label);
            if (r->loaded) {
                pc_join_room(s, r, w->key);
            } else if (refused) {
                pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel",
                            r->name);
            } else {
                pc_sess_std(s, "FAIL", "JOIN", "TEMPORARILY_UNAVAILABLE",
                            r->name, "The room store is unavailable, "
                            "try again later");
            }
            pc_reply_end(s);
            pc_sess_join_done(s);
        }
        free(w->key);
        free(w);
    }
    if (!r->loaded && r->nmembers == 0) {
        (void)pc_map_del(&c->rooms, r->folded);
        pc_room_free(r);
    }
}

static void
room_created(void *arg, int status, PGresult *res)
{
    struct create_ctx *cc = arg;
    struct pc_chat *c = cc->chat;
    struct pc_room *r = pc_map_get(&c->rooms, cc->folded);

    if (r == NULL) {
        free(cc);
        return;
    }
    /* No row: not allowed to create it, or another node created it at the
     * same moment: the insert then yields to that row, which the
     * statement's snapshot cannot see. Asking once more (a new snapshot)
     * finds it in that case. */
    if (status == 0 && PQntuples(res) == 0 && !cc->retried) {
        cc->retried = true;
        if (room_create_send(cc) == 0) {
            return;
        }
    }
    if (status == 0 && PQntuples(res) == 1) {
        (void)pc_room_from_row(c, res, 0);
        /* Our insert made the creator its manager: known now, before the
         * reload its NOTIFY brings. */
        if (r->loaded && cc->creator != 0 && PQnfields(res) > 14
            && strcmp(PQgetvalue(res, 0, 14), "t") == 0) {
            (void)pc_prin_list_add(&r->role_managers, PC_PRIN_ACCOUNT,
                                   cc->creator);
        }
    }
    free(cc);
    if (r->loaded && !pc_acl_loaded(c)) {
        return; /* the policy is not known yet: acl.c lets them in */
    }
    pc_room_finish_waiters(c, r, status == 0 && PQntuples(res) == 0);
}

/* Returns true if the JOIN finished now, false if it waits for the
 * database (and then owns the labeled reply). */
static bool
join_one(struct pc_session *s, const char *name, const char *key,
         const char *label)
{
    struct pc_chat *c = s->chat;
    struct pc_room *r;

    if (!pc_irc_chan_valid(name, strlen(name), c->conf->channel_len)) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        return true;
    }
    r = pc_room_find(c, name);
    if (r != NULL && r->loaded && pc_acl_loaded(c)) {
        pc_join_room(s, r, key);
        return true;
    }
    if (r == NULL) {
        char folded[PC_CHAN_MAX + 1];
        /* A JOIN creates a room in the default category, for its
         * creators only; to others a room that does not exist stays
         * missing. The database checks it again (the model may not be
         * loaded yet, or may just have changed). */
        if (pc_acl_loaded(c) && !pc_acl_can_create(c, s, 1)) {
            pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
            return true;
        }
        pc_irc_casefold(folded, name, strlen(name));
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return true;
        }
        r->name = strdup(name);
        r->folded = strdup(folded);
        if (r->name == NULL || r->folded == NULL
            || pc_map_put(&c->rooms, folded, r) < 0) {
            pc_room_free(r);
            return true;
        }
        struct create_ctx *cc = calloc(1, sizeof(*cc));
        if (cc == NULL) {
            (void)pc_map_del(&c->rooms, folded);
            pc_room_free(r);
            return true;
        }
        cc->chat = c;
        cc->creator = s->account_id;
        cc->admin = s->is_admin;
        (void)snprintf(cc->name, sizeof(cc->name), "%s", name);
        (void)snprintf(cc->folded, sizeof(cc->folded), "%s", folded);
        if (room_create_send(cc) < 0) {
            free(cc);
            (void)pc_map_del(&c->rooms, folded);
            pc_room_free(r);
            pc_sess_std(s, "FAIL", "JOIN", "TEMPORARILY_UNAVAILABLE", name,
                        "The room store is unavailable");
            return true;
        }
    }
    struct pc_join_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return true;
    }
    w->sess_id = s->id;
    (void)snprintf(w->label, sizeof(w->label), "%s", label ? label : "");
    w->key = key ? strdup(key) : NULL;
    struct pc_join_wait **pp = &r->waiting;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = w;
    s->joins_waiting++;
    return false;
}

static void
part_one(struct pc_session *s, struct pc_room *r, const char *reason)
{
    pc_room_part(s, r, reason);
}

static void
cmd_join(struct pc_session *s, const struct pc_irc_msg *m)
{
    char names[PC_IRC_BODY_MAX], keys[PC_IRC_BODY_MAX];
    char *save_n = NULL, *save_k = NULL;
    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    char label[PC_LABEL_MAX + 1] = "";
    bool waiting = false;

    if (lt != NULL) {
        pc_slice(label, sizeof(label), lt->value);
    }
    param(names, sizeof(names), m, 0);
    param(keys, sizeof(keys), m, 1);
    if (strcmp(names, "0") == 0) {
        while (s->nrooms > 0) {
            part_one(s, s->rooms[0].room, "");
        }
        return;
    }
    char *key = strtok_r(keys, ",", &save_k);
    for (char *name = strtok_r(names, ",", &save_n); name != NULL;
         name = strtok_r(NULL, ",", &save_n)) {
        /* Only the last JOIN that waits for the database carries the label;
         * the others' output is part of this reply. */
        if (!join_one(s, name, key, label)) {
            waiting = true;
        }
        key = strtok_r(NULL, ",", &save_k);
    }
    if (waiting) {
        /* The labeled reply is finished by room_created(). */
        pc_reply_detach(s);
    }
}

static void
cmd_part(struct pc_session *s, const struct pc_irc_msg *m)
{
    char names[PC_IRC_BODY_MAX], reason[400];
    char *save = NULL;

    param(names, sizeof(names), m, 0);
    param(reason, sizeof(reason), m, 1);
    for (char *name = strtok_r(names, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        struct pc_room *r = visible_room(s, name, NULL);
        if (r == NULL) {
            pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        } else if (!pc_sess_in_room(s, r, NULL)) {
            pc_sess_num(s, PC_ERR_NOTONCHANNEL,
                        "%s :You're not on that channel", name);
        } else {
            part_one(s, r, reason);
        }
    }
}

struct topic_ctx {
    struct pc_chat *chat;
    uint64_t sess_id;
    int64_t room_id;
    int64_t at;
    char *topic;
    char *by;
    char label[PC_LABEL_MAX + 1];
};

static void
topic_ctx_free(struct topic_ctx *t)
{
    free(t->topic);
    free(t->by);
    free(t);
}

static void
topic_saved(void *arg, int status, PGresult *res)
{
    struct topic_ctx *t = arg;
    struct pc_chat *c = t->chat;
    struct pc_session *s = pc_sess_by_id(c, t->sess_id);
    char key[24];

    (void)snprintf(key, sizeof(key), "%" PRId64, t->room_id);
    struct pc_room *r = pc_map_get(&c->rooms_by_id, key);
    if (s != NULL) {
        pc_reply_begin(s, t->label);
    }
    if (status != 0 || r == NULL) {
        if (s != NULL) {
            pc_sess_std(s, "FAIL", "TOPIC", "TEMPORARILY_UNAVAILABLE",
                        r ? r->name : "*",
                        "The room store is unavailable, topic not changed");
        }
    } else {
        free(r->topic);
        free(r->topic_by);
        r->topic = t->topic;
        r->topic_by = t->by;
        r->topic_at = t->at;
        t->topic = t->by = NULL;
        char line[PC_IRC_LINE_MAX];
        int n = snprintf(line, sizeof(line), ":%s TOPIC %s :%s\r\n",
                         r->topic_by, r->name, r->topic);
        if (n > 0 && (size_t)n < sizeof(line)) {
            pc_room_send(r, line, (size_t)n, NULL);
            line[n - 2] = '\0';
            pc_pool_room(c, r, line);
        }
    }
    if (s != NULL) {
        pc_reply_end(s);
    }
    topic_ctx_free(t);
}

static void
cmd_topic(struct pc_session *s, const struct pc_irc_msg *m)
{
    struct pc_chat *c = s->chat;
    char name[PC_CHAN_MAX + 1];
    unsigned flags = 0;

    param(name, sizeof(name), m, 0);
    struct pc_rights rt;
    struct pc_room *r = visible_room(s, name, &rt);
    if (r == NULL) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        return;
    }
    bool member = pc_sess_in_room(s, r, &flags);
    if (m->nparams < 2) {
        if (!member && (pc_room_modes(r) & MODE_SECRET) && !rt.member
            && !rt.manage) {
            pc_sess_num(s, PC_ERR_NOTONCHANNEL,
                        "%s :You're not on that channel", r->name);
            return;
        }
        pc_send_topic(s, r, false);
        return;
    }
    if (!member) {
        pc_sess_num(s, PC_ERR_NOTONCHANNEL, "%s :You're not on that channel",
                    r->name);
        return;
    }
    if ((r->modes & MODE_TOPICLOCK) && !(flags & MEMBER_OP)) {
        pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED,
                    "%s :You're not channel operator", r->name);
        return;
    }
    size_t len = m->params[1].len;
    if (len > c->conf->topic_len) {
        len = c->conf->topic_len;
        while (len > 0 && ((unsigned char)m->params[1].p[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    /* The topic is durable: it changes, and members hear of it, only once
     * the database has it. */
    struct topic_ctx *t = calloc(1, sizeof(*t));
    char mask[160];
    if (t == NULL) {
        return;
    }
    t->chat = c;
    t->sess_id = s->id;
    t->room_id = r->id;
    t->at = (int64_t)(pc_wall_ms() / 1000);
    t->topic = pc_strndup(m->params[1].p, len);
    t->by = strdup(pc_sess_mask(s, mask, sizeof(mask)));
    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    if (lt != NULL) {
        pc_slice(t->label, sizeof(t->label), lt->value);
    }
    char id[24], at[24];
    (void)snprintf(id, sizeof(id), "%" PRId64, r->id);
    (void)snprintf(at, sizeof(at), "%" PRIu64, (uint64_t)t->at * 1000);
    const char *params[4] = {id, t->topic, t->by, at};
    if (t->topic == NULL || t->by == NULL
        || pc_store_query(c->store, PC_STMT_ROOM_SET_TOPIC, params, 4,
                          pc_now_ms() + c->conf->db_post_timeout_ms,
                          topic_saved, t) < 0) {
        pc_sess_std(s, "FAIL", "TOPIC", "TEMPORARILY_UNAVAILABLE", r->name,
                    "The room store is unavailable, topic not changed");
        topic_ctx_free(t);
        return;
    }
    if (s->reply.on) {
        /* topic_saved() answers the label. */
        s->reply.on = false;
        pc_buf_reset(&s->reply.lines);
    }
}

static void
cmd_names(struct pc_session *s, const struct pc_irc_msg *m)
{
    char names[PC_IRC_BODY_MAX];
    char *save = NULL;

    if (m->nparams == 0) {
        pc_sess_num(s, PC_RPL_ENDOFNAMES, "* :End of /NAMES list");
        return;
    }
    param(names, sizeof(names), m, 0);
    for (char *name = strtok_r(names, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        struct pc_room *r = visible_room(s, name, NULL);
        if (r == NULL) {
            pc_sess_num(s, PC_RPL_ENDOFNAMES, "%s :End of /NAMES list", name);
        } else {
            pc_send_names(s, r);
        }
    }
}

static void
cmd_list(struct pc_session *s, const struct pc_irc_msg *m)
{
    size_t pos = 0;
    struct pc_room *r;

    pc_sess_num(s, PC_RPL_LISTSTART, "Channel :Users  Name");
    while ((r = pc_map_next(&s->chat->rooms, &pos, NULL)) != NULL) {
        struct pc_rights rt;
        if (!r->loaded) {
            continue;
        }
        bool joined = pc_sess_in_room(s, r, NULL);
        pc_acl_rights(s->chat, s, r, &rt);
        if (!joined
            && (!rt.see
                || ((pc_room_modes(r) & MODE_SECRET) && !rt.member
                    && !rt.manage))) {
            continue;
        }
        pc_sess_num(s, PC_RPL_LIST, "%s %zu :%s", r->name, r->nmembers,
                    r->topic ? r->topic : "");
    }
    pc_sess_num(s, PC_RPL_LISTEND, ":End of /LIST");
}

static void
modes_saved(void *arg, int status, PGresult *res)
{
    if (status != 0) {
        pc_log(PC_LOG_WARN, "rooms", "room modes not saved: %s",
               pc_strerror(status));
    }
}

static void
save_modes(struct pc_chat *c, struct pc_room *r)
{
    char id[24], modes[16], lim[16];
    size_t n = 0;
    static const char letters[] = "imnst";
    for (int i = 0; letters[i]; i++) {
        if (r->modes & (1u << i)) {
            modes[n++] = letters[i];
        }
    }
    modes[n] = '\0';
    (void)snprintf(id, sizeof(id), "%" PRId64, r->id);
    (void)snprintf(lim, sizeof(lim), "%u", r->limit);
    const char *params[4] = {id, modes, r->key, r->limit ? lim : NULL};
    if (pc_store_query(c->store, PC_STMT_ROOM_SET_MODES, params, 4, 0,
                       modes_saved, NULL) < 0) {
        pc_log(PC_LOG_WARN, "rooms", "modes not saved room=%s", r->name);
    }
}

/* MODE +o/-o (manager) and, in an auditorium, +v/-v (presenter) on a
 * logged-in user, by a manager or an administrator, is a persistent role
 * (docs/room-model.md): it goes through the same SQL functions as
 * pchatctl. Returns false for a volatile change (plain IRC). */
static bool
persist_role(struct pc_session *s, struct pc_room *r, struct pc_session *t,
             char ch, bool plus, unsigned tflags)
{
    struct pc_rights rt;
    char principal[PC_NICK_MAX + 16];
    const char *role = ch == 'o' ? "manager" : "presenter";
    unsigned role_bit = ch == 'o' ? MEMBER_ROLE_OP : MEMBER_ROLE_VOICE;

    if (s->account_id == 0 || t->account_id == 0
        || (ch == 'v' && r->type != PC_ROOM_AUDITORIUM)) {
        return false;
    }
    pc_acl_rights(s->chat, s, r, &rt);
    if (!rt.manage || (!plus && !(tflags & role_bit))) {
        return false;
    }
    (void)snprintf(principal, sizeof(principal), "account:%s", t->account);
    const char *params[4] = {s->account, r->name, role, principal};
    pc_acl_admin_call(s, plus ? PC_STMT_ADM_ROOM_GRANT
                              : PC_STMT_ADM_ROOM_REVOKE,
                      params, 4, "MODE", r->name, NULL, false);
    return true;
}

static void
chan_mode(struct pc_session *s, struct pc_room *r, const struct pc_irc_msg *m)
{
    struct pc_chat *c = s->chat;
    unsigned flags = 0;
    bool member = pc_sess_in_room(s, r, &flags);
    char applied[64], args[PC_IRC_BODY_MAX];
    size_t an = 0, gn = 0;
    size_t next = 2;
    char sign = 0;
    bool changed_room = false;

    if (m->nparams < 2) {
        char modes[PC_IRC_BODY_MAX];
        pc_room_modes_str(r, member, modes, sizeof(modes));
        pc_sess_num(s, PC_RPL_CHANNELMODEIS, "%s %s", r->name, modes);
        pc_sess_num(s, PC_RPL_CREATIONTIME, "%s %" PRId64, r->name,
                    r->created_at);
        return;
    }
    if (m->params[1].len == 1 && m->params[1].p[0] == 'b') {
        pc_sess_num(s, PC_RPL_ENDOFBANLIST, "%s :End of channel ban list",
                    r->name);
        return;
    }
    if (!(flags & MEMBER_OP)) {
        pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED,
                    "%s :You're not channel operator", r->name);
        return;
    }
    args[0] = '\0';
    for (size_t i = 0; i < m->params[1].len && an < sizeof(applied) - 3; i++) {
        char ch = m->params[1].p[i];
        char arg[PC_IRC_BODY_MAX];
        unsigned bit = 0;
        if (ch == '+' || ch == '-') {
            sign = ch;
            continue;
        }
        bool plus = sign != '-';
        switch (ch) {
        case 'i': bit = MODE_INVITE; break;
        case 'm': bit = MODE_MODERATED; break;
        case 'n': bit = MODE_NOEXTERNAL; break;
        case 's': bit = MODE_SECRET; break;
        case 't': bit = MODE_TOPICLOCK; break;
        default: break;
        }
        arg[0] = '\0';
        if (bit != 0) {
            if (((r->modes & bit) != 0) == plus) {
                continue;
            }
            r->modes = plus ? (r->modes | bit) : (r->modes & ~bit);
            changed_room = true;
        } else if (ch == 'k') {
            if (plus) {
                if (next >= m->nparams || m->params[next].len == 0) {
                    pc_sess_num(s, PC_ERR_NEEDMOREPARAMS,
                                "MODE :Not enough parameters");
                    continue;
                }
                param(arg, 24, m, next++);
                free(r->key);
                r->key = strdup(arg);
            } else {
                if (next < m->nparams) {
                    next++;
                }
                if (r->key == NULL) {
                    continue;
                }
                free(r->key);
                r->key = NULL;
                (void)snprintf(arg, sizeof(arg), "*");
            }
            changed_room = true;
        } else if (ch == 'l') {
            if (plus) {
                long v;
                if (next >= m->nparams) {
                    pc_sess_num(s, PC_ERR_NEEDMOREPARAMS,
                                "MODE :Not enough parameters");
                    continue;
                }
                param(arg, 16, m, next++);
                v = strtol(arg, NULL, 10);
                if (v <= 0) {
                    continue;
                }
                r->limit = (uint32_t)v;
                (void)snprintf(arg, sizeof(arg), "%ld", v);
            } else {
                if (r->limit == 0) {
                    continue;
                }
                r->limit = 0;
            }
            changed_room = true;
        } else if (ch == 'o' || ch == 'v') {
            unsigned mf = ch == 'o' ? MEMBER_OP : MEMBER_VOICE;
            unsigned tf = 0;
            if (next >= m->nparams) {
                pc_sess_num(s, PC_ERR_NEEDMOREPARAMS,
                            "MODE :Not enough parameters");
                continue;
            }
            param(arg, PC_NICK_MAX + 1, m, next++);
            struct pc_session *t = pc_sess_by_nick(c, arg);
            if (t == NULL) {
                pc_sess_num(s, PC_ERR_NOSUCHNICK, "%s :No such nick/channel",
                            arg);
                continue;
            }
            if (!pc_sess_in_room(t, r, &tf)) {
                pc_sess_num(s, PC_ERR_USERNOTINCHANNEL,
                            "%s %s :They aren't on that channel", t->nick,
                            r->name);
                continue;
            }
            if (persist_role(s, r, t, ch, plus, tf)) {
                /* The role is stored; the reload that follows its NOTIFY
                 * gives (or takes) the prefix and tells the room. */
                continue;
            }
            pc_sess_set_flags(t, r, plus ? (tf | mf) : (tf & ~mf));
            pc_pool_flags(c, t, r, plus ? (tf | mf) : (tf & ~mf));
            (void)snprintf(arg, sizeof(arg), "%s", t->nick);
        } else {
            pc_sess_num(s, PC_ERR_UNKNOWNMODE,
                        "%c :is unknown mode char to me for %s", ch, r->name);
            continue;
        }
        if (an == 0 || applied[an - 1] != sign) {
            /* Start a new sign run when the sign changes. */
            bool need = true;
            for (size_t k = an; k > 0; k--) {
                if (applied[k - 1] == '+' || applied[k - 1] == '-') {
                    need = applied[k - 1] != (plus ? '+' : '-');
                    break;
                }
            }
            if (need) {
                applied[an++] = plus ? '+' : '-';
            }
        }
        applied[an++] = ch;
        if (arg[0] != '\0') {
            int w = snprintf(args + gn, sizeof(args) - gn, " %s", arg);
            if (w > 0 && (size_t)w < sizeof(args) - gn) {
                gn += (size_t)w;
            }
        }
    }
    applied[an] = '\0';
    if (an == 0) {
        return;
    }
    if (changed_room) {
        save_modes(c, r);
    }
    char mask[160];
    char line[PC_IRC_LINE_MAX];
    int n = snprintf(line, sizeof(line), ":%s MODE %s %s%s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), r->name, applied,
                     args);
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_room_send(r, line, (size_t)n, NULL);
        line[n - 2] = '\0';
        pc_pool_room(c, r, line);
    }
}

static void
cmd_mode(struct pc_session *s, const struct pc_irc_msg *m)
{
    char target[PC_CHAN_MAX + 1];

    param(target, sizeof(target), m, 0);
    if (target[0] == '#') {
        struct pc_room *r = visible_room(s, target, NULL);
        if (r == NULL) {
            pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel",
                        target);
            return;
        }
        chan_mode(s, r, m);
        return;
    }
    if (pc_irc_casecmp(target, s->nick) != 0) {
        if (pc_sess_by_nick(s->chat, target) == NULL) {
            pc_sess_num(s, PC_ERR_NOSUCHNICK, "%s :No such nick/channel",
                        target);
        } else {
            pc_sess_num(s, PC_ERR_USERSDONTMATCH,
                        ":Cant change mode for other users");
        }
        return;
    }
    if (m->nparams < 2) {
        pc_sess_num(s, PC_RPL_UMODEIS, "%s", s->invisible ? "+i" : "+");
        return;
    }
    char sign = '+';
    bool changed = false, unknown = false;
    for (size_t i = 0; i < m->params[1].len; i++) {
        char ch = m->params[1].p[i];
        if (ch == '+' || ch == '-') {
            sign = ch;
        } else if (ch == 'i') {
            changed = changed || s->invisible != (sign == '+');
            s->invisible = sign == '+';
        } else {
            unknown = true;
        }
    }
    if (unknown) {
        pc_sess_num(s, PC_ERR_UMODEUNKNOWNFLAG, ":Unknown MODE flag");
    }
    if (changed) {
        pc_sess_sendf(s, "MODE %s %ci", s->nick, s->invisible ? '+' : '-');
    }
}

static void
cmd_kick(struct pc_session *s, const struct pc_irc_msg *m)
{
    char name[PC_CHAN_MAX + 1], nick[PC_NICK_MAX + 1], reason[400];
    unsigned flags = 0;

    param(name, sizeof(name), m, 0);
    param(nick, sizeof(nick), m, 1);
    param(reason, sizeof(reason), m, 2);
    struct pc_room *r = visible_room(s, name, NULL);
    if (r == NULL) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        return;
    }
    if (!pc_sess_in_room(s, r, &flags)) {
        pc_sess_num(s, PC_ERR_NOTONCHANNEL, "%s :You're not on that channel",
                    r->name);
        return;
    }
    if (!(flags & MEMBER_OP)) {
        pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED,
                    "%s :You're not channel operator", r->name);
        return;
    }
    struct pc_session *t = pc_sess_by_nick(s->chat, nick);
    if (t == NULL || !pc_sess_in_room(t, r, NULL)) {
        pc_sess_num(s, PC_ERR_USERNOTINCHANNEL,
                    "%s %s :They aren't on that channel", nick, r->name);
        return;
    }
    char mask[160];
    char line[PC_IRC_LINE_MAX];
    int n = snprintf(line, sizeof(line), ":%s KICK %s %s :%s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), r->name, t->nick,
                     reason[0] ? reason : s->nick);
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_room_send(r, line, (size_t)n, NULL);
        line[n - 2] = '\0';
        pc_pool_part(s->chat, t, r, line);
    }
    pc_room_remove_member(r, t);
}

static void
cmd_invite(struct pc_session *s, const struct pc_irc_msg *m)
{
    char nick[PC_NICK_MAX + 1], name[PC_CHAN_MAX + 1];
    unsigned flags = 0;

    param(nick, sizeof(nick), m, 0);
    param(name, sizeof(name), m, 1);
    struct pc_session *t = pc_sess_by_nick(s->chat, nick);
    if (t == NULL || t->state != SESS_ACTIVE) {
        pc_sess_num(s, PC_ERR_NOSUCHNICK, "%s :No such nick/channel", nick);
        return;
    }
    struct pc_rights rt;
    struct pc_room *r = visible_room(s, name, &rt);
    if (r == NULL) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        return;
    }
    if (!pc_sess_in_room(s, r, &flags)) {
        pc_sess_num(s, PC_ERR_NOTONCHANNEL, "%s :You're not on that channel",
                    r->name);
        return;
    }
    if ((pc_room_modes(r) & MODE_INVITE) && !(flags & MEMBER_OP)) {
        pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED,
                    "%s :You're not channel operator", r->name);
        return;
    }
    if (!pc_acl_invitations(s->chat, r) && !s->is_admin) {
        pc_sess_std(s, "FAIL", "INVITE", "INVITATIONS_DISABLED", r->name,
                    "The room's category does not allow invitations");
        return;
    }
    if (pc_sess_in_room(t, r, NULL)) {
        pc_sess_num(s, PC_ERR_USERONCHANNEL, "%s %s :is already on channel",
                    t->nick, r->name);
        return;
    }
    (void)pc_room_invite(r, t->nick_folded);
    pc_sess_num(s, PC_RPL_INVITING, "%s %s", t->nick, r->name);
    if (t->away != NULL) {
        pc_sess_num(s, PC_RPL_AWAY, "%s :%s", t->nick, t->away);
    }
    char mask[160];
    char line[PC_IRC_BODY_MAX + 64];
    int n = snprintf(line, sizeof(line), ":%s INVITE %s %s\r\n",
                     pc_sess_mask(s, mask, sizeof(mask)), t->nick, r->name);
    if (n > 0 && (size_t)n < sizeof(line)) {
        pc_sess_send_raw(t, line, (size_t)n);
    }
}

/* Messages. */

void
pc_client_tags(const struct pc_irc_msg *m, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->ntags; i++) {
        const struct pc_irc_tag *t = &m->tags[i];
        if (t->key.len == 0 || t->key.p[0] != '+') {
            continue;
        }
        size_t need = t->key.len + 1 + t->value.len + 1;
        if (n + need >= cap) {
            break;
        }
        if (n > 0) {
            out[n++] = ';';
        }
        memcpy(out + n, t->key.p, t->key.len);
        n += t->key.len;
        if (t->value.len > 0) {
            out[n++] = '=';
            memcpy(out + n, t->value.p, t->value.len);
            n += t->value.len;
        }
        out[n] = '\0';
    }
}

bool
pc_room_may_send(struct pc_session *s, struct pc_room *r, bool quiet)
{
    unsigned flags = 0;
    bool member = pc_sess_in_room(s, r, &flags);

    if ((!member && (r->modes & MODE_NOEXTERNAL))
        || ((pc_room_modes(r) & MODE_MODERATED)
            && !(flags & (MEMBER_OP | MEMBER_VOICE)))) {
        if (!quiet) {
            pc_sess_num(s, PC_ERR_CANNOTSENDTOCHAN,
                        "%s :Cannot send to channel", r->name);
        }
        return false;
    }
    return true;
}

/* Returns true if a post was submitted (it then owns the label). */
static bool
msg_to_room(struct pc_session *s, struct pc_room *r, bool notice,
            const struct pc_irc_msg *m, const char *label)
{
    struct pc_chat *c = s->chat;
    const char *cmd = notice ? "NOTICE" : "PRIVMSG";

    if (!pc_room_may_send(s, r, notice)) {
        return false;
    }
    if (c->shutting_down) {
        pc_sess_std(s, "FAIL", cmd, "TEMPORARILY_UNAVAILABLE", r->name,
                    "Server shutting down, message not sent");
        return false;
    }
    struct pc_post *p = calloc(1, sizeof(*p));
    char mask[160];
    char tags[PC_IRC_CLIENT_TAGS_MAX];
    if (p == NULL) {
        return false;
    }
    pc_client_tags(m, tags, sizeof(tags));
    p->sess_id = s->id;
    (void)snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
    pc_msgid_next(&c->msgids, p->msgid);
    (void)snprintf(p->target, sizeof(p->target), "%s", r->name);
    p->room_id = r->id;
    p->at_ms = pc_wall_ms();
    p->kind = notice ? 1 : 0;
    p->source = strdup(pc_sess_mask(s, mask, sizeof(mask)));
    p->account = s->account_id != 0 ? strdup(s->account) : NULL;
    /* Store exactly what every recipient will get: the relayed line
     * ":mask CMD #room :text\r\n" must fit the 512-byte limit, so the text
     * is cut (at a UTF-8 boundary) before it is stored, not on delivery. */
    size_t fixed = 1 + strlen(mask) + 1 + strlen(cmd) + 1 + strlen(r->name) +
                   2 + 2;
    size_t room_for = fixed < PC_IRC_BODY_MAX ? PC_IRC_BODY_MAX - fixed : 0;
    p->body = pc_strndup(m->params[1].p,
                         pc_utf8_cut(m->params[1].p, m->params[1].len,
                                     room_for));
    p->tags = strdup(tags);
    p->deadline_ms = pc_now_ms() + c->conf->db_post_timeout_ms;
    if (p->source == NULL || p->body == NULL || p->tags == NULL) {
        pc_post_free(p);
        return false;
    }
    pc_post_submit(c, p);
    return true;
}

static void
msg_to_user(struct pc_session *s, struct pc_session *t, bool notice,
            const struct pc_irc_msg *m)
{
    char mask[160];
    char tags[PC_IRC_CLIENT_TAGS_MAX];
    uint64_t now = pc_wall_ms();
    enum pc_msg_kind kind = notice ? MSG_NOTICE : MSG_PRIVMSG;
    char msgid[PC_MSGID_LEN + 1];

    pc_msgid_next(&s->chat->msgids, msgid);
    pc_client_tags(m, tags, sizeof(tags));
    (void)pc_sess_mask(s, mask, sizeof(mask));
    if (t->member != 0) {
        pc_pool_dm(s->chat, t, now, msgid, mask, s->account, kind, tags,
                   m->params[1].p, m->params[1].len);
    } else {
        pc_msg_to_local_user(t, now, msgid, mask, s->account, kind, tags,
                             m->params[1].p, m->params[1].len);
    }
    if (!notice && t->away != NULL) {
        pc_sess_num(s, PC_RPL_AWAY, "%s :%s", t->nick, t->away);
    }
    if (s->caps & CAP_ECHO_MESSAGE) {
        struct pc_irc_line l;
        pc_irc_line_init(&l);
        pc_sess_tags(s, &l, now, msgid);
        pc_sess_account_tag(s, &l, s->account, strlen(s->account));
        pc_line_client_tags(s, &l, tags, strlen(tags));
        pc_irc_line_source(&l, mask);
        pc_irc_line_cmd(&l, notice ? "NOTICE" : "PRIVMSG");
        pc_irc_line_param(&l, t->nick, strlen(t->nick));
        pc_irc_line_trailing(&l, m->params[1].p, m->params[1].len);
        pc_sess_send_line(s, &l);
    }
}

static void
cmd_message(struct pc_session *s, const struct pc_irc_msg *m, bool notice)
{
    const char *cmd = notice ? "NOTICE" : "PRIVMSG";
    char targets[PC_IRC_BODY_MAX];
    char *save = NULL;
    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    char label[PC_LABEL_MAX + 1] = "";
    int count = 0;

    if (lt != NULL) {
        pc_slice(label, sizeof(label), lt->value);
    }
    if (m->nparams < 1 || m->params[0].len == 0) {
        pc_sess_num(s, PC_ERR_NORECIPIENT, ":No recipient given (%s)", cmd);
        return;
    }
    if (m->nparams < 2 || m->params[1].len == 0) {
        pc_sess_num(s, PC_ERR_NOTEXTTOSEND, ":No text to send");
        return;
    }
    param(targets, sizeof(targets), m, 0);
    bool async = false;
    for (char *t = strtok_r(targets, ",", &save); t != NULL && count < 4;
         t = strtok_r(NULL, ",", &save), count++) {
        if (t[0] == '#') {
            struct pc_room *r = visible_room(s, t, NULL);
            if (r == NULL) {
                if (!notice) { /* NOTICE never gets an error reply */
                    pc_sess_num(s, PC_ERR_NOSUCHCHANNEL,
                                "%s :No such channel", t);
                }
                continue;
            }
            /* The post owns the label; only one async target keeps it. */
            if (msg_to_room(s, r, notice, m, async ? NULL : label)) {
                async = true;
            }
            continue;
        }
        struct pc_session *u = pc_sess_by_nick(s->chat, t);
        if (u == NULL || u->state != SESS_ACTIVE) {
            if (!notice) {
                pc_sess_num(s, PC_ERR_NOSUCHNICK, "%s :No such nick/channel",
                            t);
            }
            continue;
        }
        msg_to_user(s, u, notice, m);
    }
    if (async) {
        /* The echo (or ACK) from the post pipeline carries the label. */
        pc_reply_detach(s);
    }
}

static void
cmd_privmsg(struct pc_session *s, const struct pc_irc_msg *m)
{
    cmd_message(s, m, false);
}

static void
cmd_notice(struct pc_session *s, const struct pc_irc_msg *m)
{
    cmd_message(s, m, true);
}

/* Users. */

static void
cmd_away(struct pc_session *s, const struct pc_irc_msg *m)
{
    free(s->away);
    s->away = NULL;
    if (m->nparams > 0 && m->params[0].len > 0) {
        s->away = pc_strndup(m->params[0].p,
                             m->params[0].len < 390 ? m->params[0].len : 390);
        pc_sess_num(s, PC_RPL_NOWAWAY, ":You have been marked as being away");
    } else {
        pc_sess_num(s, PC_RPL_UNAWAY,
                    ":You are no longer marked as being away");
    }
    /* The pool learns it with the user's state. */
    pc_pool_user(s->chat, s);
}

static bool
shares_room(const struct pc_session *a, const struct pc_session *b)
{
    for (size_t i = 0; i < a->nrooms; i++) {
        if (pc_sess_in_room(b, a->rooms[i].room, NULL)) {
            return true;
        }
    }
    return false;
}

static void
who_reply(struct pc_session *s, const char *chan, struct pc_session *u,
          unsigned flags)
{
    char status[4];
    size_t n = 0;
    status[n++] = u->away ? 'G' : 'H';
    if (flags & MEMBER_OP) {
        status[n++] = '@';
    } else if (flags & MEMBER_VOICE) {
        status[n++] = '+';
    }
    status[n] = '\0';
    pc_sess_num(s, PC_RPL_WHOREPLY, "%s %s %s %s %s %s :0 %s", chan, u->user,
                u->host, pc_server_name(s->chat), u->nick, status,
                u->realname ? u->realname : "");
}

static void
cmd_who(struct pc_session *s, const struct pc_irc_msg *m)
{
    char mask[PC_CHAN_MAX + 1];

    param(mask, sizeof(mask), m, 0);
    if (mask[0] == '#') {
        struct pc_rights rt;
        struct pc_room *r = visible_room(s, mask, &rt);
        bool member = r != NULL && pc_sess_in_room(s, r, NULL);
        if (r != NULL
            && (member || !(pc_room_modes(r) & MODE_SECRET) || rt.member
                || rt.manage)) {
            for (size_t i = 0; i < r->nmembers; i++) {
                struct pc_session *u = r->members[i];
                unsigned f = 0;
                if (u->invisible && !member) {
                    continue;
                }
                (void)pc_sess_in_room(u, r, &f);
                who_reply(s, r->name, u, f);
            }
        }
    } else {
        struct pc_session *u = pc_sess_by_nick(s->chat, mask);
        if (u != NULL && u->state == SESS_ACTIVE) {
            who_reply(s, "*", u, 0);
        }
    }
    pc_sess_num(s, PC_RPL_ENDOFWHO, "%s :End of WHO list",
                mask[0] ? mask : "*");
}

static void
cmd_whois(struct pc_session *s, const struct pc_irc_msg *m)
{
    char nick[PC_NICK_MAX + 1];
    /* WHOIS [server] nick */
    param(nick, sizeof(nick), m, m->nparams > 1 ? 1 : 0);
    struct pc_session *u = pc_sess_by_nick(s->chat, nick);
    if (u == NULL || u->state != SESS_ACTIVE) {
        pc_sess_num(s, PC_ERR_NOSUCHNICK, "%s :No such nick/channel", nick);
        pc_sess_num(s, PC_RPL_ENDOFWHOIS, "%s :End of /WHOIS list", nick);
        return;
    }
    pc_sess_num(s, PC_RPL_WHOISUSER, "%s %s %s * :%s", u->nick, u->user,
                u->host, u->realname ? u->realname : "");
    char chans[400];
    size_t n = 0;
    chans[0] = '\0';
    for (size_t i = 0; i < u->nrooms; i++) {
        struct pc_room *r = u->rooms[i].room;
        struct pc_rights rt;
        pc_acl_rights(s->chat, s, r, &rt);
        if (!pc_sess_in_room(s, r, NULL)
            && (!rt.see
                || ((pc_room_modes(r) & MODE_SECRET) && !rt.member
                    && !rt.manage))) {
            continue;
        }
        const char *pre = (u->rooms[i].flags & MEMBER_OP) ? "@"
                          : (u->rooms[i].flags & MEMBER_VOICE) ? "+" : "";
        int w = snprintf(chans + n, sizeof(chans) - n, "%s%s%s",
                         n ? " " : "", pre, r->name);
        if (w < 0 || (size_t)w >= sizeof(chans) - n) {
            break;
        }
        n += (size_t)w;
    }
    if (n > 0) {
        pc_sess_num(s, PC_RPL_WHOISCHANNELS, "%s :%s", u->nick, chans);
    }
    pc_sess_num(s, PC_RPL_WHOISSERVER, "%s %s :pchat", u->nick,
                pc_server_name(s->chat));
    if (u->account[0] != '\0') {
        pc_sess_num(s, PC_RPL_WHOISACCOUNT, "%s %s :is logged in as",
                    u->nick, u->account);
    }
    if (u->away != NULL) {
        pc_sess_num(s, PC_RPL_AWAY, "%s :%s", u->nick, u->away);
    }
    if (u->conn != NULL && pc_conn_is_tls(u->conn)) {
        pc_sess_num(s, PC_RPL_WHOISSECURE, "%s :is using a secure connection",
                    u->nick);
    }
    uint64_t now = pc_now_ms();
    pc_sess_num(s, PC_RPL_WHOISIDLE, "%s %" PRIu64 " %" PRIu64
                " :seconds idle, signon time", u->nick,
                (now - u->last_rx_ms) / 1000,
                (pc_wall_ms() - (now - u->connected_ms)) / 1000);
    pc_sess_num(s, PC_RPL_ENDOFWHOIS, "%s :End of /WHOIS list", u->nick);
    (void)shares_room;
}

static void
cmd_userhost(struct pc_session *s, const struct pc_irc_msg *m)
{
    char out[400];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->nparams && i < 5; i++) {
        char nick[PC_NICK_MAX + 1];
        param(nick, sizeof(nick), m, i);
        struct pc_session *u = pc_sess_by_nick(s->chat, nick);
        if (u == NULL || u->state != SESS_ACTIVE) {
            continue;
        }
        int w = snprintf(out + n, sizeof(out) - n, "%s%s=%c%s@%s",
                         n ? " " : "", u->nick, u->away ? '-' : '+', u->user,
                         u->host);
        if (w < 0 || (size_t)w >= sizeof(out) - n) {
            break;
        }
        n += (size_t)w;
    }
    pc_sess_num(s, PC_RPL_USERHOST, ":%s", out);
}

static void
cmd_ison(struct pc_session *s, const struct pc_irc_msg *m)
{
    char out[400];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->nparams; i++) {
        char list[PC_IRC_BODY_MAX];
        char *save = NULL;
        param(list, sizeof(list), m, i);
        for (char *nick = strtok_r(list, " ", &save); nick != NULL;
             nick = strtok_r(NULL, " ", &save)) {
            struct pc_session *u = pc_sess_by_nick(s->chat, nick);
            if (u == NULL || u->state != SESS_ACTIVE) {
                continue;
            }
            int w = snprintf(out + n, sizeof(out) - n, "%s%s", n ? " " : "",
                             u->nick);
            if (w < 0 || (size_t)w >= sizeof(out) - n) {
                break;
            }
            n += (size_t)w;
        }
    }
    pc_sess_num(s, PC_RPL_ISON, ":%s", out);
}

static void
cmd_chathistory(struct pc_session *s, const struct pc_irc_msg *m)
{
    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    (void)pc_cmd_chathistory(s, m);
    if (lt != NULL && s->reply.on) {
        /* The history callback owns the labeled reply, unless it already
         * answered (an immediate FAIL was collected here). */
        if (s->reply.count == 0) {
            s->reply.on = false;
        }
    }
}

/* ROOM #chan INFO | SET key value | MEMBER|MANAGER|PRESENTER ADD|DEL
 * principal: room management for its managers (and administrators),
 * through the admin SQL functions that pchatctl and the HTTP API use. */
static void
cmd_room(struct pc_session *s, const struct pc_irc_msg *m)
{
    char name[PC_CHAN_MAX + 1], sub[16], a[64], b[1024];
    struct pc_rights rt;

    param(name, sizeof(name), m, 0);
    param(sub, sizeof(sub), m, 1);
    param(a, sizeof(a), m, 2);
    param(b, sizeof(b), m, 3);
    struct pc_room *r = visible_room(s, name, &rt);
    if (r == NULL) {
        pc_sess_num(s, PC_ERR_NOSUCHCHANNEL, "%s :No such channel", name);
        return;
    }
    if (s->account_id == 0) {
        pc_sess_std(s, "FAIL", "ROOM", "ACCOUNT_REQUIRED", r->name,
                    "Log in (SASL) to manage rooms");
        return;
    }
    if (!rt.manage) {
        pc_sess_num(s, PC_ERR_CHANOPRIVSNEEDED,
                    "%s :You're not a manager of this room", r->name);
        return;
    }
    if (pc_irc_casecmp(sub, "INFO") == 0) {
        const char *params[2] = {s->account, r->name};
        pc_acl_admin_call(s, PC_STMT_ADM_ROOM_SHOW, params, 2, "ROOM",
                          r->name, NULL, true);
        return;
    }
    if (pc_irc_casecmp(sub, "SET") == 0 && m->nparams >= 4) {
        const char *params[4] = {s->account, r->name, a, b};
        pc_acl_admin_call(s, PC_STMT_ADM_ROOM_SET, params, 4, "ROOM",
                          r->name, "Setting changed", false);
        return;
    }
    static const char *const roles[] = {"member", "manager", "presenter"};
    for (size_t i = 0; i < 3; i++) {
        bool add = pc_irc_casecmp(a, "ADD") == 0;
        if (pc_irc_casecmp(sub, roles[i]) != 0 || m->nparams < 4
            || (!add && pc_irc_casecmp(a, "DEL") != 0)) {
            continue;
        }
        const char *params[4] = {s->account, r->name, roles[i], b};
        pc_acl_admin_call(s, add ? PC_STMT_ADM_ROOM_GRANT
                                 : PC_STMT_ADM_ROOM_REVOKE,
                          params, 4, "ROOM", r->name,
                          add ? "Role granted" : "Role revoked", false);
        return;
    }
    pc_sess_std(s, "FAIL", "ROOM", "INVALID_PARAMS", r->name,
                "Usage: ROOM <#room> INFO | SET <key> <value> | "
                "MEMBER|MANAGER|PRESENTER ADD|DEL <principal>");
}

static const struct cmd_def commands[] = {
    {"AUTHENTICATE", pc_cmd_authenticate, 1, CMD_PRE_REG},
    {"AWAY", cmd_away, 0, 0},
    {"CAP", cmd_cap, 1, CMD_PRE_REG},
    {"CHATHISTORY", cmd_chathistory, 3, 0},
    {"INVITE", cmd_invite, 2, 0},
    {"ISON", cmd_ison, 1, 0},
    {"JOIN", cmd_join, 1, 0},
    {"KICK", cmd_kick, 2, 0},
    {"LIST", cmd_list, 0, 0},
    {"LUSERS", cmd_lusers, 0, 0},
    {"MODE", cmd_mode, 1, 0},
    {"MOTD", cmd_motd, 0, 0},
    {"NAMES", cmd_names, 0, 0},
    {"NICK", cmd_nick, 0, CMD_PRE_REG},
    {"NOTICE", cmd_notice, 0, 0},
    {"PART", cmd_part, 1, 0},
    {"PASS", cmd_pass, 1, CMD_PRE_REG},
    {"PING", cmd_ping, 1, CMD_PRE_REG},
    {"PONG", cmd_pong, 0, CMD_PRE_REG},
    {"PRIVMSG", cmd_privmsg, 0, 0},
    {"QUIT", cmd_quit, 0, CMD_PRE_REG},
    {"ROOM", cmd_room, 2, 0},
    {"TAGMSG", pc_cmd_tagmsg, 1, 0},
    {"TIME", cmd_time, 0, 0},
    {"TOPIC", cmd_topic, 1, 0},
    {"USER", cmd_user, 4, CMD_PRE_REG},
    {"USERHOST", cmd_userhost, 1, 0},
    {"VERSION", cmd_version, 0, 0},
    {"WHO", cmd_who, 0, 0},
    {"WHOIS", cmd_whois, 1, 0},
};

void
pc_cmd_dispatch(struct pc_session *s, const struct pc_irc_msg *m)
{
    char name[32];
    const struct cmd_def *d = NULL;
    size_t lo = 0, hi = sizeof(commands) / sizeof(commands[0]);

    pc_slice(name, sizeof(name), m->command);
    for (char *p = name; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(name, commands[mid].name);
        if (cmp == 0) {
            d = &commands[mid];
            break;
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }

    const struct pc_irc_tag *lt = pc_irc_msg_tag(m, "label");
    char label[PC_LABEL_MAX + 1] = "";
    if (lt != NULL) {
        pc_slice(label, sizeof(label), lt->value);
    }
    pc_reply_begin(s, label);
    if (d == NULL) {
        if (s->state == SESS_ACTIVE) {
            pc_sess_num(s, PC_ERR_UNKNOWNCOMMAND, "%s :Unknown command",
                        name[0] ? name : "*");
        } else {
            pc_sess_num(s, PC_ERR_NOTREGISTERED, ":You have not registered");
        }
    } else if (s->state != SESS_ACTIVE && !(d->flags & CMD_PRE_REG)) {
        pc_sess_num(s, PC_ERR_NOTREGISTERED, ":You have not registered");
    } else if (m->nparams < d->min_params) {
        pc_sess_num(s, PC_ERR_NEEDMOREPARAMS, "%s :Not enough parameters",
                    d->name);
    } else {
        d->fn(s, m);
    }
    pc_reply_end(s);
}
