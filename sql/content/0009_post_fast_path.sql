-- pchat_post() made cheaper per batch (docs/benchmarks.md, scenario 4).
--
-- 1. No per-function plan_cache_mode any more. 0002 set force_custom_plan
--    on the function so that its queries were planned with the real
--    arguments; but the setting also reached the foreign-key checks that
--    fire for each inserted row (SELECT 1 FROM rooms ... FOR KEY SHARE),
--    and each of those was planned again, once per message: about half of
--    the database's CPU under load. The queries below are run by EXECUTE,
--    which plans them afresh at each call with the real arguments, as 0002
--    wanted, and the foreign-key checks keep their cached plans.
-- 2. A first attempt cannot find its msgids stored already (they are new
--    UUIDv7s): the batch is inserted without looking each msgid up first,
--    and the unique index on msgid stays the guard. Only if it fires (a
--    batch retried after an unknown commit outcome) is the batch done again
--    by the old function, now pchat_post_retry(), which skips the stored
--    posts and returns their seq.
--    The rooms stay locked across both attempts (the lock is taken outside
--    the block that is rolled back).
-- 3. The rooms are locked through a join on the distinct room ids, not
--    `= ANY (p_room)`, whose 512-element array was sorted again per scan.
-- 4. Every batch updates last_seq and last_at of each room it posts to.
--    An index on last_at made each such update a non-HOT update that
--    inserted into every index of rooms; without it (and with free space
--    in the pages, fillfactor 50) the update is HOT. CHATHISTORY TARGETS,
--    the only reader of last_at, scans rooms instead.
DROP INDEX rooms_last_at;
ALTER TABLE rooms SET (fillfactor = 50);

ALTER FUNCTION pchat_post(uuid[], bigint[], bigint[], smallint[], text[],
                          text[], text[], text[])
    RENAME TO pchat_post_retry;

CREATE FUNCTION pchat_post(p_msgid uuid[], p_room bigint[], p_at_ms bigint[],
                           p_kind smallint[], p_source text[],
                           p_account text[], p_body text[], p_tags text[])
RETURNS TABLE (msgid uuid, room_id bigint, seq bigint, inserted boolean)
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the rooms in id order, so concurrent batches (other nodes, other
    -- connections) cannot deadlock on each other.
    EXECUTE $q$
        SELECT 1 FROM rooms r
         WHERE r.id IN (SELECT DISTINCT u.id FROM unnest($1) AS u(id))
         ORDER BY r.id
           FOR NO KEY UPDATE
    $q$ USING p_room;

    -- The fast path: every msgid is new.
    BEGIN
        RETURN QUERY EXECUTE $q$
        WITH input AS (
            SELECT t.msgid, t.room_id, t.at_ms, t.kind, t.source, t.account,
                   t.body, t.tags, t.ord,
                   row_number() OVER (PARTITION BY t.room_id
                                      ORDER BY t.ord) AS n
              FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)
                   WITH ORDINALITY AS t(msgid, room_id, at_ms, kind, source,
                                        account, body, tags, ord)
        ), bumped AS (
            UPDATE rooms r
               SET last_seq = r.last_seq + c.cnt,
                   last_at = greatest(r.last_at,
                                      to_timestamp(c.max_ms / 1000.0))
              FROM (SELECT i.room_id, count(*) AS cnt, max(i.at_ms) AS max_ms
                      FROM input i GROUP BY i.room_id) c
             WHERE r.id = c.room_id
            RETURNING r.id, r.last_seq - c.cnt AS base
        ), ins AS (
            INSERT INTO messages (room_id, seq, msgid, at, kind, source,
                                  account, body, tags)
            SELECT i.room_id, b.base + i.n, i.msgid,
                   to_timestamp(i.at_ms / 1000.0), i.kind, i.source,
                   i.account, i.body, i.tags
              FROM input i JOIN bumped b ON b.id = i.room_id
            RETURNING messages.msgid, messages.seq
        )
        SELECT i.msgid, i.room_id, ins.seq, ins.seq IS NOT NULL
          FROM input i
          LEFT JOIN ins ON ins.msgid = i.msgid
         ORDER BY i.ord
        $q$ USING p_msgid, p_room, p_at_ms, p_kind, p_source, p_account,
                  p_body, p_tags;
        RETURN;
    EXCEPTION WHEN unique_violation THEN
        -- Some msgid is stored: nothing of the fast path remains (no row
        -- was returned either: the sort by ord consumes all input first).
        NULL;
    END;

    -- A retried batch: 0001's careful version (its plans made per call by
    -- 0002) stores the posts not stored yet, in order, and returns the seq
    -- of the others; posts to a room that does not exist get seq NULL.
    RETURN QUERY SELECT * FROM pchat_post_retry(p_msgid, p_room, p_at_ms,
                                                p_kind, p_source, p_account,
                                                p_body, p_tags);
END
$$;
