"""Process lifecycle and listeners: graceful drain on SIGTERM/SIGINT, command-line errors,
--help, IPv6 loopback and UNIX sockets."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH
from tests.helpers import Reader, get
from tests.server.helpers import APP, FAST, assert_served, wait_for_stderr


def _not_served(server) -> bool:
    """Whether a new connection is refused (True) or at least never served (False)."""
    try:
        sock = socket.create_connection((server.host, server.port), timeout=10)
    except ConnectionRefusedError:
        return True
    with sock:
        # Raced the listener's close: queued, then dropped unanswered when it closed.
        sock.sendall(get())
        data, _ = Reader(sock).read_until_closed()
        assert data == b""
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_request_then_exits_0(server_factory, sig):
    server = server_factory([APP, *FAST, "--keep-alive-timeout", "30"])
    with server.connect() as idle, server.connect() as busy:
        idle_reader = Reader(idle)
        idle.sendall(get())
        assert idle_reader.response().status == 200  # now an idle keep-alive connection
        busy.sendall(get(b"/slow"))
        wait_for_stderr(server, "slow: started")
        server.signal(sig)
        wait_for_stderr(server, "shutting down")
        # New connections are refused from now on (a first attempt may race the close of the
        # listener and be dropped unanswered; by the second the listener is surely gone).
        assert _not_served(server) or _not_served(server)
        # The idle connection is closed cleanly at once; the in-flight request completes.
        idle_reader.expect_eof()
        busy_reader = Reader(busy)
        response = busy_reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"slow done"
        assert response.header(b"connection") == b"close"
        busy_reader.expect_eof()
    assert server.wait(20) == 0
    log = server.stderr_text()
    assert "Traceback" not in log
    assert '"GET /slow HTTP/1.1" 200' in log


def test_a_connection_whose_first_request_is_still_on_its_way_is_answered(server_factory):
    # Accepted before the drain began, its request not read yet: closing it would throw the
    # request away (what a --workers reload raced into). It gets a short grace instead.
    server = server_factory([APP, *FAST, "--keep-alive-timeout", "30"])
    with server.connect() as early, server.connect() as busy:
        busy.sendall(get(b"/slow"))
        wait_for_stderr(server, "slow: started")  # the early connection is surely accepted
        server.signal(signal.SIGTERM)
        wait_for_stderr(server, "shutting down")
        early.sendall(get())
        reader = Reader(early)
        response = reader.response()
        assert response.status == 200 and response.header(b"connection") == b"close"
        reader.expect_eof()
        assert Reader(busy).response().body == b"slow done"
    assert server.wait(20) == 0


def test_a_silent_new_connection_does_not_hold_up_the_drain(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as silent:
        assert_served(server)
        server.signal(signal.SIGTERM)
        # Closed cleanly after the grace: no response and no reset.
        assert Reader(silent).read_until_closed() == (b"", "eof")
    assert server.wait(20) == 0  # (closed at EOF, as clients do: the server need not linger)


def test_signal_with_no_connections_exits_0(server_factory):
    server = server_factory([APP, *FAST])
    assert_served(server)
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0
    assert "Traceback" not in server.stderr_text()


def test_graceful_timeout_cuts_off_slow_requests(server_factory):
    server = server_factory([APP, *FAST, "--graceful-timeout", "0.2"])
    with server.connect() as busy:
        busy.sendall(get(b"/slow"))
        wait_for_stderr(server, "slow: started")
        server.signal(signal.SIGTERM)
        data, _ = Reader(busy).read_until_closed()
        assert data == b""  # cancelled: no response
    assert server.wait(20) == 0
    assert "graceful timeout: aborting 1 connection(s)" in server.stderr_text()


# ---------------------------------------------------------------------- command line

def _synack(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "synack", *args], capture_output=True, text=True, timeout=30,
        env=env, stdin=subprocess.DEVNULL,
    )


def test_port_in_use_exits_1_with_one_line():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = _synack("--port", str(port), "hello:app")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synack: error: cannot listen on 127.0.0.1:%d" % port)
    assert "address already in use" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--port", "abc"],
    ["--head-timeout", "0"],
    ["--loop", "nonsense"],
    ["--max-request-line", "20000"],  # above --max-head-bytes
], ids=["unknown-flag", "bad-int", "bad-timeout", "bad-choice", "conflict"])
def test_bad_command_line_exits_2_with_one_line(args):
    result = _synack(*args, "hello:app")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synack: error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_lists_options_with_defaults():
    result = _synack("--help")
    assert result.returncode == 0
    # The options part (after the usage lines), each entry joined onto one line.
    entries = re.split(r"\n  (?=-)", result.stdout.partition("\n\n")[2])
    text = "\n".join(" ".join(entry.split()) for entry in entries)
    for option, default in [
        ("--port", "3000"),
        ("--host", "127.0.0.1"),
        ("--head-timeout", "10.0"),
        ("--keep-alive-timeout", "5.0"),
        ("--linger-timeout", "2.0"),
        ("--write-timeout", "30.0"),
        ("--max-request-line", "8192"),
        ("--max-body-bytes", "1073741824"),
        ("--max-connections", "10000"),
    ]:
        assert re.search(rf"^{option} [A-Z]+ .*\(default: {re.escape(default)}\)$", text, re.M), option
    assert "--uds" in text


# ---------------------------------------------------------------------- listeners

def test_ipv6_loopback(server_factory):
    server = server_factory([APP, *FAST, "--host", "::1"])
    assert server.host == "::1"
    with server.connect() as sock:
        assert sock.family == socket.AF_INET6
        reader = Reader(sock)
        sock.sendall(get())
        assert reader.response().body == b"Hello, world!"
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 4\r\nConnection: close\r\n\r\nv6ok")
        assert reader.response().body == b"v6ok"
        reader.expect_eof()
    assert "listening on http://[::1]:" in server.stderr_text()


def test_unix_socket(server_factory):
    with tempfile.TemporaryDirectory(prefix="synack-") as directory:
        path = os.path.join(directory, "s.sock")
        server = server_factory([APP, *FAST, "--uds", path])
        assert server.uds == path
        with server.connect() as sock:
            assert sock.family == socket.AF_UNIX
            reader = Reader(sock)
            for _ in range(3):
                sock.sendall(get())
                assert reader.response().body == b"Hello, world!"
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nuds")
            assert reader.response().body == b"uds"
            reader.expect_eof()
        with server.connect() as sock:
            sock.sendall(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
            reader = Reader(sock)
            assert reader.response().status == 505
            reader.expect_eof()
        server.stop()
        assert "Traceback" not in server.stderr_text()
