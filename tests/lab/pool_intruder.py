"""A rogue member of a pchat pool, for the lab's tests: joins the pool's CPG
group through libcpg (ctypes, no pchat code) and multicasts messages that a
pchatd must ignore: another pool protocol version, bad framing, unknown and
truncated events. Run inside a lab host as root:

    tests/lab/exec c3 python3 tests/lab/pool_intruder.py pchat:pchat 2

GROUP is "pchat:" + the [server] network setting; VERSION is the protocol
the pool speaks (PC_POOL_PROTOCOL in src/pchatd/main.c): the framing cases
use it so that they get past the version check. The wire format is the one
of src/pool/bus_cpg.c (magic "PCB1", version, sender pid, then payloads each
after its u32 length, little-endian) and src/chat/wire.h (a type byte, then
the event). Prints one JSON object: the cases sent, by name."""
import ctypes
import json
import os
import struct
import sys
import time

CS_OK = 1
CS_ERR_TRY_AGAIN = 6
CPG_TYPE_AGREED = 1
MAGIC = 0x50434231  # "PCB1"


class CpgName(ctypes.Structure):
    _fields_ = [("length", ctypes.c_uint32), ("value", ctypes.c_char * 128)]


class Callbacks(ctypes.Structure):
    _fields_ = [("deliver", ctypes.c_void_p), ("confchg", ctypes.c_void_p)]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def check(what, rc):
    if rc != CS_OK:
        raise SystemExit("pool_intruder: %s failed: cs_error %d" % (what, rc))


def header(version, magic=MAGIC):
    return struct.pack("<III", magic, version, os.getpid())


def framed(*payloads):
    return b"".join(struct.pack("<I", len(p)) + p for p in payloads)


def cases(version):
    """(name, bytes) for every message the intruder sends."""
    hdr = header(version)
    u64 = struct.pack("<Q", 1)
    out = [
        ("short", b"PCB"),
        ("bad-magic", header(version, magic=0xDEADBEEF) + framed(b"\x02")),
        # What a pchatd of the next protocol version would send: a user
        # announcement, well formed in this version's terms.
        ("other-version", header(version + 1)
         + framed(b"\x02" + u64 + u64 + struct.pack("<H", 5) + b"rogue")),
        ("length-overrun", hdr + struct.pack("<I", 1000) + b"x" * 10),
        ("length-cut", hdr + framed(b"\x02" + u64) + b"\x01\x00"),
        ("empty-payload", hdr + framed(b"")),
        ("unknown-type", hdr + framed(b"\xee" + u64 + u64)),
        # A room message whose first string claims more than there is.
        ("room-msg-overlong-string", hdr + framed(b"\x01" + u64 * 4 + b"\x00"
                                                    + struct.pack("<H", 0xFFFF) + b"abc")),
        ("room-msg-trailing-bytes", hdr + framed(b"\x01" + u64 * 4 + b"\x00"
                                                   + struct.pack("<H", 0) * 7 + b"junk")),
    ]
    # Every event type there is (1..10 in protocol 4) and a few to come,
    # cut short after its type byte and a few bytes.
    for t in range(1, 17):
        out.append(("type-%d-truncated" % t, hdr + framed(bytes([t]) + b"\x01\x02\x03")))
    return out


def main():
    group, version = sys.argv[1].encode(), int(sys.argv[2])
    lib = ctypes.CDLL("libcpg.so.4")
    handle = ctypes.c_uint64(0)
    cbs = Callbacks(None, None)
    check("cpg_initialize", lib.cpg_initialize(ctypes.byref(handle), ctypes.byref(cbs)))
    name = CpgName(len(group), group)
    check("cpg_join", lib.cpg_join(handle, ctypes.byref(name)))
    nodeid = ctypes.c_uint(0)
    check("cpg_local_get", lib.cpg_local_get(handle, ctypes.byref(nodeid)))
    sent = []
    for what, data in cases(version):
        buf = ctypes.create_string_buffer(data, len(data))
        iov = Iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))
        end = time.monotonic() + 5
        while True:
            rc = lib.cpg_mcast_joined(handle, CPG_TYPE_AGREED, ctypes.byref(iov), 1)
            if rc != CS_ERR_TRY_AGAIN or time.monotonic() > end:
                break
            time.sleep(0.01)
        check("cpg_mcast_joined (%s)" % what, rc)
        sent.append(what)
    # Stay a member a moment so that the messages are delivered before the
    # group sees this member leave.
    time.sleep(1)
    lib.cpg_leave(handle, ctypes.byref(name))
    lib.cpg_finalize(handle)
    print(json.dumps({"nodeid": nodeid.value, "pid": os.getpid(), "sent": sent}))


if __name__ == "__main__":
    main()
