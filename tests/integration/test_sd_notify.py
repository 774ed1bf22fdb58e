"""pchatd speaks systemd's readiness protocol (Type=notify): READY=1 once
its listeners are open, RELOADING=1 then READY=1 around a SIGHUP reload,
STOPPING=1 when it drains. A real unix datagram socket stands in for
systemd's."""
import os
import signal
import socket

import pytest


def read_states(sock, want, timeout=10):
    """Datagrams until one contains `want`; returns all of them."""
    got = []
    sock.settimeout(timeout)
    while True:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no %r from pchatd within %ds; got %r" % (want, timeout, got))
        got.append(msg)
        if want in msg.split("\n"):
            return got


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_reload_stopping(server_factory, workdir, monkeypatch, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "pchat-notify-test-%d" % os.getpid()
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    else:
        path = os.path.join(workdir, "notify-%d.sock" % os.getpid())
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        server = server_factory()
        ready = read_states(sock, "READY=1")
        assert any(l.startswith("STATUS=active") for m in ready for l in m.split("\n"))
        # Ready means clients can register now.
        c = server.client("alice")
        c.ping_roundtrip()

        server.proc.send_signal(signal.SIGHUP)
        states = read_states(sock, "READY=1")
        assert "RELOADING=1" in [l for m in states for l in m.split("\n")]

        server.stop()
        states = read_states(sock, "STOPPING=1")
        assert states
    finally:
        sock.close()


def test_bad_notify_socket_is_harmless(server_factory, monkeypatch):
    # Not a path nor an abstract name: ignored, pchatd serves as usual.
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    server = server_factory()
    server.client("bob").ping_roundtrip()
