"""Worker: one event loop per process — serve the listeners, run handler startup/shutdown,
sweep deadlines, and drain gracefully on SIGTERM/SIGINT.

How a worker ends (theory of operation). Three endings, chosen by who asks:

* **Stop** (SIGTERM/SIGINT to a single process; end of file on the supervisor's pipe): the
  whole server stops. The kernel is told to drop new connection attempts (a dropped SYN is
  retried by the client and then refused, because by then the listener is closed), the
  connections it had already accepted are taken from the listen queue and answered with
  ``Connection: close``, and only then is the listener closed. Closing a listening socket
  with connections still queued would reset them.
* **Retire** (SIGTERM to a supervised worker: a reload or one worker fewer): this worker
  stops accepting and closes its copy of the listening socket; the other workers, and the
  arbiter's copy, keep the socket and its queue alive.
* **Reload** (SIGHUP to a single process, once the new code is known to load): this worker
  stops accepting but keeps the listeners open, so that the process re-executed in its
  place (see ``run.py``) takes over the same sockets and their queue.

In each case the connections then finish their current request (``Connection: close``),
and after ``Timeouts.graceful`` whatever is left is cancelled. Idle keep-alive connections are
closed at once on a stop or a reload in place (where new connections wait for the drain); a
retiring worker leaves them open until their next request, answered with ``Connection:
close``, or their keep-alive deadline, so a reload under a supervisor closes no connection a
client may be sending on, and TLS connections keep their certificate until then.
"""

from __future__ import annotations

import asyncio
import gc
import enum
import importlib.util
import errno
import faulthandler
import os
import signal
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..h1 import Limits
from ..logs import error_log, error_log_in_background
from .clock import default_headers
from .context import ServerContext, expire_deadlines
from .exchange import Handler
from .listeners import describe, handshakes_in_progress, refuse_new_connections
from .metrics import Metrics, serve_metrics
from .preface import Refused, read_preface
from .protocol import HttpProtocol
from .proxy import Forwarding
from .proxy_protocol import ProxyProtocol
from .timeouts import Timeouts
from .tls import ServerTls

__all__ = [
    "Worker", "WorkerSettings", "SupervisorLink", "ReloadCheck", "new_event_loop", "loop_name",
    "ACCEPT_BATCH", "SHARED_ACCEPT_BATCH", "WORKER_BOOT_ERROR", "STACK_DUMP_SIGNAL", "read_heartbeat",
    "read_stack",
]

#: What the arbiter sends to a stuck worker for its stack (see ``Worker.serve``).
STACK_DUMP_SIGNAL = signal.SIGUSR1
#: The heartbeat's format (see ``SupervisorLink.heartbeat``).
_HEARTBEAT = struct.Struct("=d")
#: How often a worker past --max-requests repeats its request to be replaced (in case the
#: replacement could not start).
RETIRE_REQUEST_INTERVAL = 10.0

#: Exit status of a worker that could not start (app import, lifespan startup): restarting
#: it would only crash-loop, so a supervisor stops (or abandons a reload) instead.
WORKER_BOOT_ERROR = 3
#: When the server stops, how long the listener stays open at most for handshakes already
#: under way (SYN answered, final ACK not yet in) to complete and be accepted. One round
#: trip is enough; the wait ends as soon as none is left (on loopback, at once).
HANDSHAKE_WAIT = 1.0
HANDSHAKE_POLL = 0.01

_ACCEPT_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
#: After running out of file descriptors, wait this long before accepting again (asyncio: 1 s).
ACCEPT_RETRY_DELAY = 0.5
#: Connections accepted per readiness event, so one listener can't starve the loop.
ACCEPT_BATCH = 64
#: The same when several worker processes share the listener: one connection per readiness
#: event, then back to the loop, so that a burst of connections (64 arriving at once) is
#: spread over the workers instead of going to whichever woke first, and a busy worker,
#: whose loop turns slower, takes fewer new connections than an idle one. Measured with 2
#: workers: under load (wrk, 64 or 256 connections, kept alive or not) 46-54 % each; but a
#: burst opened at idle still goes about 70 % to the worker that woke first. Deferring to a
#: less loaded worker (connection counts in shared memory) evened bursts to about 52 %, yet
#: cost short connections 2-4x their throughput (a deferred connection waits for a busy
#: peer), so it was left out; SO_REUSEPORT would spread by hash, not load, and strand the
#: queue of a stuck worker.
SHARED_ACCEPT_BATCH = 1


@dataclass(frozen=True, slots=True)
class SupervisorLink:
    """What a supervised worker shares with its arbiter: two pipes, and optionally a
    heartbeat file and the metrics' shared memory."""

    #: Read end of a pipe whose write end only the arbiter holds. End of file means the
    #: arbiter stopped the server, or died (SIGKILL, the OOM killer): stop either way.
    alive: int
    #: Write end of a pipe the arbiter reads: this worker writes its pid once it serves, so
    #: a reload retires the old workers only when the new ones are ready; and its pid
    #: negated when it asks to be replaced (``WorkerSettings.max_requests``).
    ready: int
    #: A file this worker's clock tick writes the time to (``time.monotonic()``, a double at
    #: offset 0) once a second, or -1: the arbiter kills a worker whose loop stops ticking.
    #: After the time, the stack the worker writes on ``STACK_DUMP_SIGNAL`` (``read_stack``).
    heartbeat: int = -1
    #: With ``--metrics``: this worker's counters, in memory the arbiter shares and reads
    #: (``server/metrics.py``); None without.
    metrics: Metrics | None = None


#: SIGHUP to a single process: resolves to None when the new code loads (the worker then
#: drains and ``Worker.run`` returns with ``reloading`` set), else to why it does not.
ReloadCheck = Callable[[], Awaitable["str | None"]]


def read_heartbeat(fd: int) -> float:
    """The time of a worker's last heartbeat (``time.monotonic()``), or 0.0 before the first."""
    data = os.pread(fd, _HEARTBEAT.size, 0)
    return _HEARTBEAT.unpack(data)[0] if len(data) == _HEARTBEAT.size else 0.0


def read_stack(fd: int) -> str:
    """The stack a stuck worker wrote into its heartbeat file (empty if it wrote none)."""
    size = os.fstat(fd).st_size - _HEARTBEAT.size
    return os.pread(fd, size, _HEARTBEAT.size).decode("utf-8", "replace").rstrip() if size > 0 else ""


def _metrics(settings: WorkerSettings, link: SupervisorLink | None) -> Metrics | None:
    """The counters: the arbiter's shared ones under a supervisor (which serves them), else
    this process's own when it serves ``--metrics`` itself."""
    if link is not None:
        return link.metrics
    return Metrics() if settings.metrics is not None else None


class _Ending(enum.Enum):
    """How the worker ends (see the module docstring)."""

    STOP = "stop"
    RETIRE = "retire"
    RELOAD = "reload"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The driver's own settings (the slice of Config the worker needs)."""

    server_header: bytes = b"synack"
    access_log: bool = True
    root_path: str = ""
    max_connections: int = 10_000
    loop: str = "auto"
    #: The loaded TLS context (``server/tls.py``) when serving HTTPS.
    tls: ServerTls | None = None
    #: Proxy headers from trusted peers (``server/proxy.py``), or None (``--proxy-headers off``).
    forwarding: Forwarding | None = None
    #: The PROXY protocol header expected from trusted peers, or None (``--proxy-protocol off``).
    proxy_protocol: ProxyProtocol | None = None
    #: On a stop, seconds to go on serving before the drain (``--shutdown-delay``).
    shutdown_delay: float = 0.0
    #: Connections accepted per readiness event (``SHARED_ACCEPT_BATCH`` under a supervisor).
    accept_batch: int = ACCEPT_BATCH
    #: Whether this server created its listening sockets. An inherited one (``--fd``, e.g.
    #: systemd socket activation) may be kept open by whoever passed it, to be served again
    #: after this server stops: a stop then must not make the kernel refuse new connections.
    own_listeners: bool = True
    #: Whether a person watches the log (a terminal): then say how to stop.
    interactive: bool = False
    #: Under a supervisor: after this many requests, ask to be replaced (0: never).
    max_requests: int = 0
    #: The bound ``--metrics`` listener (``server/metrics.py``), or None when off.
    metrics: socket.socket | None = None


def loop_name(kind: str = "auto") -> str:
    """The loop ``new_event_loop(kind)`` makes, without making one: "uvloop" or "asyncio"."""
    if kind == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return kind


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
            if not self._accept_one():
                return

    def take_queue(self) -> int:
        """Accept every connection the kernel has queued, whatever the connection cap: the
        listener is about to close, and closing it would reset them. Returns how many."""
        taken = 0
        while self._accept_one():
            taken += 1
        return taken

    def _accept_one(self) -> bool:
        """Accept one connection; False when there is none (or accepting must pause)."""
        try:
            client, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            if error.errno in (errno.ECONNABORTED, errno.EPROTO):
                return True
            if error.errno in _ACCEPT_ERRNOS:
                error_log.warning(
                    "cannot accept connections: %s; pausing for %.1fs", error.strerror, ACCEPT_RETRY_DELAY
                )
                if not self.stopped:
                    self.pause()
                    self.worker.loop.call_later(ACCEPT_RETRY_DELAY, self.start)
            else:
                error_log.error("accept failed: %s", error)
            return False
        self.worker.connect(client)
        return True


class Worker:
    """Serves ``sockets`` with ``handler`` until asked to stop.

    Args:
        link: the pipes to a supervising arbiter, when there is one. A supervised worker
            retires on SIGTERM, stops when the arbiter's pipe closes, and leaves SIGINT and
            SIGHUP to the arbiter (the arbiter ignores them in its workers: a Ctrl-C reaches
            the whole process group, and the arbiter turns it into one orderly stop).
        reload: what SIGHUP does in a single process (see ``ReloadCheck``). Without it,
            SIGHUP drains and stops.
    """

    def __init__(
        self,
        handler: Handler,
        sockets: list[socket.socket],
        limits: Limits,
        timeouts: Timeouts,
        settings: WorkerSettings,
        *,
        link: SupervisorLink | None = None,
        reload: ReloadCheck | None = None,
    ) -> None:
        self.handler = handler
        self.sockets = sockets
        self.limits = limits
        self.timeouts = timeouts
        self.settings = settings
        self.link = link
        self.reload = reload
        self.loop = new_event_loop(settings.loop)
        self.context = ServerContext(
            self.loop,
            handler,
            limits,
            timeouts,
            server_header=settings.server_header,
            access_log=settings.access_log,
            root_path=settings.root_path,
            tls=settings.tls,
            forwarding=settings.forwarding,
            metrics=_metrics(settings, link),
        )
        self.context.on_connection_lost.append(self._connection_lost)
        self.acceptors = [_Acceptor(self, sock) for sock in sockets]
        self.pending = 0
        self.accept_paused = False
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        #: Set by a second stop signal during ``--shutdown-delay``.
        self._hurry: asyncio.Event | None = None
        self._checking_reload = False
        self._hangup_again = False
        self._next_retire_request = 0.0
        #: Connections taken from the listen queue during a stop (for the closing line).
        self.taken_at_stop = 0
        self.ending: _Ending | None = None
        self.exit_code = 0

    @property
    def reloading(self) -> bool:
        """Whether the worker ended to let a new copy of the process take over its listeners."""
        return self.ending is _Ending.RELOAD

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Serve until told to end (see the module docstring), then drain. Returns the exit code.
        Meanwhile the error log is written by a thread (``logs.error_log_in_background``): a
        stderr nobody reads must not stop the loop; all of it is written before this returns."""
        with error_log_in_background():
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
                self.exit_code = WORKER_BOOT_ERROR
                for sock in self.sockets:
                    sock.close()
                return
        # Everything loaded so far (synack, the app, its startup state) lives as long as the
        # worker: move it out of the collector's reach, so full collections during requests
        # do not walk it again and again (measured: 1.5% of a 64 KiB POST's instructions), and
        # pre-forked pages stay shared.
        gc.collect()
        gc.freeze()
        signals = self._watch_signals()
        if self.link is not None and self.link.heartbeat >= 0:
            # The arbiter sends STACK_DUMP_SIGNAL to a worker whose loop is stuck, just before
            # killing it: the stack (every thread's) is written from the signal handler itself,
            # so it shows where the loop is blocked. It goes into the heartbeat file after the
            # time, and the arbiter logs it as one error-log entry (one JSON object with
            # --log-format json) once the worker is gone.
            os.lseek(self.link.heartbeat, _HEARTBEAT.size, os.SEEK_SET)
            faulthandler.register(STACK_DUMP_SIGNAL, file=self.link.heartbeat, all_threads=True)
        for acceptor in self.acceptors:
            acceptor.start()
        metrics_server = await self._serve_metrics()
        for sock in self.sockets:
            error_log.info("listening on %s", describe(sock, self.context.scheme))
        error_log.info("application startup complete")
        if self.settings.interactive and self.link is None:
            error_log.info("Press CTRL+C to quit")
        self._report_ready()
        await self._stop.wait()
        if self.ending is _Ending.STOP and self.settings.shutdown_delay:
            await self._delay_shutdown(self.settings.shutdown_delay)
        if metrics_server is not None:
            metrics_server.close()
        self._watch_signals_while_draining(signals)
        await self._drain()
        if self.context.metrics is not None:
            self.context.metrics.publish()  # (the last counts: the arbiter keeps them)
        for sig in signals:
            self.loop.remove_signal_handler(sig)
        shutdown = getattr(self.handler, "shutdown", None)
        if shutdown is not None:
            try:
                await shutdown()
            except Exception as error:
                error_log.error("shutdown failed: %s", error)
                self.exit_code = 1

    async def _serve_metrics(self) -> asyncio.Server | None:
        sock, metrics = self.settings.metrics, self.context.metrics
        if sock is None or metrics is None:
            return None
        server = await serve_metrics(sock, metrics, self.context.connections)
        error_log.info("metrics on %s/metrics", describe(sock, "http"))
        return server

    def stop(self) -> None:
        """Ask the worker to stop the server: drain and exit (call from inside the loop)."""
        self._end(_Ending.STOP)

    def _end(self, ending: _Ending) -> None:
        if self.ending is None and self._stop is not None:
            self.ending = ending
            self._stop.set()
        elif self._hurry is not None:
            self._hurry.set()  # a second signal during --shutdown-delay: drain now

    async def _delay_shutdown(self, seconds: float) -> None:
        """``--shutdown-delay``: go on serving (accepting too) while the load balancer or the
        Kubernetes endpoints controller stops sending new connections here; then drain."""
        error_log.info("stopping in %gs (--shutdown-delay); still serving until then", seconds)
        self._hurry = asyncio.Event()
        try:
            await asyncio.wait_for(self._hurry.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._hurry = None

    # ------------------------------------------------------------------ signals and supervisor

    def _watch_signals(self) -> list[int]:
        """Install this worker's signal handlers; returns the signals to uninstall at the end."""
        if self.link is not None:
            self.loop.add_signal_handler(signal.SIGTERM, self._end, _Ending.RETIRE)
            self.loop.add_reader(self.link.alive, self._supervisor_readable)
            return [signal.SIGTERM]
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._end, _Ending.STOP)
        self.loop.add_signal_handler(signal.SIGHUP, self._hangup)
        return [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]

    def _watch_signals_while_draining(self, signals: list[int]) -> None:
        """A reload's drain can still turn into a stop (SIGTERM/SIGINT); during any other drain
        the default dispositions are back, so that a second Ctrl-C ends the process at once."""
        if self.link is not None:
            self.loop.remove_reader(self.link.alive)
        if self.ending is not _Ending.RELOAD:
            for sig in signals:
                self.loop.remove_signal_handler(sig)
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stop_instead_of_reloading)
        self.loop.add_signal_handler(signal.SIGHUP, lambda: None)

    def _stop_instead_of_reloading(self) -> None:
        if self.ending is _Ending.RELOAD:
            error_log.info("stopping instead of reloading")
            self.ending = _Ending.STOP

    def _supervisor_readable(self) -> None:
        assert self.link is not None
        try:
            data = os.read(self.link.alive, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # only the arbiter held the write end: it stopped or died
            self.loop.remove_reader(self.link.alive)
            if self.ending is None:
                error_log.info("the supervisor has stopped (or died); stopping")
            self._end(_Ending.STOP)

    def _report_ready(self) -> None:
        if self.link is None:
            return
        try:
            os.write(self.link.ready, struct.pack("=i", os.getpid()))
        except OSError as error:  # the arbiter is gone: its pipe will say so
            error_log.debug("cannot report ready to the supervisor: %s", error)

    def _report_to_supervisor(self, requests: int) -> None:
        """Once a second: the heartbeat, and the request to be replaced when it is time."""
        assert self.link is not None
        if self.link.heartbeat >= 0:
            try:
                os.pwrite(self.link.heartbeat, _HEARTBEAT.pack(time.monotonic()), 0)
            except OSError as error:
                error_log.debug("cannot write the heartbeat: %s", error)
        limit = self.settings.max_requests
        if not limit or requests < limit or self.ending is not None:
            return
        now = time.monotonic()
        if now < self._next_retire_request:
            return
        if not self._next_retire_request:
            error_log.info("served %d requests (--max-requests); asking to be replaced", requests)
        self._next_retire_request = now + RETIRE_REQUEST_INTERVAL
        try:
            os.write(self.link.ready, struct.pack("=i", -os.getpid()))
        except OSError as error:
            error_log.debug("cannot ask the supervisor for a replacement: %s", error)

    def _hangup(self) -> None:
        if self.ending is not None:
            return
        if self._checking_reload:
            # (A file saved again while the check runs, under --reload): check once more
            # afterwards, so that the code that reloads is the newest.
            self._hangup_again = True
            return
        if self.reload is None:
            error_log.info("SIGHUP: this process cannot reload itself; stopping")
            self._end(_Ending.STOP)
            return
        error_log.info("SIGHUP: checking that the app loads before reloading")
        self._checking_reload = True
        self.loop.create_task(self._reload_if_ready(self.reload))

    async def _reload_if_ready(self, check: ReloadCheck) -> None:
        try:
            problem = await check()
        except Exception as error:
            problem = f"the reload check failed: {error!r}"
        finally:
            self._checking_reload = False
        if self.ending is not None:
            return
        if self._hangup_again:
            self._hangup_again = False
            if problem is not None:
                error_log.error("SIGHUP: that version does not load; a newer SIGHUP came, checking again:\n%s",
                                problem)
            self._hangup()
            return
        if problem is not None:
            error_log.error("SIGHUP: not reloading, still serving the old code:\n%s", problem)
            return
        error_log.info("SIGHUP: the app loads; reloading")
        self._end(_Ending.RELOAD)

    # ------------------------------------------------------------------ ending

    async def _drain(self) -> None:
        self.context.shutting_down = True
        for acceptor in self.acceptors:
            acceptor.stop()
        started = self.loop.time()
        deadline = started + self.timeouts.graceful
        open_at_start = len(self.context.connections) + self.pending
        while True:
            ending = self.ending
            await self._release_listeners()
            # A retiring worker's replacements serve already: its idle connections may
            # wait for one more request (see HttpProtocol.shutdown).
            keep_idle = self.ending is _Ending.RETIRE
            for connection in list(self.context.connections):
                connection.shutdown(keep_idle)
            await self._wait_idle(deadline)
            if self.ending is ending:  # else a reload turned into a stop meanwhile
                break
        cut = len(self.context.connections)
        for connection in list(self.context.connections):
            connection.cancel()
        await asyncio.sleep(0)
        error_log.info(
            "drained in %.1fs: %d connection(s) finished (%d open when told to %s, %d taken from the"
            " listen queue), %d cut at the graceful timeout",
            self.loop.time() - started, open_at_start + self.taken_at_stop - cut, open_at_start,
            self.ending.value if self.ending else "stop", self.taken_at_stop, cut,
        )

    async def _release_listeners(self) -> None:
        """Per ending (see the module docstring): empty the queues and close, close, or keep."""
        refusing = False
        if self.ending is _Ending.STOP and self.settings.own_listeners:
            # Before the log line: a connection attempted after it is never queued.
            refusing = all([refuse_new_connections(sock) for sock in self.sockets])
        error_log.info("shutting down: finishing %d connection(s)", len(self.context.connections))
        if self.ending is _Ending.STOP:
            await self._take_queued_connections(refusing)
        if self.ending is not _Ending.RELOAD:
            for sock in self.sockets:
                sock.close()

    async def _take_queued_connections(self, refusing: bool) -> None:
        """Accept what the kernel has queued (and, once it refuses new attempts, the
        handshakes still completing), so that closing the listener resets nothing."""
        deadline = self.loop.time() + HANDSHAKE_WAIT
        while True:
            # Counted before accepting: a handshake that completes after the count is
            # accepted below; none can begin after it, since new attempts are dropped.
            under_way = sum(handshakes_in_progress(sock) for sock in self.sockets) if refusing else 0
            for acceptor in self.acceptors:
                self.taken_at_stop += acceptor.take_queue()
            if not under_way or self.loop.time() >= deadline:
                return
            await asyncio.sleep(HANDSHAKE_POLL)

    async def _wait_idle(self, deadline: float) -> None:
        assert self._idle is not None
        while self.context.connections or self.pending:
            self._idle.clear()
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                error_log.warning(
                    "graceful timeout: aborting %d connection(s)", len(self.context.connections)
                )
                return
            try:
                await asyncio.wait_for(self._idle.wait(), remaining)
            except asyncio.TimeoutError:
                pass

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
            tls, proxy_protocol = self.settings.tls, self.settings.proxy_protocol
            if tls is None and proxy_protocol is None:
                _, protocol = await self.loop.connect_accepted_socket(
                    lambda: HttpProtocol(self.context), client
                )
            else:
                protocol = await self._connect_prefaced(client, tls, proxy_protocol)
            if self.context.shutting_down:
                # Taken from the queue during the drain: one request, then close.
                protocol.shutdown()
        except Refused as error:
            error_log.debug("connection refused before HTTP: %s", error)
        except Exception as error:  # a failed TLS handshake, a reset during setup
            error_log.debug("connection setup failed: %s", error)
            client.close()
        finally:
            self.pending -= 1
            if self.pending == 0 and self.context.shutting_down and not self.context.connections:
                assert self._idle is not None
                self._idle.set()

    async def _connect_prefaced(self, client: socket.socket, tls: ServerTls | None,
                                proxy_protocol: ProxyProtocol | None) -> HttpProtocol:
        """The preface (a PROXY header from a trusted peer, the check that TLS follows; see
        ``server/preface.py``), then the TLS handshake: together they must finish within the
        head timeout, counted from the accept."""
        deadline = self.loop.time() + self.timeouts.head
        reader = None
        if proxy_protocol is not None and proxy_protocol.expected_from(client):
            reader = proxy_protocol.read
        origin = await read_preface(self.context, client, deadline, reader)
        if tls is None:
            _, protocol = await self.loop.connect_accepted_socket(
                lambda: HttpProtocol(self.context, origin), client
            )
            return protocol
        _, protocol = await self.loop.connect_accepted_socket(
            lambda: HttpProtocol(self.context, origin), client, ssl=tls.context,
            ssl_handshake_timeout=max(deadline - self.loop.time(), 0.001),
            # After close_notify, how long to wait for the client's before closing the socket.
            ssl_shutdown_timeout=self.timeouts.linger,
        )
        return protocol

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
        expire_deadlines(context.connections, now)
        if context.metrics is not None:
            context.metrics.publish(context.connections)
        if self.link is not None:
            self._report_to_supervisor(context.requests)
        # Align the next tick with the start of the next wall-clock second.
        self.loop.call_later(1.0 - (wall % 1.0) + 0.001, self._tick)

