"""NAT traversal on an emulated internet (tests/integration/netns.py).

Each test builds its own namespaces: the signaling server and coturn on the
public segment, a gateway (sharing a bulk service) in LAN B and a client in
LAN A, each LAN behind a NAT router of the flavour under test.  The test
asserts which path ICE selected (direct where a direct path exists, relay
only where it must), moves 20 MB each way through the tunnel with SHA-256
checks, and records the time to connect (printed; see also bench/nat.sh).

Root only: without root (or without `ip netns`, nft, conntrack, coturn) the
tests skip with the reason.
"""

import hashlib
import os
import re
import shutil
import socket
import threading
import time

import pytest

import netns
from agents import (AgentProcess, TcpService, bulk_recv, bulk_send,
                    new_room)
from conftest import start_server

BULK_BYTES = int(os.environ.get("PP_NAT_BULK_BYTES", str(20 << 20)))
SERVICE_PORT = 19000
TURN_SECRET = "nat-test-secret-0123456789"

_skip = netns.why_not() or (None if shutil.which("turnserver") else
                            "coturn not installed (scripts/install-deps.sh nat)")
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")


def nat_config(path, name, url, room, services=(), ice=(), extra=""):
    lines = ["[agent]", "name = %s" % name, "log_level = %s" % os.environ.get("PP_NAT_LOG", "info"),
             "control = %s" % os.path.join(os.path.dirname(path), name + ".sock"),
             "", "[signaling]", "url = %s" % url, "insecure = yes", "",
             "[room]", "name = nat-tests", "uuid = %s" % room, ""]
    if ice:
        lines += ["[ice]"] + list(ice) + [""]
    for (sname, port, target_port) in services:
        lines += ["[service %s]" % sname, "port = %d" % port, "proto = tcp",
                  "target = 127.0.0.1:%d" % target_port, ""]
    if "[ips]" not in extra:
        lines += ["[ips]", "mode = off", ""]   # these tests measure NAT paths
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


class Bulk:
    """The service behind the gateway: sends BULK_BYTES while reading all
    that comes, then reports both digests."""

    def __init__(self):
        self.results = []

    def handler(self, conn):
        result = {}

        def rx():
            try:
                result["rx"] = bulk_recv(conn)
            except OSError as e:	# the tunnel closed it (path gone)
                result["rx_error"] = repr(e)

        t = threading.Thread(target=rx)
        t.start()
        try:
            result["tx"] = bulk_send(conn, BULK_BYTES, seed=2)
            conn.shutdown(socket.SHUT_WR)
        except OSError as e:
            result["tx_error"] = repr(e)
        t.join()
        self.results.append(result)


class Scene:
    """The emulated internet with server, coturn, gateway and client."""

    def __init__(self, tmp, nat_a, nat_b, ice_a=None, ice_b=None,
                 coturn=True, server_args=(), turn_transports=("udp",),
                 coturn_options=(), pub_sysctls=()):
        self.tmp = str(tmp)
        self.net = netns.Net(nat_a, nat_b).__enter__()
        self.turn = None
        self.server = None
        self.gw = self.cl = None
        self.service = None
        try:
            for kv in pub_sysctls:	# e.g. net.core.rmem_default=N (bench)
                self.net.run("pub", "sysctl", "-qw", kv)
            if coturn:
                self.turn = netns.Coturn(self.net, self.tmp, TURN_SECRET,
                                         extra=coturn_options).start()
            secret = os.path.join(self.tmp, "turn.secret")
            with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600),
                      "w") as f:
                f.write(TURN_SECRET + "\n")
            turn_args = ["--turn-secret-file", secret, "--turn-ttl", "3600"]
            for t in turn_transports:
                turn_args += ["--turn-uri", "turn:%s:3478?transport=%s"
                              % (netns.TURN_IP, t)]
            self.server = start_server(
                *(turn_args + list(server_args)),
                listen="%s:0" % netns.SIGNAL_IP,
                tmpdir=self.tmp, prefix=self.net.prefix_cmd("pub"))
            url = "wss://%s:%d/ws" % (netns.SIGNAL_IP, self.server.port)
            room = new_room()
            self.bulk = Bulk()
            self.service = self.net.in_ns("b", TcpService, self.bulk.handler)
            default_ice = ["stun = %s:3478" % netns.TURN_IP,
                           "turn_from_signaling = yes"]
            gw_conf = nat_config(os.path.join(self.tmp, "gw.conf"),
                                 "gw-office", url, room,
                                 services=[("bulk", SERVICE_PORT,
                                            self.service.port)],
                                 ice=default_ice if ice_b is None else ice_b)
            cl_conf = nat_config(os.path.join(self.tmp, "cl.conf"),
                                 "laptop-1", url, room,
                                 ice=default_ice if ice_a is None else ice_a)
            self.t0 = time.monotonic()
            self.gw = AgentProcess("gateway", gw_conf, self.tmp, "gw-office",
                                   prefix=self.net.prefix_cmd("b"))
            self.cl = AgentProcess("connect", cl_conf, self.tmp, "laptop-1",
                                   prefix=self.net.prefix_cmd("a"))
        except BaseException:
            self.close(check=False)
            raise

    def wait_connected(self, timeout=60):
        """Waits for the client's listener; returns (addr, seconds)."""
        addr = self.cl.wait_listener("gw-office", SERVICE_PORT, timeout=timeout)
        return addr, time.monotonic() - self.t0

    def peer(self, agent, name, timeout=30, optional=False):
        deadline = time.monotonic() + timeout
        while True:	# the control socket comes up a moment after start
            r = agent.ctl("status", check=False)
            if isinstance(r, dict):
                st = r
                break
            agent.check_alive("waiting for its control socket")
            assert time.monotonic() < deadline, r.stderr.decode()
            time.sleep(0.1)
        for p in st["peers"]:
            if p["name"] == name:
                return p
        if optional:
            return None
        raise AssertionError("%s: no peer %s in %s" % (agent.name, name, st))

    def connect(self, addr, timeout=120):
        def mk():
            s = socket.create_connection(addr, timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        return self.net.in_ns("a", mk)

    def bulk_both_ways(self, addr):
        """20 MB each way with SHA-256; returns seconds taken."""
        t0 = time.monotonic()
        with self.connect(addr) as s:
            got = {}

            def rx():
                got["rx"] = bulk_recv(s)

            t = threading.Thread(target=rx)
            t.start()
            tx = bulk_send(s, BULK_BYTES, seed=1)
            s.shutdown(socket.SHUT_WR)
            t.join(300)
        deadline = time.monotonic() + 60
        while not self.bulk.results and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - t0
        assert self.bulk.results, "the service never finished"
        res = self.bulk.results[-1]
        assert got["rx"][0] == BULK_BYTES, got
        assert got["rx"][1] == res["tx"], "gateway -> client data corrupted"
        assert res["rx"] == (BULK_BYTES, tx), "client -> gateway data corrupted"
        return took

    def close(self, check=True):
        problems = []
        for a in (self.cl, self.gw):
            if a is not None:
                problems += a.stop_problems(must_live=True)
        if self.server is not None:
            rc = self.server.stop()
            rep = self.server.sanitizer_report()
            if rep or rc != 0:
                problems.append("server exit %r %s" % (rc, rep or ""))
        if self.turn is not None:
            self.turn.stop()
        if self.service is not None:
            self.service.close()
        self.net.close()
        if check:
            assert not problems, "\n\n".join(problems)


@pytest.fixture
def scenes(tmp_path):
    made = []

    def make(*args, **kwargs):
        s = Scene(tmp_path, *args, **kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def report(name, **figures):
    print("\n[nat] %s: %s" % (name, ", ".join(
        "%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v)
        for k, v in figures.items())))


def check_path_and_bulk(scene, want, name, timeout=60):
    addr, setup = scene.wait_connected(timeout)
    cl = scene.peer(scene.cl, "gw-office")
    gw = scene.peer(scene.gw, "laptop-1")
    for p in (cl, gw):
        assert p["state"] == "connected", p
        assert p["path"]["type"] == want, (name, p["path"])
        assert p["path"]["rtt_ms"] >= 0, p["path"]	# SCTP's srtt
    took = scene.bulk_both_ways(addr)
    report(name, path="%s/%s" % (cl["path"]["local_type"],
                                 cl["path"]["remote_type"]),
           connect_s=setup, setup_ms=cl["setup_ms"],
           rtt_ms=cl["path"]["rtt_ms"],
           bulk_s=took, mbit_s=2 * BULK_BYTES * 8 / took / 1e6)
    return cl, gw


def test_eim_both_sides_goes_direct(scenes):
    scene = scenes("eim", "eim")
    cl, gw = check_path_and_bulk(scene, "direct", "eim/eim")
    # Both behind NAT: at least one end of the pair is a reflexive address.
    assert {cl["path"]["local_type"], cl["path"]["remote_type"]} & \
        {"srflx", "prflx"}, cl["path"]


def test_public_gateway_goes_direct(scenes):
    scene = scenes("eim", "none")
    cl, _ = check_path_and_bulk(scene, "direct", "eim/none")
    # The gateway's own address is public: the client reaches it as it is.
    assert cl["path"]["remote_addr"] == scene.net.host_ip["b"], cl["path"]


def test_symmetric_both_sides_needs_relay(scenes):
    scene = scenes("symmetric", "symmetric")
    check_path_and_bulk(scene, "relay", "symmetric/symmetric", timeout=40)


def test_udp_blocked_needs_turn_over_tcp(scenes):
    scene = scenes("udp-block", "eim", turn_transports=("udp", "tcp"))
    cl, _ = check_path_and_bulk(scene, "relay", "udp-block/eim", timeout=40)
    assert cl["path"]["local_type"] == "relay", cl["path"]
    # The client's relay is a TURN-over-TCP allocation (its UDP never gets
    # out of LAN A): coturn saw a TCP connection from router A.
    assert "tcp or tls connected to: %s:" % netns.ROUTER_WAN["a"] in \
        scene.turn.log(), scene.turn.log()[-3000:]


def test_symmetric_without_relay_fails_clearly(scenes):
    """coturn down, both NATs symmetric: no path exists.  The agents must say
    so (a peer connection failure naming ICE) in bounded time and keep
    trying, not hang."""
    scene = scenes("symmetric", "symmetric", coturn=False)
    # The harness really is symmetric: one socket, two destinations, two
    # different public ports.
    r1 = netns.StunReflector(scene.net, "pub", netns.SIGNAL_IP)
    r2 = netns.StunReflector(scene.net, "pub", netns.SIGNAL_IP)
    try:
        for side in ("a", "b"):
            seen = scene.net.stun_mapping(side, [r1.addr, r2.addr])
            assert None not in seen and seen[0] != seen[1], (side, seen)
    finally:
        r1.close()
        r2.close()
    t0 = time.monotonic()
    deadline = t0 + 60
    while True:
        p = scene.peer(scene.cl, "gw-office", optional=True)
        if p and p["last_error"]:
            break
        assert p is None or p["state"] != "connected", p
        assert time.monotonic() < deadline, "no failure reported: %s" % p
        time.sleep(0.2)
    took = time.monotonic() - t0
    report("no-path", seconds_to_failure=took, error=p["last_error"])
    assert "ICE" in p["last_error"], p
    assert "no path" in p["last_error"] or "not connected" in p["last_error"]
    # And it goes on trying (the offerer re-offers with backoff).
    scene.gw.wait_log(r"peer laptop-1: next attempt in \d+ ms", timeout=30)
    assert scene.cl.alive() and scene.gw.alive()


def test_nat_mapping_flush_mid_transfer(scenes):
    """conntrack -F on both routers while 20 MB flow each way.  With the
    port-preserving NAT the next packet out recreates the same mapping, so
    the transfer is expected to go on; if it does not, the failure must be
    reported and the peers must connect again."""
    scene = scenes("eim", "eim")
    addr, _ = scene.wait_connected()

    def flush():
        scene.net.conntrack_flush("a")
        scene.net.conntrack_flush("b")

    outcome, tx = transfer_across(scene, addr, flush)
    if tx is not None and outcome.get("rx", (0,))[0] == BULK_BYTES:
        deadline = time.monotonic() + 60
        while not scene.bulk.results and time.monotonic() < deadline:
            time.sleep(0.05)
        res = scene.bulk.results[-1]
        assert outcome["rx"][1] == res["tx"], "gateway -> client corrupted"
        assert res["rx"] == (BULK_BYTES, tx), "client -> gateway corrupted"
        p = scene.peer(scene.cl, "gw-office")
        report("flush", outcome="transfer survived", state=p["state"],
               attempts=p["attempts"])
        assert p["state"] == "connected" and p["attempts"] == 1, p
    else:
        # Failed: it must have been reported, and the peers come back.
        p = scene.peer(scene.cl, "gw-office")
        report("flush", outcome="transfer failed", error=p["last_error"])
        assert p["last_error"], p
        before = scene.cl.listener_count("gw-office", SERVICE_PORT)
        scene.cl.wait_listener("gw-office", SERVICE_PORT, timeout=90,
                               since=before)
        scene.bulk.results.clear()
        scene.bulk_both_ways(scene.wait_connected()[0])


# ---- path loss and ICE restart (docs/agent.md, "NAT traversal and path
# changes") ----
#
# The signaling server runs with a short idle timeout here: a client whose
# network changed under it reconnects at once (it pings the server when its
# path dies), but the server keeps the old session, and with it the name,
# until that session times out (2 x --idle-timeout); only then can the
# client rejoin and take the restart offer.

RESTART_SERVER = ("--idle-timeout", "2")


def transfer_across(scene, addr, disrupt):
    """One forwarded TCP connection moving BULK_BYTES each way; disrupt()
    runs, in a thread of its own, once the client has received a third of
    its bytes.  Returns (outcome, digest sent by the client or None)."""
    fired, done = threading.Event(), threading.Event()
    s = scene.connect(addr, timeout=120)
    outcome = {"n": 0}

    def run_disrupt():
        try:
            disrupt()
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["disrupt_error"] = repr(e)
        done.set()

    def rx():
        h = hashlib.sha256()
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                h.update(d)
                outcome["n"] += len(d)
                if outcome["n"] >= BULK_BYTES // 3 and not fired.is_set():
                    fired.set()
                    threading.Thread(target=run_disrupt, daemon=True).start()
            outcome["rx"] = (outcome["n"], h.hexdigest())
        except OSError as e:
            outcome["rx_error"] = repr(e)

    t = threading.Thread(target=rx)
    t.start()
    try:
        tx = bulk_send(s, BULK_BYTES, seed=1)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        tx = None
        outcome["tx_error"] = repr(e)
    t.join(300)
    s.close()
    assert fired.is_set(), "the transfer never got a third of the way"
    assert done.wait(30) and "disrupt_error" not in outcome, outcome
    return outcome, tx


def check_transfer_survived(scene, outcome, tx):
    """The same TCP connection finished, both directions intact."""
    assert tx is not None and "rx" in outcome, outcome
    assert outcome["rx"][0] == BULK_BYTES, outcome
    deadline = time.monotonic() + 60
    while not scene.bulk.results and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scene.bulk.results, "the service never finished"
    res = scene.bulk.results[-1]
    assert outcome["rx"][1] == res["tx"], "gateway -> client corrupted"
    assert res["rx"] == (BULK_BYTES, tx), "client -> gateway corrupted"


def check_restarted(scene):
    """Both peers kept their one connection (no reconnect: attempts 1) and
    went through at least one completed ICE restart, offered by the
    gateway (the offerer: "gw-office" < "laptop-1")."""
    peers = []
    for agent, other in ((scene.cl, "gw-office"), (scene.gw, "laptop-1")):
        deadline = time.monotonic() + 30
        while True:
            p = scene.peer(agent, other)
            if p["state"] == "connected" and p["ice_restart"]["completed"] >= 1:
                break
            assert time.monotonic() < deadline, p
            time.sleep(0.2)
        assert p["attempts"] == 1, p
        assert p["ice_restart"]["supported"] is True, p
        assert p["ice_restart"]["last_recovery_ms"] > 0, p
        assert p["path"]["rtt_ms"] >= 0, p
        peers.append(p)
    scene.gw.wait_log(r"peer laptop-1: ICE restart: new offer sent", timeout=5)
    scene.cl.wait_log(r"peer gw-office: ICE restart: answered", timeout=5)
    scene.cl.wait_log(r"gw-office: ICE restart \d+ done .* channels kept",
                      timeout=5)
    for agent in (scene.cl, scene.gw):
        assert "peer connection failed" not in agent.log(), agent.log_tail()
    # `peerpipe status` says it too, for people.
    text = scene.cl.ctl("status", json_out=False).stdout.decode()
    assert re.search(r"ICE restarts [1-9]\d* of [1-9]\d* done, last one back "
                     r"\d+ ms after the path was lost", text), text
    return peers


def test_nat_remap_mid_transfer_recovers_by_ice_restart(scenes):
    """Router A forgets its mappings and can no longer hand out the old
    ports (conntrack -F, masquerade moved to another port range) while 20 MB
    flow each way: the path is dead both ways.  The gateway restarts ICE,
    the same forwarded TCP connection carries on, and nothing closed."""
    scene = scenes("eim", "eim", server_args=RESTART_SERVER)
    addr, _ = scene.wait_connected()
    before = scene.peer(scene.gw, "laptop-1")["path"]
    outcome, tx = transfer_across(scene, addr,
                                  lambda: scene.net.nat_new_ports("a"))
    check_transfer_survived(scene, outcome, tx)
    cl, gw = check_restarted(scene)
    # The gateway now reaches the client through its new mapping.
    assert gw["path"]["remote_port"] != before["remote_port"], (before, gw)
    assert 20000 <= gw["path"]["remote_port"] <= 29999 or \
        gw["path"]["remote_addr"] != netns.ROUTER_WAN["a"], gw["path"]
    report("remap", outcome="transfer survived",
           recovery_ms=cl["ice_restart"]["last_recovery_ms"],
           path="%s/%s" % (cl["path"]["local_type"], cl["path"]["remote_type"]))


def test_client_address_change_mid_transfer_recovers(scenes):
    """The client's host is renumbered in its LAN (10.1.0.2 -> 10.1.0.77)
    mid-transfer: its sockets are bound to an address that is gone.  ICE
    restarts with candidates gathered on the new address; the transfer
    completes on the same TCP connection."""
    scene = scenes("eim", "eim", server_args=RESTART_SERVER)
    addr, _ = scene.wait_connected()
    outcome, tx = transfer_across(scene, addr,
                                  lambda: scene.net.move_host("a", 77))
    check_transfer_survived(scene, outcome, tx)
    cl, gw = check_restarted(scene)
    assert scene.net.host_ip["a"] == "10.1.0.77"
    report("readdress", outcome="transfer survived",
           recovery_ms=cl["ice_restart"]["last_recovery_ms"],
           path="%s/%s" % (cl["path"]["local_type"], cl["path"]["remote_type"]))


def test_path_gone_longer_than_restart_bound(scenes):
    """LAN A is cut off for longer than the restart bound (20 s from the
    last packet; docs/agent.md): the restart cannot work.  The peers tear
    the connection down cleanly and say why (the forwarded connection is
    closed, not left hanging), and when the path returns a fresh connection
    comes up and carries data."""
    scene = scenes("eim", "eim", server_args=RESTART_SERVER)
    addr, _ = scene.wait_connected()
    listeners = scene.cl.listener_count("gw-office", SERVICE_PORT)
    cut = {}

    def disrupt():
        scene.net.block("a")
        cut["t"] = time.monotonic()

    outcome, tx = transfer_across(scene, addr, disrupt)
    # The forwarded connection ended (closed by the client's agent).
    assert tx is None or "rx_error" in outcome or \
        outcome.get("rx", (0,))[0] < BULK_BYTES, outcome
    took = time.monotonic() - cut["t"]
    # Both sides report the bound, the offerer after setting out to restart
    # (its offers reach the client only if the client is in the room).
    scene.gw.wait_log(r"peer laptop-1: path lost \(.*\); restarting ICE",
                      timeout=5)
    for agent, other in ((scene.gw, "laptop-1"), (scene.cl, "gw-office")):
        agent.wait_log(r"peer %s: peer connection failed: path lost \d+ ms "
                       r"ago and .*restart" % other, timeout=60)
        p = scene.peer(agent, other)
        assert "path lost" in p["last_error"], p
    scene.net.unblock("a")
    scene.cl.wait_listener("gw-office", SERVICE_PORT, timeout=120,
                           since=listeners)
    scene.bulk.results.clear()
    scene.bulk_both_ways(scene.wait_connected()[0])
    p = scene.peer(scene.cl, "gw-office")
    assert p["state"] == "connected" and p["attempts"] >= 2, p
    report("blocked", closed_after_s=took, error=p["last_error"] or "-")


def test_relayed_path_remap_recovers_by_ice_restart(scenes):
    """Both behind symmetric NATs, so the path goes through coturn; router
    A forgets its mappings and moves to other ports mid-transfer: A's relay
    allocation is no longer reachable through its old mapping (coturn sees
    A from a new port: another 5-tuple, no allocation).  The restart
    allocates a new relay (with TURN credentials as they are now) and the
    transfer carries on."""
    scene = scenes("symmetric", "symmetric", server_args=RESTART_SERVER)
    addr, _ = scene.wait_connected(40)
    assert scene.peer(scene.cl, "gw-office")["path"]["type"] == "relay"
    outcome, tx = transfer_across(scene, addr,
                                  lambda: scene.net.nat_new_ports("a"))
    check_transfer_survived(scene, outcome, tx)
    cl, gw = check_restarted(scene)
    assert cl["path"]["type"] == "relay", cl["path"]
    report("relay-remap", outcome="transfer survived",
           recovery_ms=cl["ice_restart"]["last_recovery_ms"],
           path="%s/%s" % (cl["path"]["local_type"], cl["path"]["remote_type"]))


def test_turn_tcp_path_remap_recovers_by_ice_restart(scenes):
    """UDP blocked in LAN A, so the client's side of the path is a TURN
    allocation over TCP; router A remaps mid-transfer, which kills that TCP
    connection (and the allocation with it).  The restart opens a new TCP
    connection and allocation, and the transfer carries on."""
    scene = scenes("udp-block", "eim", turn_transports=("udp", "tcp"),
                   server_args=RESTART_SERVER)
    addr, _ = scene.wait_connected(40)
    assert scene.peer(scene.cl, "gw-office")["path"]["local_type"] == "relay"
    outcome, tx = transfer_across(scene, addr,
                                  lambda: scene.net.nat_new_ports("a"))
    check_transfer_survived(scene, outcome, tx)
    cl, gw = check_restarted(scene)
    assert cl["path"]["local_type"] == "relay", cl["path"]
    report("turn-tcp-remap", outcome="transfer survived",
           recovery_ms=cl["ice_restart"]["last_recovery_ms"],
           path="%s/%s" % (cl["path"]["local_type"], cl["path"]["remote_type"]))
