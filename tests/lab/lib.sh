# Shared by the lab scripts (sourced): names, addresses, PID records and
# bounded waits. See docs/lab.md.
#
# Network: a bridge br0 in its own "switch" namespace; every host and the
# client namespace has a veth eth0 into it. Addresses (198.18.0.0/24):
#   chat hosts c1..c8     198.18.0.11..18
#   database hosts db1..2 198.18.0.21..22
#   database primary VIP  198.18.0.30     (PAF pair, up --db 2 --pchat)
#   virtual IPs           198.18.0.51..   (one per promoted instance)
#   client namespace      198.18.0.100
# Nothing is created in, or attached to, the root network namespace, and
# no namespace has a default route.

# Not under /tmp: each host mounts its own /tmp (host-init keeps the lab dir
# visible wherever it is, but /var/tmp needs no such care).
LAB_DIR=${PCHAT_LAB_DIR:-/var/tmp/pchat-lab}
# Namespaces are named PREFIX-sw, PREFIX-client, PREFIX-c1...; runs that
# may overlap (a lab by hand, a test run) need different prefixes.
LAB_PREFIX=${PCHAT_LAB_PREFIX:-pcl}
LAB_NET=198.18.0
LAB_CLUSTER=pchatlab
SW_NS=$LAB_PREFIX-sw
CLIENT_NS=$LAB_PREFIX-client
CLIENT_IP=$LAB_NET.100
VIP_BASE=50
# The database primary's virtual IP (up --db 2 --pchat: PAF pair).
DB_VIP=$LAB_NET.30
# A host's init powers the host off by itself after this long (its loop,
# like every loop of the lab, is bounded).
LAB_MAX_HOURS=${PCHAT_LAB_MAX_HOURS:-24}

LAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_TOP=$(cd "$LAB_HERE/../.." && pwd)

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: [$(date +%T)] $*" >&2; }

case $LAB_DIR in
    /run|/run/*|/dev/*|/proc/*|/sys/*) die "PCHAT_LAB_DIR cannot be under /run, /dev, /proc or /sys" ;;
    /*/?*) ;;
    *) die "PCHAT_LAB_DIR must be an absolute path below a directory (got '$LAB_DIR')" ;;
esac
case $LAB_PREFIX in
    *[!a-z0-9]*|"") die "PCHAT_LAB_PREFIX is lower-case letters and digits" ;;
esac
[ ${#LAB_PREFIX} -le 6 ] || die "PCHAT_LAB_PREFIX is at most 6 characters"

# --- hosts -----------------------------------------------------------------
# $LAB_DIR/hosts.list holds one "NAME ADDRESS ROLE" line per host.

all_hosts() { awk '{print $1}' "$LAB_DIR/hosts.list" 2>/dev/null; }
# Members of the Corosync/Pacemaker cluster: all but the disaster-recovery
# site's host, which stands apart (up --dr).
cluster_hosts() { awk '$3 != "dr" {print $1}' "$LAB_DIR/hosts.list" 2>/dev/null; }
dr_hosts() { awk '$3 == "dr" {print $1}' "$LAB_DIR/hosts.list" 2>/dev/null; }
chat_hosts() { awk '$3 == "chat" {print $1}' "$LAB_DIR/hosts.list" 2>/dev/null; }
db_hosts() { awk '$3 == "db" {print $1}' "$LAB_DIR/hosts.list" 2>/dev/null; }

host_ip() {
    case $1 in
        c[1-8]) echo "$LAB_NET.$((10 + ${1#c}))" ;;
        db[1-2]) echo "$LAB_NET.$((20 + ${1#db}))" ;;
        dr1) echo "$LAB_NET.29" ;;
        *) die "unknown host '$1' (c1..c8, db1..db2, dr1)" ;;
    esac
}
known_host() { grep -q "^$1 " "$LAB_DIR/hosts.list" 2>/dev/null || die "no host '$1' in this lab"; }
host_ns() { echo "$LAB_PREFIX-$1"; }
host_port() { echo "p$1"; }          # the host's veth end on the bridge
host_dir() { echo "$LAB_DIR/hosts/$1"; }

# --- PIDs ------------------------------------------------------------------
# A PID file holds "PID STARTTIME" (host-side PID and its start time from
# /proc/PID/stat), so that a recycled PID is never signalled.

proc_starttime() { # PID -> start time in clock ticks; fails if gone or a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    [ "$1" != Z ] && [ "$1" != X ] || return 1
    echo "${20}"
}

pid_record() { # FILE PID
    local st
    st=$(proc_starttime "$2") || die "process $2 vanished before it was recorded"
    echo "$2 $st" > "$1"
}

pid_alive() { # FILE -> prints the PID if that very process still runs
    local pid st
    read -r pid st 2>/dev/null < "$1" || return 1
    [ -n "$pid" ] && [ "$(proc_starttime "$pid" 2>/dev/null)" = "$st" ] || return 1
    echo "$pid"
}

pid_signal() { # FILE SIGNAL: signals the recorded process if it still runs
    local pid
    pid=$(pid_alive "$1") || return 0
    kill "-$2" "$pid" 2>/dev/null || true
}

init_pid() { pid_alive "$(host_dir "$1")/pid/init"; }

# The host-side PID of a process' only child (nsenter and unshare fork
# once), waiting up to 5 s for it to appear.
child_of() {
    local i c
    for i in $(seq 1 50); do
        c=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || true
        c=${c%% *}
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.1
    done
    return 1
}

# --- inside a host -----------------------------------------------------------

# Runs a command inside a host: its network, mount, UTS, IPC and PID
# namespaces.
in_host() {
    local h=$1 pid
    shift
    pid=$(init_pid "$h") || die "host $h is not running"
    nsenter -t "$pid" -n -m -u -i -p -- "$@"
}

# The first host that is running, or nothing.
live_host() {
    local h
    for h in $(cluster_hosts); do
        init_pid "$h" >/dev/null && { echo "$h"; return 0; }
    done
    return 1
}

# Pacemaker's view as XML, from HOST or from the first host that is running.
crm_xml() {
    local h=${1:-}
    [ -n "$h" ] || h=$(live_host) || return 1
    in_host "$h" crm_mon -1 --output-as=xml 2>/dev/null
}

# How many of the listed nodes Pacemaker shows online (from host $1).
nodes_online() { # HOST NODE...
    local h=$1 xml n c=0
    shift
    xml=$(crm_xml "$h") || { echo 0; return 0; }
    for n in "$@"; do
        echo "$xml" | xmllint --xpath "boolean(//nodes/node[@name='$n'][@online='true'])" - 2>/dev/null \
            | grep -q true && c=$((c + 1))
    done
    echo "$c"
}

# --- waiting ---------------------------------------------------------------

# Waits until a command succeeds, polling every 0.3 s for at most SECS
# seconds; fails with a message naming WHAT.
wait_until() { # SECS WHAT CMD...
    local secs=$1 what=$2 end
    shift 2
    end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
        sleep 0.3
    done
}

# --- network ---------------------------------------------------------------

# The lab records each namespace it creates with the inode of its handle
# in $LAB_DIR/netns.list, and acts on a namespace only while the name
# still leads to that very namespace (never on another lab's).
ns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null; }
ns_add() { # NS
    ip netns add "$1" || die "cannot create namespace $1 (another lab with prefix $LAB_PREFIX?)"
    echo "$1 $(ns_inode "$1")" >> "$LAB_DIR/netns.list"
}
ns_ours() { # NS: true if NS is the namespace this lab created
    local ino
    ino=$(ns_inode "$1") || return 1
    grep -qx "$1 $ino" "$LAB_DIR/netns.list" 2>/dev/null
}
ns_check() { ns_ours "$1" || die "namespace $1 is not this lab's (gone, or replaced by another lab)"; }

# Creates namespace NS with a veth eth0 whose other end PORT is in the
# bridge; the address is set by whoever brings eth0 up (host-start).
attach_ns() { # NS PORT
    ns_add "$1"
    ip -n "$1" link set lo up
    ip -n "$SW_NS" link add "$2" type veth peer name eth0 netns "$1"
    ip -n "$SW_NS" link set "$2" master br0 up
}

set_power_state() { echo "$2" > "$LAB_DIR/fence/power/$1"; }
