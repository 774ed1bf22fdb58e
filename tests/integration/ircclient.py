"""A small synchronous IRC client for the integration tests.

Every wait is bounded; `expect` skips unrelated lines and keeps them for
later inspection in `seen`."""
import socket
import ssl
import time


def unescape_tag(v):
    out, i = [], 0
    table = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
    while i < len(v):
        c = v[i]
        if c == "\\":
            if i + 1 == len(v):
                break
            out.append(table.get(v[i + 1], v[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Msg:
    """A parsed line: tags (dict), source, command, params."""

    def __init__(self, raw):
        self.raw = raw
        self.tags = {}
        rest = raw
        if rest.startswith("@"):
            tagpart, _, rest = rest[1:].partition(" ")
            for t in tagpart.split(";"):
                if not t:
                    continue
                k, eq, v = t.partition("=")
                self.tags[k] = unescape_tag(v) if eq else ""
            rest = rest.lstrip(" ")
        self.source = None
        if rest.startswith(":"):
            self.source, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        self.params = []
        cmd, _, rest = rest.partition(" ")
        self.command = cmd.upper()
        while rest:
            rest = rest.lstrip(" ")
            if not rest:
                break
            if rest.startswith(":"):
                self.params.append(rest[1:])
                break
            p, _, rest = rest.partition(" ")
            self.params.append(p)

    @property
    def nick(self):
        return self.source.split("!")[0] if self.source else None

    def __repr__(self):
        return "Msg(%r)" % self.raw


class Timeout(AssertionError):
    pass


def tls_context():
    """A TLS client context that accepts the tests' self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client:
    def __init__(self, port, tls=False, host="127.0.0.1", timeout=5.0,
                 source=None, cert=None):
        """source: local address to connect from (e.g. "127.0.0.2");
        cert: (certfile, keyfile) of a TLS client certificate."""
        self.timeout = timeout
        sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        if tls:
            ctx = tls_context()
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert:
                ctx.load_cert_chain(cert[0], cert[1])
            sock = ctx.wrap_socket(sock)
        self.sock = sock
        self.buf = b""
        self.seen = []
        self.nick = None
        self.closed = False
        self.welcome = []
        self.offered = {}

    # I/O
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, line):
        self.sock.sendall((line + "\r\n").encode())

    def recv_line(self, timeout=None):
        """Next line as a Msg, or None on timeout; raises EOFError at EOF."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            if not data:
                self.closed = True
                raise EOFError("connection closed by the server")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return Msg(line.rstrip(b"\r").decode("utf-8", "replace"))

    def expect(self, pred, timeout=None, what=None):
        """Reads until a line matches pred (a command name or a function)."""
        if isinstance(pred, str):
            name = pred.upper()
            pred = lambda m: m.command == name  # noqa: E731
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        skipped = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise Timeout("no %s within the time; got %r" % (what or "match", skipped[-10:]))
            m = self.recv_line(left)
            if m is None:
                continue
            if m.command == "PING":
                self.send("PONG :" + (m.params[-1] if m.params else ""))
            if pred(m):
                return m
            skipped.append(m)
            self.seen.append(m)

    def drain(self, timeout=0.3):
        out = []
        while True:
            m = self.recv_line(timeout)
            if m is None:
                return out
            out.append(m)

    def collect_until(self, pred, timeout=None):
        """All lines up to and including the first that matches pred."""
        out = []
        self.expect(lambda m: out.append(m) or pred(m), timeout)
        return out

    # IRC
    def register(self, nick, caps=(), user=None):
        self.nick = nick
        if caps:
            self.send("CAP LS 302")
        self.send("NICK " + nick)
        self.send("USER %s 0 * :%s real" % (user or nick, nick))
        if caps:
            self.offered = self.cap_ls()
            missing = [c for c in caps if c not in self.offered]
            assert not missing, "server does not offer %r" % missing
            self.send("CAP REQ :" + " ".join(caps))
            ack = self.expect(lambda m: m.command == "CAP" and m.params[1] in ("ACK", "NAK"))
            assert ack.params[1] == "ACK", ack
            self.send("CAP END")
        welcome = []
        self.expect(lambda m: welcome.append(m) or m.command in ("376", "422"))
        self.welcome = welcome
        return welcome

    def cap_ls(self):
        """Reads a (possibly multi-line) CAP LS reply: {cap: value or ""}."""
        offered = {}
        while True:
            m = self.expect(lambda m: m.command == "CAP" and len(m.params) >= 3
                            and m.params[1] == "LS", what="CAP LS")
            for item in m.params[-1].split():
                k, _, v = item.partition("=")
                offered[k] = v
            # "CAP * LS * :..." announces more lines (302).
            if not (len(m.params) >= 4 and m.params[2] == "*"):
                return offered

    def isupport(self):
        """ISUPPORT tokens from the 005 lines of registration: {name: value}."""
        out = {}
        for m in self.welcome:
            if m.command == "005":
                for tok in m.params[1:-1]:
                    k, _, v = tok.partition("=")
                    out[k] = v
        return out

    def collect_batch(self, start_pred, timeout=None):
        """Waits for a BATCH +ref line matching start_pred and returns it with
        the lines tagged batch=ref, up to the matching BATCH -ref."""
        start = self.expect(lambda m: m.command == "BATCH" and m.params
                            and m.params[0].startswith("+") and start_pred(m),
                            timeout, what="BATCH start")
        ref = start.params[0][1:]
        lines = self.collect_until(
            lambda m: m.command == "BATCH" and m.params[0] == "-" + ref, timeout)
        # Lines outside the batch stay in self.seen (expect keeps them).
        return start, [m for m in lines[:-1] if m.tags.get("batch") == ref]

    def history(self, *args, timeout=None):
        """Sends CHATHISTORY args and returns the messages of its batch."""
        self.send("CHATHISTORY " + " ".join(str(a) for a in args))
        start, msgs = self.collect_batch(lambda m: True, timeout)
        assert start.params[1] == "chathistory", start
        return msgs

    def join(self, channel, key=None):
        self.send("JOIN " + channel + (" " + key if key else ""))
        self.expect(lambda m: m.command == "366" and m.params[1].lower() == channel.lower(),
                    what="end of NAMES for " + channel)

    def ping_roundtrip(self, token="rt"):
        self.send("PING :" + token)
        self.expect(lambda m: m.command == "PONG" and m.params[-1] == token, what="PONG")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


ALL_CAPS = ["message-tags", "server-time", "echo-message", "batch",
            "labeled-response", "draft/chathistory"]
