"""Interop: the C agent against tests/interop/v1_peer.py, an independent
version-1 peer on Debian's aiortc written from ../shared/spec only.

Both roles of the C agent (provider = gateway, consumer = connect), every
compression mode, TCP with SHA-256 and half-close, UDP, the deployed
consumers' late-attach hazard, and the protocol violations that must tear
the connection down.  Names decide who offers (the smaller name): the C
agent is "c-..." (offers) in some tests and "zz-..." (answers) in others.
"""

import hashlib
import os
import socket
import uuid

import pytest

from agents import (AgentProcess, TcpService, UdpEcho, echo_handler,
                    upper_after_eof_handler, write_config)
from test_v1peer_selfcheck import ROOM_NAME, V1Peer, tcp_exchange

IO_TIMEOUT = 60
MODES = ["none", "lz4", "zstd", "zstd-hc"]


@pytest.fixture
def svc():
    s = {"echo": TcpService(echo_handler), "half": TcpService(upper_after_eof_handler),
         "udp": UdpEcho()}
    yield s
    for v in s.values():
        v.close()


@pytest.fixture
def world(tmp_path, server):
    made = []

    class World:
        url = "wss://127.0.0.1:%d/ws" % server.port
        room = str(uuid.uuid4())
        tmp = str(tmp_path)

        def agent(self, mode, name, services=(), compression="none"):
            # The v1 peers have no identity: admitted by name only.
            conf = write_config(os.path.join(self.tmp, name + ".conf"), name,
                                self.url, self.room, room_name=ROOM_NAME,
                                services=services, compression=compression,
                                legacy_peers=("v1-laptop", "v1-gateway"))
            a = AgentProcess(mode, conf, self.tmp, name)
            made.append(a)
            return a

        def v1(self, name, extra):
            p = V1Peer(server, self.room, name, list(extra), self.tmp)
            made.append(p)
            return p

    yield World()
    problems = []
    for m in made:
        if isinstance(m, AgentProcess):
            alive = m.alive()
            rc = m.stop()
            if not alive or rc != 0:
                problems.append("%s: exit %r\n%s" % (m.name, m.proc.returncode,
                                                     m.log_tail()))
            rep = m.sanitizer_report()
            if rep:
                problems.append("sanitizer report from %s:\n%s" % (m.name, rep))
        else:
            m.stop()
            print(m.diagnosis())
    assert not problems, "\n\n".join(problems)


def exchange(addr, data):
    """Sends data, shuts down writing, returns all that comes back."""
    return tcp_exchange(addr, data, "%s:%d" % addr)


def payload(n, seed):
    """Half text (compressible), half pseudo-random."""
    text = (b"INSERT INTO log VALUES (%d, 'peerpipe interop');\n" % seed) * (n // 80)
    rnd = hashlib.sha256(b"%d" % seed).digest() * (n // 64)
    return (text + bytes(b ^ (i & 0xff) for i, b in enumerate(rnd)))[:n]


def check_tcp_and_udp(addr_echo, addr_half, addr_udp):
    data = payload(2 << 20, 7)
    assert exchange(addr_echo, data) == data, "echo corrupted"
    back = exchange(addr_half, data)
    assert back == hashlib.sha256(data).hexdigest().encode() + b"\n", back[:100]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    try:
        for i in range(20):
            q = b"ECHO dns query %d" % i
            u.sendto(q, addr_udp)
            assert u.recvfrom(65535)[0] == q
    finally:
        u.close()


def addr(listen):
    host, port = listen["addr"].rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize("compression", MODES)
def test_c_gateway_v1_consumer(world, svc, compression):
    """C provides (and offers the connection), v1 consumes."""
    gw = world.agent("gateway", "c-gateway", compression=compression, services=[
        ("echo", 21001, "tcp", "127.0.0.1", svc["echo"].port),
        ("half", 21002, "tcp", "127.0.0.1", svc["half"].port),
        ("dns", 21003, "udp", "127.0.0.1", svc["udp"].port)])
    v1 = world.v1("v1-laptop", ["--compression", compression,
                                "--listen-mode", "per-peer"])
    peer = v1.wait("PEER", name="c-gateway", state="connected")
    assert peer["settings"]["compression_type"] == compression
    ls = {(l["port"], l["proto"]): addr(l) for l in v1.find("LISTEN", peer="c-gateway")}
    check_tcp_and_udp(ls[(21001, "TCP")], ls[(21002, "TCP")], ls[(21003, "UDP")])
    st = gw.ctl("status")
    p = [x for x in st["peers"] if x["name"] == "v1-laptop"][0]
    assert p["tunnel"]["version"] == 1 and p["tunnel"]["compression"] == compression
    if compression != "none":
        assert p["wire_out"] < p["bytes_out"], p


@pytest.mark.parametrize("compression", MODES)
def test_v1_provider_c_consumer(world, svc, compression):
    """v1 provides (and offers the connection: "v1-..." < "zz-..."), C consumes."""
    v1 = world.v1("v1-gateway", [
        "--compression", compression,
        "--offer", "21101:TCP=127.0.0.1:%d" % svc["echo"].port,
        "--offer", "21102:TCP=127.0.0.1:%d" % svc["half"].port,
        "--offer", "21103:UDP=127.0.0.1:%d" % svc["udp"].port])
    cl = world.agent("connect", "zz-laptop", compression=compression)
    v1.wait("PEER", name="zz-laptop", state="connected")
    a = {p: cl.wait_listener("v1-gateway", p, proto)
         for p, proto in ((21101, "TCP"), (21102, "TCP"), (21103, "UDP"))}
    assert a[21101][0].startswith("127.0.1.")
    check_tcp_and_udp(a[21101], a[21102], a[21103])


def test_late_attaching_consumer_still_gets_start(world, svc):
    """Deployed consumers attach their handler late and drop an early START;
    our provider delays START for v1 peers, so no connection hangs."""
    world.agent("gateway", "c-gateway", services=[
        ("echo", 21201, "tcp", "127.0.0.1", svc["echo"].port)])
    v1 = world.v1("v1-laptop", ["--quirk-late-attach", "--listen-mode", "per-peer",
                                "--start-timeout", "5"])
    v1.wait("PEER", name="c-gateway", state="connected")
    a = addr(v1.wait("LISTEN", peer="c-gateway", port=21201))
    for i in range(20):
        msg = b"late attach %d" % i
        assert exchange(a, msg) == msg
    assert not v1.find("PROXY", event="failed")


def test_v1_refused_port_and_bad_requests(world, svc):
    gw = world.agent("gateway", "c-gateway", services=[
        ("echo", 21301, "tcp", "127.0.0.1", svc["echo"].port)])
    v1 = world.v1("v1-laptop", ["--listen-mode", "per-peer"])
    v1.wait("PEER", name="c-gateway", state="connected")
    reqs = [({"type": "BEGIN_PROXY", "port": 21399, "protocol": "TCP",
              "uuid": str(uuid.uuid4())}, "ACCESS_DENIED"),
            ({"type": "BEGIN_PROXY", "port": 70000, "protocol": "TCP",
              "uuid": str(uuid.uuid4())}, "INVALID_PORT"),
            ({"type": "BEGIN_PROXY", "port": 21301, "protocol": "SCTP",
              "uuid": str(uuid.uuid4())}, "INVALID_PROTOCOL")]
    for msg, reason in reqs:
        v1.send_control("c-gateway", message=msg)
    for msg, reason in reqs:
        got = v1.wait("CONTROL", peer="c-gateway")
        deadline_msgs = [c["message"] for c in v1.find("CONTROL", peer="c-gateway")]
        assert any(m.get("type") == "FAILED" and m.get("reason") == reason and
                   m.get("channel-name") == "proxy-" + msg["uuid"]
                   for m in deadline_msgs) or _wait_failed(v1, msg["uuid"], reason), got
    # unknown types are ignored, the connection stays up
    v1.send_control("c-gateway", message={"type": "SOMETHING_NEW", "x": 1})
    a = addr(v1.wait("LISTEN", peer="c-gateway", port=21301))
    assert exchange(a, b"still fine") == b"still fine"
    st = gw.ctl("status")
    p = [x for x in st["peers"] if x["name"] == "v1-laptop"][0]
    assert p["refused"] >= 3


def _wait_failed(v1, uid, reason, timeout=20):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in v1.find("CONTROL", peer="c-gateway"):
            m = c["message"]
            if m.get("type") == "FAILED" and m.get("channel-name") == "proxy-" + uid:
                assert m.get("reason") == reason, m
                return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("violation", ["second-init", "not-json", "wrong-il-user"])
def test_protocol_violations_tear_down(world, svc, violation):
    gw = world.agent("gateway", "c-gateway", services=[
        ("echo", 21401, "tcp", "127.0.0.1", svc["echo"].port)])
    extra = ["--listen-mode", "per-peer"]
    if violation == "wrong-il-user":
        extra += ["--init-il-user", "someone-else"]
    v1 = world.v1("v1-laptop", extra)
    if violation == "wrong-il-user":
        gw.wait_log(r"peer v1-laptop: INIT is meant for \"someone-else\"")
        return
    v1.wait("PEER", name="c-gateway", state="connected")
    if violation == "second-init":
        v1.send_control("c-gateway", message={
            "type": "INIT", "IL_user": "c-gateway", "config": {}, "ports": []})
        gw.wait_log(r"peer v1-laptop: second INIT")
    else:
        v1.send_control("c-gateway", text="this is not json")
        gw.wait_log(r"peer v1-laptop: bad control message")
    v1.wait("PEER", name="c-gateway", state="closed")


def test_no_open_proxy(world, svc):
    """Exfiltration control (T1048): the gateway connects only where a
    service entry names, at the address resolved once at start, never to
    a port a peer asks for; a target given by name is pinned."""
    bystander = TcpService(echo_handler)   # something else listening here
    try:
        gw = world.agent("gateway", "c-gateway", services=[
            ("echo", 21501, "tcp", "localhost", svc["echo"].port)])
        gw.wait_log(r"service echo: localhost is 127\.0\.0\.1 \(pinned for "
                    r"this run\)")
        v1 = world.v1("v1-laptop", ["--listen-mode", "per-peer"])
        v1.wait("PEER", name="c-gateway", state="connected")
        asks = []
        for port in (bystander.port, 22, svc["udp"].port):
            u = str(uuid.uuid4())
            asks.append(u)
            v1.send_control("c-gateway", message={
                "type": "BEGIN_PROXY", "port": port, "protocol": "TCP",
                "uuid": u})
        for u in asks:
            assert _wait_failed(v1, u, "ACCESS_DENIED")
        assert bystander.accepted == 0, "the gateway connected elsewhere"
        a = addr(v1.wait("LISTEN", peer="c-gateway", port=21501))
        assert exchange(a, b"named service") == b"named service"
    finally:
        bystander.close()
