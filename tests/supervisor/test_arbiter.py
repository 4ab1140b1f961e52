"""The pre-fork supervisor, driven through a real `python -m synack --workers N` process."""

from __future__ import annotations

import os
import signal
import threading
import time

from tests.helpers import Reader, Response, get
from tests.supervisor.helpers import children as _children
from tests.supervisor.helpers import gone as _is_zombie_or_gone
from tests.supervisor.helpers import InFlight, body, start_workers
from tests.supervisor.helpers import wait_for as _wait_for


def _get(server, path: str = "/") -> Response:
    """One request on a new connection: the response, then a clean close."""
    with server.connect() as sock:
        sock.sendall(get(path.encode(), b"Connection: close\r\n"))
        reader = Reader(sock)
        response = reader.response()
        reader.expect_eof()
        return response


def _pid_of_response(response: Response) -> int:
    assert response.status_line == b"HTTP/1.1 200 OK", response
    return int(response.body)


def _worker_pids(server, count: int) -> set[int]:
    """Pids seen answering requests, until ``count`` distinct ones or 30 s have passed (a
    worker still importing the app takes no connections yet)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < count and time.monotonic() < deadline:
        seen.add(_pid_of_response(_get(server)))
    return seen


def test_workers_serve_and_term_drains(server_factory, tmp_path) -> None:
    marker = tmp_path / "started"
    server, children = start_workers(server_factory, marker)
    pids = _worker_pids(server, 2)
    assert pids <= children
    assert len(pids) == 2, "both workers should take connections"

    # An in-flight request survives SIGTERM and completes; then the connection closes cleanly.
    slow = InFlight(server, marker)
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    assert int(body(slow.response())) in pids
    assert all(not os.path.exists(f"/proc/{pid}") or _is_zombie_or_gone(pid) for pid in children)
    assert "Traceback" not in server.stderr_text()


def test_dead_worker_is_replaced(server_factory) -> None:
    server = server_factory(["sup_pid:app", "--workers", "2", "--no-access-log"])
    master = server.process.pid
    assert _wait_for(lambda: len(_children(master)) == 2)
    victim = min(_children(master))
    os.kill(victim, signal.SIGKILL)
    assert _wait_for(lambda: victim not in _children(master) and len(_children(master)) == 2)
    assert _pid_of_response(_get(server)) in _children(master)
    assert "replacing it" in server.stderr_text()


def test_hup_replaces_workers_without_dropping_requests(server_factory) -> None:
    server = server_factory(["sup_pid:app", "--workers", "2", "--no-access-log"])
    master = server.process.pid
    assert _wait_for(lambda: len(_children(master)) == 2)
    before = _children(master)
    fds_before = len(os.listdir(f"/proc/{master}/fd"))
    failures: list[object] = []
    served: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                served.append(_pid_of_response(_get(server)))
            except (AssertionError, OSError, EOFError) as error:  # reported below
                failures.append(error)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        assert _wait_for(lambda: bool(served or failures))  # the load is running
        for _ in range(2):
            current = _children(master)
            server.signal(signal.SIGHUP)
            assert _wait_for(lambda: len(_children(master)) == 2 and not (_children(master) & current))
        after = _children(master)
        assert _wait_for(lambda: bool(set(served) & after or failures))  # the new workers serve it
    finally:
        stop.set()
        thread.join(20)
    assert not (after & before)
    assert failures == []
    assert set(served) & before  # requests ran from before the first reload to after the last
    # The master leaks no descriptors across reloads.
    assert len(os.listdir(f"/proc/{master}/fd")) == fds_before


def test_ttin_and_ttou_change_the_worker_count(server_factory) -> None:
    server = server_factory(["sup_pid:app", "--workers", "2", "--no-access-log"])
    master = server.process.pid
    assert _wait_for(lambda: len(_children(master)) == 2)
    server.signal(signal.SIGTTIN)
    assert _wait_for(lambda: len(_children(master)) == 3)
    # Unix signals of one kind coalesce while pending, so send the second after the first acted.
    server.signal(signal.SIGTTOU)
    assert _wait_for(lambda: len(_children(master)) == 2)
    server.signal(signal.SIGTTOU)
    assert _wait_for(lambda: len(_children(master)) == 1)


def test_boot_error_stops_instead_of_crash_looping(tmp_path) -> None:
    import subprocess
    import sys

    from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)]))
    result = subprocess.run(
        [sys.executable, "-m", "synack", "sup_broken:app", "--workers", "2", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "sup_broken refuses to import" in result.stderr
    assert "could not start" in result.stderr
    assert result.stderr.count("could not start") == 1


def test_missing_module_is_one_line_error_with_workers() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "synack", "no_such_module_here:app", "--workers", "2", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "synack: error: could not import module 'no_such_module_here': no module named 'no_such_module_here'"
    ]
