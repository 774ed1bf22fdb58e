"""Fixtures: a private PostgreSQL for the session, a fresh database and a
real pchatd per test (or per module), TLS certificates, free ports."""
import itertools
import os
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ircclient import Client  # noqa: E402

SRCDIR = os.environ.get("PCHAT_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILDDIR = os.environ.get("PCHAT_BUILDDIR", SRCDIR)
PCHATD = os.path.join(BUILDDIR, "src", "pchatd", "pchatd")
PCHATCTL = os.path.join(BUILDDIR, "src", "pchatctl", "pchatctl")
PG_PRIVATE = os.path.join(SRCDIR, "tools", "pg-private")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, root):
        self.dir = os.path.join(root, "pg")
        self.port = free_port()
        self.conninfo = None
        self._dbs = itertools.count(1)

    def start(self):
        out = subprocess.run([PG_PRIVATE, "start", self.dir, str(self.port)],
                             check=True, capture_output=True, text=True, timeout=120)
        self.conninfo = out.stdout.strip().splitlines()[-1]

    def stop(self, mode="fast"):
        """mode "immediate" skips the shutdown checkpoint: for the end of
        the session, whose data nobody reads (on a machine loaded by two
        busy loops the fast stop failed there: pg_ctl waits 60 s at most,
        and the checkpoint writes every test's database)."""
        subprocess.run([PG_PRIVATE, "stop", self.dir], check=True,
                       capture_output=True, timeout=120,
                       env=dict(os.environ, PG_STOP_MODE=mode))

    def psql(self, sql, db="pchat"):
        out = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", self.dir, "-p", str(self.port), "-U", "pchat", "-d", db, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def new_database(self):
        name = "t%d_%d" % (os.getpid(), next(self._dbs))
        self.psql("CREATE DATABASE %s" % name, db="postgres")
        info = "host=%s port=%d dbname=%s user=pchat" % (self.dir, self.port, name)
        subprocess.run([PCHATCTL, "--db", info, "db", "migrate"], check=True,
                       capture_output=True, timeout=60)
        return name, info


@pytest.fixture(scope="session")
def workdir(request):
    for prog in (PCHATD, PCHATCTL):
        if not os.access(prog, os.X_OK):
            pytest.exit("%s not built: run make, or set PCHAT_BUILDDIR" % prog, 2)
    d = tempfile.mkdtemp(prefix="pchat-it-")
    os.chmod(d, 0o755)
    yield d
    # Kept for inspection when something failed or PCHAT_KEEP_TMP is set.
    if request.session.testsfailed or os.environ.get("PCHAT_KEEP_TMP"):
        sys.stderr.write("\nintegration test files kept in %s\n" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(workdir):
    pg = Postgres(workdir)
    pg.start()
    yield pg
    pg.stop(mode="immediate")


@pytest.fixture(scope="session")
def tls_cert(workdir):
    cert = os.path.join(workdir, "cert.pem")
    key = os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Server:
    """A real pchatd on loopback with its own database."""

    def __init__(self, workdir, postgres, tls_cert, overrides):
        self.pg = postgres
        self.dbname, self.conninfo = postgres.new_database()
        self.dir = tempfile.mkdtemp(prefix="srv-", dir=workdir)
        self.port = free_port()
        self.tls_port = free_port()
        self.conf = os.path.join(self.dir, "pchatd.conf")
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.log = os.path.join(self.dir, "pchatd.log")
        settings = {
            "server.name": "pchat.test",
            "listen.plain": "127.0.0.1:%d" % self.port,
            "listen.tls": "127.0.0.1:%d" % self.tls_port,
            "tls.cert": tls_cert[0],
            "tls.key": tls_cert[1],
            "database.conninfo": self.conninfo,
            "database.post_timeout_ms": "2000",
            "database.backoff_max_ms": "500",
            # Generous flood limits so that tests run at full speed; the
            # flood tests set their own.
            "limits.flood_burst": "1000",
            "limits.flood_rate": "1000",
            "pool.control_socket": self.socket,
            "log.level": "info",
        }
        settings.update(overrides)
        sections = {}
        for k, v in settings.items():
            sec, key = k.split(".", 1)
            sections.setdefault(sec, []).append("%s = %s" % (key, v))
        with open(self.conf, "w") as f:
            for sec, lines in sections.items():
                f.write("[%s]\n%s\n\n" % (sec, "\n".join(lines)))
        self.proc = None
        self.start()

    def start(self):
        self.logf = open(self.log, "ab")
        # PCHAT_PCHATD_WRAPPER runs pchatd under a tool, e.g. "valgrind
        # --leak-check=full --errors-for-leak-kinds=definite
        # --error-exitcode=99": its findings then fail the test at stop.
        wrapper = shlex.split(os.environ.get("PCHAT_PCHATD_WRAPPER", ""))
        self.proc = subprocess.Popen(wrapper + [PCHATD, "-c", self.conf],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("pchatd exited at start:\n" + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("pchatd did not listen within 15 s:\n" + self.log_text())

    def stop(self, check=True):
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pchatd did not exit within 20 s of SIGTERM")
        finally:
            self.logf.close()
        self.proc = None
        if check:
            text = self.log_text()
            assert rc == 0, "pchatd exited with %d:\n%s" % (rc, text[-3000:])
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                assert bad not in text, "sanitizer report:\n" + text[-5000:]
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def restart(self):
        self.stop()
        self.start()

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self, nick=None, caps=(), tls=False, register=True):
        c = Client(self.tls_port if tls else self.port, tls=tls)
        if register and nick:
            c.register(nick, caps)
        return c

    def query(self, sql):
        return self.pg.psql(sql, db=self.dbname)


@pytest.fixture
def server_factory(workdir, postgres, tls_cert):
    servers = []

    def make(**overrides):
        s = Server(workdir, postgres, tls_cert,
                   {k.replace("__", "."): str(v) for k, v in overrides.items()})
        servers.append(s)
        return s

    yield make
    # A test that stopped PostgreSQL and failed before restarting it must not
    # take the following tests down with it.
    postgres.start()
    # Stop every server even if one of them fails its check.
    errors = []
    for s in servers:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def server(server_factory):
    return server_factory()
