# Shared by the scenario scripts (sourced, not run). A scenario sets its
# defaults, calls scn_init "$@", starts the server with scn_start, runs
# pchat-bench through scn_bench, and ends with scn_table.
#
# Common options of every scenario:
#   --server inspircd|pchatd   the server under test (default inspircd)
#   --builddir DIR             where bench/pchat-bench (and src/pchatd) are
#   --port P --tls-port P      loopback ports for the server (27667/27697)
#   --NAME VALUE               any of the scenario's sizes (see its header),
#                              e.g. --clients 5000 sets CLIENTS=5000
#   WAIT_IDLE=SECS (environment)  wait up to SECS for an idle machine per run
# Everything started is stopped by its PID on exit; traffic is loopback only.

set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVER=inspircd
PORT=27667
TLSPORT=27697
PGPORT=55440
SERVER_PID=""
SERVER_HAS_TLS=0
PG_STARTED=0
CONNINFO=""

scn_die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

# scn_init "$@": common options, then --NAME VALUE for names listed in
# SCN_VARS (upper-case, dashes as underscores).
scn_init() {
    while [ $# -gt 0 ]; do
        case $1 in
        --server) SERVER=$2; shift 2 ;;
        --builddir) BUILDDIR=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --tls-port) TLSPORT=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"
                   exit 0 ;;
        --*)
            local name
            name=$(echo "${1#--}" | tr 'a-z-' 'A-Z_')
            case " $SCN_VARS " in
            *" $name "*) [ $# -ge 2 ] || scn_die "$1 needs a value"
                         printf -v "$name" '%s' "$2"; shift 2 ;;
            *) scn_die "unknown option $1 (sizes: $SCN_VARS)" ;;
            esac
            ;;
        *) scn_die "unknown argument $1" ;;
        esac
    done
    case $SERVER in
    inspircd|pchatd) ;;
    *) scn_die "--server must be inspircd or pchatd" ;;
    esac
    if [ -z "${BUILDDIR:-}" ]; then
        for d in "$top/build" /tmp/build-bench "$top"; do
            if [ -x "$d/bench/pchat-bench" ]; then BUILDDIR=$d; break; fi
        done
    fi
    BENCH=${BUILDDIR:-}/bench/pchat-bench
    [ -x "$BENCH" ] || scn_die "no pchat-bench: build it and pass --builddir"
    for p in $PORT $TLSPORT; do
        if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            scn_die "port $p is in use; pass --port/--tls-port"
        fi
    done
    WORK=$(mktemp -d /tmp/pchat-scn.XXXXXX)
    chmod 755 "$WORK"
    ROWS=$WORK/rows.tsv
    : > "$ROWS"
    trap scn_cleanup EXIT
    echo "# $(basename "$0") --server $SERVER; machine: $(nproc) cores," \
         "$(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r);" \
         "work dir $WORK" >&2
}

# Generator and server share the cores: anything else running skews every
# figure, so say how idle the machine was just before (from /proc/stat,
# over one second). With WAIT_IDLE=SECS in the environment, wait up to that
# long for the machine to be at least 80% idle first.
scn_idle_check() {
    local a b waited=0
    while :; do
        a=$(awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
        sleep 1
        b=$(awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
        SCN_IDLE_PCT=$(echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 100)}')
        waited=$((waited + 1))
        if [ "$SCN_IDLE_PCT" -ge 80 ] || [ "$waited" -ge "${WAIT_IDLE:-0}" ]; then
            break
        fi
    done
    echo "# CPU idle before: $SCN_IDLE_PCT%; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    if [ "$SCN_IDLE_PCT" -lt 80 ]; then
        echo "# WARNING: other processes are using the CPU; figures will be low" >&2
    fi
}

# The work dir holds a PostgreSQL cluster of a GiB or more after a run:
# removed unless KEEP_WORK=1 (logs, rows.tsv for a closer look).
scn_cleanup() {
    scn_stop
    if [ "$PG_STARTED" = 1 ]; then
        "$top/tools/pg-private" stop "$WORK/pg" >/dev/null 2>&1 \
            || echo "(postgres already stopped)" >&2
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "# work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# --- InspIRCd --------------------------------------------------------------

start_inspircd() {
    SERVER_PID=$("$top/bench/run-inspircd.sh" start "$WORK/inspircd" "$PORT" "$TLSPORT")
    SERVER_HAS_TLS=1
}

stop_inspircd() {
    "$top/bench/run-inspircd.sh" stop "$WORK/inspircd" >/dev/null 2>&1 \
        || echo "(inspircd already stopped)" >&2
}

# --- pchatd ----------------------------------------------------------------
# The pchatd side: a private PostgreSQL (tools/pg-private) with the schema
# (pchatctl db migrate), then `src/pchatd/pchatd -c CONF`. The keys below
# are the ones bench/scenarios/compare.sh passes with -o; the pchatd side
# owns them and may change this function.

start_pchatd() {
    local pchatd=$BUILDDIR/src/pchatd/pchatd pchatctl=$BUILDDIR/src/pchatctl/pchatctl
    [ -x "${PCHATD:-$pchatd}" ] || scn_die "no $pchatd: build pchatd first"
    if [ "$PG_STARTED" = 0 ]; then
        CONNINFO=$("$top/tools/pg-private" start "$WORK/pg" "$PGPORT" | tail -n 1)
        PG_STARTED=1
        "$pchatctl" --db "$CONNINFO" db migrate >/dev/null
    fi
    if [ ! -f "$WORK/cert.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -days 2 -subj /CN=localhost -keyout "$WORK/key.pem" \
            -out "$WORK/cert.pem" 2>/dev/null
    fi
    cat > "$WORK/pchatd.conf" <<EOF
[listen]
plain = 127.0.0.1:$PORT
tls = 127.0.0.1:$TLSPORT
[tls]
cert = $WORK/cert.pem
key = $WORK/key.pem
[database]
conninfo = $CONNINFO
[pool]
control_socket =
[limits]
flood_burst = 1000000
flood_rate = 1000000
register_timeout_ms = 600000
[history]
replay = 0
[log]
level = warn
EOF
    # PCHATD_OPTS (environment): more -o key=value settings, e.g.
    # PCHATD_OPTS="-o database.max_batch=2048"; PCHATD (environment): another
    # pchatd binary (a variant under test).
    # shellcheck disable=SC2086
    "${PCHATD:-$pchatd}" -c "$WORK/pchatd.conf" ${PCHATD_OPTS:-} >>"$WORK/pchatd.log" 2>&1 &
    SERVER_PID=$!
    SERVER_HAS_TLS=1
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    cat "$WORK/pchatd.log" >&2
    scn_die "pchatd did not start"
}

stop_pchatd() {
    if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}

# pg_cpu_secs: CPU seconds used so far by the private PostgreSQL: the
# postmaster, its live children, and the children it has reaped (backends
# of clients gone). The difference over a run is the database's share.
pg_cpu_secs() {
    python3 - "$WORK/pg/data/postmaster.pid" <<'PY'
import os, sys
pm = int(open(sys.argv[1]).readline())
hz = os.sysconf("SC_CLK_TCK")
def fields(pid):
    s = open("/proc/%s/stat" % pid).read()
    return s[s.rindex(")") + 2:].split()
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        f = fields(pid)
    except OSError:
        continue
    if int(pid) == pm:
        total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    elif int(f[1]) == pm:
        total += int(f[11]) + int(f[12])
print("%.2f" % (total / hz))
PY
}

# --- either ----------------------------------------------------------------

scn_start() {
    scn_stop
    "start_$SERVER"
}

scn_stop() {
    if [ -n "$SERVER_PID" ]; then
        "stop_$SERVER"
        SERVER_PID=""
    fi
}

# scn_bench LABEL ARGS...: one pchat-bench run against the server (port,
# --server-pid and --json added); its JSON is kept as a table row.
SCN_RUN=0
scn_bench() {
    local label=$1; shift
    local port=$PORT
    SCN_RUN=$((SCN_RUN + 1))
    case " $* " in *" --tls "*) port=$TLSPORT ;; esac
    local out=$WORK/run$SCN_RUN.json
    scn_idle_check
    echo "== $label: pchat-bench --port $port --server-pid $SERVER_PID $*" >&2
    if ! "$BENCH" --port "$port" --server-pid "$SERVER_PID" --json \
            --nick-prefix "r$SCN_RUN" "$@" > "$out"; then
        echo "(pchat-bench exited non-zero)" >&2
    fi
    printf '%s\t%s\t%s\n' "$label" "$out" "$SCN_IDLE_PCT" >> "$ROWS"
}

# scn_table TITLE HEADER=key.path ...: one row per run, one column per key.
scn_table() {
    python3 - "$ROWS" "$SERVER" "$@" <<'PY'
import json, sys
rows, server, title, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d
def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f" % v if abs(v) < 10 else "{:,.0f}".format(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return "{:,}".format(v)
    return str(v)
heads = ["run"] + [c.split("=", 1)[0] for c in cols] + ["idle before %"]
table = []
for line in open(rows):
    label, path, idle = line.rstrip("\n").split("\t")
    try:
        d = json.load(open(path))
    except Exception:
        d = {}
    table.append([label] + [fmt(get(d, c.split("=", 1)[1])) for c in cols] + [idle])
widths = [max(len(r[i]) for r in table + [heads]) for i in range(len(heads))]
print("\n%s (server: %s)" % (title, server))
print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths)) + " |")
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in table:
    print("| " + r[0].ljust(widths[0]) + " | "
          + " | ".join(v.rjust(w) for v, w in zip(r[1:], widths[1:])) + " |")
PY
}
