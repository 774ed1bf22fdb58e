#!/bin/bash
# Builds the pchat .deb, installs it, checks what it installed, purges it.
# TAP on standard output ("1..N", "ok N - ...", "not ok N - ..."), the
# details as "#" comments. Exit status 0 when every test passed.
#
#   packaging/test-deb.sh [--worktree] [--nocheck] [--deb FILE]
#
#   --worktree  build from the working tree instead of git HEAD
#   --nocheck   build without `make check` (DEB_BUILD_OPTIONS=nocheck)
#   --deb FILE  test this .deb instead of building one
#
# Needs root, and changes the machine's packages (it installs and purges
# pchat, and the build dependencies): run it in a container or a throw-away
# VM. It refuses to run when a pchat package is already installed.
set -uo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
build_args=()
deb=""
while [ $# -gt 0 ]; do
    case "$1" in
    --worktree) build_args+=(--worktree) ;;
    --nocheck) export DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
               export DEB_BUILD_PROFILES="nocheck${DEB_BUILD_PROFILES:+ $DEB_BUILD_PROFILES}" ;;
    --deb) deb=$(readlink -f "$2"); shift ;;
    -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "test-deb: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

PLAN=22
n=0
failed=0
echo "1..$PLAN"

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
    local d=$1; shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}
diag() { sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || bail "run as root (it installs and purges the package)"
if dpkg-query -W -f='${Status}' pchat 2>/dev/null | grep -q 'installed'; then
    bail "a pchat package is already installed; purge it first (dpkg --purge pchat)"
fi

work=$(mktemp -d /tmp/pchat-test-deb.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
export DEBIAN_FRONTEND=noninteractive

# 1: build.
if [ -n "$deb" ]; then
    if [ -f "$deb" ]; then ok "use $deb"; else not_ok "use $deb (no such file)"; fi
else
    if "$srcdir/packaging/build-deb" "${build_args[@]}" "$work/out" > "$work/build.out" 2>&1; then
        ok "build the .deb (packaging/build-deb ${build_args[*]})"
    else
        not_ok "build the .deb (packaging/build-deb ${build_args[*]})"
        tail -n 30 "$work/build.out" | diag
    fi
    deb=$(find "$work/out" -name 'pchat_*_*.deb' 2>/dev/null | head -n 1)
fi
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    while [ "$n" -lt "$PLAN" ]; do skip "not run" "no package"; done
    exit 1
fi
hadeb=$(find "$(dirname "$deb")" -maxdepth 1 -name 'pchat-ha_*_all.deb' 2>/dev/null | head -n 1)
version=$(dpkg-deb -f "$deb" Version)
upstream=${version%-*}

# 2: lintian (errors fail, warnings are shown).
if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$deb" ${hadeb:+"$hadeb"} > "$work/lintian.out" 2>&1
    diag < "$work/lintian.out"
    if grep -q '^E: ' "$work/lintian.out"; then
        not_ok "lintian: no errors"
    else
        ok "lintian: no errors ($(grep -c '^W: ' "$work/lintian.out") warnings)"
    fi
else
    skip "lintian: no errors" "lintian not installed"
fi

# 3: install. Container images often tell dpkg to drop manual pages and
# documentation (path-exclude); include ours so the package is what is tested.
cp "$deb" "$work/"
if (cd "$work" && apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--path-include=/usr/share/man/* \
        -o Dpkg::Options::=--path-include=/usr/share/doc/pchat/* \
        "./$(basename "$deb")") > "$work/install.out" 2>&1; then
    ok "apt-get install ./$(basename "$deb")"
else
    not_ok "apt-get install ./$(basename "$deb")"
    tail -n 20 "$work/install.out" | diag
fi

# 4: the version.
out=$(/usr/sbin/pchatd --version 2>&1)
echo "$out" | diag
check "pchatd --version prints $upstream" test "$out" = "pchatd $upstream"

# 5: the packaged configuration validates, or names the key to set.
out=$(/usr/sbin/pchatd --check-config -c /etc/pchat/pchatd.conf 2>&1 >/dev/null)
rc=$?
echo "$out" | diag
if [ "$rc" -eq 0 ]; then
    ok "pchatd --check-config -c /etc/pchat/pchatd.conf: valid"
elif echo "$out" | grep -Eq '[a-z_]+\.[a-z_]+'; then
    ok "pchatd --check-config -c /etc/pchat/pchatd.conf: refused, naming the key (exit $rc)"
else
    not_ok "pchatd --check-config -c /etc/pchat/pchatd.conf (exit $rc, no key named)"
fi

# 6: pchatctl runs.
check "pchatctl --help" sh -c '/usr/bin/pchatctl --help 2>&1 | grep -q "db migrate"'

# 7: the configuration is a conffile, root:pchat 0640.
conffiles=$(dpkg-query -W -f='${Conffiles}' pchat)
echo "$conffiles" | diag
perm=$(stat -c '%U:%G %a' /etc/pchat/pchatd.conf 2>/dev/null)
check "/etc/pchat/pchatd.conf is a conffile, root:pchat 640 ($perm)" \
    sh -c "echo '$conffiles' | grep -q ' /etc/pchat/pchatd.conf ' && [ '$perm' = 'root:pchat 640' ]"

# 8: manual pages.
pages=$(man -w pchatd 2>&1; man -w 5 pchatd.conf 2>&1; man -w pchatctl 2>&1)
echo "$pages" | diag
check "man -w finds pchatd(8), pchatd.conf(5), pchatctl(8)" \
    sh -c '{ man -w pchatd && man -w 5 pchatd.conf && man -w pchatctl; } >/dev/null 2>&1'

# 9: the system user.
pw=$(getent passwd pchat)
echo "$pw" | diag
uid=$(echo "$pw" | cut -d: -f3)
check "system user pchat (uid < 1000, group pchat, nologin)" \
    sh -c "[ -n '$pw' ] && [ '$uid' -lt 1000 ] && id -gn pchat | grep -qx pchat && echo '$pw' | grep -q ':/usr/sbin/nologin$'"

# 10: the state directory.
perm=$(stat -c '%U:%G %a' /var/lib/pchat 2>/dev/null)
check "/var/lib/pchat is pchat:pchat 750 ($perm)" test "$perm" = "pchat:pchat 750"

# 11: the unit is valid.
unit=/lib/systemd/system/pchatd.service
if [ ! -f "$unit" ]; then
    not_ok "pchatd.service installed"
elif command -v systemd-analyze >/dev/null; then
    if systemd-analyze verify "$unit" > "$work/verify.out" 2>&1; then
        ok "systemd-analyze verify pchatd.service"
    else
        # Without systemd as PID 1 some checks cannot run; only unit
        # errors count.
        diag < "$work/verify.out"
        if grep -v -e 'Failed to connect' -e 'not running' -e 'No such file or directory' \
                "$work/verify.out" | grep -q 'pchatd.service'; then
            not_ok "systemd-analyze verify pchatd.service"
        else
            ok "systemd-analyze verify pchatd.service (environment warnings only)"
        fi
    fi
else
    skip "systemd-analyze verify pchatd.service" "systemd-analyze not installed"
fi

# 12: installed disabled.
check "pchatd.service is not enabled on install" \
    test ! -e /etc/systemd/system/multi-user.target.wants/pchatd.service

# 13: the tmpfiles snippet.
if command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --create pchat.conf >/dev/null 2>&1
    perm=$(stat -c '%U:%G %a' /run/pchat 2>/dev/null)
    check "tmpfiles.d/pchat.conf creates /run/pchat pchat:pchat 750 ($perm)" \
        test "$perm" = "pchat:pchat 750"
else
    mkdir -p /run/pchat && chown pchat:pchat /run/pchat && chmod 0750 /run/pchat
    skip "tmpfiles.d/pchat.conf creates /run/pchat" "systemd-tmpfiles not installed"
fi

# 14, 15: pchatd runs as pchat with the packaged paths (no database, no
# TLS: an unreachable database is not fatal at start), answers on its
# control socket, and drains on SIGTERM.
port=$((20000 + RANDOM % 20000))
setpriv --reuid=pchat --regid=pchat --init-groups -- /usr/sbin/pchatd -c /etc/pchat/pchatd.conf \
    -o listen.tls= -o "listen.plain=127.0.0.1:$port" \
    -o "database.conninfo=host=$work/nodb dbname=pchat" \
    -o database.connect_timeout_ms=500 > "$work/pchatd.out" 2>&1 &
pid=$!
status=""
for _ in $(seq 50); do
    status=$(/usr/bin/pchatctl -c /etc/pchat/pchatd.conf status 2>/dev/null) && break
    sleep 0.1
done
echo "$status" | diag
user=$(ps -o user= -p "$pid" 2>/dev/null)
check "pchatd runs as pchat ($user); pchatctl status answers on /run/pchat/pchatd.sock" \
    sh -c "echo '$status' | grep -q '^pid=$pid$' && [ '$user' = pchat ]"
kill -TERM "$pid" 2>/dev/null
rc=124
for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; rc=$?; break; fi
    sleep 0.1
done
[ "$rc" -eq 124 ] && kill -KILL "$pid" 2>/dev/null
tail -n 8 "$work/pchatd.out" | diag
check "pchatd exits 0 on SIGTERM within 20 s (exit $rc)" test "$rc" -eq 0

# 16-18: pchat-setup makes a working single server from the package: its
# own PostgreSQL cluster, the schema, a self-signed certificate, the first
# administrator; then a real client logs in over TLS with SASL, posts, and
# the post is in the database. Run twice: the second run keeps everything.
if command -v pg_createcluster >/dev/null; then
    sport=$((20000 + RANDOM % 20000))
    pgport=$((45000 + RANDOM % 5000))
    if echo 'setup-Secret-1' | /usr/sbin/pchat-setup --admin boss --password-stdin --no-start \
            --server-name pchat.test --listen "127.0.0.1:$sport" --pg-port "$pgport" \
            > "$work/setup.out" 2>&1; then
        ok "pchat-setup --admin boss (cluster, schema, certificate, account)"
    else
        not_ok "pchat-setup --admin boss"
    fi
    diag < "$work/setup.out"
    setpriv --reuid=pchat --regid=pchat --init-groups -- /usr/sbin/pchatd -c /etc/pchat/pchatd.conf \
        -o listen.plain= > "$work/pchatd-setup.out" 2>&1 &
    spid=$!
    e2e=$(python3 - "$sport" <<'PY' 2>&1
import base64, socket, ssl, sys, time
port = int(sys.argv[1])
deadline = time.time() + 20
while True:
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("pchatd did not listen on %d" % port)
        time.sleep(0.2)
ctx = ssl.create_default_context(cafile="/etc/pchat/tls/cert.pem")
ctx.check_hostname = True
s = ctx.wrap_socket(raw, server_hostname="pchat.test")
f = s.makefile("rwb")
def send(l): f.write(l.encode() + b"\r\n"); f.flush()
def until(pred):
    while True:
        l = f.readline().decode().rstrip("\r\n")
        print("<", l, file=sys.stderr)
        if not l:
            sys.exit("connection closed")
        if l.startswith("PING"):
            send("PONG" + l[4:])
        if pred(l):
            return l
send("CAP REQ :sasl echo-message")
until(lambda l: " ACK " in l)
send("NICK boss"); send("USER boss 0 * :Boss")
send("AUTHENTICATE PLAIN"); until(lambda l: l.endswith("AUTHENTICATE +"))
send("AUTHENTICATE " + base64.b64encode(b"boss\0boss\0setup-Secret-1").decode())
until(lambda l: " 903 " in l or " 904 " in l).split()[1] == "903" or sys.exit("SASL failed")
send("CAP END"); until(lambda l: " 001 " in l)
send("JOIN #setup"); until(lambda l: " 366 " in l)
send("PRIVMSG #setup :stored from the package test")
print(until(lambda l: "PRIVMSG #setup" in l))
PY
)
    echo "$e2e" | diag
    stored=$(runuser -u postgres -- psql -X -tA -h /var/run/postgresql -p "$pgport" -d pchat \
        -c "SELECT count(*) FROM messages WHERE body = 'stored from the package test'" 2>&1)
    check "TLS + SASL PLAIN as boss, JOIN, PRIVMSG echoed and stored ($stored row)" \
        sh -c "echo '$e2e' | grep -q 'stored from the package test' && [ '$stored' = 1 ]"
    kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    tail -n 5 "$work/pchatd-setup.out" | diag
    if echo 'other' | /usr/sbin/pchat-setup --admin boss --password-stdin --no-start \
            --server-name pchat.test --listen "127.0.0.1:$sport" > "$work/setup2.out" 2>&1 \
        && grep -q 'exists' "$work/setup2.out" && grep -q 'keeping the TLS' "$work/setup2.out"; then
        ok "pchat-setup again keeps the cluster, certificate and account"
    else
        not_ok "pchat-setup again keeps the cluster, certificate and account"
        diag < "$work/setup2.out"
    fi
    pgver=$(pg_lsclusters -h | awk '$2 == "pchat" {print $1}' | head -1)
    [ -n "$pgver" ] && pg_dropcluster --stop "$pgver" pchat
else
    skip "pchat-setup" "PostgreSQL (postgresql-common) not installed"
    skip "TLS + SASL end to end" "no pchat-setup run"
    skip "pchat-setup again" "no pchat-setup run"
fi

# 19, 20: the Pacemaker package: installs beside pchat, and its agent
# answers meta-data with valid XML naming itself (what `pcs resource
# create ... ocf:pchat:pchatd` reads first).
if [ -n "$hadeb" ] && cp "$hadeb" "$work/" && (cd "$work" && apt-get install -y -q \
        --no-install-recommends "./$(basename "$hadeb")") > "$work/install-ha.out" 2>&1; then
    ok "apt-get install ./$(basename "$hadeb")"
else
    not_ok "apt-get install pchat-ha (${hadeb:-no pchat-ha .deb})"
    tail -n 20 "$work/install-ha.out" 2>/dev/null | diag
fi
agent=/usr/lib/ocf/resource.d/pchat/pchatd
check "$agent meta-data is XML naming resource-agent pchatd" sh -c \
    "OCF_ROOT=/usr/lib/ocf '$agent' meta-data 2>/dev/null | python3 -c 'import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.read()); sys.exit(d.documentElement.getAttribute(\"name\") != \"pchatd\")' && [ -x /usr/share/pchat/ha/pchat-resources ] && [ -x /usr/share/pchat/ha/pchat-database ] && [ -x /usr/share/pchat/ha/corosync/make-conf ]"

# 21: purge.
if apt-get purge -y -q pchat pchat-ha > "$work/purge.out" 2>&1; then
    ok "apt-get purge pchat pchat-ha"
else
    not_ok "apt-get purge pchat pchat-ha"
    tail -n 20 "$work/purge.out" | diag
fi

# 22: nothing left but the user.
left=$(ls -d /usr/sbin/pchatd /usr/bin/pchatctl /etc/pchat /var/lib/pchat \
    /lib/systemd/system/pchatd.service /usr/lib/ocf/resource.d/pchat /usr/share/pchat 2>/dev/null)
echo "$left" | diag
check "purge removed the programs, /etc/pchat, /var/lib/pchat and the unit" test -z "$left"

[ "$n" -eq "$PLAN" ] || echo "# planned $PLAN tests, ran $n"
[ "$failed" -eq 0 ]
