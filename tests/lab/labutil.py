"""Helpers shared by the lab's pytest files: one Lab per test module, with
its own lab dir and namespace prefix (so a lab run by hand, or another
test run, is never touched), bounded waits, and the figures printed at the
end of the run (conftest.py)."""
import os
import re
import json
import secrets
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# (test, what, seconds), printed by conftest.py at the end of the run.
FIGURES = []


def figure(test, what, secs):
    FIGURES.append((test, what, secs))
    print("%s: %s: %.2f s" % (test, what, secs))


def skip_reason():
    """Why the lab cannot run here, or None. Only root and network
    namespace support are required; anything else missing is a failure."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    try:
        r = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "no network namespace support (unshare --net: %s)" % e
    if r.returncode != 0:
        return "no network namespace support (unshare --net: %s)" % r.stderr.decode().strip()
    return None


def skip_unless_possible():
    reason = skip_reason()
    if reason:
        print("SKIP lab: " + reason)
        pytest.skip(reason)


# The lab of the running module, for diagnostics when a wait times out.
CURRENT = []


def wait_for(pred, secs, what, interval=0.1):
    """Polls pred() until it returns a true value (returned), for at most
    secs seconds; on timeout fails with the lab's state."""
    end = time.monotonic() + secs
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            diag = CURRENT[-1].diagnose() if CURRENT else ""
            raise AssertionError("timed out after %.0f s waiting for %s\n%s" % (secs, what, diag))
        time.sleep(interval)


class Lab:
    def __init__(self):
        self.prefix = "t" + secrets.token_hex(2)
        self.dir = "/var/tmp/pchat-lab-" + self.prefix
        self.env = dict(os.environ, PCHAT_LAB_DIR=self.dir, PCHAT_LAB_PREFIX=self.prefix)
        self.hosts = []
        CURRENT.append(self)

    def run(self, *args, timeout=60, check=True):
        r = subprocess.run([os.path.join(HERE, args[0])] + [str(a) for a in args[1:]],
                           capture_output=True, text=True, timeout=timeout, env=self.env)
        if check:
            assert r.returncode == 0, "%s failed (%d):\n%s%s" % (
                " ".join(map(str, args)), r.returncode, r.stdout[-2000:], r.stderr[-3000:])
        return r

    def up(self, *args, timeout=400):
        self.run("down", timeout=60, check=False)
        t0 = time.monotonic()
        r = self.run("up", *args, timeout=timeout, check=False)
        if r.returncode != 0:
            status = self.run("status", check=False).stdout
            self.run("down", check=False)
            pytest.fail("tests/lab/up %s failed:\n%s\n%s" % (" ".join(args), r.stderr[-4000:], status))
        self.hosts = [l.split()[0] for l in open(os.path.join(self.dir, "hosts.list"))]
        return time.monotonic() - t0

    def diagnose(self):
        """status, fencing history and the fence helper's log."""
        out = [self.run("status", check=False, timeout=60).stdout]
        live = self.live_hosts()
        if live:
            out.append(self.exec(live[0], "stonith_admin", "--history", "*", "--verbose").stdout)
        try:
            with open(os.path.join(self.dir, "fence", "helper.log")) as f:
                out.append("fence helper log:\n" + f.read()[-3000:])
        except OSError:
            pass
        return "\n".join(out)

    def down(self):
        t0 = time.monotonic()
        r = self.run("down", timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        return time.monotonic() - t0

    def exec(self, host, *cmd, timeout=30, check=False):
        return self.run("exec", host, *cmd, timeout=timeout, check=check)

    def power(self, host):
        try:
            with open(os.path.join(self.dir, "fence", "power", host)) as f:
                return f.read().strip()
        except OSError:
            return "?"

    def live_hosts(self):
        return [h for h in self.hosts if self.power(h) == "on"]

    def crm(self, host=None):
        """crm_mon's XML from host, or from the first running host; None if
        none answers."""
        for h in [host] if host else self.live_hosts():
            r = self.exec(h, "crm_mon", "-1", "--output-as=xml")
            if r.returncode == 0 and "<nodes>" in r.stdout:
                return ET.fromstring(r.stdout)
        return None

    def online(self, host=None):
        x = self.crm(host)
        if x is None:
            return []
        return sorted(n.get("name") for n in x.iter("node")
                      if n.get("online") == "true" and n.get("name"))

    @staticmethod
    def _online(x):
        return {n.get("name") for n in x.iter("node")
                if n.get("online") == "true" and n.get("unclean") != "true"}

    def promoted(self, agent, host=None):
        """Hosts where agent is promoted: instances on nodes that are not
        online (a killed host not yet fenced) do not count."""
        x = self.crm(host)
        if x is None:
            return []
        up = self._online(x)
        out = []
        for r in x.iter("resource"):
            nodes = [n.get("name") for n in r.findall("node")]
            if r.get("resource_agent") == agent and r.get("role") == "Promoted" \
                    and r.get("active") == "true" and r.get("failed") != "true" \
                    and nodes and nodes[0] in up:
                out.append(nodes[0])
        return sorted(out)

    def running_on(self, agent, host):
        """True if an instance of agent runs on host (any role)."""
        x = self.crm()
        if x is None:
            return False
        for r in x.iter("resource"):
            if r.get("resource_agent") == agent and r.get("active") == "true" \
                    and r.get("failed") != "true" and r.get("role") in ("Promoted", "Unpromoted", "Started") \
                    and any(n.get("name") == host for n in r.findall("node")):
                return True
        return False

    def vips(self, host=None):
        """{vip resource id: node} for started virtual IPs."""
        x = self.crm(host)
        if x is None:
            return {}
        up = self._online(x)
        out = {}
        for r in x.iter("resource"):
            nodes = [n.get("name") for n in r.findall("node")]
            if r.get("id", "").startswith("vip") and r.get("role") == "Started" \
                    and r.get("active") == "true" and nodes and nodes[0] in up:
                out[r.get("id")] = nodes[0]
        return out

    def quorate(self, host):
        """True/False from corosync-quorumtool -s inside host; None if it
        does not answer."""
        r = self.exec(host, "corosync-quorumtool", "-s", timeout=10)
        m = re.search(r"^Quorate:\s+(\w+)", r.stdout, re.M)
        return None if not m else m.group(1) == "Yes"

    def member_status(self, host, nodeid):
        """runtime.members.ID.status as host's Corosync sees it
        ("joined", "left"), or None."""
        r = self.exec(host, "corosync-cmapctl", "-g", "runtime.members.%d.status" % nodeid, timeout=10)
        m = re.search(r"= (\w+)", r.stdout)
        return m.group(1) if m else None

    def nodeid(self, host):
        return self.hosts.index(host) + 1

    def fenced_at(self, host, after):
        """Epoch time at which the fence helper powered host off after
        `after`, or None."""
        try:
            with open(os.path.join(self.dir, "fence", "helper.log")) as f:
                for line in f:
                    p = line.split()
                    if len(p) >= 4 and p[1] == "fenced" and p[2] == host + ":" and p[3] == "ok" \
                            and float(p[0]) > after:
                        return float(p[0])
        except OSError:
            pass
        return None

    @staticmethod
    def stamp(r):
        """The epoch time printed by kill, partition and heal ("... at T")."""
        return float(r.stdout.strip().split()[-1])

    @classmethod
    def pchat_lab(cls, *up_args):
        """A lab with pchat's resources (up ... --pchat): skips without
        root, network namespaces or a build in PCHAT_BUILDDIR."""
        skip_unless_possible()
        build = os.environ.get("PCHAT_BUILDDIR", os.path.join(HERE, "..", "..", "build"))
        if not os.access(os.path.join(build, "src", "pchatd", "pchatd"), os.X_OK):
            pytest.skip("no pchatd build in %s (set PCHAT_BUILDDIR)" % build)
        lab = cls()
        lab.env["PCHAT_BUILDDIR"] = build
        args = [str(a) for a in up_args] + ["--pchat"]
        figure("pchat lab up", "up " + " ".join(args), lab.up(*args))
        return lab

    def bin(self, name):
        """A pchat binary as the hosts see it (copied by resources-pchat)."""
        return os.path.join(self.dir, "bin", name)

    def ctl_status(self, host):
        """pchatctl status of host's pchatd as a dict ({} if it does not
        answer)."""
        out = self.exec(host, self.bin("pchatctl"), "--socket", "/run/pchat/pchatd.sock",
                        "status").stdout
        return dict(l.split("=", 1) for l in out.split() if "=" in l)

    def client(self, *args, timeout=180):
        """Runs a lab_client.py scenario in the client namespace; its
        JSON result."""
        out = self.run("exec", "client", "/usr/bin/python3", os.path.join(HERE, "lab_client.py"),
                       *args, timeout=timeout, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def background(self, *args):
        return Background(self, *args)

    def set_property(self, prop, value):
        h = self.live_hosts()[0]
        self.exec(h, "pcs", "property", "set", "%s=%s" % (prop, value), check=True)


class Background:
    """A lab_client.py scenario running in a thread while the test acts on
    the lab."""

    def __init__(self, lab, *args):
        self.lab = lab
        self.result, self.error = {}, None
        self.thread = threading.Thread(target=self._run, args=args)
        self.thread.start()

    def _run(self, *args):
        try:
            self.result.update(self.lab.client(*args))
        except BaseException as e:  # reported by join()
            self.error = e

    def wait_ready(self, path, secs=60):
        """Waits for the file the scenario writes once it is ready."""
        wait_for(lambda: os.path.exists(path) or not self.thread.is_alive(), secs,
                 "the client ready (%s)" % path)
        assert os.path.exists(path), "the client ended before it was ready: %r" % self.error

    def join(self, name, secs=200):
        """Waits for the scenario's result; its *_s figures are recorded
        under name."""
        self.thread.join(timeout=secs)
        assert not self.thread.is_alive(), "the client still runs after %d s" % secs
        assert self.error is None, "the client failed: %s" % self.error
        print("%s: %s" % (name, json.dumps(self.result)))
        for k, v in sorted(self.result.items()):
            if k.endswith("_s") and isinstance(v, (int, float)):
                figure(name, k, v)
        return self.result
