"""Registration, capabilities and chatting between real clients."""
import time

from ircclient import ALL_CAPS, Client


def test_registration_and_isupport(server):
    c = server.client("alice")
    nums = [m.command for m in c.welcome]
    for n in ("001", "002", "003", "004", "005", "251", "422"):
        assert n in nums, nums
    isupport = " ".join(" ".join(m.params[1:-1]) for m in c.welcome if m.command == "005")
    for token in ("CASEMAPPING=rfc1459", "CHATHISTORY=", "UTF8ONLY", "NETWORK=pchat",
                  "MSGREFTYPES=msgid,timestamp", "PREFIX=(ov)@+"):
        assert token in isupport, isupport
    welcome = next(m for m in c.welcome if m.command == "001")
    assert welcome.params[0] == "alice"
    assert welcome.source == "pchat.test"


def test_cap_negotiation(server):
    c = Client(server.port)
    c.send("CAP LS 302")
    ls = c.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
    offered = ls.params[-1].split()
    for cap in ALL_CAPS + ["cap-notify", "multi-prefix", "userhost-in-names"]:
        assert cap in offered
    c.send("CAP REQ :server-time bogus-cap")
    nak = c.expect("CAP")
    assert nak.params[1] == "NAK" and nak.params[-1] == "server-time bogus-cap"
    c.send("CAP REQ :server-time echo-message")
    ack = c.expect("CAP")
    assert ack.params[1] == "ACK"
    c.send("CAP LIST")
    lst = c.expect("CAP")
    assert set(lst.params[-1].split()) >= {"server-time", "echo-message"}
    # Registration waits for CAP END.
    c.send("NICK capper")
    c.send("USER capper 0 * :x")
    assert c.recv_line(0.5) is None
    c.send("CAP END")
    c.expect("001")


def test_two_clients_chat_plain_and_tls(server):
    alice = server.client("alice")
    bob = server.client("bob", tls=True)
    alice.join("#room")
    bob.join("#room")
    alice.expect(lambda m: m.command == "JOIN" and m.nick == "bob")
    alice.send("PRIVMSG #room :hello from plain")
    got = bob.expect("PRIVMSG")
    assert got.params == ["#room", "hello from plain"] and got.nick == "alice"
    bob.send("PRIVMSG #room :hello from tls")
    got = alice.expect("PRIVMSG")
    assert got.params == ["#room", "hello from tls"] and got.nick == "bob"


def test_echo_is_the_acknowledgement(server):
    alice = server.client("alice", ALL_CAPS)
    bob = server.client("bob", ["server-time", "message-tags"])
    alice.join("#ack")
    bob.join("#ack")
    alice.send("@label=L1;+example/thing=x\\sy PRIVMSG #ack :durable")
    echo = alice.expect("PRIVMSG")
    assert echo.tags.get("label") == "L1"
    assert echo.tags.get("+example/thing") == "x y"
    msgid = echo.tags["msgid"]
    assert len(msgid) == 36 and msgid[14] == "7"
    assert echo.tags["time"].endswith("Z")
    # Stored before anyone saw it.
    assert server.query("SELECT body FROM messages WHERE msgid = '%s'" % msgid) == "durable"
    other = bob.expect("PRIVMSG")
    assert other.tags["msgid"] == msgid and "label" not in other.tags
    assert other.tags.get("+example/thing") == "x y"


def test_labeled_ack_and_batch(server):
    c = server.client("alice", ALL_CAPS)
    c.join("#lab")
    c.send("@label=p1 PONG :nothing")
    ack = c.expect(lambda m: m.tags.get("label") == "p1")
    assert ack.command == "ACK"
    c.send("@label=n1 NAMES #lab")
    start = c.expect(lambda m: m.tags.get("label") == "n1")
    assert start.command == "BATCH" and start.params[1] == "labeled-response"
    ref = start.params[0][1:]
    lines = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    inner = [m for m in lines if m.tags.get("batch") == ref]
    assert [m.command for m in inner] == ["353", "366"]
    c.send("@label=w1 WHOIS alice")
    single = c.expect(lambda m: m.tags.get("label") == "w1")
    assert single.command == "BATCH"


def test_notice_and_private_message(server):
    a = server.client("alice", ["echo-message"])
    b = server.client("bob")
    a.join("#n")
    b.join("#n")
    a.send("NOTICE #n :a notice")
    n = b.expect("NOTICE")
    assert n.params == ["#n", "a notice"]
    a.expect("NOTICE")  # echo
    a.send("PRIVMSG bob :just you")
    p = b.expect("PRIVMSG")
    assert p.params == ["bob", "just you"]
    a.send("PRIVMSG nobody :hi")
    assert a.expect("401").params[1] == "nobody"


def test_nick_collision_and_change(server):
    a = server.client("alice")
    b = Client(server.port)
    b.send("NICK ALICE")
    b.send("USER b 0 * :b")
    assert b.expect("433").params[1] == "ALICE"  # rfc1459 casemapping
    b.send("NICK bob")
    b.expect("001")
    a.join("#nc")
    b.join("#nc")
    b.send("NICK robert")
    change = a.expect("NICK")
    assert change.nick == "bob" and change.params == ["robert"]
    b.send("NICK bad!nick")
    assert b.expect("432")


def test_topic_persists_across_restart(server):
    a = server.client("alice")
    a.join("#topic")
    a.send("TOPIC #topic :the persistent topic")
    t = a.expect("TOPIC")
    assert t.params == ["#topic", "the persistent topic"]
    a.close()
    server.restart()
    b = server.client("bob")
    b.send("JOIN #topic")
    got = b.expect("332")
    assert got.params[-1] == "the persistent topic"
    assert b.expect("333").params[2].startswith("alice!")


def test_quit_and_part_are_broadcast(server):
    a = server.client("alice")
    b = server.client("bob")
    a.join("#q")
    b.join("#q")
    b.send("PART #q :bye")
    part = a.expect("PART")
    assert part.nick == "bob" and part.params == ["#q", "bye"]
    b.join("#q")
    b.send("QUIT :gone home")
    q = a.expect("QUIT")
    assert q.nick == "bob" and "gone home" in q.params[0]
    b.expect("ERROR")


def test_many_rooms_and_clients(server):
    clients = [server.client("u%d" % i) for i in range(20)]
    for i, c in enumerate(clients):
        c.join("#r%d" % (i % 4))
    time.sleep(0.2)
    for c in clients:
        c.drain(0.05)
    clients[0].send("PRIVMSG #r0 :to room zero")
    for i, c in enumerate(clients[1:], 1):
        if i % 4 == 0:
            assert c.expect("PRIVMSG").params[1] == "to room zero"
    for i, c in enumerate(clients[1:], 1):
        if i % 4 != 0:
            assert all(m.command != "PRIVMSG" for m in c.drain(0.1))
