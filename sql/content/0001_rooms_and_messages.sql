-- Rooms and their messages: the durable core of pchat.
--
-- Every message of a room gets the room's next `seq` under the room row's
-- lock, so that history order and live delivery order are the same. The
-- server-generated, time-ordered msgid (UUIDv7) makes inserts idempotent: a
-- post retried after an unknown commit outcome finds itself and is not
-- stored twice.

CREATE TABLE rooms (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,              -- channel name as created
    name_folded text NOT NULL UNIQUE,       -- rfc1459 casefolded
    topic       text NOT NULL DEFAULT '',
    topic_by    text NOT NULL DEFAULT '',
    topic_at    timestamptz,
    modes       text NOT NULL DEFAULT 'nt', -- flag modes, one letter each
    key         text,                       -- +k
    user_limit  integer,                    -- +l
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seq    bigint NOT NULL DEFAULT 0,
    last_at     timestamptz
);

CREATE TABLE messages (
    room_id  bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq      bigint NOT NULL,
    msgid    uuid NOT NULL UNIQUE,
    at       timestamptz NOT NULL,
    kind     smallint NOT NULL,   -- 0 PRIVMSG, 1 NOTICE
    source   text NOT NULL,       -- nick!user@host at the time
    account  text,
    body     text NOT NULL,
    tags     text NOT NULL DEFAULT '', -- client-only tags, escaped
    PRIMARY KEY (room_id, seq)
);

CREATE INDEX messages_room_at ON messages (room_id, at);
CREATE INDEX rooms_last_at ON rooms (last_at);

-- Stores a batch of posts in one transaction (group commit) and returns
-- (msgid, room_id, seq, inserted) for each, in input order. Posts whose
-- msgid is already stored return their existing seq with inserted = false;
-- posts to a room that does not exist return seq NULL.
CREATE FUNCTION pchat_post(p_msgid uuid[], p_room bigint[], p_at_ms bigint[],
                           p_kind smallint[], p_source text[],
                           p_account text[], p_body text[], p_tags text[])
RETURNS TABLE (msgid uuid, room_id bigint, seq bigint, inserted boolean)
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the rooms in id order, so concurrent batches (other nodes, other
    -- connections) cannot deadlock on each other.
    PERFORM 1 FROM rooms r WHERE r.id = ANY (p_room) ORDER BY r.id
        FOR NO KEY UPDATE;

    RETURN QUERY
    WITH input AS (
        SELECT t.msgid, t.room_id, t.at_ms, t.kind, t.source, t.account,
               t.body, t.tags, t.ord
          FROM unnest(p_msgid, p_room, p_at_ms, p_kind, p_source, p_account,
                      p_body, p_tags)
               WITH ORDINALITY AS t(msgid, room_id, at_ms, kind, source,
                                    account, body, tags, ord)
    ), fresh AS (
        SELECT i.*, row_number() OVER (PARTITION BY i.room_id
                                       ORDER BY i.ord) AS n
          FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.msgid = i.msgid)
           AND EXISTS (SELECT 1 FROM rooms r WHERE r.id = i.room_id)
    ), bumped AS (
        UPDATE rooms r
           SET last_seq = r.last_seq + c.cnt,
               last_at = greatest(r.last_at, to_timestamp(c.max_ms / 1000.0))
          FROM (SELECT f.room_id, count(*) AS cnt, max(f.at_ms) AS max_ms
                  FROM fresh f GROUP BY f.room_id) c
         WHERE r.id = c.room_id
        RETURNING r.id, r.last_seq - c.cnt AS base
    ), ins AS (
        INSERT INTO messages (room_id, seq, msgid, at, kind, source, account,
                              body, tags)
        SELECT f.room_id, b.base + f.n, f.msgid,
               to_timestamp(f.at_ms / 1000.0), f.kind, f.source, f.account,
               f.body, f.tags
          FROM fresh f JOIN bumped b ON b.id = f.room_id
        RETURNING messages.msgid, messages.seq
    )
    SELECT i.msgid, i.room_id, coalesce(ins.seq, old.seq),
           ins.seq IS NOT NULL
      FROM input i
      LEFT JOIN ins ON ins.msgid = i.msgid
      LEFT JOIN messages old ON old.msgid = i.msgid
     ORDER BY i.ord;
END
$$;
