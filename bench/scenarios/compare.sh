#!/bin/bash
# Runs the benchmark scenarios against pchatd (with its own private
# PostgreSQL, synchronous commit on) and InspIRCd side by side, in the same
# run, and prints one table. Everything it starts it stops, by PID.
#
#   bench/scenarios/compare.sh              quick scale (a few minutes)
#   SCALE=full bench/scenarios/compare.sh   the issue's sizes (needs time)
#   BUILDDIR=path/to/build                  where pchatd and pchat-bench are
#   ONLY="idle chat"                        run some scenarios only
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILDDIR:-$top/build}
bench=$build/bench/pchat-bench
pchatd=$build/src/pchatd/pchatd
pchatctl=$build/src/pchatctl/pchatctl
work=$(mktemp -d /tmp/pchat-bench.XXXXXX)
chmod 755 "$work"
scale=${SCALE:-quick}
only=${ONLY:-"idle tls storm chat bigroom durable"}
# Ports of our own: a server already on them would be measured instead.
P_PLAIN=${P_PLAIN:-26667}; P_TLS=${P_TLS:-26697}; P_INSP=${P_INSP:-27667}
P_INSP_TLS=${P_INSP_TLS:-27697}
for p in $P_PLAIN $P_TLS $P_INSP $P_INSP_TLS; do
    if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
        echo "port $p is already in use; set P_PLAIN/P_TLS/P_INSP/P_INSP_TLS" >&2; exit 1
    fi
done
results=$work/results.tsv
: > "$results"

if [ "$scale" = full ]; then
    IDLE_N=19000; IDLE_PROCS=2; STORM_N=10000; CHAT_N=10000; CHAT_ROOMS=1000
    CHAT_RATE=2000; BIG_N=5000; DUR=20
else
    IDLE_N=2000; IDLE_PROCS=1; STORM_N=2000; CHAT_N=2000; CHAT_ROOMS=200
    CHAT_RATE=2000; BIG_N=1000; DUR=5
fi

cleanup() {
    [ -n "${pchatd_pid:-}" ] && kill "$pchatd_pid" 2>/dev/null && wait "$pchatd_pid" 2>/dev/null
    "$top/bench/run-inspircd.sh" stop "$work/inspircd" >/dev/null 2>&1 || echo "inspircd already stopped"
    "$top/tools/pg-private" stop "$work/pg" >/dev/null 2>&1 || echo "postgres already stopped"
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)" >&2
conninfo=$("$top/tools/pg-private" start "$work/pg" 55432 | tail -n 1)
"$pchatctl" --db "$conninfo" db migrate >/dev/null
# A fresh cluster creates and zero-fills WAL segments as it goes, which
# slows commits for a while: write some WAL first, as a running server has.
psql -q -h "$work/pg" -p 55432 -U pchat -d pchat -c "CREATE TABLE warm (id bigserial, body text)"
echo "INSERT INTO warm (body) VALUES (repeat('x', 200));" > "$work/warm.sql"
/usr/lib/postgresql/15/bin/pgbench -n -h "$work/pg" -p 55432 -U pchat -c 8 -j 2 -T 8 \
    -f "$work/warm.sql" pchat >/dev/null 2>&1 || echo "(warm-up pgbench failed)" >&2
psql -q -h "$work/pg" -p 55432 -U pchat -d pchat -c "DROP TABLE warm; CHECKPOINT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

start_pchatd() {
    [ -n "${pchatd_pid:-}" ] && kill "$pchatd_pid" 2>/dev/null && wait "$pchatd_pid" 2>/dev/null
    "$pchatd" -o listen.plain=127.0.0.1:$P_PLAIN -o listen.tls=127.0.0.1:$P_TLS \
        -o tls.cert="$work/cert.pem" -o tls.key="$work/key.pem" \
        -o database.conninfo="$conninfo" -o pool.control_socket= \
        -o limits.flood_burst=1000000 -o limits.flood_rate=1000000 \
        -o limits.register_timeout_ms=600000 -o history.replay=0 \
        -o log.level=warn >>"$work/pchatd.log" 2>&1 &
    pchatd_pid=$!
    for _ in $(seq 100); do
        kill -0 "$pchatd_pid" 2>/dev/null || break
        (exec 3<>/dev/tcp/127.0.0.1/$P_PLAIN) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "pchatd did not start" >&2; cat "$work/pchatd.log" >&2; exit 1
}

start_inspircd() {
    "$top/bench/run-inspircd.sh" stop "$work/inspircd" >/dev/null 2>&1 || echo "(no inspircd yet)" >/dev/null
    inspircd_pid=$("$top/bench/run-inspircd.sh" start "$work/inspircd" $P_INSP $P_INSP_TLS)
}

# Starts both servers unless they are running.
ensure_servers() {
    if [ -z "${pchatd_pid:-}" ] || ! kill -0 "$pchatd_pid" 2>/dev/null; then
        start_pchatd
    fi
    if [ -z "${inspircd_pid:-}" ] || ! kill -0 "$inspircd_pid" 2>/dev/null; then
        start_inspircd
    fi
}

# run NAME SERVER PORT PID ARGS...: one pchat-bench run, JSON kept.
run() {
    local name=$1 server=$2 port=$3 pid=$4; shift 4
    local out="$work/$name-$server.json"
    echo "== $name on $server: pchat-bench $*" >&2
    "$bench" --port "$port" --server-pid "$pid" --json --nick-prefix "${name:0:3}" "$@" > "$out" \
        || echo "(pchat-bench exited non-zero)" >&2
    cat "$out" >&2
}

# metric NAME KEY LABEL: adds a table row comparing both servers.
metric() {
    python3 - "$work" "$1" "$2" "$3" >>"$results" <<'PY'
import json, sys, os
work, name, key, label = sys.argv[1:]
def get(server):
    p = os.path.join(work, "%s-%s.json" % (name, server))
    try:
        d = json.load(open(p))
    except Exception:
        return None
    for k in key.split("."):
        d = d[k]
    return d
a, b = get("pchatd"), get("inspircd")
ratio = "%.2f" % (a / b) if a is not None and b not in (None, 0) else "-"
fmt = lambda v: "-" if v is None else ("%.2f" % v if isinstance(v, float) and abs(v) < 100 else "%.0f" % v if isinstance(v, (int, float)) else str(v))
print("\t".join([name, label, fmt(a), fmt(b), ratio]))
PY
}

for s in $only; do
    case $s in
    idle)
        start_pchatd; start_inspircd
        run idle pchatd $P_PLAIN "$pchatd_pid" --clients $IDLE_N --procs $IDLE_PROCS --src-addrs 8 --idle --duration 3 --warmup 1
        run idle inspircd $P_INSP "$inspircd_pid" --clients $IDLE_N --procs $IDLE_PROCS --src-addrs 8 --idle --duration 3 --warmup 1
        metric idle server_bytes_per_conn "plain: server bytes per idle connection"
        metric idle held "plain: connections held"
        ;;
    tls)
        # Each against a freshly started server: its RSS before is a clean
        # baseline. InspIRCd's TLS is GnuTLS (Debian's only TLS module).
        start_pchatd; start_inspircd
        run tls pchatd $P_TLS "$pchatd_pid" --tls --clients $IDLE_N --procs $IDLE_PROCS --src-addrs 8 --idle --duration 3 --warmup 1
        run tls inspircd $P_INSP_TLS "$inspircd_pid" --tls --clients $IDLE_N --procs $IDLE_PROCS --src-addrs 8 --idle --duration 3 --warmup 1
        metric tls server_bytes_per_conn "TLS: server bytes per idle connection"
        metric tls handshakes_per_sec "TLS: handshakes per second"
        metric tls registrations_per_sec "TLS: handshakes + registrations per second"
        metric tls server_cpu_connect_secs "TLS: server CPU seconds connecting"
        metric tls bench_cpu_total_secs "TLS: generator CPU seconds"
        # New TLS connections alone (handshake, no IRC), two generator
        # processes so that the generator is not the limit.
        start_pchatd; start_inspircd
        run tlshs pchatd $P_TLS "$pchatd_pid" --tls --handshake-only --clients $IDLE_N --procs 2 --src-addrs 8 --duration 1 --warmup 0
        run tlshs inspircd $P_INSP_TLS "$inspircd_pid" --tls --handshake-only --clients $IDLE_N --procs 2 --src-addrs 8 --duration 1 --warmup 0
        metric tlshs handshakes_per_sec "TLS: new connections per second (handshake only)"
        ;;
    storm)
        start_pchatd; start_inspircd
        run storm pchatd $P_PLAIN "$pchatd_pid" --clients $STORM_N --procs 2 --src-addrs 8 --idle --duration 1 --warmup 0
        run storm inspircd $P_INSP "$inspircd_pid" --clients $STORM_N --procs 2 --src-addrs 8 --idle --duration 1 --warmup 0
        metric storm registrations_per_sec "reconnect storm: registrations per second"
        ;;
    chat)
        ensure_servers
        run chat pchatd $P_PLAIN "$pchatd_pid" --clients $CHAT_N --rooms $CHAT_ROOMS --senders $CHAT_ROOMS --rate $CHAT_RATE --duration $DUR --warmup 2
        run chat inspircd $P_INSP "$inspircd_pid" --clients $CHAT_N --rooms $CHAT_ROOMS --senders $CHAT_ROOMS --rate $CHAT_RATE --duration $DUR --warmup 2
        metric chat acks_per_sec "chat load: acknowledged posts/s"
        metric chat deliveries_per_sec "chat load: deliveries/s"
        metric chat latency_us.p50 "chat load: latency p50 (us)"
        metric chat latency_us.p99 "chat load: latency p99 (us)"
        metric chat server_cpu_secs "chat load: server CPU seconds"
        ;;
    bigroom)
        ensure_servers
        run bigroom pchatd $P_PLAIN "$pchatd_pid" --clients $BIG_N --room-size one --rooms 1 --senders 20 --rate 0 --window 5 --duration $DUR --warmup 2
        run bigroom inspircd $P_INSP "$inspircd_pid" --clients $BIG_N --room-size one --rooms 1 --senders 20 --rate 0 --window 5 --duration $DUR --warmup 2
        metric bigroom deliveries_per_sec "one big room: deliveries/s"
        metric bigroom latency_us.p99 "one big room: latency p99 (us)"
        ;;
    durable)
        ensure_servers
        run durable pchatd $P_PLAIN "$pchatd_pid" --clients 400 --rooms 200 --senders 200 --rate 0 --window 20 --duration $DUR --warmup 2
        run durable inspircd $P_INSP "$inspircd_pid" --clients 400 --rooms 200 --senders 200 --rate 0 --window 20 --duration $DUR --warmup 2
        metric durable acks_per_sec "durable ceiling: acknowledged posts/s (InspIRCd stores nothing)"
        # pgbench on the same server: one single-row insert per transaction.
        pgdir=$work/pg
        psql -q -h "$pgdir" -p 55432 -U pchat -d pchat -c "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial, room bigint, body text)"
        echo "INSERT INTO bench_rows (room, body) VALUES (1, 'pb 123456789 12 34 xxxxxxxxxxxxxxxxxxxxxxxx');" > "$work/insert.sql"
        pgb=$(/usr/lib/postgresql/15/bin/pgbench -n -h "$pgdir" -p 55432 -U pchat -c 16 -j 2 -T $DUR -f "$work/insert.sql" pchat 2>/dev/null | awk '/^tps/ {print $3}')
        printf 'durable\tpgbench single-row insert tps, 16 clients\t%.0f\t-\t-\n' "$pgb" >>"$results"
        ;;
    esac
done

printf '\n%-10s %-62s %12s %12s %7s\n' scenario metric pchatd inspircd ratio
while IFS=$'\t' read -r name label a b r; do
    printf '%-10s %-62s %12s %12s %7s\n' "$name" "$label" "$a" "$b" "$r"
done < "$results"
echo "(raw JSON in $work)"
