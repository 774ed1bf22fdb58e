"""Accounts for the integration tests, and a real SASL client.

create_account() inserts an account row with SCRAM-SHA-256 keys computed
here (hashlib.pbkdf2_hmac, hmac), the way pchatctl does, so tests need no
other tool; bind_cert() binds a TLS client certificate for EXTERNAL.
The SASL helpers speak IRCv3 SASL over a tests' ircclient.Client:
payloads are base64 cut in 400-byte AUTHENTICATE lines, SCRAM-SHA-256 is a
full client (RFC 5802/7677) that also checks the server's signature.

    from accounts import create_account, sasl_plain, sasl_scram
    create_account(server, "alice", "secret")
    c = server.client(register=False)
    login_and_register(c, "alice", "secret", mech="SCRAM-SHA-256")
"""
import base64
import hashlib
import hmac
import os
import subprocess

CHUNK = 400


def casefold(name):
    """rfc1459 casemapping, as pchatd folds nicks and account names."""
    return name.lower().replace("[", "{").replace("]", "}") \
        .replace("\\", "|").replace("^", "~")


def scram_keys(password, salt=None, iterations=4096):
    """(salt, stored_key, server_key) for a password."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return salt, stored_key, server_key


def create_account(server, name, password, admin=False, iterations=4096,
                   disabled=False):
    """Inserts an account with SCRAM keys; returns its id. `server` is a
    conftest Server (anything with query(sql))."""
    salt, stored, skey = scram_keys(password, iterations=iterations)
    return int(server.query(
        "INSERT INTO accounts (name, name_folded, is_admin, disabled,"
        " scram_iterations, scram_salt, scram_stored_key, scram_server_key)"
        " VALUES ('%s', '%s', %s, %s, %d, '\\x%s', '\\x%s', '\\x%s')"
        " RETURNING id" % (name, casefold(name), "true" if admin else "false",
                           "true" if disabled else "false", iterations,
                           salt.hex(), stored.hex(), skey.hex())))


def bind_cert(server, name, fingerprint):
    server.query("INSERT INTO account_certs (fingerprint, account_id)"
                 " SELECT '%s', id FROM accounts WHERE name_folded = '%s'"
                 % (fingerprint, casefold(name)))


def make_client_cert(directory, cn="client"):
    """A self-signed client certificate: (certfile, keyfile, sha256 hex of
    its DER, as account_certs stores it)."""
    cert = os.path.join(directory, "%s-cert.pem" % cn)
    key = os.path.join(directory, "%s-key.pem" % cn)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return cert, key, hashlib.sha256(der).hexdigest()


# SASL over IRC.

def send_payload(client, data):
    """AUTHENTICATE lines for one message (bytes): base64 in 400-byte
    pieces, "+" after an exact multiple of 400 (or for an empty one)."""
    b64 = base64.b64encode(data).decode()
    for i in range(0, len(b64), CHUNK):
        client.send("AUTHENTICATE " + b64[i:i + CHUNK])
    if len(b64) % CHUNK == 0:
        client.send("AUTHENTICATE +")


def read_payload(client, first=None):
    """The server's next challenge, reassembled (bytes), starting with the
    AUTHENTICATE line `first` if already read; raises on a numeric."""
    out = ""
    while True:
        m, first = first or client.expect(lambda m: m.command in (
            "AUTHENTICATE", "904", "905", "906", "907", "908")), None
        assert m.command == "AUTHENTICATE", "SASL failed: %r" % m
        piece = m.params[0]
        if piece != "+":
            out += piece
        if len(piece) < CHUNK:
            return base64.b64decode(out)


def result(client, timeout=None):
    """900/903 (True) or 904/905/906 (False): the numerics seen, last one
    first, e.g. (True, [Msg 900, Msg 903])."""
    seen = []
    while True:
        m = client.expect(lambda m: m.command in (
            "900", "903", "904", "905", "906", "907", "908"), timeout)
        seen.append(m)
        if m.command in ("903", "904", "905", "906", "907"):
            return m.command == "903", seen


def begin(client, mech):
    """AUTHENTICATE <mech>: None when the server said "+", else the
    numeric that refused it (904 rate limited, 908 unknown...)."""
    client.send("AUTHENTICATE " + mech)
    m = client.expect(lambda m: m.command in (
        "AUTHENTICATE", "904", "905", "906", "907", "908"))
    if m.command == "908":
        m = client.expect("904")
    return None if m.command == "AUTHENTICATE" and m.params[0] == "+" else m


def start(client, mech):
    refused = begin(client, mech)
    assert refused is None, refused


def sasl_plain(client, user, password, authzid=""):
    refused = begin(client, "PLAIN")
    if refused:
        return False, [refused]
    send_payload(client, ("%s\0%s\0%s" % (authzid, user, password)).encode())
    return result(client)


def sasl_external(client, authzid=""):
    refused = begin(client, "EXTERNAL")
    if refused:
        return False, [refused]
    send_payload(client, authzid.encode())
    return result(client)


def saslname(name):
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramError(AssertionError):
    pass


def sasl_scram(client, user, password, cnonce=None):
    """A full SCRAM-SHA-256 exchange; checks the server's signature.
    Returns result() for the exchange."""
    cnonce = cnonce or base64.b64encode(os.urandom(18)).decode()
    refused = begin(client, "SCRAM-SHA-256")
    if refused:
        return False, [refused]
    bare = "n=%s,r=%s" % (saslname(user), cnonce)
    send_payload(client, ("n,," + bare).encode())
    m = client.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if m.command == "904":
        return False, [m]
    server_first = read_payload(client, m).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(cnonce) or len(attrs["r"]) <= len(cnonce):
        raise ScramError("bad server nonce %r" % server_first)
    salt = base64.b64decode(attrs["s"])
    iterations = int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth = ",".join([bare, server_first, without_proof]).encode()
    sig = hmac.new(stored_key, auth, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    send_payload(client, (without_proof + ",p="
                          + base64.b64encode(proof).decode()).encode())
    m = client.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if m.command == "904":
        return False, [m]
    server_final = read_payload(client, m).decode()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + base64.b64encode(
        hmac.new(server_key, auth, hashlib.sha256).digest()).decode()
    if server_final != want:
        raise ScramError("server signature %r, want %r" % (server_final, want))
    client.send("AUTHENTICATE +")
    return result(client)


MECHS = {"PLAIN": sasl_plain, "SCRAM-SHA-256": sasl_scram}


def login_and_register(client, account, password, mech="PLAIN", nick=None,
                       caps=()):
    """CAP LS, NICK, USER, CAP REQ sasl (+ caps), SASL, CAP END; returns the
    registration lines (up to the end of MOTD)."""
    client.send("CAP LS 302")
    client.send("NICK " + (nick or account))
    client.send("USER %s 0 * :%s real" % (account, account))
    client.offered = client.cap_ls()
    client.send("CAP REQ :" + " ".join(("sasl",) + tuple(caps)))
    ack = client.expect(lambda m: m.command == "CAP" and m.params[1] in ("ACK", "NAK"))
    assert ack.params[1] == "ACK", ack
    ok, seen = MECHS[mech](client, account, password)
    assert ok, "login failed: %r" % seen
    client.send("CAP END")
    welcome = []
    client.expect(lambda m: welcome.append(m) or m.command in ("376", "422"))
    client.welcome = welcome
    client.nick = welcome[0].params[0]
    return welcome
