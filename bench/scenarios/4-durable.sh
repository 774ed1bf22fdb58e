#!/bin/bash
# Scenario 4, durable write ceiling: SENDERS clients in SENDERS rooms (two
# members each) post as fast as their echoes allow with WINDOW posts in
# flight. With pchatd an echo means the post was committed (synchronous
# commit on), and pgbench inserts the same rows into the same PostgreSQL in
# the same run, one transaction per BATCH rows, for comparison. InspIRCd
# stores nothing: its figure is the non-durable ceiling.
#   bench/scenarios/4-durable.sh [--server inspircd|pchatd] [--senders S]
#       [--window W] [--duration S] [--batches "1 10 50"] [--pg-clients 16]
#       [--caps LIST]
SCN_VARS="SENDERS WINDOW DURATION WARMUP BATCHES PG_CLIENTS CAPS"
SENDERS=200; WINDOW=20; DURATION=10; WARMUP=2; BATCHES="1 10 50"; PG_CLIENTS=16
CAPS=echo-message,message-tags,server-time,labeled-response,batch
. "$(dirname "$0")/lib.sh"
scn_init "$@"
scn_start
scn_bench "$SENDERS senders x $WINDOW in flight" --clients $((SENDERS * 2)) \
    --rooms "$SENDERS" --senders "$SENDERS" --rate 0 --window "$WINDOW" \
    --duration "$DURATION" --warmup "$WARMUP" --caps "$CAPS"
scn_stop
scn_table "Scenario 4: acknowledged posts" \
    "acks/s=acks_per_sec" "echo p50 us=ack_latency_us.p50" \
    "echo p99 us=ack_latency_us.p99" "server CPU %=server_cpu_pct" \
    "bench CPU %=bench_cpu_pct" "errors=errors.total"
if [ "$SERVER" = pchatd ]; then
    pgbench=/usr/lib/postgresql/15/bin/pgbench
    psql -q -h "$WORK/pg" -p "$PGPORT" -U pchat -d pchat -c \
        "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial, room bigint, body text)"
    printf '\n| pgbench rows per transaction | clients | transactions/s | rows/s |\n|---|---:|---:|---:|\n'
    for b in $BATCHES; do
        {
            printf 'INSERT INTO bench_rows (room, body) VALUES '
            for i in $(seq "$b"); do
                [ "$i" -gt 1 ] && printf ', '
                printf "(1, 'pb 123456789012345 12 34 xxxxxxxxxxxxxxxxxxxx')"
            done
            printf ';\n'
        } > "$WORK/insert$b.sql"
        tps=$("$pgbench" -n -h "$WORK/pg" -p "$PGPORT" -U pchat -c "$PG_CLIENTS" -j 2 \
            -T "$DURATION" -f "$WORK/insert$b.sql" pchat 2>/dev/null | awk '/^tps/ {print $3}')
        printf '| %s | %s | %.0f | %.0f |\n' "$b" "$PG_CLIENTS" "${tps:-0}" \
            "$(echo "${tps:-0} * $b" | bc)"
    done
else
    echo "(pgbench comparison: only with --server pchatd, which has the database)"
fi
