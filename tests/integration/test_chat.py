"""Registration, capabilities and chatting between real clients."""
import socket
import ssl
import time
import warnings

import pytest

from ircclient import ALL_CAPS, Client, tls_context


def test_registration_and_isupport(server):
    c = server.client("alice")
    nums = [m.command for m in c.welcome]
    for n in ("001", "002", "003", "004", "005", "251", "422"):
        assert n in nums, nums
    tokens = c.isupport()
    assert tokens.get("CASEMAPPING") == "rfc1459", tokens
    assert tokens.get("CHATHISTORY") == "500", tokens  # history.max default
    assert "UTF8ONLY" in tokens and tokens["UTF8ONLY"] == ""
    assert tokens.get("NETWORK") == "pchat"
    assert tokens.get("MSGREFTYPES") == "msgid,timestamp"
    assert tokens.get("PREFIX") == "(ov)@+"
    assert tokens.get("CHANTYPES") == "#"
    assert tokens.get("NICKLEN") == "30"
    # Every 005 line ends with the usual trailing text, at most 13 tokens.
    for m in c.welcome:
        if m.command == "005":
            assert m.params[-1] == "are supported by this server"
            assert 1 <= len(m.params) - 2 <= 13
    welcome = next(m for m in c.welcome if m.command == "001")
    assert welcome.params[0] == "alice"
    assert welcome.source == "pchat.test"
    assert next(m for m in c.welcome if m.command == "004").params[1] == "pchat.test"


def test_isupport_follows_configuration(server_factory):
    server = server_factory(server__network="ExampleNet", history__max=42,
                            limits__nick_len=12, limits__channel_len=20)
    c = server.client("alice")
    tokens = c.isupport()
    assert tokens["NETWORK"] == "ExampleNet"
    assert tokens["CHATHISTORY"] == "42"
    assert tokens["NICKLEN"] == "12"
    assert tokens["CHANNELLEN"] == "20"
    c.send("NICK " + "n" * 13)
    assert c.expect(lambda m: m.command in ("432", "NICK")).command == "432"
    c.send("JOIN #" + "c" * 20)
    assert c.expect(lambda m: m.command in ("479", "403", "JOIN")).command != "JOIN"
    c.ping_roundtrip()


def test_pass_and_registration_order(server):
    # PASS is accepted (and ignored); USER before NICK works too.
    c = Client(server.port)
    c.send("PASS secret")
    c.send("USER u 0 * :real name")
    c.send("NICK ordered")
    c.expect("001")
    c.expect(lambda m: m.command in ("376", "422"))
    c.send("WHOIS ordered")
    w = c.expect("311")
    assert w.params[1] == "ordered" and w.params[-1] == "real name"


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
    assert bob.sock.version() in ("TLSv1.2", "TLSv1.3")
    # Non-ASCII text crosses intact both ways.
    bob.send("PRIVMSG #room :caf\u00e9 \u2713")
    assert alice.expect("PRIVMSG").params[1] == "caf\u00e9 \u2713"


def test_tls_before_1_2_is_refused(server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = old_tls_context()
    s = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError)):
            t = ctx.wrap_socket(s)
            t.close()
    finally:
        s.close()
    # The listener is unharmed.
    server.client("modern", tls=True).ping_roundtrip()


def tls_session(ctx, port, session=None):
    """Registers over TLS (resuming session if given), returns the
    connection's session and whether it was resumed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, session=session) as s:
            s.sendall(b"NICK tix\r\nUSER tix 0 * :t\r\n")
            data = b""
            while b" 001 " not in data:  # a TLS 1.3 ticket arrives before
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            return s.session, s.session_reused


def test_session_tickets_follow_the_setting(server_factory):
    # Off by default: a ticket costs every handshake 14% more server CPU.
    ctx = tls_context()
    off = server_factory()
    sess, _ = tls_session(ctx, off.tls_port)
    assert not sess.has_ticket
    on = server_factory(tls__session_tickets="yes")
    sess, reused = tls_session(ctx, on.tls_port)
    assert sess.has_ticket and not reused
    _, reused = tls_session(ctx, on.tls_port, sess)
    assert reused


def test_registration_not_held_by_delayed_acks(server):
    # A client with Nagle on (Python's default, like most clients) that
    # writes NICK and USER separately sends USER only once NICK is ACKed;
    # pchatd ACKs a connection's first reads at once instead of letting the
    # kernel wait 40 ms for something to answer with.
    ctx = tls_context()
    times = []
    for i, tls in enumerate([False, True] * 4):
        raw = socket.create_connection(("127.0.0.1", server.tls_port if tls else server.port),
                                       timeout=5)
        t0 = time.monotonic()
        s = ctx.wrap_socket(raw) if tls else raw
        s.sendall(b"NICK nagle%d\r\n" % i)
        s.sendall(b"USER n 0 * :n\r\n")
        data = b""
        while b" 001 " not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        times.append(time.monotonic() - t0)
        s.close()
    times.sort()
    assert times[len(times) // 2] < 0.025, times


def old_tls_context():
    ctx = tls_context()
    # Let the client itself offer TLS 1.0/1.1 (OpenSSL 3 needs level 0).
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


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


def test_room_messages_are_delivered_in_seq_order_across_a_gap(server):
    # A message that reaches the room's history without passing through
    # this server's delivery (here: stored by another writer of the same
    # database) leaves a gap in the seqs it has delivered. The next post
    # waits for the gap, which is read back from the database, so members
    # hear every message in order: nothing is skipped as "already
    # delivered". (After a lost database connection, the retry of a post
    # whose outcome was unknown can be answered after a later post: the
    # same gap.)
    alice = server.client("alice", ALL_CAPS)
    bob = server.client("bob", ["server-time", "message-tags"])
    alice.join("#gap")
    bob.join("#gap")
    alice.send("@label=a1 PRIVMSG #gap :one")
    assert alice.expect(lambda m: m.tags.get("label") == "a1").command == "PRIVMSG"
    assert bob.expect("PRIVMSG").params[1] == "one"
    server.query(
        "SELECT seq FROM pchat_post(ARRAY[gen_random_uuid()],"
        " ARRAY[(SELECT id FROM rooms WHERE name = '#gap')],"
        " ARRAY[(extract(epoch FROM now()) * 1000)::bigint], ARRAY[0::smallint],"
        " ARRAY['carol!~carol@elsewhere'], ARRAY[NULL::text], ARRAY['two'], ARRAY[''])")
    alice.send("@label=a3 PRIVMSG #gap :three")
    echo = alice.expect(lambda m: m.tags.get("label") == "a3", timeout=10)
    assert echo.command == "PRIVMSG" and echo.params[1] == "three"
    got = [bob.expect("PRIVMSG", timeout=10) for _ in range(2)]
    assert [m.params[1] for m in got] == ["two", "three"], got
    assert got[0].source.startswith("carol!")
    # The author heard the stored message too, before its own.
    assert [m.params[1] for m in alice.seen if m.command == "PRIVMSG"] == ["two"]


def test_commands_after_a_creating_join_wait_for_it(server):
    # A client (or a bot) that sends JOIN and its first message at once: the
    # room is created in the database while the PRIVMSG is already read, and
    # the PRIVMSG must find it, not hear 403.
    alice = server.client("alice", ["echo-message"])
    alice.send_raw(b"JOIN #brandnew,#another\r\nPRIVMSG #brandnew :first words\r\n"
                   b"PRIVMSG #another :second\r\n")
    seen = alice.collect_until(lambda m: m.command == "PRIVMSG" and m.params[0] == "#another")
    assert all(m.command not in ("403", "404", "442", "FAIL") for m in seen), seen
    bodies = [m.params[1] for m in seen if m.command == "PRIVMSG"]
    assert bodies == ["first words", "second"], seen
    # A JOIN that is refused still lets the lines after it run.
    alice.send_raw(b"JOIN #" + b"x" * 80 + b"\r\nPRIVMSG #brandnew :after\r\n")
    assert alice.expect("PRIVMSG").params[1] == "after"
    assert server.query("SELECT count(*) FROM messages") == "3"


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
    c.send("@label=who1 WHO #lab")
    start, inner = c.collect_batch(lambda m: m.tags.get("label") == "who1")
    assert start.params[1] == "labeled-response"
    assert [m.command for m in inner] == ["352", "315"]
    assert inner[0].params[5] == "alice"
    # A command with exactly one line of output: the line itself is labeled.
    c.send("@label=t1 PING :single")
    pong = c.expect(lambda m: m.tags.get("label") == "t1")
    assert pong.command == "PONG" and pong.params[-1] == "single"
    # Errors are labeled too.
    c.send("@label=e1 FROBNICATE")
    err = c.expect(lambda m: m.tags.get("label") == "e1")
    assert err.command == "421"
    # Without a label: no ACK and no batch.
    c.send("PONG :x")
    c.send("NAMES #lab")
    lines = c.collect_until(lambda m: m.command == "366")
    assert all(m.command not in ("ACK", "BATCH") for m in lines)
    # A label on a message to a channel comes back on the echo only.
    c.send("@label=m1 PRIVMSG #lab :labeled")
    echo = c.expect("PRIVMSG")
    assert echo.tags.get("label") == "m1" and echo.tags.get("msgid")


def test_notice_and_private_message(server):
    a = server.client("alice", ["echo-message"])
    b = server.client("bob")
    a.join("#n")
    b.join("#n")
    a.send("NOTICE #n :a notice")
    n = b.expect("NOTICE")
    assert n.params == ["#n", "a notice"] and n.nick == "alice"
    echo = a.expect("NOTICE")  # echo
    assert echo.params == ["#n", "a notice"]
    # A channel NOTICE is stored like a PRIVMSG, and private ones flow too.
    assert server.query("SELECT count(*) FROM messages WHERE body = 'a notice'") == "1"
    a.send("NOTICE bob :private notice")
    assert b.expect("NOTICE").params == ["bob", "private notice"]
    a.send("PRIVMSG bob :just you")
    p = b.expect("PRIVMSG")
    assert p.params == ["bob", "just you"]
    a.send("PRIVMSG nobody :hi")
    assert a.expect("401").params[1] == "nobody"


def test_notice_gets_no_error_replies(server):
    """RFC 2812 3.3.2: servers MUST NOT send any error reply back to the
    client on receipt of a NOTICE (Modern IRC says the same)."""
    a = server.client("alice")
    a.send("NOTICE nobody :into the void")
    a.send("NOTICE #nowhere :into the void")
    a.ping_roundtrip("after-notice")
    errors = [m for m in a.seen if m.command.isdigit() and m.command >= "400"]
    assert not errors, errors


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


def test_topic_and_modes_persist_across_restart(server):
    a = server.client("alice")
    a.join("#topic")
    a.send("TOPIC #topic :the persistent topic")
    t = a.expect("TOPIC")
    assert t.params == ["#topic", "the persistent topic"] and t.nick == "alice"
    a.send("TOPIC #topic")
    assert a.expect("332").params[1:] == ["#topic", "the persistent topic"]
    a.send("MODE #topic +k sesame")
    a.expect("MODE")
    a.join("#notopic")
    a.close()
    server.restart()

    b = server.client("bob")
    b.send("JOIN #topic")
    assert b.expect(lambda m: m.command in ("475", "JOIN")).command == "475"
    b.send("JOIN #topic sesame")
    got = b.expect("332")
    assert got.params[1:] == ["#topic", "the persistent topic"]
    w = b.expect("333")
    assert w.params[1] == "#topic" and w.params[2].split("!")[0] == "alice"
    assert abs(int(w.params[3]) - time.time()) < 120
    b.expect("366")
    b.send("TOPIC #topic")
    assert b.expect("332").params[1:] == ["#topic", "the persistent topic"]
    b.send("MODE #topic")
    modes = b.expect("324")
    assert "k" in modes.params[2] and "t" in modes.params[2]
    # +t survived: a member without operator status may not change it.
    c = server.client("carol")
    c.join("#topic", "sesame")
    c.send("TOPIC #topic :not an operator")
    assert c.expect(lambda m: m.command in ("482", "TOPIC")).command == "482"
    # A room without topic answers 331.
    c.send("TOPIC #notopic")
    assert c.expect(lambda m: m.command in ("331", "332", "403", "442")).command == "331"


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


def test_motd_from_file(server_factory, tmp_path):
    motd = tmp_path / "motd.txt"
    motd.write_text("Welcome to the test server\nsecond line \u2713\n")
    server = server_factory(server__motd_file=str(motd))
    c = server.client("alice")
    nums = [m.command for m in c.welcome]
    assert "375" in nums and nums[-1] == "376" and "422" not in nums
    text = [m.params[-1] for m in c.welcome if m.command == "372"]
    assert any("Welcome to the test server" in t for t in text)
    assert any("second line \u2713" in t for t in text)
    c.send("MOTD")
    lines = c.collect_until(lambda m: m.command in ("376", "422"))
    assert [m.command for m in lines] == ["375", "372", "372", "376"]


def test_idle_client_is_pinged_then_dropped(server_factory):
    server = server_factory(limits__ping_interval_ms=1000, limits__ping_timeout_ms=1000)
    lazy = server.client("lazy")
    alive = server.client("alive")
    lazy.join("#idle")
    alive.join("#idle")
    t0 = time.monotonic()
    # recv_line does not answer PINGs: lazy never answers.
    ping = None
    while ping is None and time.monotonic() - t0 < 4:
        m = lazy.recv_line(4)
        if m is not None and m.command == "PING":
            ping = m
    assert ping is not None, "no PING after limits.ping_interval_ms"
    # alive answers (expect() replies to PINGs) and stays.
    q = alive.expect(lambda m: m.command == "QUIT" and m.nick == "lazy", timeout=5)
    assert "timeout" in q.params[-1].lower()
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 5, elapsed
    try:
        err = lazy.expect("ERROR", timeout=2)
        assert "timeout" in err.params[-1].lower()
    except EOFError:
        pass
    alive.ping_roundtrip("still")
    time.sleep(1.5)
    alive.ping_roundtrip("still-after-interval")
