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
LAB = lambda *a: [os.path.join(HERE, a[0])] + list(a[1:])  # noqa: E731


def run(*args, timeout=300):
    return subprocess.run(LAB(*args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    run("down")
    t0 = time.monotonic()
    up = run("up", "--chat", "3", timeout=400)
    if up.returncode != 0:
        run("down")
        pytest.fail("tests/lab/up failed:\n" + up.stderr[-3000:])
    print("lab up in %.1f s" % (time.monotonic() - t0))
    yield
    down = run("down")
    assert down.returncode == 0, down.stderr


def crm_state():
    out = run("exec", "c1", "crm_mon", "-1", "-r", timeout=30).stdout
    promoted = re.search(r"Promoted: \[ ([^\]]*) \]", out)
    vips = dict(re.findall(r"(vip\d)\s+\(ocf:heartbeat:IPaddr2\):\s+Started (c\d)", out))
    return (promoted.group(1).split() if promoted else []), vips, out


def client(*args, timeout=180):
    out = subprocess.run(LAB("exec", "client", sys.executable if sys.executable.startswith("/usr/") else "/usr/bin/python3",
                             os.path.join(HERE, "lab_client.py"), *args),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_active_one_standby(lab):
    promoted, vips, out = crm_state()
    assert len(promoted) == 2, out
    assert sorted(vips.values()) == sorted(promoted), out


def test_clients_on_two_active_nodes_chat_in_one_order(lab):
    r = client("chat", "198.18.0.51", "198.18.0.52", "30")
    assert r["collision"] == "433"
    assert r["count"] == 60 and r["same_order"] and r["history_matches"], r


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
    promoted, vips, out = crm_state()
    assert victim not in promoted and len(promoted) == 2, out
