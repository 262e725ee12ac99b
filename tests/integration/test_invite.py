"""Invites (docs/identity.md, "Invites"): `peerpipe invite` on a running
gateway makes a single-use, expiring token; a new device that has no entry
in the gateway's policy joins with `peerpipe connect --invite TOKEN`, proves
the token in the v2 AUTH step, and the gateway adds its key to the policy.
A used token stays used across a restart of the gateway; an expired one is
refused.
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import \
    Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, \
    PublicFormat

from agents import (AgentProcess, TcpService, agent_bin, echo_handler,
                    new_room, write_config)

GW = "gw-invite"
PORT = 25101
WAIT = 60


def some_key():
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


POLICY = """# the gateway's policy: staff may use the echo service
[peer ops-laptop]
key = %s
groups = staff

[rule staff-echo]
allow = group:staff
to = service:echo
"""


def echo(addr, data):
    with socket.create_connection(addr, timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


@pytest.fixture
def world(tmp_path, server):
    made = []

    class World:
        tmp = str(tmp_path)
        url = "wss://127.0.0.1:%d/ws" % server.port
        room = new_room()
        svc = TcpService(echo_handler)
        policy = os.path.join(str(tmp_path), "gw.policy")

        def gateway(self):
            """Starts the gateway; .since is where this run's log starts
            (a restart appends to the same file)."""
            log = os.path.join(self.tmp, GW + ".log")
            since = os.path.getsize(log) if os.path.exists(log) else 0
            a = AgentProcess("gateway", self.gw_conf, self.tmp, GW)
            a.since = since
            made.append(a)
            a.wait_log(r"in room", start=since)
            return a

        def device(self, name, token, room=None, args=None):
            """A fresh device: its own directory and key, no policy; its
            config names another room, which the invite replaces."""
            d = os.path.join(self.tmp, name)
            os.makedirs(d, exist_ok=True)
            conf = write_config(os.path.join(d, name + ".conf"), name,
                                self.url, room or new_room())
            a = AgentProcess("connect", conf, d, name,
                             args=args or ["--invite", token])
            made.append(a)
            return a

        def invite(self, gw, *args):
            r = subprocess.run([agent_bin(), "invite", "--control",
                                gw.control, "--json"] + list(args),
                               capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr.decode()
            return json.loads(r.stdout)

    w = World()
    with open(w.policy, "w") as f:
        f.write(POLICY % some_key())
    w.gw_conf = write_config(os.path.join(w.tmp, "gw.conf"), GW, w.url,
                             w.room, services=[("echo", PORT, "tcp",
                                                "127.0.0.1", w.svc.port)],
                             policy=w.policy)
    yield w
    problems = []
    for a in made:
        problems += a.stop_problems()
    w.svc.close()
    assert not problems, "\n\n".join(problems)


def test_invite_flow(world):
    gw = world.gateway()
    inv = world.invite(gw, "--group", "staff")
    assert inv["token"].startswith("ppinvite1.")
    assert inv["gateway"] == GW and inv["group"] == "staff"
    assert inv["expires"] > time.time() + 3000	# the default: one hour
    # the token is never logged
    assert inv["token"] not in gw.log()

    # A new device with no entry in the policy joins with it and reaches
    # the service.
    new = world.device("laptop-new", inv["token"])
    addr = new.wait_listener(GW, PORT, timeout=WAIT)
    assert echo(addr, b"invited " * 100) == b"invited " * 100
    key = new.ctl("status")["identity"]
    gw.wait_log(r"peer laptop-new: admitted by invite %s: \[peer laptop-new\] "
                r"key = %s, groups = staff added to " % (
                    re.escape(inv["id"]), re.escape(key)))
    # Its key is in the gateway's policy now, with the group.
    with open(world.policy) as f:
        text = f.read()
    assert re.search(r"# added by invite %s at \S+\n\[peer laptop-new\]\n"
                     r"key = %s\ngroups = staff\n" % (
                         re.escape(inv["id"]), re.escape(key)), text), text
    # The device pinned the gateway's key from the token, before meeting it.
    gw_key = gw.ctl("status")["identity"]
    new.wait_log(r"peer %s: identity %s pinned from the invite" % (
        GW, re.escape(gw_key)))
    p = [x for x in new.ctl("status")["peers"] if x["name"] == GW][0]
    assert p["identity"] == gw_key
    # `explain` agrees.
    r = subprocess.run([agent_bin(), "explain", "laptop-new", "echo", "-c",
                        world.gw_conf], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"ALLOW by rule \"staff-echo\"" in r.stdout, \
        r.stdout + r.stderr

    # The token cannot be used again, by another device.
    other = world.device("laptop-other", inv["token"])
    gw.wait_log(r"peer laptop-other: invite %s was already used by "
                r"laptop-new \(%s\) at \S+: an invite admits one device" % (
                    re.escape(inv["id"]), re.escape(key)), timeout=WAIT)
    assert not [k for k in other.listeners() if k[0] == GW]

    # Used stays used across a restart of the gateway; the invited device
    # is now admitted by the policy alone.
    assert gw.stop() == 0
    start = len(open(world.policy).read())
    gw2 = world.gateway()
    gw2.wait_log(r"peer laptop-other: invite %s was already used by "
                 r"laptop-new" % re.escape(inv["id"]), start=gw2.since,
                 timeout=WAIT)
    addr = new.wait_listener(GW, PORT, since=1, timeout=WAIT)
    assert echo(addr, b"again") == b"again"
    assert "admitted by invite" not in gw2.log()[gw2.since:]
    assert len(open(world.policy).read()) == start	# nothing added again
    assert not [k for k in other.listeners() if k[0] == GW]


def test_expired_and_bad_invites(world):
    gw = world.gateway()
    inv = world.invite(gw, "--ttl", "1", "--group", "staff")
    while time.time() <= inv["expires"]:
        time.sleep(0.2)
    late = world.device("laptop-late", inv["token"])
    late.wait_log(r"invite %s expired by our clock" % re.escape(inv["id"]))
    gw.wait_log(r"peer laptop-late: invite %s expired at \S+: make a new one "
                r"with `peerpipe invite`" % re.escape(inv["id"]),
                timeout=WAIT)
    assert not [k for k in late.listeners() if k[0] == GW]
    assert "laptop-late" not in open(world.policy).read()

    # A revoked invite is unknown from then on.
    rev = world.invite(gw, "--group", "staff")
    lst = {i["id"]: i for i in json.loads(subprocess.run(
        [agent_bin(), "invites", "--control", gw.control, "--json"],
        capture_output=True, timeout=30, check=True).stdout)}
    assert lst[inv["id"]]["state"] == "expired"
    assert lst[rev["id"]]["state"] == "pending"
    assert "secret" not in json.dumps(lst)
    r = subprocess.run([agent_bin(), "invites", "--control", gw.control,
                        "--revoke", rev["id"]], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and b"revoked" in r.stdout, r.stderr
    revoked = world.device("laptop-revoked", rev["token"])
    gw.wait_log(r"peer laptop-revoked: invite %s is unknown to this gateway"
                % re.escape(rev["id"]), timeout=WAIT)
    assert not [k for k in revoked.listeners() if k[0] == GW]

    # Without an invite, a device unknown to the policy is refused as ever.
    d = os.path.join(world.tmp, "stranger")
    os.makedirs(d)
    conf = write_config(os.path.join(d, "s.conf"), "laptop-stranger",
                        world.url, world.room)
    stranger = AgentProcess("connect", conf, d, "laptop-stranger")
    try:
        gw.wait_log(r"peer laptop-stranger \(ed25519:\S+\) is not in the "
                    r"policy .*: refused", timeout=WAIT)
    finally:
        assert stranger.stop() == 0

    # A damaged token stops the agent at start with the reason.
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite",
                        "ppinvite1.notatoken"], capture_output=True,
                       timeout=60)
    assert r.returncode != 0
    assert b"invite token: damaged" in r.stderr, r.stderr
    # Options are checked by the CLI and by the gateway.
    r = subprocess.run([agent_bin(), "invite", "--control", gw.control,
                        "--group", "bad group!"], capture_output=True,
                       timeout=30)
    assert r.returncode != 0 and b"group \"bad group!\"" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as another user")
def test_invite_needs_the_agents_own_user(world):
    """With control_mode = 0660 the socket's group may use the control API,
    but only root and the agent's own user may make or revoke invites
    (docs/control-api.md): `nobody`, let in through the group, gets a
    clear refusal for those and is served the rest."""
    d = tempfile.mkdtemp(prefix="pp-ctlgroup-")
    try:
        # a set-group-id directory gives the socket its group: nogroup
        os.chown(d, 0, 65534)
        os.chmod(d, 0o2775)
        sock = os.path.join(d, "gw.sock")
        with open(world.gw_conf) as f:
            conf = f.read()
        conf = re.sub(r"(?m)^control = .*$",
                      "control = %s\ncontrol_mode = 0660" % sock, conf)
        with open(world.gw_conf, "w") as f:
            f.write(conf)
        gw = world.gateway()
        assert gw.control == sock
        assert os.stat(sock).st_gid == 65534

        def as_nobody(*args):
            return subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534",
                 "--clear-groups", agent_bin()] + list(args) +
                ["--control", sock], capture_output=True, timeout=30)

        r = as_nobody("status", "--json")
        assert r.returncode == 0, r.stderr
        r = as_nobody("invite", "--group", "staff")
        assert r.returncode != 0
        assert b"'invite' is only for root or the agent's own user (uid 0)" \
            b"; you are uid 65534" in r.stderr, r.stderr
        assert b"ppinvite1." not in r.stdout
        inv = world.invite(gw, "--group", "staff")
        r = as_nobody("invites", "--json")
        assert r.returncode == 0, r.stderr
        assert inv["id"] in r.stdout.decode()
        r = as_nobody("invites", "--revoke", inv["id"])
        assert r.returncode != 0
        assert b"'invites --revoke' is only for root" in r.stderr, r.stderr
        assert [i for i in json.loads(as_nobody("invites", "--json").stdout)
                if i["id"] == inv["id"]][0]["state"] == "pending"
        gw.wait_log(r"refused 'invite' from uid 65534: only root or uid 0 may")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_invite_from_a_file(world):
    """`--invite-file PATH` (the recommended form) and `--invite -` (stdin)
    read the token without putting it on the command line, and a token
    given with `--invite` is wiped from /proc/PID/cmdline."""
    gw = world.gateway()
    inv = world.invite(gw, "--group", "staff")
    path = os.path.join(world.tmp, "token.txt")
    with open(path, "w") as f:
        f.write(inv["token"] + "\n")
    # readable by others: refused, the token is a secret
    os.chmod(path, 0o644)
    conf = write_config(os.path.join(world.tmp, "x.conf"), "laptop-x",
                        world.url, new_room())
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite-file",
                        path], capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"readable by other users (mode 0644)" in r.stderr, r.stderr
    assert b"chmod 600" in r.stderr
    os.chmod(path, 0o600)
    new = world.device("laptop-file", None,
                       args=["--invite-file", path])
    addr = new.wait_listener(GW, PORT, timeout=WAIT)
    assert echo(addr, b"from a file") == b"from a file"
    gw.wait_log(r"peer laptop-file: admitted by invite %s" %
                re.escape(inv["id"]))
    assert inv["token"] not in open("/proc/%d/cmdline" % new.proc.pid).read()

    # --invite TOKEN: overwritten in argv once parsed
    inv2 = world.invite(gw, "--group", "staff")
    dev = world.device("laptop-argv", inv2["token"])
    dev.wait_listener(GW, PORT, timeout=WAIT)
    cmdline = open("/proc/%d/cmdline" % dev.proc.pid, "rb").read()
    assert inv2["token"].encode() not in cmdline, cmdline
    assert b"--invite\0xxxxxxxxxx" in cmdline, cmdline

    # --invite - reads stdin (a damaged token shows it was read)
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite", "-"],
                       input=b"ppinvite1.notatoken\n", capture_output=True,
                       timeout=60)
    assert r.returncode != 0
    assert b"invite token: damaged" in r.stderr, r.stderr
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite-file",
                        "-"], input=b"ppinvite1.notatoken", capture_output=True,
                       timeout=60)
    assert b"invite token: damaged" in r.stderr, r.stderr
    # both at once, or a missing file: a clear refusal
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite", "x",
                        "--invite-file", path], capture_output=True,
                       timeout=60)
    assert r.returncode == 2 and b"not both" in r.stderr, r.stderr
    r = subprocess.run([agent_bin(), "connect", "-c", conf, "--invite-file",
                        path + ".missing"], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"No such file" in r.stderr, r.stderr


def test_refused_redemption_leaves_the_policy_alone(world):
    """A device whose key the policy already has under another name uses an
    invite: refused up front naming that entry, on every retry, and the
    policy file stays byte for byte as it was (it used to get one more
    [peer] block per retry and then fail to load); the invite stays
    pending and a restarted gateway still loads its policy."""
    name = "laptop-dup"
    d = os.path.join(world.tmp, name)
    os.makedirs(d)
    conf = write_config(os.path.join(d, name + ".conf"), name, world.url,
                        new_room())
    r = subprocess.run([agent_bin(), "id", "-c", conf, "--json"],
                       capture_output=True, timeout=30, check=True)
    key = json.loads(r.stdout)["identity"]
    with open(world.policy, "a") as f:
        f.write("\n[peer old-laptop]\nkey = %s\n" % key)
    before = open(world.policy).read()
    gw = world.gateway()
    inv = world.invite(gw, "--group", "staff")
    dev = AgentProcess("connect", conf, d, name,
                       args=["--invite", inv["token"]])
    try:
        msg = (r"peer %s: the key %s already belongs to \[peer old-laptop\] "
               r"in the policy \S+: an invite never gives a key a second "
               r"name" % (name, re.escape(key)))
        gw.wait_log(msg, timeout=WAIT)
        # the device retries: refused the same way, nothing written
        deadline = time.monotonic() + WAIT
        while len(re.findall(msg, gw.log())) < 2:
            assert time.monotonic() < deadline, gw.log_tail()
            time.sleep(0.2)
        assert open(world.policy).read() == before
        assert not [f for f in os.listdir(world.tmp)
                    if f.startswith("gw.policy.")]
        lst = json.loads(subprocess.run(
            [agent_bin(), "invites", "--control", gw.control, "--json"],
            capture_output=True, timeout=30, check=True).stdout)
        assert [i["state"] for i in lst if i["id"] == inv["id"]] == \
            ["pending"]
    finally:
        assert dev.stop() == 0
    assert gw.stop() == 0
    gw2 = world.gateway()
    assert gw2.alive()
    assert "not reloaded" not in gw2.log()[gw2.since:]
