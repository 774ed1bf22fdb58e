#!/bin/bash
# Starts or stops a private InspIRCd for side-by-side figures.
#   bench/run-inspircd.sh start DIR PORT   prints the server's PID
#   bench/run-inspircd.sh stop DIR
# It runs from DIR with its own configuration; the system service is never
# touched. As root it needs --runasroot.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
case $cmd in
start)
    port=$3
    sed -e "s|@PORT@|$port|" -e "s|@DIR@|$dir|g" "$here/inspircd/inspircd.conf.in" > "$dir/inspircd.conf"
    extra=""
    [ "$(id -u)" -eq 0 ] && extra="--runasroot"
    # --nofork keeps it our child; we background it ourselves.
    /usr/sbin/inspircd --config "$dir/inspircd.conf" --nofork $extra >"$dir/stdout.log" 2>&1 &
    echo $! > "$dir/inspircd.pid.ours"
    i=0
    while ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/inspircd.pid.ours")" 2>/dev/null; then
            echo "inspircd did not start; see $dir/stdout.log" >&2
            cat "$dir/stdout.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    cat "$dir/inspircd.pid.ours"
    ;;
stop)
    if [ -f "$dir/inspircd.pid.ours" ]; then
        pid=$(cat "$dir/inspircd.pid.ours")
        kill "$pid" 2>/dev/null || echo "inspircd $pid was not running" >&2
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        rm -f "$dir/inspircd.pid.ours"
    fi
    ;;
esac
