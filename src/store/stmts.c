#include "config.h"

#include "store/stmts.h"

/* Message rows are always selected in this shape, so that one decoder in
 * chat/ reads every history answer. A message an administrator removed
 * keeps its place (msgid, seq, time, author) with a placeholder text. */
#define MSG_COLUMNS                                                          \
    "seq, msgid::text, (extract(epoch from at) * 1000)::bigint, kind, "     \
    "source, account,"                                                      \
    " CASE WHEN removed_at IS NULL THEN body"                               \
    " ELSE '" PC_MSG_REMOVED "' END, tags"

/* Room rows are always selected in this shape (chat/room.c
 * pc_room_from_row). */
#define ROOM_COLUMNS                                                         \
    "id, name, topic, topic_by,"                                            \
    " coalesce((extract(epoch from topic_at))::bigint, 0), modes,"          \
    " key, user_limit, (extract(epoch from created_at))::bigint,"           \
    " last_seq, category_id, type, privacy, disabled"

#define ACCOUNT_COLUMNS                                                      \
    "id, name, is_admin, disabled, scram_iterations,"                       \
    " encode(scram_salt, 'hex'), encode(scram_stored_key, 'hex'),"          \
    " encode(scram_server_key, 'hex')"

const struct pc_stmt_def pc_stmts[PC_STMT_COUNT] = {
    [PC_STMT_SCHEMA_VERSION] = {
        "schema_version",
        "SELECT coalesce(max(version), 0) FROM pchat_schema", 0},
    [PC_STMT_POST] = {
        "post",
        "SELECT msgid::text, room_id, seq, inserted FROM pchat_post("
        "$1::uuid[], $2::bigint[], $3::bigint[], $4::smallint[], $5::text[],"
        " $6::text[], $7::text[], $8::text[])", 8},
    [PC_STMT_ROOM_LIST] = {
        "room_list",
        "SELECT " ROOM_COLUMNS " FROM rooms ORDER BY id", 0},
    [PC_STMT_ROOM_CREATE] = {
        "room_create",
        "INSERT INTO rooms (name, name_folded) VALUES ($1, $2)"
        " ON CONFLICT (name_folded) DO UPDATE SET name_folded = EXCLUDED.name_folded"
        " RETURNING " ROOM_COLUMNS, 2},
    [PC_STMT_ROOM_SET_TOPIC] = {
        "room_set_topic",
        "UPDATE rooms SET topic = $2, topic_by = $3,"
        " topic_at = to_timestamp($4::bigint / 1000.0) WHERE id = $1", 4},
    [PC_STMT_ROOM_SET_MODES] = {
        "room_set_modes",
        "UPDATE rooms SET modes = $2, key = $3, user_limit = $4::integer"
        " WHERE id = $1", 4},
    [PC_STMT_HIST_BEFORE] = {
        "hist_before",
        "SELECT " MSG_COLUMNS " FROM messages WHERE room_id = $1"
        " AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4", 4},
    [PC_STMT_HIST_AFTER] = {
        "hist_after",
        "SELECT " MSG_COLUMNS " FROM messages WHERE room_id = $1"
        " AND seq > $2 AND seq < $3 ORDER BY seq ASC LIMIT $4", 4},
    [PC_STMT_HIST_SEQ_OF] = {
        "hist_seq_of",
        "SELECT seq FROM messages WHERE room_id = $1 AND msgid = $2::uuid", 2},
    [PC_STMT_HIST_SEQ_AT] = {
        /* The first message at or after a time, found through the
         * (room_id, at) index: not min(seq) over everything after it. */
        "hist_seq_at",
        "SELECT coalesce((SELECT seq FROM messages WHERE room_id = $1"
        " AND at >= to_timestamp($2::bigint / 1000.0) ORDER BY at, seq"
        " LIMIT 1), (SELECT last_seq + 1 FROM rooms WHERE id = $1))", 2},
    [PC_STMT_HIST_TARGETS] = {
        "hist_targets",
        "SELECT name, (extract(epoch from last_at) * 1000)::bigint FROM rooms"
        " WHERE last_at > to_timestamp($1::bigint / 1000.0)"
        " AND last_at < to_timestamp($2::bigint / 1000.0)"
        " ORDER BY last_at LIMIT $3", 3},
    /* Accounts, for SASL: id, name, is_admin, disabled, iterations and
     * the SCRAM salt and keys as hex (NULL when the account has none). */
    [PC_STMT_ACCOUNT_BY_NAME] = {
        "account_by_name",
        "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE name_folded = $1",
        1},
    [PC_STMT_ACCOUNT_BY_CERT] = {
        "account_by_cert",
        "SELECT " ACCOUNT_COLUMNS " FROM accounts a JOIN account_certs c"
        " ON c.account_id = a.id WHERE c.fingerprint = $1", 1},
    [PC_STMT_ROOM_CREATE_AS] = {
        /* A new room's creator (when logged in) is its manager, as with
         * pchat_room_create(); other nodes hear of it by NOTIFY. An
         * existing room is returned as it is. */
        "room_create_as",
        "WITH ins AS (INSERT INTO rooms (name, name_folded, created_by)"
        " SELECT $1, $2, $3::bigint WHERE $4::boolean"
        " OR (pchat_category_has_role(1, 'creator', $3::bigint)"
        " AND pchat_category_has_role(1, 'allowed', $3::bigint)"
        " AND NOT pchat_category_has_role(1, 'denied', $3::bigint))"
        " ON CONFLICT (name_folded) DO NOTHING"
        " RETURNING " ROOM_COLUMNS "),"
        " mgr AS (INSERT INTO room_principals (room_id, role, kind,"
        " account_id) SELECT id, 'manager', 'account', $3::bigint FROM ins"
        " WHERE $3::bigint IS NOT NULL),"
        " n AS (SELECT pg_notify('pchat_acl', 'room ' || id) FROM ins)"
        " SELECT ins.*, true FROM ins, n"
        " UNION ALL SELECT " ROOM_COLUMNS ", false FROM rooms"
        " WHERE name_folded = $2"
        " AND NOT EXISTS (SELECT 1 FROM ins)", 4},
    [PC_STMT_ACL_LOAD] = {
        /* One snapshot of everything the policy needs besides the rooms'
         * own columns: c(ategory) id flags; p(rincipal of a category) and
         * r(oom principal) owner id, account or group id, role, kind;
         * g(roup membership) account id, group id; a(ccount) id, flags
         * (1 administrator, 2 disabled) of the few accounts with one. */
        "acl_load",
        "SELECT 'c', id, (invitations_allowed::int"
        " + 2 * history_kept::int)::bigint, name, '' FROM categories"
        " UNION ALL SELECT 'p', category_id, coalesce(account_id, group_id,"
        " 0), role, kind FROM category_principals"
        " UNION ALL SELECT 'r', room_id, coalesce(account_id, group_id, 0),"
        " role, kind FROM room_principals"
        " UNION ALL SELECT 'g', account_id, group_id, '', ''"
        " FROM group_members"
        " UNION ALL SELECT 'a', id, (is_admin::int + 2 * disabled::int)"
        "::bigint, '', '' FROM accounts WHERE is_admin OR disabled", 0},
    [PC_STMT_ADM_ROOM_SHOW] = {
        "adm_room_show", "SELECT pchat_room_show($1, $2)::text", 2},
    [PC_STMT_ADM_ROOM_SET] = {
        "adm_room_set", "SELECT pchat_room_set($1, $2, $3, $4)", 4},
    [PC_STMT_ADM_ROOM_GRANT] = {
        "adm_room_grant", "SELECT pchat_room_grant($1, $2, $3, $4)", 4},
    [PC_STMT_ADM_ROOM_REVOKE] = {
        "adm_room_revoke", "SELECT pchat_room_revoke($1, $2, $3, $4)", 4},
    [PC_STMT_ADM_CALL] = {
        "adm_call", "SELECT pchat_admin_call($1, $2, $3::text[])", 3},
};
