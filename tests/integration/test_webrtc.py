"""Issue 3's acceptance bar: PeerPipe's C WebRTC stack (tests/tools/rtcpeer.c
on lib/rtc) against independent peers, negotiated through the real
peerpipe-server over protocol v1.

1. C <-> C in two processes: 10,000 text + 10,000 binary messages each on an
   ordered and an unordered channel (order checked on the ordered one), and
   100 MB each way at once with SHA-256 verified at the far end.
2. C <-> aiortc (Debian's python3-aiortc), the C side offering and
   answering; aiortc's offer carries a recvonly audio m-line like existing
   PeerPipe peers; text and binary both ways (one side drives, the other
   echoes, and then the other way round).
3. C <-> Chromium (headless, playwright-core), both roles.
4. Failure paths: a fingerprint changed in transit is refused with a clear
   error and no data; a peer that vanishes is noticed by ICE consent
   freshness; malformed SDP is refused and the process goes on serving.

Everything runs on loopback: every peer gathers on 127.0.0.1 only.
"""

import json
import os
import re
import time
import uuid

import pytest

from peers import PeerRun, needs_chromium, peer_command, run_pair

ROOM = "webrtc suite"


@pytest.fixture
def server(server_factory):
    return server_factory()


def run(server, offer, answer):
    return run_pair(server, offer, answer, room_name=ROOM)


def channel(res, label):
    return res["channels"][label]


def check_c_driver(res, count, large=True):
    """Our driver's own count: every echo back, in order where ordered."""
    assert res["ok"] is True and res["impl"] == "peerpipe-c", res
    ordered = channel(res, "test-ordered")
    # the 64 KiB and 256 KiB messages, where the peer takes them
    assert ordered["sent"] == 2 * count + (2 if large else 1), res
    assert ordered["echoed"] == ordered["sent"] and ordered["in_order"], res
    unordered = channel(res, "test-unordered")
    # maxRetransmits=0: a lost message is legitimate, a few at most
    assert unordered["sent"] == unordered["echoed"] + unordered["lost"] \
        == 2 * count, res
    assert unordered["lost"] <= count // 5, res
    assert "127.0.0.1" in res["selected_pair"], res


# ---- 1. C <-> C ----

def test_c_to_c_ten_thousand_messages_each_way(server):
    drv, echo = run(server, ("c", "drive", ["--count", "10000"]),
                    ("c", "echo", []))
    check_c_driver(drv, 10000)
    # the echo side saw the same messages: two test channels + control
    assert channel(echo, "test-ordered")["echoed"] == 20002, echo
    echo, drv = run(server, ("c", "echo", []),
                    ("c", "drive", ["--count", "10000"]))
    check_c_driver(drv, 10000)


def test_c_to_c_100_megabytes_both_ways_with_sha256(server):
    size = 100 * 1000 * 1000
    a, b = run(server, ("c", "bulk", ["--bytes", str(size)]),
               ("c", "bulk", ["--bytes", str(size)]))
    for res, mine, theirs in ((a, "bulk-peer-a", "bulk-peer-b"),
                              (b, "bulk-peer-b", "bulk-peer-a")):
        assert res["ok"] is True, res
        assert channel(res, mine)["bytes"] == size, res
        assert channel(res, theirs)["bytes"] == size, res


# ---- 2. C <-> aiortc ----

def test_c_offers_to_aiortc(server):
    drv, echo = run(server, ("c", "drive", []), ("aiortc", "echo", []))
    # aiortc announces a=max-message-size:65536: the 256 KiB one is skipped
    check_c_driver(drv, 100, large=False)
    assert channel(drv, "test-ordered")["sent"] == 201, drv
    assert echo["ok"] is True, echo
    # and the other direction: aiortc drives, we echo
    drv, echo = run(server, ("c", "echo", []), ("aiortc", "drive", []))
    assert drv["ok"] is True and echo["ok"] is True, (drv, echo)
    assert echo["channels"]["test-ordered"]["in_order"] is True, echo


def test_aiortc_offers_with_audio_to_c(server):
    echo, drv = run(server, ("aiortc", "echo", ["--audio"]),
                    ("c", "drive", []))
    check_c_driver(drv, 100, large=False)
    assert echo["ok"] is True, echo
    drv, echo = run(server, ("aiortc", "drive", ["--audio"]),
                    ("c", "echo", []))
    assert drv["ok"] is True and echo["ok"] is True, (drv, echo)
    assert drv.get("remote_sdp_has_audio") is True, drv


def test_c_legacy_offer_to_aiortc(server):
    drv, echo = run(server, ("c", "drive", ["--legacy-sdp"]),
                    ("aiortc", "echo", []))
    check_c_driver(drv, 100, large=False)


# ---- 3. C <-> Chromium ----

@needs_chromium
def test_c_offers_to_chromium(server):
    drv, echo = run(server, ("c", "drive", []), ("chromium", "echo", []))
    check_c_driver(drv, 100)
    assert echo["ok"] is True, echo


@needs_chromium
def test_chromium_offers_to_c(server):
    drv, echo = run(server, ("chromium", "drive", []), ("c", "echo", []))
    assert drv["ok"] is True and echo["ok"] is True, (drv, echo)
    assert drv["channels"]["test-ordered"]["in_order"] is True, drv
    echo2, drv2 = run(server, ("chromium", "echo", []), ("c", "drive", []))
    check_c_driver(drv2, 100)


# ---- 4. failure paths ----

def start_peer(server, impl, room, name, other, role, mode, *extra,
               label=None, tmp=None):
    cmd = peer_command(impl, server, room, name, other, role, mode, *extra,
                       room_name=ROOM)
    return PeerRun(label or "%s-%s" % (impl, name), cmd, str(tmp))


def wait_for_log(run, pattern, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(run.err_path, "rb") as f:
            if re.search(pattern, f.read().decode("utf-8", "replace")):
                return
        if run.proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail("no %r in %s's log:\n%s" % (pattern, run.label,
                                            run.stderr_tail()))


def test_changed_fingerprint_is_refused_without_data(server, tmp_path):
    """We play the man in the middle on our own side: rtcpeer changes one
    digit of the fingerprint in the SDP it receives.  The DTLS certificate
    aiortc presents then does not match: refused, no channel, no data."""
    room = str(uuid.uuid4())
    ours = start_peer(server, "c", room, "peer-a", "peer-b", "offer", "drive",
                      "--tamper-remote-fingerprint", tmp=tmp_path)
    theirs = start_peer(server, "aiortc", room, "peer-b", "peer-a", "answer",
                        "echo", tmp=tmp_path)
    try:
        ours.wait(120)
        res = ours.result()
        assert res["ok"] is False, res
        assert "fingerprint does not match" in res["error"], res
        for label, c in res["channels"].items():
            assert c["echoed"] == 0 and c["bytes"] == 0, res
        log = ours.stderr_tail(100000)
        assert "channel test-ordered open" not in log
    finally:
        ours.kill()
        theirs.kill()


def test_vanished_peer_is_detected_by_consent_freshness(server, tmp_path):
    room = str(uuid.uuid4())
    ours = start_peer(server, "c", room, "peer-a", "peer-b", "offer", "drive",
                      "--count", "100000000", "--timeout", "300", tmp=tmp_path)
    theirs = start_peer(server, "c", room, "peer-b", "peer-a", "answer",
                        "echo", "--timeout", "300", tmp=tmp_path)
    try:
        wait_for_log(ours, r"rtc: peer-b: connected")
        wait_for_log(ours, r"channel test-ordered open")
        theirs.proc.kill()		# SIGKILL: no close, no goodbye
        ours.wait(120)
        res = ours.result()
        assert res["ok"] is False, res
        assert "ICE" in res["error"] or "SCTP" in res["error"], res
    finally:
        ours.kill()
        theirs.kill()


def test_malformed_offer_is_refused_and_serving_goes_on(server, tmp_path):
    """A garbage offer (from a plain signaling client that takes the name
    first) is refused with a log line; the same C process then answers a
    real aiortc offer and echoes its traffic."""
    import asyncio
    import ssl
    import websockets

    room = str(uuid.uuid4())
    ours = start_peer(server, "c", room, "peer-b", "peer-a", "answer", "echo",
                      "--timeout", "200", tmp=tmp_path)

    async def send_garbage():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = "wss://%s:%d/ws" % (server.host, server.port)
        async with websockets.connect(url, ssl=ctx) as ws:
            await ws.send(json.dumps({"type": "FAST_ROOM_EXACT",
                                      "room_uuid": room, "room_name": ROOM,
                                      "user_name": "peer-a"}))
            joined = json.loads(await ws.recv())
            members = joined.get("data", {}).get("room_members", [])
            while "peer-b" not in members:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if ev["type"] == "ROOM_NEW_MEMBER":
                    members.append(ev["data"]["name"])
            for bad in ("this is not SDP", "v=0\r\nm=application 9 junk\r\n",
                        "v=0\r\n" + "a=x\r\n" * 5000):
                await ws.send(json.dumps({
                    "type": "SDP_NEW_STATE", "room_uuid": room,
                    "room_name": ROOM, "user_name": "peer-a",
                    "target_user": "peer-b", "sdp_type": "offer",
                    "sdp_data": bad}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert reply["type"] == "SUCCESS", reply

    try:
        asyncio.run(send_garbage())
        wait_for_log(ours, r"refused an offer from peer-a: sdp")
        assert ours.proc.poll() is None, ours.stderr_tail()
        drv = start_peer(server, "aiortc", room, "peer-a", "peer-b",
                         "offer", "drive", tmp=tmp_path)
        try:
            drv.wait(200)
            res = drv.result()
            assert res["ok"] is True, drv.diagnosis()
        finally:
            drv.kill()
        ours.wait(60)
        assert ours.result()["ok"] is True, ours.diagnosis()
    finally:
        ours.kill()
