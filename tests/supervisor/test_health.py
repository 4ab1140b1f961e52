"""Self-healing workers: a worker whose loop is stuck is logged with its stack, killed and
replaced (--worker-timeout); a worker retires after --max-requests, its replacement serving
first, without a failed request; a worker above --max-worker-memory is replaced."""

from __future__ import annotations

import json
import re
import time
import socket
from collections.abc import Callable

import pytest

from tests.conftest import Server
from tests.supervisor.helpers import Load, children, gone, wait_for
from tests.helpers import Reader, get

ServerFactory = Callable[..., Server]


def _pid(server: Server, path: bytes = b"/") -> int:
    with server.connect() as sock:
        sock.sendall(get(path, b"Connection: close\r\n"))
        response = Reader(sock, timeout=30).response()
        assert response.status == 200, response
        return int(response.body)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_stuck_worker_is_logged_with_its_stack_killed_and_replaced(server_factory: ServerFactory,
                                                                     log_format: str) -> None:
    # One worker: --worker-timeout alone runs a supervisor.
    server = server_factory(["op_health:app", "--worker-timeout", "2", "--no-access-log", "--log-format", log_format])
    assert wait_for(lambda: len(children(server.process.pid)) == 1)
    (stuck,) = children(server.process.pid)
    assert _pid(server) == stuck
    blocked = socket.create_connection((server.host, server.port), timeout=30)
    blocked.sendall(get(b"/block"))
    try:
        assert wait_for(lambda: gone(stuck), timeout=30), server.stderr_text()
        # Replaced: a new worker answers, and the blocked client was cut off, not left hanging.
        assert _pid(server) != stuck
        assert Reader(blocked, timeout=30).read_until_closed()[0] == b""
    finally:
        blocked.close()
    assert wait_for(lambda: f"worker {stuck}'s stack" in server.stderr_text(), timeout=30)
    log = server.stderr_text()
    if log_format == "json":  # the stack too is inside one JSON object
        log = "\n".join(json.loads(line)["message"] for line in log.splitlines())
    assert re.search(rf"worker {stuck}: event loop blocked for [0-9.]+s \(--worker-timeout 2s\)", log), log
    stack = log.split("its stack follows", 1)[1].split(f"worker {stuck}'s stack when it was killed:", 1)[1]
    assert re.search(r'File ".*op_health\.py", line \d+ in app', stack), log


def test_max_requests_replaces_workers_without_a_failed_request(server_factory: ServerFactory) -> None:
    server = server_factory(["hello:app", "-w", "2", "--max-requests", "40", "--max-requests-jitter", "10",
                             "--no-access-log"])
    assert wait_for(lambda: len(children(server.process.pid)) == 2)
    first = children(server.process.pid)
    sent = 0
    ok = 0
    # Rounds of load until both first workers have been replaced (the check runs once a
    # second in each worker, and a replacement must boot first): at most 60 s and 300 rounds
    # of 200 requests (a fast machine runs 30 rounds in about a second).
    deadline = time.monotonic() + 60
    for _ in range(300):
        with Load(server, threads=4, per_thread=50) as load:
            pass
        sent += 200
        ok += load.counts["ok"]
        if not first & children(server.process.pid) or time.monotonic() > deadline:
            break
    assert ok == sent, (ok, sent)
    assert not first & children(server.process.pid), server.stderr_text()
    log = server.stderr_text()
    assert "(--max-requests); asking to be replaced" in log
    assert re.search(r"replacing worker \d+ \(max-requests\) with worker \d+", log), log
    assert re.search(r"worker \d+ serves; retiring worker \d+", log), log
    assert wait_for(lambda: len(children(server.process.pid)) == 2)


def test_a_worker_above_the_memory_limit_is_replaced(server_factory: ServerFactory) -> None:
    server = server_factory(["op_health:app", "--max-worker-memory", "150", "--no-access-log"])
    assert wait_for(lambda: len(children(server.process.pid)) == 1)
    (leaky,) = children(server.process.pid)
    assert _pid(server, b"/grow") == leaky
    assert wait_for(lambda: gone(leaky), timeout=30), server.stderr_text()
    assert _pid(server) != leaky
    log = server.stderr_text()
    assert re.search(rf"worker {leaky} uses \d+ MiB, above --max-worker-memory 150 MiB", log), log
    assert f"replacing worker {leaky} (memory)" in log


def test_crashed_workers_are_replaced_with_a_growing_delay(server_factory: ServerFactory) -> None:
    server = server_factory(["op_health:app", "-w", "2", "--no-access-log"])
    assert wait_for(lambda: len(children(server.process.pid)) == 2)
    for crash, delay in ((1, "0.1"), (2, "0.2"), (3, "0.4")):
        with server.connect() as sock:
            sock.sendall(get(b"/crash"))
            assert Reader(sock, timeout=30).read_until_closed()[0] == b""
        assert wait_for(lambda: f"(crash {crash} in" in server.stderr_text()), server.stderr_text()
        assert re.search(rf"worker \d+ exited unexpectedly \(7\); replacing it in {delay}s \(crash {crash} in",
                         server.stderr_text())
        assert wait_for(lambda: len(children(server.process.pid)) == 2)
    assert _pid(server) > 0  # still serving
