#!/bin/bash
# Cross-node latency: two pchatd in one pool (one CPG group on a single-node
# Corosync), one private PostgreSQL with its synchronous mirror (a standby
# on loopback), and two load generators, one per node,
# whose clients share the same rooms: every post is delivered on both nodes,
# so the figures show what the pool adds (seq order across nodes, room row
# locks taken by both nodes' batches, delivery through Corosync).
#   bench/cross-node.sh [BUILDDIR] [RATE_PER_NODE] [ROOMS] [CLIENTS_PER_NODE]
#   SHARED=0 bench/cross-node.sh ...   each node's clients in rooms of their own
#   MIRROR=0 bench/cross-node.sh ...   no standby (commits wait for one fsync)
#   SEQNO_UNCHANGED_CONST=30 ...        Corosync's default instead of the
#                                       template's 2 (ha/corosync/corosync.conf.in)
#   TOTEM_EXTRA="    key: value" ...   more totem settings, to try them
# Runs in its own network and IPC namespace (its Corosync cannot meet
# another one), needs root, prints one line per generator. docs/pool.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
rate=${2:-1000}
rooms=${3:-20}
clients=${4:-200}
shared=${SHARED:-1}
mirror=${MIRROR:-1}
duration=${DURATION:-8}

if [ "${PCHAT_XNODE_INNER:-}" != 1 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "cross-node: needs root (namespaces, Corosync)" >&2; exit 1; }
    exec unshare --net --ipc --mount bash -c \
        'ip link set lo up; mount -t tmpfs tmpfs /run; mkdir -p /run/corosync
         PCHAT_XNODE_INNER=1 exec "$0" "$@"' "$0" "$build" "$rate" "$rooms" "$clients"
fi

work=$(mktemp -d /var/tmp/pchat-xnode.XXXXXX)
chmod 0755 "$work"  # the postgres user runs the database in it
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$top/tools/pg-private" stop "$work/pg" >/dev/null 2>&1 || true
    "$top/tools/pg-private" stop "$work/mirror" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

export PG_LISTEN=127.0.0.1
conninfo=$("$top/tools/pg-private" start "$work/pg" 55499 | tail -n 1)
if [ "$mirror" = 1 ]; then
    # The synchronous mirror: a standby on loopback that must have flushed
    # every commit before it is acknowledged (docs/database.md).
    "$top/tools/pg-private" sync "$work/pg" '"mirror"'
    "$top/tools/pg-private" standby "$work/mirror" 55498 55499 >/dev/null
    for _ in $(seq 100); do
        st=$(psql "$conninfo" -XAtc "SELECT sync_state FROM pg_stat_replication" 2>/dev/null || true)
        [ "$st" = sync ] && break
        sleep 0.2
    done
    [ "$st" = sync ] || { echo "cross-node: the mirror is not synchronous" >&2; exit 1; }
fi
"$build/src/pchatctl/pchatctl" --db "$conninfo" db migrate >/dev/null

cat > "$work/corosync.conf" <<CONF
totem {
    version: 2
    cluster_name: xnode
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
    seqno_unchanged_const: ${SEQNO_UNCHANGED_CONST:-2}
${TOTEM_EXTRA:-}
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: n1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: yes
    to_syslog: no
}
CONF
corosync -f -c "$work/corosync.conf" > "$work/corosync.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes" && break
    sleep 0.2
done
corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes" ||
    { echo "cross-node: Corosync did not become quorate" >&2; exit 1; }

for n in 1 2; do
    "$build/src/pchatd/pchatd" -o pool.backend=cpg -o auth.required=no \
        -o "database.conninfo=$conninfo" -o listen.tls= \
        -o "listen.plain=127.0.0.1:1666$n" -o "pool.control_socket=$work/ctl$n.sock" \
        -o "server.name=n$n.xnode" -o limits.flood_rate=100000 \
        -o limits.flood_burst=100000 > "$work/pchatd$n.log" 2>&1 &
    pids+=($!)
done
for n in 1 2; do
    for _ in $(seq 100); do
        "$build/src/pchatctl/pchatctl" --socket "$work/ctl$n.sock" status 2>/dev/null |
            grep -q "serving=yes" && break
        sleep 0.1
    done
done

prefix2=bench
[ "$shared" = 1 ] || prefix2=other
# CPU ticks (utime + stime) of a process and its threads, and Corosync's own
# counters, before and after the load: what each part cost.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {  # both servers' postmasters and their children
    local t=0 pm p
    for pm in $(head -qn 1 "$work"/{pg,mirror}/data/postmaster.pid 2>/dev/null); do
        for p in "$pm" $(pgrep -P "$pm"); do t=$((t + $(ticks "$p"))); done
    done
    echo "$t"
}
srp() { corosync-cmapctl -m stats 2>/dev/null |
        awk -v k="stats.srp.$1 " 'index($0, k) == 1 {print $NF}'; }
cs_pid=${pids[0]}; n1_pid=${pids[1]}; n2_pid=${pids[2]}
snapshot() {
    echo "$(ticks "$cs_pid") $(ticks "$n1_pid") $(ticks "$n2_pid") $(pg_ticks)" \
         "$(srp mcast_tx) $(srp orf_token_rx)"
}
before=$(snapshot)
"$build/bench/pchat-bench" --port 16661 --clients "$clients" --rooms "$rooms" \
    --senders "$rooms" --rate "$rate" --duration "$duration" --nick-prefix x \
    --room-prefix bench --json > "$work/g1.json" 2> "$work/g1.err" &
g1=$!
"$build/bench/pchat-bench" --port 16662 --clients "$clients" --rooms "$rooms" \
    --senders "$rooms" --rate "$rate" --duration "$duration" --nick-prefix y \
    --room-prefix "$prefix2" --json > "$work/g2.json" 2> "$work/g2.err"
wait "$g1"
after=$(snapshot)
read -r c0 a0 b0 p0 m0 t0 <<< "$before"
read -r c1 a1 b1 p1 m1 t1 <<< "$after"
hz=$(getconf CLK_TCK)
# The generators run $duration s plus their set-up; CPU is per whole run.
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}'; }
echo "cpu seconds over the run: corosync $(secs $((c1 - c0)))" \
     "pchatd1 $(secs $((a1 - a0))) pchatd2 $(secs $((b1 - b0)))" \
     "postgres $(secs $((p1 - p0)));" \
     "corosync multicasts $((m1 - m0)), token rotations $((t1 - t0))"
/usr/bin/python3 - "$work/g1.json" "$work/g2.json" "$shared" <<'PY'
import json, sys
for i, f in enumerate(sys.argv[1:3], 1):
    j = json.load(open(f))
    l = j["latency_us"]
    print("node %d%s: posts/s %.0f deliveries/s %.0f p50 %.2f ms p99 %.2f ms "
          "p99.9 %.2f ms max %.2f ms errors %d" % (
              i, " (shared rooms)" if sys.argv[3] == "1" else " (own rooms)",
              j["posts_per_sec"], j["deliveries_per_sec"], l["p50"] / 1000,
              l["p99"] / 1000, l["p999"] / 1000, l["max"] / 1000, j["errors"]["total"]))
PY
