-- pchat_post() ran its first batches against empty tables; PL/pgSQL then
-- kept a generic plan that scanned `messages` sequentially for the msgid
-- check, and every batch got slower as the table grew (p50 6.6 ms instead
-- of 1.3 ms on a fresh database at 2,000 posts/s). Planning each call with
-- its real parameters and the table's current size costs far less.
ALTER FUNCTION pchat_post(uuid[], bigint[], bigint[], smallint[], text[],
                          text[], text[], text[])
    SET plan_cache_mode = force_custom_plan;
