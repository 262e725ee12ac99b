"""Signaling v2 TURN_CREDENTIALS through the real peerpipe-server: the
coturn REST scheme (docs/signaling.md), its options and its refusals."""

import base64
import hashlib
import hmac
import os
import time
import uuid

import pytest

from conftest import start_server  # noqa: F401 - fixtures live there
from sigclient import SigClient, fast_room, run

SECRET = "a shared secret with coturn"


def secret_file(tmp_path, text=SECRET + "\n", mode=0o600):
    path = tmp_path / "turn.secret"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


async def member(srv, name):
    c = await SigClient.connect(srv.host, srv.port)
    r = await c.request(fast_room(str(uuid.uuid4()), "turn-room", name))
    assert r["type"] == "ROOM_CREATED", r
    return c


def test_credentials_follow_the_coturn_rest_scheme(server_factory, tmp_path):
    srv = server_factory("--turn-secret-file", secret_file(tmp_path),
                         "--turn-uri", "turn:198.51.100.3:3478",
                         "--turn-uri", "turn:198.51.100.3:3478?transport=tcp",
                         "--turn-ttl", "600")

    async def go():
        c = await SigClient.connect(srv.host, srv.port)
        # Not in a room: members only.
        r = await c.request({"type": "TURN_CREDENTIALS"})
        assert r == {"type": "FAILED", "data": {"reason": "Conflict"}}, r
        await c.close()
        c = await member(srv, "alice")
        before = int(time.time())
        r = await c.request({"type": "TURN_CREDENTIALS"})
        after = int(time.time())
        await c.close()
        return r, before, after

    r, before, after = run(go())
    assert r["type"] == "TURN_CREDENTIALS", r
    d = r["data"]
    assert d["ttl"] == 600
    assert d["uris"] == ["turn:198.51.100.3:3478",
                         "turn:198.51.100.3:3478?transport=tcp"]
    expiry, user = d["username"].split(":", 1)
    assert user == "alice"
    assert before + 600 <= int(expiry) <= after + 600
    want = base64.b64encode(hmac.new(SECRET.encode(), d["username"].encode(),
                                     hashlib.sha1).digest()).decode()
    assert d["password"] == want
    assert SECRET not in srv.log()


def test_without_a_secret_the_request_fails_clearly(server):
    async def go():
        c = await member(server, "bobby")
        r = await c.request({"type": "TURN_CREDENTIALS"})
        await c.close()
        return r
    assert run(go()) == {"type": "FAILED", "data": {
        "reason": "TURN credentials are not configured on this server"}}


@pytest.mark.parametrize("args, says", [
    (["--turn-uri", "turn:198.51.100.3:3478"], "go together"),
    (["--turn-secret-file", "SECRET"], "go together"),
    (["--turn-secret-file", "SECRET", "--turn-uri", "turn:nowhere"],
     "expected turn:HOST:PORT"),
    (["--turn-secret-file", "SECRET", "--turn-uri", "turn:h:1",
      "--turn-ttl", "5"], "expected a number from 60"),
    (["--turn-secret-file", "OPEN", "--turn-uri", "turn:h:1"],
     "readable by others"),
    (["--turn-secret-file", "EMPTY", "--turn-uri", "turn:h:1"],
     "expected one line"),
    (["--turn-secret-file", "MISSING", "--turn-uri", "turn:h:1"],
     "No such file"),
])
def test_bad_turn_options_are_refused(server_factory, tmp_path, args, says):
    files = {"SECRET": secret_file(tmp_path),
             "MISSING": str(tmp_path / "missing")}
    (tmp_path / "o").mkdir()
    files["OPEN"] = secret_file(tmp_path / "o", mode=0o644)
    (tmp_path / "e").mkdir()
    files["EMPTY"] = secret_file(tmp_path / "e", text="\n")
    args = [files.get(a, a) for a in args]
    srv = server_factory(*args, wait=False)
    srv.stopped_by_test = True
    rc = srv.wait(60)
    assert rc not in (0, None), srv.log_tail()
    assert says in srv.log(), srv.log_tail()
