"""The cluster lab: three chat hosts (Corosync, Pacemaker, pchatd as a
promotable clone, two active) and a database host, in network namespaces.
Run by tools/test-all as root; `tests/lab/up` and `down` also work by hand."""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# PCHAT_LAB_CHAT=8 runs the full 4 + 4 pool (the longer target).
NCHAT = int(os.environ.get("PCHAT_LAB_CHAT", "3"))
NPROMOTED = min(4, (NCHAT + 1) // 2)
HOSTS = ["c%d" % i for i in range(1, NCHAT + 1)]
LAB = lambda *a: [os.path.join(HERE, a[0])] + list(a[1:])  # noqa: E731


def run(*args, timeout=300):
    return subprocess.run(LAB(*args), capture_output=True, text=True, timeout=timeout)


def ctl_status(host):
    out = run("exec", host, "/var/tmp/pchat-lab/bin/pchatctl", "--socket",
              "/run/pchat/pchatd.sock", "status", timeout=30).stdout
    return dict(l.split("=", 1) for l in out.split() if "=" in l)


def wait_for(pred, secs, what):
    end = time.monotonic() + secs
    while not pred():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.2)


def host_ip(h):
    return "198.18.0.%d" % (10 + int(h[1:]))


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    run("down")
    t0 = time.monotonic()
    up = run("up", "--chat", str(NCHAT), timeout=400)
    if up.returncode != 0:
        run("down")
        pytest.fail("tests/lab/up failed:\n" + up.stderr[-3000:])
    print("lab up in %.1f s" % (time.monotonic() - t0))
    yield
    down = run("down")
    assert down.returncode == 0, down.stderr


def crm_state():
    """(promoted hosts, {vip: host}, raw XML) from any host that is up (a
    test may have powered one off)."""
    import xml.etree.ElementTree as ET
    for h in HOSTS:
        r = run("exec", h, "crm_mon", "-1", "--output-as=xml", timeout=30)
        if r.returncode != 0 or "<resources>" not in r.stdout:
            continue
        root = ET.fromstring(r.stdout)
        promoted, vips = [], {}
        for res in root.iter("resource"):
            nodes = [n.get("name") for n in res.findall("node")]
            if res.get("resource_agent") == "ocf:pchat:pchatd" and res.get("role") == "Promoted" \
                    and res.get("active") == "true" and nodes:
                promoted.append(nodes[0])
            if res.get("id", "").startswith("vip") and res.get("role") == "Started" and nodes:
                vips[res.get("id")] = nodes[0]
        return sorted(promoted), vips, r.stdout
    return [], {}, ""


def client(*args, timeout=180):
    out = subprocess.run(LAB("exec", "client", sys.executable if sys.executable.startswith("/usr/") else "/usr/bin/python3",
                             os.path.join(HERE, "lab_client.py"), *args),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    params = ["-o", "binary=/var/tmp/pchat-lab/bin/pchatd", "-o", "pchatctl=/var/tmp/pchat-lab/bin/pchatctl",
              "-o", "config=/etc/pacemaker/test.conf", "-o", "socket=/run/pchat/t.sock",
              "-o", "pidfile=/run/pchat/t.pid", "-o", "logfile=/var/log/pchat/t.log"]
    r = run("exec", "c1", "ocf-tester", "-n", "pchat-test", *params,
            "/usr/lib/ocf/resource.d/pchat/pchatd", timeout=120)
    assert r.returncode == 0 and "passed all tests" in r.stdout, r.stdout + r.stderr
    # validate-all names the bad parameter.
    bad = run("exec", "c1", "env", "OCF_ROOT=/usr/lib/ocf", "OCF_RESKEY_config=/nonexistent.conf",
              "OCF_RESKEY_binary=/var/tmp/pchat-lab/bin/pchatd",
              "OCF_RESKEY_pchatctl=/var/tmp/pchat-lab/bin/pchatctl",
              "/usr/lib/ocf/resource.d/pchat/pchatd", "validate-all", timeout=30)
    assert bad.returncode == 6, (bad.returncode, bad.stdout, bad.stderr)  # OCF_ERR_CONFIGURED
    assert "parameter config" in bad.stderr + bad.stdout


def test_clients_on_two_active_nodes_chat_in_one_order(lab):
    r = client("chat", "198.18.0.51", "198.18.0.52", "30")
    assert r["collision"] == "433"
    assert r["count"] == 60 and r["same_order"] and r["history_matches"], r


def test_partitioned_node_stops_serving(lab):
    promoted, vips, out = crm_state()
    victim = vips["vip2"]
    assert ctl_status(victim)["serving"] == "yes"
    t0 = time.monotonic()
    assert run("partition", victim).returncode == 0
    try:
        wait_for(lambda: ctl_status(victim).get("quorate") == "no", 20, "quorum loss")
        lost = time.monotonic() - t0
        st = ctl_status(victim)
        assert st["serving"] == "no", st
        print("partitioned %s: quorum lost and serving stopped after %.2f s" % (victim, lost))
    finally:
        assert run("partition", "--heal", victim).returncode == 0
    wait_for(lambda: ctl_status(victim).get("quorate") == "yes", 30, "quorum back")
    # The pool settles with two active nodes again.
    wait_for(lambda: len(crm_state()[0]) == NPROMOTED and len(crm_state()[1]) == NPROMOTED, 60,
             "two promoted instances with their addresses")


def test_planned_switchover_with_pcs(lab, tmp_path):
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    ready = str(tmp_path / "ready")
    result = {}

    def drive():
        result.update(client("switchover", "198.18.0.51", "198.18.0.52", ready, "20"))

    t = threading.Thread(target=drive)
    t.start()
    wait_for(lambda: os.path.exists(ready) or not t.is_alive(), 60, "client ready")
    sb = run("exec", victim, "pcs", "node", "standby", victim, timeout=60)
    try:
        assert sb.returncode == 0, sb.stderr
        t.join(timeout=200)
        assert not t.is_alive()
    finally:
        un = run("exec", victim, "pcs", "node", "unstandby", victim, timeout=60)
    print("switch-over of %s: %s" % (victim, json.dumps(result)))
    assert un.returncode == 0, un.stderr
    assert result["all_acked_in_history_once"] and result["history_in_ack_order"], result
    wait_for(lambda: len(crm_state()[0]) == NPROMOTED and len(crm_state()[1]) == NPROMOTED, 60,
             "two promoted instances again")


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
    wait_for(lambda: len(crm_state()[0]) == NPROMOTED and len(crm_state()[1]) == NPROMOTED
             and client("served", "198.18.0.51")["served"], 60, "the pool back to full strength")
    print("pchatd killed on %s: service on its address again after %.2f s"
          % (victim, time.monotonic() - t0))


def test_killed_active_host_fails_over(lab, tmp_path):
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    killfile = str(tmp_path / "killed")
    result = {}

    def drive():
        result.update(client("failover", "198.18.0.51", "198.18.0.52", killfile, "20"))

    t = threading.Thread(target=drive)
    t.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(killfile + ".ready"):
        assert time.monotonic() < deadline and t.is_alive(), "client did not get ready"
        time.sleep(0.05)
    t_kill = time.time()
    k = run("kill", victim)
    assert k.returncode == 0, k.stderr
    with open(killfile, "w") as f:
        f.write(repr(t_kill))
    t.join(timeout=200)
    assert not t.is_alive()
    print("failover of %s: %s" % (victim, json.dumps(result)))
    assert result["all_acked_in_history_once"] and result["history_in_ack_order"], result
    assert result["posting_again_other_node_s"] < 5, result
    assert result["posting_again_same_address_s"] < 15, result
    wait_for(lambda: len(crm_state()[0]) == NPROMOTED, 30, "a standby promoted")
    promoted, vips, out = crm_state()
    assert victim not in promoted and len(promoted) == NPROMOTED, out
