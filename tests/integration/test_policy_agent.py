"""Zero trust end to end: a gateway with a policy (docs/policy.md) and
clients with identities.  Different rights give different service sets;
a policy reload closes what it forbids and keeps what it permits; a revoked
key is cut; a v1 peer is refused unless the policy names it; `peerpipe
explain` says which rule decides.
"""

import os
import re
import subprocess
import time

import pytest

from agents import (AgentProcess, TcpService, agent_bin, echo_handler,
                    new_room, write_config)
from test_agent import connect, recv_exact
from test_v1peer_selfcheck import ROOM_NAME, V1Peer

GW = "gw-office"


def peer_id(conf):
    r = subprocess.run([agent_bin(), "id", "-c", conf, "--json"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    import json
    return json.loads(r.stdout)["identity"]


POLICY = """
[peer laptop-alice]
key = {alice}
groups = engineers

[peer laptop-bob]
key = {bob}
groups = contractors
{extra}
[rule engineers]
allow = group:engineers
to = service:db, service:web

[rule contractors-web]
allow = group:contractors
to = service:web

[rule no-contractor-db]
deny = group:contractors
to = service:db

[tests]
allow = laptop-alice -> db
deny = laptop-bob -> db
allow = laptop-bob -> web
"""


class World:
    def __init__(self, tmp, server):
        self.tmp = str(tmp)
        self.url = "wss://127.0.0.1:%d/ws" % server.port
        self.room = new_room()
        self.db = TcpService(echo_handler)
        self.web = TcpService(echo_handler)
        self.agents = []
        self.peers = []
        self.policy = os.path.join(self.tmp, "policy.conf")
        self.clients = {}
        for name in ("laptop-alice", "laptop-bob"):
            self.clients[name] = write_config(
                os.path.join(self.tmp, name + ".conf"), name, self.url, self.room,
                room_name=ROOM_NAME)
        self.keys = {n: peer_id(c) for n, c in self.clients.items()}
        self.write_policy()
        self.gw_conf = write_config(
            os.path.join(self.tmp, "gw.conf"), GW, self.url, self.room,
            room_name=ROOM_NAME,
            services=[("db", 25432, "tcp", "127.0.0.1", self.db.port),
                      ("web", 28080, "tcp", "127.0.0.1", self.web.port)],
            extra="", policy=self.policy)
        self.gw = self.start("gateway", self.gw_conf, GW)

    def write_policy(self, alice=True, bob_web=True, legacy="", bob_until=None):
        text = POLICY.format(alice=self.keys["laptop-alice"],
                             bob=self.keys["laptop-bob"], extra=legacy)
        if bob_until is not None:
            text = text.replace(
                "[rule contractors-web]\nallow = group:contractors\n"
                "to = service:web\n",
                "[rule contractors-web]\nallow = group:contractors\n"
                "to = service:web\nexpires = %s\n" % time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(bob_until)))
        if not alice:
            # alice's key revoked: her entry now names a key she does not have
            text = text.replace(self.keys["laptop-alice"], "ed25519:" + "A" * 43)
        if not bob_web:
            text = text.replace("[rule contractors-web]\nallow = group:contractors\n"
                                "to = service:web\n", "")
            text = text.replace("allow = laptop-bob -> web\n", "deny = laptop-bob -> web\n")
        with open(self.policy, "w") as f:
            f.write(text)

    def start(self, mode, conf, name):
        a = AgentProcess(mode, conf, self.tmp, name)
        self.agents.append(a)
        return a

    def client(self, name):
        return self.start("connect", self.clients[name], name)

    def close(self):
        problems = []
        for a in self.agents:
            problems += a.stop_problems()
        for p in self.peers:
            p.stop()
        self.db.close()
        self.web.close()
        assert not problems, "\n\n".join(problems)


@pytest.fixture
def world(tmp_path, server):
    w = World(tmp_path, server)
    yield w
    w.close()


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def reload(w):
    r = subprocess.run([agent_bin(), "reload", "--control", w.gw.control],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_rights_differ_by_identity(world):
    alice = world.client("laptop-alice")
    bob = world.client("laptop-bob")
    a_db = alice.wait_listener(GW, 25432)
    alice.wait_listener(GW, 28080)
    b_web = bob.wait_listener(GW, 28080)
    # bob got the web service only; his INIT/PORTS never offered the db
    time.sleep(0.5)
    assert (GW, 25432, "TCP") not in bob.listeners()
    for addr in (a_db, b_web):
        with connect(addr) as s:
            s.sendall(b"ping")
            assert recv_exact(s, 4) == b"ping"
    st = world.gw.ctl("status")
    ids = {p["name"]: p["identity"] for p in st["peers"]}
    assert ids["laptop-alice"] == world.keys["laptop-alice"]
    # explain names the deciding rule
    r = subprocess.run([agent_bin(), "explain", "laptop-bob", "db", "-c",
                        world.gw_conf], capture_output=True, timeout=30)
    assert r.returncode == 1, r.stderr      # 1: denied
    assert b"no-contractor-db" in r.stdout and b"deny" in r.stdout.lower()
    r = subprocess.run([agent_bin(), "explain", "laptop-alice", "db", "-c",
                        world.gw_conf], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"engineers" in r.stdout, r.stdout


def alice_db_and_bob_web(world):
    """Both clients up, alice on the database and bob on the web service,
    one echoed exchange each; returns the two sockets."""
    alice = world.client("laptop-alice")
    bob = world.client("laptop-bob")
    a_db = alice.wait_listener(GW, 25432)
    b_web = bob.wait_listener(GW, 28080)
    sa, sb = connect(a_db), connect(b_web)
    for s in (sa, sb):
        s.sendall(b"before")
        assert recv_exact(s, 6) == b"before"
    return bob, b_web, sa, sb


def bob_cut_alice_kept(sa, sb):
    sb.settimeout(20)
    assert sb.recv(100) == b""
    sa.sendall(b"after")
    assert recv_exact(sa, 5) == b"after"


def test_reload_closes_forbidden_keeps_permitted(world):
    _, _, sa, sb = alice_db_and_bob_web(world)
    try:
        world.write_policy(bob_web=False)
        reload(world)
        world.gw.wait_log(r"no longer allowed: proxy-")
        # bob's web connection is closed, alice's database session goes on
        bob_cut_alice_kept(sa, sb)
    finally:
        sa.close()
        sb.close()


def test_expired_rule_closes_its_connections(world):
    """A rule's `expires` passes with no reload: the gateway decides again
    by itself, closes what only that rule allowed and keeps the rest."""
    until = int(time.time()) + 20
    world.write_policy(bob_until=until)
    wait_for(lambda: os.path.exists(world.gw.control), "no control socket")
    reload(world)
    bob, b_web, sa, sb = alice_db_and_bob_web(world)
    try:
        assert time.time() < until, "the connections came up after the " \
            "rule expired: nothing left to test"
        world.gw.wait_log(r"a rule of the policy \S+ expired", timeout=60)
        world.gw.wait_log(r"port 28080/TCP no longer allowed: proxy-")
        assert time.time() >= until
        bob_cut_alice_kept(sa, sb)
        # and it is no longer offered: bob's listener goes away
        bob.wait_log(r"peer %s no longer offers port 28080/TCP: \S+ closed"
                     % GW)
        with pytest.raises(OSError):
            connect(b_web).close()
    finally:
        sa.close()
        sb.close()


def test_key_subject_admits_without_a_peer_entry(world):
    """A rule that names a key (`key:ed25519:...`) is enough: that device
    comes in under any name without a [peer] entry and gets what the rule
    grants; an unknown key is still refused."""
    ci = write_config(os.path.join(world.tmp, "ci-runner.conf"), "ci-runner",
                      world.url, world.room, room_name=ROOM_NAME)
    stranger = write_config(os.path.join(world.tmp, "stranger.conf"),
                            "stranger", world.url, world.room,
                            room_name=ROOM_NAME)
    key = peer_id(ci)
    world.write_policy(legacy="\n[rule ci]\nallow = key:%s\nto = service:web\n"
                       % key)
    wait_for(lambda: os.path.exists(world.gw.control), "no control socket")
    reload(world)
    c = world.start("connect", ci, "ci-runner")
    web = c.wait_listener(GW, 28080)
    with connect(web) as s:
        s.sendall(b"ci")
        assert recv_exact(s, 2) == b"ci"
    world.gw.wait_log(r"peer ci-runner: admitted as key:%s" % re.escape(key))
    time.sleep(0.5)
    assert (GW, 25432, "TCP") not in c.listeners()
    world.start("connect", stranger, "stranger")
    world.gw.wait_log(r"peer stranger \(ed25519:\S+\) is not in the policy")


def test_revoked_key_is_cut(world):
    alice = world.client("laptop-alice")
    a_db = alice.wait_listener(GW, 25432)
    s = connect(a_db)
    try:
        s.sendall(b"x")
        assert recv_exact(s, 1) == b"x"
        world.write_policy(alice=False)
        t0 = time.monotonic()
        reload(world)
        s.settimeout(20)
        assert s.recv(10) == b""            # the tunnel is gone
        assert time.monotonic() - t0 < 10
        world.gw.wait_log(r"peer laptop-alice presents ed25519:\S+ but the "
                          r"policy knows it as ed25519:AAAA")
    finally:
        s.close()


def test_v1_peer_refused_unless_allowed(world, server):
    v1 = V1Peer(server, world.room, "v1-legacy", ["--listen-mode", "per-peer"],
                world.tmp)
    world.peers.append(v1)
    world.gw.wait_log(r"peer v1-legacy has no verified identity .* no "
                      r"\[legacy v1-legacy\]: refused", timeout=60)
    assert not v1.find("LISTEN", peer=GW)
    world.write_policy(legacy="\n[legacy v1-legacy]\ngroups = engineers\n")
    reload(world)
    v1.wait("LISTEN", peer=GW, port=28080, timeout=90)
    world.gw.wait_log(r"admitted WITHOUT identity as \[legacy v1-legacy\]")
