#!/bin/bash
# Scenario 1, idle scale: as many concurrent connections as asked (up to the
# descriptor limit of 20,000 per process here), registered and joined, then
# held; the server's memory per connection. Plain, then TLS, each against a
# freshly started server so its RSS before is a clean baseline.
#   bench/scenarios/1-idle.sh [--server inspircd|pchatd] [--clients N]
#       [--procs P] [--src-addrs SPEC] [--hold SECS]
#       [--modes "plain tls tls-handshake"]
#       [--room-size uniform:10] [--connect-rate C (per second; 0 = at once)]
# Issue scale: --clients 19000 --procs 2 (one pchatd process, 19,000 TLS).
SCN_VARS="CLIENTS PROCS SRC_ADDRS HOLD MODES ROOM_SIZE CONNECT_RATE"
CLIENTS=2000; PROCS=1; SRC_ADDRS=127.10.0.0/16:64; HOLD=3; MODES="plain tls"
ROOM_SIZE=uniform:10; CONNECT_RATE=0
. "$(dirname "$0")/lib.sh"
scn_init "$@"
# Mode tls-handshake: TLS connections that complete their handshake and
# send nothing more (no registration): the rate of new TLS connections alone.
for mode in $MODES; do
    scn_start
    tls=""
    [ "$mode" = tls ] && tls="--tls"
    [ "$mode" = tls-handshake ] && tls="--tls --handshake-only"
    # Let the server settle its own start-up allocations before the baseline.
    sleep 1
    scn_bench "$mode, $CLIENTS idle" $tls --clients "$CLIENTS" --procs "$PROCS" \
        --src-addrs "$SRC_ADDRS" --room-size "$ROOM_SIZE" --idle \
        --duration "$HOLD" --warmup 0 --cap --connect-rate "$CONNECT_RATE"
done
scn_stop
scn_table "Scenario 1: idle connections" \
    "held=held" "TLS handshakes/s=handshakes_per_sec" \
    "registrations/s=registrations_per_sec" \
    "server RSS before KiB=server_rss_kib_before" \
    "server RSS after KiB=server_rss_kib_after" \
    "server bytes/conn=server_bytes_per_conn" \
    "server CPU s connecting=server_cpu_connect_secs" \
    "bench CPU s=bench_cpu_total_secs" "errors=errors.total"
