"""Administration: the SQL functions of sql/content/0004_admin.sql (rights,
errors, NOTIFY), pchatctl's account/group/category/room commands, and the
HTTPS JSON API of pchatd (admin.listen), all against a real PostgreSQL and
a real pchatd."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest

from conftest import PCHATCTL, free_port


# ------------------------------------------------------------ helpers

def ctl(server, *args, password=None, check=True):
    """Runs pchatctl against the server's database; returns (rc, out, err)."""
    out = subprocess.run([PCHATCTL, "--db", server.conninfo] + list(args),
                         input=password, capture_output=True, text=True,
                         timeout=60)
    if check:
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.returncode, out.stdout, out.stderr


def ctl_json(server, *args):
    _, out, _ = ctl(server, "--json", *args)
    return json.loads(out)


def sql_error(server, sql):
    """Runs sql expecting an error; returns (SQLSTATE, message)."""
    out = subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-v",
         "VERBOSITY=verbose", "-h", server.pg.dir, "-p", str(server.pg.port),
         "-U", "pchat", "-d", server.dbname, "-c", sql],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, "expected an error from: " + sql
    line = out.stderr.strip().splitlines()[0]
    # "ERROR:  42501: permission denied: ..."
    code, msg = line.split(":", 2)[1:]
    return code.strip(), msg.strip()


def q(s):
    """A SQL string literal."""
    return "NULL" if s is None else "'" + s.replace("'", "''") + "'"


def call(server, fn, *args):
    return server.query("SELECT %s(%s)" % (fn, ", ".join(q(a) for a in args)))


def add_account(server, name, password, admin=False):
    args = ["account", "add", name, "--password-stdin"]
    if admin:
        args.append("--admin")
    ctl(server, *args, password=password + "\n")


@pytest.fixture
def model(server):
    """root (admin), alice (manager of #ops), bob (member), carol (outsider),
    group eng = {bob}; category work; rooms #ops (closed) and #lobby."""
    add_account(server, "root", "rootpw", admin=True)
    for name in ("alice", "bob", "carol"):
        add_account(server, name, name + "pw")
    ctl(server, "group", "add", "eng", "--description", "Engineers")
    ctl(server, "group", "member", "add", "eng", "bob")
    ctl(server, "category", "add", "work")
    ctl(server, "category", "grant", "work", "allowed", "group:eng")
    ctl(server, "room", "add", "#ops", "--category", "work", "--privacy",
        "closed", "--description", "Operations")
    ctl(server, "room", "grant", "#ops", "manager", "alice")
    ctl(server, "room", "grant", "#ops", "member", "bob")
    ctl(server, "room", "add", "#lobby")
    return server


# ------------------------------------------------- SQL functions

def test_sql_rights_and_errors(model):
    s = model
    # A manager changes the topic and members of their room ...
    call(s, "pchat_room_set", "alice", "#OPS", "topic", "deploys")
    call(s, "pchat_room_grant", "alice", "#ops", "presenter", "group:eng")
    call(s, "pchat_room_revoke", "alice", "#ops", "presenter", "group:eng")
    assert s.query("SELECT topic, topic_by FROM rooms WHERE name = '#ops'") \
        == "deploys|alice"
    # ... but not its category or disabled flag, not its managers, and
    # nothing in a room they do not manage.
    for sql in (
        "SELECT pchat_room_set('alice', '#ops', 'disabled', 'true')",
        "SELECT pchat_room_set('alice', '#ops', 'category', 'default')",
        "SELECT pchat_room_grant('alice', '#ops', 'manager', 'carol')",
        "SELECT pchat_room_set('alice', '#lobby', 'topic', 'x')",
        "SELECT pchat_room_delete('alice', '#ops')",
        "SELECT pchat_room_clear_history('alice', '#ops', now())",
        "SELECT pchat_account_create('alice', 'dave', false, NULL, NULL, NULL, NULL)",
        "SELECT pchat_group_add('bob', 'eng', 'carol')",
        "SELECT pchat_category_grant('bob', 'work', 'allowed', 'anyone')",
        "SELECT pchat_room_create('carol', '#x', 'work', NULL, NULL, NULL)",
        "SELECT pchat_room_list('nobody')",
    ):
        code, msg = sql_error(s, sql)
        assert code == "42501", (sql, code, msg)
        assert "permission denied" in msg
    # A secret room and a missing room give a non-admin the same answer.
    ctl(s, "room", "set", "#lobby", "privacy", "secret")
    a = sql_error(s, "SELECT pchat_room_show('carol', '#lobby')")
    b = sql_error(s, "SELECT pchat_room_show('carol', '#lobby-nope')")
    assert a[0] == b[0] == "42501"
    assert a[1].replace("#lobby", "X") == b[1].replace("#lobby-nope", "X")
    # Administrators see P0002 for what does not exist.
    assert sql_error(s, "SELECT pchat_room_show('root', '#nope')")[0] == "P0002"
    assert sql_error(s, "SELECT pchat_room_grant(NULL, '#ops', 'member', 'group:nope')")[0] == "P0002"
    assert sql_error(s, "SELECT pchat_room_grant(NULL, '#ops', 'member', 'ghost')")[0] == "P0002"
    # Bad values are 22023 with a message naming what is wrong.
    for sql, word in (
        ("SELECT pchat_room_set(NULL, '#ops', 'privacy', 'hidden')", "privacy"),
        ("SELECT pchat_room_set(NULL, '#ops', 'colour', 'red')", "colour"),
        ("SELECT pchat_room_grant(NULL, '#ops', 'owner', 'bob')", "owner"),
        ("SELECT pchat_room_grant(NULL, '#ops', 'member', 'user:bob')", "principal"),
        ("SELECT pchat_room_create(NULL, 'ops', NULL, NULL, NULL, NULL)", "room name"),
        ("SELECT pchat_account_create(NULL, '1abc', false, NULL, NULL, NULL, NULL)", "account name"),
        ("SELECT pchat_category_set(NULL, 'work', 'history_kept', 'maybe')", "history_kept"),
        ("SELECT pchat_category_delete(NULL, 'default')", "default"),
        ("SELECT pchat_message_remove(NULL, 'not-a-uuid')", "msgid"),
        ("SELECT pchat_account_cert_add(NULL, 'bob', 'abc')", "fingerprint"),
    ):
        code, msg = sql_error(s, sql)
        assert code == "22023", (sql, code, msg)
        assert word in msg, (sql, msg)
    # Taken names and categories in use.
    assert sql_error(s, "SELECT pchat_room_create(NULL, '#OPS', NULL, NULL, NULL, NULL)")[0] == "23505"
    assert sql_error(s, "SELECT pchat_account_create(NULL, 'ALICE', false, NULL, NULL, NULL, NULL)")[0] == "23505"
    assert sql_error(s, "SELECT pchat_category_delete(NULL, 'work')")[0] == "23503"
    # A disabled administrator has no rights left.
    add_account(s, "ex", "expw", admin=True)
    call(s, "pchat_account_set", "root", "ex", "disabled", "true")
    assert sql_error(s, "SELECT pchat_room_list('ex')")[0] == "42501"


def test_sql_creator_becomes_manager_and_principals_parse(model):
    s = model
    ctl(s, "category", "grant", "work", "creator", "account:bob")
    call(s, "pchat_room_create", "bob", "#bobs", "work", "auditorium",
         "secret", "Bob's")
    room = json.loads(call(s, "pchat_room_show", "bob", "#bobs"))
    assert room["manager"] == ["account:bob"]
    assert room["type"] == "auditorium" and room["privacy"] == "secret"
    # A creator who is denied in the category may not create rooms there.
    ctl(s, "category", "grant", "work", "denied", "bob")
    assert sql_error(s, "SELECT pchat_room_create('bob', '#bobs2', 'work', NULL, NULL, NULL)")[0] == "42501"
    # Every form of principal, written back in a form that parses again.
    for p in ("anyone", "authenticated", "group:eng", "account:carol", "carol"):
        ctl(s, "room", "grant", "#ops", "member", p)
    members = ctl_json(s, "room", "show", "#ops")["member"]
    assert sorted(members) == ["account:bob", "account:carol", "anyone",
                               "authenticated", "group:eng"]
    for p in members:
        ctl(s, "room", "revoke", "#ops", "member", p)
    assert ctl_json(s, "room", "show", "#ops")["member"] == []
    rc, _, err = ctl(s, "room", "revoke", "#ops", "member", "carol", check=False)
    assert rc == 1 and "is not member" in err


def test_sql_changes_notify_pchat_acl(model):
    """Every change NOTIFYs pchat_acl with the object's kind and id."""
    s = model
    out = subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-h", s.pg.dir, "-p", str(s.pg.port),
         "-U", "pchat", "-d", s.dbname],
        input="LISTEN pchat_acl;\n"
              "SELECT pchat_room_set(NULL, '#ops', 'topic', 't');\n"
              "SELECT pchat_group_add(NULL, 'eng', 'carol');\n"
              "SELECT pchat_category_set(NULL, 'work', 'uploads_allowed', 'no');\n"
              "SELECT pchat_account_set(NULL, 'carol', 'display_name', 'C');\n",
        capture_output=True, text=True, timeout=60)
    ids = {k: s.query("SELECT id FROM %s WHERE name = %s" % (t, q(n)))
           for k, t, n in (("room", "rooms", "#ops"), ("group", "groups", "eng"),
                           ("category", "categories", "work"),
                           ("account", "accounts", "carol"))}
    for kind, ident in ids.items():
        assert 'notification "pchat_acl" with payload "%s %s"' % (kind, ident) \
            in out.stdout + out.stderr, (kind, out.stdout, out.stderr)


# ------------------------------------------------------------ pchatctl

def scram_keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (hashlib.sha256(client_key).digest(),
            hmac.new(salted, b"Server Key", "sha256").digest())


def test_pchatctl_accounts_store_scram_keys_not_the_password(server):
    add_account(server, "alice", "correct horse")
    ctl(server, "account", "add", "bob", "--password-stdin", "--iterations",
        "5000", password="battery staple\n")
    for name, pw, it in (("alice", "correct horse", 4096), ("bob", "battery staple", 5000)):
        row = server.query("SELECT scram_iterations, encode(scram_salt, 'hex'),"
                           " encode(scram_stored_key, 'hex'),"
                           " encode(scram_server_key, 'hex') FROM accounts"
                           " WHERE name = %s" % q(name)).split("|")
        assert int(row[0]) == it
        salt = bytes.fromhex(row[1])
        assert len(salt) == 16
        stored, server_key = scram_keys(pw, salt, it)
        assert row[2] == stored.hex() and row[3] == server_key.hex()
    # The password is nowhere in the database's account rows.
    dump = server.query("SELECT accounts::text FROM accounts")
    assert "correct horse" not in dump and "battery" not in dump
    # passwd derives new keys with a fresh salt.
    old = server.query("SELECT scram_salt FROM accounts WHERE name = 'alice'")
    ctl(server, "account", "passwd", "alice", "--password-stdin", password="new one\n")
    assert server.query("SELECT scram_salt FROM accounts WHERE name = 'alice'") != old
    # No password on stdin, or none on the command line: refused.
    rc, _, err = ctl(server, "account", "passwd", "alice", "--password-stdin",
                     password="", check=False)
    assert rc == 1 and "no password" in err
    rc, _, err = ctl(server, "account", "add", "x", "secret", check=False)
    assert rc == 2 and "usage" in err
    rc, _, err = ctl(server, "account", "add", "x", "--iterations", "10",
                     "--password-stdin", password="pw\n", check=False)
    assert rc == 2


def test_pchatctl_every_command(server):
    add_account(server, "root", "pw", admin=True)
    ctl(server, "account", "add", "bob", "--no-password")
    ctl(server, "account", "set", "bob", "display_name", "Bob B.")
    fp = "ab" * 32
    ctl(server, "account", "cert", "add", "bob", ":".join(["AB"] * 32))
    accounts = {a["name"]: a for a in ctl_json(server, "account", "list")}
    assert accounts["bob"]["certs"] == [fp]
    assert accounts["bob"]["password"] is False and accounts["root"]["admin"] is True
    ctl(server, "account", "cert", "del", fp)
    _, out, _ = ctl(server, "account", "list")
    assert "display_name=Bob B." in out and out.startswith("bob ")

    ctl(server, "group", "add", "ops")
    ctl(server, "group", "member", "add", "ops", "bob")
    assert ctl_json(server, "group", "list") == [
        {"name": "ops", "description": "", "members": ["bob"]}]
    ctl(server, "group", "member", "del", "ops", "bob")
    ctl(server, "group", "del", "ops")
    assert ctl_json(server, "group", "list") == []

    ctl(server, "category", "add", "hr", "--description", "People")
    ctl(server, "category", "set", "hr", "history_kept", "false")
    ctl(server, "category", "grant", "hr", "creator", "authenticated")
    cat = ctl_json(server, "category", "show", "hr")
    assert cat["history_kept"] is False and cat["creator"] == ["authenticated"]
    _, out, _ = ctl(server, "category", "show", "hr")
    assert "description: People" in out
    ctl(server, "category", "revoke", "hr", "creator", "authenticated")
    assert [c["name"] for c in ctl_json(server, "category", "list")] == ["default", "hr"]

    ctl(server, "room", "add", "#pay", "--category", "hr", "--type", "auditorium")
    ctl(server, "room", "set", "#pay", "addin_url", "https://example.org/x")
    ctl(server, "room", "disable", "#pay")
    assert ctl_json(server, "room", "show", "#pay")["disabled"] is True
    ctl(server, "room", "enable", "#pay")
    room = ctl_json(server, "room", "list")[0]
    assert room["name"] == "#pay" and room["disabled"] is False
    assert room["addin_url"] == "https://example.org/x" and room["category"] == "hr"
    rc, _, err = ctl(server, "category", "del", "hr", check=False)
    assert rc == 1 and "still has 1 room" in err
    ctl(server, "room", "del", "#pay")
    ctl(server, "category", "del", "hr")
    ctl(server, "account", "del", "bob")
    # Errors: clear message, status 1; usage: status 2.
    rc, _, err = ctl(server, "room", "show", "#nope", check=False)
    assert rc == 1 and 'no such room "#nope"' in err and "P0002" in err
    rc, _, err = ctl(server, "room", "frobnicate", check=False)
    assert rc == 2
    rc, _, err = ctl(server, "room", "clear-history", "#x", check=False)
    assert rc == 2 and "--before" in err
    rc, _, err = ctl(server, "room", "add", "#y", "--bogus", "z", check=False)
    assert rc == 2


def test_pchatctl_history_clear_and_message_remove(server):
    c = server.client("talker")
    c.send("JOIN #hist")
    c.expect(lambda m: m.command == "JOIN")
    for i in range(5):
        c.send("PRIVMSG #hist :line %d" % i)
    deadline = time.monotonic() + 10
    while server.query("SELECT count(*) FROM messages") != "5":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    msgids = server.query("SELECT msgid FROM messages ORDER BY seq").split("\n")
    # Posts in one millisecond share a time: spread them a minute apart.
    server.query("UPDATE messages SET at = now() - (10 - seq) * interval '1 minute'")
    cut = server.query("SELECT at FROM messages WHERE seq = 3")
    _, out, _ = ctl(server, "room", "clear-history", "#hist", "--before", cut)
    assert "2 message(s) removed" in out
    ctl(server, "room", "remove-message", msgids[4])
    rows = server.query("SELECT seq, body, removed_by IS NOT NULL FROM messages"
                        " ORDER BY seq").split("\n")
    assert rows == ["1||t", "2||t", "3|line 2|f", "4|line 3|f", "5||t"]
    rc, _, err = ctl(server, "room", "remove-message",
                     "01890000-0000-7000-8000-000000000000", check=False)
    assert rc == 1 and "no such message" in err
    rc, _, err = ctl(server, "room", "clear-history", "#hist", "--before",
                     "yesterday-ish", check=False)
    assert rc == 1 and "22007" in err
    c.close()


# ------------------------------------------------------------ HTTPS API

class Api:
    def __init__(self, port, user=None, password=None, cert=None, source="127.0.0.1"):
        self.port = port
        self.source = source
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        if cert:
            self.ctx.load_cert_chain(*cert)
        self.auth = None
        if user is not None:
            tok = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            self.auth = "Basic " + tok
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                    context=self.ctx, timeout=20,
                                                    source_address=(self.source, 0))
        h = {"Content-Type": "application/json"}
        if self.auth:
            h["Authorization"] = self.auth
        h.update(headers or {})
        data = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        text = r.read().decode()
        if r.getheader("Connection") == "close":
            self.conn.close()
            self.conn = None
        return r.status, json.loads(text) if text else None

    def close(self):
        if self.conn:
            self.conn.close()


@pytest.fixture
def api_server(server_factory):
    port = free_port()
    # Many tests fail logins on purpose: the limiter has its own test.
    s = server_factory(admin__listen="127.0.0.1:%d" % port,
                       auth__fail_burst="1000")
    s.admin_port = port
    return s


@pytest.fixture
def api_model(api_server):
    s = api_server
    add_account(s, "root", "rootpw", admin=True)
    for name in ("alice", "bob", "carol"):
        add_account(s, name, name + "pw")
    ctl(s, "group", "add", "eng")
    ctl(s, "category", "add", "work")
    ctl(s, "room", "add", "#ops", "--category", "work", "--privacy", "closed")
    ctl(s, "room", "grant", "#ops", "manager", "alice")
    ctl(s, "room", "add", "#lobby")
    return s


def test_api_needs_authentication(api_model):
    s = api_model
    for creds in (None, ("root", "wrong"), ("ghost", "x"), ("root", "")):
        api = Api(s.admin_port, *(creds or ()))
        st, body = api.request("GET", "/api/v1/rooms")
        assert st == 401, (creds, st, body)
        assert "error" in body
        api.close()
    # Malformed credentials and other schemes are refused the same way.
    api = Api(s.admin_port)
    for auth in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                 "Bearer abc"):
        st, _ = api.request("GET", "/api/v1/rooms", headers={"Authorization": auth})
        assert st == 401, auth
    api.close()
    # A disabled administrator is refused too.
    ctl(s, "account", "set", "root", "disabled", "true")
    st, _ = Api(s.admin_port, "root", "rootpw").request("GET", "/api/v1/rooms")
    assert st == 401


# (method, path, body) per endpoint kind, with the status expected for an
# administrator, the manager of #ops (alice), and an outsider (carol).
MATRIX = [
    ("GET", "/api/v1/accounts", None, 200, 403, 403),
    ("POST", "/api/v1/accounts", {"name": "dave", "password": "davepw"}, 201, 403, 403),
    ("PATCH", "/api/v1/accounts/dave", {"display_name": "Dave"}, 200, 403, 403),
    ("PUT", "/api/v1/accounts/dave/password", {"password": "pw2"}, 200, 403, 403),
    ("POST", "/api/v1/accounts/dave/certs", {"fingerprint": "cd" * 32}, 201, 403, 403),
    ("DELETE", "/api/v1/accounts/dave/certs/" + "cd" * 32, None, 200, 403, 403),
    ("GET", "/api/v1/groups", None, 200, 403, 403),
    ("POST", "/api/v1/groups", {"name": "qa", "description": "QA"}, 201, 403, 403),
    ("POST", "/api/v1/groups/qa/members", {"account": "dave"}, 201, 403, 403),
    ("DELETE", "/api/v1/groups/qa/members/dave", None, 200, 403, 403),
    ("DELETE", "/api/v1/groups/qa", None, 200, 403, 403),
    ("GET", "/api/v1/categories", None, 200, 403, 403),
    ("POST", "/api/v1/categories", {"name": "sales"}, 201, 403, 403),
    ("GET", "/api/v1/categories/sales", None, 200, 403, 403),
    ("PATCH", "/api/v1/categories/sales", {"uploads_allowed": False}, 200, 403, 403),
    ("POST", "/api/v1/categories/sales/principals",
     {"role": "allowed", "principal": "group:eng"}, 201, 403, 403),
    ("DELETE", "/api/v1/categories/sales/principals/allowed/group%3Aeng", None, 200, 403, 403),
    ("DELETE", "/api/v1/categories/sales", None, 200, 403, 403),
    ("POST", "/api/v1/rooms", {"name": "#new", "category": "work"}, 201, 403, 403),
    ("GET", "/api/v1/rooms/%23ops", None, 200, 200, 403),
    ("PATCH", "/api/v1/rooms/ops", {"topic": "hello", "description": "d"}, 200, 200, 403),
    ("PATCH", "/api/v1/rooms/ops", {"disabled": True}, 200, 403, 403),
    ("PATCH", "/api/v1/rooms/ops", {"disabled": False}, 200, 403, 403),
    ("POST", "/api/v1/rooms/ops/members", {"role": "member", "principal": "bob"}, 201, 201, 403),
    ("POST", "/api/v1/rooms/ops/members", {"role": "presenter", "principal": "bob"}, 201, 201, 403),
    ("POST", "/api/v1/rooms/ops/members", {"role": "manager", "principal": "bob"}, 201, 403, 403),
    ("DELETE", "/api/v1/rooms/ops/members/manager/bob", None, 200, 403, 403),
    ("DELETE", "/api/v1/rooms/ops/members/presenter/bob", None, 200, 200, 403),
    ("DELETE", "/api/v1/rooms/ops/members/member/bob", None, 200, 200, 403),
    ("DELETE", "/api/v1/rooms/ops/messages?before=2030-01-01T00%3A00%3A00Z", None, 200, 403, 403),
    ("DELETE", "/api/v1/rooms/new", None, 200, 403, 403),
    ("DELETE", "/api/v1/accounts/dave", None, 200, 403, 403),
]


def test_api_permission_matrix(api_model):
    """Each endpoint kind as administrator, manager, outsider: the manager's
    and the outsider's refusals change nothing, the administrator's call
    succeeds; then the manager's own-room calls succeed."""
    s = api_model
    admin = Api(s.admin_port, "root", "rootpw")
    manager = Api(s.admin_port, "alice", "alicepw")
    outsider = Api(s.admin_port, "carol", "carolpw")
    for method, path, body, want_admin, want_mgr, want_out in MATRIX:
        st, resp = outsider.request(method, path, body)
        assert st == want_out, (method, path, "outsider", st, resp)
        if want_mgr != 200 and want_mgr != 201:
            st, resp = manager.request(method, path, body)
            assert st == want_mgr, (method, path, "manager", st, resp)
            assert "permission denied" in resp["error"]
            st, resp = admin.request(method, path, body)
            assert st == want_admin, (method, path, "admin", st, resp)
        else:
            st, resp = manager.request(method, path, body)
            assert st == want_mgr, (method, path, "manager", st, resp)
    # The manager sees only the rooms they manage; the admin sees all.
    st, rooms = manager.request("GET", "/api/v1/rooms")
    assert st == 200 and [r["name"] for r in rooms] == ["#ops"]
    st, rooms = admin.request("GET", "/api/v1/rooms")
    assert [r["name"] for r in rooms] == ["#lobby", "#ops"]
    st, room = admin.request("GET", "/api/v1/rooms/ops")
    assert room["topic"] == "hello" and room["member"] == []
    # The outsider cannot tell a secret room from a missing one.
    ctl(s, "room", "set", "#lobby", "privacy", "secret")
    st1, r1 = outsider.request("GET", "/api/v1/rooms/lobby")
    st2, r2 = outsider.request("GET", "/api/v1/rooms/lobby-none")
    assert st1 == st2 == 403
    assert r1["error"].replace("lobby", "X") == r2["error"].replace("lobby-none", "X")
    assert admin.request("GET", "/api/v1/rooms/lobby-none")[0] == 404
    # The password set through the API works, for the API itself.
    st, _ = admin.request("POST", "/api/v1/accounts",
                          {"name": "erin", "admin": True, "password": "erinpw"})
    assert st == 201
    assert Api(s.admin_port, "erin", "erinpw").request("GET", "/api/v1/accounts")[0] == 200
    for a in (admin, manager, outsider):
        a.close()


def test_api_errors_are_json_with_proper_codes(api_model):
    s = api_model
    api = Api(s.admin_port, "root", "rootpw")
    cases = [
        ("GET", "/api/v1/rooms/nope", None, 404, "no such room"),
        ("POST", "/api/v1/rooms", {"name": "#ops"}, 409, "already exists"),
        ("POST", "/api/v1/rooms", {"name": "no-hash"}, 400, "invalid room name"),
        ("POST", "/api/v1/rooms", {"name": "#z", "colour": "red"}, 400, "unknown field"),
        ("POST", "/api/v1/rooms", {"name": ["#z"]}, 400, "field must be"),
        ("PATCH", "/api/v1/rooms/ops", {"privacy": "hidden"}, 400, "privacy"),
        ("PATCH", "/api/v1/rooms/ops", {}, 400, "nothing to change"),
        ("DELETE", "/api/v1/categories/work", None, 409, "still has"),
        ("DELETE", "/api/v1/rooms/ops/messages", None, 400, "before"),
        ("DELETE", "/api/v1/rooms/ops/messages?before=soonish", None, 400, "timestamp"),
        ("DELETE", "/api/v1/messages/zz", None, 400, "msgid"),
        ("GET", "/api/v1/nothing", None, 404, "no such endpoint"),
        ("GET", "/elsewhere", None, 404, "api/v1"),
        ("PUT", "/api/v1/rooms", None, 405, "method"),
        ("GET", "/api/v1/rooms/%zz", None, 400, "escape"),
        ("POST", "/api/v1/groups", None, 400, "JSON object"),
    ]
    for method, path, body, status, word in cases:
        st, resp = api.request(method, path, body)
        assert st == status, (method, path, st, resp)
        assert word in resp["error"], (method, path, resp)
    # Not JSON at all.
    st, resp = api.request("POST", "/api/v1/groups", headers={}) if False else (None, None)
    conn = http.client.HTTPSConnection("127.0.0.1", s.admin_port, context=api.ctx, timeout=20)
    conn.request("POST", "/api/v1/groups", body="{not json",
                 headers={"Authorization": api.auth})
    r = conn.getresponse()
    assert r.status == 400 and "not a JSON object" in json.loads(r.read())["error"]
    conn.close()
    api.close()


def raw(port, data, read_all=True):
    """Sends raw bytes over TLS; returns everything the server answers
    before it closes (or 5 s pass)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock) as t:
            t.sendall(data)
            out = b""
            try:
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                    if not read_all:
                        break
            except (socket.timeout, ssl.SSLError, ConnectionResetError):
                pass
            return out


def test_api_limits_keepalive_and_garbage(api_model):
    s = api_model
    auth = "Basic " + base64.b64encode(b"root:rootpw").decode()
    # Keep-alive: several requests pipelined on one connection, answered in
    # order; the last asks to close.
    req = ("GET /api/v1/rooms/ops HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % auth)
    last = ("GET /api/v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
            "Connection: close\r\n\r\n" % auth)
    out = raw(s.admin_port, (req * 20 + last).encode())
    assert out.count(b"HTTP/1.1 200 OK") == 21
    assert out.count(b'"name": "#ops"') == 20
    # A body announced over admin.max_body (64 KiB): 413 at once, before
    # the body is sent, then closed.
    out = raw(s.admin_port, ("POST /api/v1/groups HTTP/1.1\r\nHost: x\r\n"
                             "Authorization: %s\r\nContent-Length: 70000\r\n\r\n"
                             % auth).encode())
    assert out.startswith(b"HTTP/1.1 413 ")
    # Chunked bodies are limited the same way: 64 KiB pass, one byte more
    # does not.
    chunk = b"8000\r\n" + b"a" * 0x8000 + b"\r\n"
    out = raw(s.admin_port, ("POST /api/v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n" % auth).encode()
              + chunk * 2 + b"1\r\na\r\n")
    assert out.startswith(b"HTTP/1.1 413 ")
    # Headers over 16 KiB: 431. A long URL: 414.
    out = raw(s.admin_port, b"GET /api/v1/rooms HTTP/1.1\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")
    out = raw(s.admin_port, b"GET /api/v1/" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414 ")
    # Garbage: 400 and closed, and the server lives on.
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /api/v1/rooms HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                 b"POST /api/v1/groups HTTP/1.1\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n",
                 b"GET /api/v1/rooms HTTP/1.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\n\r\n"):
        out = raw(s.admin_port, junk)
        assert out.startswith(b"HTTP/1.1 4"), (junk, out[:100])
    assert s.alive()
    st, _ = Api(s.admin_port, "root", "rootpw").request("GET", "/api/v1/rooms")
    assert st == 200


def test_api_fuzz_request_parsing_does_not_crash(api_model):
    """Random mutations of valid requests: each gets an HTTP answer or a
    close, never a crash; the server still answers afterwards."""
    import random
    s = api_model
    rnd = random.Random(1234)
    auth = "Basic " + base64.b64encode(b"root:rootpw").decode()
    seeds = [
        b"GET /api/v1/rooms/ops HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % auth.encode(),
        b"PATCH /api/v1/rooms/ops HTTP/1.1\r\nAuthorization: %s\r\nContent-Length: 17\r\n\r\n"
        b'{"topic": "fuzz"}' % auth.encode(),
        b"DELETE /api/v1/rooms/ops/members/member/bob%20x?before=1 HTTP/1.1\r\n"
        b"Authorization: Basic " + base64.b64encode(b"a:b") + b"\r\n\r\n",
    ]
    deadline = time.monotonic() + 30
    for i in range(150):
        if time.monotonic() > deadline:
            break
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            pos = rnd.randrange(len(data))
            if op < 0.4:
                data[pos] = rnd.randrange(256)
            elif op < 0.7:
                del data[pos:pos + rnd.randint(1, 8)]
            else:
                data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        raw(s.admin_port, bytes(data) + b"\r\n\r\n", read_all=False)
        assert s.alive(), "pchatd died on input %r" % bytes(data)
    st, _ = Api(s.admin_port, "root", "rootpw").request("GET", "/api/v1/rooms")
    assert st == 200


def test_api_client_certificate_login(api_model, tmp_path):
    s = api_model
    key, cert = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=alice", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    fp = hashlib.sha256(der).hexdigest()
    api = Api(s.admin_port, cert=(cert, key))
    assert api.request("GET", "/api/v1/rooms/ops")[0] == 401  # not bound yet
    api.close()
    ctl(s, "account", "cert", "add", "alice", fp)
    api = Api(s.admin_port, cert=(cert, key))
    st, room = api.request("GET", "/api/v1/rooms/ops")
    assert st == 200 and room["manager"] == ["account:alice"]
    assert api.request("GET", "/api/v1/accounts")[0] == 403
    api.close()


def test_api_survives_database_outage_and_shutdown(api_model):
    """Requests while the database is down get 503 within the configured
    time, not a hang; pchatd stops cleanly with connections open."""
    s = api_model
    api = Api(s.admin_port, "root", "rootpw")
    assert api.request("GET", "/api/v1/rooms")[0] == 200
    s.pg.stop()
    try:
        t0 = time.monotonic()
        st, body = api.request("GET", "/api/v1/rooms")
        assert st == 503, body
        assert time.monotonic() - t0 < 10
    finally:
        s.pg.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            st, _ = api.request("GET", "/api/v1/rooms")
        except (OSError, http.client.HTTPException):
            api.conn = None
            st = None
        if st == 200:
            break
        assert time.monotonic() < deadline, st
        time.sleep(0.2)
    idle = Api(s.admin_port, "root", "rootpw")
    idle.request("GET", "/api/v1/rooms")
    s.stop()  # asserts exit status 0 and no sanitizer report
    api.close()
    idle.close()


def test_api_idle_and_slow_connections_are_closed(server_factory):
    """admin.idle_timeout_ms: an idle keep-alive connection and one that
    drips a request too slowly are both closed, so max_conns slots come
    back; a connection waiting on nothing else is never closed mid-answer."""
    port = free_port()
    s = server_factory(admin__listen="127.0.0.1:%d" % port,
                       admin__idle_timeout_ms="1000", admin__max_conns="2")
    add_account(s, "root", "rootpw", admin=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    socks = []
    for _ in range(2):
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        t.sendall(b"GET /api/v1/rooms HTTP/1.1\r\nHost: x\r\n")  # never ends
        socks.append(t)
    t0 = time.monotonic()
    for t in socks:
        assert t.recv(100) == b""  # closed by the server
        t.close()
    waited = time.monotonic() - t0
    assert 0.5 < waited < 5, waited
    # The slots are free again; a keep-alive connection left idle after an
    # answer is closed the same way.
    api = Api(port, "root", "rootpw")
    assert api.request("GET", "/api/v1/rooms")[0] == 200
    time.sleep(2)
    with pytest.raises((http.client.HTTPException, OSError)):
        api.request("GET", "/api/v1/rooms")
    api.conn = None
    assert api.request("GET", "/api/v1/rooms")[0] == 200
    api.close()


def test_api_failed_logins_are_limited(server_factory):
    """auth.fail_burst failed logins per client address and per account
    name, then 429 before any password is checked, even the right one."""
    port = free_port()
    s = server_factory(admin__listen="127.0.0.1:%d" % port,
                       auth__fail_burst="3", auth__fail_interval_ms="60000")
    add_account(s, "root", "rootpw", admin=True)
    add_account(s, "alice", "alicepw")
    bad = Api(port, "root", "guess")
    for _ in range(3):
        assert bad.request("GET", "/api/v1/rooms")[0] == 401
    st, body = bad.request("GET", "/api/v1/rooms")
    assert st == 429 and "try again in" in body["error"], body
    # The right password from the same address: refused too.
    assert Api(port, "root", "rootpw").request("GET", "/api/v1/rooms")[0] == 429
    # From another address: the account is still limited, others are not.
    assert Api(port, "ROOT", "rootpw", source="127.0.0.2").request(
        "GET", "/api/v1/rooms")[0] == 429
    assert Api(port, "alice", "alicepw", source="127.0.0.2").request(
        "GET", "/api/v1/rooms")[0] == 200
