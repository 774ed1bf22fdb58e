"""TAGMSG and client-only tags (IRCv3 message-tags): typing notifications
and reactions reach, live, the members who asked for message-tags, on this
node and across a pool; nothing of them is stored; clients without the cap
never see them."""
from ircclient import ALL_CAPS

TAGS = ["message-tags", "server-time", "echo-message"]


def tagmsgs(client, timeout=0.3):
    return [m for m in client.drain(timeout) if m.command == "TAGMSG"]


def test_typing_reaches_room_members_with_message_tags(server):
    alice = server.client("alice", TAGS)
    bob = server.client("bob", TAGS)
    carol = server.client("carol")  # no message-tags
    for c in (alice, bob, carol):
        c.join("#t")
    alice.drain(0.2)
    alice.send("@+typing=active TAGMSG #t")
    m = bob.expect("TAGMSG")
    assert m.params == ["#t"]
    assert m.tags["+typing"] == "active"
    assert m.nick == "alice"
    assert "msgid" in m.tags and "time" in m.tags
    # The author gets its echo, with the same msgid.
    echo = alice.expect("TAGMSG")
    assert echo.tags["+typing"] == "active" and echo.tags["msgid"] == m.tags["msgid"]
    # A reaction to a stored message, escaped value passed through as sent.
    alice.send("PRIVMSG #t :hello")
    stored = bob.expect("PRIVMSG")
    bob.send("@+draft/react=thumbs\\sup;+draft/reply=%s TAGMSG #t" % stored.tags["msgid"])
    r = alice.expect("TAGMSG")
    assert r.tags["+draft/react"] == "thumbs up"
    assert r.tags["+draft/reply"] == stored.tags["msgid"]
    # Carol, without message-tags, saw the PRIVMSG but no TAGMSG.
    seen = carol.drain(0.3)
    assert [x.command for x in seen if x.command in ("PRIVMSG", "TAGMSG")] == ["PRIVMSG"]
    # Nothing but the PRIVMSG is in history.
    assert server.query("SELECT count(*) FROM messages") == "1"


def test_tagmsg_without_tags_or_from_outside_is_dropped(server):
    alice = server.client("alice", TAGS)
    bob = server.client("bob", TAGS)
    alice.join("#t")
    alice.drain(0.2)
    # No client-only tag: nothing to relay.
    alice.send("TAGMSG #t")
    # Bob is not in #t (no external messages, +n): silently dropped.
    bob.send("@+typing=active TAGMSG #t")
    bob.ping_roundtrip()
    assert tagmsgs(alice) == []
    assert [m for m in bob.drain(0.2) if m.command in ("404", "FAIL")] == []


def test_private_tagmsg_and_tags_on_private_messages(server):
    alice = server.client("alice", TAGS)
    bob = server.client("bob", TAGS)
    alice.send("@+typing=paused TAGMSG bob")
    m = bob.expect("TAGMSG")
    assert m.params == ["bob"] and m.tags["+typing"] == "paused"
    alice.expect("TAGMSG")  # echo
    # Client-only tags ride on private PRIVMSGs too (a reply to a message).
    alice.send("@+draft/reply=abc PRIVMSG bob :re")
    p = bob.expect("PRIVMSG")
    assert p.tags.get("+draft/reply") == "abc" and p.params == ["bob", "re"]


def test_typing_across_the_pool(pool):
    a, b = pool
    alice = a.client("alicep", TAGS)
    bob = b.client("bobp", TAGS)
    dave = b.client("davep")  # no message-tags, on the same node as bob
    alice.join("#tp")
    bob.join("#tp")
    dave.join("#tp")
    alice.expect(lambda m: m.command == "JOIN" and m.nick == "davep", timeout=5)
    bob.drain(0.2)
    alice.send("@+typing=active TAGMSG #tp")
    m = bob.expect("TAGMSG", timeout=5)
    assert m.tags["+typing"] == "active" and m.nick == "alicep"
    # A private one to a user on the other node.
    bob.send("@+typing=done TAGMSG alicep")
    d = alice.expect(lambda x: x.command == "TAGMSG" and x.params == ["alicep"], timeout=5)
    assert d.tags["+typing"] == "done"
    assert tagmsgs(dave) == []


from test_pool import corosync, pool  # noqa: E402,F401  (the pool fixtures)
