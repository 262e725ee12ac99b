"""The gateway's inline IPS end to end, with the real Suricata: an attack
inside the tunnel is dropped before the service sees it, the connection is
cut and the peer banned (persistently), while a well-behaved peer goes on.
And the Sentinel: a peer probing many ports is banned (MITRE T1046).

Root only (netfilter, NFQUEUE); skipped without root or Suricata.
"""

import json
import re
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from agents import AgentProcess, TcpService, agent_bin, new_room, write_config
from test_agent import connect
from test_v1peer_selfcheck import ROOM_NAME, V1Peer

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netfilter)"),
    pytest.mark.skipif(shutil.which("suricata") is None,
                       reason="needs Suricata 7 (scripts/install-deps.sh ips)"),
]

GW = "gw-office"


class HttpLog:
    """An HTTP service that records every request it receives."""

    def __init__(self):
        self.requests = []
        self.svc = TcpService(self.handle)
        self.port = self.svc.port

    def handle(self, conn):
        req = b""
        while b"\r\n\r\n" not in req:
            d = conn.recv(4096)
            if not d:
                return
            req += d
        self.requests.append(req)
        body = b"ok\n"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % len(body) + body)

    def close(self):
        self.svc.close()


def http(addr, path, timeout=10, header=b""):
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: svc\r\n%s\r\n" % (path, header))
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                return out
            out += d
    finally:
        s.close()


def events(agent_state):
    path = os.path.join(agent_state, "security.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


@pytest.fixture
def ipsworld(tmp_path, server):
    w = type("W", (), {})()
    w.tmp = str(tmp_path)
    w.url = "wss://127.0.0.1:%d/ws" % server.port
    w.room = new_room()
    w.web = HttpLog()
    w.gw_conf = write_config(
        os.path.join(w.tmp, "gw.conf"), GW, w.url, w.room, room_name=ROOM_NAME,
        services=[("web", 28080, "tcp", "127.0.0.1", w.web.port)],
        extra="[ips]\nmode = inline\nban_seconds = 600\n")
    w.gw_state = os.path.join(w.tmp, GW + "-state")
    w.agents = []

    def start(mode, conf, name):
        a = AgentProcess(mode, conf, w.tmp, name)
        w.agents.append(a)
        return a

    def client(name):
        conf = write_config(os.path.join(w.tmp, name + ".conf"), name, w.url,
                            w.room, room_name=ROOM_NAME)
        return start("connect", conf, name)

    w.start, w.client = start, client
    w.gw = start("gateway", w.gw_conf, GW)
    w.gw.wait_log(r"IPS ready \(inline\)", timeout=240)
    yield w
    problems = []
    for a in w.agents:
        alive, rc = a.alive(), a.stop()
        if alive and rc != 0:
            problems.append("%s exited %r:\n%s" % (a.name, rc, a.log_tail()))
        rep = a.sanitizer_report()
        if rep:
            problems.append("sanitizer report from %s:\n%s" % (a.name, rep))
    w.web.close()
    # each gateway removed its own netfilter chains (others may run here)
    out = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    for a in w.agents:
        m = re.search(r"IPS instance (pp[0-9a-f]+)", a.log())
        if m:
            assert "PP-%s-" % m.group(1) not in out, out
    assert not problems, "\n\n".join(problems)


def test_attack_dropped_peer_cut_and_banned(ipsworld):
    w = ipsworld
    good, bad = w.client("laptop-good"), w.client("laptop-evil")
    g = good.wait_listener(GW, 28080)
    b = bad.wait_listener(GW, 28080)
    assert http(g, b"/hello").endswith(b"ok\n")
    assert http(b, b"/also-fine").endswith(b"ok\n")

    # a well-behaved peer keeps a session open across the attack
    stop = threading.Event()
    good_errors = []

    def keep_going():
        while not stop.is_set():
            try:
                assert http(g, b"/steady").endswith(b"ok\n")
            except Exception as e:  # noqa: BLE001
                good_errors.append(repr(e))
            time.sleep(0.1)

    t = threading.Thread(target=keep_going, daemon=True)
    t.start()
    try:
        # the attack: the first detected request never reaches the service
        try:
            reply = http(b, b"/search", timeout=15,
                         header=b"X-Note: EVIL 0xdeadc0de\r\n")
        except OSError:
            reply = b""
        assert not reply.endswith(b"ok\n"), reply
        w.gw.wait_log(r"cut by the IPS", timeout=30)
        w.gw.wait_log(r"peer laptop-evil: banned for 600 s: IPS: PEERPIPE demo "
                      r"attack marker", timeout=30)
        assert not any(b"EVIL" in r for r in w.web.requests), w.web.requests
        # the attacker gets nothing more through
        bad.wait_log(r"laptop-evil|gw-office", timeout=5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if not http(b, b"/after", timeout=3).endswith(b"ok\n"):
                    break
            except OSError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the banned peer still reaches the service")
    finally:
        stop.set()
        t.join(30)
    assert not good_errors, good_errors[:5]
    assert http(g, b"/still").endswith(b"ok\n")

    # recorded: ban with evidence, eve-compatible security events
    bans = w.gw.ctl("bans")
    assert [x["name"] for x in bans] == ["laptop-evil"]
    shown = subprocess.run([agent_bin(), "bans", "--show", str(bans[0]["id"]),
                            "--json", "--control", w.gw.control],
                           capture_output=True, timeout=30)
    ev = json.loads(shown.stdout)["evidence"]
    assert ev and ev[0]["signature_id"] == 9000001
    kinds = [e["peerpipe"]["event"] for e in events(w.gw_state)]
    assert "cut" in kinds and "ban" in kinds
    alert = [e for e in events(w.gw_state) if e["peerpipe"]["event"] == "cut"][0]
    assert alert["event_type"] == "peerpipe" and alert["dest_port"] == w.web.port

    # the ban survives a gateway restart
    assert w.gw.stop() == 0
    w.gw = w.start("gateway", w.gw_conf, GW + "-2")
    w.gw.wait_log(r"IPS ready \(inline\)", timeout=240)
    assert [x["name"] for x in w.gw.ctl("bans")] == ["laptop-evil"]
    good.wait_listener(GW, 28080, since=1, timeout=60)
    time.sleep(2)
    assert bad.listener_count(GW, 28080) == 1, "banned peer reconnected"
    # until it is lifted
    r = subprocess.run([agent_bin(), "unban", "laptop-evil", "--control",
                        w.gw.control], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    bad.wait_listener(GW, 28080, since=1, timeout=60)


def test_sentinel_bans_a_port_scan(tmp_path, server):
    url = "wss://127.0.0.1:%d/ws" % server.port
    room = new_room()
    web = HttpLog()
    conf = write_config(str(tmp_path / "gw.conf"), GW, url, room,
                        room_name=ROOM_NAME,
                        services=[("web", 28081, "tcp", "127.0.0.1", web.port)],
                        extra="[ips]\nscan_ports = 4\nscan_window = 60\n",
                        legacy_peers=("v1-scanner",))
    gw = AgentProcess("gateway", conf, str(tmp_path), GW)
    v1 = V1Peer(server, room, "v1-scanner", ["--listen-mode", "per-peer"],
                str(tmp_path))
    try:
        v1.wait("PEER", name=GW, state="connected")
        for port in (22, 23, 3389, 5900):
            v1.send_control(GW, message={"type": "BEGIN_PROXY", "port": port,
                                         "protocol": "TCP",
                                         "uuid": str(uuid.uuid4())})
        gw.wait_log(r"peer v1-scanner: banned for 3600 s: port scan: 4 distinct "
                    r"ports refused", timeout=30)
        v1.wait("PEER", name=GW, state="closed", timeout=30)
        kinds = [e["peerpipe"]["event"] for e in
                 events(os.path.join(str(tmp_path), GW + "-state"))]
        assert "scan" in kinds and "ban" in kinds
    finally:
        v1.stop()
        assert gw.stop() == 0
        web.close()


def test_suricata_killed_fails_closed_then_resumes(ipsworld):
    """kill -9 of the gateway's Suricata: service traffic stops (fail-closed),
    the gateway restarts Suricata, traffic resumes; no chain left behind."""
    w = ipsworld
    good = w.client("laptop-good")
    g = good.wait_listener(GW, 28080)
    assert http(g, b"/before").endswith(b"ok\n")
    m = re.findall(r"suricata starting: pid (\d+)", w.gw.log())
    assert m, w.gw.log_tail()
    readies = len(re.findall(r"IPS ready \(inline\)", w.gw.log()))
    os.kill(int(m[-1]), signal.SIGKILL)
    w.gw.wait_log(r"IPS (down|starting)", timeout=30)
    # while it is down nothing reaches the service
    seen = len(w.web.requests)
    try:
        reply = http(g, b"/while-down", timeout=3)
    except OSError:
        reply = b""
    if len(re.findall(r"IPS ready \(inline\)", w.gw.log())) == readies:
        assert not reply.endswith(b"ok\n"), reply
        assert not any(b"/while-down" in r for r in w.web.requests[seen:])
    # back, and traffic resumes for the unbanned peer
    deadline = time.monotonic() + 120
    while len(re.findall(r"IPS ready \(inline\)", w.gw.log())) == readies:
        assert time.monotonic() < deadline, w.gw.log_tail()
        time.sleep(0.1)
    assert http(g, b"/after").endswith(b"ok\n")
    assert w.gw.ctl("bans") == []
    # `peerpipe reload` reloads the rules too, live
    r = subprocess.run([agent_bin(), "reload", "--control", w.gw.control],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    w.gw.wait_log(r"IPS rules reloaded", timeout=60)
    assert http(g, b"/after-reload").endswith(b"ok\n")
