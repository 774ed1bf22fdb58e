"""Accounts and SASL over real connections: PLAIN, SCRAM-SHA-256 (a real
client that checks the server's signature), EXTERNAL with a generated
client certificate, auth.required, failed-login limits, account-tag,
account-notify, extended-join, and bad payloads."""
import base64
import time

import pytest

from accounts import (bind_cert, create_account, login_and_register,
                      make_client_cert, result, sasl_external, sasl_plain,
                      sasl_scram, send_payload, start)


def pre_register(c, nick, caps=("sasl",)):
    """CAP LS / NICK / USER / CAP REQ, registration held by CAP."""
    c.send("CAP LS 302")
    c.send("NICK " + nick)
    c.send("USER %s 0 * :%s real" % (nick, nick))
    c.offered = c.cap_ls()
    c.send("CAP REQ :" + " ".join(caps))
    c.expect(lambda m: m.command == "CAP" and m.params[1] == "ACK")


def finish(c):
    c.send("CAP END")
    welcome = []
    c.expect(lambda m: welcome.append(m) or m.command in ("376", "422"))
    c.nick = welcome[0].params[0]
    return welcome


def test_caps_offered(server):
    c = server.client(register=False)
    c.send("CAP LS 302")
    offered = c.cap_ls()
    assert offered["sasl"] == "PLAIN,SCRAM-SHA-256,EXTERNAL"
    for cap in ("account-tag", "account-notify", "extended-join"):
        assert cap in offered
    assert "soju.im/account-required" not in offered  # auth.required off
    # Without 302 the value is left out.
    c.send("CAP LS")
    assert "sasl" in c.cap_ls()


def test_plain_login_forces_nick(server):
    create_account(server, "Alice", "correct horse")
    c = server.client(register=False)
    pre_register(c, "someone")
    ok, seen = sasl_plain(c, "alice", "correct horse")
    assert ok, seen
    logged = [m for m in seen if m.command == "900"][0]
    assert logged.params[2] == "Alice"
    assert logged.params[1].startswith("Alice!")
    welcome = finish(c)
    assert welcome[0].command == "001" and welcome[0].params[0] == "Alice"
    # WHOIS names the account; NICK to another name is refused (902).
    c.send("WHOIS Alice")
    m = c.expect(lambda m: m.command in ("330", "318"))
    assert m.command == "330" and m.params[2] == "Alice", m
    c.send("NICK other")
    m = c.expect(lambda m: m.command in ("902", "NICK"))
    assert m.command == "902" and "Alice" in m.params[-1]
    # AUTHENTICATE again: already logged in.
    c.send("AUTHENTICATE PLAIN")
    assert c.expect(lambda m: m.command.startswith("90")).command == "907"


def test_plain_bad(server):
    create_account(server, "bob", "right")
    c = server.client(register=False)
    pre_register(c, "bobby")
    ok, seen = sasl_plain(c, "bob", "wrong")
    assert not ok and seen[-1].command == "904"
    ok, seen = sasl_plain(c, "nobody", "right")
    assert not ok and seen[-1].command == "904"
    # Acting as another account is refused.
    ok, seen = sasl_plain(c, "bob", "right", authzid="alice")
    assert not ok
    # Login optional: registration goes on without an account.
    welcome = finish(c)
    assert welcome[0].params[0] == "bobby"
    c.send("WHOIS bobby")
    assert c.expect(lambda m: m.command in ("330", "318")).command == "318"


def test_scram_full_flow(server):
    create_account(server, "carol", "pencil", iterations=4096)
    c = server.client(register=False)
    pre_register(c, "carol")
    ok, seen = sasl_scram(c, "carol", "pencil")
    assert ok, seen
    finish(c)
    assert c.nick == "carol"
    # Wrong password: 904 after the proof (the server-first still came).
    d = server.client(register=False)
    pre_register(d, "x")
    ok, seen = sasl_scram(d, "carol", "pencil2")
    assert not ok and seen[-1].command == "904"
    # Unknown account: the same exchange, failing only at the proof.
    ok, seen = sasl_scram(d, "nobody", "pencil")
    assert not ok and seen[-1].command == "904"


def test_scram_unknown_account_salt_is_stable(server):
    """An unknown name gets a salt too (no account enumeration), the same
    one each time."""
    def salt_of(name):
        c = server.client(register=False)
        pre_register(c, "probe")
        start(c, "SCRAM-SHA-256")
        send_payload(c, ("n,,n=%s,r=abcdefgh" % name).encode())
        m = c.expect("AUTHENTICATE")
        first = base64.b64decode(m.params[0]).decode()
        c.send("AUTHENTICATE *")
        c.expect("906")
        c.close()
        return dict(kv.split("=", 1) for kv in first.split(","))
    a, b = salt_of("ghost"), salt_of("ghost")
    assert a["s"] == b["s"] and a["i"] == "4096"
    assert a["r"] != b["r"]  # fresh server nonce


def test_external(server, workdir):
    cert, key, fp = make_client_cert(workdir, "dave-client")
    create_account(server, "dave", "unused")
    c = server.client(register=False, tls=True)
    c.close()
    from ircclient import Client
    # Not bound yet: refused.
    c = Client(server.tls_port, tls=True, cert=(cert, key))
    pre_register(c, "dave")
    ok, seen = sasl_external(c)
    assert not ok and "not bound" in seen[-1].params[-1]
    c.close()
    bind_cert(server, "dave", fp)
    c = Client(server.tls_port, tls=True, cert=(cert, key))
    pre_register(c, "whoever")
    ok, seen = sasl_external(c)
    assert ok, seen
    finish(c)
    assert c.nick == "dave"
    # An authzid naming another account is refused.
    d = Client(server.tls_port, tls=True, cert=(cert, key))
    pre_register(d, "x")
    ok, seen = sasl_external(d, authzid="alice")
    assert not ok
    # An account whose name cannot be a nick (written by hand) is refused.
    cert2, key2, fp2 = make_client_cert(workdir, "odd-client")
    create_account(server, "odd name", "unused")
    bind_cert(server, "odd name", fp2)
    f = Client(server.tls_port, tls=True, cert=(cert2, key2))
    pre_register(f, "z")
    ok, seen = sasl_external(f)
    assert not ok and "cannot be used as a nick" in seen[-1].params[-1]
    # Without a certificate (plain TCP): refused at once.
    e = server.client(register=False)
    pre_register(e, "y")
    e.send("AUTHENTICATE EXTERNAL")
    m = e.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    assert m.command == "904" and "certificate" in m.params[-1]


def test_disabled_account(server):
    create_account(server, "erin", "pw", disabled=True)
    c = server.client(register=False)
    pre_register(c, "erin")
    ok, seen = sasl_plain(c, "erin", "pw")
    assert not ok and "disabled" in seen[-1].params[-1]
    ok, seen = sasl_scram(c, "erin", "pw")
    assert not ok and "disabled" in seen[-1].params[-1]


def test_auth_required(server_factory):
    server = server_factory(auth__required="yes")
    create_account(server, "frank", "pw")
    # Announced with soju.im/account-required (informational: REQ is NAKed).
    c = server.client(register=False)
    c.send("CAP LS 302")
    assert "soju.im/account-required" in c.cap_ls()
    c.send("CAP REQ :soju.im/account-required")
    assert c.expect("CAP").params[1] == "NAK"
    c.close()
    # No SASL: FAIL ACCOUNT_REQUIRED, ERROR, closed.
    c = server.client(register=False)
    c.send("NICK frank")
    c.send("USER frank 0 * :x")
    m = c.expect(lambda m: m.command in ("FAIL", "001"))
    assert m.command == "FAIL" and m.params[:2] == ["*", "ACCOUNT_REQUIRED"]
    c.expect("ERROR")
    with pytest.raises(EOFError):
        c.expect("001", timeout=3)
    # A failed login then CAP END: refused the same way.
    c = server.client(register=False)
    pre_register(c, "frank")
    ok, _ = sasl_plain(c, "frank", "bad")
    assert not ok
    c.send("CAP END")
    m = c.expect(lambda m: m.command in ("FAIL", "001"))
    assert m.command == "FAIL" and m.params[1] == "ACCOUNT_REQUIRED"
    # With SASL: registered, nick = account, NICK elsewhere refused.
    c = server.client(register=False)
    login_and_register(c, "frank", "pw", mech="SCRAM-SHA-256", nick="guest")
    assert c.nick == "frank"
    c.send("NICK notfrank")
    assert c.expect(lambda m: m.command in ("902", "NICK")).command == "902"
    # A second connection of the same account cannot take the nick.
    d = server.client(register=False)
    pre_register(d, "frank2")
    ok, seen = sasl_plain(d, "frank", "pw")
    assert not ok and "already connected" in seen[-1].params[-1]
    assert any(m.command == "433" for m in d.seen)


def test_cap_end_during_sasl_aborts_it(server):
    """IRCv3 sasl: registration completing while the server waits for the
    client's message aborts the exchange (906); no account."""
    c = server.client(register=False)
    pre_register(c, "quick")
    start(c, "PLAIN")
    welcome = finish(c)
    assert any(m.command == "906" for m in c.seen)
    assert welcome[0].params[0] == "quick"
    c.send("WHOIS quick")
    assert c.expect(lambda m: m.command in ("330", "318")).command == "318"


def test_login_renames_unauthenticated_holder(server):
    create_account(server, "gina", "pw")
    squatter = server.client("gina")
    c = server.client(register=False)
    pre_register(c, "tmp")
    ok, seen = sasl_plain(c, "gina", "pw")
    assert ok, seen
    m = squatter.expect("NICK")
    assert m.nick == "gina" and m.params[0].startswith("Guest")
    finish(c)
    assert c.nick == "gina"


def test_rate_limit_per_address_and_account(server_factory):
    server = server_factory(auth__fail_burst=3, auth__fail_interval_ms=60000)
    create_account(server, "hank", "pw")
    create_account(server, "ivy", "pw")
    from ircclient import Client

    def attempt(source, user, pw):
        c = Client(server.port, source=source)
        pre_register(c, "n" + source.replace(".", ""))
        ok, seen = sasl_plain(c, user, pw)
        c.close()
        return ok, seen[-1].params[-1]

    for _ in range(3):
        ok, text = attempt("127.0.0.2", "hank", "wrong")
        assert not ok and "invalid credentials" in text
    # The address is out of attempts, even with the right password.
    ok, text = attempt("127.0.0.2", "ivy", "pw")
    assert not ok and "too many failed logins for your address" in text
    # The account is too, from anywhere.
    ok, text = attempt("127.0.0.3", "hank", "pw")
    assert not ok and "too many failed logins for this account" in text
    # Another account from another address is unaffected.
    ok, text = attempt("127.0.0.3", "ivy", "pw")
    assert ok, text
    assert "reason=rate-limited" in server.log_text()


def test_account_visibility(server):
    create_account(server, "jack", "pw")
    create_account(server, "kate", "pw")
    watcher = server.client("watcher", caps=("account-tag", "account-notify",
                                              "extended-join", "message-tags"))
    plain = server.client("plainw")
    watcher.join("#acc")
    plain.join("#acc")
    # Logged in before registering: extended JOIN names the account.
    j = server.client(register=False)
    login_and_register(j, "jack", "pw")
    j.join("#acc")
    m = watcher.expect(lambda m: m.command == "JOIN" and m.nick == "jack")
    assert m.params == ["#acc", "jack", "jack real"]
    m = plain.expect(lambda m: m.command == "JOIN" and m.nick == "jack")
    assert m.params == ["#acc"]
    # account-tag on channel messages and private messages.
    j.send("PRIVMSG #acc :hello")
    m = watcher.expect("PRIVMSG")
    assert m.tags.get("account") == "jack"
    m = plain.expect("PRIVMSG")
    assert "account" not in m.tags
    j.send("PRIVMSG watcher :direct")
    m = watcher.expect("PRIVMSG")
    assert m.tags.get("account") == "jack" and m.params[1] == "direct"
    # Not logged in: JOIN with "*", no account tag.
    k = server.client("kate_tmp")
    k.join("#acc")
    m = watcher.expect(lambda m: m.command == "JOIN" and m.nick == "kate_tmp")
    assert m.params[:2] == ["#acc", "*"]
    # Logging in after registration: NICK to the account, then ACCOUNT.
    ok, seen = sasl_plain(k, "kate", "pw")
    assert ok, seen
    m = watcher.expect(lambda m: m.command in ("NICK", "ACCOUNT"))
    assert m.command == "NICK" and m.nick == "kate_tmp" and m.params[0] == "kate"
    m = watcher.expect("ACCOUNT")
    assert m.nick == "kate" and m.params == ["kate"]
    plain.ping_roundtrip()
    assert not [m for m in plain.drain() if m.command == "ACCOUNT"]
    # History replayed to a new member carries the account tag too.
    late = server.client("late", caps=("account-tag", "message-tags",
                                       "server-time"))
    late.send("JOIN #acc")
    m = late.expect(lambda m: m.command == "PRIVMSG" and m.params[1] == "hello")
    assert m.tags.get("account") == "jack"
    # And CHATHISTORY.
    hist = server.client("hist", caps=("account-tag", "message-tags", "batch",
                                       "draft/chathistory"))
    hist.join("#acc")
    msgs = hist.history("LATEST", "#acc", "*", 10)
    hello = [m for m in msgs if m.params[-1] == "hello"]
    assert hello and hello[0].tags.get("account") == "jack", msgs


def test_bad_payloads(server_factory):
    # Malformed messages count as failed logins: allow enough of them.
    server = server_factory(auth__fail_burst=100)
    create_account(server, "lena", "pw")
    c = server.client(register=False)
    pre_register(c, "lena")

    def numeric():
        return c.expect(lambda m: m.command in ("904", "905", "906", "908"))

    # Unknown mechanism: 908 with the list, then 904.
    c.send("AUTHENTICATE DIGEST-MD5")
    m = c.expect(lambda m: m.command in ("908", "904"))
    assert m.command == "908" and m.params[1] == "PLAIN,SCRAM-SHA-256,EXTERNAL"
    assert c.expect("904")
    # Bad base64.
    start(c, "PLAIN")
    c.send("AUTHENTICATE !!!notbase64")
    m = numeric()
    assert m.command == "904" and "base64" in m.params[-1]
    # A line over 400 bytes.
    start(c, "PLAIN")
    c.send("AUTHENTICATE " + "A" * 401)
    assert numeric().command == "905"
    # A message over the reassembly limit (11 full chunks).
    start(c, "PLAIN")
    for _ in range(11):
        c.send("AUTHENTICATE " + "A" * 400)
    assert numeric().command == "905"
    # Abort.
    start(c, "SCRAM-SHA-256")
    c.send("AUTHENTICATE *")
    assert numeric().command == "906"
    # Malformed PLAIN and SCRAM messages.
    start(c, "PLAIN")
    send_payload(c, b"no-nuls-here")
    assert numeric().command == "904"
    for bad in (b"p=tls-unique,,n=lena,r=abc", b"n,,m=x,n=lena,r=abc",
                b"garbage", b"n,,n=le=ZZna,r=abc"):
        start(c, "SCRAM-SHA-256")
        send_payload(c, bad)
        m = numeric()
        assert m.command == "904" and "malformed" in m.params[-1], (bad, m)
    # A client-final that does not continue the exchange.
    start(c, "SCRAM-SHA-256")
    send_payload(c, b"n,,n=lena,r=abcdef")
    c.expect("AUTHENTICATE")
    send_payload(c, b"c=biws,r=wrongnonce,p=" + base64.b64encode(b"x" * 32))
    assert numeric().command == "904"
    # Empty line, "+" before a mechanism.
    c.send("AUTHENTICATE +")
    m = c.expect(lambda m: m.command in ("908", "904"))
    assert m.command == "908"
    c.expect("904")
    # After all that the same connection still logs in, and the server is
    # alive and well.
    ok, seen = sasl_plain(c, "lena", "pw")
    assert ok, seen
    finish(c)
    assert c.nick == "lena"
    c.ping_roundtrip()
    assert server.alive()


def test_chunked_payload(server):
    """Payloads of exactly 400 base64 bytes end with "AUTHENTICATE +";
    longer ones are reassembled."""
    # "\0mona\0" + 294 bytes = 300 bytes = 400 base64 characters.
    exact = "p" * 294
    create_account(server, "mona", exact)
    c = server.client(register=False)
    pre_register(c, "mona")
    ok, seen = sasl_plain(c, "mona", exact)
    assert ok, seen
    # 256 bytes of password: over one chunk, reassembled.
    longer = "q" * 256
    create_account(server, "nina", longer)
    d = server.client(register=False)
    pre_register(d, "nina")
    ok, seen = sasl_plain(d, "nina", longer)
    assert ok, seen


def test_hashing_keeps_the_loop_responsive(server):
    """PBKDF2 runs on the thread pool: a login with a very high iteration
    count does not stall other clients."""
    create_account(server, "olga", "pw", iterations=4000000)
    other = server.client("bystander")
    c = server.client(register=False)
    pre_register(c, "olga")
    start(c, "PLAIN")
    t0 = time.monotonic()
    send_payload(c, b"\0olga\0pw")
    worst = 0.0
    for i in range(10):
        t = time.monotonic()
        other.ping_roundtrip("p%d" % i)
        worst = max(worst, time.monotonic() - t)
    ok, seen = result(c, timeout=60)
    login_s = time.monotonic() - t0
    assert ok, seen
    print("PLAIN with 4M iterations: %.2f s; worst PING meanwhile %.1f ms"
          % (login_s, worst * 1000))
    assert login_s > 0.3, "the hashing should have taken a while"
    # Hashing on the loop would hold the first PING for the whole login;
    # off the loop, PINGs are answered while it runs. Relative, so a slow
    # (sanitizer, loaded) machine does not make it fail by itself.
    assert worst < login_s / 2, "a PING waited %.0f ms of a %.0f ms login" % (
        worst * 1000, login_s * 1000)


from test_pool import corosync, pool  # noqa: E402,F401  (the pool fixtures)


def test_pool_carries_accounts(pool):
    """A user logged in on one node: the other node's clients see the
    account in extended JOIN, account-tag, WHOIS and ACCOUNT."""
    a, b = pool
    create_account(a, "pjack", "pw")
    create_account(a, "pkate", "pw")
    watcher = a.client("pwatch", caps=("account-tag", "account-notify",
                                       "extended-join", "message-tags"))
    watcher.join("#pa")
    j = b.client(register=False)
    login_and_register(j, "pjack", "pw", mech="SCRAM-SHA-256")
    j.join("#pa")
    m = watcher.expect(lambda m: m.command == "JOIN" and m.nick == "pjack",
                       timeout=5)
    assert m.params == ["#pa", "pjack", "pjack real"]
    j.send("PRIVMSG #pa :from b")
    m = watcher.expect("PRIVMSG", timeout=5)
    assert m.tags.get("account") == "pjack"
    watcher.send("WHOIS pjack")
    m = watcher.expect(lambda m: m.command in ("330", "318"))
    assert m.command == "330" and m.params[2] == "pjack"
    # Logging in after registration on node b: ACCOUNT reaches node a.
    k = b.client("pkate")
    k.join("#pa")
    watcher.expect(lambda m: m.command == "JOIN" and m.nick == "pkate",
                   timeout=5)
    ok, seen = sasl_plain(k, "pkate", "pw")
    assert ok, seen
    m = watcher.expect("ACCOUNT", timeout=5)
    assert m.nick == "pkate" and m.params == ["pkate"]
