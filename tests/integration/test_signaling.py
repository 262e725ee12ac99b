"""Signaling protocol v1 against the real peerpipe-server, over WSS on loopback.

Clients behave like existing PeerPipe clients (see sigclient.py).  Every
assertion is on exact message content; nothing asserts on wall-clock time:
waits are generous upper bounds, and "nothing else arrived" is checked with a
barrier request (SigClient.sync) rather than by waiting.

Most tests share one server with default limits (fixture `server`) and use
their own connections and rooms; tests that need flags start their own
(fixture `server_factory`).
"""

import asyncio
import base64
import functools
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import uuid

import pytest
import websockets

from conftest import start_server
from sigclient import (
    SUCCESS, UUID4_RE, RawWS, candidate, close_all, connect,
    connect_many, failed, fast_room, join_room, leave_room, new_room,
    offer_sdp, run, sdp, sdp_state, unverified_context, wait_eof)


def asynctest(fn):
    """Lets a test be written as a coroutine (no pytest-asyncio here)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return run(fn(*args, **kwargs))
    return wrapper


def new_uuid():
    return str(uuid.uuid4())


def created(room_uuid):
    return {"type": "ROOM_CREATED", "data": {"room_uuid": room_uuid}}


def joined(*members):
    return {"type": "ROOM_JOINED", "data": {"room_members": list(members)}}


def new_member(name):
    return {"type": "ROOM_NEW_MEMBER", "data": {"name": name}}


def member_left(name):
    return {"type": "ROOM_MEMBER_LEFT", "data": {"name": name}}


R_UNKNOWN = "Unknown message"
R_INVALID = "Invalid data"
R_CONFLICT = "Conflict"
R_BAD_ROOM = "Invalid room name/UUID"
R_NAME_TAKEN = "User with this usename already in the room"
R_BAD_USER = "Invalid username"
R_FORBIDDEN = "Forbidden"
R_NO_TARGET = "Not found requested user"
R_RELAY = "Failed to transfer offer"
R_ROOM_FULL = "Room is full"
R_TOO_MANY_ROOMS = "Too many rooms"
R_TOO_LARGE = "Message too large"
R_RATE = "Rate limit exceeded"


class Room:
    """A room and its members' connections, by user name."""

    def __init__(self, room_uuid, name, clients):
        self.uuid = room_uuid
        self.name = name
        self.clients = clients		# user name -> SigClient

    def __getitem__(self, user):
        return self.clients[user]

    def leave(self, user):
        return leave_room(self.uuid, self.name, user)

    def sdp(self, user, target, sdp_type, sdp_data):
        return sdp(self.uuid, self.name, user, target, sdp_type, sdp_data)

    async def quiet(self):
        for c in self.clients.values():
            await c.assert_quiet()


async def make_room(server, *users, room_name="test-room", **connect_kwargs):
    """Connects one client per user; the first creates, the rest join.

    Checks every reply and ROOM_NEW_MEMBER exactly on the way, so the room
    starts with nothing pending on any connection.
    """
    clients = await connect_many(server, len(users), **connect_kwargs)
    r = await clients[0].request(new_room(room_name, users[0]))
    assert r["type"] == "ROOM_CREATED", r
    room_uuid = r["data"]["room_uuid"]
    for i in range(1, len(users)):
        r = await clients[i].request(join_room(room_uuid, room_name, users[i]))
        assert r == joined(*users[:i + 1])
        for j in range(i):
            assert await clients[j].next_event() == new_member(users[i])
    return Room(room_uuid, room_name, dict(zip(users, clients)))


# ---------------------------------------------------------------------------
# Success paths


@asynctest
async def test_new_room_creates_room_with_fresh_uuid4(server):
    a, b = await connect_many(server, 2)
    r1 = await a.request(new_room("same-name", "alice"))
    r2 = await b.request(new_room("same-name", "alice"))
    for r in (r1, r2):
        assert set(r) == {"type", "data"}, r
        assert r["type"] == "ROOM_CREATED"
        assert set(r["data"]) == {"room_uuid"}, r
        assert UUID4_RE.match(r["data"]["room_uuid"]), r
    # Two rooms, even with the same room and user names.
    assert r1["data"]["room_uuid"] != r2["data"]["room_uuid"]
    await a.assert_quiet()
    await b.assert_quiet()


@asynctest
async def test_join_room_lists_members_in_join_order(server):
    room = await make_room(server, "alice", room_name="join-room")
    b, c = await connect_many(server, 2)
    assert await b.request(join_room(room.uuid, "join-room", "bobby")) == \
        joined("alice", "bobby")
    assert await room["alice"].next_event() == new_member("bobby")
    assert await c.request(join_room(room.uuid, "join-room", "carol")) == \
        joined("alice", "bobby", "carol")
    assert await room["alice"].next_event() == new_member("carol")
    assert await b.next_event() == new_member("carol")
    # Nobody hears about their own joining, and nothing else is sent.
    for x in (room["alice"], b, c):
        await x.assert_quiet()


@asynctest
async def test_fast_room_exact_creates_then_joins(server):
    u = new_uuid()
    a, b, c = await connect_many(server, 3)
    assert await a.request(fast_room(u, "fast-room", "alice")) == created(u)
    assert await b.request(fast_room(u, "fast-room", "bobby")) == \
        joined("alice", "bobby")
    assert await a.next_event() == new_member("bobby")
    # A room made by FAST_ROOM_EXACT is an ordinary room for JOIN_ROOM.
    assert await c.request(join_room(u, "fast-room", "carol")) == \
        joined("alice", "bobby", "carol")
    assert await a.next_event() == new_member("carol")
    assert await b.next_event() == new_member("carol")
    for x in (a, b, c):
        await x.assert_quiet()


@asynctest
async def test_fast_room_exact_joins_room_made_by_new_room(server):
    room = await make_room(server, "alice", room_name="made-by-new")
    b = await connect(server)
    assert await b.request(fast_room(room.uuid, "made-by-new", "bobby")) == \
        joined("alice", "bobby")
    assert await room["alice"].next_event() == new_member("bobby")
    await room["alice"].assert_quiet()
    await b.assert_quiet()


@pytest.mark.parametrize("variant", "89ab")
@asynctest
async def test_fast_room_exact_accepts_every_uuid4_variant(server, variant):
    base = new_uuid()
    u = base[:19] + variant + base[20:]
    a = await connect(server)
    assert await a.request(fast_room(u, "variant-room", "alice")) == created(u)
    b = await connect(server)
    assert await b.request(join_room(u, "variant-room", "bobby")) == \
        joined("alice", "bobby")


@asynctest
async def test_leave_room(server):
    room = await make_room(server, "alice", "bobby", "carol", room_name="leavers")
    assert await room["bobby"].request(room.leave("bobby")) == SUCCESS
    assert await room["alice"].next_event() == member_left("bobby")
    assert await room["carol"].next_event() == member_left("bobby")
    await room.quiet()
    # The room goes on without bob, join order kept.
    d = await connect(server)
    assert await d.request(join_room(room.uuid, "leavers", "dave")) == \
        joined("alice", "carol", "dave")
    assert await room["alice"].next_event() == new_member("dave")
    assert await room["carol"].next_event() == new_member("dave")
    # bob's connection is free again: it may rejoin under the same name.
    assert await room["bobby"].request(
        join_room(room.uuid, "leavers", "bobby")) == \
        joined("alice", "carol", "dave", "bobby")


@asynctest
async def test_sdp_offer_and_answer_are_relayed(server):
    room = await make_room(server, "alice", "bobby", "carol", room_name="sdp-room")
    offer = offer_sdp("alice") + 'a=x-note:"quoted" back\\slash caf\u00e9 \u2603\r\n'
    answer = offer_sdp("bobby").replace("actpass", "active")
    assert await room["alice"].request(
        room.sdp("alice", "bobby", "offer", offer)) == SUCCESS
    assert await room["bobby"].next_event() == sdp_state("offer", "alice", offer)
    assert await room["bobby"].request(
        room.sdp("bobby", "alice", "answer", answer)) == SUCCESS
    assert await room["alice"].next_event() == \
        sdp_state("answer", "bobby", answer)
    # Only the target hears it.
    await room.quiet()


@asynctest
async def test_sdp_relay_of_raw_utf8(server):
    """A client that sends UTF-8 unescaped gets it relayed unchanged."""
    room = await make_room(server, "alice", "bobby", room_name="utf8-room")
    offer = offer_sdp("u") + "a=x-name:J\u00fcrgen \u65e5\u672c \U0001F600\r\n"
    await room["alice"].send_raw(json.dumps(
        room.sdp("alice", "bobby", "offer", offer), ensure_ascii=False))
    assert await room["alice"].reply() == SUCCESS
    assert await room["bobby"].next_event() == sdp_state("offer", "alice", offer)
    await room.quiet()


@asynctest
async def test_sdp_candidates_are_relayed_both_ways(server):
    room = await make_room(server, "alice", "bobby", room_name="cand-room")
    cands = [candidate(1), candidate(2, mid="1"),
             {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}]
    for c in cands:
        assert await room["alice"].request(
            room.sdp("alice", "bobby", "candidate", c)) == SUCCESS
        assert await room["bobby"].request(
            room.sdp("bobby", "alice", "candidate", c)) == SUCCESS
    for c in cands:
        ev = await room["bobby"].next_event()
        assert ev == sdp_state("candidate", "alice", c)
        # An integer stays an integer (not 0.0 or "0").
        assert type(ev["data"]["sdp_data"]["sdpMLineIndex"]) is int
        assert await room["alice"].next_event() == \
            sdp_state("candidate", "bobby", c)
    await room.quiet()


@pytest.mark.parametrize("compression", ["deflate", None],
                         ids=["permessage-deflate", "no-compression"])
@asynctest
async def test_clients_with_and_without_compression(server, compression):
    room = await make_room(server, "alice", room_name="mixed-room")
    b = await connect(server, compression=compression)
    assert await b.request(join_room(room.uuid, "mixed-room", "bobby")) == \
        joined("alice", "bobby")
    assert await room["alice"].next_event() == new_member("bobby")
    big = offer_sdp("big") + "".join(
        "a=x-%d:%s\r\n" % (i, hashlib.sha256(b"%d" % i).hexdigest())
        for i in range(400))
    assert await room["alice"].request(
        room.sdp("alice", "bobby", "offer", big)) == SUCCESS
    assert await b.next_event() == sdp_state("offer", "alice", big)
    assert await b.request(room.sdp("bobby", "alice", "answer", big)) == SUCCESS
    assert await room["alice"].next_event() == sdp_state("answer", "bobby", big)


@asynctest
async def test_extra_fields_are_ignored(server):
    a = await connect(server)
    msg = dict(new_room("extra-room", "alice"), version=2, note={"x": [1]})
    r = await a.request(msg)
    assert r["type"] == "ROOM_CREATED", r


# ---------------------------------------------------------------------------
# Field validation

MISSING = object()

VALID_NAMES = [
    ("len4", "abcd"),
    ("len48", "a" * 48),
    ("upper", "ABCD"),
    ("digits", "0123"),
    ("mixed", "Alice-Laptop_01"),
    ("spaces", "my room 1"),
    ("all-spaces", "    "),
    ("all-punct", "_+-=/ $%#@!?,;()[]"),
    ("punct-48", ("_+-=/ $%#@!?,;()[]" * 3)[:48]),
] + [("punct-%02x" % ord(ch), "ab" + ch + "d") for ch in "_+-=/ $%#@!?,;()[]"]

INVALID_NAMES = [
    ("len3", "abc"),
    ("len49", "a" * 49),
    ("len0", ""),
    ("len1", "a"),
    ("lt", "abc<"),
    ("gt", "ab>cd"),
    ("dot", "ab.cd"),
    ("colon", "ab:cd"),
    ("star", "ab*cd"),
    ("amp", "ab&cd"),
    ("caret", "ab^cd"),
    ("tilde", "ab~cd"),
    ("pipe", "ab|cd"),
    ("backtick", "ab`cd"),
    ("braces", "ab{cd}"),
    ("apostrophe", "ab'cd"),
    ("dquote", 'ab"cd'),
    ("backslash", "ab\\cd"),
    ("tab", "ab\tcd"),
    ("newline", "ab\ncd"),
    ("cr", "abcd\r"),
    ("del", "ab\x7fcd"),
    ("ctrl", "ab\x01cd"),
    ("nul", "ab\x00cd"),
    ("latin1", "abc\u00e9"),
    ("four-nonascii", "\u00e9\u00e9\u00e9\u00e9"),
    ("cjk", "\u540d\u524d\u540d\u524d"),
    ("emoji", "abc\U0001F600"),
    ("nbsp", "ab\u00a0cd"),
    ("len49-punct", "(" * 49),
    ("int", 1234),
    ("float", 12.5),
    ("true", True),
    ("false", False),
    ("null", None),
    ("list", ["abcd"]),
    ("object", {"name": "abcd"}),
    ("missing", MISSING),
]


def with_field(msg, key, value):
    msg = dict(msg)
    if value is MISSING:
        del msg[key]
    else:
        msg[key] = value
    return msg


@pytest.mark.parametrize("value", [v for _, v in VALID_NAMES],
                         ids=[i for i, _ in VALID_NAMES])
@asynctest
async def test_valid_user_name(server, value):
    a, b = await connect_many(server, 2)
    r = await a.request(new_room("valid-user", value))
    assert r["type"] == "ROOM_CREATED", r
    u = r["data"]["room_uuid"]
    # The name comes back byte for byte.
    assert await b.request(join_room(u, "valid-user", "zzzz")) == \
        joined(value, "zzzz")
    assert await a.next_event() == new_member("zzzz")
    assert await b.request(sdp(u, "valid-user", "zzzz", value, "offer",
                               "v=0\r\n")) == SUCCESS
    assert await a.next_event() == sdp_state("offer", "zzzz", "v=0\r\n")
    assert await a.request(leave_room(u, "valid-user", value)) == SUCCESS
    assert await b.next_event() == member_left(value)


@pytest.mark.parametrize("value", [v for _, v in VALID_NAMES],
                         ids=[i for i, _ in VALID_NAMES])
@asynctest
async def test_valid_room_name(server, value):
    a, b, c = await connect_many(server, 3)
    r = await a.request(new_room(value, "alice"))
    assert r["type"] == "ROOM_CREATED", r
    u = r["data"]["room_uuid"]
    assert await b.request(join_room(u, value, "bobby")) == \
        joined("alice", "bobby")
    v = new_uuid()
    assert await c.request(fast_room(v, value, "carol")) == created(v)


@pytest.mark.parametrize("value", [v for _, v in INVALID_NAMES],
                         ids=[i for i, _ in INVALID_NAMES])
@asynctest
async def test_invalid_name_is_invalid_data(server, value):
    """Every name field of every request type refuses the value."""
    owner = await make_room(server, "owner", "other", room_name="name-check")
    u, rn = owner.uuid, owner.name
    fresh = new_uuid()
    cases = [
        ("NEW_ROOM.room_name", new_room(rn, "newbie"), "room_name"),
        ("NEW_ROOM.user_name", new_room(rn, "newbie"), "user_name"),
        ("JOIN_ROOM.room_name", join_room(u, rn, "newbie"), "room_name"),
        ("JOIN_ROOM.user_name", join_room(u, rn, "newbie"), "user_name"),
        ("FAST_ROOM_EXACT.room_name", fast_room(fresh, rn, "newbie"),
         "room_name"),
        ("FAST_ROOM_EXACT.user_name", fast_room(fresh, rn, "newbie"),
         "user_name"),
        ("LEAVE_ROOM.room_name", leave_room(u, rn, "owner"), "room_name"),
        ("LEAVE_ROOM.user_name", leave_room(u, rn, "owner"), "user_name"),
    ] + [("SDP_NEW_STATE." + f, sdp(u, rn, "owner", "other", "offer", "v=0"),
          f) for f in ("room_name", "user_name", "target_user")]
    c = await connect(server)
    wrong = []
    for label, msg, field in cases:
        r = await c.request(with_field(msg, field, value))
        if r != failed(R_INVALID):
            wrong.append("%s=%r -> %r" % (label, value, r))
    # Same from a member of the room (validation comes before membership).
    for label, msg, field in cases[6:]:
        r = await owner["owner"].request(with_field(msg, field, value))
        if r != failed(R_INVALID):
            wrong.append("member %s=%r -> %r" % (label, value, r))
    assert not wrong, "\n".join(wrong)
    # Nothing happened: owner still in the room, other got nothing.
    await owner.quiet()
    assert await owner["owner"].request(
        owner.sdp("owner", "other", "offer", "v=0")) == SUCCESS
    assert await owner["other"].next_event() == sdp_state("offer", "owner",
                                                          "v=0")


@asynctest
async def test_invalid_name_sent_as_raw_utf8(server):
    """Non-ASCII sent unescaped (a client using ensure_ascii=False)."""
    c = await connect(server)
    for name in ("abc\u00e9", "\u540d\u524d\u540d\u524d", "ab\u00a0cd"):
        for msg in (new_room(name, "alice"), new_room("room", name)):
            await c.send_raw(json.dumps(msg, ensure_ascii=False))
            assert await c.reply() == failed(R_INVALID), msg


VALID_UUID = "123e4567-e89b-42d3-a456-426614174000"
INVALID_UUIDS = [
    ("uppercase", VALID_UUID.upper()),
    ("mixed-case", "123e4567-E89B-42d3-a456-426614174000"),
    ("uppercase-digit-variant", "123E4567-E89B-42D3-8456-426614174000"),
    ("v1", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ("v3", "a3bb189e-8bf9-3888-9912-ace4e6543002"),
    ("v5", "886313e1-3b8a-5372-9b90-0c9aee199e5d"),
    ("nil", "00000000-0000-0000-0000-000000000000"),
    ("variant-c", "123e4567-e89b-42d3-c456-426614174000"),
    ("variant-0", "123e4567-e89b-42d3-0456-426614174000"),
    ("variant-7", "123e4567-e89b-42d3-7456-426614174000"),
    ("no-dashes", VALID_UUID.replace("-", "")),
    ("braces", "{" + VALID_UUID + "}"),
    ("urn", "urn:uuid:" + VALID_UUID),
    ("len35", VALID_UUID[:-1]),
    ("len37", VALID_UUID + "0"),
    ("trailing-space", VALID_UUID + " "),
    ("leading-space", " " + VALID_UUID[1:]),
    ("moved-dash", "123e456-7e89b-42d3-a456-426614174000"),
    ("non-hex", "123e4567-e89b-42d3-a456-42661417400g"),
    ("empty", ""),
    ("int", 1234),
    ("null", None),
    ("list", [VALID_UUID]),
    ("object", {"uuid": VALID_UUID}),
    ("missing", MISSING),
]


@pytest.mark.parametrize("value", [v for _, v in INVALID_UUIDS],
                         ids=[i for i, _ in INVALID_UUIDS])
@asynctest
async def test_invalid_room_uuid_is_invalid_data(server, value):
    owner = await make_room(server, "owner", "other", room_name="uuid-check")
    u, rn = owner.uuid, owner.name
    cases = [
        ("JOIN_ROOM", join_room(u, rn, "newbie")),
        ("FAST_ROOM_EXACT", fast_room(u, rn, "newbie")),
        ("LEAVE_ROOM", leave_room(u, rn, "owner")),
        ("SDP_NEW_STATE", sdp(u, rn, "owner", "other", "offer", "v=0")),
    ]
    c = await connect(server)
    wrong = []
    for label, msg in cases:
        r = await c.request(with_field(msg, "room_uuid", value))
        if r != failed(R_INVALID):
            wrong.append("%s room_uuid=%r -> %r" % (label, value, r))
    for label, msg in cases[2:]:
        r = await owner["owner"].request(with_field(msg, "room_uuid", value))
        if r != failed(R_INVALID):
            wrong.append("member %s room_uuid=%r -> %r" % (label, value, r))
    assert not wrong, "\n".join(wrong)
    await owner.quiet()


@asynctest
async def test_uppercase_uuid_of_existing_room_does_not_join(server):
    # Letters everywhere but the version and variant digits, so only the
    # case check can refuse the uppercase form.
    u = "abcdef%s-abcd-4bcd-8bcd-%s" % (new_uuid()[:2], new_uuid()[-12:])
    a, b = await connect_many(server, 2)
    assert await a.request(fast_room(u, "upper-room", "alice")) == created(u)
    assert await b.request(join_room(u.upper(), "upper-room", "bobby")) == \
        failed(R_INVALID)
    assert await b.request(fast_room(u.upper(), "upper-room", "bobby")) == \
        failed(R_INVALID)
    await a.assert_quiet()
    await b.assert_quiet()


REQUIRED_FIELDS = [
    ("NEW_ROOM", new_room("room", "user"), ["room_name", "user_name"]),
    ("JOIN_ROOM", join_room(VALID_UUID, "room", "user"),
     ["room_uuid", "room_name", "user_name"]),
    ("FAST_ROOM_EXACT", fast_room(VALID_UUID, "room", "user"),
     ["room_uuid", "room_name", "user_name"]),
    ("LEAVE_ROOM", leave_room(VALID_UUID, "room", "user"),
     ["room_uuid", "room_name", "user_name"]),
    ("SDP_NEW_STATE", sdp(VALID_UUID, "room", "user", "peer", "offer", "v=0"),
     ["room_uuid", "room_name", "user_name", "target_user", "sdp_type",
      "sdp_data"]),
]


@pytest.mark.parametrize("msg,fields", [(m, f) for _, m, f in REQUIRED_FIELDS],
                         ids=[t for t, _, _ in REQUIRED_FIELDS])
@asynctest
async def test_missing_or_null_field_is_invalid_data(server, msg, fields):
    c = await connect(server)
    wrong = []
    for f in fields:
        for value in (MISSING, None):
            r = await c.request(with_field(msg, f, value))
            if r != failed(R_INVALID):
                wrong.append("%s without %s (%s) -> %r" % (
                    msg["type"], f, "missing" if value is MISSING else "null",
                    r))
    r = await c.request({"type": msg["type"]})
    if r != failed(R_INVALID):
        wrong.append("bare %s -> %r" % (msg["type"], r))
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------------
# Unknown and malformed messages

UNKNOWN = [
    ("unknown-type", {"type": "HELLO"}),
    ("lowercase", dict(new_room("room", "user"), type="new_room")),
    ("trailing-space", dict(new_room("room", "user"), type="NEW_ROOM ")),
    ("empty-type", {"type": ""}),
    ("no-type", {}),
    ("no-type-fields", {"room_name": "room", "user_name": "user"}),
    ("int-type", {"type": 5}),
    ("null-type", {"type": None}),
    ("list-type", {"type": ["NEW_ROOM"]}),
    ("object-type", {"type": {"NEW_ROOM": 1}}),
    ("server-type-sdp-state", {"type": "SDP_STATE"}),
    ("server-type-created", {"type": "ROOM_CREATED"}),
    ("server-type-success", {"type": "SUCCESS"}),
    ("server-type-failed", {"type": "FAILED", "data": {"reason": "x"}}),
]


@pytest.mark.parametrize("msg", [m for _, m in UNKNOWN],
                         ids=[i for i, _ in UNKNOWN])
@asynctest
async def test_unknown_message(server, msg):
    c = await connect(server)
    assert await c.request(msg) == failed(R_UNKNOWN)
    # Still usable.
    r = await c.request(new_room("after-unknown", "alice"))
    assert r["type"] == "ROOM_CREATED", r
    await c.assert_quiet()


NOT_JSON_OBJECTS = [
    ("word", "hello"),
    ("empty", ""),
    ("space", " "),
    ("open-brace", "{"),
    ("truncated", '{"type": "NEW_ROOM", "room_name": "abcd"'),
    ("trailing-garbage", json.dumps(new_room("room", "user")) + "x"),
    ("single-quotes", "{'type': 'NEW_ROOM'}"),
    ("bare-type", "NEW_ROOM"),
    ("array", "[]"),
    ("array-of-request", json.dumps([new_room("room", "user")])),
    ("number", "42"),
    ("string", '"NEW_ROOM"'),
    ("null", "null"),
    ("true", "true"),
]


@pytest.mark.parametrize("text", [t for _, t in NOT_JSON_OBJECTS],
                         ids=[i for i, _ in NOT_JSON_OBJECTS])
@asynctest
async def test_non_json_or_non_object_is_invalid_data(server, text):
    c = await connect(server)
    assert await c.request_raw(text) == failed(R_INVALID)
    r = await c.request(new_room("after-garbage", "alice"))
    assert r["type"] == "ROOM_CREATED", r
    await c.assert_quiet()


@asynctest
async def test_non_json_keeps_connection_usable_in_a_room(server):
    room = await make_room(server, "alice", "bobby", room_name="garbage-room")
    for text in ("garbage", "{", "[1,2", "\u00e9\u00e9", "null"):
        assert await room["alice"].request_raw(text) == failed(R_INVALID)
    await room.quiet()
    assert await room["alice"].request(
        room.sdp("alice", "bobby", "offer", "v=0")) == SUCCESS
    assert await room["bobby"].next_event() == sdp_state("offer", "alice", "v=0")


BAD_SDP = [
    ("offer-object", "offer", {"sdp": "v=0"}),
    ("offer-int", "offer", 5),
    ("offer-list", "offer", ["v=0"]),
    ("offer-bool", "offer", True),
    ("offer-null", "offer", None),
    ("offer-missing", "offer", MISSING),
    ("answer-object", "answer", {}),
    ("answer-float", "answer", 1.5),
    ("answer-null", "answer", None),
    ("candidate-string", "candidate", "candidate:1 1 udp 1 192.0.2.1 1 typ host"),
    ("candidate-list", "candidate", [candidate(1)]),
    ("candidate-int", "candidate", 0),
    ("candidate-null", "candidate", None),
    ("candidate-missing", "candidate", MISSING),
    ("type-pranswer", "pranswer", "v=0"),
    ("type-uppercase", "OFFER", "v=0"),
    ("type-empty", "", "v=0"),
    ("type-int", 1, "v=0"),
    ("type-null", None, "v=0"),
    ("type-missing", MISSING, "v=0"),
]


@pytest.mark.parametrize("sdp_type,sdp_data",
                         [(t, d) for _, t, d in BAD_SDP],
                         ids=[i for i, _, _ in BAD_SDP])
@asynctest
async def test_sdp_with_wrong_type_or_data_is_refused(server, sdp_type,
                                                      sdp_data):
    room = await make_room(server, "alice", "bobby", room_name="bad-sdp")
    msg = with_field(with_field(room.sdp("alice", "bobby", "offer", "x"),
                                "sdp_type", sdp_type), "sdp_data", sdp_data)
    assert await room["alice"].request(msg) == failed(R_INVALID)
    await room.quiet()		# bob got nothing


# ---------------------------------------------------------------------------
# Every FAILED reason, and the order of the checks


@asynctest
async def test_conflict_when_already_in_a_room(server):
    room = await make_room(server, "alice", "bobby", room_name="first-room")
    other = await make_room(server, "olga", room_name="other-room")
    a = room["alice"]
    wrong = []
    for msg in (new_room("second-room", "alice"),
                join_room(other.uuid, "other-room", "alice"),
                fast_room(other.uuid, "other-room", "alice"),
                fast_room(new_uuid(), "third-room", "alice"),
                # Even the room it is in.
                join_room(room.uuid, "first-room", "alice2"),
                fast_room(room.uuid, "first-room", "alice2")):
        r = await a.request(msg)
        if r != failed(R_CONFLICT):
            wrong.append("%r -> %r" % (msg, r))
    assert not wrong, "\n".join(wrong)
    # alice is still (only) in her first room.
    await room.quiet()
    await other.quiet()
    assert await a.request(room.sdp("alice", "bobby", "offer", "v=0")) == SUCCESS
    assert await room["bobby"].next_event() == sdp_state("offer", "alice", "v=0")


@asynctest
async def test_conflict_when_not_in_a_room(server):
    room = await make_room(server, "alice", "bobby", room_name="conf-room")
    c = await connect(server)
    # Valid fields naming a real room and its real members: still Conflict.
    assert await c.request(room.leave("alice")) == failed(R_CONFLICT)
    assert await c.request(room.sdp("alice", "bobby", "offer", "v=0")) == \
        failed(R_CONFLICT)
    assert await c.request(room.sdp("newbie", "bobby", "offer", "v=0")) == \
        failed(R_CONFLICT)
    await room.quiet()
    # And after leaving.
    assert await room["bobby"].request(room.leave("bobby")) == SUCCESS
    assert await room["alice"].next_event() == member_left("bobby")
    assert await room["bobby"].request(room.leave("bobby")) == failed(R_CONFLICT)
    assert await room["bobby"].request(
        room.sdp("bobby", "alice", "offer", "v=0")) == failed(R_CONFLICT)
    await room.quiet()


@asynctest
async def test_one_connection_is_in_at_most_one_room(server):
    r1 = await make_room(server, "alice", "bobby", room_name="room-one")
    r2 = await make_room(server, "carol", room_name="room-two")
    a = r1["alice"]
    assert await a.request(join_room(r2.uuid, "room-two", "alice")) == \
        failed(R_CONFLICT)
    await r2.quiet()		# carol never heard of alice
    # After leaving, the same connection may go elsewhere.
    assert await a.request(r1.leave("alice")) == SUCCESS
    assert await r1["bobby"].next_event() == member_left("alice")
    assert await a.request(join_room(r2.uuid, "room-two", "alice")) == \
        joined("carol", "alice")
    assert await r2["carol"].next_event() == new_member("alice")
    # Leaving room-one's name/uuid now is wrong: alice is in room-two.
    assert await a.request(r1.leave("alice")) == failed(R_BAD_ROOM)
    await r1.quiet()


@asynctest
async def test_invalid_room_name_or_uuid_on_join(server):
    room = await make_room(server, "alice", room_name="Real Room")
    c = await connect(server)
    wrong = []
    for msg in (join_room(new_uuid(), "Real Room", "bobby"),	# no such room
                join_room(room.uuid, "Fake Room", "bobby"),	# name mismatch
                join_room(room.uuid, "real room", "bobby"),	# case matters
                join_room(room.uuid, "Real Room ", "bobby"),
                fast_room(room.uuid, "Fake Room", "bobby")):
        r = await c.request(msg)
        if r != failed(R_BAD_ROOM):
            wrong.append("%r -> %r" % (msg, r))
    assert not wrong, "\n".join(wrong)
    await room.quiet()
    # c is in no room: it can still create one.
    r = await c.request(new_room("own-room", "bobby"))
    assert r["type"] == "ROOM_CREATED", r


@asynctest
async def test_invalid_room_name_or_uuid_on_leave_and_sdp(server):
    room = await make_room(server, "alice", "bobby", room_name="my-room")
    other = await make_room(server, "alice", "bobby", room_name="twin-room")
    a = room["alice"]
    wrong = []
    for msg in (leave_room(other.uuid, "twin-room", "alice"),	# another room
                leave_room(room.uuid, "twin-room", "alice"),	# wrong name
                leave_room(other.uuid, "my-room", "alice"),	# wrong uuid
                leave_room(new_uuid(), "my-room", "alice"),
                sdp(other.uuid, "twin-room", "alice", "bobby", "offer", "v=0"),
                sdp(room.uuid, "twin-room", "alice", "bobby", "offer", "v=0"),
                sdp(new_uuid(), "my-room", "alice", "bobby", "offer", "v=0")):
        r = await a.request(msg)
        if r != failed(R_BAD_ROOM):
            wrong.append("%r -> %r" % (msg, r))
    assert not wrong, "\n".join(wrong)
    await room.quiet()
    await other.quiet()


@asynctest
async def test_user_name_taken(server):
    room = await make_room(server, "alice", "bobby", room_name="taken-room")
    c = await connect(server)
    for msg in (join_room(room.uuid, "taken-room", "alice"),
                join_room(room.uuid, "taken-room", "bobby"),
                fast_room(room.uuid, "taken-room", "alice")):
        assert await c.request(msg) == failed(R_NAME_TAKEN), msg
    await room.quiet()
    # Free again once its holder leaves.
    assert await room["bobby"].request(room.leave("bobby")) == SUCCESS
    assert await room["alice"].next_event() == member_left("bobby")
    assert await c.request(join_room(room.uuid, "taken-room", "bobby")) == \
        joined("alice", "bobby")


@asynctest
async def test_invalid_username(server):
    room = await make_room(server, "alice", "bobby", room_name="user-room")
    other = await make_room(server, "olga", room_name="olga-room")
    a = room["alice"]
    wrong = []
    for msg in (room.leave("nobody"),
                room.leave("olga"),		# a member of another room
                room.sdp("nobody", "bobby", "offer", "v=0"),
                room.sdp("olga", "bobby", "offer", "v=0")):
        r = await a.request(msg)
        if r != failed(R_BAD_USER):
            wrong.append("%r -> %r" % (msg, r))
    assert not wrong, "\n".join(wrong)
    await room.quiet()
    await other.quiet()


@asynctest
async def test_forbidden_to_act_as_another_member(server):
    room = await make_room(server, "alice", "bobby", "carol", room_name="forbid")
    a = room["alice"]
    assert await a.request(room.leave("bobby")) == failed(R_FORBIDDEN)
    assert await a.request(room.sdp("bobby", "carol", "offer", "v=0")) == \
        failed(R_FORBIDDEN)
    assert await a.request(room.sdp("carol", "alice", "answer", "v=0")) == \
        failed(R_FORBIDDEN)
    # bob was not removed and carol/alice got no relayed SDP.
    await room.quiet()
    assert await room["bobby"].request(
        room.sdp("bobby", "carol", "offer", "v=0")) == SUCCESS
    assert await room["carol"].next_event() == sdp_state("offer", "bobby", "v=0")


@asynctest
async def test_not_found_requested_user(server):
    room = await make_room(server, "alice", "bobby", "carol",
                           room_name="target-room")
    other = await make_room(server, "olga", room_name="olga-room")
    assert await room["carol"].request(room.leave("carol")) == SUCCESS
    assert await room["alice"].next_event() == member_left("carol")
    assert await room["bobby"].next_event() == member_left("carol")
    a = room["alice"]
    for target in ("nobody", "olga", "carol"):	# carol has left
        for t, d in (("offer", "v=0"), ("candidate", candidate(1))):
            assert await a.request(room.sdp("alice", target, t, d)) == \
                failed(R_NO_TARGET), (target, t)
    await room.quiet()
    await other.quiet()


ORDER_CASES = [
    # (label, sender, message builder(room, other), expected reason)
    ("leave: invalid data before conflict", "outsider",
     lambda r, o: leave_room(r.uuid, r.name, "x"), R_INVALID),
    ("sdp: invalid data before conflict", "outsider",
     lambda r, o: sdp(r.uuid, r.name, "alice", "bobby", "offer", 5), R_INVALID),
    ("leave: conflict before invalid room", "outsider",
     lambda r, o: leave_room(new_uuid(), "no-room", "ghost"), R_CONFLICT),
    ("sdp: conflict before invalid room", "outsider",
     lambda r, o: sdp(new_uuid(), "no-room", "ghost", "ghost2", "offer", "v=0"),
     R_CONFLICT),
    ("join: invalid data before conflict", "alice",
     lambda r, o: join_room(o.uuid, o.name, "x"), R_INVALID),
    ("join: conflict before invalid room", "alice",
     lambda r, o: join_room(new_uuid(), "no-room", "alice"), R_CONFLICT),
    ("fast: conflict before create", "alice",
     lambda r, o: fast_room(new_uuid(), "no-room", "alice"), R_CONFLICT),
    ("join: invalid room before name taken", "outsider",
     lambda r, o: join_room(r.uuid, "wrong-name", "alice"), R_BAD_ROOM),
    ("fast: invalid room before name taken", "outsider",
     lambda r, o: fast_room(r.uuid, "wrong-name", "alice"), R_BAD_ROOM),
    ("leave: invalid room before invalid username", "alice",
     lambda r, o: leave_room(o.uuid, o.name, "nobody"), R_BAD_ROOM),
    ("sdp: invalid room before forbidden", "alice",
     lambda r, o: sdp(new_uuid(), r.name, "bobby", "alice", "offer", "v=0"),
     R_BAD_ROOM),
    ("sdp: invalid username before not found", "alice",
     lambda r, o: sdp(r.uuid, r.name, "nobody", "nobody2", "offer", "v=0"),
     R_BAD_USER),
    ("sdp: forbidden before not found", "alice",
     lambda r, o: sdp(r.uuid, r.name, "bobby", "nobody", "offer", "v=0"),
     R_FORBIDDEN),
    ("leave: invalid username (other room's member) not forbidden", "alice",
     lambda r, o: leave_room(r.uuid, r.name, "olga"), R_BAD_USER),
]


@pytest.mark.parametrize("sender,build,reason",
                         [(s, b, x) for _, s, b, x in ORDER_CASES],
                         ids=[i for i, _, _, _ in ORDER_CASES])
@asynctest
async def test_check_order(server, sender, build, reason):
    room = await make_room(server, "alice", "bobby", room_name="order-room")
    other = await make_room(server, "olga", room_name="olga-room")
    outsider = await connect(server)
    c = outsider if sender == "outsider" else room[sender]
    msg = build(room, other)
    assert await c.request(msg) == failed(reason), msg
    await room.quiet()
    await other.quiet()
    await outsider.assert_quiet()


@asynctest
async def test_failed_to_transfer_offer_when_target_does_not_read(
        server_factory):
    """A target that stops reading: the relay must fail, not buffer forever.

    The target is a raw WebSocket client with a tiny receive buffer that never
    reads after joining; the sender pushes large offers until the server's
    queue towards the target is full and it answers "Failed to transfer offer".
    """
    srv = server_factory("--rate", "1000000", "--burst", "1000000")
    a = await connect(srv)
    r = await a.request(new_room("slow-room", "alice"))
    assert r["type"] == "ROOM_CREATED", r
    u = r["data"]["room_uuid"]
    raw = await asyncio.to_thread(RawWS.connect, srv.host, srv.port,
                                  rcvbuf=4096)
    try:
        await asyncio.to_thread(raw.send_json,
                                join_room(u, "slow-room", "slowpoke"))
        assert await asyncio.to_thread(raw.recv_json) == \
            joined("alice", "slowpoke")
        assert await a.next_event() == new_member("slowpoke")
        # Incompressible, just under the default 64 KiB message limit.
        blob = base64.b64encode(os.urandom(45000)).decode()
        limit_bytes = 512 * 1024 * 1024
        sent, i = 0, 0
        while True:
            r = await a.request(sdp(u, "slow-room", "alice", "slowpoke",
                                    "offer", "%d:%s" % (i, blob)), timeout=60)
            if r != SUCCESS:
                break
            sent += len(blob)
            i += 1
            assert sent < limit_bytes, \
                "%d offers (%d MB) to a target that never reads were all " \
                "accepted: the queue towards it is unbounded" % (i, sent >> 20)
        assert r == failed(R_RELAY), "after %d offers: %r" % (i, r)
        assert i >= 1
        # The sender's connection is unharmed.  (Whether the server also
        # drops the slow target is its choice.)
        extra = await a.sync()
        assert extra in ([], [member_left("slowpoke")]), extra
        r = await a.request(new_room("another", "alice"))
        assert r == failed(R_CONFLICT), r
    finally:
        raw.close()


# ---------------------------------------------------------------------------
# Leaving by disconnecting; empty rooms


@pytest.mark.parametrize("how", ["close", "abort"])
@asynctest
async def test_disconnect_counts_as_leave(server, how):
    room = await make_room(server, "alice", "bobby", "carol", room_name="dc-room")
    b = room["bobby"]
    if how == "close":
        await b.close()
    else:
        b.ws.transport.abort()		# TCP reset, no close frame
    assert await room["alice"].next_event() == member_left("bobby")
    assert await room["carol"].next_event() == member_left("bobby")
    for name in ("alice", "carol"):
        await room[name].assert_quiet()
    # bob's name is free again.
    d = await connect(server)
    assert await d.request(join_room(room.uuid, "dc-room", "bobby")) == \
        joined("alice", "carol", "bobby")
    assert await room["alice"].request(
        room.sdp("alice", "bobby", "offer", "v=0")) == SUCCESS
    assert await d.next_event() == sdp_state("offer", "alice", "v=0")


@pytest.mark.parametrize("how", ["leave", "close", "abort"])
@asynctest
async def test_empty_room_is_deleted(server, how):
    room = await make_room(server, "alice", "bobby", room_name="doomed")
    assert await room["bobby"].request(room.leave("bobby")) == SUCCESS
    assert await room["alice"].next_event() == member_left("bobby")
    a = room["alice"]
    if how == "leave":
        assert await a.request(room.leave("alice")) == SUCCESS
        await a.assert_quiet()
    elif how == "close":
        await a.close()
    else:
        a.ws.transport.abort()
    # The room is gone: joining it fails.  A disconnect is processed
    # asynchronously, so allow the server a moment (polled, bounded).
    c = await connect(server)
    for _ in range(200):
        r = await c.request(join_room(room.uuid, "doomed", "carol"))
        if r == failed(R_BAD_ROOM) or how == "leave":
            break
        # Still there (close not yet processed): undo and retry.
        assert r == joined("alice", "carol"), r
        assert await c.request(room.leave("carol")) == SUCCESS
        await asyncio.sleep(0.05)
    assert r == failed(R_BAD_ROOM)
    # Its UUID is free: FAST_ROOM_EXACT makes a new room, under any name.
    assert await c.request(fast_room(room.uuid, "reborn", "carol")) == \
        created(room.uuid)
    d = await connect(server)
    assert await d.request(join_room(room.uuid, "doomed", "dave")) == \
        failed(R_BAD_ROOM)
    assert await d.request(join_room(room.uuid, "reborn", "dave")) == \
        joined("carol", "dave")


# ---------------------------------------------------------------------------
# Size and rate limits


def sized_offer(room, total, sender="alice", target="bobby"):
    """An SDP_NEW_STATE whose JSON text is exactly `total` bytes."""
    msg = room.sdp(sender, target, "offer", "")
    pad = total - len(json.dumps(msg).encode())
    assert pad >= 0
    msg["sdp_data"] = "v" * pad
    assert len(json.dumps(msg).encode()) == total
    return msg


HUGE = [
    ("compressible-1MiB", lambda: "v=0\r\n" + "a" * (1 << 20)),
    ("incompressible-1MiB",
     lambda: base64.b64encode(os.urandom(3 << 18)).decode()),
    ("compressible-16MiB", lambda: "b" * (16 << 20)),
    ("just-over-64KiB", lambda: "c" * 65537),
]


@pytest.mark.parametrize("make", [m for _, m in HUGE],
                         ids=[i for i, _ in HUGE])
@asynctest
async def test_message_too_large_then_connection_still_works(server, make):
    room = await make_room(server, "alice", "bobby", room_name="huge-room")
    msg = json.dumps(room.sdp("alice", "bobby", "offer", make()))
    assert len(msg) > 65536
    assert await room["alice"].request_raw(msg, timeout=60) == \
        failed(R_TOO_LARGE)
    # Exactly one reply, nothing relayed.
    await room.quiet()
    assert await room["alice"].request(
        room.sdp("alice", "bobby", "offer", "v=0")) == SUCCESS
    assert await room["bobby"].next_event() == sdp_state("offer", "alice", "v=0")


@asynctest
async def test_message_too_large_when_fragmented(server):
    room = await make_room(server, "alice", "bobby", room_name="frag-room")
    msg = json.dumps(room.sdp("alice", "bobby", "offer", "d" * 100000))
    parts = [msg[i:i + 8192] for i in range(0, len(msg), 8192)]
    await room["alice"].send_raw(parts)		# one message, many frames
    assert await room["alice"].reply(timeout=60) == failed(R_TOO_LARGE)
    await room.quiet()
    # A fragmented message under the limit is fine.
    msg = json.dumps(room.sdp("alice", "bobby", "offer", "e" * 20000))
    await room["alice"].send_raw([msg[i:i + 4096]
                                  for i in range(0, len(msg), 4096)])
    assert await room["alice"].reply() == SUCCESS
    assert await room["bobby"].next_event() == \
        sdp_state("offer", "alice", "e" * 20000)


@asynctest
async def test_max_message_boundary(server_factory):
    srv = server_factory("--max-message", "2048")
    room = await make_room(srv, "alice", "bobby", room_name="edge-room")
    at = sized_offer(room, 2048)
    assert await room["alice"].request(at) == SUCCESS
    assert await room["bobby"].next_event() == \
        sdp_state("offer", "alice", at["sdp_data"])
    over = sized_offer(room, 2049)
    assert await room["alice"].request(over) == failed(R_TOO_LARGE)
    await room.quiet()
    # The limit counts bytes, not characters (two-byte characters here).
    msg = room.sdp("alice", "bobby", "offer", "\u00e9" * 900)
    assert len(json.dumps(msg, ensure_ascii=False).encode()) < 2048
    assert await room["alice"].request_raw(
        json.dumps(msg, ensure_ascii=False)) == SUCCESS
    assert await room["bobby"].next_event() == \
        sdp_state("offer", "alice", "\u00e9" * 900)
    msg = room.sdp("alice", "bobby", "offer", "\u00e9" * 1100)
    assert len(json.dumps(msg, ensure_ascii=False)) < 2048 < \
        len(json.dumps(msg, ensure_ascii=False).encode())
    assert await room["alice"].request_raw(
        json.dumps(msg, ensure_ascii=False)) == failed(R_TOO_LARGE)
    await room.quiet()


@asynctest
async def test_rate_limit_flood(server_factory):
    """500 requests back to back at --rate 20 --burst 20.

    Every request gets exactly one reply; some are "Rate limit exceeded";
    refused offers are not relayed, accepted ones are, in order; the
    connection stays open; a well-behaved client meanwhile gets every reply.
    """
    srv = server_factory("--rate", "20", "--burst", "20")
    n = 500
    room = await make_room(srv, "alice", "bobby", room_name="flood-room")
    carol = await connect(srv)
    a, b = room["alice"], room["bobby"]
    halfway = asyncio.Event()

    async def flood():
        for i in range(n):
            await a.send(room.sdp("alice", "bobby", "offer", "seq-%d" % i))
            if i == n // 5:
                halfway.set()

    async def collect():
        return [await a.reply(timeout=60) for _ in range(n)]

    async def polite():
        await halfway.wait()
        got = []
        for i in range(8):
            r = await carol.request(new_room("polite-%d" % i, "carol"))
            assert r["type"] == "ROOM_CREATED", (i, r)
            got.append(await carol.request(leave_room(
                r["data"]["room_uuid"], "polite-%d" % i, "carol")))
            await asyncio.sleep(0.1)	# pacing: well under 20/s
        return got

    _, replies, polite_replies = await asyncio.gather(flood(), collect(),
                                                      polite())
    assert polite_replies == [SUCCESS] * 8
    ok = [i for i, r in enumerate(replies) if r == SUCCESS]
    limited = [i for i, r in enumerate(replies) if r == failed(R_RATE)]
    other = [(i, r) for i, r in enumerate(replies)
             if r not in (SUCCESS, failed(R_RATE))]
    assert not other, other[:5]
    assert len(ok) + len(limited) == n
    assert limited, "no request of %d was rate limited" % n
    # alice spent one token on NEW_ROOM; the rest of the burst is hers.
    assert ok[:19] == list(range(19)), ok[:25]
    # bob got exactly the accepted offers, in order.
    relayed = [await b.next_event(timeout=60) for _ in ok]
    assert relayed == [sdp_state("offer", "alice", "seq-%d" % i) for i in ok]
    await b.assert_quiet()
    # Still connected, and served again once tokens come back (polled).
    for _ in range(400):
        r = await a.request(room.sdp("alice", "bobby", "offer", "after"))
        if r == SUCCESS:
            break
        assert r == failed(R_RATE), r
        await asyncio.sleep(0.05)
    assert r == SUCCESS
    assert await b.next_event() == sdp_state("offer", "alice", "after")
    # No reply was left over (an extra one would be pending before the
    # barrier's).  Pause first so the barrier itself is within the rate:
    # 0.5 s refills 10 tokens at 20/s, however slow the machine.
    await asyncio.sleep(0.5)
    await a.assert_quiet()
    await b.assert_quiet()


@asynctest
async def test_max_members(server_factory):
    srv = server_factory("--max-members", "2")
    room = await make_room(srv, "alice", "bobby", room_name="small-room")
    c = await connect(srv)
    assert await c.request(join_room(room.uuid, "small-room", "carol")) == \
        failed(R_ROOM_FULL)
    assert await c.request(fast_room(room.uuid, "small-room", "carol")) == \
        failed(R_ROOM_FULL)
    # A taken name is reported before fullness.
    assert await c.request(join_room(room.uuid, "small-room", "bobby")) == \
        failed(R_NAME_TAKEN)
    await room.quiet()
    assert await room["bobby"].request(room.leave("bobby")) == SUCCESS
    assert await room["alice"].next_event() == member_left("bobby")
    assert await c.request(join_room(room.uuid, "small-room", "carol")) == \
        joined("alice", "carol")
    assert await room["alice"].next_event() == new_member("carol")


@asynctest
async def test_max_rooms(server_factory):
    srv = server_factory("--max-rooms", "1")
    a, b, c = await connect_many(srv, 3)
    r = await a.request(new_room("only-room", "alice"))
    assert r["type"] == "ROOM_CREATED", r
    u = r["data"]["room_uuid"]
    assert await b.request(new_room("second-room", "bobby")) == \
        failed(R_TOO_MANY_ROOMS)
    assert await b.request(fast_room(new_uuid(), "second-room", "bobby")) == \
        failed(R_TOO_MANY_ROOMS)
    # Joining the existing room is not creating one.
    assert await b.request(fast_room(u, "only-room", "bobby")) == \
        joined("alice", "bobby")
    assert await a.next_event() == new_member("bobby")
    assert await c.request(join_room(u, "only-room", "carol")) == \
        joined("alice", "bobby", "carol")
    # Once the room is gone, a new one may be made.
    for x, name in ((a, "alice"), (b, "bobby"), (c, "carol")):
        await x.sync()
        assert await x.request(leave_room(u, "only-room", name)) == SUCCESS
    r = await c.request(new_room("next-room", "carol"))
    assert r["type"] == "ROOM_CREATED", r


# ---------------------------------------------------------------------------
# HTTP, timeouts, shutdown, certificates


@pytest.mark.parametrize("path,status", [("/", 204), ("/healthz", 200)])
def test_http_probe(server, path, status):
    conn = http.client.HTTPSConnection(server.host, server.port, timeout=20,
                                       context=unverified_context())
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == status, (resp.status, resp.reason, body[:200])
        if status == 204:
            assert body == b""
    finally:
        conn.close()


HANDSHAKE_STALLS = ["tcp-silent", "tls-no-request", "partial-http-request"]


@pytest.mark.parametrize("stall", HANDSHAKE_STALLS)
@asynctest
async def test_handshake_timeout(server_factory, stall):
    srv = server_factory("--handshake-timeout", "2")
    # A client connected before the stalled one, so it has been connected
    # longer than the timeout by the time that one is dropped.
    early = await connect(srv)
    assert (await early.request(new_room("early-room", "alice")))["type"] == \
        "ROOM_CREATED"

    def stalled():
        s = socket.create_connection((srv.host, srv.port), timeout=30)
        try:
            if stall != "tcp-silent":
                s = unverified_context().wrap_socket(s)
            if stall == "partial-http-request":
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            return wait_eof(s, 60)
        finally:
            s.close()

    assert await asyncio.to_thread(stalled), \
        "a %s client was not disconnected within 60 s (--handshake-timeout" \
        " 2)" % stall
    # The established client is unaffected.
    await early.assert_quiet()
    r = await early.request(new_room("again", "alice"))
    assert r == failed(R_CONFLICT), r
    late = await connect(srv)
    assert (await late.request(new_room("late-room", "bobby")))["type"] == \
        "ROOM_CREATED"


@asynctest
async def test_idle_timeout_drops_client_that_never_pongs(server_factory):
    # 3 s, not 1: under load (ctest -j2 beside the WebRTC and NAT suites)
    # alice's library must still have time to answer the pings.
    srv = server_factory("--idle-timeout", "3")
    room = await make_room(srv, "alice", room_name="idle-room")
    raw = await asyncio.to_thread(RawWS.connect, srv.host, srv.port)

    def silent_member():
        raw.send_json(join_room(room.uuid, "idle-room", "mute"))
        first = raw.recv_json()
        pings = 0
        try:
            while True:
                op, _ = raw.recv_frame(timeout=60)
                if op == RawWS.OP_PING:
                    pings += 1		# and never answer it
        except EOFError:
            return first, pings, True
        except (ConnectionError, ssl.SSLError):
            return first, pings, True
        except OSError:		# timeout
            return first, pings, False

    try:
        first, pings, dropped = await asyncio.to_thread(silent_member)
    finally:
        raw.close()
    assert first == joined("alice", "mute")
    assert dropped, "a client that never answers pings was not dropped"
    assert pings >= 1, "dropped without being pinged first"
    assert await room["alice"].next_event() == new_member("mute")
    assert await room["alice"].next_event() == member_left("mute")
    # alice was just as idle, but her library answered the pings.
    await room["alice"].assert_quiet()
    assert await room["alice"].request(room.leave("alice")) == SUCCESS


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
@asynctest
async def test_graceful_shutdown(server_factory, sig):
    srv = server_factory()
    room = await make_room(srv, "alice", "bobby", room_name="last-room")
    idle = await connect(srv)
    srv.stopped_by_test = True
    srv.send_signal(sig)
    for c in (room["alice"], room["bobby"], idle):
        await c.wait_closed(timeout=30)
    rc = await asyncio.to_thread(srv.wait, 30)
    assert rc == 0, "exit %r after %s:\n%s" % (rc, sig.name, srv.log_tail())
    srv.check_clean_exit(rc)
    # Closed with a close frame (1000/1001), not just a dropped TCP stream.
    codes = [c.ws.close_code for c in (room["alice"], room["bobby"], idle)]
    assert all(code in (1000, 1001) for code in codes), codes


def _peer_cert_der(srv):
    with socket.create_connection((srv.host, srv.port), timeout=20) as s:
        with unverified_context().wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def test_self_signed_certificate_generated_and_reused(server_factory,
                                                       tmp_path):
    state = tmp_path / "fresh-state"
    state.mkdir()
    first = server_factory(state_dir=str(state))
    assert "self-signed" in first.log().lower(), first.log_tail()
    der1 = _peer_cert_der(first)
    files = sorted(p.name for p in state.iterdir())
    assert files, "nothing written to --state-dir"
    keys = [p for p in state.iterdir() if p.is_file()
            and b"PRIVATE KEY" in p.read_bytes()]
    assert keys, "no private key in --state-dir: %r" % files
    for k in keys:
        mode = stat.S_IMODE(k.stat().st_mode)
        assert mode & 0o077 == 0, "%s is mode %o" % (k.name, mode)
    rc = first.stop()
    first.stopped_by_test = True
    first.check_clean_exit(rc)
    second = server_factory(state_dir=str(state))
    assert _peer_cert_der(second) == der1, \
        "restart with the same --state-dir served a different certificate"


def test_cert_and_key_options(server_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
         str(cert), "-days", "2", "-subj", "/CN=peerpipe-test"],
        check=True, capture_output=True)
    os.chmod(key, 0o600)
    state = tmp_path / "state-unused"
    state.mkdir()
    srv = server_factory("--cert", str(cert), "--key", str(key),
                         state_dir=str(state))
    assert _peer_cert_der(srv) == ssl.PEM_cert_to_DER_cert(cert.read_text())

    async def works():
        c = await connect(srv)
        r = await c.request(new_room("own-cert", "alice"))
        assert r["type"] == "ROOM_CREATED", r
    run(works())


def test_json_log_format(server_factory):
    srv = server_factory("--log-format", "json")

    async def traffic():
        c = await connect(srv)
        await c.request(new_room("json-log", "alice"))
        await c.request_raw("garbage")
    run(traffic())
    rc = srv.stop()
    srv.stopped_by_test = True
    srv.check_clean_exit(rc)
    lines = [l for l in srv.log().splitlines() if l.strip()]
    assert lines
    bad = []
    for l in lines:
        try:
            if not isinstance(json.loads(l), dict):
                bad.append(l)
        except ValueError:
            bad.append(l)
    assert not bad, "non-JSON log lines:\n" + "\n".join(bad[:10])


@asynctest
async def test_max_clients(server_factory):
    srv = server_factory("--max-clients", "2")
    a, b = await connect_many(srv, 2)
    for c, name in ((a, "alice"), (b, "bobby")):
        assert (await c.request(new_room("full-house", name)))["type"] == \
            "ROOM_CREATED"

    async def third_is_refused():
        try:
            c = await connect(srv)
            r = await c.request(new_room("one-too-many", "carol"))
        except (websockets.exceptions.InvalidHandshake,
                websockets.exceptions.ConnectionClosed, OSError,
                asyncio.TimeoutError):
            return True
        return "third client was served: %r" % r

    assert await third_is_refused() is True
    # A slot frees up when a client leaves (polled, bounded).
    await a.close()
    r = None
    for _ in range(200):
        try:
            d = await connect(srv)
            r = await d.request(new_room("next-in", "dave"))
            break
        except (websockets.exceptions.InvalidHandshake,
                websockets.exceptions.ConnectionClosed, OSError):
            await asyncio.sleep(0.05)
    assert r["type"] == "ROOM_CREATED", r


# ---------------------------------------------------------------------------
# Concurrency


@asynctest
async def test_fifty_clients_in_twenty_five_rooms(server):
    n_rooms = 25
    clients = await connect_many(server, 2 * n_rooms)

    async def pair(i):
        a, b = clients[2 * i], clients[2 * i + 1]
        u, rn = new_uuid(), "conc-room-%02d" % i
        # Half the rooms have the creator's name larger, so the joiner
        # offers (the smaller name offers, by the v1 glare rule).
        an, bn = ("peer-%02d-a" % i, "peer-%02d-b" % i)
        if i % 2:
            an, bn = bn, an
        assert await a.request(fast_room(u, rn, an)) == created(u)
        assert await b.request(fast_room(u, rn, bn)) == joined(an, bn)
        assert await a.next_event() == new_member(bn)
        (off, offn), (ans, ansn) = sorted([(a, an), (b, bn)],
                                          key=lambda x: x[1].encode())
        offer = offer_sdp("r%02d" % i)
        answer = offer.replace("actpass", "active")
        assert await off.request(sdp(u, rn, offn, ansn, "offer", offer)) == \
            SUCCESS
        assert await ans.next_event() == sdp_state("offer", offn, offer)
        assert await ans.request(sdp(u, rn, ansn, offn, "answer", answer)) == \
            SUCCESS
        assert await off.next_event() == sdp_state("answer", ansn, answer)

        async def trickle(src, sn, dn):
            for k in range(4):
                assert await src.request(sdp(u, rn, sn, dn, "candidate",
                                             candidate(100 * i + k))) == \
                    SUCCESS
        await asyncio.gather(trickle(off, offn, ansn), trickle(ans, ansn, offn))
        for dst, sn in ((ans, offn), (off, ansn)):
            for k in range(4):
                ev = await dst.next_event()
                want = candidate(100 * i + k)
                assert ev == sdp_state("candidate", sn, want), (i, k, ev)
        await off.assert_quiet()
        await ans.assert_quiet()
        return i

    done = await asyncio.gather(*(pair(i) for i in range(n_rooms)))
    assert sorted(done) == list(range(n_rooms))
    await close_all(*clients)


# ---------------------------------------------------------------------------
# Robustness against malformed WebSocket traffic, and the command line


def _first_frames(raw, stop_on_close=True):
    """Frames the server sends in reaction, up to a close, EOF or silence."""
    out = []
    try:
        while True:
            op, payload = raw.recv_frame(timeout=5)
            out.append((op, payload))
            if op == RawWS.OP_CLOSE and stop_on_close:
                break
            if op == RawWS.OP_TEXT:
                break
    except EOFError:
        out.append("EOF")
    except (ConnectionError, ssl.SSLError):
        out.append("EOF")
    except OSError:
        out.append("silence")
    return out


def _close_code(frames):
    for f in frames:
        if f != "EOF" and f != "silence" and f[0] == RawWS.OP_CLOSE:
            return int.from_bytes(f[1][:2], "big") if len(f[1]) >= 2 else None
    return None


def _text(s):
    return (RawWS.OP_TEXT, json.dumps(s, separators=(",", ":")).encode())


def _protocol_failure(code):
    """The server failed the connection: a close frame with `code`, or it
    just dropped the TCP stream.  Never a text reply."""
    def check(frames):
        assert not any(f not in ("EOF", "silence") and f[0] == RawWS.OP_TEXT
                       for f in frames), frames
        assert _close_code(frames) == code or frames == ["EOF"], frames
    return check


BAD_FRAMES = [
    ("invalid-utf8-text",
     lambda r: r.send_frame(RawWS.OP_TEXT, b'{"type":"\xff\xfe"}'),
     _protocol_failure(1007)),
    ("orphan-continuation",
     lambda r: r.send_frame(RawWS.OP_CONT, b"xx"), _protocol_failure(1002)),
    ("text-during-fragmented-message",
     lambda r: (r.send_frame(RawWS.OP_TEXT, b'{"type"', fin=False),
                r.send_frame(RawWS.OP_TEXT, b':"x"}')),
     _protocol_failure(1002)),
    ("reserved-bits",
     lambda r: r.sock.sendall(bytes([0xF1, 0x80]) + b"\0\0\0\0"),
     _protocol_failure(1002)),
    ("reserved-opcode",
     lambda r: r.send_frame(3, b"x"), _protocol_failure(1002)),
    ("control-frame-over-125-bytes",
     lambda r: r.send_frame(RawWS.OP_PING, b"x" * 200),
     _protocol_failure(1002)),
    ("client-ping-gets-pong",
     lambda r: r.send_frame(RawWS.OP_PING, b"hi"),
     lambda frames: frames[:1] == [(RawWS.OP_PONG, b"hi")] or
     pytest.fail("no pong: %r" % frames)),
    ("client-close-is-echoed",
     lambda r: r.send_frame(RawWS.OP_CLOSE, (1000).to_bytes(2, "big")),
     lambda frames: _close_code(frames) == 1000 or
     pytest.fail("close not echoed: %r" % frames)),
    ("binary-frame-is-refused",
     lambda r: r.send_frame(RawWS.OP_BIN, json.dumps(
         new_room("binary-room", "alice")).encode()),
     lambda frames: frames[:1] == [_text(failed(R_INVALID))] or
     _close_code(frames) == 1003 or pytest.fail("binary: %r" % frames)),
    ("utf8-split-across-fragments",
     lambda r: (r.send_frame(RawWS.OP_TEXT,
                             '{"type":"X","y":"\u00e9'.encode()[:-1],
                             fin=False),
                r.send_frame(RawWS.OP_CONT, '\u00e9"}'.encode()[1:])),
     lambda frames: frames[:1] == [_text(failed(R_UNKNOWN))] or
     pytest.fail("fragmented message: %r" % frames)),
    ("deeply-nested-json",
     lambda r: r.send_frame(RawWS.OP_TEXT, b"[" * 60000),
     lambda frames: frames[:1] == [_text(failed(R_INVALID))] or
     pytest.fail("nested: %r" % frames)),
    ("deeply-nested-candidate",
     lambda r: r.send_frame(RawWS.OP_TEXT, (
         '{"type":"SDP_NEW_STATE","room_uuid":"%s","room_name":"abcd",'
         '"user_name":"abcd","target_user":"efgh","sdp_type":"candidate",'
         '"sdp_data":%s1%s}' % (VALID_UUID, '{"a":' * 8000, "}" * 8000)
     ).encode()),
     lambda frames: frames[:1] == [_text(failed(R_INVALID))] or
     pytest.fail("nested: %r" % frames)),
]


@pytest.mark.parametrize("send,check", [(s, c) for _, s, c in BAD_FRAMES],
                         ids=[i for i, _, _ in BAD_FRAMES])
def test_malformed_websocket_traffic(server, send, check):
    raw = RawWS.connect(server.host, server.port)
    try:
        send(raw)
        check(_first_frames(raw))
    finally:
        raw.close()

    async def still_serving():
        c = await connect(server)
        r = await c.request(new_room("after-bad-frame", "alice"))
        assert r["type"] == "ROOM_CREATED", r
    run(still_serving())


BAD_ARGS = [
    ("--rate", "abc"),
    ("--rate", "0"),
    ("--burst", "-1"),
    ("--max-message", "lots"),
    ("--max-members", "x"),
    ("--handshake-timeout", "soon"),
    ("--listen", "nonsense"),
    ("--listen", "127.0.0.1:70000"),
    ("--log-level", "loud"),
    ("--log-format", "xml"),
    ("--cert",),
    ("--bogus-option",),
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=[" ".join(a) for a in BAD_ARGS])
def test_bad_command_line_is_refused(server_factory, tmp_path, args):
    srv = server_factory("--listen", "127.0.0.1:0", *args, listen=None,
                         wait=False)
    srv.stopped_by_test = True
    rc = srv.wait(30)
    assert rc is not None and rc != 0, \
        "peerpipe-server %s: exit %r\n%s" % (" ".join(args), rc,
                                             srv.log_tail())
    # The message names what is wrong.
    name = args[0]
    assert name.lstrip("-") in srv.log(), srv.log_tail()
    assert srv.sanitizer_report() is None, srv.sanitizer_report()


@pytest.mark.parametrize("problem", ["key-readable-by-others", "missing-key"])
def test_bad_key_file_is_refused(server_factory, tmp_path, problem):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
         str(cert), "-days", "2", "-subj", "/CN=peerpipe-test"],
        check=True, capture_output=True)
    if problem == "key-readable-by-others":
        os.chmod(key, 0o644)
    else:
        key = tmp_path / "no-such-key.pem"
    srv = server_factory("--cert", str(cert), "--key", str(key), wait=False)
    srv.stopped_by_test = True
    rc = srv.wait(30)
    assert rc is not None and rc != 0, "exit %r:\n%s" % (rc, srv.log_tail())
    assert str(key.name) in srv.log(), srv.log_tail()
    assert "listening on" not in srv.log(), srv.log_tail()


def test_port_in_use_is_an_error(tmp_path, shared_state_dir):
    """A taken port must not look like a running server (lws on a foreign
    loop only signals it by making no vhost)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        srv = start_server(listen="127.0.0.1:%d" % port, wait=False,
                           state_dir=shared_state_dir, tmpdir=str(tmp_path))
        rc = srv.wait(30)
        assert rc == 1, srv.log_tail()
        assert "cannot listen on 127.0.0.1:%d" % port in srv.log()
        assert "listening on" not in srv.log()
