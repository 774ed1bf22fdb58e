/* Every SQL statement pchatd runs, as named prepared statements. The store
 * prepares all of them on each (re)connection. */
#ifndef PC_STORE_STMTS_H
#define PC_STORE_STMTS_H

/* What history shows in place of a message an administrator removed. */
#define PC_MSG_REMOVED "[message removed by an administrator]"

enum pc_stmt {
    PC_STMT_SCHEMA_VERSION, /* () -> version */
    PC_STMT_POST,           /* batch of posts -> (msgid, room_id, seq) */
    PC_STMT_ROOM_LIST,      /* () -> every room with its settings (and
                               category, type, privacy, disabled) */
    PC_STMT_ROOM_CREATE,    /* (name, folded) -> room row */
    PC_STMT_ROOM_SET_TOPIC, /* (id, topic, by, at_ms) */
    PC_STMT_ROOM_SET_MODES, /* (id, modes, key, limit) */
    PC_STMT_HIST_BEFORE,    /* (room, below, above, limit), newest first */
    PC_STMT_HIST_AFTER,     /* (room, above, below, limit), oldest first */
    PC_STMT_HIST_SEQ_OF,    /* (room, msgid) -> seq */
    PC_STMT_HIST_SEQ_AT,    /* (room, at_ms) -> first seq at or after */
    PC_STMT_HIST_TARGETS,   /* (from_ms, to_ms, limit) -> room, latest at */
    /* Room model (chat/acl.c). */
    PC_STMT_ROOM_CREATE_AS, /* (name, folded, account id or NULL, admin)
                               -> row + inserted, none if it may not be
                               created; the account becomes the room's
                               manager */
    PC_STMT_ACL_LOAD,       /* () -> (tag, a, b, role, kind): categories,
                               principals, group memberships, admin and
                               disabled accounts */
    PC_STMT_ADM_ROOM_SHOW,  /* (actor, room) -> json text */
    PC_STMT_ADM_ROOM_SET,   /* (actor, room, key, value) */
    PC_STMT_ADM_ROOM_GRANT, /* (actor, room, role, principal) */
    PC_STMT_ADM_ROOM_REVOKE, /* (actor, room, role, principal) */
    PC_STMT_ACCOUNT_BY_NAME, /* (name_folded) -> account row (SASL) */
    PC_STMT_ACCOUNT_BY_CERT, /* (fingerprint) -> account row (EXTERNAL) */
    PC_STMT_ADM_CALL,       /* (actor, op, args text[]) -> json text:
                               the HTTPS API (src/http) */
    PC_STMT_COUNT
};

struct pc_stmt_def {
    const char *name; /* prepared statement name */
    const char *sql;
    int nparams;
};

extern const struct pc_stmt_def pc_stmts[PC_STMT_COUNT];

#endif
