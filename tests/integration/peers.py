"""Test peers as processes: the interop peers (aiortc, Chromium) and our own
C peer (tests/tools/rtcpeer.c), all speaking the same command line and
printing one RESULT line.  Shared by the interop suites.
"""

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
INTEROP = os.path.join(ROOT, "tests", "interop")
AIORTC_PEER = os.path.join(INTEROP, "aiortc_peer.py")
CHROMIUM_PEER = os.path.join(INTEROP, "browser", "chromium_peer.mjs")
PEER_JS = os.path.join(INTEROP, "browser", "peer.js")
CHROMIUM = "/usr/bin/chromium"
PYTHON = "/usr/bin/python3"	# Debian's, where python3-aiortc lives

PEER_TIMEOUT = 120	# each peer's own --timeout (seconds)
WAIT_MARGIN = 90	# on top of it, before we kill a peer that hangs
COUNT = 100

OFFERER, ANSWERER = "peer-a", "peer-b"	# the glare rule agrees


def chromium_missing():
    why = []
    if not os.access(CHROMIUM, os.X_OK):
        why.append("%s is missing" % CHROMIUM)
    if not os.path.isdir(os.path.join(INTEROP, "node_modules",
                                      "playwright-core")):
        why.append("tests/interop/node_modules (playwright-core) is missing")
    if shutil.which("node") is None:
        why.append("node is not installed")
    return "; ".join(why)


needs_chromium = pytest.mark.skipif(
    bool(chromium_missing()),
    reason="Chromium peer unavailable (%s): run scripts/install-browser.sh "
    "as root" % chromium_missing())


def rtcpeer_bin():
    path = os.environ.get("PP_RTCPEER_BIN")
    if not path:
        pytest.fail("PP_RTCPEER_BIN is not set: run this suite under ctest")
    return path


def peer_command(impl, server, room_uuid, name, peer, role, mode, *extra,
                 room_name="interop selfcheck"):
    if impl == "aiortc":
        cmd = [PYTHON, AIORTC_PEER]
    elif impl == "c":
        cmd = [rtcpeer_bin()]
    else:
        cmd = [shutil.which("node") or "node", CHROMIUM_PEER]
    return cmd + [
        "--url", "wss://%s:%d/ws" % (server.host, server.port),
        "--room-uuid", room_uuid, "--room-name", room_name,
        "--name", name, "--peer", peer, "--role", role, "--mode", mode,
        "--timeout", str(PEER_TIMEOUT), "--host-address", "127.0.0.1",
    ] + list(extra)


class PeerRun:
    """One peer process: stdout captured, stderr in a file for diagnosis."""

    def __init__(self, label, cmd, workdir):
        self.label = label
        self.cmd = cmd
        self.err_path = os.path.join(workdir, label + ".stderr")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._err)
        self.stdout = ""
        self.rc = None

    def _stop(self):
        """SIGTERM first (the Chromium peer then closes its browser), then
        SIGKILL; returns what the process printed."""
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out

    def wait(self, timeout):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
            self.rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            out = self._stop()
            self.rc = None
        self.stdout = out.decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self._stop()
        self._err.close()

    def stderr_tail(self, n=60):
        with open(self.err_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def result(self):
        """The RESULT object; fails unless stdout is exactly that line."""
        lines = self.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith("RESULT "), (
            "%s: expected exactly one RESULT line on stdout, got %r (exit "
            "%r)\n--- stderr ---\n%s" % (self.label, self.stdout, self.rc,
                                         self.stderr_tail()))
        return json.loads(lines[0][len("RESULT "):])

    def diagnosis(self):
        return "--- %s (exit %r): %s\n--- stdout ---\n%s--- stderr ---\n%s" % (
            self.label, self.rc, " ".join(self.cmd), self.stdout,
            self.stderr_tail())


def run_pair(server, offer, answer, logs=None, room_name="interop selfcheck"):
    """offer/answer: (impl, mode, [extra args]).  Returns both results;
    with a list as logs, appends both peers' stderr to it."""
    room = str(uuid.uuid4())
    workdir = tempfile.mkdtemp(prefix="pp-interop-")
    runs = []
    try:
        for (impl, mode, extra), name, other, role in (
                (offer, OFFERER, ANSWERER, "offer"),
                (answer, ANSWERER, OFFERER, "answer")):
            cmd = peer_command(impl, server, room, name, other, role, mode,
                               *extra, room_name=room_name)
            runs.append(PeerRun("%s-%s-%s" % (role, impl, mode), cmd,
                                workdir))
        for r in runs:
            r.wait(PEER_TIMEOUT + WAIT_MARGIN)
        if logs is not None:
            logs.extend(r.stderr_tail(100000) for r in runs)
        why = "\n".join(r.diagnosis() for r in runs)
        results = [r.result() for r in runs]
        for r, res in zip(runs, results):
            assert res.get("ok") is True and r.rc == 0, (
                "%s failed: %s\n%s" % (r.label, res.get("error"), why))
        return results
    finally:
        for r in runs:
            r.kill()
        shutil.rmtree(workdir, ignore_errors=True)


