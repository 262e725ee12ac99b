"""NAT traversal benchmark (driven by bench/nat.sh): connection setup time
per NAT flavour over RUNS fresh agent pairs, and tunnel throughput, on the
emulated internet of tests/integration/netns.py (root only).

Setup time is the agent's own setup_ms (offer/answer to tunnel ready) and,
beside it, the wall time from starting both agents to the client's listener.
Throughput moves BYTES each way at once through one forwarded TCP
connection (SHA-256 checked) and counts both directions.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))

import netns  # noqa: E402
import test_nat  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def drops(scene):
    """UDP receive-buffer drops so far: at coturn (public namespace), and
    at the two agents' hosts."""
    return {k: scene.net.udp_rcvbuf_errors(k) for k in ("pub", "a", "b")}


def one(tmp, fa, fb, transports, timeout, bulk, opts=None):
    opts = opts or {}
    scene = test_nat.Scene(tmp, fa, fb, turn_transports=transports, **opts)
    try:
        try:
            addr, wall = scene.wait_connected(timeout)
        except AssertionError:
            return None
        p = scene.peer(scene.cl, "gw-office")
        r = {"setup_ms": p["setup_ms"], "wall_ms": wall * 1000,
             "path": "%s %s/%s" % (p["path"]["type"], p["path"]["local_type"],
                                   p["path"]["remote_type"])}
        if bulk:
            d0 = drops(scene)
            took = scene.bulk_both_ways(addr)
            r["mbit_s"] = 2 * test_nat.BULK_BYTES * 8 / took / 1e6
            d1 = drops(scene)
            r["drops"] = "coturn %d, A %d, B %d" % tuple(
                d1[k] - d0[k] for k in ("pub", "a", "b"))
        return r
    finally:
        scene.close(check=False)


def transports_of(fl):
    return ("udp", "tcp") if "udp-block" in fl else ("udp",)


def scene_opts(args):
    return {"coturn_options": args.coturn_option,
            "pub_sysctls": args.pub_sysctl}


def interleave(args):
    flavours = args.flavours.split(",")
    got = {fl: [] for fl in flavours}
    for i in range(args.interleave):
        for fl in flavours:
            fa, fb = fl.split("/")
            with tempfile.TemporaryDirectory(prefix="ppnat-") as tmp:
                r = one(tmp, fa, fb, transports_of(fl), args.timeout,
                        bulk=True, opts=scene_opts(args))
            got[fl].append(r["mbit_s"] if r else None)
            print("round %d %-20s %s" % (i + 1, fl, "%.0f Mbit/s, %s; UDP "
                  "receive-buffer drops: %s" % (r["mbit_s"], r["path"],
                                                 r["drops"])
                  if r else "no connection"))
            sys.stdout.flush()
    print("%-20s %5s %10s %6s %6s" % ("flavour (A/B)", "ok", "Mbit/s p50",
                                      "min", "max"))
    for fl in flavours:
        v = [x for x in got[fl] if x is not None]
        print("%-20s %2d/%-2d %10s %6s %6s" % (
            fl, len(v), len(got[fl]),
            "%.0f" % statistics.median(v) if v else "-",
            "%.0f" % min(v) if v else "-", "%.0f" % max(v) if v else "-"))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bulk-runs", type=int, default=3)
    ap.add_argument("--flavours", default="eim/eim,eim/none,symmetric/symmetric,"
                    "udp-block/eim")
    ap.add_argument("--timeout", type=float, default=40)
    ap.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                    help="throughput only: ROUNDS rounds of one run of every "
                    "flavour in turn, so that direct and relayed see the same "
                    "machine")
    ap.add_argument("--coturn-option", action="append", default=[],
                    metavar="LINE", help="an extra turnserver.conf line "
                    "(repeatable), e.g. relay-threads=1")
    ap.add_argument("--pub-sysctl", action="append", default=[],
                    metavar="KEY=VALUE", help="a sysctl for the public "
                    "namespace (coturn's), e.g. net.core.rmem_default=4194304")
    args = ap.parse_args()
    why = netns.why_not()
    if why:
        print("nat bench skipped:", why)
        return 0
    netns.reap_stale()
    print("machine: %s, %d cpus, kernel %s; agent %s" % (
        platform.node(), os.cpu_count(), platform.release(),
        os.environ.get("PP_AGENT_BIN")))
    print("bulk: %d MiB each way per run" % (test_nat.BULK_BYTES >> 20))
    if args.coturn_option or args.pub_sysctl:
        print("coturn options: %s; public namespace sysctls: %s" % (
            ", ".join(args.coturn_option) or "-",
            ", ".join(args.pub_sysctl) or "-"))
    if args.interleave:
        return interleave(args)
    print("%-20s %5s %9s %9s %9s %9s %10s  %s" % (
        "flavour (A/B)", "ok", "setup p50", "setup p99", "wall p50",
        "wall p99", "Mbit/s p50", "path"))
    for fl in args.flavours.split(","):
        fa, fb = fl.split("/")
        transports = transports_of(fl)
        res = []
        # Flavours that cannot connect are tried twice, not RUNS times.
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="ppnat-") as tmp:
                r = one(tmp, fa, fb, transports, args.timeout,
                        bulk=i < args.bulk_runs, opts=scene_opts(args))
            res.append(r)
            if i == 1 and not any(res):
                break
        ok = [r for r in res if r]
        if not ok:
            print("%-20s %2d/%-2d %s" % (fl, 0, len(res),
                                         "no connection within %.0f s" %
                                         args.timeout))
            continue
        setup = [r["setup_ms"] for r in ok]
        wall = [r["wall_ms"] for r in ok]
        mbit = [r["mbit_s"] for r in ok if "mbit_s" in r]
        paths = sorted(set(r["path"] for r in ok))
        print("%-20s %2d/%-2d %9.0f %9.0f %9.0f %9.0f %10s  %s" % (
            fl, len(ok), len(res), pct(setup, 50), pct(setup, 99),
            pct(wall, 50), pct(wall, 99),
            "%.0f" % statistics.median(mbit) if mbit else "-",
            ", ".join(paths)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
