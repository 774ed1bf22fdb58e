#!/bin/bash
# Scenario 4, durable write ceiling: SENDERS clients in SENDERS rooms (two
# members each) post as fast as their echoes allow with WINDOW posts in
# flight. With pchatd an echo means the post was committed (synchronous
# commit on). Then the batch sizes pchatd's group commit used (rows per
# transaction, from xmin), and pgbench inserting the same rows into a table
# like messages (same columns, indexes and foreign key), in the same PostgreSQL, one
# transaction per batch with sizes drawn from pchatd's, with PG_CLIENTS
# clients each: 1 is pchatd's pipeline (one batch at the database at a
# time), more show what concurrency adds. InspIRCd stores nothing: its
# figure is the non-durable ceiling.
#   bench/scenarios/4-durable.sh [--server inspircd|pchatd] [--senders S]
#       [--window W] [--duration S] [--pg-clients "1 2"] [--caps LIST]
SCN_VARS="SENDERS WINDOW DURATION WARMUP PG_CLIENTS CAPS"
SENDERS=200; WINDOW=20; DURATION=10; WARMUP=2; PG_CLIENTS="1 2"
CAPS=echo-message,message-tags,server-time,labeled-response,batch
. "$(dirname "$0")/lib.sh"
scn_init "$@"
scn_start
if [ "$SERVER" = pchatd ]; then
    # A fresh cluster creates and zero-fills a WAL segment every 16 MB (one
    # per second or so here), which stalls commits: write WAL first, as a
    # running server has, so that segments are recycled instead.
    psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "CREATE TABLE warm (id bigserial, body text)"
    echo "INSERT INTO warm (body) SELECT repeat('x', 200) FROM generate_series(1, 100);" > "$WORK/warm.sql"
    /usr/lib/postgresql/15/bin/pgbench -n -h "$WORK/pg" -p "$PGPORT" -U pchat -c 2 -j 2 -T 8 \
        -f "$WORK/warm.sql" pchat >/dev/null 2>&1 || echo "(warm-up pgbench failed)" >&2
    psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "DROP TABLE warm" -c "CHECKPOINT"
fi
[ "$SERVER" = pchatd ] && pg_before=$(pg_cpu_secs)
scn_bench "$SENDERS senders x $WINDOW in flight" --clients $((SENDERS * 2)) \
    --rooms "$SENDERS" --senders "$SENDERS" --rate 0 --window "$WINDOW" \
    --duration "$DURATION" --warmup "$WARMUP" --caps "$CAPS"
[ "$SERVER" = pchatd ] && pg_after=$(pg_cpu_secs)
scn_stop
scn_table "Scenario 4: acknowledged posts" \
    "acks/s=acks_per_sec" "echo p50 us=ack_latency_us.p50" \
    "echo p99 us=ack_latency_us.p99" "server CPU %=server_cpu_pct" \
    "bench CPU %=bench_cpu_pct" "errors=errors.total"
if [ "$SERVER" = pchatd ]; then
    # The batches pchatd's group commit made: the rows one transaction
    # inserted share its xmin.
    psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE bench_batches AS
    SELECT row_number() OVER () AS k, size
      FROM (SELECT count(*) AS size FROM messages GROUP BY xmin::text) b;
ALTER TABLE bench_batches ADD PRIMARY KEY (k);
-- The same rows: copies of the ones one of pchatd's largest batches
-- stored (so spread over as many rooms as its batches were), in the order
-- they were inserted.
CREATE TABLE bench_sample AS
    SELECT row_number() OVER (ORDER BY m.ctid) AS n, m.room_id,
           m.kind, m.source, m.account, m.body, m.tags
      FROM messages m
     WHERE m.xmin::text = (SELECT xmin::text FROM messages
                            GROUP BY xmin::text ORDER BY count(*) DESC LIMIT 1);
ALTER TABLE bench_sample ADD PRIMARY KEY (n);
-- The same table shape: messages' columns, keys, indexes and foreign keys
-- (LIKE copies all but the last).
CREATE TABLE bench_messages (LIKE messages INCLUDING ALL);
DO $$
DECLARE d text;
BEGIN
    FOR d IN SELECT pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = 'messages'::regclass AND contype = 'f' LOOP
        EXECUTE 'ALTER TABLE bench_messages ADD ' || d;
    END LOOP;
END $$;
CREATE SEQUENCE bench_seq;
SQL
    stored=$(psql -At -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "SELECT count(*) FROM messages")
    pg_secs=$(echo "$pg_before $pg_after" | awk '{printf "%.2f", $2 - $1}')
    echo
    echo "PostgreSQL CPU over the pchatd run (warm-up included): $pg_secs s" \
         "for $stored rows: $(echo "$stored $pg_secs" | awk '{printf "%.0f", ($2 > 0 ? $1 / $2 : 0)}')" \
         "rows per PostgreSQL CPU second"
    echo
    echo "pchatd's group commit (one transaction per batch, from xmin):"
    psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -P footer=off <<'SQL'
SELECT count(*) AS batches, sum(size) AS rows,
       round(avg(size), 1) AS mean,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY size) AS p50,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY size) AS p90,
       max(size) AS max,
       round(100.0 * sum(size) FILTER (WHERE size >= 256) / sum(size), 1)
           AS "% rows in batches >= 256"
  FROM bench_batches;
SELECT CASE WHEN size = 1 THEN '1' WHEN size < 10 THEN '2-9'
            WHEN size < 100 THEN '10-99' WHEN size < 256 THEN '100-255'
            WHEN size < 512 THEN '256-511' ELSE '512+' END AS "batch size",
       count(*) AS batches, sum(size) AS rows
  FROM bench_batches GROUP BY 1 ORDER BY min(size);
SQL
    # One transaction inserts a batch drawn from pchatd's batches: the same
    # rows into a table like messages, msgids time-ordered as pchatd's are.
    nb=$(psql -At -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "SELECT count(*) FROM bench_batches")
    cat > "$WORK/batch.sql" <<'SQL'
\set k random(1, :nb)
INSERT INTO bench_messages (room_id, seq, msgid, at, kind, source, account, body, tags)
SELECT s.room_id, nextval('bench_seq'),
       (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || '7' || substr(replace(gen_random_uuid()::text, '-', ''), 14, 19))::uuid,
       now(), s.kind, s.source, s.account, s.body, s.tags
  FROM bench_sample s
 WHERE s.n <= (SELECT size FROM bench_batches WHERE k = :k);
SQL
    pgbench=/usr/lib/postgresql/15/bin/pgbench
    scn_idle_check
    printf '\n| pgbench, pchatd'"'"'s batches | clients | transactions/s | rows/s | pchatd acks/s / pgbench rows/s | PostgreSQL CPU s | rows per PostgreSQL CPU s | idle before %% |\n|---|---:|---:|---:|---:|---:|---:|---:|\n'
    acks=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('acks_per_sec', 0))" "$WORK/run$SCN_RUN.json" 2>/dev/null || echo 0)
    for cl in $PG_CLIENTS; do
        # As pchatd's run did, start right after a checkpoint (pchatd's
        # WAL would otherwise make one during this run).
        psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "CHECKPOINT"
        b=$(pg_cpu_secs)
        out=$("$pgbench" -n -h "$WORK/pg" -p "$PGPORT" -U pchat -c "$cl" -j "$cl" \
            -T "$DURATION" -D nb="$nb" -f "$WORK/batch.sql" pchat 2>&1) \
            || { echo "$out" >&2; scn_die "pgbench failed"; }
        tps=$(echo "$out" | awk '/^tps/ {print $3}')
        a=$(pg_cpu_secs)
        rows=$(psql -At -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c \
            "SELECT count(*) FROM bench_messages")
        psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c "TRUNCATE bench_messages"
        rps=$(echo "$rows $DURATION" | awk '{printf "%.0f", $1 / $2}')
        printf '| sampled | %s | %.0f | %s | %s | %s | %s | %s |\n' "$cl" "${tps:-0}" "$rps" \
            "$(echo "$acks $rps" | awk '{printf "%.2f", ($2 > 0 ? $1 / $2 : 0)}')" \
            "$(echo "$b $a" | awk '{printf "%.2f", $2 - $1}')" \
            "$(echo "$rows $b $a" | awk '{printf "%.0f", ($3 > $2 ? $1 / ($3 - $2) : 0)}')" \
            "$SCN_IDLE_PCT"
    done
else
    echo "(pgbench comparison: only with --server pchatd, which has the database)"
fi
