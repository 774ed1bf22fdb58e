#!/bin/bash
# Scenario 5: CHATHISTORY on a room with many messages. Fills one room with
# ROWS messages straight in SQL (default 10,000,000), then times
# CHATHISTORY LATEST 100 and BEFORE 100 (random points) through pchatd.
#   ROWS=1000000 bench/scenarios/5-history.sh      (quicker)
#   BUILDDIR=path/to/build  REQUESTS=2000
#   --server inspircd: InspIRCd has no CHATHISTORY (its chanhistory module
#   replays the last lines of a channel, held in memory, on join), so there
#   is nothing to time; the script says so.
set -euo pipefail
server=pchatd
while [ $# -gt 0 ]; do
    case $1 in
    --server) server=$2; shift 2 ;;
    --builddir) BUILDDIR=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    *) echo "usage: $0 [--server pchatd|inspircd] [--builddir D] [--rows N] [--requests N]" >&2; exit 2 ;;
    esac
done
if [ "$server" = inspircd ]; then
    printf '\nScenario 5: history reads (server: inspircd)\n'
    printf '| request | p50 | p99 |\n|---|---:|---:|\n'
    printf '| CHATHISTORY LATEST/BEFORE | n/a: no CHATHISTORY | n/a |\n'
    exit 0
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILDDIR:-$top/build}
rows=${ROWS:-10000000}
requests=${REQUESTS:-2000}
work=$(mktemp -d /var/tmp/pchat-hist.XXXXXX)
chmod 755 "$work"
port=${P_PLAIN:-26668}
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$top/tools/pg-private" stop "$work/pg" >/dev/null 2>&1 || echo "postgres already stopped"
    rm -rf "$work"
}
trap cleanup EXIT
conninfo=$("$top/tools/pg-private" start "$work/pg" 55433 | tail -n 1)
"$build/src/pchatctl/pchatctl" --db "$conninfo" db migrate >/dev/null
t0=$SECONDS
psql -q -h "$work/pg" -p 55433 -U pchat -d pchat <<SQL
INSERT INTO rooms (name, name_folded) VALUES ('#history', '#history');
INSERT INTO messages (room_id, seq, msgid, at, kind, source, account, body, tags)
SELECT 1, g, gen_random_uuid(), timestamptz '2020-01-01' + g * interval '10 ms', 0,
       'user' || (g % 1000) || '!u@h', NULL, 'message number ' || g, ''
  FROM generate_series(1, $rows) g;
UPDATE rooms SET last_seq = $rows, last_at = (SELECT max(at) FROM messages) WHERE id = 1;
VACUUM ANALYZE messages;
SQL
echo "filled $rows messages in $((SECONDS - t0)) s" >&2
"$build/src/pchatd/pchatd" -o listen.plain=127.0.0.1:$port -o listen.tls= \
    -o database.conninfo="$conninfo" -o pool.control_socket= -o log.level=warn \
    -o limits.flood_burst=1000000 -o limits.flood_rate=1000000 -o history.max=100 &
pid=$!
sleep 1
PYTHONPATH="$top/tests/integration" /usr/bin/python3 - "$port" "$requests" "$rows" <<'PY'
import random, sys, time
from ircclient import Client
port, n, rows = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = Client(port)
c.register("historian", ["batch", "server-time", "message-tags", "draft/chathistory"])
c.join("#history")

def timed(cmd):
    t = time.perf_counter()
    c.send(cmd)
    start = c.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    ref = start.params[0][1:]
    got = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    return (time.perf_counter() - t) * 1e6, sum(1 for m in got if m.command == "PRIVMSG")

def report(name, samples):
    s = sorted(x for x, _ in samples)
    pick = lambda p: s[min(len(s) - 1, int(p / 100 * len(s)))]
    print("%-28s n=%d  rows/answer=%d  p50 %.0f us  p99 %.0f us  max %.0f us"
          % (name, len(s), samples[0][1], pick(50), pick(99), s[-1]))

report("LATEST * 100", [timed("CHATHISTORY LATEST #history * 100") for _ in range(n)])
# BEFORE a random point: the point is a timestamp (msgid lookups need the id).
def before():
    g = random.randint(200, rows)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1577836800 + g / 100)) + ".%03dZ" % (g * 10 % 1000)
    return timed("CHATHISTORY BEFORE #history timestamp=%s 100" % ts)
report("BEFORE timestamp=random 100", [before() for _ in range(n)])
PY
