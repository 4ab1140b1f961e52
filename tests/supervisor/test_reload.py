"""SIGHUP reloads the app's code without dropping a request: in a single process (checked in a
child, then re-executed in place keeping the listener) and under the arbiter (new workers
first, the old ones retired only once the new ones serve). New code that does not load
leaves the old code serving."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tests.supervisor.helpers import InFlight, body, children, get, synack_process, wait_for

APP = '''
import asyncio
import os

VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        open(os.environ["RELOAD_MARKER"], "w").close()
        for _ in range(3000):  # in the app until the test opens the gate (at most 30 s)
            if os.path.exists(os.environ["RELOAD_GATE"]):
                break
            await asyncio.sleep(0.01)
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
'''
BROKEN = "def app(scope, receive, send:\n    pass\n"


def _write(directory: Path, version: str | None) -> None:
    (directory / "reloaded_app.py").write_text(BROKEN if version is None else APP.format(version=version))


def _start(server_factory, directory: Path, *args: str):
    _write(directory, "v1")
    return server_factory(
        ["reloaded_app:app", "--app-dir", str(directory), "--no-access-log", *args],
        env={"PYTHONDONTWRITEBYTECODE": "1", "RELOAD_MARKER": str(directory / "in-app"),
             "RELOAD_GATE": str(directory / "gate")},
    )


class _Traffic:
    """One client making GETs on fresh connections until stopped; keeps every answer."""

    def __init__(self, server) -> None:
        self.server = server
        self.answers: list[bytes] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> _Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.answers) + len(self.failures) < 20000:
            try:
                response = get(self.server)
            except OSError as error:
                self.failures.append(repr(error))
                continue
            if response.startswith(b"HTTP/1.1 200 OK"):
                self.answers.append(body(response))
            else:
                self.failures.append(repr(response[:100]))


def test_sighup_reloads_a_single_process_in_place(server_factory, tmp_path) -> None:
    # The request in flight stays in the app until the reload check (a child importing the
    # app) passed and the drain began, so the drain finds it still running.
    server = _start(server_factory, tmp_path)
    pid = server.process.pid
    assert body(get(server)) == b"v1"
    with _Traffic(server) as traffic:
        slow = InFlight(server, tmp_path / "in-app")
        _write(tmp_path, "v2")
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: "shutting down: finishing" in server.stderr_text(), timeout=60)
        (tmp_path / "gate").touch()
        assert wait_for(lambda: b"v2" in traffic.answers, timeout=60), server.stderr_text()
    # The request in flight finished on the old code, told to close.
    data = slow.response()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nconnection: close\r\n" in data.lower()
    assert data.endswith(b"v1")
    assert traffic.failures == []
    assert server.process.poll() is None and server.process.pid == pid
    assert body(get(server)) == b"v2"
    log = server.stderr_text()
    assert "SIGHUP: the app loads; reloading" in log
    assert "Traceback" not in log


def test_sigterm_during_a_reload_stops_gracefully(server_factory, tmp_path) -> None:
    # The request stays in the app until the SIGTERM that comes after the reload check.
    server = _start(server_factory, tmp_path)
    slow = InFlight(server, tmp_path / "in-app")
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP: the app loads; reloading" in server.stderr_text(), timeout=60)
    server.signal(signal.SIGTERM)  # while the request is still in the app
    assert wait_for(lambda: "stopping instead of reloading" in server.stderr_text(), timeout=60)
    (tmp_path / "gate").touch()
    assert server.wait(30) == 0
    data = slow.response()
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"v1")
    log = server.stderr_text()
    assert "stopping instead of reloading" in log and "restarting in place" not in log


def test_sighup_with_broken_code_keeps_a_single_process_serving(server_factory, tmp_path) -> None:
    server = _start(server_factory, tmp_path)
    _write(tmp_path, None)
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP: not reloading" in server.stderr_text(), timeout=60)
    assert server.process.poll() is None
    assert body(get(server)) == b"v1"
    log = server.stderr_text()
    assert "SyntaxError" in log and "reloaded_app.py" in log  # what to fix, and where
    # Once fixed, the next SIGHUP reloads.
    _write(tmp_path, "v3")
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: body(get(server)) == b"v3", timeout=60), server.stderr_text()


def test_sighup_without_the_command_line_drains_and_stops(tmp_path) -> None:
    # serve(config) from Python cannot re-execute a command line: SIGHUP then stops gracefully.
    script = tmp_path / "embed.py"
    script.write_text(
        "import synack\n"
        "raise SystemExit(synack.serve(synack.Config(app='hello:app', port=0)))\n"
    )
    with synack_process([str(script)]) as process:
        process.send_signal(signal.SIGHUP)
        assert process.wait(30) == 0
        assert process.stderr is not None
        assert "SIGHUP: this process cannot reload itself; stopping" in process.stderr.read()


def test_sighup_with_broken_code_keeps_the_old_workers(server_factory, tmp_path) -> None:
    server = _start(server_factory, tmp_path, "--workers", "2")
    master = server.process.pid
    assert wait_for(lambda: len(children(master)) == 2)
    old = children(master)
    _write(tmp_path, None)
    with _Traffic(server) as traffic:
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload failed" in server.stderr_text(), timeout=60), server.stderr_text()
        # The failed new workers are gone; the old ones never stopped serving.
        assert wait_for(lambda: children(master) == old)
        answers = len(traffic.answers)
        assert wait_for(lambda: len(traffic.answers) > answers)
    assert server.process.poll() is None
    assert traffic.failures == []
    assert set(traffic.answers) == {b"v1"}
    log = server.stderr_text()
    assert "SyntaxError" in log and "reloaded_app.py" in log
    # Fixed, the next SIGHUP swaps the workers.
    _write(tmp_path, "v2")
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: len(children(master)) == 2 and not (children(master) & old), timeout=60)
    assert wait_for(lambda: body(get(server)) == b"v2")


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGHUP"])
def test_signals_for_the_arbiter_do_not_stop_its_workers(server_factory, signal_name) -> None:
    # A Ctrl-C (or a hang-up) reaches the whole process group: the workers leave it to the
    # arbiter, which stops (SIGINT) or reloads (SIGHUP) them in order.
    server = server_factory(["sup_pid:app", "--workers", "2", "--no-access-log"])
    master = server.process.pid
    assert wait_for(lambda: len(children(master)) == 2)
    workers = children(master)
    for pid in workers:
        os.kill(pid, getattr(signal, signal_name))
    # Each worker answers after the signal (a process handles a pending signal before it
    # runs on), so each one outlived it.
    answered: set[int] = set()
    assert wait_for(lambda: answered.add(int(body(get(server)))) or answered >= workers, timeout=30), answered
    assert children(master) == workers
    assert "exited unexpectedly" not in server.stderr_text()


def test_sighup_reloads_a_package_app_entirely(server_factory, tmp_path) -> None:
    # The arbiter checks that a dotted app module exists; that must not leave the package
    # imported in the arbiter, where every new worker would inherit the old code.
    package = tmp_path / "reloaded_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("VERSION = 'v1'\n")
    (package / "app.py").write_text(
        "from . import VERSION\n\n\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': VERSION.encode()})\n"
    )
    server = server_factory(["reloaded_pkg.app:app", "--app-dir", str(tmp_path), "--workers", "2",
                             "--no-access-log"], env={"PYTHONDONTWRITEBYTECODE": "1"})
    master = server.process.pid
    assert wait_for(lambda: len(children(master)) == 2)
    old = children(master)
    assert body(get(server)) == b"v1"
    (package / "__init__.py").write_text("VERSION = 'v2'\n")
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: len(children(master)) == 2 and not (children(master) & old), timeout=60)
    assert body(get(server)) == b"v2"
