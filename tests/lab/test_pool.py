"""The pchat pool in the cluster lab: chat hosts running pchatd as the
promotable clone ocf:pchat:pchatd (half of them active, one virtual IP
each) and a database host, with lab fencing (tests/lab/up --pchat).
Needs a build of pchat in PCHAT_BUILDDIR (tools/test-all sets it); skips
without root, network namespaces, or a build.
PCHAT_LAB_CHAT=8 runs the full 4 + 4 pool (the longer target)."""
import json
import os
import re
import threading
import time

import pytest

from labutil import HERE, Lab, figure, skip_unless_possible, wait_for as _wait_for

NCHAT = int(os.environ.get("PCHAT_LAB_CHAT", "3"))
NPROMOTED = min(4, (NCHAT + 1) // 2)
PCHATD = "ocf:pchat:pchatd"
LAB = None


def wait_for(pred, secs, what):
    return _wait_for(pred, secs, what, interval=0.2)


def run(*args, timeout=300):
    return LAB.run(*args, timeout=timeout, check=False)


def bin_path(name):
    return os.path.join(LAB.dir, "bin", name)


def ctl_status(host):
    out = run("exec", host, bin_path("pchatctl"), "--socket",
              "/run/pchat/pchatd.sock", "status", timeout=30).stdout
    return dict(l.split("=", 1) for l in out.split() if "=" in l)


@pytest.fixture(scope="module")
def lab():
    global LAB
    skip_unless_possible()
    build = os.environ.get("PCHAT_BUILDDIR", os.path.join(HERE, "..", "..", "build"))
    if not os.access(os.path.join(build, "src", "pchatd", "pchatd"), os.X_OK):
        pytest.skip("no pchatd build in %s (set PCHAT_BUILDDIR)" % build)
    LAB = Lab()
    LAB.env["PCHAT_BUILDDIR"] = build
    secs = LAB.up("--chat", NCHAT, "--db", 1, "--pchat")
    figure("pool up", "up --chat %d --db 1 --pchat" % NCHAT, secs)
    yield LAB
    LAB.down()


def crm_state():
    """(promoted hosts, {vip: host}, raw XML) from any host that is up."""
    promoted = LAB.promoted(PCHATD)
    vips = LAB.vips()
    return promoted, vips, str(LAB.crm() is not None)


def client(*args, timeout=180):
    """Runs a lab_client.py scenario in the client namespace."""
    out = LAB.run("exec", "client", "/usr/bin/python3", os.path.join(HERE, "lab_client.py"),
                  *args, timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_strength():
    """NPROMOTED promoted pchatd instances, each with its address."""
    promoted, vips, _ = crm_state()
    return len(promoted) == NPROMOTED and sorted(vips.values()) == promoted


class Background:
    """A lab_client.py scenario running in a thread while the test acts on
    the lab."""

    def __init__(self, *args):
        self.result, self.error = {}, None
        self.thread = threading.Thread(target=self._run, args=args)
        self.thread.start()

    def _run(self, *args):
        try:
            self.result.update(client(*args))
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


def test_two_active_one_standby(lab):
    wait_for(lambda: len(crm_state()[1]) == NPROMOTED, 30, "both addresses started")
    promoted, vips, out = crm_state()
    assert len(promoted) == NPROMOTED, out
    assert sorted(vips.values()) == sorted(promoted), out


def test_agent_passes_ocf_tester(lab):
    # A second pchatd on c1 with its own port, socket and files.
    prep = run("exec", "c1", "sh", "-c",
               "sed -e 's/0.0.0.0:6667/0.0.0.0:7667/' -e 's|/run/pchat/pchatd.sock|/run/pchat/t.sock|'"
               " /etc/pacemaker/pchatd.conf > /etc/pacemaker/test.conf", timeout=30)
    assert prep.returncode == 0, prep.stderr
    params = ["-o", "binary=" + bin_path("pchatd"), "-o", "pchatctl=" + bin_path("pchatctl"),
              "-o", "config=/etc/pacemaker/test.conf", "-o", "socket=/run/pchat/t.sock",
              "-o", "pidfile=/run/pchat/t.pid", "-o", "logfile=/var/log/pchat/t.log"]
    r = run("exec", "c1", "ocf-tester", "-n", "pchat-test", *params,
            "/usr/lib/ocf/resource.d/pchat/pchatd", timeout=120)
    assert r.returncode == 0 and "passed all tests" in r.stdout, r.stdout + r.stderr
    # validate-all names the bad parameter.
    bad = run("exec", "c1", "env", "OCF_ROOT=/usr/lib/ocf", "OCF_RESKEY_config=/nonexistent.conf",
              "OCF_RESKEY_binary=" + bin_path("pchatd"),
              "OCF_RESKEY_pchatctl=" + bin_path("pchatctl"),
              "/usr/lib/ocf/resource.d/pchat/pchatd", "validate-all", timeout=30)
    assert bad.returncode == 6, (bad.returncode, bad.stdout, bad.stderr)  # OCF_ERR_CONFIGURED
    assert "parameter config" in bad.stderr + bad.stdout


def test_clients_on_two_active_nodes_chat_in_one_order(lab):
    r = client("chat", "198.18.0.51", "198.18.0.52", "30")
    assert r["collision"] == "433"
    assert r["count"] == 60 and r["same_order"] and r["history_matches"], r


def test_partitioned_node_stops_serving(lab):
    """Fencing is off for this test: with it on, the majority powers the
    cut-off host off about a second after it loses quorum (test_lab.py)."""
    promoted, vips, out = crm_state()
    victim = vips["vip2"]
    assert ctl_status(victim)["serving"] == "yes"
    LAB.set_property("stonith-enabled", "false")
    try:
        t0 = time.monotonic()
        assert run("partition", victim).returncode == 0
        wait_for(lambda: ctl_status(victim).get("quorate") == "no", 20, "quorum loss")
        lost = time.monotonic() - t0
        st = ctl_status(victim)
        assert st["serving"] == "no", st
        figure("pool partition", "active host cut off: quorum lost, serving stopped", lost)
    finally:
        assert run("heal", victim).returncode == 0
        wait_for(lambda: ctl_status(victim).get("quorate") == "yes", 30, "quorum back")
        LAB.set_property("stonith-enabled", "true")
    # The pool settles with all its active nodes again.
    wait_for(full_strength, 60, "all promoted instances with their addresses again")


def test_planned_switchover_with_pcs(lab, tmp_path):
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    ready = str(tmp_path / "ready")
    bg = Background("switchover", "198.18.0.51", "198.18.0.52", ready, "20")
    bg.wait_ready(ready)
    sb = run("exec", victim, "pcs", "node", "standby", victim, timeout=60)
    try:
        assert sb.returncode == 0, sb.stderr
        result = bg.join("pool switch-over")
    finally:
        un = run("exec", victim, "pcs", "node", "unstandby", victim, timeout=60)
    assert un.returncode == 0, un.stderr
    assert result["all_acked_in_history_once"] and result["history_in_ack_order"], result
    wait_for(full_strength, 60, "all promoted instances with their addresses again")


def test_partitioned_active_host_is_fenced_and_its_service_recovers(lab):
    """Fencing on (the lab's setting): the majority powers a cut-off active
    host off, a standby is promoted with its address, clients post through
    it; after heal and boot the host is a standby again."""
    wait_for(full_strength, 60, "the pool at full strength")
    promoted, vips, out = crm_state()
    victim = vips["vip2"]
    t0 = LAB.stamp(LAB.run("partition", victim))
    try:
        fenced = wait_for(lambda: LAB.fenced_at(victim, t0), 45, victim + " fenced")
        figure("pool partition+fencing", "cut-off active host fenced", fenced - t0)
        wait_for(lambda: LAB.vips().get("vip2") not in (None, victim)
                 and client("served", "198.18.0.52")["served"], 45,
                 "vip2 served by a promoted standby")
        figure("pool partition+fencing", "its address served by the promoted standby",
               time.time() - t0)
        assert len(LAB.promoted(PCHATD)) == NPROMOTED and victim not in LAB.promoted(PCHATD)
    finally:
        LAB.run("heal", victim, check=False)
    t1 = time.time()
    LAB.run("boot", victim, 60, timeout=90)
    wait_for(lambda: LAB.running_on(PCHATD, victim) and full_strength(), 60,
             "pchatd on %s again, the pool at full strength" % victim)
    figure("pool partition+fencing", "heal + boot: fenced host a standby again", time.time() - t1)


def test_rogue_pool_member_is_ignored(lab):
    """A member speaking another pool protocol version, or sending malformed
    pool messages (tests/lab/pool_intruder.py, straight on libcpg), is
    ignored with a clear log line by every pchatd, none of which restarts,
    and two active nodes still chat in one order."""
    wait_for(full_strength, 60, "the pool at full strength")
    chat = [h for h in LAB.hosts if h.startswith("c")]
    roles = LAB.promoted(PCHATD)
    pids = {h: ctl_status(h)["pid"] for h in chat}
    logs = {h: os.path.join(LAB.dir, "hosts", h, "root", "var", "log", "pchat", "pchatd.log")
            for h in chat}
    sizes = {h: os.path.getsize(logs[h]) for h in chat}
    with open(os.path.join(HERE, "..", "..", "src", "pchatd", "main.c")) as f:
        version = int(re.search(r"#define PC_POOL_PROTOCOL (\d+)", f.read()).group(1))
    sender = chat[-1]
    r = LAB.exec(sender, "/usr/bin/python3", os.path.join(HERE, "pool_intruder.py"),
                 "pchat:pchat", version, timeout=60, check=True)
    sent = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(sent["sent"]) >= 15, sent
    expect = [
        "ignored malformed pool message from=%d" % sent["nodeid"],
        "ignoring node %d: pool protocol version %d, this node speaks %d"
        % (sent["nodeid"], version + 1, version),
        "ignored the rest of a malformed pool message from=%d" % sent["nodeid"],
        "ignored pool message of unknown type",
        "ignored malformed room message",
        "ignored malformed pool event type=",
    ]

    def logged(h):
        with open(logs[h], errors="replace") as f:
            f.seek(sizes[h])
            text = f.read()
        return all(e in text for e in expect), text

    for h in chat:
        wait_for(lambda: logged(h)[0], 15, "the rogue member's messages logged on " + h)
    for h in chat:
        assert ctl_status(h)["pid"] == pids[h], "pchatd on %s restarted" % h
    r = client("chat", "198.18.0.51", "198.18.0.52", "10", "#afterrogue")
    assert r["count"] == 20 and r["same_order"] and r["history_matches"], r
    assert LAB.promoted(PCHATD) == roles, "roles changed"


def test_killed_pchatd_process(lab):
    """SIGKILL of pchatd alone (Corosync and Pacemaker stay): the other
    members drop its users at once (its CPG connection closes) and
    Pacemaker brings the pool back to full strength."""
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    st = ctl_status(victim)
    t0 = time.monotonic()
    k = run("exec", victim, "kill", "-KILL", st["pid"], timeout=30)
    assert k.returncode == 0, k.stderr
    served = client("served", "198.18.0.52")
    assert served["served"], served
    wait_for(lambda: full_strength() and client("served", "198.18.0.51")["served"], 60,
             "the pool back to full strength")
    figure("pool pchatd killed", "service on its address again", time.monotonic() - t0)


def test_killed_active_host_fails_over(lab, tmp_path):
    wait_for(full_strength, 60, "the pool at full strength")
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    killfile = str(tmp_path / "killed")
    bg = Background("failover", "198.18.0.51", "198.18.0.52", killfile, "20")
    bg.wait_ready(killfile + ".ready")
    t_kill = LAB.stamp(LAB.run("kill", victim))
    with open(killfile, "w") as f:
        f.write(repr(t_kill))
    result = bg.join("pool host killed")
    assert result["all_acked_in_history_once"] and result["history_in_ack_order"], result
    assert result["posting_again_other_node_s"] < 5, result
    assert result["posting_again_same_address_s"] < 15, result
    fenced = wait_for(lambda: LAB.fenced_at(victim, t_kill), 30, victim + " fenced")
    figure("pool host killed", "victim fenced", fenced - t_kill)
    wait_for(lambda: len(crm_state()[0]) == NPROMOTED, 30, "a standby promoted")
    promoted, vips, out = crm_state()
    assert victim not in promoted and len(promoted) == NPROMOTED, out
