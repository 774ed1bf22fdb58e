#!/bin/bash
# Starts or stops a private InspIRCd (Debian's inspircd 3.x) for benchmarks.
#   bench/run-inspircd.sh start DIR PORT [TLSPORT]   prints the server's PID
#   bench/run-inspircd.sh stop DIR
# It runs from DIR with its own configuration (bench/inspircd/inspircd.conf.in)
# on loopback only; the system service is never touched. It is stopped by
# the PID it was started with. As root it needs --runasroot.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
if [ $# -lt 2 ]; then
    echo "usage: $0 start DIR PORT [TLSPORT] | stop DIR" >&2
    exit 2
fi
dir=$(mkdir -p "$2" && cd "$2" && pwd)
case $cmd in
start)
    port=$3
    tlsport=${4:-}
    if [ -n "$tlsport" ]; then
        if [ ! -f "$dir/cert.pem" ]; then
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -days 2 -subj /CN=localhost -keyout "$dir/key.pem" \
                -out "$dir/cert.pem" 2>/dev/null
        fi
        tls='s|^#TLS ||'
    else
        tls='/^#TLS /d'
    fi
    sed -e "s|@PORT@|$port|" -e "s|@TLSPORT@|$tlsport|" -e "s|@DIR@|$dir|g" \
        -e "$tls" "$here/inspircd/inspircd.conf.in" > "$dir/inspircd.conf"
    extra=""
    [ "$(id -u)" -eq 0 ] && extra="--runasroot"
    # --nofork keeps it our child; we background it ourselves.
    /usr/sbin/inspircd --config "$dir/inspircd.conf" --nofork $extra >"$dir/stdout.log" 2>&1 &
    pid=$!
    echo $pid > "$dir/inspircd.pid.ours"
    i=0
    while ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null \
        || { [ -n "$tlsport" ] && ! (exec 3<>/dev/tcp/127.0.0.1/"$tlsport") 2>/dev/null; }; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "inspircd did not start; see $dir/stdout.log" >&2
            cat "$dir/stdout.log" >&2
            kill "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    echo "$pid"
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
*)
    echo "usage: $0 start DIR PORT [TLSPORT] | stop DIR" >&2
    exit 2
    ;;
esac
