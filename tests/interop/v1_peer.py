#!/usr/bin/python3
"""An independent version-1 PeerPipe peer on aiortc (Debian's python3-aiortc
1.4), written only from the version-1 specs (tunnel-v1.md and
signaling-v1.md in the shared spec directory).  It is the interop reference
the C agent is tested against: it plays both roles of the spec at once, like
the deployed peers -- it provides the ports given with --offer and consumes
whatever the other peers offer.

Run it with /usr/bin/python3 (where aiortc lives):

  /usr/bin/python3 tests/interop/v1_peer.py --url wss://HOST:PORT/ws \\
      --room-uuid UUID --room-name NAME --name ME \\
      [--offer PORT:PROTO[=HOST:TPORT] ...] \\
      [--compression none|lz4|zstd|zstd-hc] [--unreliable] [--extended] \\
      [--listen-host ADDR | --listen-mode shared|per-peer] \\
      [--host-address ADDR ...] [--insecure|--no-insecure] \\
      [--quirk-late-attach [--late-attach-iterations N]] \\
      [--proxy-timeout S] [--start-timeout S] [--udp-idle S] \\
      [--init-il-user NAME] \\
      [--log-level debug|info|warning|error]

It joins the room with FAST_ROOM_EXACT and makes one peer connection with
every other member (the lexicographically smaller name offers; the offerer
creates control-channel first and adds a recvonly audio transceiver; remote
trickled candidates are taken for the BUNDLE mid; aiortc itself never
trickles, its SDP carries all its candidates).

stdout: one JSON object per line, prefixed by its kind, flushed each time
(logs go to stderr):

  READY {"name": ME, "room_uuid": U, "room_name": N, "members": [...]}
      once joined (members: everyone in the room then, us included)
  LISTEN {"peer": NAME, "port": P, "proto": "TCP"|"UDP", "addr": "HOST:PORT"}
      one per port NAME offered us, once our consumer listener for it is
      open (HOST:PORT is where local clients connect); all of a peer's LISTEN
      lines come before its PEER "connected" line
  PEER {"name": NAME, "state": "connected", "offerer": BOOL,
        "settings": {"unreliable_channels": B, "compression_type": C,
                     "extended_compression": B},
        "ports": ["P:PROTO", ...]}          (what NAME offers us)
      when both INITs are exchanged and our listeners are open
  PEER {"name": NAME, "state": "closed", "reason": "..."}
      when that peer connection is torn down (bad INIT, non-object control
      message, ICE/DTLS failure, peer left the room, ...)
  CONTROL {"peer": NAME, "message": {...}}
      every control message received (after parsing, before acting on it)
  PROXY {"peer": NAME, "role": "consumer"|"provider", "uuid": U, "port": P,
         "proto": "TCP"|"UDP", "event": EVENT, ...}
      EVENT: "begin" (consumer sent BEGIN_PROXY), "open" (proxy channel
      open), "start" (consumer saw START / provider sent it), "failed"
      (with "reason": a FAILED reason received or sent -- TIMEOUT,
      ACCESS_DENIED, ... -- or NO_START, EARLY_SUCCESS, CONNECT_FAILED),
      "closed" (with "reason", "sent"/"received": payload bytes, and
      "wire_sent"/"wire_received": message bytes as framed and compressed)

stdin (optional, one command per line; EOF is fine):

  SEND {"peer": NAME, "message": {...}}   send that object on control-channel
  SEND {"peer": NAME, "text": "..."}      send that raw text (e.g. not JSON)
  QUIT                                    leave and exit 0

Protocol behaviour (see the spec for the reasons):
  * INIT: IL_user = the receiver's name; ports = our --offer list; a wrong
    IL_user, a second INIT, or a control message that is not a JSON object
    with "type" tears the peer connection down; unknown types are ignored;
    other messages before the peer's INIT are ignored.
  * Negotiation: the lower compression index; extended only if both asked
    and the result is zstd/zstd-hc (announced and reported, but messages
    are still compressed one by one: v1 peers never implemented it);
    unreliable only if both asked and extended is off.
  * Provider: BEGIN_PROXY without a canonical uuid string is ignored; port
    not an integer 1..65535 -> FAILED INVALID_PORT; protocol not "TCP"/"UDP"
    -> FAILED INVALID_PROTOCOL; port/proto not in --offer -> FAILED
    ACCESS_DENIED.  Otherwise it creates proxy-<uuid> (reliable, or
    unordered maxRetransmits=0 when unreliable was negotiated), connects to
    the target once it is open, and sends one empty START message.  No
    SUCCESS.  FAILED TIMEOUT for one of its channels closes it.
  * Consumer: BEGIN_PROXY with a fresh uuid4 per TCP connection / UDP
    client address; success = channel proxy-<uuid> opens; nothing within
    --proxy-timeout (10 s) -> FAILED TIMEOUT and the local socket closes; a
    SUCCESS before the channel opened makes it give up, like deployed
    consumers; it holds local data until START and gives up after
    --start-timeout seconds without one (deployed consumers hang instead).
  * Framing: a flag byte (0x01 COMPRESSED, 0x02 START, 0x04 EOT) + payload;
    TCP reads of up to 16 KiB; UDP batches of 4-byte big-endian length +
    datagram, up to ~16 KB, flushed after 2 ms idle; lz4 frame (> 200
    bytes), zstd level 3 (> 200), zstd-hc = zstd level 15 (> 150), sent
    uncompressed when not smaller.  Socket EOF -> EOT; EOT received ->
    shutdown(SHUT_WR); both EOTs or a closed channel end the connection.
  * --quirk-late-attach: as a consumer, attaches its message handler to a
    new proxy channel a few event-loop iterations late, so that a START
    arriving before that is dropped (the deployed-consumer hazard).

aiortc 1.4 note: its SCTP receiver applies an incoming stream reset at once
(it ignores the request's last TSN), so data still in flight on a channel
the other side closes is lost.  This peer therefore waits until everything
it sent is acknowledged before it closes a proxy channel itself.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid as uuidlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lz4.frame  # noqa: E402
import zstandard  # noqa: E402
from aiortc import (RTCConfiguration, RTCPeerConnection,  # noqa: E402
                    RTCSessionDescription)

import aiortc_peer  # noqa: E402  (shared signaling and candidate helpers)

log = logging.getLogger("v1_peer")

CONTROL = "control-channel"
PROXY_PREFIX = "proxy-"
COMPRESSIONS = ("none", "lz4", "zstd", "zstd-hc")
PROTOCOLS = ("TCP", "UDP")

FLAG_COMPRESSED = 0x01
FLAG_START = 0x02
FLAG_EOT = 0x04

TCP_READ = 16 * 1024
UDP_BATCH = 16 * 1024
UDP_FLUSH = 0.002
UDP_HELD_MAX = 1024		# datagrams held per session before START
HIGH_WATER = 1024 * 1024	# pause reading the socket above this backlog
LOW_WATER = 256 * 1024
DRAIN_LIMIT = 15.0		# seconds to wait for our data to be acked
PROVIDER_OPEN_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def emit(kind, obj):
    """One stdout line for the tests: KIND {json}."""
    sys.stdout.write(kind + " " + json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- framing

class Codec:
    """Per-message framing: flag byte + (maybe compressed) payload."""

    def __init__(self, name):
        self.name = name
        self.threshold = None
        self._zc = None
        if name == "lz4":
            self.threshold = 200
        elif name == "zstd":
            self.threshold = 200
            self._zc = zstandard.ZstdCompressor(level=3)
        elif name == "zstd-hc":
            self.threshold = 150
            self._zc = zstandard.ZstdCompressor(level=15)
        self._zd = zstandard.ZstdDecompressor()

    def _compress(self, data):
        if self.name == "lz4":
            return lz4.frame.compress(data)
        return self._zc.compress(data)

    def _decompress(self, data):
        if self.name == "lz4":
            return lz4.frame.decompress(data)
        if self.name in ("zstd", "zstd-hc"):
            # decompressobj: also takes frames without a content size
            return self._zd.decompressobj().decompress(data)
        raise ValueError("COMPRESSED flag set but no compression negotiated")

    def encode(self, payload, flags=0):
        payload = bytes(payload)
        if self.threshold is not None and len(payload) > self.threshold:
            packed = self._compress(payload)
            if len(packed) < len(payload):
                return bytes([flags | FLAG_COMPRESSED]) + packed
        return bytes([flags & ~FLAG_COMPRESSED]) + payload

    def decode(self, message):
        """(flags, payload); ValueError for a message we cannot read."""
        if not message:
            raise ValueError("empty message (no flag byte)")
        flags = message[0]
        body = bytes(message[1:])
        if flags & FLAG_COMPRESSED:
            try:
                body = self._decompress(body)
            except ValueError:
                raise
            except Exception as e:
                raise ValueError("cannot decompress (%s): %s: %s"
                                 % (self.name, type(e).__name__, e))
        return flags, body


def pack_datagrams(datagrams):
    return b"".join(struct.pack(">I", len(d)) + d for d in datagrams)


def unpack_datagrams(batch):
    """The datagrams of a batch; ValueError on a truncated batch."""
    out, pos = [], 0
    while pos < len(batch):
        if pos + 4 > len(batch):
            raise ValueError("truncated length prefix at %d" % pos)
        (n,) = struct.unpack_from(">I", batch, pos)
        pos += 4
        if pos + n > len(batch):
            raise ValueError("datagram of %d bytes overruns the batch" % n)
        out.append(batch[pos:pos + n])
        pos += n
    return out


# ---------------------------------------------------------------- INIT

def parse_config(config):
    """(unreliable, compression, extended) from an INIT config, with the
    spec's defaults for anything absent or invalid."""
    if not isinstance(config, dict):
        config = {}
    unreliable = config.get("unreliable_channels")
    compression = config.get("compression_type")
    extended = config.get("extended_compression")
    return (unreliable if isinstance(unreliable, bool) else False,
            compression if compression in COMPRESSIONS else "none",
            extended if isinstance(extended, bool) else False)


def negotiate(mine, theirs):
    u1, c1, e1 = mine
    u2, c2, e2 = theirs
    compression = COMPRESSIONS[min(COMPRESSIONS.index(c1),
                                   COMPRESSIONS.index(c2))]
    extended = e1 and e2 and compression in ("zstd", "zstd-hc")
    unreliable = u1 and u2 and not extended
    return {"unreliable_channels": unreliable,
            "compression_type": compression,
            "extended_compression": extended}


def parse_port_entry(entry):
    """(port, proto) for a valid "PORT:PROTO" string, else None."""
    if not isinstance(entry, str):
        return None
    m = re.fullmatch(r"([1-9][0-9]{0,4}):(TCP|UDP)", entry)
    if not m or int(m.group(1)) > 65535:
        return None
    return int(m.group(1)), m.group(2)


def parse_ports(ports):
    out = []
    if not isinstance(ports, list):
        return out
    for entry in ports:
        p = parse_port_entry(entry)
        if p is None:
            log.warning("INIT: invalid ports entry %r ignored", entry)
        elif p not in out:
            out.append(p)
    return out


def valid_port(port):
    return isinstance(port, int) and not isinstance(port, bool) \
        and 1 <= port <= 65535


# ---------------------------------------------------------------- sockets

def bind_listener(host, port, proto):
    """A bound (TCP: listening) socket on host: `port` if free, else the
    first free one in 20000-59999; None if none is."""
    kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
    for candidate in [port] + [p for p in range(20000, 60000) if p != port]:
        s = socket.socket(socket.AF_INET, kind)
        try:
            if proto == "TCP":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, candidate))
            if proto == "TCP":
                s.listen(128)
            s.setblocking(False)
            return s
        except OSError:
            s.close()
    return None


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram, what):
        self.on_datagram = on_datagram
        self.what = what
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.on_datagram(data, addr)

    def error_received(self, exc):
        log.info("%s: UDP error %s", self.what, exc)


# ---------------------------------------------------------------- proxies

class Proxy:
    """One forwarded connection = one proxy-<uuid> channel, either role."""

    proto = None

    def __init__(self, link, role, uuid, port):
        self.link = link
        self.role = role
        self.uuid = uuid
        self.label = PROXY_PREFIX + uuid
        self.port = port
        self.channel = None
        self.opened = asyncio.Event()
        self.started = asyncio.Event()
        self.closed = False
        self.sent = 0			# payload bytes
        self.received = 0
        self.wire_sent = 0		# message bytes (flag byte, compressed)
        self.wire_received = 0
        self._drained = asyncio.Event()
        self.what = "%s %s %s:%d %s" % (link.name, role, proto_name(self),
                                        port, self.label)

    # events

    def event(self, name, **extra):
        obj = {"peer": self.link.name, "role": self.role, "uuid": self.uuid,
               "port": self.port, "proto": self.proto, "event": name}
        obj.update(extra)
        emit("PROXY", obj)

    # the channel

    def attach(self, ch):
        """Message/close handlers on our channel."""
        ch.bufferedAmountLowThreshold = LOW_WATER
        ch.on("message", self.on_message)
        ch.on("close", self.on_channel_close)
        ch.on("bufferedamountlow", self._drained.set)

    def on_message(self, message):
        if self.closed:
            return
        if isinstance(message, str):
            log.warning("%s: text message on a proxy channel, read as "
                        "UTF-8 bytes", self.what)
            message = message.encode("utf-8")
        self.wire_received += len(message)
        try:
            flags, payload = self.link.codec.decode(message)
        except ValueError as e:
            log.error("%s: bad message: %s: closing", self.what, e)
            self.close("bad message: %s" % e)
            return
        if flags & FLAG_START:
            if self.role != "consumer":
                log.warning("%s: START from the consumer ignored", self.what)
            elif self.started.is_set():
                log.warning("%s: second START ignored", self.what)
            else:
                log.info("%s: START", self.what)
                self.event("start")
                self.started.set()
        if payload:
            self.received += len(payload)
            self.deliver(payload)
        if flags & FLAG_EOT:
            self.on_eot()

    def on_channel_close(self):
        if not self.closed:
            log.info("%s: channel closed by the peer", self.what)
            self.close("channel closed", channel_too=False)

    def send(self, payload, flags=0):
        ch = self.channel
        if ch is None or ch.readyState != "open":
            raise ConnectionError("channel %s is %s" % (
                self.label, ch.readyState if ch else "missing"))
        message = self.link.codec.encode(payload, flags)
        ch.send(message)
        self.sent += len(payload)
        self.wire_sent += len(message)

    async def backpressure(self):
        ch = self.channel
        while ch is not None and ch.bufferedAmount > HIGH_WATER \
                and not self.closed and ch.readyState == "open":
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    def close(self, reason, channel_too=True):
        """Ends this connection: local side now, the channel once what we
        sent is acknowledged (see the module notes)."""
        if self.closed:
            return
        self.closed = True
        self.opened.set()
        self.started.set()
        self._drained.set()
        self.close_local()
        self.link.forget(self)
        log.info("%s: closed (%s), %d bytes sent, %d received", self.what,
                 reason, self.sent, self.received)
        self.event("closed", reason=reason, sent=self.sent,
                   received=self.received, wire_sent=self.wire_sent,
                   wire_received=self.wire_received)
        if channel_too and self.channel is not None:
            self.link.node.spawn(close_channel_drained(self.channel))

    def fail(self, reason, send_failed=False):
        if self.closed:
            return
        if send_failed:
            self.link.send_control({"type": "FAILED",
                                    "channel-name": self.label,
                                    "reason": reason})
        self.event("failed", reason=reason)
        self.close("failed: %s" % reason)

    # consumer side

    def channel_arrived(self, ch):
        """The provider's proxy-<uuid> channel opened (= success)."""
        self.channel = ch
        a = self.link.node.args
        if a.quirk_late_attach:
            self.link.node.spawn(self._late_attach(ch,
                                                   a.late_attach_iterations))
        else:
            self.attach(ch)
        log.info("%s: channel open", self.what)
        self.event("open")
        self.opened.set()

    async def _late_attach(self, ch, iterations):
        for _ in range(iterations):
            await asyncio.sleep(0)
        log.info("%s: message handler attached %d loop iterations late "
                 "(--quirk-late-attach)", self.what, iterations)
        self.attach(ch)
        if ch.readyState == "closed":
            self.on_channel_close()

    async def run_consumer(self):
        a = self.link.node.args
        self.link.consumers[self.uuid] = self
        self.link.send_control({"type": "BEGIN_PROXY", "port": self.port,
                                "protocol": self.proto, "uuid": self.uuid})
        self.event("begin")
        try:
            await asyncio.wait_for(self.opened.wait(), a.proxy_timeout)
        except asyncio.TimeoutError:
            log.warning("%s: no channel within %g s: FAILED TIMEOUT "
                        "(SCTP: %s)", self.what, a.proxy_timeout,
                        sctp_state(self.link.pc))
            self.fail("TIMEOUT", send_failed=True)
            return
        if self.closed:
            return
        try:
            await asyncio.wait_for(self.started.wait(), a.start_timeout)
        except asyncio.TimeoutError:
            log.error("%s: channel open but no START within %g s (lost "
                      "before the message handler was attached?): giving "
                      "up on this connection", self.what, a.start_timeout)
            self.fail("NO_START")
            return
        if self.closed:
            return
        await self.forward()

    def on_failed(self, reason):
        if self.role == "provider":
            if reason == "TIMEOUT":
                log.info("%s: consumer timed out: closing our channel",
                         self.what)
                self.close("consumer sent FAILED TIMEOUT")
            else:
                log.info("%s: FAILED %r from the consumer ignored",
                         self.what, reason)
            return
        if self.opened.is_set():
            log.warning("%s: FAILED %r after the channel opened, ignored",
                        self.what, reason)
            return
        log.info("%s: refused by the provider: %s", self.what, reason)
        self.fail(str(reason))

    def on_success(self):
        if self.role != "consumer":
            return
        if self.opened.is_set():
            log.info("%s: SUCCESS after the channel opened (fine)",
                     self.what)
            return
        log.warning("%s: SUCCESS before the channel opened: giving up, as "
                    "deployed consumers do", self.what)
        self.fail("EARLY_SUCCESS")

    # provider side

    async def run_provider(self, target):
        link = self.link
        unreliable = link.settings["unreliable_channels"]
        if unreliable:
            ch = link.pc.createDataChannel(self.label, ordered=False,
                                           maxRetransmits=0)
        else:
            ch = link.pc.createDataChannel(self.label, ordered=True)
        self.channel = ch
        self.attach(ch)
        ch.on("open", self.opened.set)
        try:
            await asyncio.wait_for(self.opened.wait(), PROVIDER_OPEN_TIMEOUT)
        except asyncio.TimeoutError:
            self.close("channel did not open in %g s" % PROVIDER_OPEN_TIMEOUT)
            return
        if self.closed:
            return
        self.event("open")
        try:
            await asyncio.wait_for(self.connect_local(target),
                                   CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            log.warning("%s: cannot reach %s:%d: %s: closing the channel",
                        self.what, target[0], target[1],
                        "timeout" if isinstance(e, asyncio.TimeoutError)
                        else e)
            self.event("failed", reason="CONNECT_FAILED")
            self.close("connect to the target failed")
            return
        if self.closed:
            self.close_local()
            return
        try:
            self.send(b"", FLAG_START)
        except ConnectionError as e:
            self.close(str(e))
            return
        self.event("start")
        self.started.set()		# forwarding from here on
        await self.forward()

    # per protocol

    def deliver(self, payload):
        raise NotImplementedError

    def on_eot(self):
        pass

    def close_local(self):
        pass

    async def connect_local(self, target):
        raise NotImplementedError

    async def forward(self):
        raise NotImplementedError


def sctp_state(pc):
    """aiortc's SCTP sender state, for diagnosing stalls."""
    try:
        t = pc.sctp.transport
        return ("association %s, data channel queue %d, outbound %d, sent "
                "%d (unacked), flight size %d, cwnd %d, T3 %s, reconfig "
                "pending %s queue %s" % (
                    t._association_state.name, len(t._data_channel_queue),
                    len(t._outbound_queue), len(t._sent_queue),
                    t._flight_size, t._cwnd,
                    "running" if t._t3_handle else "off",
                    t._reconfig_request is not None, t._reconfig_queue))
    except Exception as e:
        return "unavailable (%s: %s)" % (type(e).__name__, e)


def proto_name(proxy):
    return proxy.proto or "?"


async def close_channel_drained(ch):
    """Closes ch once our association has nothing unacknowledged (aiortc's
    receiver drops in-flight data of a stream it is told to reset)."""
    deadline = time.monotonic() + DRAIN_LIMIT
    sctp = getattr(ch, "transport", None)	# the RTCSctpTransport
    while ch.readyState == "open" and time.monotonic() < deadline:
        pending = ch.bufferedAmount
        if sctp is not None:
            pending += len(getattr(sctp, "_outbound_queue", ())) + \
                len(getattr(sctp, "_sent_queue", ())) + \
                len(getattr(sctp, "_data_channel_queue", ()))
        if not pending:
            break
        await asyncio.sleep(0.02)
    if ch.readyState in ("connecting", "open"):
        ch.close()


class TcpProxy(Proxy):
    proto = "TCP"

    def __init__(self, link, role, uuid, port, reader=None, writer=None):
        super().__init__(link, role, uuid, port)
        self.reader = reader
        self.writer = writer
        self.local_eof = False
        self.remote_eot = False

    async def connect_local(self, target):
        self.reader, self.writer = await asyncio.open_connection(*target)

    def deliver(self, payload):
        if self.writer is None or self.writer.is_closing():
            return
        if self.remote_eot:
            log.warning("%s: data after EOT dropped", self.what)
            return
        self.writer.write(payload)

    def on_eot(self):
        if self.remote_eot:
            return
        self.remote_eot = True
        log.info("%s: EOT received: shutting down writing", self.what)
        if self.writer is not None and not self.writer.is_closing():
            try:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
            except OSError as e:
                log.info("%s: shutdown(SHUT_WR): %s", self.what, e)
        self.check_done()

    def check_done(self):
        if self.local_eof and self.remote_eot:
            self.close("both directions done")

    def close_local(self):
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()

    async def forward(self):
        """Socket -> channel, one message per read; EOF -> EOT."""
        while not self.closed:
            try:
                data = await self.reader.read(TCP_READ)
            except (ConnectionError, OSError) as e:
                self.close("socket error: %s" % e)
                return
            if self.closed:
                return
            try:
                if not data:
                    self.send(b"", FLAG_EOT)
                    self.local_eof = True
                    log.info("%s: local EOF: EOT sent", self.what)
                    self.check_done()
                    return
                self.send(data)
            except ConnectionError as e:
                self.close(str(e), channel_too=False)
                return
            await self.backpressure()


class UdpProxy(Proxy):
    proto = "UDP"

    def __init__(self, link, role, uuid, port, listener=None, client=None):
        super().__init__(link, role, uuid, port)
        self.listener = listener	# consumer: the listener endpoint
        self.client = client		# consumer: the client's address
        self.endpoint = None		# provider: connected to the target
        self.pending = []		# datagrams not sent yet
        self.pending_size = 0
        self.flush_handle = None
        self.last_activity = time.monotonic()

    async def connect_local(self, target):
        loop = asyncio.get_running_loop()
        _, self.endpoint = await loop.create_datagram_endpoint(
            lambda: _UdpEndpoint(lambda d, a: self.local_datagram(d),
                                 self.what), remote_addr=target)

    def local_datagram(self, data):
        """A datagram from the local side: batch it."""
        if self.closed:
            return
        self.last_activity = time.monotonic()
        if not self.started.is_set() or self.channel is None:
            if len(self.pending) >= UDP_HELD_MAX:
                self.pending_size -= 4 + len(self.pending.pop(0))
            self.pending.append(bytes(data))
            self.pending_size += 4 + len(data)
            return
        if self.pending and self.pending_size + 4 + len(data) > UDP_BATCH:
            self.flush()
        self.pending.append(bytes(data))
        self.pending_size += 4 + len(data)
        if self.pending_size >= UDP_BATCH:
            self.flush()
        else:
            if self.flush_handle is not None:
                self.flush_handle.cancel()
            self.flush_handle = asyncio.get_running_loop().call_later(
                UDP_FLUSH, self.flush)

    def flush(self):
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.closed or not self.pending:
            return
        batch, self.pending, self.pending_size = self.pending, [], 0
        try:
            self.send(pack_datagrams(batch))
        except ConnectionError as e:
            self.close(str(e), channel_too=False)

    def flush_held(self):
        """After START: the held datagrams, in batches of up to ~16 KB."""
        held, self.pending, self.pending_size = self.pending, [], 0
        batch, size = [], 0
        for d in held:
            if batch and size + 4 + len(d) > UDP_BATCH:
                self.send(pack_datagrams(batch))
                batch, size = [], 0
            batch.append(d)
            size += 4 + len(d)
        if batch:
            self.send(pack_datagrams(batch))

    def deliver(self, payload):
        self.last_activity = time.monotonic()
        try:
            datagrams = unpack_datagrams(payload)
        except ValueError as e:
            log.warning("%s: bad datagram batch (%s): dropped", self.what, e)
            return
        for d in datagrams:
            if self.role == "consumer":
                if self.listener.transport is not None:
                    self.listener.transport.sendto(d, self.client)
            elif self.endpoint is not None and self.endpoint.transport:
                self.endpoint.transport.sendto(d)

    def close_local(self):
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.role == "consumer" and self.listener is not None:
            self.listener.sessions.pop(self.client, None)
        if self.endpoint is not None and self.endpoint.transport:
            self.endpoint.transport.close()

    async def forward(self):
        try:
            self.flush_held()
        except ConnectionError as e:
            self.close(str(e), channel_too=False)
            return
        if self.role != "consumer":
            return
        idle = self.link.node.args.udp_idle
        while not self.closed:
            left = self.last_activity + idle - time.monotonic()
            if left <= 0:
                log.info("%s: idle for %g s: session expired", self.what,
                         idle)
                self.close("idle")
                return
            await asyncio.sleep(min(left, 1.0))


class UdpListener(_UdpEndpoint):
    """A consumer's UDP listener: one session (proxy) per client address."""

    def __init__(self, link, port):
        super().__init__(self._datagram, "%s UDP listener %d"
                         % (link.name, port))
        self.link = link
        self.port = port
        self.sessions = {}

    def _datagram(self, data, addr):
        if self.link.closed:
            return
        sess = self.sessions.get(addr)
        if sess is None or sess.closed:
            sess = UdpProxy(self.link, "consumer", str(uuidlib.uuid4()),
                            self.port, listener=self, client=addr)
            self.sessions[addr] = sess
            log.info("%s: new session for %s:%d", sess.what, *addr[:2])
            self.link.node.spawn(sess.run_consumer())
        sess.local_datagram(data)


# ---------------------------------------------------------------- a peer

class Link:
    """The peer connection with one other member of the room."""

    def __init__(self, node, name, offerer):
        self.node = node
        self.name = name
        self.offerer = offerer
        self.pc = None
        self.control = None
        self.remote_sdp = None
        self.sdp_queue = asyncio.Queue()
        self.early = []			# candidates before the remote SDP
        self.init_sent = False
        self.init_received = False
        self.settings = None
        self.codec = None
        self.remote_ports = []
        self.ready = False
        self.closed = False
        self.servers = []		# consumer listeners (asyncio servers)
        self.udp_listeners = []
        self.consumers = {}		# uuid -> Proxy we asked for
        self.providers = {}		# uuid -> Proxy we serve
        self.tasks = set()

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task):
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            if isinstance(e, aiortc_peer.PeerError):
                self.teardown(str(e))
            else:
                log.error("%s: task failed", self.name, exc_info=e)
                self.teardown("internal error: %s: %s"
                              % (type(e).__name__, e))

    # ------------------------------------------------ negotiation

    def start(self, offer=None):
        self.spawn(self._negotiate(offer))

    async def _set_remote(self, sdp_type, sdp):
        if not isinstance(sdp, str):
            raise aiortc_peer.PeerError("%s sdp_data is not a string"
                                        % sdp_type)
        log.debug("%s: remote %s SDP:\n%s", self.name, sdp_type, sdp)
        self.remote_sdp = sdp
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=sdp, type=sdp_type))
        except Exception as e:
            raise aiortc_peer.PeerError("setRemoteDescription(%s) failed: "
                                        "%s: %s" % (sdp_type,
                                                    type(e).__name__, e))
        early, self.early = self.early, []
        for cand in early:
            await aiortc_peer.add_remote_candidate(self.pc, cand,
                                                   self.remote_sdp)

    async def _negotiate(self, offer):
        sig = self.node.sig
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("datachannel", self._on_datachannel)

        @pc.on("connectionstatechange")
        def on_state():
            log.info("%s: peer connection %s", self.name, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                self.teardown("peer connection %s" % pc.connectionState)

        if self.offerer:
            ch = pc.createDataChannel(CONTROL, ordered=True)
            self._attach_control(ch)
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            log.debug("%s: local offer:\n%s", self.name,
                      pc.localDescription.sdp)
            await sig.send_sdp("offer", pc.localDescription.sdp,
                               target=self.name)
            log.info("%s: offer sent", self.name)
        else:
            await self._set_remote("offer", offer)
            await pc.setLocalDescription(await pc.createAnswer())
            log.debug("%s: local answer:\n%s", self.name,
                      pc.localDescription.sdp)
            await sig.send_sdp("answer", pc.localDescription.sdp,
                               target=self.name)
            log.info("%s: answer sent", self.name)
        while not self.closed:
            data = await self.sdp_queue.get()
            t = data.get("type")
            if t == "answer" and self.offerer and self.remote_sdp is None:
                await self._set_remote("answer", data.get("sdp_data"))
                log.info("%s: answer applied", self.name)
            elif t == "candidate":
                if self.remote_sdp is None:
                    self.early.append(data.get("sdp_data"))
                else:
                    await aiortc_peer.add_remote_candidate(
                        pc, data.get("sdp_data"), self.remote_sdp)
            else:
                log.warning("%s: unexpected SDP_STATE %r ignored",
                            self.name, t)

    # ------------------------------------------------ channels

    def _on_datachannel(self, ch):
        label = ch.label
        log.info("%s: remote opened channel %r (id %s, ordered %s, "
                 "maxRetransmits %s)", self.name, label, ch.id, ch.ordered,
                 ch.maxRetransmits)
        if self.closed:
            ch.close()
            return
        if label == CONTROL and not self.offerer and self.control is None:
            self._attach_control(ch)
            return
        if label.startswith(PROXY_PREFIX):
            proxy = self.consumers.get(label[len(PROXY_PREFIX):])
            if proxy is not None and proxy.channel is None \
                    and not proxy.closed:
                proxy.channel_arrived(ch)
                return
            log.warning("%s: proxy channel %r that we did not ask for (or "
                        "no longer wait for): closed", self.name, label)
        else:
            log.warning("%s: channel with unexpected label %r: closed",
                        self.name, label)
        ch.close()

    def _attach_control(self, ch):
        self.control = ch
        ch.on("message", self._on_control)
        ch.on("open", self._send_init)
        ch.on("close", lambda: self.teardown("control-channel closed"))
        if ch.readyState == "open":
            self._send_init()

    def send_control(self, obj):
        ch = self.control
        if ch is None or ch.readyState != "open":
            log.warning("%s: control-channel not open, not sent: %s",
                        self.name, obj)
            return False
        ch.send(obj if isinstance(obj, str) else json.dumps(obj))
        return True

    def _send_init(self):
        if self.init_sent or self.closed:
            return
        a = self.node.args
        msg = {"type": "INIT", "IL_user": a.init_il_user or self.name,
               "config": {"unreliable_channels": a.unreliable,
                          "compression_type": a.compression,
                          "extended_compression": a.extended},
               "ports": ["%d:%s" % k for k in self.node.offers]}
        if self.send_control(msg):
            self.init_sent = True
            log.info("%s: INIT sent: %s", self.name, json.dumps(msg))
            self._maybe_ready()

    # ------------------------------------------------ control messages

    def _on_control(self, raw):
        if self.closed:
            return
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.teardown("control message is not UTF-8")
                return
        try:
            msg = json.loads(raw)
        except ValueError:
            self.teardown("control message is not JSON: %r" % raw[:200])
            return
        if not isinstance(msg, dict) or "type" not in msg:
            self.teardown("control message is not an object with a type: "
                          "%r" % raw[:200])
            return
        emit("CONTROL", {"peer": self.name, "message": msg})
        t = msg["type"]
        if t == "INIT":
            self._on_init(msg)
        elif not self.init_received:
            log.warning("%s: %r before the peer's INIT ignored", self.name,
                        t)
        elif t == "BEGIN_PROXY":
            self._on_begin_proxy(msg)
        elif t in ("FAILED", "SUCCESS"):
            name = msg.get("channel-name")
            uid = name[len(PROXY_PREFIX):] if isinstance(name, str) and \
                name.startswith(PROXY_PREFIX) else None
            proxy = None
            if uid is not None:
                proxy = self.consumers.get(uid) or self.providers.get(uid)
            if proxy is None:
                log.info("%s: %s for unknown channel %r ignored", self.name,
                         t, name)
            elif t == "FAILED":
                proxy.on_failed(msg.get("reason"))
            else:
                proxy.on_success()
        else:
            log.info("%s: unknown control message type %r ignored",
                     self.name, t)

    def _on_init(self, msg):
        if self.init_received:
            self.teardown("second INIT from the peer")
            return
        self.init_received = True
        me = self.node.args.name
        if msg.get("IL_user") != me:
            self.teardown("INIT IL_user %r is not our name %r"
                          % (msg.get("IL_user"), me))
            return
        a = self.node.args
        self.settings = negotiate(
            (a.unreliable, a.compression, a.extended),
            parse_config(msg.get("config")))
        self.codec = Codec(self.settings["compression_type"])
        self.remote_ports = parse_ports(msg.get("ports"))
        log.info("%s: INIT received; negotiated %s; the peer offers %s",
                 self.name, self.settings, self.remote_ports)
        if not self.init_sent:
            self._send_init()
        self._maybe_ready()

    def _maybe_ready(self):
        if self.ready or not (self.init_sent and self.init_received) \
                or self.settings is None or self.closed:
            return
        self.ready = True
        self.spawn(self._open_listeners())

    async def _open_listeners(self):
        host = self.node.listen_host_for(self.name)
        loop = asyncio.get_running_loop()
        for port, proto in self.remote_ports:
            sock = bind_listener(host, port, proto)
            if sock is None:
                log.error("%s: no free port on %s for %d/%s", self.name,
                          host, port, proto)
                continue
            bound = sock.getsockname()[1]
            if proto == "TCP":
                server = await asyncio.start_server(
                    lambda r, w, p=port: self._on_accept(r, w, p), sock=sock)
                self.servers.append(server)
            else:
                _, listener = await loop.create_datagram_endpoint(
                    lambda p=port: UdpListener(self, p), sock=sock)
                self.udp_listeners.append(listener)
            if self.closed:
                return
            log.info("peer %s port %d/%s -> %s:%d", self.name, port, proto,
                     host, bound)
            emit("LISTEN", {"peer": self.name, "port": port, "proto": proto,
                            "addr": "%s:%d" % (host, bound)})
        if self.closed:
            return
        emit("PEER", {"name": self.name, "state": "connected",
                      "offerer": self.offerer, "settings": self.settings,
                      "ports": ["%d:%s" % k for k in self.remote_ports]})

    def _on_accept(self, reader, writer, port):
        if self.closed:
            writer.close()
            return
        proxy = TcpProxy(self, "consumer", str(uuidlib.uuid4()), port,
                         reader, writer)
        log.info("%s: local connection from %s", proxy.what,
                 writer.get_extra_info("peername"))
        self.spawn(proxy.run_consumer())

    def _on_begin_proxy(self, msg):
        uid = msg.get("uuid")
        if not isinstance(uid, str) or not _UUID_RE.fullmatch(uid):
            log.warning("%s: BEGIN_PROXY without a valid uuid ignored: %s",
                        self.name, msg)
            return
        label = PROXY_PREFIX + uid
        port, proto = msg.get("port"), msg.get("protocol")
        reason = None
        if not valid_port(port):
            reason = "INVALID_PORT"
        elif proto not in PROTOCOLS:
            reason = "INVALID_PROTOCOL"
        elif (port, proto) not in self.node.offers:
            reason = "ACCESS_DENIED"
        elif uid in self.providers or uid in self.consumers:
            log.warning("%s: BEGIN_PROXY for %s that is already in use "
                        "ignored", self.name, label)
            return
        if reason is not None:
            log.info("%s: BEGIN_PROXY %s refused: %s", self.name,
                     json.dumps(msg), reason)
            self.send_control({"type": "FAILED", "channel-name": label,
                               "reason": reason})
            return
        cls = TcpProxy if proto == "TCP" else UdpProxy
        proxy = cls(self, "provider", uid, port)
        self.providers[uid] = proxy
        target = self.node.offers[(port, proto)]
        log.info("%s: serving -> %s:%d", proxy.what, *target)
        self.spawn(proxy.run_provider(target))

    def forget(self, proxy):
        for d in (self.consumers, self.providers):
            if d.get(proxy.uuid) is proxy:
                del d[proxy.uuid]

    # ------------------------------------------------ teardown

    def teardown(self, reason):
        if self.closed:
            return
        self.closed = True
        log.warning("%s: tearing the peer connection down: %s", self.name,
                    reason)
        emit("PEER", {"name": self.name, "state": "closed",
                      "reason": reason})
        for server in self.servers:
            server.close()
        for listener in self.udp_listeners:
            if listener.transport is not None:
                listener.transport.close()
        for proxy in list(self.consumers.values()) + \
                list(self.providers.values()):
            proxy.close("peer connection closed", channel_too=False)
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        self.node.link_closed(self)

    async def close_pc(self):
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 10)
            except Exception as e:
                log.info("%s: closing the peer connection: %s: %s",
                         self.name, type(e).__name__, e)


# ---------------------------------------------------------------- the node

class Signaling(aiortc_peer.Signaling):
    def __init__(self, args, node):
        super().__init__(args)
        self.node = node

    def ssl_context(self):
        if self.args.insecure:
            return super().ssl_context()
        return ssl.create_default_context()

    def event(self, mtype, data, msg):
        self.node.on_signal(mtype, data)


class Node:
    def __init__(self, args):
        self.args = args
        self.offers = dict(args.offer)	# (port, proto) -> (host, tport)
        self.sig = Signaling(args, self)
        self.links = {}			# name -> Link
        self.pending_candidates = {}	# name -> [sdp_data] without a link
        self.peer_numbers = {}		# per-peer loopback: name -> N
        self.tasks = set()
        self.stop = asyncio.Event()

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task):
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", exc_info=task.exception())

    def listen_host_for(self, name):
        if self.args.listen_mode != "per-peer":
            return self.args.listen_host
        if name not in self.peer_numbers:
            self.peer_numbers[name] = len(self.peer_numbers) + 1
        n = self.peer_numbers[name]
        if n > 254:
            raise aiortc_peer.PeerError("out of 127.0.1.N addresses")
        return "127.0.1.%d" % n

    # signaling events

    def member_present(self, name):
        me = self.args.name
        if not isinstance(name, str) or name == me:
            return
        link = self.links.get(name)
        if link is not None and not link.closed:
            return
        if me < name:
            log.info("%s is in the room: we offer (glare rule)", name)
            link = Link(self, name, offerer=True)
            self.links[name] = link
            link.start()
        else:
            log.info("%s is in the room: waiting for its offer", name)

    def on_signal(self, mtype, data):
        if mtype == "ROOM_NEW_MEMBER":
            self.member_present(data.get("name"))
        elif mtype == "ROOM_MEMBER_LEFT":
            name = data.get("name")
            log.info("%s left the room", name)
            self.pending_candidates.pop(name, None)
            link = self.links.get(name)
            if link is not None:
                link.teardown("peer left the room")
        elif mtype == "SDP_STATE":
            self._on_sdp(data)
        else:
            log.warning("signaling: unexpected message %s %s", mtype, data)

    def _on_sdp(self, data):
        sender, t = data.get("from"), data.get("type")
        me = self.args.name
        if not isinstance(sender, str) or sender == me:
            log.warning("signaling: SDP_STATE from %r ignored", sender)
            return
        link = self.links.get(sender)
        if t == "offer":
            if me < sender:
                log.warning("%s: offer ignored: by the glare rule WE offer "
                            "to it", sender)
                return
            if link is not None and not link.closed:
                link.teardown("new offer from the peer")
            link = Link(self, sender, offerer=False)
            self.links[sender] = link
            link.early = self.pending_candidates.pop(sender, [])
            link.start(data.get("sdp_data"))
        elif link is not None and not link.closed:
            link.sdp_queue.put_nowait(data)
        elif t == "candidate":
            self.pending_candidates.setdefault(sender, []).append(
                data.get("sdp_data"))
        else:
            log.warning("signaling: SDP_STATE %r from %s without a peer "
                        "connection ignored", t, sender)

    def link_closed(self, link):
        if self.links.get(link.name) is link:
            del self.links[link.name]
        self.spawn(link.close_pc())

    # stdin commands

    def command(self, line):
        line = line.strip()
        if not line:
            return
        kind, _, rest = line.partition(" ")
        if kind == "QUIT":
            self.stop.set()
            return
        if kind != "SEND":
            log.warning("stdin: unknown command %r", line[:200])
            return
        try:
            obj = json.loads(rest)
            link = self.links.get(obj["peer"])
            if "message" in obj:
                payload = json.dumps(obj["message"])
            else:
                payload = obj["text"]
                if not isinstance(payload, str):
                    raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as e:
            log.warning("stdin: bad SEND (%s): %r", e, rest[:200])
            return
        if link is None or link.closed:
            log.warning("stdin: no peer connection with %r", obj["peer"])
            return
        log.info("stdin: sending to %s: %s", link.name, payload[:500])
        link.send_control(payload)

    def _read_stdin(self, loop):
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(self.command, line)
        except (OSError, ValueError):
            pass

    # main

    async def run(self):
        a = self.args
        await self.sig.connect()
        await self.sig.join()
        emit("READY", {"name": a.name, "room_uuid": a.room_uuid,
                       "room_name": a.room_name,
                       "members": sorted(self.sig.members)})
        for name in sorted(self.sig.members):
            self.member_present(name)
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_stdin, args=(loop,),
                         daemon=True).start()
        waits = [asyncio.ensure_future(self.stop.wait()),
                 asyncio.ensure_future(self.sig.closed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if self.sig.closed.is_set() and not self.stop.is_set():
            raise aiortc_peer.PeerError("signaling connection closed")

    async def close(self):
        for link in list(self.links.values()):
            link.teardown("shutting down")
        for task in list(self.tasks):
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except BaseException:
                pass
        await self.sig.close()


# ---------------------------------------------------------------- CLI

def parse_offer(text):
    """PORT:PROTO[=HOST:TPORT] -> ((port, proto), (host, tport))."""
    m = re.fullmatch(r"(\d+):([A-Za-z]+)(?:=(.+):(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(
            "expected PORT:PROTO[=HOST:TPORT], got %r" % text)
    port, proto = int(m.group(1)), m.group(2).upper()
    host = m.group(3) or "127.0.0.1"
    tport = int(m.group(4)) if m.group(4) else port
    if not (valid_port(port) and valid_port(tport)):
        raise argparse.ArgumentTypeError("port out of 1..65535 in %r" % text)
    if proto not in PROTOCOLS:
        raise argparse.ArgumentTypeError("protocol must be TCP or UDP in %r"
                                         % text)
    return (port, proto), (host.strip("[]"), tport)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="version-1 PeerPipe peer (interop reference, aiortc)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="stdout/stdin formats: see the module docstring")
    p.add_argument("--url", required=True, help="wss://HOST:PORT/ws")
    p.add_argument("--insecure", action=argparse.BooleanOptionalAction,
                   default=True, help="do not verify the server's TLS "
                   "certificate (default: on, test servers are "
                   "self-signed)")
    p.add_argument("--room-uuid", required=True)
    p.add_argument("--room-name", required=True)
    p.add_argument("--name", required=True, help="our user name")
    p.add_argument("--offer", action="append", default=[], type=parse_offer,
                   metavar="PORT:PROTO[=HOST:TPORT]",
                   help="a port we provide (repeatable); BEGIN_PROXY for it "
                   "connects to HOST:TPORT (default 127.0.0.1:PORT)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="none")
    p.add_argument("--unreliable", action="store_true",
                   help="ask for unreliable (unordered, maxRetransmits=0) "
                   "proxy channels")
    p.add_argument("--extended", action="store_true",
                   help="announce extended_compression (never implemented "
                   "by v1 peers: only reported)")
    p.add_argument("--listen-host", default="127.0.0.1", metavar="ADDR",
                   help="where consumer listeners bind in shared mode "
                   "(default 127.0.0.1)")
    p.add_argument("--listen-mode", choices=("shared", "per-peer"),
                   default="shared", help="per-peer: each peer's listeners "
                   "on its own 127.0.1.N (N = 1, 2, ... in the order the "
                   "peers connect), like desktop peers")
    p.add_argument("--host-address", action="append", default=[],
                   metavar="ADDR", help="gather ICE host candidates only "
                   "on these addresses (repeatable or comma-separated; "
                   "127.0.0.1 allowed)")
    p.add_argument("--quirk-late-attach", action="store_true",
                   help="consumer: attach a new proxy channel's message "
                   "handler a few loop iterations late (deployed-consumer "
                   "hazard: an early START is dropped)")
    p.add_argument("--late-attach-iterations", type=int, default=3,
                   metavar="N", help="with --quirk-late-attach (default 3)")
    p.add_argument("--proxy-timeout", type=float, default=10.0, metavar="S",
                   help="consumer: FAILED TIMEOUT when no channel opened "
                   "within S seconds (default 10)")
    p.add_argument("--start-timeout", type=float, default=10.0,
                   metavar="S", help="consumer: give up a connection whose "
                   "channel opened but saw no START in S s (default 10)")
    p.add_argument("--udp-idle", type=float, default=60.0, metavar="S",
                   help="consumer: UDP sessions idle for S s expire "
                   "(default 60)")
    p.add_argument("--init-il-user", metavar="NAME",
                   help="testing: send NAME as IL_user in our INITs instead "
                   "of the receiver's name (the receiver must tear down)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="signaling connect timeout (default 30)")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"))
    a = p.parse_args(argv)
    offers = {}
    for key, target in a.offer:
        if key in offers:
            p.error("port %d/%s offered twice" % key)
        offers[key] = target
    a.offer = list(offers.items())
    a.host_address = [x.strip() for v in a.host_address
                      for x in v.split(",") if x.strip()]
    a.peer = None	# aiortc_peer.Signaling's single-peer field: unused
    if a.late_attach_iterations < 1:
        p.error("--late-attach-iterations must be >= 1")
    return a


async def amain(args):
    node = Node(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop.set)
    rc = 0
    try:
        await node.run()
    except aiortc_peer.PeerError as e:
        log.error("%s", e)
        rc = 1
    finally:
        await node.close()
    return rc


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s v1_peer[" + args.name + "] %(levelname)s "
        "%(name)s: %(message)s")
    if args.log_level != "debug":
        for noisy in ("aioice", "aiortc", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.host_address:
        aiortc_peer.restrict_host_addresses(args.host_address)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
