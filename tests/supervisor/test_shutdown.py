"""Stopping under load, and workers whose arbiter was killed: real `python -m synack`
processes, signals and loopback sockets.

When synack stops, a connection the kernel already accepted (queued, not yet taken by
accept()) must be answered, not reset; only attempts made after the listener is gone may be
refused.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.supervisor.helpers import (
    InFlight, Load, body, children, gone, recv_all, start_workers, synack_process, wait_for,
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_resets_nothing(server_factory, workers: str) -> None:
    server = server_factory(["hello:app", "--workers", workers, "--no-access-log"])
    if workers != "1":
        master = server.process.pid
        assert wait_for(lambda: len(children(master)) == int(workers))
    with Load(server, threads=12) as load:
        # Stop while every client is busy connecting (a readiness count, not a sleep).
        assert wait_for(lambda: load.total("ok") >= 300, timeout=60)
        server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    counts = dict(load.counts)
    assert counts.get("reset", 0) == 0, counts
    assert counts.get("stalled", 0) == 0, counts
    # Every client ran until the listener was gone: each ended with a refusal.
    assert counts.get("refused", 0) == 12, counts
    assert "Traceback" not in server.stderr_text()


def _port_bindable(port: int) -> bool:
    """Whether a restarted server could listen on ``port`` now (as synack binds: REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
        return True


def test_workers_drain_and_exit_when_the_arbiter_is_killed(server_factory, tmp_path) -> None:
    marker = tmp_path / "started"
    server, workers = start_workers(server_factory, marker)
    master = server.process.pid
    try:
        slow = InFlight(server, marker)
        os.kill(master, signal.SIGKILL)  # as the OOM killer would
        server.process.wait(10)
        # The orphaned workers notice, finish the request in flight and exit, releasing
        # the port so that a restart can bind it.
        assert wait_for(lambda: _port_bindable(server.port), timeout=30), server.stderr_text()
        assert wait_for(lambda: all(gone(pid) for pid in workers), timeout=30)
        assert int(body(slow.response())) in workers
    finally:
        for pid in workers:  # only if the test failed: never leave orphans behind
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
    log = server.stderr_text()
    assert "the supervisor has stopped (or died); stopping" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_inherited_listener_keeps_taking_connections_after_a_stop(workers: str) -> None:
    # With --fd (systemd socket activation) whoever passed the socket keeps it, to serve it
    # again later: stopping must not leave the kernel refusing connections to it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        fd = listener.fileno()
        args = ["hello:app", "--fd", str(fd), "--workers", workers, "--no-access-log"]
        with synack_process(args, pass_fds=[fd]) as process:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert recv_all(client).endswith(b"Hello, world!")
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            listener.settimeout(10)
            accepted, _ = listener.accept()
            accepted.close()


def test_a_connection_attempted_during_a_supervised_drain_is_never_black_holed(
        server_factory, tmp_path) -> None:
    # The arbiter used to keep its copy of the listener open while the workers drained: the
    # kernel accepted new connections that no one would take, and reset them at the end.
    marker = tmp_path / "started"
    server, _ = start_workers(server_factory, marker)
    slow = InFlight(server, marker)  # the drain will last as long as this request
    server.signal(signal.SIGTERM)
    assert wait_for(lambda: "SIGTERM: " in server.stderr_text())
    try:
        late = socket.create_connection((server.host, server.port), timeout=10)
    except ConnectionRefusedError:
        outcome = "refused"
    else:
        with late:  # raced the stop: then it must be served, not dropped
            late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                outcome = "served" if recv_all(late).startswith(b"HTTP/1.1 200 OK") else "dropped"
            except (ConnectionResetError, TimeoutError):
                outcome = "dropped"
    assert outcome in ("refused", "served")
    assert slow.response().startswith(b"HTTP/1.1 200 OK")
    assert server.wait(30) == 0
