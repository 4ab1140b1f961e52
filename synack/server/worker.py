"""Worker: one event loop per process — serve the listeners, run handler startup/shutdown,
sweep deadlines, and drain gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import ssl
import time
from dataclasses import dataclass

from ..h1 import Limits
from .clock import default_headers
from .exchange import Handler
from .listeners import describe
from .protocol import HttpProtocol, ServerContext
from .timeouts import Timeouts

__all__ = ["Worker", "WorkerSettings", "new_event_loop", "ACCEPT_BATCH", "SHARED_ACCEPT_BATCH"]

error_log = logging.getLogger("synack.error")

_ACCEPT_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
#: After running out of file descriptors, wait this long before accepting again (asyncio: 1 s).
ACCEPT_RETRY_DELAY = 0.5
#: Connections accepted per readiness event, so one listener can't starve the loop.
ACCEPT_BATCH = 64
#: The same when several worker processes share the listener: one connection per readiness
#: event, then back to the loop, so that a burst of connections (64 arriving at once) is
#: spread over the workers instead of going to whichever woke first, and a busy worker,
#: whose loop turns slower, takes fewer new connections than an idle one.
SHARED_ACCEPT_BATCH = 1


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The driver's own settings (the slice of Config the worker needs)."""

    server_header: bytes = b"synack"
    access_log: bool = True
    root_path: str = ""
    max_connections: int = 10_000
    loop: str = "auto"
    ssl_context: ssl.SSLContext | None = None
    #: Connections accepted per readiness event (``SHARED_ACCEPT_BATCH`` under a supervisor).
    accept_batch: int = ACCEPT_BATCH


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A fresh event loop: uvloop when asked for (or installed, with ``auto``), else asyncio."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise RuntimeError("--loop uvloop needs uvloop: pip install 'synack[fast]'") from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class _Acceptor:
    """Accept loop for one listening socket, with a connection cap and EMFILE back-off."""

    def __init__(self, worker: Worker, sock: socket.socket) -> None:
        self.worker = worker
        self.sock = sock
        self.active = False
        self.stopped = False

    def start(self) -> None:
        if not self.active and not self.stopped:
            self.active = True
            self.worker.loop.add_reader(self.sock.fileno(), self._accept)

    def pause(self) -> None:
        if self.active:
            self.active = False
            self.worker.loop.remove_reader(self.sock.fileno())

    def stop(self) -> None:
        self.pause()
        self.stopped = True

    def _accept(self) -> None:
        worker = self.worker
        for _ in range(worker.settings.accept_batch):
            if worker.at_capacity():
                worker.pause_accepting()
                return
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in _ACCEPT_ERRNOS:
                    error_log.warning(
                        "cannot accept connections: %s; pausing for %.1fs",
                        error.strerror,
                        ACCEPT_RETRY_DELAY,
                    )
                    self.pause()
                    worker.loop.call_later(ACCEPT_RETRY_DELAY, self.start)
                    return
                if error.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                error_log.error("accept failed: %s", error)
                return
            worker.connect(client)


class Worker:
    """Serves ``sockets`` with ``handler`` until asked to stop."""

    def __init__(
        self,
        handler: Handler,
        sockets: list[socket.socket],
        limits: Limits,
        timeouts: Timeouts,
        settings: WorkerSettings,
    ) -> None:
        self.handler = handler
        self.sockets = sockets
        self.limits = limits
        self.timeouts = timeouts
        self.settings = settings
        self.loop = new_event_loop(settings.loop)
        self.context = ServerContext(
            self.loop,
            handler,
            limits,
            timeouts,
            server_header=settings.server_header,
            access_log=settings.access_log,
            root_path=settings.root_path,
            scheme="https" if settings.ssl_context else "http",
        )
        self.context.on_connection_lost.append(self._connection_lost)
        self.acceptors = [_Acceptor(self, sock) for sock in sockets]
        self.pending = 0
        self.accept_paused = False
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self.exit_code = 0

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT, then drain. Returns the process exit code."""
        try:
            self.loop.run_until_complete(self.serve())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
        return self.exit_code

    async def serve(self) -> None:
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._tick()
        startup = getattr(self.handler, "startup", None)
        if startup is not None:
            try:
                await startup()
            except Exception as error:
                error_log.error("startup failed: %s", error)
                self.exit_code = 3
                for sock in self.sockets:
                    sock.close()
                return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stop.set)
        for acceptor in self.acceptors:
            acceptor.start()
        scheme = "https" if self.settings.ssl_context else "http"
        for sock in self.sockets:
            error_log.info("listening on %s", describe(sock, scheme))
        await self._stop.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.remove_signal_handler(sig)
        await self._drain()
        shutdown = getattr(self.handler, "shutdown", None)
        if shutdown is not None:
            try:
                await shutdown()
            except Exception as error:
                error_log.error("shutdown failed: %s", error)
                self.exit_code = 1

    def stop(self) -> None:
        """Ask the worker to drain and exit (thread-safe from inside the loop only)."""
        if self._stop is not None:
            self._stop.set()

    async def _drain(self) -> None:
        error_log.info("shutting down: finishing %d connection(s)", len(self.context.connections))
        for acceptor in self.acceptors:
            acceptor.stop()
        for sock in self.sockets:
            sock.close()
        self.context.shutting_down = True
        for connection in list(self.context.connections):
            connection.shutdown()
        assert self._idle is not None
        if self.context.connections or self.pending:
            try:
                await asyncio.wait_for(self._idle.wait(), self.timeouts.graceful)
            except asyncio.TimeoutError:
                error_log.warning(
                    "graceful timeout: aborting %d connection(s)", len(self.context.connections)
                )
        for connection in list(self.context.connections):
            connection.cancel()
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ connections

    def at_capacity(self) -> bool:
        return len(self.context.connections) + self.pending >= self.settings.max_connections

    def pause_accepting(self) -> None:
        if not self.accept_paused:
            self.accept_paused = True
            error_log.warning(
                "connection limit reached (%d); pausing accept", self.settings.max_connections
            )
            for acceptor in self.acceptors:
                acceptor.pause()

    def _connection_lost(self) -> None:
        if self.accept_paused and not self.at_capacity():
            self.accept_paused = False
            for acceptor in self.acceptors:
                acceptor.start()
        if self.context.shutting_down and not self.context.connections and not self.pending:
            assert self._idle is not None
            self._idle.set()

    def connect(self, client: socket.socket) -> None:
        client.setblocking(False)
        if client.family in (socket.AF_INET, socket.AF_INET6):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending += 1
        self.loop.create_task(self._connect(client))

    async def _connect(self, client: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: HttpProtocol(self.context), client, ssl=self.settings.ssl_context
            )
        except Exception as error:  # a failed TLS handshake, a reset during setup
            error_log.debug("connection setup failed: %s", error)
            client.close()
        finally:
            self.pending -= 1
            if self.pending == 0 and self.context.shutting_down and not self.context.connections:
                assert self._idle is not None
                self._idle.set()

    # ------------------------------------------------------------------ clock

    def _tick(self) -> None:
        """Once a second: refresh the date header and sweep connection deadlines."""
        context = self.context
        now = self.loop.time()
        context.now = now
        wall = time.time()
        context.default_headers = default_headers(wall, self.settings.server_header)
        if context.access_log:
            context.log_time = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(wall))
        for connection in list(context.connections):
            deadline = connection.deadline
            if deadline and deadline <= now:
                try:
                    connection.on_deadline()
                except Exception:  # never let one connection stop the clock
                    error_log.exception("error while timing out a connection")
        # Align the next tick with the start of the next wall-clock second.
        self.loop.call_later(1.0 - (wall % 1.0) + 0.001, self._tick)

