"""Persistence and history: nothing acknowledged is lost across restarts,
and history order is live order."""
from ircclient import ALL_CAPS

HISTORY_MAX = 100


def ids_of(msgs):
    return [m.tags["msgid"] for m in msgs]


def test_restart_loses_nothing(server_factory):
    server = server_factory(history__max=HISTORY_MAX)
    a = server.client("alice", ALL_CAPS)
    b = server.client("bob", ALL_CAPS)
    # A third party without echo-message records the live order.
    obs = server.client("obs", ["message-tags", "server-time", "batch"])
    for c in (a, b, obs):
        c.join("#one")
        c.join("#two")
    sent = {"#one": [], "#two": []}
    for i in range(200):
        room = "#one" if i % 3 else "#two"
        sender = a if i % 2 else b
        body = "message %d" % i
        sender.send("PRIVMSG %s :%s" % (room, body))
        echo = sender.expect(lambda m: m.command == "PRIVMSG" and m.params[1] == body)
        assert echo.params[0] == room and echo.tags["time"].endswith("Z")
        sent[room].append((echo.tags["msgid"], body))
    live = {"#one": [], "#two": []}
    for _ in range(200):
        m = obs.expect("PRIVMSG")
        live[m.params[0]].append((m.tags["msgid"], m.params[1]))
    assert live == sent, "live order differs from the acknowledged order"
    for c in (a, b, obs):
        c.close()
    server.restart()

    c = server.client("carol", ALL_CAPS)
    assert c.isupport().get("CHATHISTORY") == str(HISTORY_MAX)
    c.join("#one")
    c.join("#two")
    # LATEST pages backwards: never more than CHATHISTORY= per request.
    for room in ("#one", "#two"):
        pages, ref = [], "*"
        while True:
            if ref == "*":
                got = c.history("LATEST", room, "*", 1000)
            else:
                got = c.history("BEFORE", room, "msgid=" + ref, 1000)
            assert len(got) <= HISTORY_MAX
            if not got:
                break
            pages.insert(0, got)
            ref = got[0].tags["msgid"]
        got = [m for page in pages for m in page]
        assert [(m.tags["msgid"], m.params[1]) for m in got] == sent[room]
        assert all(m.command == "PRIVMSG" and m.params[0] == room for m in got)
        assert all(m.nick in ("alice", "bob") for m in got)
        assert len(set(ids_of(got))) == len(got)
        times = [m.tags["time"] for m in got]
        assert times == sorted(times)

    ids = [mid for mid, _ in sent["#one"]]
    assert len(ids) == 133
    assert ids_of(c.history("LATEST", "#one", "*", 10)) == ids[-10:]
    # BEFORE / AFTER / AROUND / BETWEEN by msgid (exclusive bounds).
    assert ids_of(c.history("BEFORE", "#one", "msgid=" + ids[50], 10)) == ids[40:50]
    assert ids_of(c.history("AFTER", "#one", "msgid=" + ids[50], 10)) == ids[51:61]
    assert ids_of(c.history("AROUND", "#one", "msgid=" + ids[50], 10)) == ids[45:55]
    assert ids_of(c.history("BETWEEN", "#one", "msgid=" + ids[10],
                            "msgid=" + ids[20], 100)) == ids[11:20]
    # BETWEEN with the bounds reversed counts from the later one.
    assert ids_of(c.history("BETWEEN", "#one", "msgid=" + ids[20],
                            "msgid=" + ids[10], 3)) == ids[17:20]
    assert ids_of(c.history("LATEST", "#one", "msgid=" + ids[-5], 100)) == ids[-4:]
    # By timestamp.
    t100 = c.history("AROUND", "#one", "msgid=" + ids[100], 1)[0].tags["time"]
    got = c.history("AFTER", "#one", "timestamp=" + t100, 1000)
    assert got and all(m.tags["time"] > t100 for m in got)
    assert ids_of(got) == ids[ids.index(ids_of(got)[0]):]
    assert got[-1].tags["msgid"] == ids[-1]
    got = c.history("BEFORE", "#one", "timestamp=" + t100, 5)
    assert got and all(m.tags["time"] < t100 for m in got)
    assert ids_of(got) == ids[ids.index(ids_of(got)[0]):][:len(got)]
    # TARGETS lists both rooms, with the time of their latest message.
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
           "timestamp=2100-01-01T00:00:00.000Z 10")
    start, targets = c.collect_batch(lambda m: True)
    assert start.params[1] == "draft/chathistory-targets"
    assert sorted(m.params[1] for m in targets) == ["#one", "#two"]
    assert all(m.command == "CHATHISTORY" and m.params[0] == "TARGETS" for m in targets)
    # Stored exactly once.
    assert server.query("SELECT count(*), count(DISTINCT msgid) FROM messages") == "200|200"


def test_history_errors(server):
    c = server.client("alice", ALL_CAPS)
    c.join("#h")
    c.send("CHATHISTORY LATEST #nope * 10")
    f = c.expect("FAIL")
    assert f.params[:2] == ["CHATHISTORY", "INVALID_TARGET"]
    c.send("CHATHISTORY BEFORE #h bogus=1 10")
    assert c.expect("FAIL").params[1] in ("INVALID_PARAMS", "INVALID_MSGREFTYPE")
    c.send("CHATHISTORY FROBNICATE #h * 10")
    assert c.expect("FAIL").params[1] in ("INVALID_PARAMS", "UNKNOWN_COMMAND")
    c.send("CHATHISTORY LATEST #h")
    assert c.expect(lambda m: m.command in ("FAIL", "461")).command
    # An empty room answers with an empty batch.
    assert c.history("LATEST", "#h", "*", 10) == []
    c.ping_roundtrip()


def test_removed_message_keeps_its_place(server):
    c = server.client("alice", ALL_CAPS)
    c.join("#rm")
    ids = []
    for text in ("one", "two", "three"):
        c.send("PRIVMSG #rm :" + text)
        ids.append(c.expect("PRIVMSG").tags["msgid"])
    server.query("SELECT pchat_message_remove(NULL, '%s')" % ids[1])
    hist = c.history("LATEST", "#rm", "*", 10)
    assert [m.tags["msgid"] for m in hist] == ids
    assert [m.params[1] for m in hist] == [
        "one", "[message removed by an administrator]", "three"]
    # The text is gone from the database, not only hidden.
    assert server.query("SELECT count(*) FROM messages WHERE body = 'two'") == "0"


def test_history_needs_membership_of_secret_rooms(server):
    op = server.client("op", ALL_CAPS)
    op.join("#sec")
    op.send("MODE #sec +s")
    op.expect("MODE")
    op.send("PRIVMSG #sec :secret words")
    op.expect("PRIVMSG")
    spy = server.client("spy", ALL_CAPS)
    spy.send("CHATHISTORY LATEST #sec * 10")
    f = spy.expect(lambda m: m.command in ("FAIL", "BATCH"))
    assert f.command == "FAIL", f
    assert f.params[:3] == ["CHATHISTORY", "INVALID_TARGET", "#sec"]
    # A member reads it.
    assert [m.params[1] for m in op.history("LATEST", "#sec", "*", 10)] == ["secret words"]


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
    assert [m.params for m in msgs] == [["#replay", "old %d" % i] for i in range(3, 8)]
    assert all(m.nick == "alice" for m in msgs)
    times = [m.tags["time"] for m in msgs]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert all(m.command != "PRIVMSG" for m in b.drain(0.3)), "more than history.replay lines"
    # Without server-time the replay comes without tags.
    d = server.client("dave")
    d.send("JOIN #replay")
    d.expect("366")
    plain = [d.expect("PRIVMSG") for _ in range(5)]
    assert [m.params[1] for m in plain] == ["old %d" % i for i in range(3, 8)]
    assert all(not m.raw.startswith("@") for m in plain)
    c = server.client("carol", ALL_CAPS)  # has chathistory: no replay
    c.send("JOIN #replay")
    c.expect("366")
    assert all(m.command != "PRIVMSG" for m in c.drain(0.4))


def test_no_replay_when_disabled(server_factory):
    server = server_factory(history__replay=0)
    a = server.client("alice", ["echo-message"])
    a.join("#quiet")
    a.send("PRIVMSG #quiet :stored")
    a.expect("PRIVMSG")
    b = server.client("bob")
    b.join("#quiet")
    assert all(m.command != "PRIVMSG" for m in b.drain(0.4))
