#!/bin/bash
# Scenario 1b, reconnect storm: N clients connect at once (or at
# --connect-rate per second), negotiate caps, register and join; then all
# drop and come back, ROUNDS times (as after a failover). Reports connects,
# TLS handshakes and registrations per second.
#   bench/scenarios/1b-storm.sh [--server inspircd|pchatd] [--clients N]
#       [--procs P] [--connect-rate C] [--rounds R] [--modes "plain tls"]
# Issue scale: --clients 10000 --procs 2.
SCN_VARS="CLIENTS PROCS CONNECT_RATE ROUNDS MODES SRC_ADDRS"
CLIENTS=2000; PROCS=2; CONNECT_RATE=0; ROUNDS=3; MODES="plain tls"
SRC_ADDRS=127.11.0.0/16:64
. "$(dirname "$0")/lib.sh"
scn_init "$@"
scn_start
for mode in $MODES; do
    tls=""
    [ "$mode" = tls ] && tls="--tls"
    for r in $(seq "$ROUNDS"); do
        scn_bench "$mode, round $r" $tls --clients "$CLIENTS" --procs "$PROCS" \
            --src-addrs "$SRC_ADDRS" --connect-rate "$CONNECT_RATE" --idle \
            --duration 0 --warmup 0 --cap
        # The previous round's sockets close as its processes exit; give the
        # server a moment to see every EOF so nicks are free again.
        sleep 1
    done
done
scn_stop
scn_table "Scenario 1b: reconnect storm ($CLIENTS clients, connect rate ${CONNECT_RATE/#0/unlimited})" \
    "registered=registered" "connects/s=connects_per_sec" \
    "TLS handshakes/s=handshakes_per_sec" \
    "registrations/s=registrations_per_sec" "secs to all joined=join_secs" \
    "server CPU s=server_cpu_connect_secs" "bench CPU s=bench_cpu_total_secs" \
    "errors=errors.total"
