"""IRC clients for the lab tests, run inside the lab's client namespace
(tests/lab/exec client python3 tests/lab/lab_client.py SCENARIO ...).
Prints one JSON object with what it saw."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ircclient import ALL_CAPS, Client  # noqa: E402


def connect(ip, nick, caps=ALL_CAPS, timeout=5):
    c = Client(6667, host=ip, timeout=timeout)
    c.register(nick, caps)
    return c


def history(c, room, limit=500):
    c.send("CHATHISTORY LATEST %s * %d" % (room, limit))
    start = c.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    ref = start.params[0][1:]
    lines = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    return [(m.tags["msgid"], m.params[1]) for m in lines if m.command == "PRIVMSG"]


def post_again(ip, nick, room, label, text, within_s, connect_timeout=3, failures=None):
    """Connects (retrying until within_s), joins and posts; returns the
    acknowledged (msgid, text). Why each failed try failed is appended to
    failures (a list) if given."""
    end = time.monotonic() + within_s
    why, tries, first = "", 0, None
    while True:
        tries += 1
        c = None
        try:
            c = Client(6667, host=ip, timeout=connect_timeout)
            c.register(nick, ALL_CAPS)
            c.join(room)
            c.send("@label=%s PRIVMSG %s :%s" % (label, room, text))
            m = c.expect(lambda m: m.tags.get("label") == label, timeout=5)
            if m.command == "PRIVMSG":
                return c, (m.tags["msgid"], m.params[1])
            why = "answered %s %s" % (m.command, " ".join(m.params))
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, str(e)[:300])
            if c is not None and c.seen:
                why += " (earlier lines: %r)" % c.seen[-5:]
        # A try that failed half-way must not keep its nick registered
        # for the next one.
        if c is not None:
            c.close()
        first = first or why
        if failures is not None:
            failures.append(why[:200])
        assert time.monotonic() < end, "could not post %r through %s in %d tries; first: %s; last: %s" % (
            text, ip, tries, first, why)
        time.sleep(0.1)


def post_n(c, room, n):
    """Posts n messages one at a time; their acknowledged (msgid, text)."""
    acked = []
    for i in range(n):
        c.send("PRIVMSG %s :before %d" % (room, i))
        m = c.expect("PRIVMSG", timeout=10)
        acked.append((m.tags["msgid"], m.params[1]))
    return acked


def wait_kill(killfile, secs=60):
    """The epoch time of the kill, once the test has written it."""
    deadline = time.monotonic() + secs
    while True:
        try:
            with open(killfile) as f:
                return float(f.read())
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "the test did not kill within %d s" % secs
        time.sleep(0.01)


def post_elsewhere_then_here(result, t0, acked, other_vip, vip, nick, room):
    """After a node's loss (at t0): nick posts again through the other
    active node, then a client posts through vip once Pacemaker has moved
    it; adds both times, and whether history holds every message in acked
    (extended with the two new ones) once and in order, to result."""
    failed = result["failed_tries_other_node"] = []
    c2, ack = post_again(other_vip, nick, room, "again", "after on the other node", 60,
                         failures=failed)
    acked.append(ack)
    result["posting_again_other_node_s"] = time.time() - t0
    c2.close()
    # Tries through the moved address fail until Pacemaker has moved it.
    moving = []
    c3, ack = post_again(vip, nick + "2", room, "moved", "after on the moved address", 60, 2,
                         failures=moving)
    result["failed_tries_same_address"] = len(moving)
    acked.append(ack)
    result["posting_again_same_address_s"] = time.time() - t0
    hist = history(c3, room)
    result["acked"] = len(acked)
    result["all_acked_in_history_once"] = all(hist.count(x) == 1 for x in acked)
    result["history_in_ack_order"] = [x for x in hist if x in acked] == acked


def scenario_chat(vip1, vip2, n, room="#lab"):
    a = connect(vip1, "alice")
    b = connect(vip2, "bob")
    a.join(room)
    b.join(room)
    a.expect(lambda m: m.command == "JOIN" and m.nick == "bob", timeout=10)
    # A nick used on one node is refused on the other.
    c = Client(6667, host=vip2)
    c.send("NICK alice")
    c.send("USER x 0 * :x")
    collision = c.expect(lambda m: m.command in ("433", "001")).command
    for i in range(n):
        a.send("PRIVMSG %s :a%d" % (room, i))
        b.send("PRIVMSG %s :b%d" % (room, i))
    seen = {}
    for name, cl in (("alice", a), ("bob", b)):
        got = []
        while len(got) < 2 * n:
            m = cl.expect("PRIVMSG", timeout=10)
            got.append((m.tags["msgid"], m.params[1]))
        seen[name] = got
    return {"same_order": seen["alice"] == seen["bob"], "count": len(seen["alice"]),
            "history_matches": history(a, room) == seen["alice"], "collision": collision}


def scenario_failover(victim_vip, other_vip, killfile, n):
    """Posts through victim_vip, waits for the kill (killfile appears),
    then measures how soon the same nick posts again through the other
    active node and through the victim's address (after it moves)."""
    c = connect(victim_vip, "carol")
    watcher = connect(other_vip, "watcher")
    c.join("#fo")
    watcher.join("#fo")
    acked = post_n(c, "#fo", n)
    with open(killfile + ".ready", "w") as f:
        f.write("ready\n")
    t_kill = wait_kill(killfile)
    result = {}
    # The watcher on the surviving node sees carol quit.
    watcher.expect(lambda m: m.command == "QUIT" and m.nick == "carol", timeout=30)
    result["quit_seen_s"] = time.time() - t_kill
    post_elsewhere_then_here(result, t_kill, acked, other_vip, victim_vip, "carol", "#fo")
    return result


def scenario_switchover(vip, other_vip, readyfile, n):
    """Posts through vip until its node is put in standby by the operator,
    then reconnects through the other active node and through the same
    address once it has moved; every acknowledged message must be kept."""
    c = connect(vip, "dora")
    c.join("#sw")
    acked = post_n(c, "#sw", n)
    with open(readyfile, "w") as f:
        f.write("ready\n")
    t0 = time.time()
    # Told to go (ERROR), cut (EOF), or silent (no PONG within 2 s).
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            c.send("PING :alive")
            m = c.expect(lambda m: m.command in ("PONG", "ERROR"), timeout=2)
            if m.command == "ERROR":
                break
            time.sleep(0.2)
        except (EOFError, OSError, AssertionError):
            break
    result = {"disconnected_s": time.time() - t0}
    post_elsewhere_then_here(result, t0, acked, other_vip, vip, "dora", "#sw")
    return result


def scenario_dbfailover(vip1, vip2, killfile, room, n_after):
    """Two writers, one per active node, post labeled messages one at a
    time (each waits for its acknowledgement or refusal) until each has had
    n_after posts sent after the kill (killfile appears, holding the kill's
    epoch time) acknowledged; a post that fails or whose connection
    breaks is retried as a new message after reconnecting. Then checks
    history: every acknowledged message once, in acknowledgement order
    per writer, and no text twice."""
    import threading
    n_after = int(n_after)
    state = {"t_kill": None}
    writers = {}

    def writer(name, ip):
        w = writers[name] = {"acked": [], "failed": 0, "reconnects": 0, "error": None}
        c, k = None, 0
        end = time.monotonic() + 120
        try:
            while time.monotonic() < end:
                t_kill = state["t_kill"]
                if t_kill is not None and sum(1 for a in w["acked"] if a[3] > t_kill) >= n_after:
                    return
                if c is None:
                    try:
                        c = connect(ip, name, timeout=3)
                        c.join(room)
                    except Exception:
                        c = None
                        w["reconnects"] += 1
                        time.sleep(0.2)
                        continue
                k += 1
                text = "%s-%d" % (name, k)
                t_sent = time.time()
                try:
                    c.send("@label=%s%d PRIVMSG %s :%s" % (name, k, room, text))
                    m = c.expect(lambda m: m.tags.get("label") == "%s%d" % (name, k), timeout=20)
                except Exception:
                    c = None
                    w["failed"] += 1
                    continue
                if m.command == "PRIVMSG":
                    w["acked"].append((m.tags["msgid"], m.params[1], time.time(), t_sent))
                else:
                    w["failed"] += 1
                    time.sleep(0.2)
                time.sleep(0.05)
            w["error"] = "not enough posts acknowledged after the kill within 120 s"
        except Exception as e:
            w["error"] = "%s: %s" % (type(e).__name__, e)

    threads = [threading.Thread(target=writer, args=(n, ip)) for n, ip in (("wa", vip1), ("wb", vip2))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not all(len(writers.get(n, {}).get("acked", [])) >= 5 for n in ("wa", "wb")):
        assert time.monotonic() < deadline, "writers not posting: %r" % writers
        time.sleep(0.05)
    with open(killfile + ".ready", "w") as f:
        f.write("ready\n")
    t_kill = state["t_kill"] = wait_kill(killfile)
    for t in threads:
        t.join(timeout=150)
    result = {"errors": [w["error"] for w in writers.values() if w["error"]]}
    acked = [a for w in writers.values() for a in w["acked"]]
    # The outage is each writer's longest wait between two
    # acknowledgements (with only its postmaster killed, the old primary's
    # backends may still commit, synchronously, until its host is fenced):
    # users post again when it ends.
    last_before, first_after, longest = [], [], 0.0
    for w in writers.values():
        times = [a[2] for a in w["acked"]]
        gaps = [(b - a, a, b) for a, b in zip(times, times[1:])]
        if gaps:
            g = max(gaps)
            longest = max(longest, g[0])
            last_before.append(g[1] - t_kill)
            first_after.append(g[2] - t_kill)
    result["outage_s"] = longest
    result["last_ack_before_outage_s"] = min(last_before) if last_before else None
    result["posting_resumed_s"] = max(first_after) if first_after else None
    result["acked"] = len(acked)
    result["acked_after_kill"] = len([a for a in acked if a[3] > t_kill])
    result["failed"] = sum(w["failed"] for w in writers.values())
    result["reconnects"] = sum(w["reconnects"] for w in writers.values())
    c = post_again(vip1, "wreader", room, "r", "reader here", 30)[0]
    hist = history(c, room, 1000)
    ids = [h[0] for h in hist]
    texts = [h[1] for h in hist]
    result["history"] = len(hist)
    result["all_acked_in_history_once"] = all(ids.count(a[0]) == 1 for a in acked)
    result["no_text_twice"] = len(set(texts)) == len(texts)
    result["history_in_ack_order"] = all(
        [x for x in ids if x in {a[0] for a in w["acked"]}] == [a[0] for a in w["acked"]]
        for w in writers.values())
    # What history lacks (only a disaster-recovery promotion, from an
    # asynchronous replica, may lose acknowledged messages), and whether
    # what it has is still in each writer's order.
    present = set(ids)
    result["acked_missing"] = len([a for a in acked if a[0] not in present])
    result["acked_missing_after_kill"] = len(
        [a for a in acked if a[0] not in present and a[3] > t_kill])
    result["present_in_ack_order"] = all(
        [x for x in ids if x in {a[0] for a in w["acked"]}]
        == [a[0] for a in w["acked"] if a[0] in present]
        for w in writers.values())
    return result


def scenario_served(ip):
    """Whether a node accepts and registers a client."""
    try:
        c = connect(ip, "probe%d" % os.getpid(), timeout=2)
        c.ping_roundtrip()
        return {"served": True}
    except Exception as e:
        return {"served": False, "why": str(e)[:200]}


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "chat":
        out = scenario_chat(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:6])
    elif kind == "failover":
        out = scenario_failover(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif kind == "switchover":
        out = scenario_switchover(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif kind == "dbfailover":
        out = scenario_dbfailover(*sys.argv[2:7])
    elif kind == "served":
        out = scenario_served(sys.argv[2])
    else:
        raise SystemExit("unknown scenario")
    print(json.dumps(out))
