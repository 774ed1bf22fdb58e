#!/bin/bash
# Scenario 2, chat load: USERS clients in ROOMS rooms, one sender per room,
# posting RATE messages/s in total; latency under load (post -> delivery to
# the other members), fan-out, and both processes' CPU.
#   bench/scenarios/2-chat.sh [--server inspircd|pchatd] [--users N]
#       [--rooms R] [--rates "1000 2000"] [--duration S] [--procs P] [--tls 1]
#       [--window W]
# Rate 0 posts as fast as echoes allow, W posts in flight per sender: the
# many-small-rooms fan-out ceiling (--rates 0 --window 20).
# --caps LIST: capabilities to request (default: all five that --cap asks
# for; echo-message is the one the figures need).
# Issue scale: --users 10000 --rooms 1000 --rates 2000.
SCN_VARS="USERS ROOMS RATES DURATION WARMUP PROCS TLS ROOM_SIZE CAPS WINDOW"
USERS=2000; ROOMS=200; RATES="2000"; DURATION=10; WARMUP=2; PROCS=1; TLS=0
WINDOW=1
ROOM_SIZE=""
CAPS=echo-message,message-tags,server-time,labeled-response,batch
. "$(dirname "$0")/lib.sh"
scn_init "$@"
scn_start
tls=""
[ "$TLS" = 1 ] && tls="--tls"
dist=()
[ -n "$ROOM_SIZE" ] && dist=(--room-size "$ROOM_SIZE")
for rate in $RATES; do
    scn_bench "$USERS users, $ROOMS rooms, $rate/s" $tls --clients "$USERS" \
        --rooms "$ROOMS" --senders "$ROOMS" "${dist[@]}" --rate "$rate" \
        --window "$WINDOW" \
        --duration "$DURATION" --warmup "$WARMUP" --procs "$PROCS" --caps "$CAPS"
done
scn_stop
scn_table "Scenario 2: chat load (latency in microseconds)" \
    "posts/s=posts_per_sec" "acks/s=acks_per_sec" \
    "deliveries/s=deliveries_per_sec" "p50=latency_us.p50" \
    "p99=latency_us.p99" "p99.9=latency_us.p999" "max=latency_us.max" \
    "server CPU %=server_cpu_pct" "bench CPU %=bench_cpu_pct" \
    "errors=errors.total"
