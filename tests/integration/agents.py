"""Driving `peerpipe gateway` / `peerpipe connect` in tests.

AgentProcess runs the real agent (PP_AGENT_BIN) from a config file written
by write_config(); its stdout (the "peer X port P/PROTO -> ADDR" lines) and
stderr go to files that the test polls: readiness is waited for, never
slept for.  Services (echo, HTTP, bulk with SHA-256, UDP echo) run in
threads of the test process on ephemeral ports.
"""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

LISTEN_RE = re.compile(r"^peer (\S+) port (\d+)/(TCP|UDP) -> (\S+):(\d+)$")


def agent_bin():
    path = os.environ.get("PP_AGENT_BIN")
    if not path or not os.access(path, os.X_OK):
        raise AssertionError("PP_AGENT_BIN is not set to the built `peerpipe` "
                             "(ctest sets it), e.g. PP_AGENT_BIN=build/agent/peerpipe")
    return path


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def write_config(path, name, url, room_uuid, room_name="agent-tests",
                 services=(), compression="none", extra="", control=None,
                 log_level="info", bind=None, extended=False, policy=None,
                 legacy_peers=()):
    """services: (name, port, proto, target_host, target_port) tuples.
    legacy_peers: v1 peers (no identity) this agent admits by name.

    A gateway's IPS is on by default ([ips] mode = auto); tests that do not
    exercise it get `[ips] mode = off` here, unless extra has its own [ips]
    section (which then says its mode itself)."""
    lines = [
        "[agent]", "name = %s" % name,
        "control = %s" % (control or os.path.join(os.path.dirname(path),
                                                  name + ".sock")),
        "log_level = %s" % log_level,
        "state_dir = %s" % os.path.join(os.path.dirname(path), name + "-state"),
    ] + (["policy = %s" % policy] if policy else []) + (
        ["legacy_peers = %s" % ", ".join(legacy_peers)] if legacy_peers
        else []) + [
        "",
        "[signaling]", "url = %s" % url, "insecure = yes", "",
        "[room]", "name = %s" % room_name, "uuid = %s" % room_uuid, "",
        "[ice]", "address = 127.0.0.1", "",
        "[tunnel]", "compression = %s" % compression,
        "extended = %s" % ("yes" if extended else "no"), "",
    ]
    if bind:
        lines += ["[consume]", "bind = %s" % bind, ""]
    for (sname, port, proto, host, tport) in services:
        lines += ["[service %s]" % sname, "port = %d" % port,
                  "proto = %s" % proto.lower(),
                  "target = %s:%d" % (host, tport), ""]
    if "[ips]" not in extra:
        lines += ["[ips]", "mode = off", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


class AgentProcess:
    def __init__(self, mode, config, tmpdir, name, env=None, args=(),
                 prefix=()):
        """prefix: a command to run the agent under (ip netns exec NS)."""
        self.mode, self.config, self.name = mode, config, name
        self.control = None
        with open(config) as f:
            for line in f:
                if line.startswith("control = "):
                    self.control = line.split("=", 1)[1].strip()
        self.out_path = os.path.join(tmpdir, "%s.out" % name)
        self.err_path = os.path.join(tmpdir, "%s.log" % name)
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            full_env.update(env)
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(
            list(prefix) + [agent_bin(), mode, "-c", config] + list(args),
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            env=full_env)

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def alive(self):
        return self.proc.poll() is None

    def listeners(self):
        """{(peer, port, proto): (host, port)} from the lines printed so far."""
        found = {}
        for line in self.out().splitlines():
            m = LISTEN_RE.match(line.strip())
            if m:
                found[(m.group(1), int(m.group(2)), m.group(3))] = (
                    m.group(4).strip("[]"), int(m.group(5)))
        return found

    def wait_listener(self, peer, port, proto="TCP", timeout=60, since=None):
        """Waits for the listener line for the peer's port; returns (host, port).

        since: a listeners() snapshot; waits for a line that is new or changed
        relative to it... by count of matching lines."""
        deadline = time.monotonic() + timeout
        before = since if since is not None else 0
        while True:
            lines = [l for l in self.out().splitlines()
                     if l.startswith("peer %s port %d/%s -> " % (peer, port, proto))]
            if len(lines) > before:
                m = LISTEN_RE.match(lines[-1].strip())
                return (m.group(4).strip("[]"), int(m.group(5)))
            self.check_alive("waiting for peer %s port %d/%s" % (peer, port, proto))
            if time.monotonic() > deadline:
                raise AssertionError("%s: no listener for peer %s port %d/%s "
                                     "after %d s:\n%s" % (self.name, peer, port,
                                                          proto, timeout,
                                                          self.log_tail()))
            time.sleep(0.05)

    def listener_count(self, peer, port, proto="TCP"):
        return len([l for l in self.out().splitlines()
                    if l.startswith("peer %s port %d/%s -> " % (peer, port, proto))])

    def check_alive(self, what=""):
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %d %s:\n%s" % (
                self.name, self.proc.returncode, what, self.log_tail()))

    def ctl(self, cmd, json_out=True, check=True):
        args = [agent_bin(), cmd, "--control", self.control]
        if json_out:
            args.append("--json")
        r = subprocess.run(args, capture_output=True, timeout=30)
        if check:
            assert r.returncode == 0, "peerpipe %s failed: %s" % (
                cmd, r.stderr.decode())
        return json.loads(r.stdout) if json_out and r.returncode == 0 else r

    def wait_log(self, pattern, timeout=60, start=0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            log = self.log()[start:]
            if rx.search(log):
                return
            self.check_alive("waiting for /%s/" % pattern)
            if time.monotonic() > deadline:
                raise AssertionError("%s: /%s/ not logged in %d s:\n%s" % (
                    self.name, pattern, timeout, self.log_tail()))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return None
        return self.proc.returncode

    def sanitizer_report(self):
        log = self.log()
        m = re.search(r"(ERROR: (Address|Leak)Sanitizer|runtime error:)", log)
        return log[max(0, m.start() - 200):m.start() + 4000] if m else None

    def stop_problems(self, must_live=False):
        """Stops the agent; what went wrong, as a list of texts: a nonzero
        exit on SIGTERM, a sanitizer report, and with must_live an agent
        that was no longer running (one a test stopped on purpose is fine
        otherwise)."""
        alive = self.alive()
        rc = self.stop()
        problems = []
        if not alive and must_live:
            problems.append("%s died during the test (%r):\n%s" % (
                self.name, self.proc.returncode, self.log_tail()))
        elif alive and rc != 0:
            problems.append("%s exited %r on SIGTERM:\n%s" % (
                self.name, rc, self.log_tail()))
        rep = self.sanitizer_report()
        if rep:
            problems.append("sanitizer report from %s:\n%s" % (self.name, rep))
        return problems


def new_room():
    return str(uuid.uuid4())


# ---- services the tests forward to ----

class TcpService:
    """A threaded TCP server; handler(conn) runs per connection."""

    def __init__(self, handler, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.errors = []
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            conn.close()

    def close(self):
        self._stop = True
        self.sock.close()


def echo_handler(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)


def upper_after_eof_handler(conn):
    """Half-close: reads everything until EOF, then answers."""
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
    conn.sendall(hashlib.sha256(buf).hexdigest().encode() + b"\n")


def http_handler(conn):
    req = b""
    while b"\r\n\r\n" not in req:
        data = conn.recv(4096)
        if not data:
            return
        req += data
    path = req.split(b" ")[1].decode()
    body = ("hello through the tunnel: %s\n" % path).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                 + body)


def pattern_block(seed=1, size=1 << 20):
    """Deterministic incompressible-ish bytes (no os.urandom: reproducible)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


def bulk_send(sock, total, seed):
    """Sends total bytes of the seed's stream; returns its sha256 hex."""
    block = pattern_block(seed)
    h = hashlib.sha256()
    sent = 0
    while sent < total:
        chunk = block[:min(len(block), total - sent)]
        sock.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
    return h.hexdigest()


def bulk_recv(sock):
    """Reads to EOF; returns (bytes, sha256 hex)."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return n, h.hexdigest()
        h.update(data)
        n += len(data)


class UdpEcho:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            self.received += 1
            if data.startswith(b"ECHO"):
                self.sock.sendto(data, addr)

    def close(self):
        self.sock.close()
