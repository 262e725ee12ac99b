"""Shared fixtures for the integration suites: the real peerpipe-server.

PP_SERVER_BIN names the built server (ctest sets it).  start_server() runs it
on an ephemeral loopback port with extra arguments, waits for its
`listening on wss://ADDR:PORT/ws` line (polling its log, never sleeping a
fixed time) and returns a ServerProcess with host, port, proc and its log.

Fixtures:
  server_factory  function scope: call it as server_factory("--max-rooms", "1")
                  to get a fresh server; all are stopped at the end of the
                  test, which fails unless each exits 0 with no sanitizer
                  report.
  shared_server   module scope: one server with default limits for the
                  protocol tests (they use fresh connections and rooms).
  server          function scope: shared_server, checked alive and free of
                  sanitizer reports after each test, so a crash is charged
                  to the test that caused it.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

START_TIMEOUT = 60.0	# certificate generation under ASan on a busy machine
STOP_TIMEOUT = 30.0

_READY_RE = re.compile(r"listening on wss://(\[[^\]]+\]|[^\s/:\"]+):(\d+)/ws")
_SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:"
    r"|SUMMARY: (Address|Leak|Undefined)")


def server_bin():
    path = os.environ.get("PP_SERVER_BIN")
    if not path:
        pytest.fail("PP_SERVER_BIN is not set: point it at the built "
                    "peerpipe-server (ctest sets it), e.g. PP_SERVER_BIN="
                    "build/server/peerpipe-server", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("PP_SERVER_BIN=%s is not an executable file" % path,
                    pytrace=False)
    return path


def _plain(line):
    """A log line as text: JSON log lines become their values joined."""
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            return line
        if isinstance(obj, dict):
            return " ".join(str(v) for v in obj.values())
    return line


class ServerProcess:
    """One running peerpipe-server; stderr goes to a file we poll."""

    def __init__(self, args, state_dir, log_path, env=None, prefix=()):
        self.args = list(args)
        self.state_dir = state_dir
        self.log_path = log_path
        self.host = None
        self.port = None
        self._log = open(log_path, "wb")
        full_env = dict(os.environ)
        # Sanitizer reports must reach the log we check, and UBSan must be
        # loud; keep whatever the caller set on top.
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            list(prefix) + [server_bin()] + self.args, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env)
        self.pid = self.proc.pid
        self.returncode = None

    def log(self, since=0):
        """The server's output so far, from byte offset `since`."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                m = _READY_RE.search(_plain(line))
                if m:
                    self.host = m.group(1).strip("[]")
                    if self.host in ("0.0.0.0", "::"):
                        self.host = "127.0.0.1"
                    self.port = int(m.group(2))
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(
                    "peerpipe-server %s exited with %d before it was ready:\n"
                    "%s" % (" ".join(self.args), self.proc.returncode,
                            self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError(
                    "peerpipe-server %s not ready after %.0f s:\n%s"
                    % (" ".join(self.args), timeout, self.log_tail()))
            time.sleep(0.05)

    def alive(self):
        return self.proc.poll() is None

    def log_size(self):
        return os.path.getsize(self.log_path)

    def sanitizer_report(self, since=0):
        """The first sanitizer report in the log after byte `since`."""
        log = self.log(since)
        m = _SANITIZER_RE.search(log)
        return log[max(0, m.start() - 200):m.start() + 4000] if m else None

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Exit code, or None if still running after `timeout` seconds."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stops the server gracefully; returns its exit code.

        Kills it (by pid) if it does not exit in time and returns None.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return rc

    def check_clean_exit(self, rc):
        """Fails unless the server exited 0 and no sanitizer spoke."""
        report = self.sanitizer_report()
        assert report is None, "sanitizer report from peerpipe-server:\n" \
            + report
        assert rc == 0, "peerpipe-server %s exited with %r:\n%s" % (
            " ".join(self.args), rc, self.log_tail())


def start_server(*extra_args, state_dir=None, listen="127.0.0.1:0",
                 log_level="info", env=None, wait=True, tmpdir=None,
                 prefix=()):
    """Starts peerpipe-server with extra_args; returns a ServerProcess.

    prefix: a command to run it under, e.g. ["ip", "netns", "exec", NS].
    state_dir defaults to a fresh temporary directory.  With wait=False the
    caller must call wait_ready() itself (e.g. to expect a failure).
    """
    base = tmpdir or tempfile.mkdtemp(prefix="pp-it-")
    if state_dir is None:
        state_dir = os.path.join(base, "state")
        os.makedirs(state_dir, exist_ok=True)
    args = []
    if listen is not None:
        args += ["--listen", listen]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    if log_level is not None:
        args += ["--log-level", log_level]
    args += [str(a) for a in extra_args]
    fd, log_path = tempfile.mkstemp(prefix="server-", suffix=".log", dir=base)
    os.close(fd)
    srv = ServerProcess(args, state_dir, log_path, env=env, prefix=prefix)
    if wait:
        try:
            srv.wait_ready()
        except BaseException:
            srv.stop(signal.SIGKILL, timeout=5)
            raise
    return srv


@pytest.fixture(scope="session")
def shared_state_dir(tmp_path_factory):
    """One state dir for servers that do not care: the certificate is
    generated once and reused."""
    return str(tmp_path_factory.mktemp("state"))


@pytest.fixture
def server_factory(tmp_path, shared_state_dir):
    """A callable starting servers; each is stopped and checked at teardown.

    server_factory(*args, state_dir=..., wait=..., ...) -> ServerProcess.
    A test that stops a server itself should set srv.stopped_by_test = True
    (and check its exit itself).
    """
    started = []

    def factory(*args, **kwargs):
        kwargs.setdefault("tmpdir", str(tmp_path))
        kwargs.setdefault("state_dir", shared_state_dir)
        srv = start_server(*args, **kwargs)
        started.append(srv)
        return srv

    yield factory
    problems = []
    for srv in started:
        if getattr(srv, "stopped_by_test", False):
            srv.stop(signal.SIGKILL, timeout=5)
            continue
        was_alive = srv.alive()
        rc = srv.stop()
        try:
            assert was_alive, "peerpipe-server died during the test " \
                "(exit %r):\n%s" % (rc, srv.log_tail())
            srv.check_clean_exit(rc)
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, shared_state_dir):
    base = str(tmp_path_factory.mktemp("shared-server"))
    srv = start_server(tmpdir=base, state_dir=shared_state_dir)
    yield srv
    rc = srv.stop()
    srv.check_clean_exit(rc)


@pytest.fixture
def server(shared_server):
    """The module's shared server, checked after each test."""
    assert shared_server.alive(), "shared peerpipe-server is dead " \
        "(an earlier test killed it):\n" + shared_server.log_tail()
    since = shared_server.log_size()
    yield shared_server
    assert shared_server.alive(), "peerpipe-server died during this " \
        "test:\n" + shared_server.log_tail()
    report = shared_server.sanitizer_report(since)
    assert report is None, "sanitizer report from peerpipe-server:\n" \
        + report
