"""The pchat pool in the cluster lab: chat hosts running pchatd as the
promotable clone ocf:pchat:pchatd (half of them active, one virtual IP
each) and a database host, with lab fencing (tests/lab/up --pchat).
Needs a build of pchat in PCHAT_BUILDDIR (tools/test-all sets it); skips
without root, network namespaces, or a build.
PCHAT_LAB_CHAT=8 runs the full 4 + 4 pool (the longer target)."""
import json
import os
import re
import time
import xml.etree.ElementTree as ET

import pytest

from labutil import HERE, Lab, figure, wait_for as _wait_for

NCHAT = int(os.environ.get("PCHAT_LAB_CHAT", "3"))
NPROMOTED = min(4, (NCHAT + 1) // 2)
PCHATD = "ocf:pchat:pchatd"
LAB = None


def wait_for(pred, secs, what):
    return _wait_for(pred, secs, what, interval=0.2)


def run(*args, timeout=300):
    return LAB.run(*args, timeout=timeout, check=False)


def bin_path(name):
    return LAB.bin(name)


def ctl_status(host):
    return LAB.ctl_status(host)


@pytest.fixture(scope="module")
def lab():
    global LAB
    LAB = Lab.pchat_lab("--chat", NCHAT, "--db", 1)
    yield LAB
    LAB.down()


def crm_state():
    """(promoted hosts, {vip: host}, raw XML) from any host that is up."""
    promoted = LAB.promoted(PCHATD)
    vips = LAB.vips()
    return promoted, vips, str(LAB.crm() is not None)


def client(*args, timeout=180):
    return LAB.client(*args, timeout=timeout)


def full_strength():
    """NPROMOTED promoted pchatd instances, each with its address."""
    promoted, vips, _ = crm_state()
    return len(promoted) == NPROMOTED and sorted(vips.values()) == promoted


def settle(what, secs=60):
    """Waits for the pool at full strength, then for Pacemaker to have no
    action left to run (crm_resource --wait): the next test starts from a
    quiet cluster, not from the middle of a transition."""
    wait_for(full_strength, secs, what)
    h = [x for x in LAB.live_hosts() if x.startswith("c")][0]
    r = LAB.exec(h, "crm_resource", "--wait", "--timeout=%ds" % secs, timeout=secs + 15)
    assert r.returncode == 0, "the cluster did not settle (%s): %s%s" % (what, r.stdout, r.stderr)


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
        # pchatd's own report at the moment it has seen the loss (right
        # after, Pacemaker stops it there: no-quorum-policy=stop).
        st = wait_for(lambda: (lambda st: st if st.get("quorate") == "no" else None)(ctl_status(victim)),
                      20, "quorum loss seen by pchatd on " + victim)
        lost = time.monotonic() - t0
        assert st["serving"] == "no", st
        figure("pool partition", "active host cut off: quorum lost, serving stopped", lost)
    finally:
        assert run("heal", victim).returncode == 0
        wait_for(lambda: LAB.quorate(victim) is True, 30, "quorum back on " + victim)
        LAB.set_property("stonith-enabled", "true")
    # The pool settles with all its active nodes again.
    settle("all promoted instances with their addresses again")


def test_planned_switchover_with_pcs(lab, tmp_path):
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    ready = str(tmp_path / "ready")
    bg = LAB.background("switchover", "198.18.0.51", "198.18.0.52", ready, "20")
    bg.wait_ready(ready)
    sb = run("exec", victim, "pcs", "node", "standby", victim, timeout=60)
    try:
        assert sb.returncode == 0, sb.stderr
        result = bg.join("pool switch-over")
        # Only the standby node's address moved: the other active node
        # kept its own (and its clients their connections).
        after = LAB.vips()
    finally:
        un = run("exec", victim, "pcs", "node", "unstandby", victim, timeout=60)
    assert un.returncode == 0, un.stderr
    assert result["all_acked_in_history_once"] and result["history_in_ack_order"], result
    assert all(after.get(v) == h for v, h in vips.items() if v != "vip1"), (vips, after)
    assert after.get("vip1") not in (None, victim), (vips, after)
    settle("all promoted instances with their addresses again")


def test_partitioned_active_host_is_fenced_and_its_service_recovers(lab):
    """Fencing on (the lab's setting): the majority powers a cut-off active
    host off, a standby is promoted with its address, clients post through
    it; after heal and boot the host is a standby again."""
    settle("the pool at full strength")
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
    pool messages (tests/lab/pool_intruder.py, straight on libcpg, as a
    non-root process of the group pchat), is
    ignored with a clear log line by every pchatd, none of which restarts,
    and two active nodes still chat in one order."""
    settle("the pool at full strength")
    chat = [h for h in LAB.hosts if h.startswith("c")]
    roles = LAB.promoted(PCHATD)
    pids = {h: ctl_status(h)["pid"] for h in chat}
    logs = {h: os.path.join(LAB.dir, "hosts", h, "root", "var", "log", "pchat", "pchatd.log")
            for h in chat}
    sizes = {h: os.path.getsize(logs[h]) for h in chat}
    with open(os.path.join(HERE, "..", "..", "src", "pchatd", "main.c")) as f:
        version = int(re.search(r"#define PC_POOL_PROTOCOL (\d+)", f.read()).group(1))
    sender = chat[-1]
    # Not root: a process of the group pchat may use CPG (ha/corosync's
    # uidgid), as pchatd running as the pchat user does.
    r = LAB.exec(sender, "setpriv", "--reuid=nobody", "--regid=pchat", "--clear-groups",
                 "/usr/bin/python3", os.path.join(HERE, "pool_intruder.py"),
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

    def missing(h):
        with open(logs[h], errors="replace") as f:
            f.seek(sizes[h])
            text = f.read()
        return [e for e in expect if e not in text], text

    end = time.monotonic() + 15
    while any(missing(h)[0] for h in chat) and time.monotonic() < end:
        time.sleep(0.2)
    for h in chat:
        lost, text = missing(h)
        spoken = re.search(r"this node speaks (\d+)", text)
        assert not spoken or int(spoken.group(1)) == version, \
            "pchatd on %s speaks pool protocol %s, the source says %d: rebuild %s" % (
                h, spoken.group(1), version, LAB.env["PCHAT_BUILDDIR"])
        assert not lost, "pchatd on %s did not log %r; its log since the rogue member:\n%s" % (
            h, lost, text[-3000:])
    for h in chat:
        assert ctl_status(h)["pid"] == pids[h], "pchatd on %s restarted" % h
    r = client("chat", "198.18.0.51", "198.18.0.52", "10", "#afterrogue")
    assert r["count"] == 20 and r["same_order"] and r["history_matches"], r
    assert LAB.promoted(PCHATD) == roles, "roles changed"


EMPTY_CIB_WITH_NODES = r"""set -e
cibadmin --empty > FILE
CIB_file=FILE cibadmin --replace --scope nodes --xml-text "$(cibadmin --query --scope nodes)"
CIB_file=FILE cibadmin --replace --scope status --xml-text "$(cibadmin --query --scope status |
    sed -e '/<lrm /,/<\/lrm>/d' -e '/<transient_attributes/,/<\/transient_attributes>/d')"
CIB_file=FILE cibadmin --modify --xml-text '<cib have-quorum="1"/>'
"""


def test_pcs_script_configures_fencing(lab):
    """ha/pcs/pchat-resources' fencing for real hardware, built offline on
    an empty CIB inside a host (where pcs sees the fence agents) and
    checked by crm_verify: one fence_ipmilan device per node, never on the
    node it fences; or one fence_sbd device."""
    h = LAB.hosts[0]
    script = os.path.join(HERE, "..", "..", "ha", "pcs", "pchat-resources")
    chat = [x for x in LAB.hosts if x.startswith("c")]
    common = ["--promoted", "2", "--clones", "3", "--vip-base", "192.0.2.50",
              "--binary", bin_path("pchatd"), "--pchatctl", bin_path("pchatctl"),
              "--config", "/etc/pacemaker/pchatd.conf"]
    ipmi = []
    for i, node in enumerate(chat):
        ipmi += ["--fence-ipmi", "%s=192.0.2.%d" % (node, 101 + i)]
    for kind, opts in (("ipmi", ipmi + ["--ipmi-user", "fence", "--ipmi-password-script",
                                         "/etc/pchat/ipmi-password"]),
                       ("sbd", ["--fence-sbd", "/dev/disk/by-id/lab-sbd"])):
        f = "/tmp/fence-%s.xml" % kind
        # An empty configuration on the cluster's nodes, as they are
        # (online, quorate) but without resources: the addresses' room is
        # set per node, and crm_verify judges the placement.
        LAB.exec(h, "sh", "-c", EMPTY_CIB_WITH_NODES.replace("FILE", f), check=True)
        r = LAB.exec(h, script, "-f", f, *(common + opts), timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        LAB.exec(h, "crm_verify", "-V", "-x", f, check=True)
        x = ET.fromstring(LAB.exec(h, "cat", f, check=True).stdout)
        props = {n.get("name"): n.get("value") for n in x.iter("nvpair")
                 if n.get("id", "").startswith("cib-bootstrap-options")}
        assert props.get("stonith-enabled") == "true", props
        # One address per node by utilization, sticky; no anti-colocation
        # chain between the addresses (it moved healthy nodes' addresses).
        assert props.get("placement-strategy") == "utilization", props
        for n in x.iter("node"):
            room = {a.get("name"): a.get("value") for u in n.iter("utilization") for a in u}
            assert room.get("vips") == "1", (n.get("uname"), room)
        vips = [p for p in x.iter("primitive") if p.get("id", "").startswith("vip")]
        assert len(vips) == 2
        for v in vips:
            meta = {a.get("name"): a.get("value") for m in v.iter("meta_attributes") for a in m}
            use = {a.get("name"): a.get("value") for u in v.iter("utilization") for a in u}
            assert meta.get("resource-stickiness") == "100" and use.get("vips") == "1", (meta, use)
        assert not [c for c in x.iter("rsc_colocation")
                    if c.get("rsc", "").startswith("vip") and c.get("with-rsc", "").startswith("vip")]
        fence = {p.get("id"): p for p in x.iter("primitive") if p.get("class") == "stonith"}
        avoid = {(l.get("rsc"), l.get("node")) for l in x.iter("rsc_location")
                 if l.get("score") == "-INFINITY"}
        if kind == "ipmi":
            assert sorted(fence) == ["fence-" + n for n in chat], sorted(fence)
            for i, node in enumerate(chat):
                attrs = {n.get("name"): n.get("value") for n in fence["fence-" + node].iter("nvpair")}
                assert fence["fence-" + node].get("type") == "fence_ipmilan"
                assert attrs["ip"] == "192.0.2.%d" % (101 + i) and attrs["pcmk_host_list"] == node, attrs
                assert "password_script" in attrs and "password" not in attrs, attrs
                assert ("fence-" + node, node) in avoid, avoid
        else:
            assert list(fence) == ["fence-sbd"] and fence["fence-sbd"].get("type") == "fence_sbd"
    # A bad option is refused with a message, before anything is written.
    r = LAB.exec(h, script, "-f", "/tmp/fence-bad.xml", "--fence-ipmi", "c1", "--ipmi-user", "x",
                 "--ipmi-password-script", "/bin/true", *common)
    assert r.returncode == 2 and "NODE=BMC_ADDRESS" in r.stderr, r.stderr


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
    settle("the pool at full strength")
    promoted, vips, out = crm_state()
    victim = vips["vip1"]
    killfile = str(tmp_path / "killed")
    bg = LAB.background("failover", "198.18.0.51", "198.18.0.52", killfile, "20")
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
