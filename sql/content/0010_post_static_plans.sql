-- pchat_post() with static statements again (0009 ran them by EXECUTE).
--
-- EXECUTE plans a statement afresh at each call with the arguments as
-- constants: the planner then copies and walks eight arrays of a whole
-- batch, which cost more than the statements themselves for small batches
-- (measured with pgbench calling the function alone: 0.99 ms per call for
-- 2 posts, 3.3 ms for 64, 9.2 ms for 512; static: 0.76, 1.5 and 7.0 ms),
-- and small batches are what a server sees below its ceiling, where every
-- millisecond is post->delivery latency. Static statements get PL/pgSQL's
-- cached plans (generic once they are no worse than custom ones), made
-- again whenever autovacuum analyzes rooms or messages. The fast path has
-- no look-up in messages, the one that went wrong with a plan made on an
-- empty table (0002): it is in pchat_post_retry(), which keeps 0002's
-- per-call plans. There is still no plan_cache_mode on this function:
-- 0009 says why (the foreign-key checks).

CREATE OR REPLACE FUNCTION pchat_post(p_msgid uuid[], p_room bigint[], p_at_ms bigint[],
                           p_kind smallint[], p_source text[],
                           p_account text[], p_body text[], p_tags text[])
RETURNS TABLE (msgid uuid, room_id bigint, seq bigint, inserted boolean)
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the rooms in id order, so concurrent batches (other nodes, other
    -- connections) cannot deadlock on each other.
    PERFORM 1 FROM rooms r
     WHERE r.id IN (SELECT DISTINCT u.id FROM unnest(p_room) AS u(id))
     ORDER BY r.id
       FOR NO KEY UPDATE;

    -- The fast path: every msgid is new.
    BEGIN
        RETURN QUERY
        WITH input AS (
            SELECT t.msgid, t.room_id, t.at_ms, t.kind, t.source, t.account,
                   t.body, t.tags, t.ord,
                   row_number() OVER (PARTITION BY t.room_id
                                      ORDER BY t.ord) AS n
              FROM unnest(p_msgid, p_room, p_at_ms, p_kind, p_source,
                          p_account, p_body, p_tags)
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
         ORDER BY i.ord;
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
