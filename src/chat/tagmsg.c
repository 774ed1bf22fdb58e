/* TAGMSG (IRCv3 message-tags) and the delivery of private messages.
 *
 * A TAGMSG carries only client-only tags: typing notifications
 * (+typing), reactions (+draft/react), replies (+draft/reply). It is
 * relayed live, to those who asked for message-tags, on this node and
 * through the pool, and never stored: it is not a message of the room's
 * history. Refusals are silent, as for NOTICE: clients send typing
 * notifications by themselves, and an error for each would be noise. */
#include "config.h"

#include <string.h>

#include "chat/internal.h"

/* The line a recipient gets; the trailing text only for PRIVMSG/NOTICE. */
static void
build(const struct pc_session *to, struct pc_irc_line *l, uint64_t at_ms,
      const char *msgid, const char *source, const char *account,
      enum pc_msg_kind kind, const char *tags, const char *target,
      const char *text, size_t len)
{
    static const char *const cmds[] = {"PRIVMSG", "NOTICE", "TAGMSG"};

    pc_irc_line_init(l);
    pc_sess_tags(to, l, at_ms, msgid);
    pc_sess_account_tag(to, l, account, account ? strlen(account) : 0);
    pc_line_client_tags(to, l, tags, tags ? strlen(tags) : 0);
    pc_irc_line_source(l, source);
    pc_irc_line_cmd(l, cmds[kind]);
    pc_irc_line_param(l, target, strlen(target));
    if (kind != MSG_TAGMSG) {
        pc_irc_line_trailing(l, text, len);
    }
}

void
pc_msg_to_local_user(struct pc_session *to, uint64_t at_ms, const char *msgid,
                     const char *source, const char *account,
                     enum pc_msg_kind kind, const char *tags, const char *text,
                     size_t len)
{
    struct pc_irc_line l;

    if (to->state != SESS_ACTIVE
        || (kind == MSG_TAGMSG && !(to->caps & CAP_MESSAGE_TAGS))) {
        return;
    }
    build(to, &l, at_ms, msgid, source, account, kind, tags, to->nick, text,
          len);
    pc_sess_send_line(to, &l);
}

void
pc_tagmsg_to_room(struct pc_room *r, struct pc_session *author,
                  uint64_t at_ms, const char *msgid, const char *source,
                  const char *account, const char *tags)
{
    struct pc_irc_line l;
    /* One line for every recipient with the same caps that change it. */
    unsigned built = ~0u;

    for (size_t i = 0; i < r->nmembers; i++) {
        struct pc_session *s = r->members[i];
        if (s == author || s->state != SESS_ACTIVE || s->member != 0
            || !(s->caps & CAP_MESSAGE_TAGS)) {
            continue;
        }
        unsigned v = s->caps & (CAP_SERVER_TIME | CAP_ACCOUNT_TAG);
        if (v != built) {
            build(s, &l, at_ms, msgid, source, account, MSG_TAGMSG, tags,
                  r->name, NULL, 0);
            built = v;
        }
        pc_sess_send_line(s, &l);
    }
    if (author != NULL && (author->caps & CAP_ECHO_MESSAGE)
        && (author->caps & CAP_MESSAGE_TAGS)) {
        build(author, &l, at_ms, msgid, source, account, MSG_TAGMSG, tags,
              r->name, NULL, 0);
        pc_sess_send_line(author, &l);
    }
}

/* TAGMSG <target>[,<target>...] with client-only tags. */
void
pc_cmd_tagmsg(struct pc_session *s, const struct pc_irc_msg *m)
{
    struct pc_chat *c = s->chat;
    char tags[PC_IRC_CLIENT_TAGS_MAX];
    char targets[PC_IRC_BODY_MAX];
    char mask[160];
    char msgid[PC_MSGID_LEN + 1];
    char *save = NULL;
    int count = 0;

    pc_client_tags(m, tags, sizeof(tags));
    if (tags[0] == '\0' || m->params[0].len == 0) {
        return; /* nothing a recipient could see */
    }
    pc_slice(targets, sizeof(targets), m->params[0]);
    (void)pc_sess_mask(s, mask, sizeof(mask));
    uint64_t now = pc_wall_ms();
    pc_msgid_next(&c->msgids, msgid);
    for (char *t = strtok_r(targets, ",", &save); t != NULL && count < 4;
         t = strtok_r(NULL, ",", &save), count++) {
        if (t[0] == '#') {
            struct pc_room *r = pc_room_find(c, t);
            if (r == NULL || !r->loaded || !pc_room_may_send(s, r, true)) {
                continue;
            }
            pc_tagmsg_to_room(r, s, now, msgid, mask, s->account, tags);
            pc_pool_tagmsg(c, r, now, msgid, mask, s->account, tags);
            continue;
        }
        struct pc_session *u = pc_sess_by_nick(c, t);
        if (u == NULL || u->state != SESS_ACTIVE) {
            continue;
        }
        if (u->member != 0) {
            pc_pool_dm(c, u, now, msgid, mask, s->account, MSG_TAGMSG, tags,
                       "", 0);
        } else {
            pc_msg_to_local_user(u, now, msgid, mask, s->account, MSG_TAGMSG,
                                 tags, "", 0);
        }
        if ((s->caps & CAP_ECHO_MESSAGE) && (s->caps & CAP_MESSAGE_TAGS)) {
            struct pc_irc_line l;
            build(s, &l, now, msgid, mask, s->account, MSG_TAGMSG, tags,
                  u->nick, NULL, 0);
            pc_sess_send_line(s, &l);
        }
    }
}
