"""A malicious signaling server in the middle (tests/interop/mitm_server.py).

The server answers each offer itself and offers to the other peer with its
own DTLS certificates, relaying every data channel by label and logging the
plaintext.  Protocol v2's end-to-end authentication (each side signs both
DTLS fingerprints as it sees them) must make both agents refuse the tunnel
before any service traffic.  Controls: the same agents through an honest
relay (--passthrough) work; a v1 peer (no identity) is intercepted, which is
exactly why v2 exists.

Names: "gw-office" < "laptop-1", so the gateway offers (it is "A" to the
man in the middle), the client answers.
"""

import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from agents import (AgentProcess, TcpService, echo_handler, new_room,
                    write_config)
from peers import INTEROP, PYTHON, ROOT
from test_v1peer_selfcheck import ROOM_NAME, V1Peer, tcp_exchange

MITM = os.path.join(INTEROP, "mitm_server.py")
GW, CL = "gw-office", "laptop-1"
ECHO_PORT = 24801
WAIT = 60


class MitmServer:
    """One mitm_server.py process; its stderr is a file we poll."""

    def __init__(self, tmp, *args):
        self.log_path = os.path.join(tmp, "mitm.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, MITM, "--listen", "127.0.0.1:0",
             "--host-address", "127.0.0.1", "--cert-dir", tmp] + list(args),
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT)
        m = self.wait_log(r"listening on wss://([\d.]+):(\d+)/ws")
        self.url = "wss://%s:%s/ws" % (m.group(1), m.group(2))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=WAIT):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError("mitm_server exited (%r) waiting for "
                                     "/%s/:\n%s" % (self.proc.returncode,
                                                    pattern, self.tail()))
            if time.monotonic() > deadline:
                raise AssertionError("mitm_server: /%s/ not logged in %d s:"
                                     "\n%s" % (pattern, timeout, self.tail()))
            time.sleep(0.05)

    def tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def world(tmp_path):
    """Starts things and stops exactly those, checking the agents' exits."""
    made = []

    class World:
        tmp = str(tmp_path)
        room = new_room()

        def mitm(self, *args):
            m = MitmServer(self.tmp, *args)
            made.append(m)
            return m

        def agent(self, mode, name, url, services=(), legacy_peers=()):
            conf = write_config(os.path.join(self.tmp, name + ".conf"), name,
                                url, self.room, room_name=ROOM_NAME,
                                services=services, legacy_peers=legacy_peers)
            a = AgentProcess(mode, conf, self.tmp, name)
            made.append(a)
            return a

        def service(self):
            s = TcpService(echo_handler)
            made.append(s)
            return s

        def v1(self, server, name, extra):
            p = V1Peer(server, self.room, name, list(extra), self.tmp)
            made.append(p)
            return p

    yield World()
    problems = []
    for m in reversed(made):
        if isinstance(m, AgentProcess):
            alive = m.alive()
            rc = m.stop()
            if not alive or rc != 0:
                problems.append("%s: exit %r\n%s" % (
                    m.name, m.proc.returncode, m.log_tail()))
            rep = m.sanitizer_report()
            if rep:
                problems.append("sanitizer report from %s:\n%s" % (m.name,
                                                                    rep))
        elif isinstance(m, TcpService):
            m.close()
        else:
            m.stop()
    assert not problems, "\n\n".join(problems)


def peer_status(agent, name):
    st = agent.ctl("status")
    return [p for p in st["peers"] if p["name"] == name][0], st


def gateway_and_client(w, url, svc):
    gw = w.agent("gateway", GW, url, services=[
        ("echo", ECHO_PORT, "tcp", "127.0.0.1", svc.port)])
    cl = w.agent("connect", CL, url)
    return gw, cl


def refused_error(key):
    return (r"identity check failed: %s did not sign this session"
            % re.escape(key))


def test_mitm_signaling_server_is_refused(world):
    """Both agents detect the swapped DTLS session and name the peer; the
    man in the middle sees the INITs but no byte of service traffic, and
    its own BEGIN_PROXY (sent before authentication) is refused."""
    svc = world.service()
    # The gateway's INIT offers nothing to a peer it does not know yet, so
    # the attacker asks for the service port it knows of.
    mitm = world.mitm("--inject-begin", "--inject-port", str(ECHO_PORT))
    gw, cl = gateway_and_client(world, mitm.url, svc)
    # Really in the middle: it answered the gateway's offer itself and
    # reads the control channel.
    mitm.wait_log(r"MITM session %s->%s: answered %s's offer with our own "
                  r"DTLS fingerprint" % (GW, CL, GW))
    mitm.wait_log(r"MITM control-channel %s->%s text: \{\"type\":\"INIT\""
                  % (GW, CL))
    mitm.wait_log(r"MITM control-channel %s->%s text: \{\"type\":\"INIT\""
                  % (CL, GW))
    gw_key = gw.ctl("status")["identity"]
    cl_key = cl.ctl("status")["identity"]
    # The error names the peer (its name and the key it claimed).
    cl.wait_log(r"peer %s: %s" % (GW, refused_error(gw_key)))
    gw.wait_log(r"peer %s: %s" % (CL, refused_error(cl_key)))
    # The relayed INITs announce "sctp-zero-checksum", but the SCTP peer is
    # the man in the middle: checksums stay (it would drop packets without).
    for agent in (cl, gw):
        assert "SCTP packets without checksums" not in agent.log()
    for agent, peer, key in ((cl, GW, gw_key), (gw, CL, cl_key)):
        p, _ = peer_status(agent, peer)
        assert p["state"] != "connected", p
        assert p["identity"] is None, p
        assert re.search(refused_error(key), p["last_error"]), p
        assert not p["listeners"], p
    # The attacker's own BEGIN_PROXY before authentication: refused.
    mitm.wait_log(r"MITM INJECT %s answered our BEGIN_PROXY for proxy-\S+: "
                  r".*\"ACCESS_DENIED\"" % GW)
    # The agents retry (through the same attacker) and fail again.
    n = len(re.findall(refused_error(gw_key), cl.log()))
    deadline = time.monotonic() + WAIT
    while len(re.findall(refused_error(gw_key), cl.log())) <= n:
        assert time.monotonic() < deadline, cl.log_tail()
        time.sleep(0.1)
    # No byte of service traffic: the client never listened for the
    # gateway's port (so nothing local can even try), the service never saw
    # a connection, and no proxy channel went through the middle.
    assert not [k for k in cl.listeners() if k[0] == GW], cl.out()
    assert svc.accepted == 0
    # Neither side opened a proxy channel, so none was relayed or served.
    log = mitm.log()
    assert not re.search(r"opened 'proxy-|MITM proxy-|OPENED", log), log


def test_passthrough_control(world):
    """The same two agents through an honest relay: the tunnel works and
    each side shows the other's verified identity."""
    svc = world.service()
    relay = world.mitm("--passthrough")
    gw, cl = gateway_and_client(world, relay.url, svc)
    addr = cl.wait_listener(GW, ECHO_PORT, timeout=WAIT)
    msg = b"through an honest relay " * 100
    assert tcp_exchange(addr, msg, "echo") == msg
    assert svc.accepted >= 1
    p, _ = peer_status(cl, GW)
    assert p["state"] == "connected" and p["last_error"] == ""
    assert p["identity"] == gw.ctl("status")["identity"]
    assert p["tunnel"]["version"] == 2
    q, _ = peer_status(gw, CL)
    assert q["identity"] == cl.ctl("status")["identity"]
    cl.wait_log(r"peer %s: identity \S+ verified end to end" % GW)
    # Verified end to end, so the agents leave SCTP checksums out.
    cl.wait_log(r"peer %s: SCTP packets without checksums" % GW)
    gw.wait_log(r"peer %s: SCTP packets without checksums" % CL)
    log = relay.log()
    assert re.search(r"RELAY offer %s->%s" % (GW, CL), log), log
    assert "MITM" not in log and "identity check failed" not in cl.log()


def test_v1_peer_is_intercepted(world):
    """What the attacker can do without v2: a v1 peer (no identity) and
    the C gateway through the man in the middle.  It reads the INITs and the
    forwarded bytes; the gateway, told to admit this v1 peer by name
    ([agent] legacy_peers), connects but logs that it has no identity."""
    svc = world.service()
    mitm = world.mitm()

    class Srv:	# what V1Peer wants of a server
        host, port = mitm.url[len("wss://"):-len("/ws")].rsplit(":", 1)
        port = int(port)

    gw = world.agent("gateway", "c-gateway", mitm.url, services=[
        ("echo", ECHO_PORT, "tcp", "127.0.0.1", svc.port)],
        legacy_peers=("v1-laptop",))
    v1 = world.v1(Srv, "v1-laptop", ["--listen-mode", "per-peer"])
    v1.wait("PEER", name="c-gateway", state="connected", timeout=WAIT)
    listen = v1.wait("LISTEN", peer="c-gateway", port=ECHO_PORT)
    host, port = listen["addr"].rsplit(":", 1)
    marker = ("secret-%s" % uuid.uuid4()).encode()
    assert tcp_exchange((host, int(port)), marker, "echo") == marker
    mitm.wait_log(r"MITM session c-gateway->v1-laptop: answered")
    mitm.wait_log(r"MITM control-channel c-gateway->v1-laptop text: "
                  r"\{\"type\":\"INIT\",\"IL_user\":\"v1-laptop\"")
    mitm.wait_log(r"MITM control-channel v1-laptop->c-gateway text: "
                  r"\{\"type\": \"INIT\"")
    # the plaintext payload, both ways (v1 framing: flag byte 0x00 first)
    mitm.wait_log(r"MITM proxy-\S+ v1-laptop->c-gateway binary \d+ bytes: "
                  r"b'\\x00%s'" % marker.decode())
    mitm.wait_log(r"MITM proxy-\S+ c-gateway->v1-laptop binary \d+ bytes: "
                  r"b'\\x00%s'" % marker.decode())
    gw.wait_log(r"peer v1-laptop: admitted WITHOUT identity as listed in "
                r"\[agent\] legacy_peers")
    p, _ = peer_status(gw, "v1-laptop")
    assert p["state"] == "connected" and p["identity"] is None
    assert p["tunnel"]["version"] == 1


def test_forged_fingerprints_fail_dtls(world):
    """The other way to hide the swap: the SDP each agent gets carries the
    real peer's fingerprint (so both would sign the same pair), but the
    attacker's DTLS uses its own certificates.  DTLS checks the certificate
    against the SDP and the handshake fails: no control channel at all."""
    svc = world.service()
    mitm = world.mitm("--forge-fingerprints")
    gw, cl = gateway_and_client(world, mitm.url, svc)
    mitm.wait_log(r"MITM session %s->%s: FORGED answer to %s" % (GW, CL, GW))
    for agent, peer in ((cl, GW), (gw, CL)):
        agent.wait_log(r"%s: .*remote DTLS certificate fingerprint does not "
                       r"match the one in the" % peer)
        p, _ = peer_status(agent, peer)
        assert p["state"] != "connected" and p["identity"] is None, p
        assert not p["listeners"], p
    assert not [k for k in cl.listeners() if k[0] == GW], cl.out()
    assert svc.accepted == 0
    assert not re.search(r"MITM control-channel \S+->", mitm.log())


def test_downgrade_to_v1_is_refused(world):
    """The man in the middle deletes the v2 fields (identity, nonce) from
    both INITs, so each agent sees a v1 peer without identity.  Two fresh
    agents, no policy, no pin yet (first contact): each refuses a peer
    without identity that it was not told to admit by name, and no service
    byte crosses the middle."""
    svc = world.service()
    mitm = world.mitm("--downgrade")
    gw, cl = gateway_and_client(world, mitm.url, svc)
    mitm.wait_log(r"MITM control-channel %s->%s text: \{\"type\":\"INIT\""
                  % (GW, CL))
    why = (r"peer %s: peer %s has no verified identity \(a v1 peer, or one "
           r"stripped by a man in the middle\): refused; to admit a v1 peer "
           r"by name, add it to \[agent\] legacy_peers")
    cl.wait_log(why % (GW, GW), timeout=WAIT)
    gw.wait_log(why % (CL, CL), timeout=WAIT)
    for agent, peer in ((cl, GW), (gw, CL)):
        p, _ = peer_status(agent, peer)
        assert p["state"] != "connected" and p["identity"] is None, p
        assert "has no verified identity" in p["last_error"], p
        assert not p["listeners"], p
    # The INIT the gateway sent before knowing the peer offered nothing:
    # an unlisted name without identity may use no service.
    assert re.search(r"MITM control-channel %s->%s text: \{\"type\":\"INIT\""
                     r"[^\n]*\"ports\":\[\]" % (GW, CL), mitm.log()), \
        mitm.tail()
    # It keeps refusing on the retries, and nothing was ever forwarded.
    n = len(re.findall("has no verified identity", cl.log()))
    deadline = time.monotonic() + WAIT
    while len(re.findall("has no verified identity", cl.log())) <= n:
        assert time.monotonic() < deadline, cl.log_tail()
        time.sleep(0.1)
    assert not [k for k in cl.listeners() if k[0] == GW], cl.out()
    assert svc.accepted == 0
    assert not re.search(r"opened 'proxy-|MITM proxy-|OPENED", mitm.log())
    assert "admitted WITHOUT identity" not in cl.log() + gw.log()
