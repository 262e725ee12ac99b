"""An emulated internet in network namespaces, for NAT traversal tests.

    public 198.51.100.0/24: a bridge in namespace <p>-pub, which also holds
        198.51.100.2 (the signaling server) and 198.51.100.3 (coturn: STUN
        and TURN); routers' WAN ends are 198.51.100.101 (A), .102 (B);
        its default route leads into a void (what the public side sends to
        private addresses is lost, as on the internet, instead of failing)
    LAN A 10.1.0.0/24: host <p>-a 10.1.0.2 behind router <p>-ra 10.1.0.1
    LAN B 10.2.0.0/24: host <p>-b 10.2.0.2 behind router <p>-rb 10.2.0.1
        (with nat "none" the LAN is 203.0.113.0/24 and is routed: a public
        host)

NAT flavours per router (nftables in the router's namespace):
    eim        masquerade: port-preserving, endpoint-independent mapping (a
               home router); hole punching works
    symmetric  masquerade fully-random: a fresh random port per destination,
               so the address STUN saw is not the one the peer sees
    none       routes only (a public host)
    udp-block  masquerade, and every UDP packet forwarded out of the LAN is
               dropped: only TURN over TCP gets through

Every namespace, veth and bridge is created here and deleted by close(),
which runs on any exit of the `with` block (failures, KeyboardInterrupt) and
at interpreter exit for nets still open.  Nothing links to the namespace the
tests run in, so no packet can leave.  Names carry the pid and a counter, so
parallel runs never meet.  Root only: skip_unless_possible() says why not.

Sockets in a namespace: run() / spawn() start programs there with
`ip netns exec`; in_ns() runs a Python function in a thread that entered the
namespace, so sockets it creates (listening services, client connections)
belong to that namespace whatever thread uses them afterwards.
"""

import atexit
import ctypes
import errno
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

FLAVOURS = ("eim", "symmetric", "none", "udp-block")
PUBLIC_NET = "198.51.100"
SIGNAL_IP = PUBLIC_NET + ".2"
TURN_IP = PUBLIC_NET + ".3"
ROUTER_WAN = {"a": PUBLIC_NET + ".101", "b": PUBLIC_NET + ".102"}
PRIVATE_LAN = {"a": "10.1.0", "b": "10.2.0"}
SINK_NET = "192.0.2"		# the public namespace's default route: a void
ROUTED_LAN = {"a": "203.0.113", "b": "203.0.113"}	# only one side is "none"
PREFIX = "ppn"
CLONE_NEWNET = 0x40000000

_live = set()
_seq = [0]
_libc = ctypes.CDLL(None, use_errno=True)


def why_not():
    """None if namespaces can be built here, else the reason (for a skip)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft", "conntrack"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            return "%s not installed (scripts/install-deps.sh nat)" % tool
    probe = "%s-probe-%d" % (PREFIX, os.getpid())
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if r.returncode != 0:
        return "`ip netns add` fails here: %s" % r.stderr.decode().strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def skip_unless_possible():
    import pytest
    reason = why_not()
    if reason:
        pytest.skip(reason)


def _sh(*args, check=True, input=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, args)),
                                               r.returncode,
                                               r.stderr.decode().strip()))
    return r


def setns(name):
    """Moves the calling thread into network namespace `name`."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (name, os.strerror(e)))
    finally:
        os.close(fd)


def in_ns(name, fn, *args, **kwargs):
    """Runs fn(*args) in a thread inside namespace `name`; returns its result.

    Threads that fn starts stay in the namespace too (they inherit it)."""
    box = {}

    def body():
        try:
            setns(name)
            box["r"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box.get("r")


def stun_binding(sock, server, timeout=0.5):
    """One STUN Binding request on a UDP socket; (ip, port) mapped or None."""
    tid = os.urandom(12)
    sock.settimeout(timeout)
    sock.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, server)
    try:
        while True:
            data, _ = sock.recvfrom(2048)
            if len(data) >= 20 and data[8:20] == tid:
                break
    except (socket.timeout, OSError):
        return None
    pos = 20
    while pos + 4 <= len(data):
        atype, alen = struct.unpack("!HH", data[pos:pos + 4])
        val = data[pos + 4:pos + 4 + alen]
        if atype == 0x0020 and alen >= 8:	# XOR-MAPPED-ADDRESS, IPv4
            port = struct.unpack("!H", val[2:4])[0] ^ 0x2112
            ip = struct.unpack("!I", val[4:8])[0] ^ 0x2112A442
            return socket.inet_ntoa(struct.pack("!I", ip)), port
        pos += 4 + alen + (-alen % 4)
    return None


class Net:
    """The topology above; use as a context manager."""

    def __init__(self, nat_a="eim", nat_b="eim"):
        for f in (nat_a, nat_b):
            if f not in FLAVOURS:
                raise ValueError("NAT flavour %r: one of %s" % (f, FLAVOURS))
        if nat_a == "none" and nat_b == "none":
            raise ValueError("at most one side without NAT")
        _seq[0] += 1
        self.prefix = "%s-%d-%d" % (PREFIX, os.getpid(), _seq[0])
        self.nat = {"a": nat_a, "b": nat_b}
        self.ns = {k: "%s-%s" % (self.prefix, k)
                   for k in ("pub", "ra", "a", "rb", "b")}
        self.procs = []		# Popen objects started in our namespaces
        self.made = []		# namespaces created, in order
        self.host_ip = {}
        self.closed = False

    # ---- building ----

    def __enter__(self):
        _live.add(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _ip(self, ns, *args):
        return _sh("ip", "-n", self.ns[ns], *args)

    def _build(self):
        for key in ("pub", "ra", "a", "rb", "b"):
            _sh("ip", "netns", "add", self.ns[key])
            self.made.append(self.ns[key])
            self._ip(key, "link", "set", "lo", "up")
        self._ip("pub", "link", "add", "br0", "type", "bridge")
        self._ip("pub", "link", "set", "br0", "up")
        for ip in (SIGNAL_IP, TURN_IP):
            self._ip("pub", "addr", "add", ip + "/24", "dev", "br0")
        # The rest of "the internet": a default route to a gateway that
        # is never there (a fixed neighbour entry, so no ARP and no ICMP
        # error comes back), out of a veth whose other end, in the same
        # namespace, discards frames not addressed to it.  A server on the
        # real internet that sends to an address nobody routes to it (a
        # peer's private host candidate, 10.x) sees the packet vanish;
        # without a default route sendto() fails with ENETUNREACH instead,
        # and coturn 4.6 closes the whole relay allocation on any failed
        # send (tobeclosed in send_data_from_ioa_socket_nbh), which no real
        # relay would do for such a check.  Nothing leaves the namespace.
        self._ip("pub", "link", "add", "sink", "type", "veth", "peer", "name",
                 "sink-end")
        for dev in ("sink", "sink-end"):
            self._ip("pub", "link", "set", dev, "up")
        self._ip("pub", "addr", "add", SINK_NET + ".1/30", "dev", "sink")
        self._ip("pub", "neigh", "add", SINK_NET + ".2", "lladdr",
                 "02:00:00:00:00:02", "dev", "sink", "nud", "permanent")
        self._ip("pub", "route", "add", "default", "via", SINK_NET + ".2",
                 "dev", "sink")
        for side in ("a", "b"):
            self._router(side)
        # Routed ("none") LANs are reachable from the public segment.
        for side in ("a", "b"):
            if self.nat[side] != "none":
                continue
            via = ROUTER_WAN[side]
            lan = ROUTED_LAN[side] + ".0/24"
            self._ip("pub", "route", "add", lan, "via", via)
            other = "b" if side == "a" else "a"
            self._ip("r" + other, "route", "add", lan, "via", via)

    def _router(self, side):
        r, h, pub = "r" + side, side, "pub"
        net = ROUTED_LAN[side] if self.nat[side] == "none" else PRIVATE_LAN[side]
        port = "wan-" + side
        _sh("ip", "-n", self.ns[r], "link", "add", "wan", "type", "veth",
            "peer", "name", port, "netns", self.ns[pub])
        self._ip(pub, "link", "set", port, "master", "br0")
        self._ip(pub, "link", "set", port, "up")
        self._ip(r, "addr", "add", ROUTER_WAN[side] + "/24", "dev", "wan")
        self._ip(r, "link", "set", "wan", "up")
        _sh("ip", "-n", self.ns[r], "link", "add", "lan", "type", "veth",
            "peer", "name", "eth0", "netns", self.ns[h])
        self._ip(r, "addr", "add", net + ".1/24", "dev", "lan")
        self._ip(r, "link", "set", "lan", "up")
        self._ip(h, "addr", "add", net + ".2/24", "dev", "eth0")
        self._ip(h, "link", "set", "eth0", "up")
        self._ip(h, "route", "add", "default", "via", net + ".1")
        self.host_ip[side] = net + ".2"
        _sh("ip", "netns", "exec", self.ns[r], "sysctl", "-qw",
            "net.ipv4.ip_forward=1")
        _sh("ip", "netns", "exec", self.ns[r], "nft", "-f", "-",
            input=self._ruleset(self.nat[side]).encode())

    @staticmethod
    def _ruleset(flavour):
        nat = {"eim": "masquerade", "udp-block": "masquerade",
               "symmetric": "masquerade fully-random", "none": None}[flavour]
        lines = ["table ip pp {",
                 " chain postrouting { type nat hook postrouting priority srcnat;"
                 " policy accept;"]
        if nat:
            lines.append('  oifname "wan" %s' % nat)
        lines += [" }",
                  " chain forward { type filter hook forward priority filter;"
                  " policy accept;"]
        if flavour == "udp-block":
            lines.append('  iifname "lan" meta l4proto udp counter drop')
        lines += [" }"]
        if nat:
            # Unsolicited packets to the router itself are dropped before
            # conntrack confirms an entry for them.  Without this, a peer's
            # early hole-punching packet leaves an entry whose reply tuple
            # collides with the mapping our host's reply wants, and
            # masquerade moves that reply to another port: the NAT would
            # turn endpoint-dependent by accident.
            lines += [" chain input { type filter hook input priority filter;"
                      " policy accept;",
                      '  iifname "wan" ct state new counter drop', " }"]
        lines += ["}"]
        return "\n".join(lines) + "\n"

    # ---- using ----

    def name(self, key):
        """The namespace name of "pub", "ra", "a", "rb" or "b"."""
        return self.ns[key]

    def run(self, key, *args, check=True):
        return _sh("ip", "netns", "exec", self.ns[key], *args, check=check)

    def spawn(self, key, args, **popen):
        """Starts a program in namespace `key`; it is killed by close()."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[key]] +
                             [str(a) for a in args], **popen)
        self.procs.append(p)
        return p

    def prefix_cmd(self, key):
        """What to put before a command to run it in namespace `key`."""
        return ["ip", "netns", "exec", self.ns[key]]

    def in_ns(self, key, fn, *args, **kwargs):
        return in_ns(self.ns[key], fn, *args, **kwargs)

    def conntrack_flush(self, side):
        """Forgets every NAT mapping of a router (conntrack -F)."""
        self.run("r" + side, "conntrack", "-F", check=False)

    def nat_new_ports(self, side, low=20000, high=29999):
        """From now on the router maps onto ports low-high only, and it
        forgets every mapping it had (conntrack -F): no old mapping can
        come back, as when a home router reboots or a carrier NAT
        reassigns.  Every flow through it gets a new public port."""
        rule = ('oifname "wan" meta l4proto { tcp, udp } masquerade to :%d-%d'
                % (low, high))
        if self.nat[side] == "symmetric":
            rule += " fully-random"
        _sh("ip", "netns", "exec", self.ns["r" + side], "nft", "-f", "-",
            input=("flush chain ip pp postrouting\n"
                   "add rule ip pp postrouting %s\n"
                   'add rule ip pp postrouting oifname "wan" masquerade\n'
                   % rule).encode())
        self.conntrack_flush(side)

    def move_host(self, side, last_octet):
        """Host `side` gets another address in its LAN: the old one is
        removed (sockets bound to it go dead), the new one added, the
        default route put back.  Returns the new address."""
        net = ROUTED_LAN[side] if self.nat[side] == "none" else PRIVATE_LAN[side]
        old, new = self.host_ip[side], "%s.%d" % (net, last_octet)
        self._ip(side, "addr", "del", old + "/24", "dev", "eth0")
        self._ip(side, "addr", "add", new + "/24", "dev", "eth0")
        self._ip(side, "route", "replace", "default", "via", net + ".1")
        self.host_ip[side] = new
        return new

    def block(self, side):
        """The router forwards nothing more (either way) until unblock():
        the LAN is cut off from the internet."""
        _sh("ip", "netns", "exec", self.ns["r" + side], "nft", "-f", "-",
            input=b"table ip ppblock {\n chain forward {\n  type filter hook "
                  b"forward priority -10; policy drop;\n }\n}\n")

    def unblock(self, side):
        self.run("r" + side, "nft", "delete", "table", "ip", "ppblock")

    def udp_rcvbuf_errors(self, key):
        """UDP datagrams namespace `key` dropped for a full receive buffer
        (RcvbufErrors in /proc/net/snmp)."""
        lines = [l.split() for l in self.run(key, "cat", "/proc/net/snmp")
                 .stdout.decode().splitlines() if l.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])

    def nft_counters(self, side):
        return self.run("r" + side, "nft", "list", "ruleset").stdout.decode()

    def stun_mapping(self, side, servers):
        """What each STUN server in `servers` sees of ONE socket on host
        `side`: equal mappings = endpoint-independent, different =
        symmetric, None = no answer."""
        def probe():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("0.0.0.0", 0))
                return [stun_binding(s, srv, timeout=1.0) for srv in servers]
        return self.in_ns(side, probe)

    # ---- teardown ----

    def close(self):
        if self.closed:
            return
        self.closed = True
        _live.discard(self)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        # Anything still inside was started by this net (ip netns exec
        # children): end it by pid before the namespace goes.
        for ns in self.made:
            r = _sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.decode().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError as e:
                    if e.errno != errno.ESRCH:
                        raise
        for ns in reversed(self.made):
            _sh("ip", "netns", "del", ns, check=False)
        self.made = []


def _close_all():
    for net in list(_live):
        net.close()


atexit.register(_close_all)


def reap_stale():
    """Deletes namespaces of this harness whose run (pid) is gone."""
    r = _sh("ip", "netns", "list", check=False)
    for line in r.stdout.decode().splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) < 4 or parts[0] != PREFIX or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue	# still running: not ours to touch
        except OSError as e:
            if e.errno != errno.ESRCH:
                continue
        if not _sh("ip", "netns", "pids", name, check=False).stdout.strip():
            _sh("ip", "netns", "del", name, check=False)


class StunReflector:
    """A minimal STUN Binding responder (XOR-MAPPED-ADDRESS only) on a UDP
    port in a namespace: a second vantage point to tell NAT mappings apart."""

    def __init__(self, net, key, ip):
        self.sock = net.in_ns(key, self._bind, ip)
        self.addr = self.sock.getsockname()
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _bind(ip):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        return s

    def _run(self):
        while True:
            try:
                data, (ip, port) = self.sock.recvfrom(2048)
            except OSError:
                return
            if len(data) < 20 or data[:2] != b"\x00\x01":
                continue
            xip = struct.unpack("!I", socket.inet_aton(ip))[0] ^ 0x2112A442
            attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, port ^ 0x2112, xip)
            self.sock.sendto(struct.pack("!HH", 0x0101, len(attr)) + data[4:20]
                             + attr, (ip, port))

    def close(self):
        self.sock.close()


# ---- coturn ----

class Coturn:
    """coturn in the public namespace, on TURN_IP only, with REST-API
    credentials from `secret` and a long-term user `user`:`password`."""

    def __init__(self, net, tmpdir, secret, user="alice", password="wonderland",
                 port=3478, realm="peerpipe.test", extra=()):
        self.net, self.port, self.realm = net, port, realm
        self.secret, self.user, self.password = secret, user, password
        self.dir = tmpdir
        self.conf = os.path.join(tmpdir, "turnserver.conf")
        self.log_path = os.path.join(tmpdir, "turnserver.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "listening-ip=%s" % TURN_IP,
                "relay-ip=%s" % TURN_IP,
                "listening-port=%d" % port,
                "min-port=49152", "max-port=65535",
                "fingerprint",
                "lt-cred-mech",
                "use-auth-secret",
                "static-auth-secret=%s" % secret,
                "user=%s:%s" % (user, password),
                "realm=%s" % realm,
                "no-cli", "no-tls", "no-dtls", "no-multicast-peers",
                "no-rfc5780", "no-software-attribute",
                "pidfile=%s" % os.path.join(tmpdir, "turnserver.pid"),
                "userdb=%s" % os.path.join(tmpdir, "turndb"),
                "log-file=stdout", "simple-log", "verbose",
            ] + list(extra)) + "\n")

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = self.net.spawn("pub", ["turnserver", "-c", self.conf],
                                   stdin=subprocess.DEVNULL, stdout=self._log,
                                   stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout):
        """Polls with STUN Binding requests from router A until one answers."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("turnserver exited with %d:\n%s" % (
                    self.proc.returncode, self.log()[-3000:]))
            if self.net.in_ns("ra", self._probe):
                return
            if time.monotonic() > deadline:
                raise AssertionError("turnserver not answering STUN after "
                                     "%d s:\n%s" % (timeout, self.log()[-3000:]))

    def _probe(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ROUTER_WAN["a"], 0))
            return stun_binding(s, (TURN_IP, self.port), timeout=0.2)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


if __name__ == "__main__":
    # Self-check: build each flavour and show what STUN sees from each side.
    import sys
    import tempfile
    reason = why_not()
    if reason:
        print("skip:", reason)
        sys.exit(0)
    reap_stale()
    for fa, fb in (("eim", "eim"), ("symmetric", "symmetric"),
                   ("eim", "none"), ("udp-block", "eim")):
        with Net(fa, fb) as net, tempfile.TemporaryDirectory() as d:
            turn = Coturn(net, d, "s3cret").start()
            refl = StunReflector(net, "pub", SIGNAL_IP)
            for side in ("a", "b"):
                seen = net.stun_mapping(side, [(TURN_IP, 3478), refl.addr])
                print("%-9s %s host %s -> STUN servers see %s" % (
                    net.nat[side], side, net.host_ip[side], seen))
            refl.close()
            turn.stop()
