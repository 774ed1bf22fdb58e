"""Operating pchatd: configuration checks, signals, the control socket."""
import os
import signal
import subprocess
import time

from conftest import PCHATCTL, PCHATD
from ircclient import Client


def test_check_config_names_file_line_and_key(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nname = ok\n[database]\npost_timeout_ms = soon\n")
    out = subprocess.run([PCHATD, "-c", str(conf), "--check-config"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "%s:4: database.post_timeout_ms: 'soon' is not a number" % conf in out.stderr
    good = tmp_path / "good.conf"
    good.write_text("[listen]\ntls =\n")
    out = subprocess.run([PCHATD, "-c", str(good), "--check-config"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert "[database]" in out.stdout
    out = subprocess.run([PCHATD, "-c", str(good), "-o", "nope.key=1", "--check-config"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and "unknown key 'key' in section [nope]" in out.stderr


def test_sighup_reloads_log_level_and_certificate(server, tls_cert):
    c = server.client("alice", tls=True)
    with open(server.conf) as f:
        text = f.read()
    with open(server.conf, "w") as f:
        f.write(text.replace("level = info", "level = debug"))
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in server.log_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "log.level=debug" in server.log_text()
    c.ping_roundtrip()
    Client(server.tls_port, tls=True).register("bob")


def test_control_socket_roles(server):
    # Serving starts before the database connection is up (clients may
    # register meanwhile): wait for it, a slow start (valgrind) included.
    deadline = time.monotonic() + 20
    while True:
        st = subprocess.run([PCHATCTL, "--socket", server.socket, "status"],
                            capture_output=True, text=True, timeout=10)
        assert st.returncode == 0
        status = dict(l.split("=", 1) for l in st.stdout.split())
        if status["database"] == "ready" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["role"] == "active" and status["serving"] == "yes"
    assert status["database"] == "ready" and status["bus"] == "local"
    c = server.client("alice")
    out = subprocess.run([PCHATCTL, "--socket", server.socket, "role", "standby"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "serving=no" in out.stdout
    c.expect("ERROR")
    try:
        Client(server.port).register("nope")
        raise AssertionError("a standby node accepted a client")
    except (ConnectionRefusedError, EOFError, OSError):
        pass
    out = subprocess.run([PCHATCTL, "--socket", server.socket, "role", "active"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "serving=yes" in out.stdout
    server.client("back").ping_roundtrip()
    bad = subprocess.run([PCHATCTL, "--socket", server.socket, "role", "leader"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1 and "unknown role" in bad.stderr


def test_sigterm_drains_cleanly(server):
    c = server.client("alice", ["echo-message"])
    c.join("#bye")
    c.send("PRIVMSG #bye :last words")
    c.expect("PRIVMSG")
    assert server.stop() == 0
    err = c.expect("ERROR")
    assert "shutting down" in err.params[0]
