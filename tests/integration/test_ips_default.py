"""The gateway's IPS is on by default ([ips] mode = auto): a gateway that
shares services and cannot run Suricata refuses to start, naming the
explicit opt-out `[ips] mode = off`; with that opt-out it starts; an agent
that shares nothing never needs Suricata.  No root needed: the Suricata
program is pointed at a path that does not exist."""

import os

from agents import AgentProcess, new_room, write_config

MISSING = "/nonexistent/peerpipe-test/suricata"


def conf(tmp_path, server, name, extra, services=True):
    return write_config(
        str(tmp_path / (name + ".conf")), name,
        "wss://127.0.0.1:%d/ws" % server.port, new_room(),
        services=[("web", 28095, "tcp", "127.0.0.1", 9)] if services else (),
        extra=extra)


def test_gateway_without_suricata_refuses_to_start(tmp_path, server):
    c = conf(tmp_path, server, "gw-nosuri", "[ips]\nsuricata = %s\n" % MISSING)
    a = AgentProcess("gateway", c, str(tmp_path), "gw-nosuri")
    try:
        rc = a.proc.wait(60)
    finally:
        a.stop()
    log = a.log()
    assert rc != 0, log
    assert MISSING in log and "mode = auto, the default" in log, log
    assert "`[ips] mode = off`" in log, log
    assert "room" not in log.split(MISSING)[1], "it went on after the error"
    assert a.sanitizer_report() is None, a.sanitizer_report()


def test_mode_off_is_the_explicit_opt_out(tmp_path, server):
    c = conf(tmp_path, server, "gw-off",
             "[ips]\nmode = off\nsuricata = %s\n" % MISSING)
    a = AgentProcess("gateway", c, str(tmp_path), "gw-off")
    try:
        a.wait_log(r"gateway gw-off: room .*1 service\(s\) shared", timeout=60)
        assert "IPS instance" not in a.log()
        assert a.alive()
    finally:
        assert a.stop() == 0, a.log_tail()
    assert a.sanitizer_report() is None, a.sanitizer_report()


def test_agents_sharing_nothing_never_need_suricata(tmp_path, server):
    """The default applies to gateways that share services only: a client,
    and a gateway without a [service], start without Suricata."""
    for mode, name in (("connect", "cl-nosuri"), ("gateway", "gw-empty")):
        c = conf(tmp_path, server, name, "[ips]\nsuricata = %s\n" % MISSING,
                 services=False)
        a = AgentProcess(mode, c, str(tmp_path), name)
        try:
            a.wait_log(r"%s: room .*0 service\(s\) shared" % name, timeout=60)
            assert "IPS" not in a.log()
        finally:
            assert a.stop() == 0, a.log_tail()
        assert a.sanitizer_report() is None, a.sanitizer_report()
        assert os.path.exists(c)


def test_check_config_says_what_a_gateway_would_do(tmp_path, server):
    import subprocess
    from agents import agent_bin
    c = conf(tmp_path, server, "gw-check", "[ips]\nsuricata = %s\n" % MISSING)
    r = subprocess.run([agent_bin(), "check-config", "-c", c],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "1 service(s) shared, 0 forward(s), IPS auto\n" in r.stdout, r.stdout
    assert "%s is not installed here" % MISSING in r.stdout, r.stdout
    assert "`[ips] mode = off`" in r.stdout, r.stdout
    c = conf(tmp_path, server, "gw-check-off", "[ips]\nmode = off\n")
    r = subprocess.run([agent_bin(), "check-config", "-c", c],
                       capture_output=True, text=True, timeout=30)
    assert "IPS off (a gateway shares them uninspected)" in r.stdout, r.stdout
    assert "not installed" not in r.stdout
