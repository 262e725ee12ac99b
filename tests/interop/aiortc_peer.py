#!/usr/bin/python3
"""PeerPipe interop test peer on aiortc (Debian's python3-aiortc 1.4).

Joins a room on a PeerPipe signaling server (protocol v1), makes or answers
one WebRTC peer connection with the peer named --peer, and then either echoes
every data-channel message back (--mode echo) or drives a data-channel test
against an echoing peer (--mode drive).  It prints exactly one line on stdout,

    RESULT {"ok": true, "role": ..., "mode": ..., "impl": "aiortc", ...}

and exits 0 when ok, 1 otherwise; logs go to stderr.  The browser peer
(browser/peer.js, run by browser/chromium_peer.mjs) implements the same
contract in Chromium, and so will the C peer.

Usage:
  /usr/bin/python3 tests/interop/aiortc_peer.py --url wss://127.0.0.1:PORT/ws \\
      --room-uuid UUID --room-name NAME --name ME --peer OTHER \\
      --role offer|answer --mode drive|echo [--count N] [--timeout SECS] \\
      [--legacy-sdp|--modern-sdp] [--audio|--no-audio] [--window N] \\
      [--loss-wait SECS] [--host-address ADDR ...] [--verbose]

Drive mode, in three phases (each channel's echoes checked for content and
type, and for order on the ordered channels):
  1. test-ordered (reliable, ordered) and control-channel (if the offerer
     made it, which it always does here): --count strings and --count
     binary messages each, interleaved, concurrently;
  2. test-unordered (ordered=false, maxRetransmits=0) alone: the same; a
     loss there is legitimate: messages with no echo after --loss-wait
     seconds of silence count as "lost", more than 10% fails;
  3. test-ordered: one 65536-byte and one 262144-byte binary message, each
     only if both sides' a=max-message-size allow it (absent = 65536, 0 =
     no limit), else reported as skipped.
  At most --window messages per channel are in flight without their echo.
  Then it closes the channels and the peer connection.  Echo mode sends
  every message back on its channel unchanged until the peer connection
  ends, every channel that opened is closed, or the peer left the room.

Notes on aiortc 1.4 that this peer works with, not around:
  * aiortc never trickles: its offer/answer carries all its candidates and
    a=end-of-candidates.  It accepts trickled candidates (SDP_STATE
    "candidate"), but only for the mid that owns the BUNDLE transport (the
    first m-line); candidates for a bundled mid are dropped by aiortc (we log).
  * Its native data m-line is the LEGACY form ("m=application P DTLS/SCTP
    5000" + "a=sctpmap:5000 webrtc-datachannel 65535"); --modern-sdp makes it
    offer "UDP/DTLS/SCTP webrtc-datachannel" + "a=sctp-port:5000".  An answer
    follows the offer's form whatever the flag says.
  * aioice gathers host candidates on every interface address except the
    literal 127.0.0.1 and ::1.  --host-address replaces that list (127.0.0.1
    allowed), which keeps two peers on one machine on loopback.
  * It advertises a=max-message-size:65536.
  * Remote mDNS (".local") candidates are not resolved (that would send
    multicast): they are logged and ignored.
  * Its SCTP receiver mishandles FORWARD-TSN (RFC 3758): on one it drops
    every queued chunk up to the new cumulative TSN on ALL streams,
    including fragments of reliable messages still being reassembled, and
    such a reliable stream then stalls for good.  A loss on test-unordered
    while reliable traffic is in flight is enough, which is why drive mode
    runs the unreliable channel in a phase of its own (see --window).

Test messages (identical in every implementation):
  string i   "msg <i>"
  binary i   4-byte big-endian i, then 1..2000 bytes from prng(i)
  large S    4-byte big-endian (0xFFFF0000 + k), then S-4 bytes from prng of
             that index (k = 0 for 65536 bytes, 1 for 262144), sent on
             test-ordered only when both max-message-sizes allow S
  prng(seed) xorshift32: x = (seed * 2654435761 + 0x9E3779B9) mod 2^32
             (1 if that is 0); next: x ^= x << 13; x ^= x >> 17; x ^= x << 5
             (all mod 2^32); a binary message's length is 1 + next() % 2000,
             then each byte is next() & 0xFF.
"""

import argparse
import asyncio
import json
import logging
import re
import ssl
import struct
import sys
import time

import aioice.ice
from aiortc import (RTCConfiguration, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.sdp import candidate_from_sdp
import websockets

IMPL = "aiortc"
CONTROL = "control-channel"
ORDERED = "test-ordered"
UNORDERED = "test-unordered"
LARGE_SIZES = (65536, 262144)
LARGE_BASE = 0xFFFF0000
DEFAULT_MAX_MESSAGE_SIZE = 65536	# RFC 8841 6.1: absent attribute = 64 KiB

log = logging.getLogger("aiortc_peer")


class PeerError(Exception):
    """A failure with a message fit for the RESULT line."""


# ---------------------------------------------------------------- messages

def _prng(seed):
    x = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
    if x == 0:
        x = 1
    while True:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        yield x


def string_message(i):
    return "msg %d" % i


def binary_message(i):
    gen = _prng(i)
    n = 1 + next(gen) % 2000
    return struct.pack(">I", i) + bytes(next(gen) & 0xFF for _ in range(n))


def large_message(k, size):
    index = LARGE_BASE + k
    gen = _prng(index)
    return struct.pack(">I", index) + bytes(
        next(gen) & 0xFF for _ in range(size - 4))


def message_key(msg):
    """("s", i) / ("b", i): which test message this is (None if neither)."""
    if isinstance(msg, str):
        m = re.fullmatch(r"msg (\d+)", msg)
        return ("s", int(m.group(1))) if m else None
    if isinstance(msg, (bytes, bytearray)) and len(msg) >= 4:
        return ("b", struct.unpack(">I", bytes(msg[:4]))[0])
    return None


def describe(msg):
    if isinstance(msg, str):
        return "string %r" % (msg[:40],)
    return "binary of %d bytes" % len(msg)


# ---------------------------------------------------------------- SDP

def sdp_sections(sdp):
    """[(m-line, [attribute lines])] for each media section."""
    sections = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line)
    return sections


def sdp_has_audio(sdp):
    return any(m.startswith("m=audio ") for m, _ in sdp_sections(sdp))


def sdp_max_message_size(sdp):
    """The application section's a=max-message-size (0 = no limit)."""
    for m, attrs in sdp_sections(sdp):
        if m.startswith("m=application "):
            for a in attrs:
                if a.startswith("a=max-message-size:"):
                    try:
                        return int(a.split(":", 1)[1])
                    except ValueError:
                        return DEFAULT_MAX_MESSAGE_SIZE
            return DEFAULT_MAX_MESSAGE_SIZE
    return DEFAULT_MAX_MESSAGE_SIZE


def sdp_mids(sdp):
    mids = []
    for _, attrs in sdp_sections(sdp):
        mid = None
        for a in attrs:
            if a.startswith("a=mid:"):
                mid = a[6:]
        mids.append(mid)
    return mids


def size_allowed(size, limit):
    return limit == 0 or size <= limit


# ---------------------------------------------------------------- candidates

def remote_candidate(data, remote_sdp):
    """(candidate, text) for a trickled SDP_STATE candidate's sdp_data,
    or None (logged) for one aiortc cannot or must not use."""
    if not isinstance(data, dict):
        log.warning("candidate: sdp_data is not an object: %r", data)
        return None
    text = data.get("candidate")
    mid = data.get("sdpMid")
    index = data.get("sdpMLineIndex")
    if not text:
        log.info("candidate: end-of-candidates (empty) from peer, "
                 "ignored (aiortc 1.4 has no API for it)")
        return None
    if not isinstance(text, str):
        log.warning("candidate: not a string: %r", text)
        return None
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    try:
        cand = candidate_from_sdp(text)
    except Exception as e:
        log.warning("candidate: cannot parse %r: %s", text, e)
        return None
    if mid is None and isinstance(index, int) and remote_sdp:
        mids = sdp_mids(remote_sdp)
        if 0 <= index < len(mids):
            mid = mids[index]
    cand.sdpMid = mid
    cand.sdpMLineIndex = index
    if cand.ip.endswith(".local"):
        log.warning("candidate: mDNS candidate %s ignored (not "
                    "resolved: that would send multicast)", cand.ip)
        return None
    return cand, text


def bundle_owner_mid(pc):
    """The mid whose transport carries the BUNDLE group (aiortc 1.4
    takes trickled candidates only for it), or None."""
    try:
        for t in pc.getTransceivers():
            if t.mid is not None and not t._bundled:
                return t.mid
        if pc.sctp is not None and not pc.sctp._bundled:
            return pc.sctp.mid
    except Exception:
        pass
    return None


async def add_remote_candidate(pc, data, remote_sdp):
    """Hands a trickled candidate (SDP_STATE sdp_data) to aiortc."""
    got = remote_candidate(data, remote_sdp)
    if got is None:
        return
    cand, text = got
    owner = bundle_owner_mid(pc)
    if owner is not None and cand.sdpMid != owner:
        log.warning("candidate: mid %r is bundled on mid %r: aiortc 1.4 "
                    "drops it: %s", cand.sdpMid, owner, text)
    else:
        log.info("candidate: adding remote (mid %r) %s", cand.sdpMid, text)
    try:
        await pc.addIceCandidate(cand)
    except Exception as e:
        log.warning("candidate: addIceCandidate failed: %s: %s",
                    type(e).__name__, e)


# ---------------------------------------------------------------- signaling

class Signaling:
    """A v1 signaling connection: requests, replies and pushed events."""

    def __init__(self, args):
        self.args = args
        self.ws = None
        self.members = set()
        self.peer_left = asyncio.Event()
        self.peer_present = asyncio.Event()
        self.sdp_queue = asyncio.Queue()	# SDP_STATE data from our peer
        self.closed = asyncio.Event()
        self.error = None		# fatal signaling error (str)
        self._pending = []		# FIFO of (description, future)
        self._reader = None

    def ssl_context(self):
        """The TLS client context: the test servers' certificates are
        self-signed, so no verification."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def connect(self):
        ctx = self.ssl_context()
        log.info("signaling: connecting to %s", self.args.url)
        try:
            self.ws = await websockets.connect(
                self.args.url, ssl=ctx, compression=None, max_size=None,
                open_timeout=self.args.timeout, ping_interval=None)
        except Exception as e:
            raise PeerError("signaling: cannot connect to %s: %s: %s"
                            % (self.args.url, type(e).__name__, e))
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for text in self.ws:
                try:
                    msg = json.loads(text)
                except ValueError:
                    log.warning("signaling: non-JSON message ignored: %r",
                                text[:200])
                    continue
                self._dispatch(msg)
        except websockets.ConnectionClosed as e:
            log.info("signaling: connection closed (%s)", e)
        except Exception as e:	# pragma: no cover - diagnostics
            log.warning("signaling: read error: %s: %s", type(e).__name__, e)
        finally:
            self.closed.set()
            for desc, fut in self._pending:
                if not fut.done():
                    fut.set_exception(PeerError(
                        "signaling: connection closed before the reply to "
                        + desc))
            self._pending.clear()

    def _dispatch(self, msg):
        if not isinstance(msg, dict):
            log.warning("signaling: non-object message ignored: %r", msg)
            return
        mtype = msg.get("type")
        data = msg.get("data")
        if not isinstance(data, dict):
            data = {}
        if mtype in ("SUCCESS", "FAILED", "ROOM_CREATED", "ROOM_JOINED"):
            if not self._pending:
                log.warning("signaling: unexpected reply %s", msg)
                return
            desc, fut = self._pending.pop(0)
            if not fut.done():
                fut.set_result(msg)
            return
        self.event(mtype, data, msg)

    def event(self, mtype, data, msg):
        """A pushed event (not a reply); subclasses may override."""
        if mtype == "ROOM_NEW_MEMBER":
            name = data.get("name")
            log.info("signaling: %s joined the room", name)
            self.members.add(name)
            if name == self.args.peer:
                self.peer_present.set()
        elif mtype == "ROOM_MEMBER_LEFT":
            name = data.get("name")
            log.info("signaling: %s left the room", name)
            self.members.discard(name)
            if name == self.args.peer:
                self.peer_left.set()
        elif mtype == "SDP_STATE":
            sender = data.get("from")
            if sender != self.args.peer:
                log.warning("signaling: SDP_STATE %s from %r (not our peer) "
                            "ignored", data.get("type"), sender)
                return
            self.sdp_queue.put_nowait(data)
        else:
            log.warning("signaling: unknown message ignored: %s", msg)

    async def request(self, desc, obj):
        if self.closed.is_set():
            raise PeerError("signaling: connection closed, cannot send "
                            + desc)
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((desc, fut))
        try:
            await self.ws.send(json.dumps(obj))
        except websockets.ConnectionClosed as e:
            raise PeerError("signaling: connection closed while sending %s: "
                            "%s" % (desc, e))
        return await fut

    async def join(self):
        a = self.args
        reply = await self.request("FAST_ROOM_EXACT", {
            "type": "FAST_ROOM_EXACT", "room_uuid": a.room_uuid,
            "room_name": a.room_name, "user_name": a.name})
        rtype, data = reply.get("type"), reply.get("data") or {}
        if rtype == "ROOM_CREATED":
            log.info("signaling: created room %s", data.get("room_uuid"))
            self.members.add(a.name)
        elif rtype == "ROOM_JOINED":
            members = data.get("room_members") or []
            log.info("signaling: joined room, members %s", members)
            self.members.update(members)
            if a.peer in members:
                self.peer_present.set()
        else:
            raise PeerError("signaling: FAST_ROOM_EXACT failed: %s"
                            % json.dumps(reply))

    async def send_sdp(self, sdp_type, sdp_data, target=None):
        a = self.args
        target = a.peer if target is None else target
        reply = await self.request("SDP_NEW_STATE(%s)" % sdp_type, {
            "type": "SDP_NEW_STATE", "room_uuid": a.room_uuid,
            "room_name": a.room_name, "user_name": a.name,
            "target_user": target, "sdp_type": sdp_type,
            "sdp_data": sdp_data})
        if reply.get("type") != "SUCCESS":
            raise PeerError("signaling: SDP_NEW_STATE(%s) to %s failed: %s"
                            % (sdp_type, target, json.dumps(reply)))

    async def close(self):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except BaseException:
                pass


# ---------------------------------------------------------------- the peer

class ChannelStats:
    def __init__(self):
        self.sent = 0
        self.echoed = 0
        self.received = 0
        self.in_order = True
        self.lost = None	# drive, test-unordered: messages given up on


class Peer:
    def __init__(self, args):
        self.args = args
        self.phase = "starting"
        self.result = {"ok": False, "role": args.role, "mode": args.mode,
                       "impl": IMPL, "channels": {},
                       "remote_sdp_has_audio": False, "selected_pair": None}
        self.sig = Signaling(args)
        self.pc = None
        self.channels = {}		# label -> RTCDataChannel
        self.stats = {}			# label -> ChannelStats
        self.channel_event = asyncio.Event()	# some channel changed state
        self.state_event = asyncio.Event()	# connection state changed
        self.remote_sdp = None
        self.local_sdp = None
        self.ever_open = False
        self._early = []		# candidates that came before the SDP

    # ------------------------------------------------ setup

    def _stat(self, label):
        if label not in self.stats:
            self.stats[label] = ChannelStats()
        return self.stats[label]

    def _watch_channel(self, ch):
        label = ch.label
        if label in self.channels and self.channels[label] is not ch:
            log.warning("datachannel: second channel labelled %r", label)
        self.channels[label] = ch
        self._stat(label)

        def changed():
            if ch.readyState == "open":
                self.ever_open = True
            log.info("datachannel %s (id %s): %s", label, ch.id,
                     ch.readyState)
            self.channel_event.set()

        ch.on("open", changed)
        ch.on("close", changed)
        if self.args.mode == "echo":
            def echo(msg):
                st = self._stat(label)
                st.received += 1
                try:
                    ch.send(msg)
                except Exception as e:
                    log.warning("echo on %s failed: %s: %s", label,
                                type(e).__name__, e)
                    return
                st.sent += 1
                st.echoed += 1
            ch.on("message", echo)
        if ch.readyState == "open":
            self.ever_open = True
        self.channel_event.set()

    def _create_pc(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.args.sdp_format == "legacy":
            pc._sctpLegacySdp = True
        elif self.args.sdp_format == "modern":
            pc._sctpLegacySdp = False

        @pc.on("datachannel")
        def on_datachannel(ch):
            log.info("datachannel: remote opened %r (id %s, ordered %s, "
                     "maxRetransmits %s)", ch.label, ch.id, ch.ordered,
                     ch.maxRetransmits)
            self._watch_channel(ch)

        @pc.on("connectionstatechange")
        def on_state():
            log.info("peer connection: %s", pc.connectionState)
            self.state_event.set()

        @pc.on("iceconnectionstatechange")
        def on_ice():
            log.info("ICE connection: %s", pc.iceConnectionState)
            self.state_event.set()

        self.pc = pc
        return pc

    def selected_pair(self):
        try:
            conn = self.pc.sctp.transport.transport._connection
            pair = conn._nominated.get(1)
            if pair is None:
                return None
            lc, rc = pair.local_candidate, pair.remote_candidate
            return "%s %s:%d (%s) <-> %s:%d (%s)" % (
                lc.transport.lower(), lc.host, lc.port, lc.type,
                rc.host, rc.port, rc.type)
        except Exception:
            return None

    async def _wait_for(self, event, predicate):
        while not predicate():
            event.clear()
            if predicate():
                break
            await event.wait()

    # ------------------------------------------------ negotiation

    async def _set_remote(self, sdp_type, sdp):
        if not isinstance(sdp, str):
            raise PeerError("signaling: %s sdp_data is not a string: %r"
                            % (sdp_type, sdp))
        log.info("remote %s SDP:\n%s", sdp_type, sdp.rstrip())
        self.remote_sdp = sdp
        self.result["remote_sdp_has_audio"] = sdp_has_audio(sdp)
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=sdp, type=sdp_type))
        except Exception as e:
            raise PeerError("setRemoteDescription(%s) failed: %s: %s"
                            % (sdp_type, type(e).__name__, e))

    async def _add_candidate(self, data):
        await add_remote_candidate(self.pc, data, self.remote_sdp)

    async def _next_sdp(self, what):
        """The next SDP_STATE from the peer; fails if the peer left."""
        get = asyncio.ensure_future(self.sig.sdp_queue.get())
        left = asyncio.ensure_future(self.sig.peer_left.wait())
        closed = asyncio.ensure_future(self.sig.closed.wait())
        try:
            await asyncio.wait([get, left, closed],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (left, closed):
                f.cancel()
        if get.done():
            return get.result()
        get.cancel()
        if left.done() and not left.cancelled():
            raise PeerError("peer %s left the room while waiting for %s"
                            % (self.args.peer, what))
        raise PeerError("signaling connection closed while waiting for %s"
                        % what)

    async def _sdp_loop(self):
        """Applies the peer's trickled candidates after the negotiation."""
        while True:
            data = await self.sig.sdp_queue.get()
            t = data.get("type")
            if t == "candidate":
                await self._add_candidate(data.get("sdp_data"))
            else:
                log.warning("signaling: unexpected %s from peer after the "
                            "negotiation, ignored", t)

    async def negotiate(self):
        a = self.args
        pc = self._create_pc()
        if a.role == "offer":
            ch = pc.createDataChannel(CONTROL, ordered=True)
            self._watch_channel(ch)
            if a.audio:
                pc.addTransceiver("audio", direction="recvonly")
            self.phase = "creating the offer (gathering candidates)"
            await pc.setLocalDescription(await pc.createOffer())
            self.local_sdp = pc.localDescription.sdp
            log.info("local offer SDP:\n%s", self.local_sdp.rstrip())
            self.phase = "sending the offer"
            await self.sig.send_sdp("offer", self.local_sdp)
            self.phase = "waiting for the answer from %s" % a.peer
            while True:
                data = await self._next_sdp("the answer")
                t = data.get("type")
                if t == "answer":
                    await self._set_remote("answer", data.get("sdp_data"))
                    break
                if t == "candidate":
                    # A candidate before the answer: keep it for later.
                    self._early.append(data.get("sdp_data"))
                else:
                    log.warning("signaling: unexpected %s while waiting for "
                                "the answer, ignored", t)
        else:
            self.phase = "waiting for the offer from %s" % a.peer
            while True:
                data = await self._next_sdp("the offer")
                t = data.get("type")
                if t == "offer":
                    await self._set_remote("offer", data.get("sdp_data"))
                    break
                if t == "candidate":
                    self._early.append(data.get("sdp_data"))
                else:
                    log.warning("signaling: unexpected %s while waiting for "
                                "the offer, ignored", t)
            self.phase = "creating the answer (gathering candidates)"
            # The answer's data m-line follows the offer's form (aiortc
            # does that itself); --legacy-sdp/--modern-sdp shape offers only.
            await pc.setLocalDescription(await pc.createAnswer())
            self.local_sdp = pc.localDescription.sdp
            log.info("local answer SDP:\n%s", self.local_sdp.rstrip())
            self.phase = "sending the answer"
            await self.sig.send_sdp("answer", self.local_sdp)
        early, self._early = self._early, []
        for cand in early:
            await self._add_candidate(cand)

    async def wait_connected(self):
        self.phase = "waiting for the peer connection to connect"
        await self._wait_for(self.state_event, lambda: self.pc.connectionState
                             in ("connected", "failed", "closed"))
        if self.pc.connectionState != "connected":
            raise PeerError("peer connection %s (ICE %s) before connecting"
                            % (self.pc.connectionState,
                               self.pc.iceConnectionState))
        self.result["selected_pair"] = self.selected_pair()
        log.info("connected, selected pair: %s", self.result["selected_pair"])

    # ------------------------------------------------ echo

    async def run_echo(self):
        self.phase = "echoing (until the peer closes)"

        def done():
            if self.pc.connectionState in ("closed", "failed"):
                return True
            open_now = [c for c in self.channels.values()
                        if c.readyState in ("open", "connecting")]
            if self.ever_open and not open_now:
                return True
            if self.sig.peer_left.is_set() and not open_now:
                return True
            return False

        waker = asyncio.Event()
        watchers = [asyncio.ensure_future(self._relay(e, waker)) for e in
                    (self.channel_event, self.state_event,
                     self.sig.peer_left)]
        try:
            await self._wait_for(waker, done)
        finally:
            for w in watchers:
                w.cancel()
        log.info("echo done: connection %s, peer left %s, channels %s",
                 self.pc.connectionState, self.sig.peer_left.is_set(),
                 {l: c.readyState for l, c in self.channels.items()})
        if not self.ever_open:
            raise PeerError("no data channel ever opened (connection %s)"
                            % self.pc.connectionState)

    async def _relay(self, event, waker):
        while True:
            await event.wait()
            if event is not self.sig.peer_left:
                event.clear()
            waker.set()
            if event is self.sig.peer_left:
                return

    # ------------------------------------------------ drive

    async def _open_channel(self, label, **kwargs):
        ch = self.pc.createDataChannel(label, **kwargs)
        self._watch_channel(ch)
        await self._wait_for(self.channel_event,
                             lambda: ch.readyState != "connecting")
        if ch.readyState != "open":
            raise PeerError("data channel %s went %s instead of opening"
                            % (label, ch.readyState))
        return ch

    async def _drive_channel(self, label, ch, items, lossy=False):
        """Sends items [(key, make_message)] on ch and checks the echoes.

        lossy (test-unordered, maxRetransmits=0): a message may be lost.
        When no echo has come for --loss-wait seconds while some are
        outstanding, those are counted as lost (an echo that comes later
        still counts); more than 10% lost is a failure.
        """
        a = self.args
        st = self._stat(label)
        expected = {}		# key -> message
        order = []		# keys in sending order
        got = []		# keys in arrival order
        seen = set()
        lost = set()		# given up on (lossy only)
        problems = []
        wake = asyncio.Event()	# an echo came, or the channel closed

        def on_message(msg):
            key = message_key(msg)
            want = expected.get(key) if key is not None else None
            if want is None:
                problems.append("%s: unexpected echo: %s"
                                % (label, describe(msg)))
            elif type(want) is not type(msg) or want != msg:
                problems.append("%s: echo of %s differs: got %s"
                                % (label, describe(want), describe(msg)))
            elif key in seen:
                problems.append("%s: duplicate echo of %s"
                                % (label, describe(msg)))
            else:
                if key in lost:
                    log.info("%s: late echo of %s", label, describe(msg))
                    lost.discard(key)
                seen.add(key)
                got.append(key)
                st.echoed += 1
            wake.set()

        def pending():
            return len(order) - len(seen) - len(lost)

        async def wait_until(predicate):
            while not predicate():
                if problems:
                    raise PeerError("; ".join(problems[:5]))
                if ch.readyState != "open":
                    raise PeerError("%s is %s with %d of %d echoes back"
                                    % (label, ch.readyState, st.echoed,
                                       st.sent))
                wake.clear()
                if not lossy:
                    await wake.wait()
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), a.loss_wait)
                except asyncio.TimeoutError:
                    gone = [k for k in order if k not in seen and
                            k not in lost]
                    log.warning("%s: no echo for %g s: %d outstanding "
                                "message(s) counted as lost", label,
                                a.loss_wait, len(gone))
                    lost.update(gone)

        ch.on("message", on_message)
        ch.on("close", wake.set)
        try:
            for key, make in items:
                # At most --window messages without their echo (see --help).
                await wait_until(lambda: pending() < a.window)
                msg = make()
                expected[key] = msg
                order.append(key)
                ch.send(msg)
                st.sent += 1
            log.info("%s: sent %d messages, waiting for the last echoes",
                     label, len(order))
            await wait_until(lambda: pending() == 0)
        finally:
            ch.remove_listener("message", on_message)
            ch.remove_listener("close", wake.set)
        if problems:
            raise PeerError("; ".join(problems[:5]))
        in_order = got == [k for k in order if k in seen]
        st.in_order = st.in_order and in_order
        if lossy:
            st.lost += len(lost)
            if len(lost) > len(order) // 10:
                raise PeerError("%s: %d of %d messages lost (more than 10%%)"
                                % (label, len(lost), len(order)))
        if not lossy and not in_order:
            first = next(i for i, (x, y) in enumerate(zip(got, order))
                         if x != y)
            raise PeerError("%s: echoes out of order (first at position %d:"
                            " got %s, sent %s)" % (label, first, got[first],
                                                   order[first]))
        log.info("%s: %d echoes correct%s%s", label, len(seen),
                 ", in order" if in_order else ", NOT in order",
                 ", %d lost" % len(lost) if lost else "")

    async def run_drive(self):
        """Three phases, so that loss on the unreliable channel can never
        meet reliable data that is still being reassembled (see --window):
        1. test-ordered and control-channel: --count strings and --count
           binary messages each, concurrently;
        2. test-unordered alone: the same messages;
        3. test-ordered: the large messages both sides allow."""
        a = self.args
        self.phase = "opening the test channels"
        ordered = await self._open_channel(ORDERED, ordered=True)
        unordered = await self._open_channel(UNORDERED, ordered=False,
                                             maxRetransmits=0)
        if CONTROL not in self.channels:
            # The offerer creates it before the offer; the remote's DCEP OPEN
            # is normally here already.  Give it a bounded moment.
            self.phase = "waiting for control-channel"
            try:
                await asyncio.wait_for(self._wait_for(
                    self.channel_event, lambda: CONTROL in self.channels), 5)
            except asyncio.TimeoutError:
                log.warning("no control-channel from the peer: not tested")
        remote_max = sdp_max_message_size(self.remote_sdp or "")
        local_max = sdp_max_message_size(self.local_sdp or "")
        self.result["remote_max_message_size"] = remote_max
        self.result["local_max_message_size"] = local_max
        large, skipped = [], {}
        for k, size in enumerate(LARGE_SIZES):
            if size_allowed(size, remote_max) and \
                    size_allowed(size, local_max):
                large.append((("b", LARGE_BASE + k),
                              lambda k=k, size=size: large_message(k, size)))
            else:
                skipped[str(size)] = ("skipped: max-message-size local %d, "
                                      "remote %d" % (local_max, remote_max))
                log.info("large message of %d bytes %s", size,
                         skipped[str(size)])
        self.result["large_messages"] = dict(skipped)
        regular = []
        for i in range(a.count):
            regular.append((("s", i), lambda i=i: string_message(i)))
            regular.append((("b", i), lambda i=i: binary_message(i)))
        reliable = [(ORDERED, ordered)]
        ctrl = self.channels.get(CONTROL)
        if ctrl is not None:
            if ctrl.readyState == "connecting":
                await self._wait_for(self.channel_event,
                                     lambda: ctrl.readyState != "connecting")
            if ctrl.readyState != "open":
                raise PeerError("control-channel is %s" % ctrl.readyState)
            reliable.append((CONTROL, ctrl))
        self.phase = "exchanging test messages on the reliable channels"
        tasks = [asyncio.ensure_future(self._drive_channel(l, c, regular))
                 for l, c in reliable]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        self.phase = "exchanging test messages on %s" % UNORDERED
        self._stat(UNORDERED).lost = 0
        await self._drive_channel(UNORDERED, unordered, regular, lossy=True)
        if large:
            self.phase = "exchanging large messages on %s" % ORDERED
            await self._drive_channel(ORDERED, ordered, large)
            for key, _ in large:
                size = LARGE_SIZES[key[1] - LARGE_BASE]
                self.result["large_messages"][str(size)] = "echoed"
        self.phase = "closing"
        for c in [ordered, unordered] + ([ctrl] if ctrl else []):
            c.close()

    # ------------------------------------------------ main

    async def run(self):
        a = self.args
        self.phase = "connecting to the signaling server"
        await self.sig.connect()
        self.phase = "joining the room"
        await self.sig.join()
        if (a.role == "offer") != (a.name < a.peer):
            log.warning("role %s differs from the glare rule (the smaller "
                        "name offers): fine for a test, not for real peers",
                        a.role)
        self.phase = "waiting for %s to join the room" % a.peer
        waiting = [asyncio.ensure_future(self.sig.peer_present.wait()),
                   asyncio.ensure_future(self.sig.closed.wait())]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for w in waiting:
            w.cancel()
        if not self.sig.peer_present.is_set():
            raise PeerError("signaling connection closed while waiting for "
                            "%s to join" % a.peer)
        await self.negotiate()
        sdp_task = asyncio.ensure_future(self._sdp_loop())
        try:
            await self.wait_connected()
            if a.mode == "echo":
                await self.run_echo()
            else:
                await self.run_drive()
        finally:
            sdp_task.cancel()
        self.result["ok"] = True

    def finish_stats(self):
        out = {}
        for label, st in sorted(self.stats.items()):
            entry = {"sent": st.sent, "echoed": st.echoed,
                     "in_order": st.in_order}
            if self.args.mode == "echo":
                entry["received"] = st.received
            if st.lost is not None:
                entry["lost"] = st.lost
            out[label] = entry
        self.result["channels"] = out
        if self.result.get("selected_pair") is None and self.pc is not None:
            self.result["selected_pair"] = self.selected_pair()

    async def close(self):
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 10)
            except Exception as e:
                log.warning("closing the peer connection: %s: %s",
                            type(e).__name__, e)
        await self.sig.close()


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="PeerPipe interop test peer on aiortc")
    p.add_argument("--url", required=True,
                   help="signaling URL, wss://HOST:PORT/ws")
    p.add_argument("--room-uuid", required=True)
    p.add_argument("--room-name", required=True)
    p.add_argument("--name", required=True, help="our user name")
    p.add_argument("--peer", required=True, help="the other peer's name")
    p.add_argument("--role", choices=("offer", "answer"), required=True)
    p.add_argument("--mode", choices=("drive", "echo"), required=True)
    p.add_argument("--count", type=int, default=100,
                   help="string and binary messages per channel (drive)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="overall limit in seconds (default 60)")
    p.add_argument("--loss-wait", type=float, default=10.0,
                   help="drive: on test-unordered, seconds without any echo "
                   "after which the outstanding messages count as lost "
                   "(default 10; more than 10%% lost fails)")
    p.add_argument("--window", type=int, default=16,
                   help="drive: most messages in flight per channel without "
                   "their echo (default 16).  Large bursts overflow the UDP "
                   "receive buffer of a Python peer even on loopback; the "
                   "resulting loss on test-unordered (maxRetransmits=0) makes "
                   "the sender send FORWARD-TSN, and aiortc 1.4's receiver "
                   "then discards partly reassembled messages of RELIABLE "
                   "streams (it prunes every stream's reassembly queue up to "
                   "the new cumulative TSN), which stalls them for good")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--legacy-sdp", dest="sdp_format", action="store_const",
                     const="legacy", help="offer the data m-line in the "
                     "legacy DTLS/SCTP + a=sctpmap form (aiortc's default)")
    fmt.add_argument("--modern-sdp", dest="sdp_format", action="store_const",
                     const="modern", help="offer the data m-line as "
                     "UDP/DTLS/SCTP webrtc-datachannel + a=sctp-port (an "
                     "answer always follows the offer's form)")
    au = p.add_mutually_exclusive_group()
    au.add_argument("--audio", dest="audio", action="store_true",
                    default=True, help="offerer adds a recvonly audio "
                    "transceiver (default)")
    au.add_argument("--no-audio", dest="audio", action="store_false")
    p.add_argument("--host-address", action="append", default=[],
                   metavar="ADDR", help="gather host candidates only on "
                   "these local addresses (repeatable or comma-separated; "
                   "127.0.0.1 allowed)")
    p.add_argument("--verbose", action="store_true",
                   help="aiortc/aioice debug logs too")
    a = p.parse_args(argv)
    a.sdp_format = a.sdp_format or "native"
    a.host_address = [x.strip() for v in a.host_address
                      for x in v.split(",") if x.strip()]
    if a.count < 0:
        p.error("--count must be >= 0")
    if a.window < 1:
        p.error("--window must be >= 1")
    if a.loss_wait <= 0:
        p.error("--loss-wait must be > 0")
    if a.timeout <= 0:
        p.error("--timeout must be > 0")
    return a


def restrict_host_addresses(addresses):
    def get_host_addresses(use_ipv4, use_ipv6):
        out = []
        for addr in addresses:
            v6 = ":" in addr
            if (v6 and use_ipv6) or (not v6 and use_ipv4):
                out.append(addr)
        return out
    aioice.ice.get_host_addresses = get_host_addresses


async def amain(args):
    peer = Peer(args)
    started = time.monotonic()
    try:
        await asyncio.wait_for(peer.run(), args.timeout)
    except asyncio.TimeoutError:
        peer.result["ok"] = False
        peer.result["error"] = "timeout after %g s while %s" % (
            args.timeout, peer.phase)
    except PeerError as e:
        peer.result["ok"] = False
        peer.result["error"] = "%s (while %s)" % (e, peer.phase)
    except Exception as e:
        log.exception("unexpected error")
        peer.result["ok"] = False
        peer.result["error"] = "%s: %s (while %s)" % (
            type(e).__name__, e, peer.phase)
    peer.finish_stats()
    await peer.close()
    log.info("finished in %.1f s", time.monotonic() - started)
    return peer.result


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s aiortc_peer[" + args.name + "] %(name)s: "
        "%(message)s")
    if not args.verbose:
        for noisy in ("aioice", "aiortc", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.host_address:
        restrict_host_addresses(args.host_address)
    result = asyncio.run(amain(args))
    if not result.get("ok"):
        result.setdefault("error", "unknown failure")
    else:
        result.pop("error", None)
    sys.stdout.write("RESULT " + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
