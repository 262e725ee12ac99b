"""Signaling protocol v2: signed joins and name bindings (docs/signaling.md,
"Authentication").

The protocol tests sign with Python's `cryptography` from the spec's text,
an implementation independent of the C one; the agent tests run the real
`peerpipe` agents against a server with --require-auth.
"""

import asyncio
import base64
import os
import re
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import \
    Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, \
    PublicFormat

from agents import (AgentProcess, TcpService, echo_handler, new_room,
                    write_config)
from sigclient import (connect, failed, fast_room, join_room, leave_room,
                       run)

ROOM = "auth-room"
NAME_BOUND = "User name is bound to another identity key in this room"
AUTH_REQUIRED = ("Authentication required: sign the join with an identity "
                 "key (protocol v2)")
AUTH_FAILED = "Authentication failed"


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Key:
    def __init__(self):
        self.sk = Ed25519PrivateKey.generate()
        raw = self.sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.text = "ed25519:" + b64u(raw)

    def sign_join(self, req, nonce_text, new_room_req=False):
        """req with pp_id/pp_sig over the spec's five lines."""
        text = ("peerpipe-signaling-auth-v2\nnonce=%s\nroom-uuid=%s\n"
                "room-name=%s\nuser=%s\n" % (
                    nonce_text, "" if new_room_req else req["room_uuid"],
                    req["room_name"], req["user_name"]))
        signed = dict(req)
        signed["pp_id"] = self.text
        signed["pp_sig"] = b64u(self.sk.sign(text.encode()))
        return signed


async def challenge(c):
    r = await c.request({"type": "AUTH_CHALLENGE"})
    assert r["type"] == "AUTH_CHALLENGE", r
    assert r["data"]["pp_version"] == 2
    assert len(unb64u(r["data"]["nonce"])) == 32
    return r["data"]


async def signed(c, key, req):
    ch = await challenge(c)
    return await c.request(key.sign_join(req, ch["nonce"]))


def test_name_bound_to_first_key(server):
    """K binds alice; K2 (signed) and a v1 client cannot take alice, even
    after the room emptied; K can; v2 members see who proved which key,
    a v1 member sees plain v1 messages."""
    async def go():
        room = str(uuid.uuid4())
        k, k2, kb = Key(), Key(), Key()
        a = await connect(server)
        r = await signed(a, k, fast_room(room, ROOM, "alice"))
        assert r == {"type": "ROOM_CREATED", "data": {"room_uuid": room}}
        # another key, while alice is in and after she left
        x = await connect(server)
        assert await signed(x, k2, join_room(room, ROOM, "alice")) == \
            failed(NAME_BOUND)
        assert await a.request(leave_room(room, ROOM, "alice")) == \
            {"type": "SUCCESS"}
        assert await signed(x, k2, fast_room(room, ROOM, "alice")) == \
            failed(NAME_BOUND)
        # a v1 client (no challenge, no signature)
        v1 = await connect(server)
        assert await v1.request(fast_room(room, ROOM, "alice")) == \
            failed(NAME_BOUND)
        # a signature over an old challenge, or with none
        ch = await challenge(x)
        stale = k.sign_join(fast_room(room, ROOM, "alice"), ch["nonce"])
        assert (await x.request(stale))["type"] == "ROOM_CREATED"
        y = await connect(server)
        assert await y.request(stale) == failed(AUTH_FAILED)
        await challenge(y)
        assert await y.request(stale) == failed(AUTH_FAILED)
        # bob (v2) learns alice's key; alice learns bob's
        b = await connect(server)
        r = await signed(b, kb, join_room(room, ROOM, "bobby"))
        assert r == {"type": "ROOM_JOINED", "data": {
            "room_members": ["alice", "bobby"],
            "identities": {"alice": k.text, "bobby": kb.text}}}, r
        ev = await x.next_event()
        assert ev == {"type": "ROOM_NEW_MEMBER", "data": {
            "name": "bobby", "identity": kb.text}}, ev
        # a v1 member: no v2 fields either way
        r = await v1.request(join_room(room, ROOM, "carol"))
        assert r == {"type": "ROOM_JOINED", "data": {
            "room_members": ["alice", "bobby", "carol"]}}, r
        assert await x.next_event() == {"type": "ROOM_NEW_MEMBER",
                                         "data": {"name": "carol"}}
    run(go())


def test_require_auth_refuses_v1(server_factory):
    srv = server_factory("--require-auth")

    async def go():
        room = str(uuid.uuid4())
        v1 = await connect(srv)
        assert await v1.request(fast_room(room, ROOM, "old-client")) == \
            failed(AUTH_REQUIRED)
        c = await connect(srv)
        ch = await challenge(c)
        assert ch["required"] is True
        r = await c.request(Key().sign_join(fast_room(room, ROOM, "new-one"),
                                            ch["nonce"]))
        assert r["type"] == "ROOM_CREATED", r
        assert await v1.request(join_room(room, ROOM, "old-client")) == \
            failed(AUTH_REQUIRED)
    run(go())
    assert "authentication required" in srv.log()


def test_agents_sign_in_and_keep_their_names(server_factory, tmp_path):
    """Two agents against --require-auth: both sign in, the tunnel works,
    each sees the key the server reports for the other.  A third agent
    with the client's name but its own key is refused by the server."""
    srv = server_factory("--require-auth")
    url = "wss://127.0.0.1:%d/ws" % srv.port
    room = new_room()
    tmp = str(tmp_path)
    svc = TcpService(echo_handler)
    made = []
    try:
        gw = AgentProcess("gateway", write_config(
            os.path.join(tmp, "gw.conf"), "gw-auth", url, room,
            services=[("echo", 24901, "tcp", "127.0.0.1", svc.port)]),
            tmp, "gw-auth")
        made.append(gw)
        cl = AgentProcess("connect", write_config(
            os.path.join(tmp, "cl.conf"), "laptop-auth", url, room), tmp,
            "laptop-auth")
        made.append(cl)
        addr = cl.wait_listener("gw-auth", 24901)
        import socket
        with socket.create_connection(addr, timeout=30) as s:
            s.sendall(b"signed in")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b"signed in"
        cl.wait_log(r"in room \S+ as laptop-auth \(signed in with our "
                    r"identity key\)")
        st, gst = cl.ctl("status"), gw.ctl("status")
        assert st["signaling"]["authenticated"] is True
        p = [x for x in st["peers"] if x["name"] == "gw-auth"][0]
        assert p["identity"] == gst["identity"]
        assert p["signaling_identity"] == gst["identity"]
        # The same name with another key (another state directory).
        os.makedirs(os.path.join(tmp, "thief"), exist_ok=True)
        thief = AgentProcess("connect", write_config(
            os.path.join(tmp, "thief", "cl.conf"), "laptop-auth", url, room),
            os.path.join(tmp, "thief"), "thief")
        made.append(thief)
        thief.wait_log(r"the signaling server refused our join as "
                       r"laptop-auth: %s" % re.escape(NAME_BOUND))
        assert thief.ctl("status")["signaling"]["in_room"] is False
        # The rightful client is untouched.
        assert [x for x in cl.ctl("status")["peers"]
                if x["name"] == "gw-auth"][0]["state"] == "connected"
    finally:
        problems = []
        for a in made:
            problems += a.stop_problems(must_live=True)
        svc.close()
        assert not problems, "\n\n".join(problems)


def test_require_auth_refuses_the_v1_reference_peer(server_factory, tmp_path):
    """The independent v1 peer (tests/interop/v1_peer.py, written from the
    v1 spec) against --require-auth: its join is refused with the reason,
    which it reports, and it gets no further."""
    from test_v1peer_selfcheck import V1Peer
    srv = server_factory("--require-auth")
    v1 = V1Peer(srv, new_room(), "v1-laptop", ["--listen-mode", "per-peer"],
                str(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while v1.proc.poll() is None and AUTH_REQUIRED not in v1.stderr_tail():
            assert time.monotonic() < deadline, v1.diagnosis()
            time.sleep(0.1)
        assert "FAST_ROOM_EXACT failed" in v1.stderr_tail() and \
            AUTH_REQUIRED in v1.stderr_tail(), v1.diagnosis()
        assert not v1.find("PEER")
    finally:
        v1.stop()


def test_full_binding_table_falls_back_to_unsigned(server_factory, tmp_path):
    """A server whose binding table is full of live rooms' names refuses
    every new signed join with "Too many bound names": the agent joins
    unsigned then (and says so) instead of retrying the signed join
    forever."""
    srv = server_factory("--max-bindings", "1")
    url = "wss://127.0.0.1:%d/ws" % srv.port
    tmp = str(tmp_path)

    def agent_part():
        cl = AgentProcess("connect", write_config(
            os.path.join(tmp, "cl.conf"), "laptop-full", url, new_room()),
            tmp, "laptop-full")
        try:
            cl.wait_log(r"the signaling server cannot bind our name "
                        r"laptop-full to our key")
            deadline = time.monotonic() + 60
            while not cl.ctl("status")["signaling"]["in_room"]:
                assert time.monotonic() < deadline, cl.log_tail()
                time.sleep(0.2)
            assert cl.ctl("status")["signaling"]["authenticated"] is False
        finally:
            alive = cl.alive()
            rc = cl.stop()
            rep = cl.sanitizer_report()
        assert alive and rc == 0 and not rep, (rc, rep, cl.log_tail())

    async def go():
        holder = await connect(srv)
        r = await signed(holder, Key(), fast_room(str(uuid.uuid4()), ROOM,
                                                  "holder"))
        assert r["type"] == "ROOM_CREATED", r
        # full: a second signed join to a new name is refused
        c = await connect(srv)
        assert await signed(c, Key(), fast_room(str(uuid.uuid4()), ROOM,
                                                "other")) == \
            failed("Too many bound names on this server")
        # the agent's wait runs beside the loop: the holder stays answered
        await asyncio.get_running_loop().run_in_executor(None, agent_part)
        # the holder kept its room and binding throughout
        assert (await holder.request(leave_room(r["data"]["room_uuid"], ROOM,
                                                "holder")))["type"] == \
            "SUCCESS"
    run(go())
