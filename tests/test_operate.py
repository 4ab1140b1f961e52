"""The first hour with a real ``python -m synack``: several addresses, systemd socket
activation, UNIX socket files (stale, live, mode), the pid file, the startup and shutdown lines,
the access log (duration, destination, governed by --log-level), --env-file and PORT."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from synack import __version__
from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH, Server
from tests.helpers import Reader, get
from tests.supervisor.helpers import wait_for

ServerFactory = Callable[..., Server]


def _get(connect: Callable[[], socket.socket], path: bytes = b"/") -> bytes:
    with connect() as sock:
        sock.sendall(get(path, b"Connection: close\r\n"))
        response = Reader(sock).response()
        assert response.status == 200, response
        return response.body


def _tcp(host: str, port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection((host, port), timeout=10)


def _unix(path: str) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        return sock

    return connect


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)]), PYTHONUNBUFFERED="1")


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def _run_to_end(args: list[str], listener: socket.socket, paths: list[bytes],
                env: dict[str, str] | None = None) -> tuple[list[bytes], str, str]:
    """Serve ``listener`` (passed as --fd, so requests queue before the server is ready and no
    ready line is needed), GET each path, stop; the bodies, stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), *args], env=env or _env(),
        pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        address = listener.getsockname()
        bodies = [_get(_tcp(address[0], address[1]), path) for path in paths]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        listener.close()
    return bodies, out.decode(), err.decode()


# ---------------------------------------------------------------------- listening


def test_workers_and_several_binds(server_factory: ServerFactory, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server = server_factory(["-w", "2", "-b", "127.0.0.1:0", "-b", f"unix:{path}", "--uds-mode", "600",
                             "sup_pid:app"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pids = {_get(_tcp(server.host, server.port)) for _ in range(4)}
    pids |= {_get(_unix(path)) for _ in range(4)}
    assert pids and all(pid.isdigit() for pid in pids)
    log = server.stderr_text()
    assert f"synack {__version__} serving sup_pid:app with 2 worker(s) under a supervisor" in log
    assert f"listening on unix:{path}" in log


def test_socket_activation_serves_fd_3(tmp_path: Path) -> None:
    listener = _listener()
    host, port = listener.getsockname()
    # LISTEN_PID must be the server's own pid: the shell sets it to $$ and execs into synack,
    # which finds the listener as descriptor 3 (sd_listen_fds(3)).
    command = f'LISTEN_PID=$$ LISTEN_FDS=1 exec "{sys.executable}" -m synack --port 1 hello:app'
    process = subprocess.Popen(["sh", "-c", command], env=_env(), pass_fds=(3,),
                               preexec_fn=lambda: os.dup2(listener.fileno(), 3),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _get(_tcp(host, port)) == b"Hello, world!"  # queued until the server serves
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    log = err.decode()
    assert process.returncode == 0, log
    assert "socket activation: serving 1 listener(s) passed in LISTEN_FDS" in log
    assert f"listening on http://127.0.0.1:{port}" in log
    assert "127.0.0.1:1" not in log  # --port is not bound under socket activation
    # Inherited, so not ours to make the kernel refuse: systemd's listener still takes connections.
    with socket.create_connection((host, port), timeout=5):
        pass
    listener.close()


@pytest.mark.parametrize("given, named", [
    (["--bind", "127.0.0.1:0"], "--bind 127.0.0.1:0"),
    (["-w", "2", "-b", "127.0.0.1:0", "-b", "unix:/tmp/x.sock"], "--bind 127.0.0.1:0, --bind unix:/tmp/x.sock"),
    (["--fd", "3"], "--fd 3"),
])
def test_an_address_beside_socket_activation_is_an_error(given: list[str], named: str) -> None:
    """systemd's sockets are the listeners: an explicit address as well is a one-line error
    naming both (not ignored, not bound beside them), and nothing is served."""
    listener = _listener()
    quoted = " ".join(given)
    command = f'LISTEN_PID=$$ LISTEN_FDS=1 exec "{sys.executable}" -m synack {quoted} hello:app'
    result = subprocess.run(["sh", "-c", command], env=_env(), pass_fds=(3,), timeout=30,
                            preexec_fn=lambda: os.dup2(listener.fileno(), 3),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
    listener.close()
    assert result.returncode == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("synack: error: systemd passed 1 listening socket(s) (LISTEN_FDS) and "
                           f"{named} names more"), result.stderr
    assert "listening on" not in result.stderr


def test_socket_activation_for_another_process_is_ignored(server_factory: ServerFactory) -> None:
    server = server_factory(["hello:app"], env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    assert _get(server.connect) == b"Hello, world!"
    assert "socket activation" not in server.stderr_text()


def test_a_stale_unix_socket_is_replaced(server_factory: ServerFactory, tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(path)  # a socket file nobody listens on: what a killed server leaves
    left.close()
    server = server_factory(["--uds", path, "hello:app"])
    assert _get(server.connect) == b"Hello, world!"


def test_a_live_unix_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "live.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(4)
    result = subprocess.run([sys.executable, "-m", "synack", "--uds", path, "hello:app"], env=_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"synack: error: cannot listen on {path}: another server is listening there (stop it or pick another path)"
    )
    # The other server's socket is still there and still answers.
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect(path)
    probe.close()
    live.close()


def test_pid_file_holds_the_pid_while_serving(server_factory: ServerFactory, tmp_path: Path) -> None:
    pid_file = tmp_path / "synack.pid"
    server = server_factory(["--pid", str(pid_file), "hello:app"])
    assert pid_file.read_text() == f"{server.process.pid}\n"
    assert server.stop() == 0
    assert not pid_file.exists()


def test_port_environment_variable(server_factory: ServerFactory) -> None:
    server = server_factory(["hello:app"], env={"PORT": "0"})  # server_factory adds --port 0 anyway
    assert server.host == "127.0.0.1"  # a flag wins over PORT
    listener = _listener()
    port = listener.getsockname()[1]
    listener.close()
    process = Server(["hello:app"], env={"PORT": str(port)})
    try:
        assert (process.host, process.port) == ("0.0.0.0", port)
        assert _get(_tcp("127.0.0.1", port)) == b"Hello, world!"
    finally:
        process.close()


def test_env_file_reaches_the_app(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OP_SECRET='from the file'\nOP_KEPT=file\n")
    env = {**_env(), "OP_KEPT": "environment"}
    bodies, _, err = _run_to_end(["--env-file", str(env_file), "op_env:app"], _listener(),
                                 [b"/OP_SECRET", b"/OP_KEPT"], env)
    assert bodies == [b"from the file", b"environment"], err



def test_a_reload_in_place_reads_the_env_file_again(server_factory: ServerFactory, tmp_path: Path) -> None:
    # The re-executed process inherits the variables the file added; they are the file's,
    # so its new values replace them and a variable dropped from it is gone.
    env_file = tmp_path / ".env"
    env_file.write_text("OP_SECRET=first\nOP_DROPPED=here\n")
    server = server_factory(["--env-file", str(env_file), "op_env:app"], env={**_env(), "OP_KEPT": "environment"})
    assert [_get(server.connect, path) for path in (b"/OP_SECRET", b"/OP_DROPPED")] == [b"first", b"here"]
    env_file.write_text("OP_SECRET=second\nOP_KEPT=file\n")
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "restarting in place" in server.stderr_text(), timeout=60), server.stderr_text()
    assert wait_for(lambda: _get(server.connect, b"/OP_SECRET") == b"second", timeout=60), server.stderr_text()
    assert _get(server.connect, b"/OP_DROPPED") == b"-"
    assert _get(server.connect, b"/OP_KEPT") == b"environment"  # the real environment still wins


# ---------------------------------------------------------------------- what it says


def test_startup_and_shutdown_lines(server_factory: ServerFactory) -> None:
    server = server_factory(["asgi_app:app", "--loop", "asyncio"])
    assert _get(server.connect, b"/") is not None
    assert server.stop() == 0
    log = server.stderr_text()
    assert f"synack {__version__} serving asgi_app:app (ASGI) in one process, asyncio loop" in log
    lines = log.splitlines()
    listening = next(i for i, line in enumerate(lines) if "listening on http://" in line)
    complete = next(i for i, line in enumerate(lines) if line.endswith("application startup complete"))
    assert listening < complete
    assert "Press CTRL+C to quit" not in log  # not a terminal
    assert re.search(r"drained in [0-9.]+s: \d+ connection\(s\) finished \(\d+ open when told to stop,"
                     r" \d+ taken from the listen queue\), 0 cut at the graceful timeout", log), log


def test_a_static_directory_and_wsgi_are_named(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory([str(tmp_path)])
    assert f"serving {tmp_path} (static files)" in server.stderr_text()
    server = server_factory(["wsgi_app:app"])
    assert "serving wsgi_app:app (WSGI)" in server.stderr_text()


def test_press_ctrl_c_on_a_terminal() -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "synack", "--port", "0", "hello:app"], env=_env(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"Press CTRL+C to quit" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        os.close(leader)
    assert b"Press CTRL+C to quit" in seen, seen
    assert seen.index(b"application startup complete") < seen.index(b"Press CTRL+C to quit")


# ---------------------------------------------------------------------- the access log


ACCESS = re.compile(r'^127\.0\.0\.1 - - \[[^]]+\] "GET /(?P<path>\w*) HTTP/1\.1" 200 \d+ "-" "-" (?P<us>\d+)us$')


def test_access_log_line_carries_the_duration(server_factory: ServerFactory) -> None:
    server = server_factory(["hello:app"])
    _get(server.connect, b"/timed")
    assert server.stop() == 0
    matches = [ACCESS.match(line) for line in server.stderr_text().splitlines()]
    found = [match for match in matches if match and match["path"] == "timed"]
    assert len(found) == 1, server.stderr_text()


def test_access_log_to_a_file(tmp_path: Path) -> None:
    log_file = tmp_path / "access.log"
    _, out, err = _run_to_end(["--access-log", str(log_file), "hello:app"], _listener(), [b"/one", b"/two"])
    lines = log_file.read_text().splitlines()
    assert [ACCESS.match(line)["path"] for line in lines] == ["one", "two"]  # type: ignore[index]
    assert "GET /one" not in err and out == ""


def test_access_log_to_stdout() -> None:
    _, out, err = _run_to_end(["--access-log", "-", "hello:app"], _listener(), [b"/out"])
    assert [ACCESS.match(line)["path"] for line in out.splitlines()] == ["out"]  # type: ignore[index]
    assert "GET /out" not in err


@pytest.mark.parametrize("level, logged", [("info", True), ("debug", True), ("warning", False)])
def test_log_level_governs_the_access_log(level: str, logged: bool) -> None:
    _, _, err = _run_to_end(["--log-level", level, "hello:app"], _listener(), [b"/leveled"])
    assert ('"GET /leveled HTTP/1.1" 200' in err) is logged, err


def test_an_access_log_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "access.log"
    result = subprocess.run([sys.executable, "-m", "synack", "--access-log", str(target), "hello:app"],
                            env=_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"synack: error: cannot open the access log {target}: No such file or directory"
    ]
