"""The inline IPS with the real Suricata, through tests/tools/ipsprobe.

ipsprobe (PP_IPSPROBE_BIN) runs lib/ips: netfilter chains that queue MARKED
connections to an NFQUEUE, Suricata on that queue, the eve socket and the
self-test canary; with --forward it joins connections to a marked connection
to a backend, so these tests push their traffic through the inline path.

Root only (netfilter, NFQUEUE); skipped cleanly without root or without
suricata/iptables.  Every run uses its own instance name (chain names), queue
number and mark, so parallel runs never meet.  Only loopback traffic.
"""

import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(REPO, "rules", "peerpipe.rules")
ET_OPEN = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "et-open"))
ET_RULES = 24827
OUR_RULES = 6
SID_DEMO = 9000001

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netfilter, NFQUEUE)"),
    pytest.mark.skipif(shutil.which("suricata") is None,
                       reason="suricata not installed (scripts/install-deps.sh ips)"),
    pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables not installed"),
]


def probe_bin():
    path = os.environ.get("PP_IPSPROBE_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("PP_IPSPROBE_BIN is not set to the built ipsprobe "
                    "(ctest sets it)", pytrace=False)
    return path


def in_ns(ns, argv):
    return (["ip", "netns", "exec", ns] if ns else []) + list(argv)


def our_chains(instance, ns=None):
    """PeerPipe chains and jumps of this instance, in both tables."""
    found = []
    for table in ("filter", "mangle"):
        out = subprocess.run(in_ns(ns, ["iptables", "-w", "10", "-t", table, "-S"]),
                             capture_output=True, text=True, check=True).stdout
        found += [l for l in out.splitlines() if "PP-%s-" % instance in l]
    return found


def queued_packets(instance, ns=None):
    """Packets the OUT (ORIGINAL) and IN (REPLY) queue rules matched."""
    counts = []
    for chain in ("PP-%s-OUT" % instance, "PP-%s-IN" % instance):
        out = subprocess.run(in_ns(ns, ["iptables", "-w", "10", "-L", chain,
                                        "-v", "-x", "-n"]),
                             capture_output=True, text=True, check=True).stdout
        rows = [l.split() for l in out.splitlines() if "NFQUEUE" in l]
        counts.append(sum(int(r[0]) for r in rows))
    return tuple(counts)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purpose.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))


class Backend:
    """A TCP service on loopback that records what each connection sent and
    answers every chunk with b"OK\\n"."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = {}		# peer port -> bytes received
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns[addr[1]] = b""
            threading.Thread(target=self._serve, args=(c, addr[1]),
                             daemon=True).start()

    def _serve(self, c, port):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    self.conns[port] += d
                try:
                    c.sendall(b"OK\n")
                except OSError:
                    return

    def received(self):
        with self.lock:
            return b"".join(self.conns.values())

    def close(self):
        self.closed = True
        self.sock.close()


class Probe:
    """One ipsprobe process; its JSON lines are collected by a thread."""

    _n = 0

    def __init__(self, tmp, forward_to=None, instance=None, state_dir=None,
                 queue_num=None, mark=None, extra=(), netns=None,
                 target_host="127.0.0.1", mode="inline"):
        Probe._n += 1
        self.instance = instance or "t%d_%d" % (os.getpid() % 100000, Probe._n)
        # Short: UNIX socket paths live under it.
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="ppips-", dir="/tmp")
        self.queue_num = queue_num or random.randint(20000, 60000)
        self.mark = mark or random.randint(0x1000, 0xfffe)
        args = [probe_bin(), "--instance", self.instance, "--state-dir",
                self.state_dir, "--rules", RULES, "--queue", str(self.queue_num),
                "--mark", hex(self.mark), "--mode", mode,
                "--service", "%s:%d" % (target_host, forward_to or 9)]
        if forward_to:
            args += ["--forward", "0:%s:%d" % (target_host, forward_to)]
        args = in_ns(netns, args)
        args += list(extra)
        self.err_path = os.path.join(str(tmp), "ipsprobe-%s.err" % self.instance)
        self.err = open(self.err_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        self.events = []
        self.q = queue.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = None
        self.netns = netns
        if forward_to:
            ev = self.wait_event(lambda e: e["event"] == "forward", 10, "forward")
            self.port = ev["port"]

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["_t"] = time.monotonic()
            with self.lock:
                self.events.append(ev)

    def find(self, pred, since=0):
        with self.lock:
            for ev in self.events[since:]:
                if pred(ev):
                    return ev
        return None

    def mark_pos(self):
        with self.lock:
            return len(self.events)

    def wait_event(self, pred, timeout, what, since=0):
        def check():
            ev = self.find(pred, since)
            if ev is None and self.proc.poll() is not None:
                # Let the reader drain the last lines first.
                time.sleep(0.2)
                ev = self.find(pred, since)
                if ev is None:
                    pytest.fail("ipsprobe exited (%s) while waiting for %s; "
                                "stderr: %s" % (self.proc.returncode, what,
                                                self.stderr()[-2000:]))
            return ev
        return wait_until(check, timeout, what)

    def wait_state(self, state, timeout=60, since=0):
        def pred(e):
            if e["event"] == "state" and e["state"] == "failed" and state != "failed":
                pytest.fail("IPS failed: %s" % e["reason"])
            return e["event"] == "state" and e["state"] == state
        return self.wait_event(pred, timeout, "state %s" % state, since)

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        return self.proc.returncode

    def check_clean_exit(self):
        rc = self.stop()
        text = self.stderr()
        assert rc == 0, "ipsprobe exit %s: %s" % (rc, text[-2000:])
        assert "Sanitizer" not in text and "runtime error" not in text, text[-4000:]
        assert our_chains(self.instance) == [], "chains left behind"
        assert self.find(lambda e: e["event"] == "exit")


@pytest.fixture
def cleanup():
    """Probes registered here are stopped (and their chains removed) even
    when a test fails half-way."""
    probes = []
    yield probes
    for p in probes:
        if p.proc.poll() is None:
            p.stop(signal.SIGTERM)
        ready = p.find(lambda e: e["event"] == "state" and e.get("pid"))
        if ready and pid_alive(ready["pid"]):
            # Only a Suricata this test's probe started.
            os.kill(ready["pid"], signal.SIGKILL)
        if getattr(p, "netns", None):
            pass	# the test deletes the namespace, chains included
        elif our_chains(p.instance):
            # Same instance, same state dir: the probe's start removes the
            # stale chains; stop it at once.
            q = Probe("/tmp", instance=p.instance, state_dir=p.state_dir,
                      queue_num=p.queue_num, mark=p.mark, extra=["--no-selftest"])
            q.stop()
        shutil.rmtree(p.state_dir, ignore_errors=True)


def exchange(port, payload, timeout=3.0):
    """Connects, sends, returns the reply (b"" on silence or error)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(payload)
        return s.recv(100)
    except (socket.timeout, OSError):
        return b""
    finally:
        s.close()


def test_ready_selftest_reload_and_clean_exit(tmp_path, cleanup):
    p = Probe(tmp_path)
    cleanup.append(p)
    ready = p.wait_state("ready", 60)
    states = [e["state"] for e in p.events if e["event"] == "state"]
    assert states[:3] == ["starting", "selftest", "ready"], states
    assert "self-test passed" in ready["reason"]
    assert ready["mode"] == "inline"
    assert ready["rules_loaded"] == OUR_RULES and ready["rules_failed"] == 0
    print("suricata ready in %d ms" % ready["ready_ms"])
    chains = our_chains(p.instance)
    assert any("NFQUEUE --queue-num %d" % p.queue_num in l and "ORIGINAL" in l
               for l in chains), chains
    assert any("REPLY" in l for l in chains), chains
    assert any("CONNMARK" in l for l in chains), chains
    # The canary's own alerts are not reported as attacks.
    assert p.find(lambda e: e["event"] == "alert") is None

    pos = p.mark_pos()
    p.proc.send_signal(signal.SIGHUP)
    ev = p.wait_event(lambda e: e["event"] == "reload", 60, "reload", pos)
    assert ev["status"] == 0, ev
    # Self-test again on demand, after the reload.
    pos = p.mark_pos()
    p.proc.send_signal(signal.SIGUSR1)
    p.wait_state("ready", 30, pos)
    p.check_clean_exit()


def test_inline_drop_and_clean_pass(tmp_path, cleanup):
    be = Backend()
    p = Probe(tmp_path, forward_to=be.port)
    cleanup.append(p)
    p.wait_state("ready", 60)

    assert exchange(p.port, b"GET /clean HTTP/1.0\r\n\r\n") == b"OK\n"
    assert b"/clean" in be.received()

    before = set(be.conns)
    attack = b"GET /x HTTP/1.0\r\nX-Demo: EVIL 0xdeadc0de\r\n\r\n"
    assert exchange(p.port, attack, timeout=3) == b"", "attack got a reply"
    ev = p.wait_event(lambda e: e["event"] == "alert" and e["sid"] == SID_DEMO,
                      10, "alert for sid %d" % SID_DEMO)
    assert b"EVIL" not in be.received(), "the attack reached the service"
    assert ev["action"] == "blocked"
    # The 5-tuple is the gateway's marked connection to the service: the
    # backend saw its source port when it accepted it.
    assert ev["proto"] == 6
    assert ev["dest_ip"] == "127.0.0.1" and ev["dest_port"] == be.port
    assert ev["src_ip"] == "127.0.0.1"
    new = set(be.conns) - before
    assert ev["src_port"] in new, (ev, new)
    assert be.conns[ev["src_port"]] == b""
    assert ev["flow_id"] > 0 and ev["to_server"] == 1
    # Both directions went through the queue, each once (loopback: the
    # service's replies cross OUTPUT too, but in the REPLY direction).
    out_pkts, in_pkts = queued_packets(p.instance)
    assert out_pkts > 0 and in_pkts > 0, (out_pkts, in_pkts)

    # Others keep working.
    for i in range(3):
        assert exchange(p.port, b"clean %d\n" % i) == b"OK\n"
    p.check_clean_exit()
    be.close()


def test_fail_closed_when_suricata_dies_and_resumes(tmp_path, cleanup):
    be = Backend()
    # A long first restart delay leaves a window to observe fail-closed.
    p = Probe(tmp_path, forward_to=be.port, extra=["--restart-delay", "4000"])
    cleanup.append(p)
    ready = p.wait_state("ready", 60)
    assert exchange(p.port, b"before\n") == b"OK\n"

    pos = p.mark_pos()
    os.kill(ready["pid"], signal.SIGKILL)
    down = p.wait_state("down", 10, pos)
    assert "signal 9" in down["reason"]
    t_down = down["_t"]
    n = len(be.received())
    # While Suricata is gone, a marked connection gets nothing through.
    assert exchange(p.port, b"during\n", timeout=1.5) == b""
    assert time.monotonic() - t_down < 4.0, "test too slow for the window"
    assert len(be.received()) == n and b"during" not in be.received()

    again = p.wait_state("ready", 60, pos)
    assert again["pid"] != ready["pid"]
    assert exchange(p.port, b"after\n") == b"OK\n"
    p.check_clean_exit()
    be.close()


def test_ids_fallback_alerts_without_dropping(tmp_path, cleanup):
    """--mode ids: Suricata sniffs lo (AF_PACKET, filtered to the services
    and the canary), no netfilter rules; attacks get through but alert."""
    be = Backend()
    p = Probe(tmp_path, forward_to=be.port, mode="ids")
    cleanup.append(p)
    ready = p.wait_state("ready", 60)
    assert ready["mode"] == "ids" and "IDS" in ready["reason"]
    assert our_chains(p.instance) == []
    assert "IDS FALLBACK" in p.stderr()
    attack = b"GET /x HTTP/1.0\r\nX-Demo: EVIL 0xdeadc0de\r\n\r\n"
    assert exchange(p.port, attack) == b"OK\n"	# not inline: it gets through
    ev = p.wait_event(lambda e: e["event"] == "alert" and e["sid"] == SID_DEMO,
                      15, "alert for sid %d" % SID_DEMO)
    assert ev["action"] == "allowed" and ev["dest_port"] == be.port
    p.check_clean_exit()
    be.close()


def test_no_chain_left_after_sigkill_and_restart(tmp_path, cleanup):
    p = Probe(tmp_path)
    cleanup.append(p)
    ready = p.wait_state("ready", 60)
    p.stop(signal.SIGKILL)
    # A crash leaves its chains (and an orphaned Suricata) behind ...
    assert our_chains(p.instance) != []
    # ... which the next start of the same instance removes.
    q = Probe(tmp_path, instance=p.instance, state_dir=p.state_dir,
              queue_num=p.queue_num, mark=p.mark)
    cleanup.append(q)
    ready2 = q.wait_state("ready", 60)
    assert not pid_alive(ready["pid"]), "the orphaned Suricata still runs"
    jumps = [l for l in our_chains(q.instance) if l.startswith("-A OUTPUT") or
             l.startswith("-A INPUT")]
    assert len(jumps) == 3, jumps	# one jump each, no duplicates
    q.check_clean_exit()
    assert not pid_alive(ready2["pid"])


@pytest.mark.skipif(not os.path.isdir(ET_OPEN), reason="no ET Open snapshot at "
                    "../shared/data/et-open")
def test_et_open_loads(tmp_path, cleanup):
    t0 = time.monotonic()
    p = Probe(tmp_path, extra=["--et-dir", ET_OPEN, "--et-drop-priority", "1",
                               "--ready-timeout", "240"])
    cleanup.append(p)
    ready = p.wait_state("ready", 300)
    print("ET Open: %d rules loaded, %d failed; Suricata ready in %.1f s "
          "(incl. policy rewrite: %.1f s)" % (
              ready["rules_loaded"], ready["rules_failed"],
              ready["ready_ms"] / 1000.0, ready["_t"] - t0))
    assert ready["rules_failed"] == 0
    # all of ET Open is in the policy file; the rules it turned off
    # (client-side and connection-level, lib/ips/rules.h) are commented out
    with open(os.path.join(p.state_dir, "et-open-policy.rules")) as f:
        policy = f.read().splitlines()
    off = [l for l in policy if l.startswith("# peerpipe: ")]
    active = [l for l in policy if l.startswith(("alert ", "drop "))]
    kept = [l for l in policy if l.startswith("# peerpipe note: ")]
    print("ET Open policy: %d active (%d client-side flowbit setters kept "
          "on), %d turned off" % (len(active), len(kept), len(off)))
    assert len(active) + len(off) == ET_RULES
    assert ready["rules_loaded"] == len(active) + OUR_RULES
    # Rules with HOME_NET on both ends are attacks on a protected server
    # (sid 2043996: Impacket WMIExec, 2024435: WINS, 2032884: AD FS): on.
    for sid in (2043996, 2024435, 2032884, 2017061):
        assert any("sid:%d;" % sid in l for l in active), sid
    # Every flowbit an active rule tests is set by an active rule (the
    # setters kept on are noalert: never a drop, never an alert).
    def bits(line, ops):
        out = set()
        for opt in line.split(";"):
            k, _, v = opt.strip().partition(":")
            w = [x.strip() for x in v.split(",")]
            if k.strip() == "flowbits" and w[0] in ops and len(w) > 1:
                out.update(x.strip() for x in w[1].split("|"))
        return out
    setby = set().union(*(bits(l, ("set", "toggle")) for l in active))
    for l in active:
        for b in bits(l, ("isset",)):
            assert b in setby or "|" in l, (b, l[:120])
    for i, l in enumerate(policy):
        if l.startswith("# peerpipe note: "):
            nxt = policy[i + 1]
            assert nxt.startswith("alert ") and "noalert" in nxt, nxt[:120]
    p.check_clean_exit()


NS_BACKEND = r"""
import socket, sys, threading
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
log = open(sys.argv[1], "ab", buffering=0)
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            log.write(d)
            c.sendall(b"OK\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

NS_CLIENT = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(sys.argv[2].encode())
try:
    sys.stdout.write(s.recv(100).decode())
except OSError:
    pass
"""


def test_service_on_another_host_both_directions(tmp_path, cleanup):
    """The service in another network namespace behind a veth pair: the
    gateway's SYN and data are queued in OUTPUT, the service's replies
    arriving from the wire in INPUT."""
    tag = "ppips%d" % (os.getpid() % 100000)
    gw, svc = tag + "g", tag + "s"
    py = shutil.which("python3", path="/usr/bin") or "python3"

    def sh(*argv):
        subprocess.run(argv, check=True, capture_output=True)

    backend = None
    try:
        sh("ip", "netns", "add", gw)
        sh("ip", "netns", "add", svc)
        sh("ip", "-n", gw, "link", "add", "vg", "type", "veth", "peer", "name",
           "vs", "netns", svc)
        sh("ip", "-n", gw, "addr", "add", "10.199.0.1/30", "dev", "vg")
        sh("ip", "-n", svc, "addr", "add", "10.199.0.2/30", "dev", "vs")
        for ns, dev in ((gw, "vg"), (svc, "vs")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        log = str(tmp_path / "backend.log")
        backend = subprocess.Popen(in_ns(svc, [py, "-c", NS_BACKEND, log]),
                                   stdout=subprocess.PIPE, text=True)
        port = int(backend.stdout.readline())

        p = Probe(tmp_path, forward_to=port, netns=gw, target_host="10.199.0.2")
        cleanup.append(p)
        p.wait_state("ready", 60)

        def client(msg):
            return subprocess.run(in_ns(gw, [py, "-c", NS_CLIENT, str(p.port), msg]),
                                  capture_output=True, text=True).stdout

        assert client("hello over veth\n") == "OK\n"
        out_pkts, in_pkts = queued_packets(p.instance, gw)
        assert out_pkts >= 3 and in_pkts >= 2, (out_pkts, in_pkts)
        assert client("GET / HTTP/1.0\r\nX: EVIL 0xdeadc0de\r\n\r\n") == ""
        ev = p.wait_event(lambda e: e["event"] == "alert" and e["sid"] == SID_DEMO,
                          10, "alert")
        assert ev["dest_ip"] == "10.199.0.2" and ev["dest_port"] == port
        assert ev["src_ip"] == "10.199.0.1"
        with open(log, "rb") as f:
            assert b"EVIL" not in f.read()
        rc = p.stop()
        assert rc == 0, p.stderr()[-2000:]
        assert our_chains(p.instance, gw) == []
    finally:
        if backend:
            backend.kill()
            backend.wait()
        for ns in (gw, svc):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
