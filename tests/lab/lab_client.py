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


def post_again(ip, nick, room, label, text, within_s, connect_timeout=3):
    """Connects (retrying until within_s), joins and posts; returns the
    acknowledged (msgid, text)."""
    end = time.monotonic() + within_s
    why, tries = "", 0
    while True:
        tries += 1
        try:
            c = connect(ip, nick, timeout=connect_timeout)
            c.join(room)
            c.send("@label=%s PRIVMSG %s :%s" % (label, room, text))
            m = c.expect(lambda m: m.tags.get("label") == label, timeout=5)
            if m.command == "PRIVMSG":
                return c, (m.tags["msgid"], m.params[1])
            why = "answered %s %s" % (m.command, " ".join(m.params))
            c.close()
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, str(e)[:300])
        assert time.monotonic() < end, "could not post %r through %s in %d tries; last: %s" % (
            text, ip, tries, why)
        time.sleep(0.1)


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
    acked = []
    for i in range(n):
        c.send("PRIVMSG #fo :before %d" % i)
        m = c.expect("PRIVMSG", timeout=10)
        acked.append((m.tags["msgid"], m.params[1]))
    with open(killfile + ".ready", "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + 60
    while not os.path.exists(killfile):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t_kill = float(open(killfile).read())
    result = {}
    # The watcher on the surviving node sees carol quit.
    q = watcher.expect(lambda m: m.command == "QUIT" and m.nick == "carol", timeout=30)
    result["quit_seen_s"] = time.time() - t_kill
    # Reconnect to the surviving active node with the same nick, and post.
    c2, ack = post_again(other_vip, "carol", "#fo", "again", "after on the other node", 30)
    acked.append(ack)
    result["posting_again_other_node_s"] = time.time() - t_kill
    c2.close()
    # The victim's own address, once Pacemaker has moved it.
    c3, ack = post_again(victim_vip, "carol2", "#fo", "moved", "after on the moved address", 60, 2)
    acked.append(ack)
    result["posting_again_same_address_s"] = time.time() - t_kill
    hist = history(c3, "#fo")
    result["acked"] = len(acked)
    result["all_acked_in_history_once"] = all(hist.count(x) == 1 for x in acked)
    result["history_in_ack_order"] = [x for x in hist if x in acked] == acked
    return result


def scenario_switchover(vip, other_vip, readyfile, n):
    """Posts through vip until its node is put in standby by the operator,
    then reconnects through the other active node and through the same
    address once it has moved; every acknowledged message must be kept."""
    c = connect(vip, "dora")
    c.join("#sw")
    acked = []
    for i in range(n):
        c.send("PRIVMSG #sw :before %d" % i)
        m = c.expect("PRIVMSG", timeout=10)
        acked.append((m.tags["msgid"], m.params[1]))
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
    c2, ack = post_again(other_vip, "dora", "#sw", "x", "after on the other node", 60)
    acked.append(ack)
    result["posting_again_other_node_s"] = time.time() - t0
    c2.close()
    c3, ack = post_again(vip, "dora", "#sw", "y", "after on the moved address", 60, 2)
    acked.append(ack)
    result["posting_again_same_address_s"] = time.time() - t0
    hist = history(c3, "#sw")
    result["all_acked_in_history_once"] = all(hist.count(x) == 1 for x in acked)
    result["history_in_ack_order"] = [x for x in hist if x in acked] == acked
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
    elif kind == "served":
        out = scenario_served(sys.argv[2])
    else:
        raise SystemExit("unknown scenario")
    print(json.dumps(out))
