# Shared by the lab scripts: names, addresses and helpers.
# Hosts: chat hosts c1..cN (198.18.0.11..), one database host db1
# (198.18.0.21), a client namespace (198.18.0.100), and a switch namespace
# holding the bridge. Nothing is created in, or attached to, the root
# network namespace.

# Not under /tmp: hosts mount their own /tmp.
LAB_DIR=${PCHAT_LAB_DIR:-/var/tmp/pchat-lab}
LAB_PREFIX=${PCHAT_LAB_PREFIX:-pcl}
LAB_NET=198.18.0
SW_NS=$LAB_PREFIX-sw
CLIENT_NS=$LAB_PREFIX-client
CLIENT_IP=$LAB_NET.100
DB_IP=$LAB_NET.21
# One virtual IP per promoted pchatd: 198.18.0.51, .52, ...
VIP_BASE=50

LAB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

host_ip() {
    case $1 in
        c*) echo "$LAB_NET.$((10 + ${1#c}))" ;;
        db1) echo "$DB_IP" ;;
        *) die "unknown host $1" ;;
    esac
}

host_ns() { echo "$LAB_PREFIX-$1"; }
host_dir() { echo "$LAB_DIR/hosts/$1"; }
init_pid() { cat "$(host_dir "$1")/init.pid" 2>/dev/null; }

# Runs a command inside a host (its network, mount, UTS, IPC and PID
# namespaces).
in_host() {
    local h=$1; shift
    local pid
    pid=$(init_pid "$h") || die "host $h is not up"
    nsenter -t "$pid" -n -m -u -i -p -- "$@"
}

chat_hosts() { cat "$LAB_DIR/chat-hosts" 2>/dev/null; }

# Waits (bounded) until a command succeeds.
wait_until() {
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what"
        sleep 0.5
    done
}
