#!/bin/bash
# Scenario 3, burst in one big room: MEMBERS clients in one room; SENDERS of
# them post as fast as their echoes allow (WINDOW posts in flight each),
# then at a paced RATE. Reports deliveries/s (fan-out) and latency.
#   bench/scenarios/3-bigroom.sh [--server inspircd|pchatd] [--members N]
#       [--senders S] [--window W] [--rate R] [--duration S] [--procs P]
# --caps LIST: capabilities to request (default: all five that --cap asks
# for; echo-message is the one the figures need).
# Issue scale: --members 5000.
SCN_VARS="MEMBERS SENDERS WINDOW RATE DURATION WARMUP PROCS CAPS"
MEMBERS=1000; SENDERS=20; WINDOW=5; RATE=200; DURATION=5; WARMUP=2; PROCS=1
CAPS=echo-message,message-tags,server-time,labeled-response,batch
. "$(dirname "$0")/lib.sh"
scn_init "$@"
scn_start
scn_bench "$MEMBERS members, $SENDERS senders x $WINDOW in flight" \
    --clients "$MEMBERS" --room-size "one:$MEMBERS" --senders "$SENDERS" \
    --rate 0 --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP" \
    --procs "$PROCS" --caps "$CAPS"
if [ "$RATE" != 0 ]; then
    scn_bench "$MEMBERS members, $RATE posts/s" \
        --clients "$MEMBERS" --room-size "one:$MEMBERS" --senders "$SENDERS" \
        --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
        --procs "$PROCS" --caps "$CAPS"
fi
scn_stop
scn_table "Scenario 3: one room of $MEMBERS (latency in microseconds)" \
    "posts/s=posts_per_sec" "deliveries/s=deliveries_per_sec" \
    "p50=latency_us.p50" "p99=latency_us.p99" "p99.9=latency_us.p999" \
    "max=latency_us.max" "server CPU %=server_cpu_pct" \
    "bench CPU %=bench_cpu_pct" "errors=errors.total"
