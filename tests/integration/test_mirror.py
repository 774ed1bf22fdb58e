"""The mirrored database (docs/database.md): two real PostgreSQL servers on
loopback, streaming replication with a synchronous standby, pchatd on a
multi-host conninfo with target_session_attrs=read-write.

- the primary's postmaster is SIGKILLed while clients post, the standby is
  promoted as PAF would (pg_ctl promote), posting resumes, and every
  acknowledged message is stored exactly once and in order, every refused
  one not at all; the old primary rejoins with pg_rewind and the roles are
  switched back;
- the mirror-loss policies: durability holds and refuses, availability
  drops to asynchronous commit and back, nothing lost either way.

Figures: run with -s; each failover prints a line "MEASURED ...".
"""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import PCHATCTL, PG_PRIVATE, free_port
from ircclient import ALL_CAPS


class Node:
    """One tools/pg-private server on 127.0.0.1."""

    def __init__(self, root, name):
        self.name = name
        self.dir = os.path.join(root, name)
        self.port = free_port()

    def run(self, *args, timeout=180):
        env = dict(os.environ, PG_LISTEN="127.0.0.1")
        out = subprocess.run([PG_PRIVATE, args[0], self.dir] + [str(a) for a in args[1:]],
                             capture_output=True, text=True, timeout=timeout, env=env)
        assert out.returncode == 0, "pg-private %s %s: %s" % (args[0], self.name, out.stderr)
        return out

    def psql(self, sql, db="pchat", timeout=30):
        out = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "pchat", "-d", db, "-c", sql],
            check=True, capture_output=True, text=True, timeout=timeout)
        return out.stdout.strip()

    def postmaster_pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())


class Pair:
    """A primary and its synchronous standby; duck-types conftest's
    Postgres for Server (new_database, psql)."""

    def __init__(self, root):
        self.a = Node(root, "a")
        self.b = Node(root, "b")
        self.a.run("start", self.a.port)
        self.a.run("sync", '"b"')
        self.b.run("standby", self.b.port, self.a.port)
        self.primary, self.standby = self.a, self.b
        self.dbname = "m%d" % os.getpid()
        self.wait_sync()

    def conninfo(self, db, attrs="read-write"):
        return ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=pchat "
                "target_session_attrs=%s" % (self.a.port, self.b.port, db, attrs))

    def new_database(self):
        name = self.dbname
        self.primary.psql("CREATE DATABASE %s" % name, db="postgres")
        info = self.conninfo(name)
        subprocess.run([PCHATCTL, "--db", info, "db", "migrate"], check=True,
                       capture_output=True, timeout=60)
        return name, info

    def psql(self, sql, db="pchat"):
        return self.primary.psql(sql, db=db)

    def wait_sync(self, timeout=30, want="sync"):
        """Until the standby streams (as the synchronous one)."""
        end = time.monotonic() + timeout
        while True:
            try:
                st = self.primary.psql(
                    "SELECT string_agg(application_name || ':' || state || ':' || sync_state, ',')"
                    " FROM pg_stat_replication", db="postgres")
            except subprocess.CalledProcessError:
                st = ""
            if st == "%s:streaming:%s" % (self.standby.name, want) or \
                    (want == "any" and st.startswith(self.standby.name + ":streaming:")):
                return
            assert time.monotonic() < end, "standby not in sync: %r" % st
            time.sleep(0.1)

    def kill_primary(self):
        os.kill(self.primary.postmaster_pid(), signal.SIGKILL)

    def promote(self):
        self.standby.run("promote")
        self.primary, self.standby = self.standby, self.primary

    def rejoin_old(self):
        """The old primary (stopped or killed) becomes the new standby."""
        out = self.standby.run("rejoin", self.standby.port, self.primary.port)
        self.wait_sync(want="any")
        return out.stderr

    def resync(self):
        """Each server names the other as its synchronous standby (the
        standby's setting counts once it is promoted)."""
        self.primary.run("sync", '"%s"' % self.standby.name)
        self.standby.run("sync", '"%s"' % self.primary.name)
        self.wait_sync()

    def switch_back(self):
        """A planned switch-over: stop the primary cleanly, promote, rejoin."""
        self.primary.run("stop")
        self.promote()
        return self.rejoin_old()

    def start(self):
        """conftest's server_factory restarts a stopped server here; the
        tests keep the pair running themselves."""

    def stop(self):
        for n in (self.a, self.b):
            subprocess.run([PG_PRIVATE, "stop", n.dir], capture_output=True, timeout=120,
                           env=dict(os.environ, PG_STOP_MODE="immediate"))


@pytest.fixture
def postgres(workdir):
    """Overrides conftest's single server: server_factory then starts
    pchatd on the pair's multi-host conninfo."""
    root = os.path.join(workdir, "mirror-%d" % time.monotonic_ns())
    os.makedirs(root)
    p = Pair(root)
    yield p
    p.stop()


@pytest.fixture
def pair(postgres):
    return postgres


@pytest.fixture
def mirrored(server_factory):
    def make(**overrides):
        settings = {"database__backoff_min_ms": 50, "database__backoff_max_ms": 250,
                    "database__connect_timeout_ms": 2000,
                    "database__mirror_check_ms": 200}
        settings.update(overrides)
        return server_factory(**settings)
    return make


def status(server):
    out = subprocess.run([PCHATCTL, "--socket", server.socket, "status"],
                         capture_output=True, text=True, timeout=10)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def wait_status(server, key, value, timeout=20):
    end = time.monotonic() + timeout
    while True:
        st = status(server)
        if st.get(key) == value:
            return time.monotonic()
        assert time.monotonic() < end, "%s never became %s: %r" % (key, value, st)
        time.sleep(0.02)


class Poster(threading.Thread):
    """One client posting numbered messages one at a time: each waits for
    its echo (acknowledged) or its FAIL (refused), however long the outcome
    takes to be known."""

    def __init__(self, server, nick, room):
        super().__init__(daemon=True)
        self.c = server.client(nick, ALL_CAPS)
        self.c.join(room)
        self.nick, self.room = nick, room
        self.acked, self.refused = [], []   # (body, time acknowledged)
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            # Bounded, but well beyond the longest test's failover, resync
            # and switch back under a sanitizer on a busy machine (posting
            # must still run at the switch back: 5,000 posts were once
            # used up before it).
            i = 0
            end = time.monotonic() + 300
            while not self.stop.is_set() and time.monotonic() < end and i < 30000:
                body = "%s-%05d" % (self.nick, i)
                self.c.send("@label=%s PRIVMSG %s :%s" % (body, self.room, body))
                m = self.c.expect(lambda m: m.tags.get("label") == body, timeout=60)
                if m.command == "PRIVMSG":
                    self.acked.append((body, time.monotonic()))
                else:
                    assert m.command == "FAIL" and m.params[:2] == [
                        "PRIVMSG", "TEMPORARILY_UNAVAILABLE"], m
                    self.refused.append((body, time.monotonic()))
                    time.sleep(0.05)
                i += 1
                time.sleep(0.01)
        except Exception as e:  # reported by finish()
            self.error = e

    def finish(self):
        self.stop.set()
        self.join(90)
        assert not self.is_alive(), "poster %s stuck" % self.nick
        assert self.error is None, "poster %s: %r" % (self.nick, self.error)


def check_history(server, posters, room):
    """Every acknowledged message exactly once, in each author's order; no
    refused message."""
    rows = server.query("SELECT m.body FROM messages m JOIN rooms r ON r.id = m.room_id"
                        " WHERE r.name = '%s' ORDER BY m.seq" % room).splitlines()
    assert len(rows) == len(set(rows)), "duplicates in history"
    pos = {body: i for i, body in enumerate(rows)}
    for p in posters:
        acked = [b for b, _ in p.acked]
        missing = [b for b in acked if b not in pos]
        assert not missing, "acknowledged but not stored: %r" % missing[:10]
        seqs = [pos[b] for b in acked]
        assert seqs == sorted(seqs), "acknowledged messages out of order"
        stored_refused = [b for b, _ in p.refused if b in pos]
        assert not stored_refused, "refused but stored: %r" % stored_refused
    return rows


def first_ack_after(posters, t):
    return min((at for p in posters for _, at in p.acked if at > t), default=None)


@pytest.mark.parametrize("after", ["async-standby", "availability", "durability"])
def test_failover_kill_primary(pair, mirrored, after):
    """SIGKILL of the primary's postmaster under load; promotion of the
    standby; the old primary rejoins with pg_rewind; switch back.

    after: what the promoted server does about its own missing mirror.
    async-standby: it has none configured (the figure for pchatd alone);
    availability: pchatd switches it to asynchronous after
    mirror_timeout_ms; durability: posts are refused until the old
    primary is back as its standby."""
    policy = "durability" if after == "durability" else "availability"
    server = mirrored(database__mirror_policy=policy, database__mirror_timeout_ms=1000,
                      database__post_timeout_ms=3000)
    wait_status(server, "mirror", "sync")
    room = "#failover"
    posters = [Poster(server, "p%d" % i, room) for i in range(2)]
    for p in posters:
        p.start()
    time.sleep(1.5)
    assert all(p.acked for p in posters), "no post acknowledged before the kill"
    if after == "async-standby":
        pair.standby.run("sync", "")

    t_kill = time.monotonic()
    pair.kill_primary()
    time.sleep(0.5)  # a monitor's detection time, as PAF's would be
    t_promote = time.monotonic()
    pair.promote()
    t_promoted = time.monotonic()
    t_ready = wait_status(server, "database", "ready")
    if after == "durability":
        # Nothing is acknowledged while the new primary has no mirror.
        # The posters' posts in flight at the kill have an unknown outcome:
        # they wait (never refused) until it is known. A new post is
        # refused at its deadline.
        wait_status(server, "mirror", "missing")
        c = server.client("late", ALL_CAPS)
        c.join(room)
        c.send("@label=late PRIVMSG %s :late-refused" % room)
        m = c.expect(lambda m: m.tags.get("label") == "late", timeout=15)
        assert m.command == "FAIL" and m.params[1] == "TEMPORARILY_UNAVAILABLE", m
        late = [b for p in posters for b, at in p.acked if at > t_promoted + 0.5]
        assert not late, "acknowledged without a mirror: %r" % late[:5]
        t_rejoin = time.monotonic()
        pair.rejoin_old()
        t_resume_from = t_rejoin
    else:
        t_resume_from = t_promoted
    end = time.monotonic() + 30
    while first_ack_after(posters, t_resume_from) is None:
        assert time.monotonic() < end, "posting did not resume"
        time.sleep(0.02)
    t_ack = first_ack_after(posters, t_resume_from)
    print("\nMEASURED failover(%s): kill->promote issued %.2f s, promote took %.2f s, "
          "promoted->store ready %.2f s, %s->first ack %.2f s, kill->first ack %.2f s"
          % (after, t_promote - t_kill, t_promoted - t_promote, t_ready - t_promoted,
             "rejoin started" if after == "durability" else "promoted",
             t_ack - t_resume_from, t_ack - t_kill))
    if after == "async-standby":
        # pchatd's own part: reconnecting to the new primary and posting.
        assert t_ack - t_promoted < 3.0
    elif after == "availability":
        assert status(server)["mirror"] in ("async", "missing")
    time.sleep(1)

    if after != "durability":
        # The old primary rejoins (pg_rewind after its crash); the mirror
        # is back in sync, and the availability switch is undone.
        pair.rejoin_old()
    pair.resync()
    wait_status(server, "mirror", "sync")
    assert pair.primary.psql("SHOW synchronous_standby_names") == '"a"'
    time.sleep(1)

    # Switch back, planned: the posters ride through it too.
    t_switch = time.monotonic()
    pair.switch_back()
    wait_status(server, "mirror", "sync")
    t_back = time.monotonic()
    end = t_back + 30
    while first_ack_after(posters, t_back) is None:
        assert time.monotonic() < end, "posting did not resume after the switch back"
        time.sleep(0.02)
    print("MEASURED switch back (%s): stop+promote+rejoin %.2f s, then first ack %.2f s"
          % (after, t_back - t_switch, first_ack_after(posters, t_back) - t_back))
    time.sleep(1)
    for p in posters:
        p.finish()
    assert pair.primary is pair.a
    rows = check_history(server, posters, room)
    assert "late-refused" not in rows
    acked = sum(len(p.acked) for p in posters)
    refused = sum(len(p.refused) for p in posters)
    print("MEASURED failover(%s): %d acknowledged, %d refused, %d stored"
          % (after, acked, refused, len(rows)))
    # The standby holds the same history (it was synchronous: flushed at
    # each COMMIT, applied a moment later).
    end = time.monotonic() + 10
    while True:
        standby_rows = int(pair.standby.psql(
            "SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id"
            " WHERE r.name = '%s'" % room, db=server.dbname))
        if standby_rows >= acked or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert standby_rows == len(rows)
    server.stop()


def test_durability_holds_and_refuses(pair, mirrored):
    server = mirrored(database__mirror_policy="durability", database__post_timeout_ms=1500)
    wait_status(server, "mirror", "sync")
    a = server.client("alice", ALL_CAPS)
    a.join("#dur")
    a.send("@label=1 PRIVMSG #dur :before")
    assert a.expect(lambda m: m.tags.get("label") == "1").command == "PRIVMSG"

    pair.standby.run("stop")
    wait_status(server, "mirror", "missing")
    t0 = time.monotonic()
    a.send("@label=2 PRIVMSG #dur :while the mirror is gone")
    m = a.expect(lambda m: m.tags.get("label") == "2", timeout=10)
    assert m.command == "FAIL" and m.params[:3] == ["PRIVMSG", "TEMPORARILY_UNAVAILABLE", "#dur"]
    assert 1.0 <= time.monotonic() - t0 <= 5
    # Reads still work while writes are held.
    assert [x.params[1] for x in a.history("LATEST", "#dur", "*", 10)] == ["before"]
    assert "mirror missing" in server.log_text()

    pair.standby.run("start", pair.standby.port)
    pair.wait_sync()
    wait_status(server, "mirror", "sync")
    a.send("@label=3 PRIVMSG #dur :after")
    assert a.expect(lambda m: m.tags.get("label") == "3").command == "PRIVMSG"
    assert server.query("SELECT string_agg(body, '|' ORDER BY seq) FROM messages") \
        == "before|after"
    # Never switched: the primary is still synchronous.
    assert pair.primary.psql("SHOW synchronous_standby_names") == '"b"'
    assert status(server)["mirror_async_switches"] == "0"


def test_availability_switches_and_back(pair, mirrored):
    server = mirrored(database__mirror_policy="availability", database__mirror_timeout_ms=1000,
                      database__post_timeout_ms=5000)
    wait_status(server, "mirror", "sync")
    a = server.client("alice", ALL_CAPS)
    a.join("#av")
    a.send("@label=1 PRIVMSG #av :before")
    assert a.expect(lambda m: m.tags.get("label") == "1").command == "PRIVMSG"

    pair.standby.run("stop")
    t0 = time.monotonic()
    a.send("@label=2 PRIVMSG #av :while the mirror is gone")
    m = a.expect(lambda m: m.tags.get("label") == "2", timeout=10)
    waited = time.monotonic() - t0
    assert m.command == "PRIVMSG", m
    assert 0.8 <= waited <= 5, waited
    wait_status(server, "mirror", "async", timeout=2)
    assert status(server)["mirror_async_switches"] == "1"
    assert pair.primary.psql("SHOW synchronous_standby_names") == ""
    assert "MIRROR LOST" in server.log_text()
    for i in range(5):
        a.send("@label=x%d PRIVMSG #av :async %d" % (i, i))
        assert a.expect(lambda m: m.tags.get("label") == "x%d" % i).command == "PRIVMSG"

    # The mirror returns: it catches up, pchatd restores synchronous commit.
    pair.standby.run("start", pair.standby.port)
    wait_status(server, "mirror", "sync")
    pair.wait_sync()
    assert pair.primary.psql("SHOW synchronous_standby_names") == '"b"'
    assert "mirror back" in server.log_text()
    a.send("@label=3 PRIVMSG #av :after")
    assert a.expect(lambda m: m.tags.get("label") == "3").command == "PRIVMSG"
    want = "before|while the mirror is gone|async 0|async 1|async 2|async 3|async 4|after"
    assert server.query("SELECT string_agg(body, '|' ORDER BY seq) FROM messages") == want
    # Nothing lost: the standby has every acknowledged message.
    assert pair.standby.psql("SELECT string_agg(body, '|' ORDER BY seq) FROM messages",
                             db=server.dbname) == want


def test_policy_config_checked(mirrored):
    from conftest import PCHATD
    server = mirrored()
    out = subprocess.run([PCHATD, "-c", server.conf, "--check-config", "-o",
                          "database.mirror_policy=sometimes"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "durability or availability" in out.stderr + out.stdout


def test_history_reads_from_standby(pair, mirrored):
    """With synchronous_commit = remote_apply, history reads go to the
    standby and see every acknowledged message; without the standby they
    go to the primary."""
    pair.primary.psql("ALTER SYSTEM SET synchronous_commit = remote_apply")
    pair.primary.psql("SELECT pg_reload_conf()")
    server = mirrored(database__read_standby_conninfo=pair.conninfo(
        pair.dbname, "prefer-standby"))
    wait_status(server, "history_reads", "standby")
    a = server.client("alice", ALL_CAPS)
    a.join("#rd")

    for i in range(20):
        a.send("@label=%d PRIVMSG #rd :m%d" % (i, i))
        assert a.expect(lambda m: m.tags.get("label") == str(i)).command == "PRIVMSG"
    # Read right after the last acknowledgement: the standby has applied it.
    hist = [x.params[1] for x in a.history("LATEST", "#rd", "*", 100)]
    assert hist == ["m%d" % i for i in range(20)]
    # The reader's last statement, on the standby, was a history read.
    last = pair.standby.psql("SELECT string_agg(query, '|') FROM pg_stat_activity"
                             " WHERE application_name = 'pchatd-reader'", db="postgres")
    assert "FROM messages WHERE room_id" in last, last

    # The standby goes: reads fall back to the primary (posts are held).
    pair.standby.run("stop")
    wait_status(server, "history_reads", "primary")
    hist = [x.params[1] for x in a.history("LATEST", "#rd", "*", 100)]
    assert hist == ["m%d" % i for i in range(20)]
    pair.standby.run("start", pair.standby.port)
    wait_status(server, "history_reads", "standby")
    hist = [x.params[1] for x in a.history("LATEST", "#rd", "*", 5)]
    assert hist == ["m%d" % i for i in range(15, 20)]


def test_quorum_commit_any_one_of_two(pair, mirrored):
    """synchronous_standby_names = 'ANY 1 (b, c)': one standby lost changes
    nothing (no wait, no switch, still two copies); both lost is the
    durability case again."""
    c = Node(os.path.dirname(pair.a.dir), "c")
    c.run("standby", c.port, pair.a.port)
    pair.a.run("sync", 'ANY 1 ("b", "c")')
    end = time.monotonic() + 30
    while pair.a.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'"
                      " AND state = 'streaming'", db="postgres") != "2":
        assert time.monotonic() < end, "two quorum standbys never streamed"
        time.sleep(0.1)
    try:
        server = mirrored(database__mirror_policy="durability", database__post_timeout_ms=1500)
        wait_status(server, "mirror", "sync")
        a = server.client("alice", ALL_CAPS)
        a.join("#q")
        pair.b.run("stop")
        time.sleep(0.6)  # three checks
        assert status(server)["mirror"] == "sync"
        a.send("@label=1 PRIVMSG #q :one standby left")
        assert a.expect(lambda m: m.tags.get("label") == "1").command == "PRIVMSG"
        c.run("stop")
        wait_status(server, "mirror", "missing")
        a.send("@label=2 PRIVMSG #q :none left")
        m = a.expect(lambda m: m.tags.get("label") == "2", timeout=10)
        assert m.command == "FAIL" and m.params[1] == "TEMPORARILY_UNAVAILABLE"
        c.run("start", c.port)
        wait_status(server, "mirror", "sync")
        a.send("@label=3 PRIVMSG #q :c is back")
        assert a.expect(lambda m: m.tags.get("label") == "3").command == "PRIVMSG"
        assert server.query("SELECT string_agg(body, '|' ORDER BY seq) FROM messages") \
            == "one standby left|c is back"
        assert status(server)["mirror_async_switches"] == "0"
    finally:
        subprocess.run([PG_PRIVATE, "stop", c.dir], capture_output=True, timeout=120,
                       env=dict(os.environ, PG_STOP_MODE="immediate"))
