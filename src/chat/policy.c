#include "config.h"

#include "chat/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool
in_group(const struct pc_policy_user *u, int64_t group)
{
    for (size_t i = 0; i < u->ngroups; i++) {
        if (u->groups[i] == group) {
            return true;
        }
    }
    return false;
}

bool
pc_policy_match(const struct pc_prin_list *l, const struct pc_policy_user *u)
{
    if (l == NULL) {
        return false;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct pc_principal *p = &l->v[i];
        switch (p->kind) {
        case PC_PRIN_ANYONE:
            return true;
        case PC_PRIN_AUTHENTICATED:
            if (u->account_id != 0) {
                return true;
            }
            break;
        case PC_PRIN_ACCOUNT:
            if (u->account_id != 0 && p->id == u->account_id) {
                return true;
            }
            break;
        case PC_PRIN_GROUP:
            if (u->account_id != 0 && in_group(u, p->id)) {
                return true;
            }
            break;
        }
    }
    return false;
}

bool
pc_policy_allowed(const struct pc_policy_cat *cat,
                  const struct pc_policy_user *u)
{
    return cat != NULL && pc_policy_match(&cat->allowed, u)
           && !pc_policy_match(&cat->denied, u);
}

void
pc_policy_rights(const struct pc_policy_room *room,
                 const struct pc_policy_user *u, struct pc_rights *out)
{
    const struct pc_policy_cat *cat = room->cat;

    memset(out, 0, sizeof(*out));
    /* Without its category nothing is known: only administrators. */
    out->denied = cat == NULL || pc_policy_match(&cat->denied, u);
    if (!out->denied) {
        out->manager = pc_policy_match(room->managers, u);
        out->presenter = pc_policy_match(room->presenters, u);
        out->member = out->manager || out->presenter
                      || pc_policy_match(room->members, u);
    }
    bool allowed = !out->denied && pc_policy_match(&cat->allowed, u);

    if (u->is_admin) {
        out->see = true;
        out->join = !room->disabled;
        out->history = true;
        out->manage = true;
        out->post = true;
        return;
    }
    if (out->denied || room->disabled) {
        /* A disabled room is shown to administrators only. */
        return;
    }
    switch (room->privacy) {
    case PC_PRIV_OPEN:
        out->see = allowed || out->member;
        out->join = out->see;
        break;
    case PC_PRIV_CLOSED:
        out->see = allowed || out->member;
        out->join = out->member;
        break;
    case PC_PRIV_SECRET:
        out->see = out->member;
        out->join = out->member;
        break;
    }
    out->history = out->join && cat->history_kept;
    out->manage = out->manager;
    out->post = out->join
                && (room->type == PC_ROOM_NORMAL || out->presenter
                    || out->manager);
}

bool
pc_policy_can_create(const struct pc_policy_cat *cat,
                     const struct pc_policy_user *u)
{
    if (u->is_admin) {
        return true;
    }
    return pc_policy_allowed(cat, u) && pc_policy_match(&cat->creators, u);
}

int
pc_prin_list_add(struct pc_prin_list *l, enum pc_prin_kind kind, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        void *p = realloc(l->v, cap * sizeof(*l->v));
        if (p == NULL) {
            return -ENOMEM;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n].kind = kind;
    l->v[l->n].id = id;
    l->n++;
    return 0;
}

void
pc_prin_list_clear(struct pc_prin_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int
pc_prin_kind_parse(const char *s)
{
    static const char *const names[] = {"account", "group", "authenticated",
                                        "anyone"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}
