/* Types and helpers shared by the files of chat/ (private to chat/). */
#ifndef PC_CHAT_INTERNAL_H
#define PC_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"
#include "chat/policy.h"
#include "irc/irc.h"
#include "util/buf.h"
#include "util/map.h"
#include "util/time.h"

#define PC_NICK_MAX 64
#define PC_CHAN_MAX 200
#define PC_LABEL_MAX 64

/* Client capabilities, as bits of pc_session.caps. */
enum pc_cap {
    CAP_CAP_NOTIFY = 1u << 0,
    CAP_MESSAGE_TAGS = 1u << 1,
    CAP_SERVER_TIME = 1u << 2,
    CAP_ECHO_MESSAGE = 1u << 3,
    CAP_BATCH = 1u << 4,
    CAP_LABELED_RESPONSE = 1u << 5,
    CAP_CHATHISTORY = 1u << 6,
    CAP_MULTI_PREFIX = 1u << 7,
    CAP_USERHOST_IN_NAMES = 1u << 8,
    CAP_AWAY_NOTIFY = 1u << 9,
    CAP_SASL = 1u << 10,
    CAP_ACCOUNT_TAG = 1u << 11,
    CAP_ACCOUNT_NOTIFY = 1u << 12,
    CAP_EXTENDED_JOIN = 1u << 13,
};

/* SASL mechanisms (CAP LS 302 sasl=..., 908 RPL_SASLMECHS). */
#define PC_SASL_MECHS "PLAIN,SCRAM-SHA-256,EXTERNAL"

struct pc_cap_def {
    const char *name;
    unsigned bit;
};
extern const struct pc_cap_def pc_caps[];

/* Channel modes (flags). */
enum {
    MODE_INVITE = 1u << 0,    /* +i */
    MODE_MODERATED = 1u << 1, /* +m */
    MODE_NOEXTERNAL = 1u << 2, /* +n */
    MODE_SECRET = 1u << 3,    /* +s */
    MODE_TOPICLOCK = 1u << 4, /* +t */
};

/* Member prefixes. */
enum {
    MEMBER_OP = 1u << 0,
    MEMBER_VOICE = 1u << 1,
    /* The flag above comes from a persistent role (manager, presenter in
     * an auditorium), not from a MODE: it goes when the role goes. */
    MEMBER_ROLE_OP = 1u << 2,
    MEMBER_ROLE_VOICE = 1u << 3,
    /* In by a manager's invitation, not by right: a reload keeps them
     * (unless denied, or the room disabled). */
    MEMBER_GUEST = 1u << 4,
};

struct pc_room;
struct pc_sasl;
struct pc_sasl_ctx;

struct pc_membership {
    struct pc_room *room;
    unsigned flags;
};

enum pc_sess_state {
    SESS_NEW,    /* not registered yet */
    SESS_ACTIVE, /* registered */
    SESS_CLOSING /* closing; drops output, ignores input */
};

struct pc_session {
    uint64_t id; /* never reused: async contexts hold it, not a pointer */
    uint64_t member;    /* pool member it is connected to; 0: this node */
    uint64_t remote_id; /* its session id on that member */
    bool nick_confirmed; /* our announcement of its nick came back first */
    struct pc_chat *chat;
    struct pc_conn *conn;
    enum pc_sess_state state;
    unsigned caps;
    bool cap_negotiating;
    bool cap_302;
    bool has_user;
    bool invisible;
    bool throttled;   /* held input queued for throttle_tick (out of flood
                         tokens: reading paused too) */
    /* JOINs of this session waiting for their room (being created or
     * loaded): its later lines wait in `in`, so that a PRIVMSG sent right
     * after the JOIN finds the room. */
    unsigned joins_waiting;
    bool discarding;  /* skipping the rest of an overlong line */
    bool ping_out;    /* we sent PING and wait for PONG */
    char nick[PC_NICK_MAX + 1];
    char nick_folded[PC_NICK_MAX + 1];
    char user[16];
    char host[64];
    char *realname;
    char *away;
    /* Account (room model): 0 / "" until SASL succeeds. */
    int64_t account_id;
    char account[PC_NICK_MAX + 1];
    bool is_admin;
    struct pc_sasl *sasl; /* SASL exchange (sasl.c), NULL if none yet */
    struct pc_buf in; /* partial input line */
    double tokens;
    uint64_t tokens_ms;
    uint64_t connected_ms;
    uint64_t last_rx_ms;
    struct pc_membership *rooms;
    size_t nrooms;
    size_t caprooms;
    /* Labeled response being collected (labeled-response cap). */
    struct {
        bool on;
        char label[PC_LABEL_MAX + 1];
        struct pc_buf lines;
        unsigned count;
    } reply;
    struct pc_session *next_throttled;
};

struct pc_room {
    int64_t id;
    char *name;
    char *folded;
    char *topic;
    char *topic_by;
    int64_t topic_at; /* epoch seconds */
    unsigned modes;
    char *key;
    uint32_t limit;
    int64_t created_at;
    int64_t last_seq; /* newest seq delivered live */
    struct pc_session **members;
    size_t nmembers;
    size_t capmembers;
    char **invites; /* folded nicks invited while +i */
    size_t ninvites;
    bool loaded; /* from the database (else being created) */
    struct pc_join_wait *waiting;
    struct pc_pending *pending; /* pool: messages waiting for a gap, by seq */
    uint64_t pending_since_ms;
    /* Room model (docs/room-model.md), from the database; 0: not known
     * yet (a room another node created by JOIN: the default category). */
    int64_t category_id;
    enum pc_room_type type;
    enum pc_room_privacy privacy;
    bool disabled;
    struct pc_prin_list role_members;
    struct pc_prin_list role_managers;
    struct pc_prin_list role_presenters;
    uint64_t acl_mark; /* the last reload whose room list had it */
};

/* A room message that arrived ahead of its turn (pool only). */
struct pc_pending {
    struct pc_pending *next;
    int64_t seq;
    uint64_t from;
    size_t len;
    unsigned char data[];
};

/* A JOIN waiting for its room to come from the database. */
struct pc_join_wait {
    struct pc_join_wait *next;
    uint64_t sess_id;
    char label[PC_LABEL_MAX + 1];
    char *key;
};

/* A post on its way to the database. */
struct pc_post {
    struct pc_post *next;
    uint64_t sess_id;
    char label[PC_LABEL_MAX + 1];
    char msgid[PC_MSGID_LEN + 1];
    char target[PC_CHAN_MAX + 1];
    int64_t room_id;
    uint64_t at_ms;
    int kind; /* 0 PRIVMSG, 1 NOTICE */
    char *source;
    char *account;
    char *body;
    char *tags;       /* client-only tags, escaped, "" if none */
    uint64_t deadline_ms; /* 0: outcome unknown, retry until known */
};

struct pc_chat {
    uv_loop_t *loop;
    const struct pc_conf *conf;
    struct pc_store *store;
    struct pc_bus *bus;
    struct pc_map sessions;  /* decimal id -> session */
    struct pc_map nicks;     /* folded nick -> session */
    struct pc_map rooms;     /* folded name -> room */
    struct pc_map rooms_by_id; /* decimal id -> room */
    struct pc_msgid_gen msgids;
    uint64_t next_sess_id;
    uint64_t next_batch; /* batch reference counter */
    uint64_t started_wall_ms;
    uint64_t nsessions;
    uint64_t nregistered;
    uint64_t max_registered;
    uint64_t swept_sessions; /* session count at the last sweep */
    bool trim_pending;       /* it changed: trim malloc once it is stable */
    uv_timer_t sweep_timer;    /* registration and ping timeouts */
    uv_timer_t throttle_timer; /* resumes throttled sessions */
    struct pc_session *throttled;
    /* Post pipeline (group commit). */
    struct pc_post *posts;
    struct pc_post **posts_tail;
    size_t nposts;
    unsigned batches_in_flight;
    bool pooled;          /* cpg back end: other members exist */
    uint64_t self;        /* our member id */
    struct pc_map remote; /* "member:session" -> remote session */
    uv_timer_t gap_timer; /* fills sequence gaps from the database */
    bool rooms_loaded;
    bool rooms_loading;
    bool store_ready;
    bool shutting_down;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
    unsigned timers_open;
    struct pc_buf scratch;
    struct pc_buf room_wire; /* post.c: an own room message, published and
                                delivered here (delivery reuses scratch) */
    struct pc_sasl_ctx *sasl; /* failed-login buckets, jobs (sasl.c) */
    struct pc_acl *acl; /* room model cache (acl.c) */
};

/* session.c */
struct pc_session *pc_sess_by_id(struct pc_chat *c, uint64_t id);
struct pc_session *pc_sess_by_nick(struct pc_chat *c, const char *nick);
/* Sends one complete line (with CR LF); honours a labeled reply in
 * progress. Lines with CR, LF or NUL inside are cut there. */
void pc_sess_send_raw(struct pc_session *s, const char *line, size_t len);
void pc_sess_send_line(struct pc_session *s, struct pc_irc_line *l);
/* ":server <fmt>" to the session. */
void pc_sess_sendf(struct pc_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ":server NUM nick <fmt>". */
void pc_sess_num(struct pc_session *s, const char *num, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Standard reply: FAIL/WARN/NOTE <command> <code> [context] :<text>. */
void pc_sess_std(struct pc_session *s, const char *type, const char *cmd,
                 const char *code, const char *context, const char *text);
void pc_sess_quit(struct pc_session *s, const char *reason);
void pc_sess_error_close(struct pc_session *s, const char *reason);
/* Labeled responses spanning async work. */
void pc_reply_begin(struct pc_session *s, const char *label);
void pc_reply_end(struct pc_session *s);
/* Sends what was collected so far unlabeled: an asynchronous operation
 * will answer the label itself. */
void pc_reply_detach(struct pc_session *s);
/* Sends a line once to every session sharing a room with s (not s). */
void pc_sess_tell_peers(struct pc_session *s, const char *line, size_t len);
/* The same, only to peers with one of the caps in `caps` (0: all). */
void pc_sess_tell_peers_cap(struct pc_session *s, const char *line,
                            size_t len, unsigned caps);
/* Tells s's peers that it quit. */
void pc_sess_announce_quit(struct pc_session *s, const char *reason);
/* nick!user@host */
const char *pc_sess_mask(const struct pc_session *s, char *buf, size_t cap);
bool pc_sess_in_room(const struct pc_session *s, const struct pc_room *r,
                     unsigned *flags);
void pc_sess_set_flags(struct pc_session *s, const struct pc_room *r,
                       unsigned flags);
/* Writes a server-time / batch / msgid tag prefix for a recipient. */
void pc_sess_tags(const struct pc_session *s, struct pc_irc_line *l,
                  uint64_t at_ms, const char *msgid);
/* Adds client-only tags ("+k=v;+k2", escaped, as a sender wrote them) for
 * a recipient that asked for message-tags. */
void pc_line_client_tags(const struct pc_session *to, struct pc_irc_line *l,
                         const char *tags, size_t len);

/* room.c */
struct pc_room *pc_room_find(struct pc_chat *c, const char *name);
struct pc_room *pc_room_from_row(struct pc_chat *c, void *pgresult, int row);
int pc_room_add_member(struct pc_room *r, struct pc_session *s,
                       unsigned flags);
void pc_room_remove_member(struct pc_room *r, struct pc_session *s);
/* Sends a line (with CR LF) to every member except `except`. */
void pc_room_send(struct pc_room *r, const char *line, size_t len,
                  const struct pc_session *except);
void pc_room_modes_str(const struct pc_room *r, bool show_key, char *out,
                       size_t cap);
bool pc_room_invited(const struct pc_room *r, const char *nick_folded);
void pc_room_uninvite(struct pc_room *r, const char *nick_folded);
int pc_room_invite(struct pc_room *r, const char *nick_folded);
void pc_room_free(struct pc_room *r);
void pc_rooms_load(struct pc_chat *c);
/* Finishes a JOIN of an existing room (checks, broadcast, NAMES, replay). */
void pc_join_room(struct pc_session *s, struct pc_room *r, const char *key);
void pc_send_names(struct pc_session *s, struct pc_room *r);
void pc_send_topic(struct pc_session *s, struct pc_room *r, bool silent);
/* Parts s from r, telling the room (and the pool) why. */
void pc_room_part(struct pc_session *s, struct pc_room *r,
                  const char *reason);

/* acl.c: the room model's cache (categories, room principals, group
 * memberships), kept current by LISTEN pchat_acl, and what follows from
 * it for connected users. */
int pc_acl_new(struct pc_chat *c);
void pc_acl_free(struct pc_chat *c);
/* Reloads rooms and the model from the database (at every READY and on
 * every NOTIFY), then applies it to joined users. */
void pc_acl_reload(struct pc_chat *c);
bool pc_acl_loaded(const struct pc_chat *c);
void pc_acl_rights(struct pc_chat *c, const struct pc_session *s,
                   const struct pc_room *r, struct pc_rights *out);
bool pc_acl_can_create(struct pc_chat *c, const struct pc_session *s,
                       int64_t category_id);
bool pc_acl_invitations(struct pc_chat *c, const struct pc_room *r);
/* MEMBER_OP|MEMBER_ROLE_OP for managers and administrators,
 * MEMBER_VOICE|MEMBER_ROLE_VOICE for presenters of an auditorium. */
unsigned pc_acl_role_flags(struct pc_chat *c, const struct pc_session *s,
                           const struct pc_room *r);
/* Channel modes: the stored ones and those the model implies
 * (auditorium +m, secret +s, closed and secret +i). */
unsigned pc_room_modes(const struct pc_room *r);
/* Runs an admin SQL function for an IRC command and answers it (482 for
 * SQLSTATE 42501, FAIL for the others); ok_text, if not NULL, is sent as
 * NOTE <cmd> OK <room> on success; json_reply sends the result as NOTE
 * lines. */
void pc_acl_admin_call(struct pc_session *s, enum pc_stmt stmt,
                       const char *const *params, int nparams,
                       const char *cmd, const char *room,
                       const char *ok_text, bool json_reply);
/* JOINs that waited for a room from the database join it now (refused:
 * it does not exist and they may not create it). */
void pc_room_finish_waiters(struct pc_chat *c, struct pc_room *r,
                            bool refused);

/* post.c */
/* confirm: the commit's confirmation on the author's node (its author is
 * answered even if the room already has the message). */
void pc_deliver_room_wire(struct pc_chat *c, uint64_t from,
                          const unsigned char *data, size_t len, bool confirm);
/* Delivers a stored message (history row shape) to local members. */
void pc_deliver_room_row(struct pc_chat *c, struct pc_room *r, void *res,
                         int row);
void pc_post_submit(struct pc_chat *c, struct pc_post *p);
void pc_post_kick(struct pc_chat *c);
void pc_post_free(struct pc_post *p);
void pc_chat_deliver(void *arg, uint64_t from, const void *data, size_t len);

/* pool.c: state shared with the other members of a pool */
void pc_pool_user(struct pc_chat *c, struct pc_session *s);
void pc_pool_nick(struct pc_chat *c, struct pc_session *s);
void pc_pool_join(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
                  unsigned flags);
void pc_pool_part(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
                  const char *line);
void pc_pool_quit(struct pc_chat *c, struct pc_session *s, const char *reason);
void pc_pool_room(struct pc_chat *c, struct pc_room *r, const char *line);
void pc_pool_flags(struct pc_chat *c, struct pc_session *s, struct pc_room *r,
                   unsigned flags);
/* Kinds of a message to one user or a TAGMSG (not stored). */
enum pc_msg_kind { MSG_PRIVMSG = 0, MSG_NOTICE = 1, MSG_TAGMSG = 2 };
/* A private message (or TAGMSG) to a user of another member. */
void pc_pool_dm(struct pc_chat *c, struct pc_session *to, uint64_t at_ms,
                const char *msgid, const char *source, const char *account,
                enum pc_msg_kind kind, const char *tags, const char *text,
                size_t len);
/* A TAGMSG to a room, for the members on other members. */
void pc_pool_tagmsg(struct pc_chat *c, struct pc_room *r, uint64_t at_ms,
                    const char *msgid, const char *source,
                    const char *account, const char *tags);
/* Handles a pool event other than a room message; returns false if the
 * type is unknown. */
bool pc_pool_deliver(struct pc_chat *c, uint64_t from, const unsigned char *p,
                     size_t len);
/* Room messages that arrived out of order wait here (post.c), and go out
 * once the ones before them have (pc_pool_release). */
void pc_pool_hold(struct pc_chat *c, struct pc_room *r, int64_t seq,
                  uint64_t from, const void *data, size_t len);
void pc_pool_release(struct pc_chat *c, struct pc_room *r);
void pc_pool_gap_check(uv_timer_t *t);

/* history.c */
void pc_history_replay(struct pc_session *s, struct pc_room *r);
int pc_cmd_chathistory(struct pc_session *s, const struct pc_irc_msg *m);

/* tagmsg.c: TAGMSG (client-only tags, relayed live, never stored) */
void pc_cmd_tagmsg(struct pc_session *s, const struct pc_irc_msg *m);
/* Delivers a room TAGMSG to the local members that asked for
 * message-tags; `author` (local, or NULL) gets the echo instead. */
void pc_tagmsg_to_room(struct pc_room *r, struct pc_session *author,
                       uint64_t at_ms, const char *msgid, const char *source,
                       const char *account, const char *tags);
/* Delivers a private PRIVMSG/NOTICE/TAGMSG to a local user. */
void pc_msg_to_local_user(struct pc_session *to, uint64_t at_ms,
                          const char *msgid, const char *source,
                          const char *account, enum pc_msg_kind kind,
                          const char *tags, const char *text, size_t len);

/* commands.c: the command table */
void pc_cmd_dispatch(struct pc_session *s, const struct pc_irc_msg *m);
/* The client-only tags of a message, "+k=v;+k2" (escaped), "" if none. */
void pc_client_tags(const struct pc_irc_msg *m, char *out, size_t cap);
/* False (and the refusal sent unless quiet) if s may not send to r. */
bool pc_room_may_send(struct pc_session *s, struct pc_room *r, bool quiet);
/* Completes registration if everything it waits for is there. */
void pc_cmd_try_register(struct pc_session *s);
/* Gives s a (valid) nick, telling its peers and the pool if registered;
 * returns 0 or PC_EEXIST if another session holds it. */
int pc_cmd_set_nick(struct pc_session *s, const char *nick);

/* sasl.c: AUTHENTICATE and what others see of accounts */
int pc_sasl_init(struct pc_chat *c);
void pc_sasl_free(struct pc_chat *c);
void pc_sasl_session_free(struct pc_session *s);
/* Registration is completing: an exchange waiting for the client is
 * aborted (906); true if one waiting for the server must end first. */
bool pc_sasl_hold_registration(struct pc_session *s);
/* A JOIN of s stopped waiting for its room: once none waits, the input held
 * behind it runs (from the throttle timer, not from the caller's stack). */
void pc_sess_join_done(struct pc_session *s);
void pc_cmd_authenticate(struct pc_session *s, const struct pc_irc_msg *m);
/* s joined r: JOIN to members (extended-join for those with the cap). */
void pc_room_send_join(struct pc_room *r, struct pc_session *s,
                       const struct pc_session *except);
/* ACCOUNT to peers with account-notify (s logged in or out). */
void pc_account_notify(struct pc_session *s);
/* account=<name> for a recipient with account-tag. */
void pc_sess_account_tag(const struct pc_session *to, struct pc_irc_line *l,
                         const char *account, size_t len);
void pc_send_isupport(struct pc_session *s);

/* Small helpers. */
char *pc_strndup(const char *s, size_t n);
/* Copies a slice into a NUL-terminated buffer, truncating. */
void pc_slice(char *dst, size_t cap, struct pc_irc_str src);
const char *pc_server_name(const struct pc_chat *c);

#endif
