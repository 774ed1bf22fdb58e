"""Persistence and history: nothing acknowledged is lost across restarts,
and history order is live order."""
import time

from ircclient import ALL_CAPS


def collect_batch(c, start_pred):
    start = c.expect(start_pred)
    ref = start.params[0][1:]
    lines = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    return start, [m for m in lines if m.tags.get("batch") == ref]


def history(c, *args):
    c.send("CHATHISTORY " + " ".join(str(a) for a in args))
    start, msgs = collect_batch(c, lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    assert start.params[1] == "chathistory"
    return msgs


def test_restart_loses_nothing(server):
    a = server.client("alice", ALL_CAPS)
    b = server.client("bob", ALL_CAPS)
    a.join("#one")
    a.join("#two")
    b.join("#one")
    b.join("#two")
    sent = {"#one": [], "#two": []}
    for i in range(200):
        room = "#one" if i % 3 else "#two"
        sender = a if i % 2 else b
        sender.send("PRIVMSG %s :message %d" % (room, i))
        echo = sender.expect(lambda m: m.command == "PRIVMSG" and m.params[1] == "message %d" % i)
        sent[room].append((echo.tags["msgid"], "message %d" % i))
    # Live order equals send order, as seen by a third party.
    live = [m.params[1] for m in a.seen + a.drain(0.3) if m.command == "PRIVMSG" and m.params[0] == "#one"]
    a.close()
    b.close()
    server.restart()

    c = server.client("carol", ALL_CAPS)
    c.join("#one")
    c.join("#two")
    for room in ("#one", "#two"):
        got = history(c, "LATEST", room, "*", 500)
        assert [(m.tags["msgid"], m.params[1]) for m in got] == sent[room]
        assert len({m.tags["msgid"] for m in got}) == len(got)
    one_bodies = [b for _, b in sent["#one"]]
    assert [x for x in live if x in one_bodies] == [x for x in one_bodies if x in live]

    ids = [mid for mid, _ in sent["#one"]]
    # BEFORE / AFTER / AROUND / BETWEEN by msgid.
    got = history(c, "BEFORE", "#one", "msgid=" + ids[50], 10)
    assert [m.tags["msgid"] for m in got] == ids[40:50]
    got = history(c, "AFTER", "#one", "msgid=" + ids[50], 10)
    assert [m.tags["msgid"] for m in got] == ids[51:61]
    got = history(c, "AROUND", "#one", "msgid=" + ids[50], 10)
    assert [m.tags["msgid"] for m in got] == ids[45:55]
    got = history(c, "BETWEEN", "#one", "msgid=" + ids[10], "msgid=" + ids[20], 100)
    assert [m.tags["msgid"] for m in got] == ids[11:20]
    got = history(c, "BETWEEN", "#one", "msgid=" + ids[20], "msgid=" + ids[10], 3)
    assert [m.tags["msgid"] for m in got] == ids[17:20]
    got = history(c, "LATEST", "#one", "msgid=" + ids[-5], 100)
    assert [m.tags["msgid"] for m in got] == ids[-4:]
    # By timestamp: everything after the 100th message's time.
    t100 = history(c, "AROUND", "#one", "msgid=" + ids[100], 1)[0].tags["time"]
    got = history(c, "AFTER", "#one", "timestamp=" + t100, 500)
    assert got and all(m.tags["time"] > t100 for m in got)
    assert got[-1].tags["msgid"] == ids[-1]
    # TARGETS lists both rooms.
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
    start, targets = collect_batch(c, lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    assert start.params[1] == "draft/chathistory-targets"
    assert sorted(m.params[1] for m in targets) == ["#one", "#two"]
    # Stored exactly once.
    assert server.query("SELECT count(*), count(DISTINCT msgid) FROM messages") == "200|200"


def test_history_errors(server):
    c = server.client("alice", ALL_CAPS)
    c.join("#h")
    c.send("CHATHISTORY LATEST #nope * 10")
    f = c.expect("FAIL")
    assert f.params[:2] == ["CHATHISTORY", "INVALID_TARGET"]
    c.send("CHATHISTORY BEFORE #h bogus=1 10")
    assert c.expect("FAIL").params[1] == "INVALID_PARAMS"
    c.send("CHATHISTORY FROBNICATE #h * 10")
    assert c.expect("FAIL").params[1] == "INVALID_PARAMS"


def test_replay_on_join_without_chathistory(server_factory):
    server = server_factory(history__replay=5)
    a = server.client("alice", ["echo-message"])
    a.join("#replay")
    for i in range(8):
        a.send("PRIVMSG #replay :old %d" % i)
        a.expect("PRIVMSG")
    b = server.client("bob", ["server-time"])
    b.send("JOIN #replay")
    b.expect("366")
    msgs = [b.expect("PRIVMSG") for _ in range(5)]
    assert [m.params[1] for m in msgs] == ["old %d" % i for i in range(3, 8)]
    assert all("time" in m.tags for m in msgs)
    c = server.client("carol", ALL_CAPS)  # has chathistory: no replay
    c.send("JOIN #replay")
    c.expect("366")
    assert all(m.command != "PRIVMSG" for m in c.drain(0.4))
