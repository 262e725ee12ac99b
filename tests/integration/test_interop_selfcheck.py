"""Self-check of the interop test peers, through the real peerpipe-server.

tests/interop/aiortc_peer.py (aiortc 1.4) and tests/interop/browser/
chromium_peer.mjs (Chromium via playwright-core) are the two independent
peers our C peer is tested against later.  Here they are paired with each
other -- aiortc<->aiortc, Chromium<->aiortc both ways, Chromium<->Chromium --
so that a failure in a later C-peer test can be blamed on the C peer.

All traffic stays on loopback: every peer gets --host-address 127.0.0.1
(aiortc gathers on it; the Chromium page signals its UDP host candidates with
127.0.0.1, its sockets being bound to the wildcard address), and no STUN or
TURN server is configured anywhere.

The Chromium cases are skipped unless /usr/bin/chromium and
tests/interop/node_modules exist (scripts/install-browser.sh installs both).
Nothing here asserts on durations; the waits are generous upper bounds.
"""

import shutil
import subprocess
import tempfile
import uuid

import pytest

from peers import (COUNT, INTEROP, OFFERER, PEER_JS, PYTHON, WAIT_MARGIN,
                   PeerRun, needs_chromium, peer_command, run_pair)

def check_common(res, impl, role, mode):
    assert res["impl"] == impl
    assert res["role"] == role
    assert res["mode"] == mode
    assert "error" not in res
    # every pair used in these tests is on loopback
    assert res["selected_pair"] and "127.0.0.1" in res["selected_pair"], res


def check_drive(res, large_expected):
    """The driver saw every echo on the reliable channels, in order, and
    nearly every one on test-unordered (maxRetransmits=0: a loss there is
    legitimate, the peer tolerates up to 10%); large_expected maps size ->
    "echoed" or "skipped"."""
    n = 2 * COUNT
    chans = res["channels"]
    assert set(chans) == {"control-channel", "test-ordered",
                          "test-unordered"}, chans
    n_large = sum(1 for v in large_expected.values() if v == "echoed")
    assert chans["test-ordered"] == {"sent": n + n_large,
                                     "echoed": n + n_large,
                                     "in_order": True}, chans
    assert chans["control-channel"] == {"sent": n, "echoed": n,
                                        "in_order": True}, chans
    unordered = chans["test-unordered"]
    assert unordered["sent"] == n, chans
    assert unordered["echoed"] + unordered["lost"] == n, chans
    assert unordered["lost"] <= n // 10, chans
    got = {size: state.split(":")[0]
           for size, state in res["large_messages"].items()}
    assert got == large_expected, res["large_messages"]


def check_echo(res, driver):
    """The echoing side sent back exactly what reached it."""
    n = 2 * COUNT
    chans = res["channels"]
    assert set(chans) == {"control-channel", "test-ordered",
                          "test-unordered"}, chans
    n_large = sum(1 for v in driver["large_messages"].values()
                  if v == "echoed")
    assert chans["test-ordered"]["received"] == n + n_large, chans
    assert chans["control-channel"]["received"] == n, chans
    unordered = chans["test-unordered"]
    assert driver["channels"]["test-unordered"]["echoed"] <= \
        unordered["received"] <= n, (chans, driver["channels"])
    for label, c in chans.items():
        assert c["sent"] == c["received"] == c["echoed"], chans


AIORTC_LARGE = {"65536": "echoed", "262144": "skipped"}
CHROMIUM_LARGE = {"65536": "echoed", "262144": "echoed"}


def test_aiortc_offer_echo_with_aiortc_answer_drive(server):
    """The existing PeerPipe shape: aiortc offers (legacy SCTP SDP, recvonly
    audio m-line), the other side drives."""
    off, ans = run_pair(server, ("aiortc", "echo", []),
                        ("aiortc", "drive", []))
    check_common(off, "aiortc", "offer", "echo")
    check_common(ans, "aiortc", "answer", "drive")
    check_drive(ans, AIORTC_LARGE)
    check_echo(off, ans)
    assert ans["remote_sdp_has_audio"] is True
    assert ans["remote_max_message_size"] == 65536


def test_aiortc_offer_drive_modern_sdp_no_audio_with_aiortc(server):
    off, ans = run_pair(server, ("aiortc", "drive", ["--modern-sdp",
                                                     "--no-audio"]),
                        ("aiortc", "echo", []))
    check_common(off, "aiortc", "offer", "drive")
    check_drive(off, AIORTC_LARGE)
    check_echo(ans, off)
    assert off["remote_sdp_has_audio"] is False
    assert ans["remote_sdp_has_audio"] is False


@needs_chromium
def test_chromium_offer_drive_with_aiortc_answer_echo(server):
    """Chromium offers (trickled candidates, recvonly audio); aiortc
    answers and must take the trickled candidates."""
    logs = []
    off, ans = run_pair(server, ("chromium", "drive", []),
                        ("aiortc", "echo", []), logs)
    # aiortc took Chromium's trickled loopback candidate for the BUNDLE mid
    # (ICE may still have found the pair first as peer-reflexive)
    assert "candidate: adding remote (mid '0')" in logs[1], logs[1]
    check_common(off, "chromium", "offer", "drive")
    check_common(ans, "aiortc", "answer", "echo")
    check_drive(off, AIORTC_LARGE)
    check_echo(ans, off)
    assert off["local_max_message_size"] == 262144
    assert off["remote_max_message_size"] == 65536
    assert ans["remote_sdp_has_audio"] is True


@needs_chromium
def test_chromium_offer_echo_with_aiortc_answer_drive(server):
    off, ans = run_pair(server, ("chromium", "echo", []),
                        ("aiortc", "drive", []))
    check_common(off, "chromium", "offer", "echo")
    check_common(ans, "aiortc", "answer", "drive")
    check_drive(ans, AIORTC_LARGE)
    check_echo(off, ans)
    assert ans["remote_max_message_size"] == 262144


@needs_chromium
def test_aiortc_offer_drive_with_chromium_answer_echo(server):
    """aiortc's native (legacy DTLS/SCTP + sctpmap) offer with an audio
    m-line, answered by Chromium."""
    off, ans = run_pair(server, ("aiortc", "drive", []),
                        ("chromium", "echo", []))
    check_common(off, "aiortc", "offer", "drive")
    check_common(ans, "chromium", "answer", "echo")
    check_drive(off, AIORTC_LARGE)
    check_echo(ans, off)
    assert ans["remote_sdp_has_audio"] is True


@needs_chromium
def test_chromium_legacy_sdp_offer_with_aiortc(server):
    """Chromium's offer rewritten to the legacy SCTP form still works."""
    off, ans = run_pair(server, ("chromium", "drive", ["--legacy-sdp",
                                                       "--no-audio"]),
                        ("aiortc", "echo", []))
    check_drive(off, AIORTC_LARGE)
    check_echo(ans, off)
    assert ans["remote_sdp_has_audio"] is False


@needs_chromium
def test_chromium_with_chromium(server):
    """The reference pairing: both advertise 262144-byte messages."""
    off, ans = run_pair(server, ("chromium", "drive", []),
                        ("chromium", "echo", []))
    check_common(off, "chromium", "offer", "drive")
    check_drive(off, CHROMIUM_LARGE)
    check_echo(ans, off)


@pytest.mark.parametrize("impl", [
    "aiortc", pytest.param("chromium", marks=needs_chromium)])
def test_absent_peer_times_out_with_a_clear_error(server, impl):
    cmd = peer_command(impl, server, str(uuid.uuid4()), OFFERER, "nobody",
                       "offer", "drive")
    cmd[cmd.index("--timeout") + 1] = "3"
    workdir = tempfile.mkdtemp(prefix="pp-interop-")
    run = PeerRun("absent-" + impl, cmd, workdir)
    try:
        run.wait(3 + WAIT_MARGIN)
        res = run.result()
        assert run.rc == 1, run.diagnosis()
        assert res["ok"] is False
        assert res["impl"] == impl
        assert "timeout after 3 s while waiting for nobody to join the room" \
            in res["error"], res
    finally:
        run.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="node missing")
def test_message_generators_agree():
    """aiortc_peer.py and peer.js make byte-identical test messages."""
    py = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]);"
        "import aiortc_peer as p; h = hashlib.sha256()\n"
        "for i in range(%d): h.update(p.binary_message(i))\n"
        "h.update(p.large_message(0, 65536));"
        "h.update(p.large_message(1, 262144)); print(h.hexdigest())" % COUNT)
    want = subprocess.run([PYTHON, "-B", "-c", py, INTEROP],
                          capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()
    script = (
        "const vm = require('vm'), fs = require('fs'), c = require('crypto');"
        "const ctx = {}; vm.createContext(ctx);"
        "vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), ctx);"
        "const M = ctx.PPMessages, h = c.createHash('sha256');"
        "for (let i = 0; i < %d; i++) h.update(M.binaryMessage(i));"
        "h.update(M.largeMessage(0, 65536));"
        "h.update(M.largeMessage(1, 262144));"
        "console.log(h.digest('hex'));" % COUNT)
    out = subprocess.run([shutil.which("node"), "-e", script, PEER_JS],
                         capture_output=True, text=True, timeout=120,
                         check=True).stdout.strip()
    assert out == want and len(want) == 64
