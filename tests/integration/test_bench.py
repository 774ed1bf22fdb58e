"""The load generator (bench/pchat-bench) against a real pchatd: the figures
docs/benchmarks.md reports come from it, so its counts must be right."""
import json
import os
import subprocess

from conftest import BUILDDIR

BENCH = os.path.join(BUILDDIR, "bench", "pchat-bench")


def bench(server, *args):
    out = subprocess.run([BENCH, "--json", "--server-pid", str(server.proc.pid)]
                         + list(args), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_posting_counts_match_the_server(server):
    j = bench(server, "--port", str(server.port), "--clients", "40", "--rooms", "4",
              "--rate", "200", "--duration", "2", "--warmup", "0.5", "--cap")
    assert j["errors"]["total"] == 0, j["errors"]
    assert j["joined"] == 40 and j["held"] == 40
    # About 200 posts/s for 2 s, each echoed to its author and delivered to
    # the 9 others of its room.
    assert 300 <= j["posts"] <= 500, j["posts"]
    assert j["acks"] == j["posts"]
    assert j["deliveries"] == 9 * j["posts"], (j["deliveries"], j["posts"])
    lat = j["latency_us"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], lat
    # Every acknowledged post is in the database.
    stored = int(server.query("SELECT count(*) FROM messages").strip())
    assert stored >= j["posts"], (stored, j["posts"])
    assert j["server_rss_kib_after"] > 0


def test_tls_handshake_only(server):
    j = bench(server, "--port", str(server.tls_port), "--tls", "--handshake-only",
              "--clients", "30", "--duration", "0.5")
    assert j["errors"]["total"] == 0, j["errors"]
    assert j["handshaken"] == 30 and j["held"] == 30
    assert j["registered"] == 0
    assert j["handshakes_per_sec"] > 0


def test_handshake_only_needs_tls(server):
    out = subprocess.run([BENCH, "--port", str(server.port), "--handshake-only"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage" in out.stderr
