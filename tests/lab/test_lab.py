"""Smoke test of the cluster lab (tests/lab, docs/lab.md): three chat hosts
with Corosync, Pacemaker, lab fencing and the demo resources (a promotable
Stateful clone, two promoted, one virtual IP per promoted instance).
Measures failure detection, fencing, promotion and address moves, and
prints the figures. Skips only without root or network namespaces.

    /usr/bin/python3 -m pytest tests/lab/test_lab.py
"""
import time

import pytest

from labutil import Lab, figure, skip_unless_possible, wait_for

STATEFUL = "ocf:pacemaker:Stateful"
NCHAT = 3
NPROMOTED = 2
# Bounds for a busy 2-core machine (docs/lab.md has the measured figures).
MEMBERSHIP_S = 15
FAILOVER_S = 45
BOOT_S = 60

state = {}


@pytest.fixture(scope="module")
def lab():
    skip_unless_possible()
    lab = Lab()
    secs = lab.up("--chat", NCHAT, "--demo")
    figure("up", "up --chat 3 --demo (all online, resources settled)", secs)
    yield lab
    figure("down", "down", lab.down())


def settled(lab):
    """The demo at full strength: every powered host online, NPROMOTED
    promoted instances, each with its address."""
    p = lab.promoted(STATEFUL)
    v = lab.vips()
    return lab.online() == sorted(lab.live_hosts()) and len(p) == NPROMOTED \
        and sorted(v.values()) == p


def unpromoted_host(lab):
    p = lab.promoted(STATEFUL)
    return [h for h in lab.live_hosts() if h not in p][0]


def test_all_online_and_quorate(lab):
    assert lab.online() == sorted(lab.hosts)
    for h in lab.hosts:
        assert lab.quorate(h) is True, h
    x = lab.crm()
    fence = [r for r in x.iter("resource") if r.get("resource_agent") == "stonith:fence_lab"]
    assert fence and fence[0].get("role") == "Started", "fence device not started"
    props = lab.exec(lab.hosts[0], "pcs", "property", "config", check=True).stdout
    for p in ("dc-deadtime: 2s", "no-quorum-policy: stop", "stonith-enabled: true",
              "stonith-timeout: 20s"):
        assert p in props, props
    wait_for(lambda: settled(lab), 30, "demo resources settled")
    # Each address answers from the client namespace.
    for k in range(1, NPROMOTED + 1):
        lab.exec("client", "ping", "-c1", "-W2", "198.18.0.%d" % (50 + k), check=True)


def test_partitioned_host_loses_quorum_and_regains_it_after_heal(lab):
    """With fencing on, the majority would power the cut-off host off (next
    test); here fencing is off for the duration, to see the host come back
    by itself."""
    wait_for(lambda: settled(lab), 30, "demo resources settled")
    victim = unpromoted_host(lab)
    others = [h for h in lab.hosts if h != victim]
    lab.set_property("stonith-enabled", "false")
    try:
        t0 = Lab.stamp(lab.run("partition", victim))
        wait_for(lambda: lab.quorate(victim) is False, MEMBERSHIP_S, "quorum lost on " + victim)
        figure("partition", "cut-off host sees quorum lost", time.time() - t0)
        wait_for(lambda: lab.member_status(others[0], lab.nodeid(victim)) != "joined",
                 MEMBERSHIP_S, "the others see %s leave" % victim)
        figure("partition", "the others see a new membership", time.time() - t0)
        assert lab.quorate(others[0]) is True
        t1 = Lab.stamp(lab.run("heal", victim))
        wait_for(lambda: lab.quorate(victim) is True, MEMBERSHIP_S, "quorum back on " + victim)
        figure("partition", "healed host quorate again", time.time() - t1)
        wait_for(lambda: lab.online() == sorted(lab.hosts), 30, "all online again")
        figure("partition", "healed host online in Pacemaker", time.time() - t1)
    finally:
        lab.run("heal", victim, check=False)
        lab.set_property("stonith-enabled", "true")
    assert lab.power(victim) == "on"
    wait_for(lambda: settled(lab), FAILOVER_S, "demo resources settled again")


def test_partitioned_host_is_fenced_and_boots_back(lab):
    """Fencing on (the lab's setting): the majority powers the cut-off host
    off; after heal and boot it is a quorate member again."""
    wait_for(lambda: settled(lab), 30, "demo resources settled")
    victim = unpromoted_host(lab)
    t0 = Lab.stamp(lab.run("partition", victim))
    try:
        wait_for(lambda: lab.quorate(victim) is False or lab.power(victim) == "off",
                 MEMBERSHIP_S, "quorum lost on " + victim)
        if lab.power(victim) == "on":
            figure("partition+fencing", "cut-off host sees quorum lost", time.time() - t0)
        fenced = wait_for(lambda: lab.fenced_at(victim, t0), FAILOVER_S, victim + " fenced")
        figure("partition+fencing", "cut-off host fenced (powered off) by the majority", fenced - t0)
    finally:
        lab.run("heal", victim, check=False)
    t1 = time.time()
    lab.run("boot", victim, BOOT_S, timeout=BOOT_S + 30)
    assert lab.quorate(victim) is True
    wait_for(lambda: lab.online() == sorted(lab.hosts), 30, "all online again")
    figure("partition+fencing", "heal + boot: back online", time.time() - t1)
    wait_for(lambda: settled(lab), FAILOVER_S, "demo resources settled again")


def test_killed_host_fails_over(lab):
    wait_for(lambda: settled(lab), 30, "demo resources settled")
    vips = lab.vips()
    victim = vips["vip1"]
    survivor = [h for h in lab.hosts if h != victim][0]
    state["killed"] = victim
    t0 = Lab.stamp(lab.run("kill", victim))
    wait_for(lambda: lab.member_status(survivor, lab.nodeid(victim)) != "joined", MEMBERSHIP_S,
             "a new membership without " + victim, interval=0.05)
    figure("kill", "new Corosync membership (corosync-cmapctl)", time.time() - t0)
    fenced = wait_for(lambda: lab.fenced_at(victim, t0), FAILOVER_S, victim + " fenced")
    figure("kill", "victim fenced (fence helper log)", fenced - t0)
    wait_for(lambda: len(lab.promoted(STATEFUL)) == NPROMOTED, FAILOVER_S,
             "a Stateful instance promoted elsewhere", interval=0.05)
    figure("kill", "Stateful promoted elsewhere (crm_mon)", time.time() - t0)
    wait_for(lambda: lab.vips().get("vip1") not in (None, victim), FAILOVER_S,
             "vip1 started on another host", interval=0.05)
    figure("kill", "vip1 started on another host (crm_mon)", time.time() - t0)
    wait_for(lambda: lab.exec("client", "ping", "-c1", "-W1", "198.18.0.51").returncode == 0,
             FAILOVER_S, "198.18.0.51 answering")
    figure("kill", "198.18.0.51 answers ping from the client namespace", time.time() - t0)
    wait_for(lambda: settled(lab), FAILOVER_S, "demo resources settled")
    v = lab.vips()
    for vip, host in vips.items():
        if host != victim:
            assert v[vip] == host, "%s moved although its host lived: %s -> %s" % (vip, vips, v)


def test_boot_brings_killed_host_back(lab):
    victim = state.get("killed")
    if victim is None:
        off = [h for h in lab.hosts if lab.power(h) == "off"]
        assert off, "no host was killed (test_killed_host_fails_over did not run?)"
        victim = off[0]
    t0 = time.time()
    lab.run("boot", victim, BOOT_S, timeout=BOOT_S + 30)
    wait_for(lambda: victim in lab.online(), BOOT_S, victim + " online")
    figure("boot", "killed host online again (boot, rejoin)", time.time() - t0)
    wait_for(lambda: lab.running_on(STATEFUL, victim), BOOT_S, "Stateful running on " + victim)
    figure("boot", "killed host running its Stateful instance", time.time() - t0)
    assert lab.quorate(victim) is True
    wait_for(lambda: settled(lab), FAILOVER_S, "demo resources settled")
