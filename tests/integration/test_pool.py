"""Two pchatd nodes in one pool over a real Corosync (a single-node ring on
loopback; the pool members are the two processes): cross-node chat in one
order, nick uniqueness, remote users, and a killed node's users leaving."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PCHATCTL, free_port
from ircclient import ALL_CAPS

COROSYNC_CONF = """totem {
    version: 2
    cluster_name: pchat-it
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: node1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: yes
    to_syslog: no
    timestamp: hires
}
"""


@pytest.fixture(scope="module")
def corosync(workdir):
    if shutil.which("corosync") is None:
        pytest.fail("corosync is not installed (tools/install-deps installs it)")
    if os.geteuid() != 0:
        pytest.skip("Corosync needs root")
    d = os.path.join(workdir, "corosync")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "corosync.conf")
    with open(conf, "w") as f:
        f.write(COROSYNC_CONF)
    log = open(os.path.join(d, "corosync.log"), "ab")
    proc = subprocess.Popen(["corosync", "-f", "-c", conf], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(["corosync-quorumtool", "-s"], capture_output=True, text=True)
        if "Quorate:          Yes" in out.stdout:
            break
        assert proc.poll() is None, "corosync exited at start"
        assert time.monotonic() < deadline, "corosync did not become quorate"
        time.sleep(0.2)
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture
def pool(server_factory, corosync):
    # A pool requires SASL by default (auth.required = auto); these tests
    # are about the pool, with clients that do not log in.
    a = server_factory(pool__backend="cpg", auth__required="no")
    # The second node shares the first one's database.
    b = server_factory(pool__backend="cpg", auth__required="no",
                       database__conninfo=a.conninfo)
    time.sleep(0.5)
    return a, b


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_pool_status(pool):
    a, _ = pool
    st = subprocess.run([PCHATCTL, "--socket", a.socket, "status"],
                        capture_output=True, text=True, timeout=10)
    status = dict(l.split("=", 1) for l in st.stdout.split())
    assert status["bus"] == "cpg" and status["quorate"] == "yes"
    assert status["serving"] == "yes"


def test_cross_node_chat_in_one_order(pool):
    a, b = pool
    alice = a.client("alice", ALL_CAPS)
    bob = b.client("bob", ALL_CAPS)
    alice.join("#pool")
    bob.join("#pool")
    alice.expect(lambda m: m.command == "JOIN" and m.nick == "bob", timeout=5)
    # NAMES on either node lists both.
    bob.send("NAMES #pool")
    names = bob.expect("353").params[-1].split()
    assert {n.lstrip("@+") for n in names} == {"alice", "bob"}

    for i in range(50):
        alice.send("PRIVMSG #pool :a%d" % i)
        bob.send("PRIVMSG #pool :b%d" % i)
    seen = {}
    for who, c in (("alice", alice), ("bob", bob)):
        got = []
        while len(got) < 100:
            m = c.expect("PRIVMSG", timeout=10)
            got.append((m.tags["msgid"], m.params[1]))
        seen[who] = got
    assert seen["alice"] == seen["bob"], "the two nodes delivered in different orders"
    assert len({mid for mid, _ in seen["alice"]}) == 100
    # Live order is history order.
    alice.send("CHATHISTORY LATEST #pool * 100")
    start = alice.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    ref = start.params[0][1:]
    hist = [m for m in alice.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
            if m.command == "PRIVMSG"]
    assert [(m.tags["msgid"], m.params[1]) for m in hist] == seen["alice"]


def whois_on(node, nick, until, what):
    """WHOIS nick from a client of node until until(replies) holds: what
    another member publishes reaches this node through the pool, a moment
    later (longer on a loaded machine)."""
    c = node.client("w%d" % (time.monotonic_ns() % 100000))

    def seen():
        c.send("WHOIS " + nick)
        return until(c.collect_until(lambda m: m.command in ("318", "401")))

    wait_for(seen, what=what + " on the other node")
    c.close()


def test_nicknames_are_unique_across_nodes(pool):
    a, b = pool
    carol = a.client("carol")  # keep the connection open
    whois_on(b, "carol", lambda r: any(m.command == "311" for m in r), "carol")
    c2 = b.client(None, register=False)
    c2.send("NICK carol")
    c2.send("USER c 0 * :c")
    assert c2.expect("433").params[1] == "carol"
    c2.send("NICK CAROL")
    assert c2.expect("433")
    c2.send("NICK carol2")
    c2.expect("001")
    c2.send("WHOIS carol")
    assert c2.expect("311").params[1] == "carol"
    carol.ping_roundtrip()


def test_away_is_seen_from_the_other_node(pool):
    a, b = pool
    away = a.client("sleepy")
    asker = b.client("asker")
    away.send("AWAY :gone fishing")
    away.expect("306")
    whois_on(b, "sleepy", lambda r: any(m.command == "301" for m in r), "sleepy's AWAY")
    asker.send("PRIVMSG sleepy :hello?")
    assert asker.expect("301").params[1:] == ["sleepy", "gone fishing"]
    # The private message itself crosses to the other node.
    got = away.expect("PRIVMSG")
    assert got.nick == "asker" and got.params == ["sleepy", "hello?"]


def test_topic_and_modes_reach_the_other_node(pool):
    a, b = pool
    op = a.client("op")
    other = b.client("other")
    op.join("#set")
    other.join("#set")
    op.send("TOPIC #set :pool topic")
    assert other.expect("TOPIC").params == ["#set", "pool topic"]
    op.send("MODE #set +m")
    assert other.expect("MODE").params[1] == "+m"
    other.send("PRIVMSG #set :may I?")
    assert other.expect("404")


def test_killed_node_users_quit_at_once(pool):
    a, b = pool
    doomed = a.client("doomed")
    stays = b.client("stays")
    # Node b hears of doomed's JOIN through the pool: wait for it (NAMES
    # right after the JOIN on a raced it on a loaded machine).
    stays.join("#k")
    doomed.join("#k")
    stays.expect(lambda m: m.command == "JOIN" and m.nick == "doomed", timeout=10)
    t0 = time.monotonic()
    a.proc.kill()
    a.proc.wait()
    a.proc = None
    a.logf.close()
    q = stays.expect("QUIT", timeout=10)
    assert q.nick == "doomed"
    elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    # The nick is free again on the surviving node.
    b.client("doomed").ping_roundtrip()


def test_a_pool_requires_login_by_default(server_factory, corosync):
    """auth.required = auto (the default) means yes with pool.backend = cpg:
    a connection that does not log in cannot register."""
    from accounts import create_account, login_and_register
    node = server_factory(pool__backend="cpg")
    c = node.client(register=False)
    c.send("NICK walker")
    c.send("USER walker 0 * :x")
    m = c.expect(lambda m: m.command in ("FAIL", "001"))
    assert m.command == "FAIL" and m.params[:2] == ["*", "ACCOUNT_REQUIRED"]
    # Logged in, the same user is welcome.
    create_account(node, "walker", "pw")
    c = node.client(register=False)
    login_and_register(c, "walker", "pw")
    c.ping_roundtrip()


def test_same_new_room_joined_on_two_nodes_at_once(pool):
    """Both nodes create the room by JOIN at the same moment: one insert
    wins, the other finds its row, and both users are in."""
    a, b = pool
    ua = a.client("racer1")
    ub = b.client("racer2")
    rooms = ["#race%d" % i for i in range(30)]
    for r in rooms:
        ua.send("JOIN " + r)
        ub.send("JOIN " + r)
    for c in (ua, ub):
        joined = set()
        while len(joined) < len(rooms):
            m = c.expect(lambda m: m.command in ("366", "403", "FAIL"), timeout=10)
            assert m.command == "366", "a JOIN was refused: %r" % m
            joined.add(m.params[1])
    assert int(a.query("SELECT count(*) FROM rooms WHERE name LIKE '#race%'")) == 30


class FreezingProxy:
    """TCP on loopback to PostgreSQL's Unix socket. freeze(): what the
    server sends is kept back (the client's queries still go through);
    cut(): every connection is closed and what was kept back is lost, as
    when a network or a server dies between a COMMIT and its answer."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.port = free_port()
        self.lock = threading.Lock()
        self.frozen = False
        self.socks = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX)
            try:
                u.connect(self.unix_path)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, True), daemon=True).start()

    def _pump(self, src, dst, from_server):
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    if from_server and self.frozen:
                        continue  # kept back, then lost at cut()
                dst.sendall(data)
            except OSError:
                break
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        with self.lock:
            self.frozen = True

    def cut(self):
        with self.lock:
            socks, self.socks = self.socks, []
            self.frozen = False
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.ls.close()
        self.cut()


@pytest.fixture
def pg_proxy(postgres):
    """Set up before the servers, so that it outlives them: a node cut off
    from its database cannot drain its posts and stop."""
    proxy = FreezingProxy(os.path.join(postgres.dir, ".s.PGSQL.%d" % postgres.port))
    yield proxy
    proxy.close()


def test_post_confirmed_after_the_room_has_it(pg_proxy, server_factory, corosync):
    """A post committed on node a whose answer was lost is retried; meanwhile
    node b's later post makes a read the missing message back from the
    database (a gap fill) and deliver it. When the retry finally confirms
    it (with its first seq), its author must still get its labeled echo:
    the room has the message already, but the author was never answered.

    The retry is held back by the mirror watcher (a synchronous standby
    that is missing), which lets reads past: the gap fill comes first."""
    mirror = {"database__mirror_policy": "durability", "database__mirror_check_ms": 100,
              "database__backoff_min_ms": 50, "database__backoff_max_ms": 200}
    b = server_factory(pool__backend="cpg", auth__required="no", **mirror)
    proxy = pg_proxy
    via_proxy = "host=127.0.0.1 port=%d dbname=%s user=pchat" % (proxy.port, b.dbname)
    a = server_factory(pool__backend="cpg", auth__required="no",
                       database__conninfo=via_proxy, **mirror)

    def sync_names(how):
        # ALTER SYSTEM may not run in a transaction: two psql calls.
        b.pg.psql("ALTER SYSTEM " + how)
        b.pg.psql("SELECT pg_reload_conf()")
    try:
        alice = a.client("alice", ALL_CAPS)
        bob = b.client("bob", ALL_CAPS)
        alice.join("#confirm")
        bob.join("#confirm")
        alice.expect(lambda m: m.command == "JOIN" and m.nick == "bob", timeout=5)
        alice.send("@label=w PRIVMSG #confirm :warm")
        assert alice.expect(lambda m: m.tags.get("label") == "w").command == "PRIVMSG"
        bob.expect(lambda m: m.command == "PRIVMSG" and m.params[1] == "warm")

        # Committed, answer kept back.
        proxy.freeze()
        alice.send("@label=mine PRIVMSG #confirm :mine")
        wait_for(lambda: b.query("SELECT count(*) FROM messages WHERE body = 'mine'") == "1",
                 what="the post committed")
        # Node b's next post: its seq follows; node a holds it for the gap.
        bob.send("@label=t PRIVMSG #confirm :theirs")
        assert bob.expect(lambda m: m.tags.get("label") == "t").command == "PRIVMSG"
        # The standby goes missing: writes are held once a looks again.
        sync_names("SET synchronous_standby_names = 'ghost'")
        time.sleep(0.5)  # a's gap fill is sent, on the frozen connection
        proxy.cut()
        # a reconnects, holds the retry (no mirror) and fills the gap.
        got = [alice.expect("PRIVMSG", timeout=10) for _ in range(2)]
        assert [(m.params[1], m.tags.get("label")) for m in got] == [
            ("mine", None), ("theirs", None)], got
        assert b.query("SELECT count(*) FROM messages WHERE body = 'mine'") == "1"
        # The standby is back: the retry runs and confirms the first seq.
        sync_names("RESET synchronous_standby_names")
        echo = alice.expect(lambda m: m.tags.get("label") == "mine", timeout=10)
        assert echo.command == "PRIVMSG" and echo.tags["msgid"] == got[0].tags["msgid"]
        assert b.query("SELECT count(*) FROM messages WHERE body = 'mine'") == "1"
        # Everyone else heard it once.
        seen = [m.params[1] for m in bob.drain(0.5) + bob.seen if m.command == "PRIVMSG"]
        assert seen.count("mine") == 1, seen
    finally:
        sync_names("RESET synchronous_standby_names")
