"""Hostile and broken input: clear errors, no crash, nothing lost."""
import socket
import struct
import time

import pytest

from ircclient import Client


def test_overlong_line_gets_417_and_keeps_client(server):
    c = server.client("alice")
    c.send("PRIVMSG #x :" + "a" * 700)
    assert c.expect("417").params[0] == "alice"
    c.ping_roundtrip()
    # An overlong line without newline for a while, then the rest.
    c.send_raw(b"PRIVMSG #x :" + b"b" * 9000)
    time.sleep(0.1)
    c.send_raw(b"\r\n")
    c.expect("417")
    c.ping_roundtrip("after-long")


def test_oversized_tags_get_417(server):
    c = server.client("alice")
    c.send("@+big=" + "x" * 5000 + " PING :t")
    c.expect("417")
    c.ping_roundtrip()


def test_invalid_utf8_is_refused(server):
    c = server.client("alice", ["echo-message"])
    c.join("#u")
    c.send_raw(b"PRIVMSG #u :bad \xff\xfe bytes\r\n")
    f = c.expect("FAIL")
    assert f.params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    assert "#u" not in server.query("SELECT string_agg(body, ',') FROM messages") or True
    assert server.query("SELECT count(*) FROM messages") == "0"
    c.ping_roundtrip()


def test_unknown_and_short_commands(server):
    pre = Client(server.port)
    pre.send("JOIN #early")
    assert pre.expect("451")
    c = server.client("alice")
    c.send("FROBNICATE a b")
    assert c.expect("421").params[1] == "FROBNICATE"
    c.send("JOIN")
    assert c.expect("461").params[1] == "JOIN"
    c.send("USER a b c d")
    assert c.expect("462")
    c.send_raw(b"\x00\x01\x02 garbage\r\n")
    c.send_raw(b":only-a-source\r\n")
    c.send_raw(b"\r\n\r\n")
    c.ping_roundtrip()


def test_flood_is_throttled_not_dropped(server_factory):
    server = server_factory(limits__flood_burst=20, limits__flood_rate=100)
    flooder = server.client("flooder")
    other = server.client("calm", ["echo-message"])
    other.join("#calm")
    t0 = time.monotonic()
    flooder.send_raw(b"".join(b"PING :%d\r\n" % i for i in range(200)))
    # Other clients are served at once.
    other.send("PRIVMSG #calm :still fine")
    other.expect("PRIVMSG", timeout=2)
    # Every PING is answered, in order, at the configured rate.
    for i in range(200):
        m = flooder.expect("PONG", timeout=10)
        assert m.params[-1] == str(i)
    elapsed = time.monotonic() - t0
    assert elapsed >= (200 - 20) / 100 * 0.8, elapsed


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_flood_memory_is_bounded(server_factory):
    """A flooder's reading is paused: TCP pushes back on it, the server does
    not buffer its backlog, and other clients are unaffected."""
    server = server_factory(limits__flood_burst=1, limits__flood_rate=1)
    c = server.client("flooder")
    before = rss_kib(server.proc.pid)
    payload = b"PING :" + b"x" * 400 + b"\r\n"
    c.sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sent < 20 * 1024 * 1024:
        try:
            sent += c.sock.send(payload * 64)
        except BlockingIOError:
            time.sleep(0.01)
    c.sock.setblocking(True)
    assert sent < 20 * 1024 * 1024, "the server kept reading a throttled client"
    other = server.client("other")
    other.ping_roundtrip()
    assert rss_kib(server.proc.pid) - before < 8 * 1024
    # The flooder is still served, at its rate.
    assert c.expect("PONG", timeout=5)


def test_registration_timeout(server_factory):
    server = server_factory(limits__register_timeout_ms=1000)
    c = Client(server.port)
    c.send("NICK slow")
    err = c.expect("ERROR", timeout=5)
    assert "Registration timed out" in err.params[0]


def test_half_open_and_abrupt_disconnects(server):
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"NICK x\r\nUSER x 0 * :x\r\n")
        # RST instead of FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    c = server.client("normal")
    c.join("#still")
    c.ping_roundtrip()
    for s in silent:
        s.close()
    assert server.proc.poll() is None


def test_tls_garbage_does_not_hurt(server):
    s = socket.create_connection(("127.0.0.1", server.tls_port))
    s.sendall(b"this is not a TLS client hello\r\n" * 10)
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    c = server.client("fine", tls=True)
    c.ping_roundtrip()
