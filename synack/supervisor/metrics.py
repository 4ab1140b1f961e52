"""``--metrics`` under the arbiter: each worker's counters in shared memory, summed by the
arbiter, and ``GET /metrics`` answered from the arbiter's own select loop.

Each worker gets an anonymous shared mapping (``server/metrics.py`` lays it out) created
before it is forked; the worker publishes its counts there once a second and as it exits,
the arbiter reads it. When a worker exits, its counters are added to those of the workers
gone before (its gauges are not: its connections are closed), so every counter only grows,
whatever restarts and reloads happen.

No thread: the arbiter forks, and a child forked while another thread holds a lock (the
logging module's, say) would deadlock on it. The listener and its clients are non-blocking
sockets in the arbiter's ``select``: at most ``MAX_CLIENTS`` at once (a new one pushes out
the oldest), each with ``CLIENT_TIMEOUT`` seconds from its accept to read the request and
take the answer, and a request head of at most ``MAX_REQUEST_HEAD`` bytes. A client that
connects and sends nothing only holds one of those places until its time is up.
"""

from __future__ import annotations

import mmap
import socket
import time
from collections.abc import Callable, Mapping

from ..logs import error_log
from ..server.metrics import MAX_REQUEST_HEAD, SIZE, Metrics, Totals, answer, render, too_large

__all__ = ["WorkerCounters", "MetricsEndpoint", "MAX_CLIENTS", "CLIENT_TIMEOUT"]

#: Scrape connections served at once; the oldest is closed to make room for a new one.
MAX_CLIENTS = 8
#: Seconds a scrape connection may take, from its accept to the end of the answer.
CLIENT_TIMEOUT = 5.0


class WorkerCounters:
    """The counters of every worker, live or exited."""

    def __init__(self) -> None:
        self.live: dict[int, Metrics] = {}  # pid → its counters, over the shared mapping
        #: The counters of the workers that have exited, summed.
        self.exited = Totals()

    @staticmethod
    def new() -> Metrics:
        """Counters for the worker about to be forked (shared with it: MAP_SHARED)."""
        return Metrics(mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS))

    def started(self, pid: int, metrics: Metrics) -> None:
        self.live[pid] = metrics

    def reaped(self, pid: int) -> None:
        """Worker ``pid`` has exited: keep its last published counts, drop its memory."""
        metrics = self.live.pop(pid, None)
        if metrics is None:
            return
        self.exited.add(metrics, gauges=False)
        metrics.release()
        metrics.buffer.close()

    def totals(self) -> Totals:
        totals = self.exited.copy()
        for metrics in self.live.values():
            totals.add(metrics)
        return totals


class _Client:
    __slots__ = ("sock", "deadline", "received", "answer")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.received = b""
        #: What is left to send, once the request is read.
        self.answer: bytes | None = None


class MetricsEndpoint:
    """``GET /metrics`` on ``listener`` (bound, listening), for the arbiter's select loop:
    ``readers()`` and ``writers()`` go into ``select``, what it returns into ``ready``."""

    def __init__(self, listener: socket.socket, counters: WorkerCounters,
                 restarts: Mapping[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.counters = counters
        self.restarts = restarts
        self.clock = clock
        self.clients: dict[int, _Client] = {}  # fd → client, oldest first

    def readers(self) -> list[int]:
        return [self.listener.fileno(), *(fd for fd, client in self.clients.items() if client.answer is None)]

    def writers(self) -> list[int]:
        return [fd for fd, client in self.clients.items() if client.answer is not None]

    def ready(self, readable: list[int], writable: list[int]) -> None:
        """Serve what ``select`` found ready, then drop the clients past their time."""
        for fd in readable:
            if fd == self.listener.fileno():
                self._accept()
            elif fd in self.clients:
                self._read(self.clients[fd])
        for fd in writable:
            if fd in self.clients:
                self._write(self.clients[fd])
        now = self.clock()
        for client in [client for client in self.clients.values() if client.deadline <= now]:
            self._close(client)

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._close(client)
        self.listener.close()

    def exposition(self) -> bytes:
        return render(self.counters.totals(), self.restarts)

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors, a connection reset while queued
                error_log.debug("metrics: cannot accept: %s", error)
                return
            sock.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS:
                self._close(next(iter(self.clients.values())))
            self.clients[sock.fileno()] = _Client(sock, self.clock() + CLIENT_TIMEOUT)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        client.received += data
        end = client.received.find(b"\r\n\r\n")
        if end >= 0:
            client.answer = self._answer(client.received[: end + 4])
        elif len(client.received) >= MAX_REQUEST_HEAD:
            client.answer = too_large()
        else:
            return
        client.received = b""
        self._write(client)

    def _answer(self, head: bytes) -> bytes:
        try:
            return answer(head, self.exposition)
        except Exception:  # never let a scrape stop the arbiter
            error_log.exception("metrics request failed")
            return b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

    def _write(self, client: _Client) -> None:
        assert client.answer is not None
        try:
            sent = client.sock.send(client.answer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        client.answer = client.answer[sent:]
        if not client.answer:
            self._close(client)

    def _close(self, client: _Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()
