"""Real attack tools, and a corpus of clean traffic, through the tunnel into
a gateway whose inline IPS runs all of ET Open (../shared/data/et-open).

One gateway (Suricata with ET Open takes a while to load) serves the whole
module: an HTTP service that writes an access log of every request line it
receives (with the connection's client port), a PostgreSQL-speaking service
and a DNS server (UDP), all on loopback.  A well-behaved client agent,
`laptop-good`, stays connected throughout.

- Attack tools from Debian (sqlmap, nmap NSE scripts, dirb), each run from
  its own client agent against that agent's local listener (127.0.1.N:P),
  which forwards through the tunnel to the HTTP service: the tool is
  detected (alert in the gateway's security.json), the first detected
  request never reaches the service's access log, the connection is cut and
  the peer banned, and `laptop-good` keeps working before, during and after.
  The eve alert -> cut time is printed (bench/ips.sh measures it properly).
- Clean traffic (tests/data/clean/: HTTP requests like browsers, curl and
  API clients send, a psql-like PostgreSQL session, DNS queries) cuts
  nobody: no cut or ban event, every request answered as expected.

Root only (netfilter, NFQUEUE); skipped without root, Suricata or the ET
Open snapshot; each tool's test is skipped when the tool is not installed
(scripts/install-deps.sh ips).  Tools only ever target the loopback listener
of their own client agent.
"""

import datetime
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from agents import AgentProcess, TcpService, agent_bin, new_room, write_config
from test_v1peer_selfcheck import ROOM_NAME

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLEAN = os.path.join(REPO, "tests", "data", "clean")
ET_OPEN = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "et-open"))
GW = "gw-et-open"
WEB_PORT, PG_PORT, DNS_PORT = 28280, 25432, 20053

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netfilter)"),
    pytest.mark.skipif(shutil.which("suricata") is None,
                       reason="needs Suricata 7 (scripts/install-deps.sh ips)"),
    pytest.mark.skipif(not os.path.isfile(os.path.join(ET_OPEN,
                                                       "classification.config")),
                       reason="no ET Open snapshot at ../shared/data/et-open"),
]


# ---- the protected services ----

KNOWN_PATHS = ("/api/", "/healthz", "/static/", "/favicon.ico", "/reports/",
               "/files/", "/feed.xml", "/robots.txt", "/metrics", "/docs/",
               "/wiki/", "/item", "/download", "/dashboard", "/index.html")


class AccessLogHttp:
    """HTTP/1.1 with keep-alive.  Every request line is logged the moment
    it arrives, with the client port of its connection (the gateway's
    socket: the eve alert's src_port), before the headers are read; the
    headers and body are added when complete."""

    def __init__(self, host="127.0.0.1"):
        self.log = []	# dicts: port, line, headers (lower-case), body
        self.lock = threading.Lock()
        self.svc = TcpService(self.handle, host=host)
        self.port = self.svc.port

    def entries(self):
        with self.lock:
            return list(self.log)

    def handle(self, conn):
        port = conn.getpeername()[1]
        f = conn.makefile("rb")
        while True:
            line = f.readline(65536)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            entry = {"port": port, "line": line.rstrip(b"\r\n"), "headers": {},
                     "body": b""}
            with self.lock:
                self.log.append(entry)
            head = []
            while True:
                h = f.readline(65536)
                if not h:
                    return
                if h in (b"\r\n", b"\n"):
                    break
                head.append(h)
            hdrs = {}
            for h in head:
                k, _, v = h.decode("latin-1").partition(":")
                hdrs[k.strip().lower()] = v.strip()
            entry["headers"] = hdrs
            body = f.read(int(hdrs.get("content-length", "0") or 0))
            entry["body"] = body
            parts = entry["line"].split(b" ")
            method = parts[0]
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            status, ctype, out = self.respond(method, path, body)
            version = parts[2] if len(parts) > 2 else b"HTTP/1.0"
            keep = (version == b"HTTP/1.1" and
                    hdrs.get("connection", "").lower() != "close")
            resp = (b"HTTP/1.1 %d %s\r\nServer: corpus/1\r\n"
                    b"Content-Type: %s\r\nContent-Length: %d\r\n"
                    b"Connection: %s\r\n\r\n" % (
                        status, b"OK" if status < 300 else b"Not Found",
                        ctype, len(out), b"keep-alive" if keep else b"close"))
            conn.sendall(resp + (b"" if method == b"HEAD" or status == 204
                                 else out))
            if not keep:
                return

    @staticmethod
    def respond(method, path, body):
        """(status, content type, body): a small site with an API."""
        p = path.split("?")[0].split("#")[0]
        if p == "/":
            p = "/index.html"
        if method == b"OPTIONS" or (method == b"DELETE"):
            return 204, b"text/plain", b""
        if method in (b"POST", b"PUT", b"PATCH"):
            created = method == b"POST" and p not in ("/login", "/logout",
                                                      "/api/v2/graphql")
            return (201 if created else 200, b"application/json",
                    b'{"ok":true,"received":%d}' % len(body))
        if not p.startswith(KNOWN_PATHS):
            return 404, b"text/html", b"<html><body>not found</body></html>\n"
        if p.startswith("/api/") or p == "/healthz":
            return 200, b"application/json", b'{"ok":true,"path":"%s"}' % (
                p.encode())
        if p.startswith("/static/") or p.endswith((".ico", ".pdf", ".xlsx",
                                                   ".xml", ".txt")):
            return 200, b"application/octet-stream", b"x" * 512
        return 200, b"text/html; charset=utf-8", (
            b"<!doctype html><html><head><title>Intranet</title></head>"
            b"<body><h1>%s</h1><p>Welcome.</p></body></html>\n" % (
                path.encode("latin-1", "replace")[:200]))

    def close(self):
        self.svc.close()


def pg_msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def pg_read(sock, startup=False):
    """One message: (type byte or None for a startup packet, payload)."""
    def exact(n):
        b = b""
        while len(b) < n:
            d = sock.recv(n - len(b))
            if not d:
                raise EOFError("PostgreSQL peer closed after %d of %d bytes"
                               % (len(b), n))
            b += d
        return b
    kind = None if startup else exact(1)
    n = struct.unpack("!I", exact(4))[0]
    return kind, exact(n - 4)


class FakePostgres:
    """Speaks PostgreSQL's v3 wire protocol for the corpus session: SSL
    refused, startup, MD5 password, simple queries answered from the
    corpus (RowDescription, DataRow, CommandComplete, ErrorResponse)."""

    def __init__(self, corpus, host, port):
        self.corpus = corpus
        self.answers = {q["sql"]: q for q in corpus["queries"]}
        self.queries = []
        self.errors = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            with c:
                self.session(c)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def session(self, c):
        import hashlib
        _, body = pg_read(c, startup=True)
        if struct.unpack("!I", body[:4])[0] == 80877103:	# SSLRequest
            c.sendall(b"N")
            _, body = pg_read(c, startup=True)
        assert struct.unpack("!I", body[:4])[0] == 196608, body[:4]
        kv = body[4:].split(b"\0")
        params = dict(zip(kv[0::2], kv[1::2]))
        user = params[b"user"]
        salt = bytes(random.getrandbits(8) for _ in range(4))
        c.sendall(pg_msg(b"R", struct.pack("!I", 5) + salt))
        kind, pw = pg_read(c)
        inner = hashlib.md5(self.corpus["password"].encode() + user).hexdigest()
        want = b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode()
        if kind != b"p" or pw.rstrip(b"\0") != want:
            c.sendall(pg_msg(b"E", b"SFATAL\0C28P01\0Mpassword authentication "
                             b"failed\0\0"))
            return
        out = pg_msg(b"R", struct.pack("!I", 0))
        for k, v in ((b"server_version", b"15.8 (Debian 15.8-0+deb12u1)"),
                     (b"server_encoding", b"UTF8"), (b"client_encoding", b"UTF8"),
                     (b"DateStyle", b"ISO, MDY"), (b"TimeZone", b"Etc/UTC"),
                     (b"integer_datetimes", b"on"),
                     (b"standard_conforming_strings", b"on"),
                     (b"application_name", params.get(b"application_name", b""))):
            out += pg_msg(b"S", k + b"\0" + v + b"\0")
        out += pg_msg(b"K", struct.pack("!II", 4242, 0x5eed1234))
        out += pg_msg(b"Z", b"I")
        c.sendall(out)
        while True:
            kind, body = pg_read(c)
            if kind == b"X":
                return
            assert kind == b"Q", kind
            sql = body.rstrip(b"\0").decode()
            self.queries.append(sql)
            q = self.answers.get(sql)
            if q is None or "error" in q:
                code, text = q["error"] if q else ("42601", "unknown query")
                out = pg_msg(b"E", b"SERROR\0VERROR\0C%s\0M%s\0P1\0\0" % (
                    code.encode(), text.encode()))
            else:
                out = b""
                if "columns" in q:
                    desc = struct.pack("!H", len(q["columns"]))
                    for i, (name, oid) in enumerate(q["columns"]):
                        desc += name.encode() + b"\0" + struct.pack(
                            "!IhIhih", 0, 0, oid, -1, -1, 0)
                    out += pg_msg(b"T", desc)
                    for row in q["rows"]:
                        d = struct.pack("!H", len(row))
                        for v in row:
                            d += (struct.pack("!i", -1) if v is None else
                                  struct.pack("!I", len(v.encode())) + v.encode())
                        out += pg_msg(b"D", d)
                out += pg_msg(b"C", q["tag"].encode() + b"\0")
            c.sendall(out + pg_msg(b"Z", b"I"))

    def close(self):
        self.sock.close()


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_read_name(msg, off):
    labels, jumped, end = [], False, off
    while True:
        n = msg[off]
        if n & 0xc0 == 0xc0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3f) << 8) | msg[off + 1]
            jumped = True
            continue
        if n == 0:
            return ".".join(labels) + ".", (end if jumped else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n


def dns_rdata(rtype, value):
    if rtype == 1:
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == 28:
        return socket.inet_pton(socket.AF_INET6, value)
    if rtype in (5, 12):
        return dns_name(value)
    if rtype == 15:
        return struct.pack("!H", value[0]) + dns_name(value[1])
    if rtype == 16:
        return bytes([len(value)]) + value.encode()
    if rtype == 33:
        return struct.pack("!HHH", *value[:3]) + dns_name(value[3])
    raise ValueError(rtype)


class DnsServer:
    """An authoritative-style DNS server on UDP for the corpus zone: real
    DNS messages (header, question, answers with name compression, CNAME
    chasing, NXDOMAIN, EDNS0 OPT echoed)."""

    def __init__(self, corpus, host, port):
        self.zone = {}
        for name, rtype, value in corpus["zone"]:
            self.zone.setdefault(name.lower(), []).append((rtype, value))
        self.answered = 0
        self.errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def lookup(self, name, qtype):
        """[(owner, type, value)] following CNAMEs; None for NXDOMAIN."""
        out, seen = [], set()
        while name.lower() not in seen:
            seen.add(name.lower())
            rrs = self.zone.get(name.lower())
            if rrs is None:
                return out or None
            exact = [(name, t, v) for t, v in rrs if t == qtype]
            if exact:
                return out + exact
            cname = [(name, t, v) for t, v in rrs if t == 5]
            if not cname:
                return out
            out += cname
            name = cname[0][2]
        return out

    def _run(self):
        while True:
            try:
                msg, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(msg), addr)
                self.answered += 1
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))

    def answer(self, msg):
        qid, flags, qd, _, _, ar = struct.unpack("!6H", msg[:12])
        name, off = dns_read_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        rrs = self.lookup(name, qtype)
        rcode = 3 if rrs is None else 0
        body = b""
        for owner, rtype, value in rrs or []:
            rdata = dns_rdata(rtype, value)
            owner_enc = (b"\xc0\x0c" if owner.lower() == name.lower()
                         else dns_name(owner))
            body += owner_enc + struct.pack("!HHIH", rtype, 1, 300,
                                            len(rdata)) + rdata
        opt = b""
        if ar:	# EDNS0: answer with our own OPT record
            opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
        hdr = struct.pack("!6H", qid, 0x8400 | (flags & 0x0100) | rcode, 1,
                          len(rrs or []), 0, 1 if opt else 0)
        return hdr + question + body + opt

    def close(self):
        self.sock.close()


def dns_query(addr, name, qtype, edns, timeout=5):
    """Sends one query like a stub resolver; returns (rcode, answers) where
    answers are (owner, type, rdata bytes decoded for A/AAAA/CNAME)."""
    qid = random.getrandbits(16)
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    q += dns_name(name) + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        for attempt in range(3):	# UDP: a resolver retries
            s.sendto(q, addr)
            try:
                resp, _ = s.recvfrom(4096)
            except socket.timeout:
                continue
            if struct.unpack("!H", resp[:2])[0] == qid:
                break
        else:
            raise AssertionError("no DNS answer for %s/%d" % (name, qtype))
    _, flags, qd, an, _, _ = struct.unpack("!6H", resp[:12])
    off = 12
    for _ in range(qd):
        _, off = dns_read_name(resp, off)
        off += 4
    answers = []
    for _ in range(an):
        owner, off = dns_read_name(resp, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[off:off + 10])
        off += 10
        rdata = resp[off:off + rdlen]
        if rtype == 1:
            val = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            val = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype in (5, 12):
            val = dns_read_name(resp, off)[0]
        else:
            val = rdata
        answers.append((owner, rtype, val))
        off += rdlen
    return flags & 0xf, answers


# ---- helpers ----

def http_request(addr, method, path, headers=(), body=None, timeout=15,
                 sock=None):
    """One request; returns (status, body, sock kept open or None)."""
    s = sock or socket.create_connection(addr, timeout=timeout)
    data = body.encode() if isinstance(body, str) else (body or b"")
    head = "%s %s HTTP/1.1\r\nHost: intranet.example\r\n" % (method, path)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if data or method in ("POST", "PUT", "PATCH"):
        head += "Content-Length: %d\r\n" % len(data)
    s.sendall(head.encode() + b"\r\n" + data)
    f = s.makefile("rb")
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("connection closed without an answer")
    status = int(status_line.split()[1])
    hdrs = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode().partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    out = f.read(n) if method != "HEAD" and status != 204 else b""
    f.close()
    if hdrs.get("connection") == "close":
        s.close()
        return status, out, None
    return status, out, s


def events(state):
    path = os.path.join(state, "security.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ts(s):
    """Suricata's timestamp (2026-11-25T07:53:06.554321+0000) in seconds."""
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class GoodPeer:
    """A well-behaved client: HTTP requests through its own listener in a
    loop while something else happens; every one must succeed."""

    def __init__(self, addr, web):
        self.addr, self.web = addr, web
        self.ok, self.errors = 0, []
        self._stop = threading.Event()
        self._n = 0

    def once(self):
        self._n += 1
        path = "/api/v1/status?n=%d" % self._n
        status, body, s = http_request(self.addr, "GET", path,
                                       [("User-Agent", "Mozilla/5.0 (X11; Linux "
                                         "x86_64; rv:115.0) Gecko/20100101 "
                                         "Firefox/115.0"),
                                        ("Connection", "close")])
        if s:
            s.close()
        assert status == 200 and b'"ok":true' in body, (status, body)
        self.ok += 1

    def _loop(self):
        while True:	# at least one request while the attack runs
            try:
                self.once()
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
            if self._stop.wait(0.05):
                return

    def __enter__(self):
        self._stop = threading.Event()
        for _ in range(3):
            self.once()		# before
        self.before = self.ok
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(60)
        self.during = self.ok - self.before
        for _ in range(3):
            self.once()		# after
        return False


# ---- the module's gateway ----

@pytest.fixture(scope="module")
def etworld(shared_server, tmp_path_factory):
    w = type("W", (), {})()
    w.tmp = str(tmp_path_factory.mktemp("ips-attacks"))
    w.url = "wss://127.0.0.1:%d/ws" % shared_server.port
    w.room = new_room()
    with open(os.path.join(CLEAN, "pg.json")) as f:
        w.pg_corpus = json.load(f)
    with open(os.path.join(CLEAN, "dns.json")) as f:
        w.dns_corpus = json.load(f)
    w.web = AccessLogHttp()
    # PostgreSQL and DNS on their standard ports (Suricata's protocol
    # detection and ET's port variables), on a loopback address of their own.
    w.pg = w.dns = None
    for _ in range(50):
        host = "127.0.0.%d" % random.randint(2, 250)
        try:
            w.pg = FakePostgres(w.pg_corpus, host, 5432)
            w.dns = DnsServer(w.dns_corpus, host, 53)
            break
        except OSError:
            for svc in (w.pg, w.dns):
                if svc:
                    svc.close()
            w.pg = w.dns = None
    assert w.pg and w.dns, "no loopback address with 5432/tcp and 53/udp free"
    w.svc_host = host
    w.gw_conf = write_config(
        os.path.join(w.tmp, "gw.conf"), GW, w.url, w.room, room_name=ROOM_NAME,
        services=[("web", WEB_PORT, "tcp", "127.0.0.1", w.web.port),
                  ("pg", PG_PORT, "tcp", host, 5432),
                  ("dns", DNS_PORT, "udp", host, 53)],
        extra="[ips]\nmode = inline\net_open = %s\nban_seconds = 600\n" % ET_OPEN)
    w.gw_state = os.path.join(w.tmp, GW + "-state")
    w.agents = []

    def client(name):
        conf = write_config(os.path.join(w.tmp, name + ".conf"), name, w.url,
                            w.room, room_name=ROOM_NAME)
        a = AgentProcess("connect", conf, w.tmp, name)
        w.agents.append(a)
        return a

    w.client = client
    w.gw = AgentProcess("gateway", w.gw_conf, w.tmp, GW)
    w.agents.append(w.gw)
    try:
        t0 = time.monotonic()
        w.gw.wait_log(r"IPS ready \(inline\)", timeout=600)
        m = re.search(r"ET Open: .*", w.gw.log())
        print("\n%s; IPS ready after %.1f s" % (m.group(0) if m else "?",
                                                 time.monotonic() - t0))
        w.good = client("laptop-good")
        w.good_addr = w.good.wait_listener(GW, WEB_PORT)
        w.good_peer = GoodPeer(w.good_addr, w.web)
        yield w
    finally:
        problems = []
        for a in w.agents:
            problems += a.stop_problems()
        for svc in (w.web, w.pg, w.dns):
            svc.close()
        out = subprocess.run(["iptables", "-S"], capture_output=True,
                             text=True).stdout
        m = re.search(r"IPS instance (pp[0-9a-f]+)", w.gw.log())
        if m and "PP-%s-" % m.group(1) in out:
            problems.append("netfilter chains left behind:\n" + out)
        assert not problems, "\n\n".join(problems)


# ---- clean traffic ----

def cuts_and_bans(w, since):
    return [e for e in events(w.gw_state)[since:]
            if e["peerpipe"]["event"] in ("cut", "ban", "scan")]


def test_clean_http_corpus_cuts_nobody(etworld):
    w = etworld
    with open(os.path.join(CLEAN, "http.json")) as f:
        corpus = json.load(f)
    since = len(events(w.gw_state))
    c = w.client("corpus-http")
    addr = c.wait_listener(GW, WEB_PORT)
    logged = len(w.web.entries())
    sent = 0
    rounds = 7	# a few hundred requests
    for r in range(rounds):
        sock = None
        for i, req in enumerate(corpus):
            # a browser keeps its connection; curl-like clients do not
            keep = r % 2 == 0 and i % 9 != 8
            hdrs = list(req["headers"].items())
            if not keep:
                hdrs.append(("Connection", "close"))
            status, body, sock = http_request(addr, req["method"], req["path"],
                                              hdrs, req.get("body"), sock=sock)
            assert status == req["expect"], (req["note"], status, body)
            if req["method"] in ("POST", "PUT", "PATCH"):
                assert body == b'{"ok":true,"received":%d}' % len(
                    req["body"].encode()), (req["note"], body)
            sent += 1
            if not keep and sock:
                sock.close()
                sock = None
        if sock:
            sock.close()
    # curl itself, as people use it
    curl = shutil.which("curl")
    if curl:
        base = "http://%s:%d" % addr
        for args in (["-sS", base + "/"],
                     ["-sS", "-I", base + "/docs/guide/getting-started.html"],
                     ["-sS", "-X", "POST", "-H", "Content-Type: application/json",
                      "-d", '{"name":"from curl","tags":["a","b"]}',
                      base + "/api/v1/projects"],
                     ["-sS", "-d", "username=bob&password=hunter2", base + "/login"],
                     ["-sS", "-H", "Authorization: Bearer abc.def.ghi",
                      base + "/api/v1/me?fields=id,name"],
                     ["-sS", "--compressed", base + "/feed.xml"],
                     ["-sS", "-L", base + "/wiki/Main_Page"],
                     ["-sS", "-F", "file=@%s" % os.path.join(CLEAN, "dns.json"),
                      base + "/upload"]):
            r = subprocess.run([curl, "--max-time", "15", "-o", "/dev/null",
                                "-w", "%{http_code}"] + args,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and r.stdout in ("200", "201"), (args, r)
            sent += 1
    got = w.web.entries()[logged:]
    assert len(got) == sent, (len(got), sent)
    assert cuts_and_bans(w, since) == []
    alerts = [e["peerpipe"] for e in events(w.gw_state)[since:]]
    kinds = {}
    for a in alerts:
        k = "%s %s (sid %s)" % (a["event"], a.get("signature"),
                                a.get("signature_id"))
        kinds[k] = kinds.get(k, 0) + 1
    print("\nclean HTTP: %d requests; IPS events, recorded only: %s" % (
        sent, kinds or "none"))
    # alerts the reaction policy only records (ET INFO, priority 3) still
    # name the peer whose connection they came from
    if alerts:
        assert any(a.get("peer") == "corpus-http" for a in alerts), alerts
    assert c.listener_count(GW, WEB_PORT) == 1	# never cut and reconnected
    assert w.gw.ctl("bans") == []


def test_clean_postgres_session_cuts_nobody(etworld):
    w = etworld
    corpus = w.pg_corpus
    since = len(events(w.gw_state))
    c = w.client("corpus-pg")
    addr = c.wait_listener(GW, PG_PORT)
    import hashlib
    for session in range(3):
        s = socket.create_connection(addr, timeout=15)
        with s:
            s.sendall(struct.pack("!II", 8, 80877103))	# SSLRequest
            assert s.recv(1) == b"N"
            params = b"".join(k + b"\0" + v + b"\0" for k, v in (
                (b"user", corpus["user"].encode()),
                (b"database", corpus["database"].encode()),
                (b"application_name", b"psql"),
                (b"client_encoding", b"UTF8"))) + b"\0"
            s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
            kind, body = pg_read(s)
            assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 5, body
            salt = body[4:8]
            inner = hashlib.md5(corpus["password"].encode() +
                                corpus["user"].encode()).hexdigest()
            s.sendall(pg_msg(b"p", b"md5" + hashlib.md5(
                inner.encode() + salt).hexdigest().encode() + b"\0"))
            params_seen = {}
            while True:
                kind, body = pg_read(s)
                assert kind != b"E", body
                if kind == b"S":
                    k, v = body.rstrip(b"\0").split(b"\0")
                    params_seen[k] = v
                if kind == b"Z":
                    break
            assert params_seen[b"application_name"] == b"psql"
            for q in corpus["queries"]:
                s.sendall(pg_msg(b"Q", q["sql"].encode() + b"\0"))
                rows, tag, err = [], None, None
                while True:
                    kind, body = pg_read(s)
                    if kind == b"D":
                        n = struct.unpack("!H", body[:2])[0]
                        off, row = 2, []
                        for _ in range(n):
                            ln = struct.unpack("!i", body[off:off + 4])[0]
                            off += 4
                            if ln < 0:
                                row.append(None)
                            else:
                                row.append(body[off:off + ln].decode())
                                off += ln
                        rows.append(row)
                    elif kind == b"C":
                        tag = body.rstrip(b"\0").decode()
                    elif kind == b"E":
                        err = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
                    elif kind == b"Z":
                        break
                if "error" in q:
                    assert err and err[b"C"].decode() == q["error"][0], err
                else:
                    assert err is None, (q["sql"], err)
                    assert tag == q["tag"] and rows == q.get("rows", []), (
                        q["sql"], tag, rows)
            s.sendall(pg_msg(b"X", b""))
    assert not w.pg.errors, w.pg.errors
    assert w.pg.queries.count(corpus["queries"][-1]["sql"]) >= 3
    assert cuts_and_bans(w, since) == []
    print("\nclean PostgreSQL: 3 sessions of %d queries, IPS events: %s" % (
        len(corpus["queries"]), [e["peerpipe"].get("signature")
                                 for e in events(w.gw_state)[since:]]))
    assert c.listener_count(GW, PG_PORT) == 1


def test_clean_dns_queries_cut_nobody(etworld):
    w = etworld
    corpus = w.dns_corpus
    since = len(events(w.gw_state))
    c = w.client("corpus-dns")
    addr = c.wait_listener(GW, DNS_PORT, proto="UDP")
    answered_before = w.dns.answered
    n = 0
    for r in range(4):
        for name, qtype in corpus["queries"]:
            rcode, answers = dns_query(addr, name, qtype, edns=r % 2 == 1)
            want = w.dns.lookup(name, qtype)
            if want is None:
                assert rcode == 3 and answers == [], (name, qtype, rcode, answers)
            else:
                assert rcode == 0, (name, qtype, rcode)
                assert [(o.lower(), t) for o, t, _ in answers] == [
                    (o.lower(), t) for o, t, _ in want], (name, qtype, answers)
                for (_, t, got), (_, _, v) in zip(answers, want):
                    if t in (1, 28, 5, 12):
                        assert got == v, (name, got, v)
            n += 1
    assert w.dns.answered - answered_before >= n
    assert not w.dns.errors, w.dns.errors
    assert cuts_and_bans(w, since) == []
    print("\nclean DNS: %d queries over UDP, IPS events: %s" % (
        n, [e["peerpipe"].get("signature") for e in events(w.gw_state)[since:]]))
    assert c.listener_count(GW, DNS_PORT, proto="UDP") == 1


# ---- attack tools ----

def sqlmap_cmd(url, tmp):
    return ["sqlmap", "-u", url + "/item?id=1", "-p", "id", "--batch",
            "--level", "1", "--risk", "1", "--technique", "B", "--timeout", "5",
            "--retries", "0", "--flush-session", "--output-dir",
            os.path.join(tmp, "sqlmap-out")]


def nmap_cmd(script):
    def cmd(url, tmp):
        host, port = url[len("http://"):].split(":")
        # connect scan of the one forwarded port; "+" runs the script
        # although the port's number is not a known HTTP port
        return ["nmap", "-sT", "-Pn", "-n", "-p", port, "--max-retries", "1",
                "--script", "+" + script, host]
    return cmd


def dirb_cmd(url, tmp):
    words = os.path.join(tmp, "dirb-words.txt")
    with open("/usr/share/dirb/wordlists/common.txt") as f:
        head = [next(f) for _ in range(30)]	# dirb's own list, its start
    with open(words, "w") as f:
        f.writelines(head)
    return ["dirb", url + "/", words, "-S", "-r"]


TOOLS = [
    # (id, binary, command builder, what marks the tool's requests)
    ("sqlmap", "sqlmap", sqlmap_cmd, lambda e: "sqlmap" in
     e["headers"].get("user-agent", "")),
    ("nmap-http-enum", "nmap", nmap_cmd("http-enum"), lambda e: "Nmap" in
     e["headers"].get("user-agent", "")),
    ("nmap-http-shellshock", "nmap", nmap_cmd("http-shellshock"),
     lambda e: any("() {" in v for v in e["headers"].values())),
    # ET Open detects the first word of dirb's list (ET WEB_SERVER
    # .bash_history Detected in URI)
    ("dirb", "dirb", dirb_cmd, lambda e: b"/.bash_history" in e["line"]),
]


@pytest.mark.parametrize("tool,binary,build,marked", TOOLS,
                         ids=[t[0] for t in TOOLS])
def test_attack_tool_detected_dropped_cut_banned(etworld, tool, binary, build,
                                                 marked, tmp_path):
    if shutil.which(binary) is None:
        pytest.skip("%s not installed (scripts/install-deps.sh ips)" % binary)
    w = etworld
    name = "intruder-" + tool
    since = len(events(w.gw_state))
    attacker = w.client(name)
    host, port = attacker.wait_listener(GW, WEB_PORT)
    assert host.startswith("127.0.1."), host	# its loopback listener only
    url = "http://%s:%d" % (host, port)
    # the attacker is an ordinary, working peer until it attacks
    status, _, s = http_request((host, port), "GET", "/", [("Connection", "close")])
    assert status == 200 and s is None
    env = dict(os.environ, HOME=str(tmp_path))	# sqlmap's history etc.
    with w.good_peer as good:
        r = subprocess.run(build(url, str(tmp_path)), capture_output=True,
                           text=True, timeout=300, env=env, cwd=str(tmp_path))
        # the cut and the ban (waited for: the tool may end first)
        deadline = time.monotonic() + 30
        while True:
            new = events(w.gw_state)[since:]
            kinds = [(e["peerpipe"]["event"], e["peerpipe"].get("peer"))
                     for e in new]
            if ("ban", name) in kinds:
                break
            assert time.monotonic() < deadline, (
                "%s: no ban; tool exit %d\n%s\n%s\nevents: %s" % (
                    tool, r.returncode, r.stdout[-3000:], r.stderr[-2000:], new))
            time.sleep(0.1)
    assert not good.errors, good.errors[:5]
    assert good.during >= 1 and good.ok >= good.before + good.during + 3
    # ... on the one peer connection it had from the start
    assert w.good.listener_count(GW, WEB_PORT) == 1

    cuts = [e for e in new if e["peerpipe"]["event"] == "cut"]
    assert cuts, new
    cut = cuts[0]
    pp = cut["peerpipe"]
    assert pp["peer"] == name, cut	# the attacker's channel, nobody else's
    assert all(e["peerpipe"].get("peer") in (None, name) for e in new), new
    assert cut["dest_port"] == w.web.port and cut["proto"] == "TCP", cut
    # inline: the detected request was dropped before the service saw it
    assert pp["action"] == "blocked", cut
    # (a tool keeping its connection alive may have sent clean requests on
    # it before; those arrived, the detected one and all after it did not)
    log = w.web.entries()
    on_flow = [e for e in log if e["port"] == cut["src_port"]]
    assert not any(marked(e) for e in on_flow), on_flow
    leaked = [e["line"] for e in log if marked(e)]
    assert leaked == [], ("the tool's requests reached the service", leaked)
    # the ban: listed, with the alert as evidence
    bans = [b for b in w.gw.ctl("bans") if b["name"] == name]
    assert len(bans) == 1, w.gw.ctl("bans")
    shown = subprocess.run([agent_bin(), "bans", "--show", str(bans[0]["id"]),
                            "--json", "--control", w.gw.control],
                           capture_output=True, timeout=30)
    ev = json.loads(shown.stdout)["evidence"]
    assert ev and ev[0]["signature_id"] == pp["signature_id"], ev
    # the banned peer gets nothing more through
    try:
        status, _, _ = http_request((host, port), "GET", "/after", timeout=5)
    except OSError:
        status = None
    assert status != 200
    alert_to_cut_ms = (ts(cut["timestamp"]) - ts(pp["eve_timestamp"])) * 1000
    ban = [e for e in new if e["peerpipe"]["event"] == "ban"][0]
    alert_to_ban_ms = (ts(ban["timestamp"]) - ts(pp["eve_timestamp"])) * 1000
    print("\n%s: detected by sid %d (%s), %s; eve alert -> cut %.3f ms, "
          "-> ban %.3f ms; %d earlier clean request(s) on that connection; "
          "good peer: %d requests ok (%d during); tool exit %d" % (
              tool, pp["signature_id"], pp["signature"], pp["action"],
              alert_to_cut_ms, alert_to_ban_ms, len(on_flow), good.ok,
              good.during, r.returncode))
    attacker.stop()


def test_attack_on_a_server_from_inside_home_net(etworld):
    """ET 2017061 (ET EXPLOIT SolusVM 1.13.03 Access to solusvmc-node setuid
    bin) has HOME_NET on both ends (`$HOME_NET any -> $HTTP_SERVERS any`,
    to_server): an attack on a protected server from inside.  The policy used
    to turn it off as client-side; it stays on, and here it matters: the web
    service is on 127.0.0.1, the gateway's own address, so the peer appears
    inside HOME_NET."""
    w = etworld
    name = "intruder-solusvm"
    since = len(events(w.gw_state))
    attacker = w.client(name)
    addr = attacker.wait_listener(GW, WEB_PORT)
    status, _, s = http_request(addr, "GET", "/", [("Connection", "close")])
    assert status == 200 and s is None
    try:
        http_request(addr, "GET", "/cgi-bin/solusvmc-node?action=x",
                     [("Connection", "close")], timeout=5)
    except OSError:
        pass	# dropped, cut: no answer
    deadline = time.monotonic() + 30
    while True:
        new = events(w.gw_state)[since:]
        if any(e["peerpipe"]["event"] == "ban" and
               e["peerpipe"].get("peer") == name for e in new):
            break
        assert time.monotonic() < deadline, ("no ban", new)
        time.sleep(0.1)
    cuts = [e for e in new if e["peerpipe"]["event"] == "cut"]
    assert cuts and cuts[0]["peerpipe"]["peer"] == name, new
    assert cuts[0]["peerpipe"]["signature_id"] == 2017061, cuts[0]
    assert cuts[0]["peerpipe"]["action"] == "blocked", cuts[0]
    leaked = [e["line"] for e in w.web.entries() if b"solusvmc-node" in e["line"]]
    assert leaked == [], ("the attack reached the service", leaked)
    attacker.stop()
