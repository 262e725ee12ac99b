"""A small PeerPipe signaling v1 client for the integration tests.

It connects the way existing PeerPipe clients do: wss:// with certificate
verification off (the server's certificate is self-signed), permessage-deflate
offered (websockets' default), UTF-8 JSON in text frames.

The server answers every request with exactly one reply (SUCCESS, FAILED,
ROOM_CREATED, ROOM_JOINED) and pushes events (ROOM_NEW_MEMBER,
ROOM_MEMBER_LEFT, SDP_STATE) whenever they happen, so replies and events can
interleave on one connection.  SigClient keeps the two apart: request() returns
the next reply and keeps the events that arrived before it for next_event().

Also here: RawWS, a hand-rolled blocking WebSocket client over TLS for the
tests that must misbehave in ways a library will not (never answer a ping,
stop reading), and run(), which runs a coroutine with an overall bound so a
hung test fails instead of hanging ctest.
"""

import asyncio
import base64
import collections
import json
import os
import re
import socket
import ssl
import struct
import time

import websockets

# Generous: a sanitizer build on a busy 2-core machine can be slow.
REPLY_TIMEOUT = 20.0
CONNECT_TIMEOUT = 30.0

REPLY_TYPES = frozenset({"SUCCESS", "FAILED", "ROOM_CREATED", "ROOM_JOINED",
                         "TURN_CREDENTIALS", "AUTH_CHALLENGE"})	# the last two: v2
EVENT_TYPES = frozenset({"ROOM_NEW_MEMBER", "ROOM_MEMBER_LEFT", "SDP_STATE"})

UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# A request type the server does not know; its reply (FAILED "Unknown
# message") marks a point in the connection's stream, see SigClient.sync().
BARRIER = {"type": "PP_TEST_BARRIER"}
BARRIER_REPLY = {"type": "FAILED", "data": {"reason": "Unknown message"}}


def unverified_context():
    """The TLS client context PeerPipe clients use: no verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# Clients opened inside run(); closed when it ends, pass or fail, so a
# failing test leaves no connection behind on a shared server.
_live = []


def run(coro, timeout=180.0):
    """Runs a coroutine to completion, failing it after `timeout` seconds."""
    async def bounded():
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            live = list(_live)
            _live.clear()
            if live:
                await asyncio.wait(
                    [asyncio.ensure_future(c.close()) for c in live],
                    timeout=15)
    return asyncio.run(bounded())


def failed(reason):
    return {"type": "FAILED", "data": {"reason": reason}}


SUCCESS = {"type": "SUCCESS"}


# --- request builders -------------------------------------------------------

def new_room(room_name, user_name):
    return {"type": "NEW_ROOM", "room_name": room_name, "user_name": user_name}


def join_room(room_uuid, room_name, user_name):
    return {"type": "JOIN_ROOM", "room_uuid": room_uuid,
            "room_name": room_name, "user_name": user_name}


def fast_room(room_uuid, room_name, user_name):
    return {"type": "FAST_ROOM_EXACT", "room_uuid": room_uuid,
            "room_name": room_name, "user_name": user_name}


def leave_room(room_uuid, room_name, user_name):
    return {"type": "LEAVE_ROOM", "room_uuid": room_uuid,
            "room_name": room_name, "user_name": user_name}


def sdp(room_uuid, room_name, user_name, target_user, sdp_type, sdp_data):
    return {"type": "SDP_NEW_STATE", "room_uuid": room_uuid,
            "room_name": room_name, "user_name": user_name,
            "target_user": target_user, "sdp_type": sdp_type,
            "sdp_data": sdp_data}


def sdp_state(sdp_type, sender, sdp_data):
    """The event the target of an SDP_NEW_STATE receives."""
    return {"type": "SDP_STATE",
            "data": {"type": sdp_type, "from": sender, "sdp_data": sdp_data}}


def candidate(n=0, mid="0"):
    return {"candidate": "candidate:%d 1 udp 2122260223 192.0.2.%d %d typ host"
                         " generation 0" % (n, (n % 250) + 1, 50000 + n),
            "sdpMid": mid, "sdpMLineIndex": 0}


def offer_sdp(tag="x"):
    # Shaped like a real offer: CRLF line ends, quotes-free ASCII.
    return ("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"
            "t=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP "
            "webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:%s\r\n"
            "a=ice-pwd:asd88fgpdd777uzjYhagZg00\r\na=setup:actpass\r\n"
            "a=mid:0\r\na=sctp-port:5000\r\n" % tag)


# --- the asyncio client -----------------------------------------------------

class ProtocolError(AssertionError):
    pass


class SigClient:
    """One WebSocket connection to the signaling server."""

    def __init__(self, ws):
        self.ws = ws
        self.replies = collections.deque()
        self.events = collections.deque()

    @classmethod
    async def connect(cls, host, port, path="/ws", **kwargs):
        kwargs.setdefault("ssl", unverified_context())
        kwargs.setdefault("open_timeout", CONNECT_TIMEOUT)
        kwargs.setdefault("close_timeout", 10)
        kwargs.setdefault("max_size", 8 * 1024 * 1024)
        ws = await websockets.connect("wss://%s:%d%s" % (host, port, path),
                                      **kwargs)
        self = cls(ws)
        _live.append(self)
        return self

    async def close(self):
        await self.ws.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # Sending.
    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, data):
        await self.ws.send(data)

    # Receiving.
    async def recv_any(self, timeout=REPLY_TIMEOUT):
        """The next message off the wire (ignores what is queued)."""
        try:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolError("no message from the server within %.0f s"
                                % timeout) from None
        if not isinstance(text, str):
            raise ProtocolError("server sent a binary frame: %r" % text[:80])
        try:
            msg = json.loads(text)
        except ValueError:
            raise ProtocolError("server sent non-JSON: %r" % text[:200]) \
                from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("server sent a message without type: %r" % msg)
        return msg

    async def _pump(self, timeout):
        msg = await self.recv_any(timeout)
        if msg["type"] in REPLY_TYPES:
            self.replies.append(msg)
        elif msg["type"] in EVENT_TYPES:
            self.events.append(msg)
        else:
            raise ProtocolError("server sent an unknown message type: %r"
                                % msg)

    async def reply(self, timeout=REPLY_TIMEOUT):
        """The next reply; events that come first are kept for later."""
        while not self.replies:
            await self._pump(timeout)
        return self.replies.popleft()

    async def next_event(self, timeout=REPLY_TIMEOUT):
        """The next event; a reply arriving unasked is a protocol error."""
        while not self.events:
            await self._pump(timeout)
            if self.replies:
                raise ProtocolError("unsolicited reply: %r"
                                    % self.replies[0])
        return self.events.popleft()

    async def request(self, obj, timeout=REPLY_TIMEOUT):
        await self.send(obj)
        return await self.reply(timeout)

    async def request_raw(self, data, timeout=REPLY_TIMEOUT):
        await self.send_raw(data)
        return await self.reply(timeout)

    async def sync(self, timeout=REPLY_TIMEOUT):
        """Returns every event queued for us so far, then nothing is pending.

        The server handles one connection's frames in order, so the answer
        to a barrier request comes after everything the server had queued
        for us before it read the barrier.  Any reply seen before the
        barrier's own is an extra reply and fails the test.
        """
        await self.send(BARRIER)
        got = await self.reply(timeout)
        if got != BARRIER_REPLY:
            raise ProtocolError("extra reply %r before the barrier's" % got)
        if self.replies:
            raise ProtocolError("extra replies: %r" % list(self.replies))
        events = list(self.events)
        self.events.clear()
        return events

    async def assert_quiet(self):
        """Fails if any event or reply is pending for this connection."""
        extra = await self.sync()
        if extra:
            raise ProtocolError("unexpected events: %r" % extra)

    async def wait_closed(self, timeout=REPLY_TIMEOUT):
        """Waits until the server closes us; returns the messages seen."""
        seen = []

        async def drain():
            try:
                while True:
                    seen.append(await self.ws.recv())
            except websockets.exceptions.ConnectionClosed:
                pass
        try:
            await asyncio.wait_for(drain(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolError("connection still open after %.0f s"
                                % timeout) from None
        return seen


async def connect(server, **kwargs):
    """A SigClient connected to a server fixture (anything with host/port)."""
    return await SigClient.connect(server.host, server.port, **kwargs)


async def connect_many(server, n, **kwargs):
    return list(await asyncio.gather(
        *(connect(server, **kwargs) for _ in range(n))))


async def close_all(*clients):
    await asyncio.gather(*(c.close() for c in clients),
                         return_exceptions=True)


# --- a raw, blocking WebSocket client ---------------------------------------

class RawWS:
    """WebSocket over TLS by hand: no automatic pong, no background reads."""

    OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    @classmethod
    def connect(cls, host, port, path="/ws", rcvbuf=None,
                timeout=CONNECT_TIMEOUT, upgrade=True):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect(), so the window is small from the start.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect((host, port))
        sock = unverified_context().wrap_socket(raw)
        self = cls(sock)
        if upgrade:
            self._upgrade(host, port, path)
        return self

    def _upgrade(self, host, port, path):
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)
        ).encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ProtocolError("closed during the WebSocket upgrade")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ProtocolError("upgrade refused: %r" % status)

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_text(self, text):
        self.send_frame(self.OP_TEXT, text.encode())

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=REPLY_TIMEOUT):
        """(opcode, payload) of the next frame; EOFError at end of stream."""
        self.sock.settimeout(timeout)
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        if b1 & 0x80:
            raise ProtocolError("server sent a masked frame")
        return b0 & 0x0F, self._need(n)

    def recv_json(self, timeout=REPLY_TIMEOUT):
        """The next text message, skipping (and not answering) pings."""
        while True:
            op, payload = self.recv_frame(timeout)
            if op == self.OP_TEXT:
                return json.loads(payload.decode())
            if op == self.OP_CLOSE:
                raise EOFError("close frame: %r" % payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_eof(sock, timeout):
    """Reads (discarding data) until the peer closes; True if it did.

    Returns False if the connection was still open `timeout` seconds after
    the call.  A reset counts as closed.
    """
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(left)
            if not sock.recv(65536):
                return True
    except (socket.timeout, TimeoutError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True
