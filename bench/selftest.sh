#!/bin/bash
# Quick self-check of pchat-bench: starts a private InspIRCd on loopback,
# runs pchat-bench for 3 seconds (200 clients, 20 rooms, as fast as echoes
# allow, with every capability it can ask for), and fails if the JSON is
# malformed or no post was acknowledged. Skips (exit 77) without InspIRCd.
#   bench/selftest.sh [BUILDDIR]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILDDIR:-}}
if [ -z "$build" ]; then
    for d in "$top/build" /tmp/build-bench "$top"; do
        if [ -x "$d/bench/pchat-bench" ]; then build=$d; break; fi
    done
fi
bench=${build:-.}/bench/pchat-bench
if [ ! -x "$bench" ]; then
    echo "not ok 1 - no pchat-bench (pass the build directory)"; exit 1
fi
if [ ! -x /usr/sbin/inspircd ]; then
    echo "1..0 # SKIP no /usr/sbin/inspircd"; exit 77
fi
work=$(mktemp -d /tmp/pchat-selftest.XXXXXX)
port=${PORT:-$((28000 + RANDOM % 1000))}
cleanup() {
    "$top/bench/run-inspircd.sh" stop "$work/inspircd" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
echo "1..3"
if ! pid=$("$top/bench/run-inspircd.sh" start "$work/inspircd" "$port"); then
    echo "not ok 1 - InspIRCd started"; exit 1
fi
echo "ok 1 - InspIRCd started (pid $pid, port $port)"
rc=0
"$bench" --port "$port" --clients 200 --rooms 20 --window 2 --duration 3 \
    --warmup 1 --cap --server-pid "$pid" --json --nick-prefix st > "$work/out.json" \
    || echo "# pchat-bench exited non-zero"
if python3 -m json.tool "$work/out.json" > /dev/null; then
    echo "ok 2 - JSON is well formed"
else
    echo "not ok 2 - JSON is well formed"; cat "$work/out.json"; rc=1
fi
acks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["acks_per_sec"])' "$work/out.json" 2>/dev/null || echo 0)
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$acks"; then
    echo "ok 3 - acks/s $acks"
else
    echo "not ok 3 - acks/s is $acks"; cat "$work/out.json"; rc=1
fi
exit $rc
