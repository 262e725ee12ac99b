"""Self-check of tests/interop/v1_peer.py, the version-1 PeerPipe peer that
the C agent is tested against, through the real peerpipe-server.

Two v1_peer.py processes meet in a fresh room: "v1-prov" offers a TCP echo
service, a TCP hash service (reads to EOF, then answers the SHA-256 of what
it got: a half-close check), a UDP echo service and a port whose target
refuses connections, all run by this test on loopback; "v1-cons" offers
nothing and consumes.  The tests wait on the peers' stdout lines (READY,
LISTEN, PEER, CONTROL, PROXY), never on fixed sleeps, and kill both
processes in teardown.  v1-cons < v1-prov, so the consumer is the offerer.
"""

import hashlib
import json
import os
import random
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from peers import INTEROP, PYTHON, ROOT

V1_PEER = os.path.join(INTEROP, "v1_peer.py")
LINE_TIMEOUT = 60.0		# generous upper bound for any awaited line
IO_TIMEOUT = 60.0		# for a whole transfer
PROVIDER, CONSUMER = "v1-prov", "v1-cons"
ROOM_NAME = "v1 selfcheck"


# ---------------------------------------------------------------- services

class Services:
    """TCP echo, TCP hash (half-close), UDP echo, and a refused port."""

    def __init__(self):
        self.stopping = False
        self.threads = []
        self.echo = self._tcp_listener(self._echo_conn)
        self.hash = self._tcp_listener(self._hash_conn)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self._thread(self._udp_loop)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        # nobody listens there (and on 127.0.0.2, where it is offered)
        self.refused_port = s.getsockname()[1]
        s.close()

    @property
    def echo_port(self):
        return self.echo.getsockname()[1]

    @property
    def hash_port(self):
        return self.hash.getsockname()[1]

    @property
    def udp_port(self):
        return self.udp.getsockname()[1]

    def _thread(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _tcp_listener(self, handler):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(0.2)
        self._thread(self._accept_loop, s, handler)
        return s

    def _accept_loop(self, s, handler):
        while not self.stopping:
            try:
                conn, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            self._thread(self._guard, handler, conn)

    @staticmethod
    def _guard(handler, conn):
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _echo_conn(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    @staticmethod
    def _hash_conn(conn):
        h, n = hashlib.sha256(), 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        conn.sendall(("%d %s\n" % (n, h.hexdigest())).encode())

    def _udp_loop(self):
        while not self.stopping:
            try:
                data, addr = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp.sendto(data, addr)

    def close(self):
        self.stopping = True
        for s in (self.echo, self.hash, self.udp):
            s.close()
        for t in self.threads:
            t.join(5)


@pytest.fixture(scope="module")
def services():
    svc = Services()
    yield svc
    svc.close()


# ---------------------------------------------------------------- peers

class V1Peer:
    """One v1_peer.py process; stdout lines collected by a thread."""

    def __init__(self, server, room, name, extra, workdir):
        self.name = name
        self.cmd = [PYTHON, V1_PEER,
                    "--url", "wss://%s:%d/ws" % (server.host, server.port),
                    "--room-uuid", room, "--room-name", ROOM_NAME,
                    "--name", name, "--host-address", "127.0.0.1"] + extra
        # e.g. PP_V1PEER_ARGS="--log-level debug" to see aiortc's SCTP
        self.cmd += os.environ.get("PP_V1PEER_ARGS", "").split()
        self.err_path = os.path.join(workdir, name + ".stderr")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._err)
        self.lines = []		# (kind, obj)
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            kind, _, rest = line.partition(" ")
            try:
                obj = json.loads(rest)
            except ValueError:
                obj = {"unparsed": line}
                kind = "?"
            with self.cond:
                self.lines.append((kind, obj))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def stderr_tail(self, n=80):
        with open(self.err_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def diagnosis(self):
        with self.cond:
            out = "\n".join("%s %s" % (k, json.dumps(o))
                            for k, o in self.lines)
        return "--- %s (exit %r): %s\n--- stdout ---\n%s\n--- stderr ---\n%s" \
            % (self.name, self.proc.poll(), " ".join(self.cmd), out,
               self.stderr_tail())

    def find(self, kind, **match):
        """All (kind, obj) lines so far whose obj has these items."""
        with self.cond:
            return [o for k, o in self.lines if k == kind and
                    all(o.get(f) == v for f, v in match.items())]

    def wait(self, kind, timeout=LINE_TIMEOUT, **match):
        """The first line of that kind matching; fails after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for k, o in self.lines:
                    if k == kind and all(o.get(f) == v
                                         for f, v in match.items()):
                        return o
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.reader.is_alive()):
                    break
                self.cond.wait(min(left, 0.5))
        pytest.fail("no %s line matching %r from %s within %g s\n%s"
                    % (kind, match, self.name, timeout, self.diagnosis()),
                    pytrace=False)

    def command(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def send_control(self, peer, message=None, text=None):
        obj = {"peer": peer}
        if text is not None:
            obj["text"] = text
        else:
            obj["message"] = message
        self.command("SEND " + json.dumps(obj))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self._err.close()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def start_pair(server, services):
    """start_pair(provider_args, consumer_args) -> (prov, cons), both
    connected (PEER "connected" seen on each side)."""
    workdir = tempfile.mkdtemp(prefix="pp-v1peer-")
    started = []

    def start(prov_extra, cons_extra, offers=True, wait=True):
        room = str(uuid.uuid4())
        svc = services
        offer_args = []
        if offers:
            offer_args = [
                "--offer", "%d:TCP=127.0.0.1:%d" % (svc.echo_port,
                                                    svc.echo_port),
                "--offer", "%d:TCP=127.0.0.1:%d" % (svc.hash_port,
                                                    svc.hash_port),
                "--offer", "%d:UDP=127.0.0.1:%d" % (svc.udp_port,
                                                    svc.udp_port),
                # not 127.0.0.1: the consumer may listen on that port there
                "--offer", "%d:TCP=127.0.0.2:%d" % (svc.refused_port,
                                                    svc.refused_port)]
        prov = V1Peer(server, room, PROVIDER, offer_args + list(prov_extra),
                      workdir)
        started.append(prov)
        prov.wait("READY")
        cons = V1Peer(server, room, CONSUMER, list(cons_extra), workdir)
        started.append(cons)
        if wait:
            prov.wait("PEER", name=CONSUMER, state="connected")
            cons.wait("PEER", name=PROVIDER, state="connected")
        return prov, cons

    yield start
    problems = []
    for p in started:
        p.stop()
        print(p.diagnosis())	# shown by pytest when the test failed
        err = open(p.err_path, "rb").read().decode("utf-8", "replace")
        if "Traceback" in err or "task failed" in err:
            problems.append("%s logged an exception:\n%s"
                            % (p.name, p.stderr_tail(120)))
    assert not problems, "\n\n".join(problems)


# ---------------------------------------------------------------- clients

def addr_of(listen):
    host, port = listen["addr"].rsplit(":", 1)
    return host, int(port)


def tcp_exchange(addr, data, what):
    """Sends data, shuts down writing, returns all that comes back."""
    s = socket.create_connection(addr, timeout=IO_TIMEOUT)
    got = []
    errors = []

    def reader():
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return
                got.append(chunk)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(IO_TIMEOUT)
        assert not t.is_alive(), "%s: no EOF within %g s (%d bytes back)" \
            % (what, IO_TIMEOUT, sum(map(len, got)))
    finally:
        s.close()
    assert not errors, "%s: %s" % (what, errors)
    return b"".join(got)


def test_data(size, seed):
    """Half random, half compressible."""
    rnd = random.Random(seed)
    half = size // 2
    noise = rnd.getrandbits(8 * half).to_bytes(half, "big")
    words = [b"peerpipe", b"tunnel", b"channel", b"zstd", b"lz4", b"data"]
    text = b" ".join(rnd.choice(words) for _ in range(size // 5))
    return noise + text[:size - half]


test_data.__test__ = False	# a helper, not a test


def udp_check(addr, count=20, burst=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        # request/response, sizes 1..~1400 and one large datagram
        sizes = [1 + (i * 73) % 1400 for i in range(count)] + [8000]
        for i, n in enumerate(sizes):
            payload = (b"%06d:" % i + os.urandom(n))[:max(n, 7)]
            for attempt in range(3):
                s.sendto(payload, addr)
                try:
                    while True:
                        reply, _ = s.recvfrom(65536)
                        if reply == payload:
                            break
                except socket.timeout:
                    continue
                break
            else:
                pytest.fail("UDP: no echo of datagram %d (%d bytes) from %s"
                            % (i, len(payload), addr), pytrace=False)
        if not burst:
            return
        # a burst: batched on the way, every one must come back
        want = {b"burst %03d " % i + os.urandom(i * 10) for i in range(50)}
        for p in want:
            s.sendto(p, addr)
        got = set()
        deadline = time.monotonic() + 20
        while got != want and time.monotonic() < deadline:
            try:
                reply, _ = s.recvfrom(65536)
            except socket.timeout:
                break
            if reply in want:
                got.add(reply)
        assert got == want, "UDP burst: %d of %d echoed" % (len(got),
                                                            len(want))
    finally:
        s.close()


# ---------------------------------------------------------------- tests

MB = 1024 * 1024

CASES = [
    pytest.param({"prov": ["--compression", "none"],
                  "cons": ["--compression", "none"],
                  "settings": {"compression_type": "none",
                               "unreliable_channels": False,
                               "extended_compression": False},
                  "size": 4 * MB, "per_peer": False}, id="none"),
    pytest.param({"prov": ["--compression", "lz4"],
                  "cons": ["--compression", "zstd-hc", "--listen-mode",
                           "per-peer"],
                  "settings": {"compression_type": "lz4",
                               "unreliable_channels": False,
                               "extended_compression": False},
                  "size": 2 * MB, "per_peer": True}, id="lz4"),
    # extended wins over unreliable when both are asked for by both
    pytest.param({"prov": ["--compression", "zstd", "--extended",
                           "--unreliable"],
                  "cons": ["--compression", "zstd", "--extended",
                           "--unreliable"],
                  "settings": {"compression_type": "zstd",
                               "unreliable_channels": False,
                               "extended_compression": True},
                  "size": 2 * MB, "per_peer": False}, id="zstd"),
    # unreliable channels: TCP over maxRetransmits=0 is lossy by design, so
    # only small transfers here
    pytest.param({"prov": ["--compression", "zstd-hc", "--unreliable"],
                  "cons": ["--compression", "zstd-hc", "--unreliable"],
                  "settings": {"compression_type": "zstd-hc",
                               "unreliable_channels": True,
                               "extended_compression": False},
                  "size": 64 * 1024, "per_peer": False}, id="zstd-hc"),
]


@pytest.mark.parametrize("case", CASES)
def test_forwarding(start_pair, services, case):
    prov, cons = start_pair(case["prov"], case["cons"])
    svc = services
    pp = prov.find("PEER", name=CONSUMER, state="connected")[0]
    cp = cons.find("PEER", name=PROVIDER, state="connected")[0]
    assert pp["settings"] == case["settings"], prov.diagnosis()
    assert cp["settings"] == case["settings"], cons.diagnosis()
    assert pp["offerer"] is False and cp["offerer"] is True
    assert pp["ports"] == [] and prov.find("LISTEN") == []
    offered = {(svc.echo_port, "TCP"), (svc.hash_port, "TCP"),
               (svc.udp_port, "UDP"), (svc.refused_port, "TCP")}
    assert {tuple(p.split(":")) for p in cp["ports"]} == \
        {(str(p), proto) for p, proto in offered}

    # one LISTEN line per offered port, and nothing else
    listens = {(o["port"], o["proto"]): o
               for o in cons.find("LISTEN", peer=PROVIDER)}
    assert set(listens) == offered, cons.diagnosis()
    for (port, proto), o in listens.items():
        host, bound = addr_of(o)
        if case["per_peer"]:
            # the first peer's own loopback address, where the port is free
            assert (host, bound) == ("127.0.1.1", port), o
        else:
            assert host == "127.0.0.1", o
            if port != svc.refused_port:
                # taken by our service on 127.0.0.1: the fallback range
                assert 20000 <= bound <= 59999 and bound != port, o

    # TCP echo, SHA-256 checked, with half-close at the end
    data = test_data(case["size"], case["size"])
    back = tcp_exchange(addr_of(listens[(svc.echo_port, "TCP")]), data,
                        "TCP echo")
    assert len(back) == len(data) and \
        hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), \
        "echo: %d bytes sent, %d back (content %s)" % (
            len(data), len(back), "differs" if back != data[:len(back)]
            else "a prefix")
    closed = cons.wait("PROXY", role="consumer", port=svc.echo_port,
                       event="closed")
    assert closed["sent"] == closed["received"] == len(data), closed
    assert closed["reason"] == "both directions done", closed
    if case["settings"]["compression_type"] == "none":
        assert closed["wire_sent"] > closed["sent"], closed
    else:
        # half of the data compresses well
        assert closed["wire_sent"] < 0.8 * closed["sent"], closed
        assert closed["wire_received"] < 0.8 * closed["received"], closed
    started = cons.find("PROXY", role="consumer", port=svc.echo_port,
                        event="start")
    assert len(started) == 1, cons.diagnosis()

    # half-close: the reply only comes after our shutdown(SHUT_WR)
    data = test_data(case["size"] // 2, 7)
    reply = tcp_exchange(addr_of(listens[(svc.hash_port, "TCP")]), data,
                         "TCP hash")
    assert reply.decode() == "%d %s\n" % (
        len(data), hashlib.sha256(data).hexdigest()), reply

    # UDP request/response (and a batched burst on reliable channels)
    udp_check(addr_of(listens[(svc.udp_port, "UDP")]),
              burst=not case["settings"]["unreliable_channels"])

    # an offered port whose service refuses: the client gets nothing
    got = tcp_exchange(addr_of(listens[(svc.refused_port, "TCP")]), b"",
                       "refused port")
    assert got == b""
    prov.wait("PROXY", role="provider", port=svc.refused_port,
              event="failed", reason="CONNECT_FAILED")
    assert prov.find("PROXY", role="provider", port=svc.refused_port,
                     event="start") == []


def test_late_attach_quirk_is_bounded(start_pair, services):
    """--quirk-late-attach: the consumer attaches its handler late, so a
    START from a provider that sends it right away (as ours and the
    deployed ones do) may be lost.  Each connection must then either work
    or be given up after --start-timeout with a NO_START line: never hang.
    """
    prov, cons = start_pair([], ["--quirk-late-attach", "--start-timeout",
                                 "3"])
    listen = cons.wait("LISTEN", peer=PROVIDER, port=services.echo_port)
    n = 6
    results = [None] * n

    def one(i):
        data = b"connection %d " % i * 1000
        results[i] = (data, tcp_exchange(addr_of(listen), data,
                                         "late attach %d" % i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT + 10)
    assert all(r is not None for r in results), cons.diagnosis()
    lost = 0
    for data, back in results:
        if back != data:
            assert back == b"", "late attach: partial echo"
            lost += 1
    closed = [cons.wait("PROXY", role="consumer", uuid=b["uuid"],
                        event="closed")
              for b in cons.find("PROXY", role="consumer", event="begin")]
    assert len(closed) == n
    no_start = [c for c in closed if c["reason"] == "failed: NO_START"]
    assert len(no_start) == lost, cons.diagnosis()
    with open(cons.err_path, "rb") as f:
        assert b"attached 3 loop iterations late" in f.read()
    print("late attach: %d of %d connections lost their START" % (lost, n))


def test_begin_proxy_refusals(start_pair, services):
    """The provider answers bad BEGIN_PROXY requests with FAILED, ignores
    those without a uuid and unknown message types, and tears the peer
    connection down on a second INIT."""
    prov, cons = start_pair([], [])
    svc = services

    def request(port, protocol, reason, **extra):
        uid = str(uuid.uuid4())
        msg = {"type": "BEGIN_PROXY", "port": port, "protocol": protocol,
               "uuid": uid}
        msg.update(extra)
        cons.send_control(PROVIDER, msg)
        failed = cons.wait("CONTROL", peer=PROVIDER,
                           message={"type": "FAILED",
                                    "channel-name": "proxy-" + uid,
                                    "reason": reason})
        return failed

    # ignored: no uuid, a malformed uuid, an unknown type
    cons.send_control(PROVIDER, {"type": "BEGIN_PROXY",
                                 "port": svc.echo_port, "protocol": "TCP"})
    cons.send_control(PROVIDER, {"type": "BEGIN_PROXY",
                                 "port": svc.echo_port, "protocol": "TCP",
                                 "uuid": "not-a-uuid"})
    cons.send_control(PROVIDER, {"type": "SOMETHING_NEW", "x": 1})
    request(1, "TCP", "ACCESS_DENIED")		# not offered
    request(svc.echo_port, "UDP", "ACCESS_DENIED")	# offered as TCP only
    request(svc.udp_port, "TCP", "ACCESS_DENIED")	# offered as UDP only
    request(0, "TCP", "INVALID_PORT")
    request(70000, "TCP", "INVALID_PORT")
    request("80", "TCP", "INVALID_PORT")
    request(svc.echo_port, "SCTP", "INVALID_PROTOCOL")
    request(svc.echo_port, "tcp", "INVALID_PROTOCOL")
    # exactly the eight FAILED above: nothing for the ignored requests
    # (the control channel is ordered, so their answers would be here)
    failed = [o for o in cons.find("CONTROL", peer=PROVIDER)
              if o["message"].get("type") == "FAILED"]
    assert len(failed) == 8, cons.diagnosis()
    assert prov.find("PROXY") == [], prov.diagnosis()
    # still connected, and an allowed port still works
    listen = cons.wait("LISTEN", peer=PROVIDER, port=svc.echo_port)
    assert tcp_exchange(addr_of(listen), b"still here", "echo") == \
        b"still here"

    # a second INIT tears the connection down (on both sides)
    cons.send_control(PROVIDER, {
        "type": "INIT", "IL_user": PROVIDER,
        "config": {"unreliable_channels": False,
                   "compression_type": "none",
                   "extended_compression": False}, "ports": []})
    closed = prov.wait("PEER", name=CONSUMER, state="closed")
    assert closed["reason"] == "second INIT from the peer", closed
    cons.wait("PEER", name=PROVIDER, state="closed")


@pytest.mark.parametrize("how", ["non-object", "not-json", "il-user"])
def test_teardown_on_bad_control(start_pair, how):
    """A wrong IL_user in INIT, or a control message that is not a JSON
    object with a type, makes the receiver tear the connection down."""
    if how == "il-user":
        prov, cons = start_pair([], ["--init-il-user", "someone-else"],
                                wait=False)
        closed = prov.wait("PEER", name=CONSUMER, state="closed")
        assert "IL_user 'someone-else' is not our name" in \
            closed["reason"], closed
        assert prov.find("PEER", name=CONSUMER, state="connected") == []
    else:
        prov, cons = start_pair([], [])
        text = '["INIT"]' if how == "non-object" else "INIT please"
        cons.send_control(PROVIDER, text=text)
        closed = prov.wait("PEER", name=CONSUMER, state="closed")
        assert ("not an object with a type" if how == "non-object"
                else "not JSON") in closed["reason"], closed
    cons.wait("PEER", name=PROVIDER, state="closed")
