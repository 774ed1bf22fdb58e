"""Channel modes, membership and user queries."""
from ircclient import Client


def setup_pair(server, room):
    op = server.client("op")
    user = server.client("user")
    op.join(room)
    return op, user


def test_key_limit_invite_only(server):
    op, user = setup_pair(server, "#m")
    op.send("MODE #m +k sesame")
    op.expect("MODE")
    user.send("JOIN #m")
    assert user.expect("475").params[1] == "#m"
    user.send("JOIN #m sesame")
    user.expect("366")
    user.send("PART #m")
    user.expect("PART")
    op.send("MODE #m -k *")
    op.expect(lambda m: m.command == "MODE" and m.params[1] == "-k")
    op.send("MODE #m +l 1")
    op.expect("MODE")
    user.send("JOIN #m")
    assert user.expect("471")
    op.send("MODE #m -l+i")
    op.expect("MODE")
    user.send("JOIN #m")
    assert user.expect("473")
    op.send("INVITE user #m")
    assert op.expect("341").params[1:] == ["user", "#m"]
    inv = user.expect("INVITE")
    assert inv.params == ["user", "#m"]
    user.send("JOIN #m")
    user.expect("366")


def test_moderated_and_voice(server):
    op, user = setup_pair(server, "#mod")
    user.join("#mod")
    op.send("MODE #mod +m")
    op.expect("MODE")
    user.send("PRIVMSG #mod :can I talk?")
    assert user.expect("404").params[1] == "#mod"
    op.send("MODE #mod +v user")
    op.expect(lambda m: m.command == "MODE" and m.params[1] == "+v")
    user.send("PRIVMSG #mod :now I can")
    assert op.expect("PRIVMSG").params[1] == "now I can"


def test_no_external_and_topic_lock(server):
    op, user = setup_pair(server, "#nt")
    user.send("PRIVMSG #nt :from outside")
    assert user.expect("404")
    user.join("#nt")
    user.send("TOPIC #nt :my topic")
    assert user.expect("482")
    op.send("MODE #nt +o user")
    op.expect("MODE")
    user.send("TOPIC #nt :my topic")
    assert op.expect("TOPIC").params[1] == "my topic"
    op.send("MODE #nt")
    modes = op.expect("324")
    assert "n" in modes.params[2] and "t" in modes.params[2]


def test_secret_rooms_are_hidden(server):
    op, user = setup_pair(server, "#hidden")
    op.send("MODE #hidden +s")
    op.expect("MODE")
    op.join("#visible")
    user.send("LIST")
    lines = user.collect_until(lambda m: m.command == "323")
    names = [m.params[1] for m in lines if m.command == "322"]
    assert "#visible" in names and "#hidden" not in names
    user.send("NAMES #hidden")
    names = user.collect_until(lambda m: m.command == "366")
    assert all(m.command != "353" for m in names)
    user.send("WHOIS op")
    w = user.collect_until(lambda m: m.command == "318")
    chans = " ".join(m.params[-1] for m in w if m.command == "319")
    assert "#hidden" not in chans and "#visible" in chans


def test_kick(server):
    op, user = setup_pair(server, "#k")
    user.join("#k")
    user.send("KICK #k op")
    assert user.expect("482")
    op.send("KICK #k user :behave")
    k = user.expect("KICK")
    assert k.params == ["#k", "user", "behave"]
    user.send("PRIVMSG #k :back?")
    assert user.expect("404")


def test_away_whois_who_lusers_motd_version(server):
    a = server.client("alice")
    b = server.client("bob")
    a.join("#w")
    b.join("#w")
    b.send("AWAY :lunch")
    b.expect("306")
    a.send("PRIVMSG bob :hi")
    assert a.expect("301").params[1:] == ["bob", "lunch"]
    a.send("WHOIS bob")
    lines = a.collect_until(lambda m: m.command == "318")
    cmds = [m.command for m in lines]
    assert "311" in cmds and "319" in cmds and "301" in cmds
    a.send("WHO #w")
    who = a.collect_until(lambda m: m.command == "315")
    assert sorted(m.params[5] for m in who if m.command == "352") == ["alice", "bob"]
    assert any(m.params[6].startswith("G") for m in who if m.command == "352" and m.params[5] == "bob")
    b.send("AWAY")
    b.expect("305")
    a.send("LUSERS")
    l = a.collect_until(lambda m: m.command == "266")
    assert "There are 2 users" in next(m for m in l if m.command == "251").params[-1]
    a.send("MOTD")
    a.expect("422")
    a.send("VERSION")
    assert a.expect("351").params[1].startswith("pchat-")
    a.send("MODE alice +i")
    assert a.expect("MODE").params == ["alice", "+i"]


def test_operator_only_changes(server):
    op, user = setup_pair(server, "#ops")
    user.join("#ops")
    op.send("NAMES #ops")
    names = op.expect("353").params[-1].split()
    assert sorted(names) == ["@op", "user"]
    for cmd in ("MODE #ops +m", "MODE #ops +o user", "MODE #ops +k k", "KICK #ops op",
                "INVITE someone #ops"):
        user.send(cmd)
        m = user.expect(lambda m: m.command in ("482", "401", "MODE", "KICK", "341"), what=cmd)
        # Inviting a nick that does not exist may be answered 401 first.
        assert m.command in (("482", "401") if cmd.startswith("INVITE") else ("482",)), (cmd, m)
    op.send("MODE #ops")
    assert op.expect("324").params[2] == "+nt"
    # Mode changes reach every member with their parameters.
    op.send("MODE #ops +o user")
    m = user.expect("MODE")
    assert m.nick == "op" and m.params == ["#ops", "+o", "user"]
    op.expect("MODE")
    user.send("MODE #ops -o op")
    m = op.expect("MODE")
    assert m.params == ["#ops", "-o", "op"]
    op.send("MODE #ops +m")
    assert op.expect(lambda m: m.command in ("482", "MODE")).command == "482"
    op.send("NAMES #ops")
    assert sorted(op.expect("353").params[-1].split()) == ["@user", "op"]


def test_list_shows_users_and_topic(server):
    a = server.client("alice")
    b = server.client("bob")
    a.join("#listed")
    b.join("#listed")
    a.send("TOPIC #listed :what we talk about")
    a.expect("TOPIC")
    c = server.client("carol")
    c.send("LIST")
    lines = c.collect_until(lambda m: m.command == "323")
    row = next(m for m in lines if m.command == "322" and m.params[1] == "#listed")
    assert row.params[2] == "2"
    assert "what we talk about" in row.params[3]
    c.send("LIST #listed")
    lines = c.collect_until(lambda m: m.command == "323")
    assert [m.params[1] for m in lines if m.command == "322"] == ["#listed"]
