/* The room policy: who may see, join, read the history of, post in, manage
 * and create which room (docs/room-model.md, "The policy"). Pure functions
 * over a small in-memory description of the user, the room and its
 * category. The decisions do no I/O, no allocation and keep no state; only
 * the list helpers at the end allocate. */
#ifndef PC_CHAT_POLICY_H
#define PC_CHAT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pc_prin_kind {
    PC_PRIN_ACCOUNT,       /* id is an account id */
    PC_PRIN_GROUP,         /* id is a group id */
    PC_PRIN_AUTHENTICATED, /* every logged-in account */
    PC_PRIN_ANYONE,        /* every connection */
};

struct pc_principal {
    enum pc_prin_kind kind;
    int64_t id;
};

struct pc_prin_list {
    struct pc_principal *v;
    size_t n;
    size_t cap;
};

enum pc_room_type { PC_ROOM_NORMAL, PC_ROOM_AUDITORIUM };
enum pc_room_privacy { PC_PRIV_OPEN, PC_PRIV_CLOSED, PC_PRIV_SECRET };

/* Who asks: account_id 0 is an unauthenticated connection. groups are the
 * ids of the account's groups, in any order. */
struct pc_policy_user {
    int64_t account_id;
    bool is_admin;
    const int64_t *groups;
    size_t ngroups;
};

struct pc_policy_cat {
    struct pc_prin_list allowed;
    struct pc_prin_list denied;
    struct pc_prin_list creators;
    bool invitations_allowed;
    bool history_kept;
};

/* cat may be NULL (a category not known yet): then only administrators
 * have any right. */
struct pc_policy_room {
    enum pc_room_type type;
    enum pc_room_privacy privacy;
    bool disabled;
    const struct pc_prin_list *members;
    const struct pc_prin_list *managers;
    const struct pc_prin_list *presenters;
    const struct pc_policy_cat *cat;
};

/* What one user may do in one room. */
struct pc_rights {
    bool see;       /* the room exists for this user */
    bool join;      /* may join (closed/secret: as a member) */
    bool history;   /* may read its history */
    bool manage;    /* topic, modes, invite, kick, membership, roles */
    bool post;      /* may post once joined (auditorium: presenters) */
    bool denied;    /* a denied principal of the category matches */
    bool member;    /* a member, manager or presenter principal matches */
    bool manager;   /* a manager principal matches (and not denied) */
    bool presenter; /* a presenter principal matches (and not denied) */
};

bool pc_policy_match(const struct pc_prin_list *l,
                     const struct pc_policy_user *u);
/* allowed(cat): an allowed principal matches and no denied one does. */
bool pc_policy_allowed(const struct pc_policy_cat *cat,
                       const struct pc_policy_user *u);
void pc_policy_rights(const struct pc_policy_room *room,
                      const struct pc_policy_user *u, struct pc_rights *out);
/* May create a room in the category: admin, or allowed and a creator. */
bool pc_policy_can_create(const struct pc_policy_cat *cat,
                          const struct pc_policy_user *u);

/* Principal lists (the cache fills them). */
int pc_prin_list_add(struct pc_prin_list *l, enum pc_prin_kind kind,
                     int64_t id);
void pc_prin_list_clear(struct pc_prin_list *l);
/* Parses "account"/"group"/"authenticated"/"anyone"; -1 if unknown. */
int pc_prin_kind_parse(const char *s);

#endif
