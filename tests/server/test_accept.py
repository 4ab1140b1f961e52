"""The accept loop's batch: a single worker drains the backlog in batches of 64 per readiness
event; workers that share a listener (--workers N) take one connection per turn, so a burst
of connections is spread over them instead of going to whichever woke first."""

from __future__ import annotations

import socket
import time

import pytest

from synack.config import Config
from synack.h1 import Limits
from synack.run import _worker_settings
from synack.server.timeouts import Timeouts
from synack.server.worker import ACCEPT_BATCH, SHARED_ACCEPT_BATCH, Worker, WorkerSettings


async def _never(exchange) -> None:  # type: ignore[no-untyped-def]
    raise AssertionError("no request is sent in this test")


def test_supervised_workers_take_turns_and_a_single_worker_batches() -> None:
    assert SHARED_ACCEPT_BATCH == 1 < ACCEPT_BATCH
    assert _worker_settings(Config(workers=2), None).accept_batch == SHARED_ACCEPT_BATCH
    assert _worker_settings(Config(workers=1), None).accept_batch == ACCEPT_BATCH


def _accept_queue_length(port: int) -> int:
    """How many connections wait in the accept queue of the IPv4 listener on ``port`` (for a
    listening socket, /proc/net/tcp's rx_queue column is that count)."""
    with open("/proc/net/tcp") as table:
        lines = table.read().splitlines()[1:]
    for line in lines:
        fields = line.split()
        if fields[1].endswith(":%04X" % port) and fields[3] == "0A":  # 0A: LISTEN
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listener on port {port}")


def _wait_for_queue(port: int, count: int) -> None:
    deadline = time.monotonic() + 10
    while _accept_queue_length(port) < count:
        assert time.monotonic() < deadline, f"{count} connections never queued"
        time.sleep(0.01)


@pytest.mark.parametrize("batch", [SHARED_ACCEPT_BATCH, 3, ACCEPT_BATCH])
def test_one_readiness_event_accepts_at_most_the_batch(batch: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    clients: list[socket.socket] = []
    accepted: list[socket.socket] = []
    worker = Worker(_never, [listener], Limits(), Timeouts(), WorkerSettings(accept_batch=batch, loop="asyncio"))
    worker.connect = accepted.append  # type: ignore[method-assign]  # keep what was accepted
    try:
        for _ in range(10):
            clients.append(socket.create_connection(listener.getsockname()))
        _wait_for_queue(port, 10)  # all ten handshakes complete and queued
        for acceptor in worker.acceptors:
            acceptor.start()
        # stop() before run_forever(): the loop polls the selector once and runs what that one
        # readiness event scheduled, then returns (asyncio's documented one-iteration idiom).
        worker.loop.stop()
        worker.loop.run_forever()
        assert len(accepted) == min(batch, 10)
        assert _accept_queue_length(port) == 10 - min(batch, 10)  # the rest wait for the next event
    finally:
        for sock in clients + accepted:
            sock.close()
        worker.loop.close()
        listener.close()
