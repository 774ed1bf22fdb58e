"""The test client's own parsing (no server needed): if these are wrong,
every other test is wrong with them."""
import socket
import threading

from ircclient import Client, Msg, unescape_tag


def test_tag_unescaping():
    assert unescape_tag(r"a\sb\:c\\d\re\nf") == "a b;c\\d\re\nf"
    assert unescape_tag("x\\") == "x"          # a trailing backslash is dropped
    assert unescape_tag(r"\b") == "b"          # unknown escapes lose the backslash
    assert unescape_tag("") == ""


def test_message_parsing():
    m = Msg("@time=2026-01-01T00:00:00.000Z;msgid=abc;+draft/x=a\\sb;flag "
            ":nick!user@host PRIVMSG #chan :hello  world ")
    assert m.tags == {"time": "2026-01-01T00:00:00.000Z", "msgid": "abc",
                      "+draft/x": "a b", "flag": ""}
    assert m.source == "nick!user@host" and m.nick == "nick"
    assert m.command == "PRIVMSG" and m.params == ["#chan", "hello  world "]
    m = Msg(":srv 005 me CASEMAPPING=rfc1459 UTF8ONLY :are supported by this server")
    assert m.params == ["me", "CASEMAPPING=rfc1459", "UTF8ONLY", "are supported by this server"]
    m = Msg("ping :")
    assert m.command == "PING" and m.params == [""]
    m = Msg("CAP * LS * :a b=c")
    assert m.params == ["*", "LS", "*", "a b=c"]
    assert Msg(":srv  001   me  :hi").params == ["me", "hi"]


def test_framing_and_multiline_cap_ls():
    """Lines split across reads, LF-only endings, a two-line CAP LS."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        f = conn.makefile("rb")
        f.readline()  # CAP LS 302
        conn.sendall(b":s CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL\r\n:s CAP * L")
        conn.sendall(b"S :batch draft/chathistory\n")
        conn.sendall(b":s 001 me :hi\r\n:s 005 me A=1 B :are supported\r\n:s 422 me :none\r\n")
        f.readline()
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = Client(lsock.getsockname()[1], timeout=3)
    c.send("CAP LS 302")
    offered = c.cap_ls()
    assert offered == {"multi-prefix": "", "sasl": "PLAIN,EXTERNAL", "batch": "",
                       "draft/chathistory": ""}
    welcome = c.collect_until(lambda m: m.command == "422")
    c.welcome = welcome
    assert c.isupport() == {"A": "1", "B": ""}
    c.send("QUIT")
    t.join(3)
    c.close()
    lsock.close()
