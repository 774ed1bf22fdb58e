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
