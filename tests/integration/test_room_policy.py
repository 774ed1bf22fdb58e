"""The room policy over real IRC connections against a real database
(issue #3, "How it is shown"): for every room type (normal, auditorium) and
privacy (open, closed, secret), and every kind of principal, every
operation that touches a room gives exactly the answer docs/room-model.md
says. The model is set up with the admin SQL functions (0004_admin.sql),
as pchatctl does. One server for the module; one connection per kind,
reused."""
import time

import pytest

from accounts import create_account, login_and_register
from conftest import Server
from test_pool import corosync, pool  # noqa: F401 (fixtures)

PASSWORD = "pw-for-tests"
CAPS = ("echo-message", "batch", "server-time")

# Kinds of principal and the account that plays each (None: not logged in).
KINDS = {
    "allowed": "allowed",      # in group staff, allowed in the category
    "denied": "denied",        # in group staff, but denied by account
    "member": "member",        # a member of every room (not allowed)
    "manager": "manager",      # a manager of every room
    "presenter": "presenter",  # a presenter of every room (group stage)
    "creator": "creator",      # in staff and a creator of the category
    "outsider": "outsider",    # an account nothing names
    "admin": "boss",           # an administrator nothing names
    "anon": None,              # not logged in
}

ROOMS = [(t, p) for t in ("normal", "auditorium") for p in ("open", "closed", "secret")]


def room_name(rtype, privacy):
    return "#%s-%s" % (rtype[0], privacy)


# The expected rights: s(ee), j(oin; also history and replay on join),
# m(anage), p(ost once joined). One row per room, one column per kind.
EXPECT = {
    #                     allowed denied member manager presenter creator outsider admin anon
    ("normal", "open"):     ("sjp", "", "sjp", "sjmp", "sjp", "sjp", "", "sjmp", ""),
    ("normal", "closed"):   ("s",   "", "sjp", "sjmp", "sjp", "s",   "", "sjmp", ""),
    ("normal", "secret"):   ("",    "", "sjp", "sjmp", "sjp", "",    "", "sjmp", ""),
    ("auditorium", "open"):   ("sj", "", "sj", "sjmp", "sjp", "sj", "", "sjmp", ""),
    ("auditorium", "closed"): ("s",  "", "sj", "sjmp", "sjp", "s",  "", "sjmp", ""),
    ("auditorium", "secret"): ("",   "", "sj", "sjmp", "sjp", "",   "", "sjmp", ""),
}


def rights(kind, rtype, privacy):
    return EXPECT[(rtype, privacy)][list(KINDS).index(kind)]


def sql_setup(server):
    for name in ("allowed", "denied", "member", "manager", "presenter",
                 "creator", "outsider"):
        create_account(server, name, PASSWORD)
    for name in ("boss", "keeper"):
        create_account(server, name, PASSWORD, admin=True)
    q = [
        "SELECT pchat_group_create(NULL, 'staff', 'everyone at work')",
        "SELECT pchat_group_create(NULL, 'stage', 'speakers')",
        "SELECT pchat_group_add(NULL, 'staff', 'allowed')",
        "SELECT pchat_group_add(NULL, 'staff', 'denied')",
        "SELECT pchat_group_add(NULL, 'staff', 'creator')",
        "SELECT pchat_group_add(NULL, 'stage', 'presenter')",
        "SELECT pchat_category_create(NULL, 'eng', 'Engineering')",
        "SELECT pchat_category_grant(NULL, 'eng', 'allowed', 'group:staff')",
        "SELECT pchat_category_grant(NULL, 'eng', 'denied', 'denied')",
        "SELECT pchat_category_grant(NULL, 'eng', 'creator', 'creator')",
    ]
    for rtype, privacy in ROOMS:
        r = room_name(rtype, privacy)
        q += [
            "SELECT pchat_room_create(NULL, '%s', 'eng', '%s', '%s', 'a room')"
            % (r, rtype, privacy),
            "SELECT pchat_room_grant(NULL, '%s', 'member', 'member')" % r,
            "SELECT pchat_room_grant(NULL, '%s', 'manager', 'manager')" % r,
            "SELECT pchat_room_grant(NULL, '%s', 'presenter', 'group:stage')" % r,
            "SELECT pchat_room_set(NULL, '%s', 'topic', 'topic of %s')" % (r, r),
        ]
    server.query("; ".join(q))


def login(server, account, caps=CAPS):
    c = server.client(register=False)
    login_and_register(c, account, PASSWORD, caps=caps)
    return c


def wait_listed(c, names, timeout=10):
    """LIST until every room in names is there (the model reaches pchatd by
    NOTIFY, a moment after the SQL commits)."""
    end = time.monotonic() + timeout
    while True:
        c.send("LIST")
        got = {m.params[1] for m in c.collect_until(lambda m: m.command == "323")
               if m.command == "322"}
        if set(names) <= got:
            return
        assert time.monotonic() < end, "rooms %r never listed (got %r)" % (names, got)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def world(workdir, postgres, tls_cert):
    server = Server(workdir, postgres, tls_cert, {})
    sql_setup(server)
    keeper = login(server, "keeper")
    wait_listed(keeper, [room_name(t, p) for t, p in ROOMS])
    # The keeper (an administrator) stays in every room, so NAMES and WHO
    # have someone to show, and leaves one message to find in history.
    for rtype, privacy in ROOMS:
        r = room_name(rtype, privacy)
        keeper.join(r)
        keeper.send("PRIVMSG %s :seed of %s" % (r, r))
        keeper.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == r)
    clients = {}
    for kind, account in KINDS.items():
        if account is None:
            clients[kind] = server.client("anon", caps=CAPS)
        else:
            clients[kind] = login(server, account)
    sink = server.client("sink")
    yield server, keeper, clients, sink
    for c in list(clients.values()) + [keeper, sink]:
        c.close()
    server.stop()


def reply(c, line, commands, what):
    """Sends line and returns the first reply whose command is in commands."""
    c.send(line)
    return c.expect(lambda m: m.command in commands, what=what)


def check_room(c, kind, rtype, privacy, keeper):
    """Every operation on one room for one connection; returns the list of
    mismatches (empty when all is as expected)."""
    r = room_name(rtype, privacy)
    exp = rights(kind, rtype, privacy)
    see, join, manage, post = ("s" in exp, "j" in exp, "m" in exp, "p" in exp)
    bad = []

    def want(cond, what):
        if not cond:
            bad.append("%s %s: %s" % (kind, r, what))

    # LIST: listed exactly to those who may see it.
    c.send("LIST")
    listed = {m.params[1] for m in c.collect_until(lambda m: m.command == "323")
              if m.command == "322"}
    want((r in listed) == see, "LIST shows it: %s" % (r in listed))

    # TOPIC and MODE queries: 403 (like a missing room) unless seen.
    m = reply(c, "TOPIC " + r, ("331", "332", "403", "442"), "TOPIC " + r)
    want(m.command == ("332" if see else "403"), "TOPIC query -> %s" % m.command)
    m = reply(c, "MODE " + r, ("324", "403", "482"), "MODE " + r)
    want(m.command == ("324" if see else "403"), "MODE query -> %s" % m.command)
    if m.command == "324":
        modes = m.params[2]
        want(("m" in modes) == (rtype == "auditorium"), "+m shown: %s" % modes)
        want(("s" in modes) == (privacy == "secret"), "+s shown: %s" % modes)
        want(("i" in modes) == (privacy != "open"), "+i shown: %s" % modes)

    # NAMES and WHO: the members (the keeper) only to those who may see.
    c.send("NAMES " + r)
    lines = c.collect_until(lambda m: m.command == "366")
    want(any(m.command == "353" for m in lines) == see, "NAMES lists members")
    c.send("WHO " + r)
    lines = c.collect_until(lambda m: m.command == "315")
    want(any(m.command == "352" for m in lines) == see, "WHO lists members")

    # PRIVMSG from outside: 404 (+n) if seen, else 403.
    m = reply(c, "PRIVMSG %s :from outside" % r, ("403", "404", "PRIVMSG"), "PRIVMSG")
    want(m.command == ("404" if see else "403"), "PRIVMSG outside -> %s" % m.command)

    # JOIN: 366 and the replay of history; 473 seen but members only;
    # 403 not seen.
    c.send("JOIN " + r)
    m = c.expect(lambda m: m.command in ("366", "403", "473", "474")
                 and m.params[1].lower() == r, what="JOIN " + r)
    joined = m.command == "366"
    want(m.command == ("366" if join else "473" if see else "403"),
         "JOIN -> %s" % m.command)
    if joined:
        # Replay on join (no chathistory cap): the seed message.
        c.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == r
                 and m.params[1] == "seed of " + r, what="replay of " + r)

    # PRIVMSG once joined: delivered (echo) if one may post, else 404.
    if joined:
        text = "hello from %s" % kind
        c.send("PRIVMSG %s :%s" % (r, text))
        m = c.expect(lambda m: m.command == "404" or (
            m.command == "PRIVMSG" and m.params == [r, text]), what="post")
        want(m.command == ("PRIVMSG" if post else "404"), "post -> %s" % m.command)
        if m.command == "PRIVMSG":
            keeper.expect(lambda m: m.command == "PRIVMSG" and m.params == [r, text])

    # TOPIC change, MODE change, KICK: managers only (482), 442 if seen
    # but not joined, 403 if not seen.
    def gate(cmd, ok):
        if not see:
            return "403"
        if not joined:
            return "442" if cmd != "MODE" else "482"
        return ok if manage else "482"

    m = reply(c, "TOPIC %s :topic of %s" % (r, r), ("TOPIC", "403", "442", "482"), "TOPIC set")
    want(m.command == gate("TOPIC", "TOPIC"), "TOPIC set -> %s" % m.command)
    m = reply(c, "MODE %s +l 99" % r, ("MODE", "403", "482"), "MODE +l")
    want(m.command == gate("MODE", "MODE"), "MODE +l -> %s" % m.command)
    if m.command == "MODE":
        reply(c, "MODE %s -l" % r, ("MODE",), "MODE -l")
    m = reply(c, "KICK %s nobody" % r, ("441", "403", "442", "482"), "KICK")
    want(m.command == gate("KICK", "441"), "KICK -> %s" % m.command)

    # INVITE: managers, or anyone in an open room; the category allows it.
    m = reply(c, "INVITE sink %s" % r, ("341", "403", "442", "482"), "INVITE")
    if see and joined and privacy == "open":
        expected = "341"
    else:
        expected = gate("INVITE", "341")
    want(m.command == expected, "INVITE -> %s" % m.command)

    # CHATHISTORY: readable exactly by those who may join.
    c.send("CHATHISTORY LATEST %s * 50" % r)
    m = c.expect(lambda m: (m.command == "BATCH" and m.params[0].startswith("+"))
                 or m.command == "FAIL", what="CHATHISTORY " + r)
    if m.command == "BATCH":
        ref = m.params[0][1:]
        lines = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
        texts = [x.params[1] for x in lines if x.command == "PRIVMSG"]
        want(join and "seed of " + r in texts, "CHATHISTORY gives %r" % texts)
    else:
        want(not join and m.params[1] == "INVALID_TARGET",
             "CHATHISTORY -> %s" % " ".join(m.params))

    if joined:
        c.send("PART " + r)
        c.expect(lambda m: m.command == "PART" and m.params[0] == r)
    c.ping_roundtrip()
    return bad


def test_permission_matrix(world):
    """Every kind of principal x every room type and privacy x every
    operation (the table EXPECT above)."""
    server, keeper, clients, sink = world
    bad = []
    checks = 0
    start = time.monotonic()
    for rtype, privacy in ROOMS:
        for kind, c in clients.items():
            bad += check_room(c, kind, rtype, privacy, keeper)
            checks += 1
    assert not bad, "\n".join(bad)
    assert checks == len(ROOMS) * len(KINDS)
    print("matrix: %d room x kind cases in %.1f s" % (checks, time.monotonic() - start))


# Changes take effect at once for connected users.

def make_room(server, keeper, name, rtype="normal", privacy="open", category="eng"):
    server.query("SELECT pchat_room_create(NULL, '%s', '%s', '%s', '%s', '')"
                 % (name, category, rtype, privacy))
    wait_listed(keeper, [name])


def join_soon(c, room, timeout=5):
    """JOIN until it works: a change reaches pchatd by NOTIFY, a moment
    after its SQL commits."""
    deadline = time.monotonic() + timeout
    while True:
        c.send("JOIN " + room)
        m = c.expect(lambda m: m.command in ("366", "403", "473", "474")
                     and m.params[1] == room)
        if m.command == "366":
            return
        assert time.monotonic() < deadline, "cannot join %s: %r" % (room, m)
        time.sleep(0.05)


def parted(c, room, reason):
    m = c.expect(lambda m: m.command == "PART" and m.params[0] == room
                 and m.nick == c.nick, what="PART from " + room)
    assert m.params[1] == reason, m


def test_roles_are_prefixes(world):
    server, keeper, clients, sink = world
    for kind in ("manager", "presenter", "member"):
        clients[kind].join("#a-open")
    c = clients["member"]
    c.send("NAMES #a-open")
    names = set(c.expect("353").params[-1].split())
    assert {"@manager", "+presenter", "member", "@keeper"} <= names, names
    # In a normal room a presenter has no voice: only managers are marked.
    for kind in ("manager", "presenter", "member"):
        clients[kind].send("PART #a-open")
        clients[kind].join("#n-open")
    c.send("NAMES #n-open")
    names = set(c.expect("353").params[-1].split())
    assert {"@manager", "presenter", "member"} <= names, names
    for kind in ("manager", "presenter", "member"):
        clients[kind].send("PART #n-open")
        clients[kind].expect("PART")


def test_revoke_and_group_changes_part_at_once(world):
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-closed", privacy="closed")
    out = clients["outsider"]
    out.send("JOIN #dyn-closed")
    assert out.expect(lambda m: m.command in ("366", "403")).command == "403"
    server.query("SELECT pchat_room_grant(NULL, '#dyn-closed', 'member', 'outsider')")
    join_soon(out, "#dyn-closed")
    server.query("SELECT pchat_room_revoke(NULL, '#dyn-closed', 'member', 'outsider')")
    t0 = time.monotonic()  # psql has returned: committed
    parted(out, "#dyn-closed", "You may no longer be in this room")
    print("revoke committed -> PART received: %.1f ms" % ((time.monotonic() - t0) * 1000))
    out.send("JOIN #dyn-closed")
    assert out.expect(lambda m: m.command in ("366", "403")).command == "403"

    # A group change: outsider joins staff, may join the open room, leaves
    # the group and is parted.
    server.query("SELECT pchat_group_add(NULL, 'staff', 'outsider')")
    join_soon(out, "#n-open")
    server.query("SELECT pchat_group_remove(NULL, 'staff', 'outsider')")
    parted(out, "#n-open", "You may no longer be in this room")


def test_disabled_room(world):
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-off")
    member, boss = clients["allowed"], clients["admin"]
    member.join("#dyn-off")
    server.query("SELECT pchat_room_set(NULL, '#dyn-off', 'disabled', 'true')")
    parted(member, "#dyn-off", "Room disabled by an administrator")
    member.send("JOIN #dyn-off")
    assert member.expect(lambda m: m.command in ("366", "403", "474")).command == "403"
    boss.send("JOIN #dyn-off")
    m = boss.expect(lambda m: m.command in ("366", "403", "474"))
    assert m.command == "474" and "disabled" in m.params[-1], m
    # Listed to administrators only.
    boss.send("LIST")
    assert "#dyn-off" in [m.params[1] for m in boss.collect_until(
        lambda m: m.command == "323") if m.command == "322"]
    member.send("LIST")
    assert "#dyn-off" not in [m.params[1] for m in member.collect_until(
        lambda m: m.command == "323") if m.command == "322"]


def test_mode_o_is_a_persistent_role(world):
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-ops")
    server.query("SELECT pchat_room_grant(NULL, '#dyn-ops', 'manager', 'manager')")
    allowed, boss, mgr = clients["allowed"], clients["admin"], clients["manager"]
    boss.join("#dyn-ops")
    allowed.join("#dyn-ops")
    boss.send("MODE #dyn-ops +o allowed")
    m = allowed.expect(lambda m: m.command == "MODE" and m.params[1:] == ["+o", "allowed"])
    assert m.nick == "pchat.test", m  # the server's, once the role is stored
    assert server.query(
        "SELECT count(*) FROM room_principals rp JOIN rooms r ON r.id = rp.room_id"
        " JOIN accounts a ON a.id = rp.account_id WHERE r.name = '#dyn-ops'"
        " AND rp.role = 'manager' AND a.name = 'allowed'") == "1"
    # The role outlives the connection: a new login is op again.
    allowed.send("PART #dyn-ops")
    allowed.expect("PART")
    allowed.join("#dyn-ops")
    allowed.send("NAMES #dyn-ops")
    assert "@allowed" in allowed.expect("353").params[-1].split()
    # Managers may not make managers (only administrators may).
    join_soon(mgr, "#dyn-ops")
    mgr.send("MODE #dyn-ops +o boss")
    m = mgr.expect(lambda m: m.command in ("482", "MODE"))
    assert m.command == "482" and "administrators" in m.params[-1], m
    boss.send("MODE #dyn-ops -o allowed")
    allowed.expect(lambda m: m.command == "MODE" and m.params[1:] == ["-o", "allowed"])
    assert server.query(
        "SELECT count(*) FROM room_principals rp JOIN rooms r ON r.id = rp.room_id"
        " WHERE r.name = '#dyn-ops' AND rp.role = 'manager'") == "1"  # manager only
    for c in (allowed, mgr, boss):
        c.send("PART #dyn-ops")
        c.expect("PART")


def test_room_command(world):
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-room", privacy="closed")
    server.query("SELECT pchat_room_grant(NULL, '#dyn-room', 'manager', 'manager')")
    mgr, allowed, out, anon = (clients[k] for k in ("manager", "allowed", "outsider", "anon"))
    join_soon(mgr, "#dyn-room")  # the grant has arrived

    def ask(c, line, cmds=("NOTE", "FAIL", "482", "403")):
        c.send(line)
        return c.expect(lambda m: m.command in cmds, what=line)

    m = ask(mgr, "ROOM #dyn-room INFO")
    assert m.command == "NOTE" and m.params[:3] == ["ROOM", "INFO", "#dyn-room"], m
    assert '"privacy": "closed"' in m.params[-1] and "account:manager" in m.params[-1], m
    m = ask(mgr, "ROOM #dyn-room MEMBER ADD outsider")
    assert m.command == "NOTE" and m.params[1] == "OK", m
    join_soon(out, "#dyn-room")  # a member of a closed room now
    m = ask(mgr, "ROOM #dyn-room SET description :A room for tests")
    assert m.command == "NOTE" and m.params[1] == "OK", m
    assert server.query("SELECT description FROM rooms WHERE name = '#dyn-room'") \
        == "A room for tests"
    m = ask(mgr, "ROOM #dyn-room SET privacy hidden")
    assert m.command == "FAIL" and m.params[1] == "INVALID_PARAMS", m
    m = ask(mgr, "ROOM #dyn-room MANAGER ADD outsider")
    assert m.command == "482", m
    m = ask(mgr, "ROOM #dyn-room FROB")
    assert m.command == "FAIL" and m.params[1] == "INVALID_PARAMS", m
    # Not a manager: 482; cannot see it: 403, like a missing room.
    assert ask(allowed, "ROOM #dyn-room INFO").command == "482"
    assert ask(anon, "ROOM #dyn-room INFO").command == "403"
    assert ask(clients["denied"], "ROOM #dyn-room INFO").command == "403"
    assert ask(mgr, "ROOM #nowhere INFO").command == "403"
    # Secret: allowed no longer sees it; removing outsider parts them.
    m = ask(mgr, "ROOM #dyn-room SET privacy secret")
    assert m.command == "NOTE" and m.params[1] == "OK", m
    deadline = time.monotonic() + 5
    while True:
        allowed.send("LIST")
        names = [m.params[1] for m in allowed.collect_until(
            lambda m: m.command == "323") if m.command == "322"]
        if "#dyn-room" not in names:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    m = ask(mgr, "ROOM #dyn-room MEMBER DEL outsider")
    assert m.command == "NOTE" and m.params[1] == "OK", m
    parted(out, "#dyn-room", "You may no longer be in this room")
    m = ask(mgr, "ROOM #dyn-room MEMBER DEL outsider")
    assert m.command == "FAIL" and m.params[1] == "NOT_FOUND", m


def test_creation_by_join_is_for_creators(world):
    server, keeper, clients, sink = world
    # Narrow the default category: only 'creator' creates rooms by JOIN.
    server.query("SELECT pchat_category_revoke(NULL, 'default', 'creator', 'anyone');"
                 " SELECT pchat_category_grant(NULL, 'default', 'creator', 'creator')")
    try:
        time.sleep(0.3)
        anon, creator = clients["anon"], clients["creator"]
        anon.send("JOIN #made-by-anon")
        assert anon.expect(lambda m: m.command in ("366", "403")).command == "403"
        assert server.query("SELECT count(*) FROM rooms WHERE name = '#made-by-anon'") == "0"
        creator.join("#made")
        creator.send("NAMES #made")
        assert "@creator" in creator.expect("353").params[-1].split()
        assert server.query(
            "SELECT a.name FROM room_principals rp JOIN rooms r ON r.id = rp.room_id"
            " JOIN accounts a ON a.id = rp.account_id WHERE r.name = '#made'"
            " AND rp.role = 'manager'") == "creator"
        # The creator manages it: the ROOM command works for them.
        creator.send("ROOM #made SET type auditorium")
        m = creator.expect(lambda m: m.command in ("NOTE", "FAIL", "482"))
        assert m.command == "NOTE", m
    finally:
        server.query("SELECT pchat_category_revoke(NULL, 'default', 'creator', 'creator');"
                     " SELECT pchat_category_grant(NULL, 'default', 'creator', 'anyone')")


def test_history_follows_the_category(world):
    server, keeper, clients, sink = world
    server.query("SELECT pchat_category_create(NULL, 'quiet', '');"
                 " SELECT pchat_category_grant(NULL, 'quiet', 'allowed', 'authenticated');"
                 " SELECT pchat_category_set(NULL, 'quiet', 'history_kept', 'false')")
    make_room(server, keeper, "#quiet", category="quiet")
    keeper.join("#quiet")
    keeper.send("PRIVMSG #quiet :not for later")
    keeper.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "#quiet")
    c, boss = clients["outsider"], clients["admin"]
    c.join("#quiet")
    # CHATHISTORY (after the replay would have been sent, since the
    # database answers in order) is refused, and no replay came.
    c.send("CHATHISTORY LATEST #quiet * 10")
    m = c.expect(lambda m: m.command == "FAIL" or (
        m.command == "PRIVMSG" and m.params[0] == "#quiet"))
    assert m.command == "FAIL" and m.params[1] == "INVALID_TARGET", m
    # Administrators always may.
    boss.send("CHATHISTORY LATEST #quiet * 10")
    m = boss.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    ref = m.params[0][1:]
    lines = boss.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    assert "not for later" in [x.params[1] for x in lines if x.command == "PRIVMSG"]


def test_pool_creation_and_changes_reach_every_node(pool):
    """In a pool, a room created by JOIN on one node has its manager on the
    other, and a change made on one node parts the other node's users
    (each node hears NOTIFY pchat_acl from the database)."""
    a, b = pool
    create_account(a, "cre", PASSWORD)
    create_account(a, "out", PASSWORD)
    cre = Client_login(a, "cre")
    out = Client_login(b, "out")
    cre.join("#pooled")
    cre.send("NAMES #pooled")
    assert "@cre" in cre.expect("353").params[-1].split()
    out.join("#pooled")
    out.send("NAMES #pooled")
    assert set(out.expect("353").params[-1].split()) == {"@cre", "out"}
    cre.send("ROOM #pooled SET privacy closed")
    m = cre.expect(lambda m: m.command in ("NOTE", "FAIL", "482"))
    assert m.command == "NOTE" and m.params[1] == "OK", m
    parted(out, "#pooled", "You may no longer be in this room")
    out.send("JOIN #pooled")
    assert out.expect(lambda m: m.command in ("366", "403", "473")).command == "473"
    cre.expect(lambda m: m.command == "PART" and m.nick == "out")


def Client_login(server, account):
    return login(server, account)


def test_deleted_room_parts_and_is_forgotten(world):
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-del")
    allowed = clients["allowed"]
    allowed.join("#dyn-del")
    server.query("SELECT pchat_room_delete(NULL, '#dyn-del')")
    parted(allowed, "#dyn-del", "Room deleted by an administrator")
    keeper.send("LIST")
    assert "#dyn-del" not in [m.params[1] for m in keeper.collect_until(
        lambda m: m.command == "323") if m.command == "322"]
    # The name is free again: a JOIN creates a new room (default category).
    allowed.join("#dyn-del")
    assert server.query("SELECT category_id FROM rooms WHERE name = '#dyn-del'") == "1"


def test_invited_guest_stays_until_denied(world):
    """A manager's INVITE lets a non-member into a closed room once; later
    reloads keep the guest, a deny removes them."""
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-guest", privacy="closed")
    server.query("SELECT pchat_room_grant(NULL, '#dyn-guest', 'manager', 'manager')")
    mgr, out = clients["manager"], clients["outsider"]
    join_soon(mgr, "#dyn-guest")
    out.send("JOIN #dyn-guest")
    assert out.expect(lambda m: m.command in ("366", "403")).command == "403"
    mgr.send("INVITE outsider #dyn-guest")
    mgr.expect("341")
    out.expect(lambda m: m.command == "INVITE" and m.params[1] == "#dyn-guest")
    out.join("#dyn-guest")
    # An unrelated change reloads the model; the guest stays.
    server.query("SELECT pchat_room_set(NULL, '#dyn-guest', 'topic', 'reloaded')")
    out.expect(lambda m: m.command == "TOPIC" and m.params == ["#dyn-guest", "reloaded"])
    time.sleep(0.3)
    out.send("NAMES #dyn-guest")
    assert "outsider" in out.expect("353").params[-1].split()
    # Denied in the category: out at once.
    server.query("SELECT pchat_category_grant(NULL, 'eng', 'denied', 'outsider')")
    try:
        parted(out, "#dyn-guest", "You may no longer be in this room")
    finally:
        server.query("SELECT pchat_category_revoke(NULL, 'eng', 'denied', 'outsider')")


def test_targets_lists_only_readable_rooms(world):
    """CHATHISTORY TARGETS names joined rooms whose history one may read:
    not a room of a category that keeps none."""
    server, keeper, clients, sink = world
    c = clients["allowed"]
    c.join("#n-open")
    c.join("#quiet")  # made by test_history_follows_the_category
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
           "timestamp=2100-01-01T00:00:00.000Z 50")
    start = c.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"))
    ref = start.params[0][1:]
    lines = c.collect_until(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref)
    names = [m.params[1] for m in lines if m.command == "CHATHISTORY"]
    assert "#n-open" in names and "#quiet" not in names, names
    for r in ("#n-open", "#quiet"):
        c.send("PART " + r)
        c.expect(lambda m: m.command == "PART" and m.params[0] == r)


def test_account_changes_apply_at_once(world):
    """Made an administrator: sees every room at once; no longer one: does
    not. A disabled or deleted account's connections are closed."""
    server, keeper, clients, sink = world
    out = clients["outsider"]

    def listed():
        out.send("LIST")
        return "#n-secret" in [m.params[1] for m in out.collect_until(
            lambda m: m.command == "323") if m.command == "322"]

    def soon(pred):
        deadline = time.monotonic() + 5
        while not pred():
            assert time.monotonic() < deadline
            time.sleep(0.05)

    assert not listed()
    server.query("SELECT pchat_account_set(NULL, 'outsider', 'admin', 'true')")
    try:
        soon(listed)
    finally:
        server.query("SELECT pchat_account_set(NULL, 'outsider', 'admin', 'false')")
    soon(lambda: not listed())

    create_account(server, "shortlived", PASSWORD)
    c = login(server, "shortlived")
    server.query("SELECT pchat_account_set(NULL, 'shortlived', 'disabled', 'true')")
    m = c.expect("ERROR")
    assert m.params[-1] == "Your account was disabled", m

    # Deleted, the same: its sessions end at once, the others stay.
    create_account(server, "gone", PASSWORD)
    g = login(server, "gone")
    server.query("SELECT pchat_account_delete(NULL, 'gone')")
    m = g.expect("ERROR")
    assert m.params[-1] == "Your account was deleted", m
    out.ping_roundtrip()


def test_room_command_bad_input(world):
    """Malformed ROOM commands get a clear error and the server stays up."""
    server, keeper, clients, sink = world
    mgr = clients["manager"]
    cases = [
        ("ROOM", "461"),
        ("ROOM #n-open", "461"),
        ("ROOM #n-open SET", "FAIL"),
        ("ROOM #n-open SET privacy", "FAIL"),
        ("ROOM #n-open MEMBER ADD", "FAIL"),
        ("ROOM #n-open MEMBER KEEP someone", "FAIL"),
        ("ROOM #n-open MEMBER ADD group:", "FAIL"),
        ("ROOM #n-open MEMBER ADD nosuchaccount", "FAIL"),
        ("ROOM #n-open MEMBER ADD " + "x" * 400, "FAIL"),
        ("ROOM #n-open SET topic :" + "\u00e9" * 200, "NOTE"),
        ("ROOM #n-open SET addin_url :" + "u" * 450, "NOTE"),
        ("ROOM #n-open SET color blue", "FAIL"),
        ("ROOM #n-open SET disabled true", "482"),  # administrators only
        ("ROOM " + "#" + "y" * 300 + " INFO", "403"),
    ]
    for line, want in cases:
        mgr.send(line)
        m = mgr.expect(lambda m: m.command in ("461", "FAIL", "NOTE", "482", "403"),
                       what=line[:40])
        assert m.command == want, (line[:60], m)
    mgr.ping_roundtrip()
    server.query("SELECT pchat_room_set(NULL, '#n-open', 'topic', 'topic of #n-open')")


def test_category_without_invitations(world):
    server, keeper, clients, sink = world
    server.query("SELECT pchat_category_create(NULL, 'noinv', '');"
                 " SELECT pchat_category_grant(NULL, 'noinv', 'allowed', 'authenticated');"
                 " SELECT pchat_category_set(NULL, 'noinv', 'invitations_allowed', 'false')")
    make_room(server, keeper, "#noinv", category="noinv")
    server.query("SELECT pchat_room_grant(NULL, '#noinv', 'manager', 'manager')")
    mgr, boss = clients["manager"], clients["admin"]
    join_soon(mgr, "#noinv")
    mgr.send("INVITE sink #noinv")
    m = mgr.expect(lambda m: m.command in ("341", "FAIL", "482"))
    assert m.command == "FAIL" and m.params[1] == "INVITATIONS_DISABLED", m
    boss.join("#noinv")  # administrators are above the category's settings
    boss.send("INVITE sink #noinv")
    assert boss.expect(lambda m: m.command in ("341", "FAIL", "482")).command == "341"
    for c in (mgr, boss):
        c.send("PART #noinv")
        c.expect("PART")


def test_type_change_moves_voice_and_modes(world):
    """An auditorium made normal: presenters lose their voice (the server
    says MODE -v), +m goes; made an auditorium again, it comes back."""
    server, keeper, clients, sink = world
    make_room(server, keeper, "#dyn-aud", rtype="auditorium")
    server.query("SELECT pchat_room_grant(NULL, '#dyn-aud', 'presenter', 'presenter')")
    pres = clients["presenter"]
    join_soon(pres, "#dyn-aud")
    pres.send("NAMES #dyn-aud")
    assert "+presenter" in pres.expect("353").params[-1].split()
    server.query("SELECT pchat_room_set(NULL, '#dyn-aud', 'type', 'normal')")
    m = pres.expect(lambda m: m.command == "MODE" and m.params[0] == "#dyn-aud")
    assert m.params[1:] == ["-v", "presenter"] and m.nick == "pchat.test", m
    pres.send("MODE #dyn-aud")
    assert "m" not in pres.expect("324").params[2]
    server.query("SELECT pchat_room_set(NULL, '#dyn-aud', 'type', 'auditorium')")
    m = pres.expect(lambda m: m.command == "MODE" and m.params[0] == "#dyn-aud")
    assert m.params[1:] == ["+v", "presenter"], m
    pres.send("MODE #dyn-aud")
    assert "m" in pres.expect("324").params[2]
    pres.send("PART #dyn-aud")
    pres.expect("PART")
