"""The database going away: clients stay, posts wait a bounded time and are
refused with a standard reply, nothing unstored is acknowledged, and posting
works again once the database is back."""
import time

from ircclient import ALL_CAPS


def test_database_down_then_back(server, postgres):
    a = server.client("alice", ALL_CAPS)
    b = server.client("bob", ALL_CAPS)
    a.join("#db")
    b.join("#db")
    a.send("PRIVMSG #db :before")
    a.expect("PRIVMSG")
    b.expect("PRIVMSG")

    postgres.stop()
    try:
        t0 = time.monotonic()
        a.send("@label=down1 PRIVMSG #db :while down")
        fail = a.expect(lambda m: m.tags.get("label") == "down1", timeout=10)
        waited = time.monotonic() - t0
        assert fail.command == "FAIL", fail
        assert fail.params[:3] == ["PRIVMSG", "TEMPORARILY_UNAVAILABLE", "#db"]
        # Bounded: post_timeout_ms is 2000 in the fixture.
        assert 1.5 <= waited <= 6, waited
        # No echo, no delivery; still connected.
        assert all(m.command != "PRIVMSG" for m in a.drain(0.3))
        assert all(m.command != "PRIVMSG" for m in b.drain(0.1))
        a.ping_roundtrip("still-here")
        b.ping_roundtrip("me-too")
        # Without a label and from the other client: the same refusal.
        t0 = time.monotonic()
        b.send("PRIVMSG #db :while down 2")
        fail = b.expect(lambda m: m.command in ("FAIL", "PRIVMSG"), timeout=10)
        assert fail.command == "FAIL"
        assert fail.params[:3] == ["PRIVMSG", "TEMPORARILY_UNAVAILABLE", "#db"]
        assert time.monotonic() - t0 <= 6
        assert all(m.command != "PRIVMSG" for m in a.drain(0.2))
    finally:
        postgres.start()

    # Posting works again once the store has reconnected (bounded retries).
    deadline = time.monotonic() + 30
    while True:
        a.send("@label=up PRIVMSG #db :after")
        m = a.expect(lambda m: m.tags.get("label") == "up", timeout=10)
        if m.command == "PRIVMSG":
            break
        assert time.monotonic() < deadline, "posting did not come back"
        time.sleep(0.5)
    assert m.tags.get("msgid")
    assert b.expect("PRIVMSG").params[1] == "after"
    bodies = server.query("SELECT string_agg(body, ',' ORDER BY seq) FROM messages")
    assert "while down" not in bodies
    assert bodies.startswith("before") and bodies.endswith("after")
    # History agrees: the refused post never existed.
    hist = [x.params[1] for x in b.history("LATEST", "#db", "*", 100)]
    assert "while down" not in hist and "while down 2" not in hist
    assert hist[0] == "before" and hist[-1] == "after"
    assert set(hist) == {"before", "after"}
    a.ping_roundtrip("end")


def test_schema_check_refuses_newer_database(server_factory, postgres):
    import subprocess
    from conftest import PCHATD
    server = server_factory()
    server.stop()
    server.query("INSERT INTO pchat_schema (version, name) VALUES (9999, 'future')")
    out = subprocess.run([PCHATD, "-c", server.conf], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "newer than this pchatd" in out.stderr
    server.query("DELETE FROM pchat_schema WHERE version = 9999")
    server.start()


def test_multi_host_conninfo_skips_a_host_that_never_answers(server_factory, postgres):
    """The first host of a multi-host conninfo accepts TCP and never
    answers (a hung server; in a real failover, an address whose owner is
    gone). libpq has no per-host timeout in non-blocking mode, so each
    attempt times out there; the next attempt must start from the
    following host, and posting works."""
    import socket as socketlib
    blackhole = socketlib.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)  # never accepted: the handshake completes, no answer
    try:
        port = blackhole.getsockname()[1]
        server = server_factory(database__connect_timeout_ms="500")
        server.stop()
        dbname = server.dbname
        conninfo = ("host=127.0.0.1,%s port=%d,%d dbname=%s user=pchat "
                    "target_session_attrs=read-write" % (postgres.dir, port, postgres.port, dbname))
        with open(server.conf) as f:
            text = f.read()
        with open(server.conf, "w") as f:
            f.write(text.replace("conninfo = " + server.conninfo, "conninfo = " + conninfo))
        server.start()
        c = server.client("alice", ALL_CAPS)
        c.join("#multi")
        c.send("PRIVMSG #multi :through the second host")
        echo = c.expect(lambda m: m.command in ("PRIVMSG", "FAIL"), timeout=15)
        assert echo.command == "PRIVMSG", echo
        assert "next attempt starts from host" in server.log_text()
    finally:
        blackhole.close()
