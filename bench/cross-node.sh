#!/bin/bash
# Cross-node latency: two pchatd in one pool (one CPG group on a single-node
# Corosync), one private PostgreSQL, and two load generators, one per node,
# whose clients share the same rooms: every post is delivered on both nodes,
# so the figures show what the pool adds (seq order across nodes, room row
# locks taken by both nodes' batches, delivery through Corosync).
#   bench/cross-node.sh [BUILDDIR] [RATE_PER_NODE] [ROOMS] [CLIENTS_PER_NODE]
#   SHARED=0 bench/cross-node.sh ...   each node's clients in rooms of their own
# Runs in its own network and IPC namespace (its Corosync cannot meet
# another one), needs root, prints one line per generator. docs/pool.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
rate=${2:-1000}
rooms=${3:-20}
clients=${4:-200}
shared=${SHARED:-1}
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
    rm -rf "$work"
}
trap cleanup EXIT

conninfo=$("$top/tools/pg-private" start "$work/pg" 55499 | tail -n 1)
"$build/src/pchatctl/pchatctl" --db "$conninfo" db migrate >/dev/null

cat > "$work/corosync.conf" <<CONF
totem {
    version: 2
    cluster_name: xnode
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
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
"$build/bench/pchat-bench" --port 16661 --clients "$clients" --rooms "$rooms" \
    --senders "$rooms" --rate "$rate" --duration "$duration" --nick-prefix x \
    --room-prefix bench --json > "$work/g1.json" 2> "$work/g1.err" &
g1=$!
"$build/bench/pchat-bench" --port 16662 --clients "$clients" --rooms "$rooms" \
    --senders "$rooms" --rate "$rate" --duration "$duration" --nick-prefix y \
    --room-prefix "$prefix2" --json > "$work/g2.json" 2> "$work/g2.err"
wait "$g1"
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
