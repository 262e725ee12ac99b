"""End to end through the real agent: client -> peerpipe connect -> WebRTC
-> peerpipe gateway -> service, with the real signaling server.

Each test module gets one signaling server; each test its own room with a
gateway sharing services that run in this process, and a client agent.
"""

import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from agents import (AgentProcess, TcpService, UdpEcho, agent_bin, bulk_recv,
                    bulk_send, echo_handler, free_port, http_handler,
                    new_room, upper_after_eof_handler, write_config)
from conftest import start_server

BULK_BYTES = int(os.environ.get("PP_TEST_BULK_BYTES", str(1 << 30)))


class Pair:
    """A gateway and a client in one room, with the services behind them."""

    def __init__(self, tmp, url, compression="none", gw_name="gw-office",
                 cl_name="laptop-1", cl_extra="", extended=False):
        self.tmp = str(tmp)
        self.url = url
        self.room = new_room()
        self.echo = TcpService(echo_handler)
        self.http = TcpService(http_handler)
        self.half = TcpService(upper_after_eof_handler)
        self.bulk_results = []
        self.bulk = TcpService(self._bulk_handler)
        self.udp = UdpEcho()
        self.gw_name, self.cl_name = gw_name, cl_name
        self.ports = {"echo": 15432, "http": 18080, "half": 17000,
                      "bulk": 19000, "dns": 15353}
        services = [("echo", self.ports["echo"], "tcp", "127.0.0.1", self.echo.port),
                    ("http", self.ports["http"], "tcp", "127.0.0.1", self.http.port),
                    ("half", self.ports["half"], "tcp", "127.0.0.1", self.half.port),
                    ("bulk", self.ports["bulk"], "tcp", "127.0.0.1", self.bulk.port),
                    ("dns", self.ports["dns"], "udp", "127.0.0.1", self.udp.port)]
        self.gw_conf = write_config(os.path.join(self.tmp, "gw.conf"), gw_name,
                                    url, self.room, services=services,
                                    compression=compression,
                                    extended=extended)
        self.cl_conf = write_config(os.path.join(self.tmp, "cl.conf"), cl_name,
                                    url, self.room, compression=compression,
                                    extra=cl_extra, extended=extended)
        self.gw = AgentProcess("gateway", self.gw_conf, self.tmp, gw_name)
        self.cl = AgentProcess("connect", self.cl_conf, self.tmp, cl_name)

    def _bulk_handler(self, conn):
        """Sends BULK_BYTES while reading what comes; reports both digests."""
        result = {}

        def rx():
            result["rx"] = bulk_recv(conn)

        t = threading.Thread(target=rx)
        t.start()
        result["tx"] = bulk_send(conn, BULK_BYTES, seed=2)
        conn.shutdown(socket.SHUT_WR)
        t.join()
        self.bulk_results.append(result)

    def addr(self, svc, proto="TCP"):
        return self.cl.wait_listener(self.gw_name, self.ports[svc], proto)

    def close(self):
        problems = []
        for a in (self.cl, self.gw):
            problems += a.stop_problems(must_live=True)
        for s in (self.echo, self.http, self.half, self.bulk, self.udp):
            s.close()
        assert not problems, "\n\n".join(problems)


@pytest.fixture
def pair(tmp_path, server):
    p = Pair(tmp_path, "wss://127.0.0.1:%d/ws" % server.port)
    yield p
    p.close()


def connect(addr, timeout=30):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        assert d, "connection closed after %d of %d bytes" % (len(buf), n)
        buf += d
    return buf


def http_get(addr, path="/"):
    with connect(addr) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                return data
            data += d


def test_http_request_through_the_tunnel(pair):
    addr = pair.addr("http")
    # connect mode: one loopback address per remote peer, same port number
    assert addr[0].startswith("127.0.1."), addr
    assert addr[1] == pair.ports["http"]
    resp = http_get(addr, "/index.html")
    assert resp.startswith(b"HTTP/1.1 200 OK"), resp[:200]
    assert resp.endswith(b"hello through the tunnel: /index.html\n")


def test_long_lived_session_many_round_trips(pair):
    """Like a PostgreSQL session: one connection, many small exchanges."""
    with connect(pair.addr("echo")) as s:
        for i in range(2000):
            msg = b"SELECT %d;" % i
            s.sendall(msg)
            assert recv_exact(s, len(msg)) == msg
        time.sleep(1.0)         # idle, then more: the session stays usable
        s.sendall(b"still here")
        assert recv_exact(s, 10) == b"still here"


def test_half_close(pair):
    """Client sends, shuts down writing, still reads the reply (EOT)."""
    payload = os.urandom(300000)
    with connect(pair.addr("half")) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            reply += d
    assert reply == hashlib.sha256(payload).hexdigest().encode() + b"\n"


def test_200_concurrent_short_connections(pair):
    addr = pair.addr("echo")
    errors = []

    def one(i):
        try:
            with connect(addr) as s:
                msg = b"conn %d " % i * 10
                s.sendall(msg)
                assert recv_exact(s, len(msg)) == msg
        except Exception as e:  # noqa: BLE001
            errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:10]
    st = pair.cl.ctl("status")
    peer = [p for p in st["peers"] if p["name"] == pair.gw_name][0]
    assert peer["connections_total"] >= 200


def test_bulk_both_ways_sha256(pair):
    addr = pair.addr("bulk")
    with connect(addr, timeout=600) as s:
        got = {}

        def rx():
            got["rx"] = bulk_recv(s)

        t = threading.Thread(target=rx)
        t.start()
        tx = bulk_send(s, BULK_BYTES, seed=1)
        s.shutdown(socket.SHUT_WR)
        t.join(900)
    deadline = time.monotonic() + 60
    while not pair.bulk_results and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pair.bulk_results, "the service never finished"
    res = pair.bulk_results[0]
    assert got["rx"][0] == BULK_BYTES
    assert got["rx"][1] == res["tx"], "gateway -> client data corrupted"
    assert res["rx"] == (BULK_BYTES, tx), "client -> gateway data corrupted"


def test_udp_request_response_and_stream(pair):
    addr = pair.addr("dns", "UDP")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    try:
        for i in range(50):           # DNS-like: small query, answer back
            q = b"ECHO query %d" % i
            s.sendto(q, addr)
            data, _ = s.recvfrom(65535)
            assert data == q
        before = pair.udp.received
        for i in range(5000):         # a stream one way, ~5 MB/s
            s.sendto(b"STREAM %06d " % i + b"x" * 1000, addr)
            if i % 10 == 0:
                time.sleep(0.002)
        deadline = time.monotonic() + 30
        while pair.udp.received - before < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)
        # reliable channel on loopback: drops only under backpressure
        got = pair.udp.received - before
        st = pair.cl.ctl("status")
        peer = [p for p in st["peers"] if p["name"] == pair.gw_name][0]
        assert got >= 4500, (got, peer["udp_dropped"])
    finally:
        s.close()


def test_status_api(pair):
    resp = http_get(pair.addr("http"))
    assert resp.startswith(b"HTTP/1.1 200")
    st = pair.cl.ctl("status")
    assert st["name"] == pair.cl_name and st["mode"] == "connect"
    assert st["signaling"]["connected"] is True
    peer = [p for p in st["peers"] if p["name"] == pair.gw_name][0]
    assert peer["state"] == "connected"
    assert peer["path"]["type"] == "direct"
    assert peer["path"]["local_type"] == "host"
    assert peer["tunnel"]["version"] == 2
    # v2 end to end: the client verified the gateway's identity key
    gw_id = pair.gw.ctl("status")["identity"]
    assert gw_id.startswith("ed25519:") and peer["identity"] == gw_id
    assert peer["bytes_in"] > 0 and peer["bytes_out"] > 0
    ports = {(l["port"], l["proto"]) for l in peer["listeners"]}
    assert (pair.ports["http"], "TCP") in ports
    svc = pair.gw.ctl("services")
    assert {s["name"] for s in svc["shared"]} == {"echo", "http", "half",
                                                  "bulk", "dns"}
    # human output names the peer and its path
    r = subprocess.run([agent_bin(), "status", "--control", pair.cl.control],
                       capture_output=True, timeout=30)
    assert r.returncode == 0
    assert pair.gw_name.encode() in r.stdout and b"direct" in r.stdout


def test_id_command(pair):
    """`peerpipe id` prints the key the running agent uses, as a policy entry."""
    pair.addr("echo")
    st = pair.gw.ctl("status")
    r = subprocess.run([agent_bin(), "id", "-c", pair.gw_conf], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "[peer %s]" % pair.gw_name in out
    assert "key = %s" % st["identity"] in out
    key_file = os.path.join(pair.tmp, pair.gw_name + "-state", "identity.pem")
    assert os.stat(key_file).st_mode & 0o777 == 0o600


def test_refused_port_counts(pair):
    """A port the gateway does not offer gets no listener and no access."""
    pair.addr("http")
    listeners = pair.cl.listeners()
    assert all(k[1] != 5999 for k in listeners)


def test_fixed_forward_and_consume_filter(tmp_path, server):
    """[forward] pins a local port next to the automatic listeners;
    [consume] peers limits whom we listen for."""
    fixed = free_port()
    extra = ("[forward web]\npeer = gw-office\nport = 18080\n"
             "listen = 127.0.0.1:%d\n\n[consume]\npeers = gw-office\n" % fixed)
    p = Pair(tmp_path, "wss://127.0.0.1:%d/ws" % server.port, cl_extra=extra)
    try:
        auto = p.addr("http")
        fixed_addr = p.cl.wait_listener(p.gw_name, 18080)
        deadline = time.monotonic() + 30
        while len([k for k in p.cl.listeners() if k[1] == 18080]) < 1 or \
                ("127.0.0.1", fixed) not in [v for v in _all_listeners(p.cl)]:
            assert time.monotonic() < deadline, p.cl.out()
            time.sleep(0.05)
        for addr in (auto, ("127.0.0.1", fixed)):
            assert http_get(addr, "/f").endswith(b"tunnel: /f\n"), addr
        assert fixed_addr  # announced
    finally:
        p.close()


def _all_listeners(agent):
    import re as _re
    out = []
    for line in agent.out().splitlines():
        m = _re.match(r"^peer \S+ port \d+/\S+ -> (\S+):(\d+)$", line.strip())
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def test_backpressure_slow_service(tmp_path, server):
    """A service that stops reading: the tunnel must stop taking data (bounded
    buffers end to end) and lose nothing once the service reads again."""
    go = threading.Event()
    got = {}

    def slow(conn):
        go.wait(120)
        got["rx"] = bulk_recv(conn)

    p = Pair(tmp_path, "wss://127.0.0.1:%d/ws" % server.port)
    svc = TcpService(slow)
    try:
        p.gw.stop()
        p.gw = AgentProcess("gateway", write_config(
            os.path.join(p.tmp, "gw2.conf"), p.gw_name, p.url, p.room,
            services=[("slow", 16000, "tcp", "127.0.0.1", svc.port)]),
            p.tmp, p.gw_name + "-slow")
        addr = p.cl.wait_listener(p.gw_name, 16000, timeout=60)
        total = 256 << 20
        sent = [0]
        digest = {}

        def push():
            with connect(addr, timeout=300) as s:
                block = os.urandom(1 << 16)
                h = hashlib.sha256()
                while sent[0] < total:
                    s.sendall(block)
                    h.update(block)
                    sent[0] += len(block)
                s.shutdown(socket.SHUT_WR)
                digest["tx"] = h.hexdigest()
                s.recv(1)

        t = threading.Thread(target=push, daemon=True)
        t.start()
        last, still = -1, 0
        while still < 20:           # no progress for 2 s: it is blocked
            time.sleep(0.1)
            still = still + 1 if sent[0] == last else 0
            last = sent[0]
            assert sent[0] < total, "256 MiB went in with nobody reading"
        # kernel socket buffers on both ends plus the tunnel's bounded queues
        assert sent[0] < 48 << 20, "%d bytes taken in" % sent[0]
        rss = [_rss_kib(a.proc.pid) for a in (p.cl, p.gw)]
        assert all(r < 200 * 1024 for r in rss), rss
        go.set()
        t.join(600)
        deadline = time.monotonic() + 120
        while "rx" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got["rx"] == (total, digest["tx"])
    finally:
        go.set()
        svc.close()
        p.close()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_site_to_site(tmp_path, server):
    """Two gateways share a service each and consume each other's."""
    url = "wss://127.0.0.1:%d/ws" % server.port
    room = new_room()
    a_svc, b_svc = TcpService(echo_handler), TcpService(http_handler)
    a = b = None
    try:
        a = AgentProcess("gateway", write_config(
            str(tmp_path / "a.conf"), "site-a", url, room, bind="127.0.0.1",
            services=[("echo", 23001, "tcp", "127.0.0.1", a_svc.port)]),
            str(tmp_path), "site-a")
        b = AgentProcess("gateway", write_config(
            str(tmp_path / "b.conf"), "site-b", url, room, bind="127.0.0.1",
            services=[("web", 23002, "tcp", "127.0.0.1", b_svc.port)]),
            str(tmp_path), "site-b")
        from_a = a.wait_listener("site-b", 23002)
        from_b = b.wait_listener("site-a", 23001)
        assert from_a[0] == "127.0.0.1" and from_b[0] == "127.0.0.1"
        assert http_get(from_a, "/s2s").endswith(b"tunnel: /s2s\n")
        with connect(from_b) as s:
            s.sendall(b"site b -> site a")
            assert recv_exact(s, 16) == b"site b -> site a"
    finally:
        for ag in (a, b):
            if ag:
                assert ag.stop() == 0, ag.log_tail()
                assert ag.sanitizer_report() is None
        a_svc.close()
        b_svc.close()


def test_gateway_restart(pair):
    addr = pair.addr("echo")
    with connect(addr) as s:
        s.sendall(b"before")
        assert recv_exact(s, 6) == b"before"
    n = pair.cl.listener_count(pair.gw_name, pair.ports["echo"])
    pair.gw.stop(signal.SIGKILL)
    pair.gw = AgentProcess("gateway", pair.gw_conf, pair.tmp, pair.gw_name + "-2")
    # the client notices, reconnects, and listens again
    addr = pair.cl.wait_listener(pair.gw_name, pair.ports["echo"], since=n,
                                 timeout=120)
    with connect(addr) as s:
        s.sendall(b"after")
        assert recv_exact(s, 5) == b"after"


def test_client_restart(pair):
    """The answering side restarts: the offerer must not wait for its stale
    connection to time out (v2 probe on rejoin)."""
    addr = pair.addr("echo")
    pair.cl.stop(signal.SIGKILL)
    pair.cl = AgentProcess("connect", pair.cl_conf, pair.tmp, pair.cl_name + "-2")
    addr = pair.cl.wait_listener(pair.gw_name, pair.ports["echo"], timeout=30)
    with connect(addr) as s:
        s.sendall(b"again")
        assert recv_exact(s, 5) == b"again"
    pair.gw.wait_log(r"peer %s: rejoined the room and its old connection "
                     r"does not answer" % pair.cl_name)


def test_signaling_restart_keeps_tunnel(tmp_path, shared_state_dir):
    port = free_port()
    srv = start_server(listen="127.0.0.1:%d" % port, state_dir=shared_state_dir,
                       tmpdir=str(tmp_path))
    p = Pair(tmp_path, "wss://127.0.0.1:%d/ws" % port)
    try:
        addr = p.addr("echo")
        s = connect(addr)
        s.sendall(b"one")
        assert recv_exact(s, 3) == b"one"
        srv.stop(signal.SIGKILL, timeout=10)
        # the open connection still works with the signaling server gone
        s.sendall(b"two")
        assert recv_exact(s, 3) == b"two"
        srv = start_server(listen="127.0.0.1:%d" % port,
                           state_dir=shared_state_dir, tmpdir=str(tmp_path))
        deadline = time.monotonic() + 60
        while True:
            st = p.cl.ctl("status")
            if st["signaling"]["in_room"] and st["signaling"]["connects"] >= 2:
                break
            assert time.monotonic() < deadline, p.cl.log_tail()
            time.sleep(0.1)
        s.sendall(b"three")
        assert recv_exact(s, 5) == b"three"
        s.close()
        with connect(addr) as s2:           # and new connections too
            s2.sendall(b"four")
            assert recv_exact(s2, 4) == b"four"
    finally:
        p.close()
        srv.stop()


@pytest.mark.parametrize("compression", ["lz4", "zstd", "zstd-hc", "adaptive",
                                         "zstd+extended"])
def test_compression_modes(tmp_path, server, compression):
    extended = compression.endswith("+extended")
    compression = compression.split("+")[0]
    p = Pair(tmp_path, "wss://127.0.0.1:%d/ws" % server.port,
             compression=compression, extended=extended)
    try:
        text = (b"SELECT * FROM accounts WHERE id = 42; -- compressible\n" * 4000)
        rnd = os.urandom(200000)
        with connect(p.addr("echo")) as s:
            for payload in (text, rnd, b"tiny"):
                s.sendall(payload)
                assert recv_exact(s, len(payload)) == payload
        st = p.cl.ctl("status")
        peer = [x for x in st["peers"] if x["name"] == p.gw_name][0]
        assert peer["tunnel"]["compression"] == compression
        # v2 "stream": one zstd context per channel when both ask for extended
        assert peer["tunnel"]["stream"] == extended
        # compressible text made the framed bytes smaller than the payload
        assert peer["wire_out"] < peer["bytes_out"], peer
    finally:
        p.close()


def test_json_logs(tmp_path, server):
    conf = write_config(str(tmp_path / "j.conf"), "json-agent",
                        "wss://127.0.0.1:%d/ws" % server.port, new_room())
    a = AgentProcess("gateway", conf, str(tmp_path), "json-agent",
                     args=["--log-format", "json"])
    try:
        a.wait_log(r"in room")
    finally:
        assert a.stop() == 0
    lines = [l for l in a.log().splitlines() if l.strip()]
    assert lines
    for l in lines:
        obj = json.loads(l)
        assert {"ts", "level", "subsys", "msg"} <= set(obj), obj


def test_check_config_errors(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[agent]\nname = x\n[service db]\nport = 70000\n"
                   "target = 127.0.0.1:5432\n[bogus]\n")
    r = subprocess.run([agent_bin(), "check-config", "-c", str(bad)],
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "%s:4:" % bad in err and "70000" in err, err
    assert "%s:6:" % bad in err, err
    good = write_config(str(tmp_path / "good.conf"), "gw-office",
                        "wss://127.0.0.1:46466/ws", new_room(),
                        services=[("web", 8080, "tcp", "127.0.0.1", 8080)])
    r = subprocess.run([agent_bin(), "check-config", "-c", good],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"OK" in r.stdout
