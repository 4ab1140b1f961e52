"""Arbiter: fork workers that share the listening sockets, reap and replace them, and turn
signals into actions: TERM/INT stop, HUP reload, TTIN/TTOU add or remove a worker.

Signal handlers only record the signal and wake the loop through a pipe; ``run`` dispatches
to ``handle_<name>`` methods outside the handler (gunicorn's arbiter does the same).

Two more pipes tie the workers to the arbiter (``server.worker.SupervisorLink``):

* *alive*: only the arbiter holds its write end. Closing it (on TERM/INT) tells every worker
  to stop the server: drain the listen queue, then their connections. When the arbiter dies
  (SIGKILL, the OOM killer) the kernel closes it, and the workers stop the same way instead
  of serving on, orphaned, holding the port.
* *ready*: each worker writes its pid there once it serves. A reload (HUP) starts a new set
  of workers and retires the old set only when every new worker is ready; if one cannot
  start (a syntax error in the new code), the new set is dropped and the old keeps serving.

On stop, the arbiter makes the kernel refuse new connection attempts and closes its own
copy of the listening sockets at once: the workers empty the queue and close the last
copies, so no connection is queued with no one left to accept it.

With ``--metrics``, each worker publishes its counts once a second into memory shared with
the arbiter, which sums them and answers the scrapes from its own loop
(``supervisor/metrics.py``).
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..logs import error_log
from ..server.listeners import describe, refuse_new_connections
from ..server.worker import (STACK_DUMP_SIGNAL, WORKER_BOOT_ERROR, SupervisorLink, read_heartbeat,
                             read_stack)
from .metrics import MetricsEndpoint, WorkerCounters

__all__ = ["Arbiter", "ArbiterSettings", "WORKER_BOOT_ERROR"]

#: How many unexpected worker deaths within ``_CRASH_WINDOW`` seconds stop the arbiter.
_CRASH_LIMIT = 10
_CRASH_WINDOW = 60.0
#: A crashed worker is replaced after a delay that doubles with each crash in the window:
#: 0.1 s, 0.2 s, 0.4 s … at most 10 s (a crash loop must not spin the CPU).
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 10.0
#: Seconds past the graceful timeout before a draining worker is killed.
_KILL_MARGIN = 5.0
#: Seconds a stuck worker gets to write its stack before SIGKILL.
_DUMP_WAIT = 0.5
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PID = struct.Struct("=i")

#: Why workers are replaced (``synack_worker_restarts_total{cause}``): a crash, a stuck loop
#: (--worker-timeout), --max-requests, --max-worker-memory, a reload (SIGHUP: each old worker).
RESTART_CAUSES = ("crash", "timeout", "max-requests", "memory", "reload")

_SIGNALS = {
    signal.SIGTERM: "term",
    signal.SIGINT: "int",
    signal.SIGHUP: "hup",
    signal.SIGTTIN: "ttin",
    signal.SIGTTOU: "ttou",
    signal.SIGCHLD: "chld",
}


@dataclass(frozen=True, slots=True)
class ArbiterSettings:
    workers: int = 2
    #: Seconds a worker gets to drain before it is killed (plus a margin).
    graceful_timeout: float = 30.0
    #: Whether synack created the listeners (see ``WorkerSettings.own_listeners``).
    own_listeners: bool = True
    #: Seconds a serving worker's loop may go without a heartbeat before it is killed (its
    #: stack logged first) and replaced; None: no heartbeat.
    worker_timeout: float | None = None
    #: Bytes of RSS above which a worker is replaced (the replacement first); 0: no limit.
    max_worker_memory: int = 0
    #: ``--shutdown-delay``: on a stop the workers serve on for this long, new connections
    #: included, so the arbiter leaves refusing them to the workers (they do it after it).
    shutdown_delay: float = 0.0


class Arbiter:
    """Runs ``settings.workers`` copies of ``worker_main`` (called in each forked child with
    its ``SupervisorLink``; its return value is the child's exit code). ``listeners`` are
    the sockets the workers inherit; the arbiter closes its copies when it stops. With
    ``metrics`` (a bound socket, ``--metrics``) the workers publish their counts into shared
    memory and the arbiter serves the sums there (``supervisor/metrics.py``)."""

    def __init__(
        self,
        worker_main: Callable[[SupervisorLink], int],
        settings: ArbiterSettings,
        listeners: list[socket.socket],
        metrics: socket.socket | None = None,
    ) -> None:
        self.worker_main = worker_main
        self.settings = settings
        self.listeners = listeners
        self.target = settings.workers
        self.workers: dict[int, float] = {}  # pid → start time: the serving set
        self.booting: dict[int, bool] = {}  # pid → ready: a reload's new set
        self.retiring: dict[int, float] = {}  # pid → kill deadline
        self.ready: dict[int, float] = {}  # workers that have reported serving → since when
        self.replacing: dict[int, int] = {}  # new pid → the pid it replaces once it serves
        self.heartbeats: dict[int, int] = {}  # pid → its heartbeat file (with --worker-timeout)
        self.restarts: collections.Counter[str] = collections.Counter(dict.fromkeys(RESTART_CAUSES, 0))
        self.metrics = MetricsEndpoint(metrics, WorkerCounters(), self.restarts) if metrics is not None else None
        self.signals: list[str] = []
        self.stopping = False
        self._hup_again = False  # a SIGHUP came while a reload was under way
        self.exit_code = 0
        self._crashes: list[float] = []
        self._spawn_after = 0.0  # back-off after crashes (monotonic time)
        self._wake_read, self._wake_write = _pipe()
        self._alive_read, self._alive_write = os.pipe()
        self._ready_read, self._ready_write = _pipe()

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        """Supervise until TERM/INT (or a boot failure); returns the exit code."""
        previous = {sig: signal.signal(sig, self._record) for sig in _SIGNALS}
        try:
            error_log.info("arbiter %d starting %d worker(s)", os.getpid(), self.target)
            if self.metrics is not None:
                error_log.info("metrics on %s/metrics", describe(self.metrics.listener, "http"))
            self._spawn_missing()
            while True:
                self._sleep(max(0.01, min(1.0, self._spawn_after - time.monotonic()))
                            if self._spawn_after > time.monotonic() else 1.0)
                while self.signals:
                    getattr(self, "handle_" + self.signals.pop(0))()
                self._reap()
                self._kill_overdue()
                if not self.stopping:
                    self._check_health()
                if self.stopping:
                    if not self.retiring:
                        return self.exit_code
                    continue
                self._spawn_missing()
                self._trim_extra()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_read, self._wake_write, self._alive_read, self._alive_write,
                       self._ready_read, self._ready_write):
                if fd >= 0:
                    os.close(fd)
            if self.metrics is not None:
                self.metrics.close()

    def _record(self, signum: int, frame: object) -> None:
        # Only record and wake: the loop does the work (no logging in a signal handler).
        if len(self.signals) < 32:
            self.signals.append(_SIGNALS[signal.Signals(signum)])
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass

    def _sleep(self, timeout: float) -> None:
        metrics = self.metrics
        readers = [self._wake_read, self._ready_read, *(metrics.readers() if metrics is not None else ())]
        writers = metrics.writers() if metrics is not None else []
        try:
            ready, writable, _ = select.select(readers, writers, [], timeout)
        except InterruptedError:
            return
        if metrics is not None:
            metrics.ready(ready, writable)
        if self._wake_read in ready:
            _read_all(self._wake_read)
        if self._ready_read in ready:
            data = _read_all(self._ready_read)
            for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                if pid < 0:
                    self._replace(-pid, "max-requests")
                else:
                    self._worker_ready(pid)

    # ------------------------------------------------------------------ signals

    def handle_term(self) -> None:
        self._stop("SIGTERM")

    def handle_int(self) -> None:
        self._stop("SIGINT")

    def handle_hup(self) -> None:
        """Reload: start a new set of workers; retire the old set once all new ones serve."""
        if self.stopping:
            return
        if self.booting:
            # (A file saved again under --reload): one more reload once this one settles,
            # so that the newest code is what serves.
            error_log.info("SIGHUP: a reload is already under way; another follows it")
            self._hup_again = True
            return
        error_log.info("SIGHUP: starting %d new worker(s); the old ones serve until they are ready",
                       self.target)
        for _ in range(self.target):
            self.booting[self._spawn()] = False

    def handle_ttin(self) -> None:
        self.target += 1
        error_log.info("SIGTTIN: %d worker(s)", self.target)

    def handle_ttou(self) -> None:
        if self.target > 1:
            self.target -= 1
        error_log.info("SIGTTOU: %d worker(s)", self.target)

    def handle_chld(self) -> None:
        self._reap()

    def _stop(self, name: str) -> None:
        if self.stopping:
            return
        error_log.info("%s: stopping %d worker(s)", name, len(self.workers) + len(self.booting))
        self.stopping = True
        # No new connection is queued from now on; the workers take what is queued and
        # close the last copies of the listeners (see the module docstring).
        for sock in self.listeners:
            if self.settings.own_listeners and not self.settings.shutdown_delay:
                refuse_new_connections(sock)
            sock.close()
        os.close(self._alive_write)
        self._alive_write = -1
        deadline = time.monotonic() + self.settings.graceful_timeout + _KILL_MARGIN
        for pid in [*self.workers, *self.booting, *self.replacing]:
            self.retiring[pid] = deadline
        self.workers.clear()
        self.booting.clear()
        self.replacing.clear()

    # ------------------------------------------------------------------ reload

    def _worker_ready(self, pid: int) -> None:
        if pid in self.replacing:
            self.ready[pid] = time.monotonic()
            old = self.replacing.pop(pid)
            self.workers[pid] = time.monotonic()
            if old in self.workers:
                error_log.info("worker %d serves; retiring worker %d", pid, old)
                self._retire(old)
            return
        if pid not in self.workers and pid not in self.booting:
            return  # already reaped or retiring
        self.ready[pid] = time.monotonic()
        if pid not in self.booting:
            return
        self.booting[pid] = True
        if not all(self.booting.values()):
            return
        error_log.info("reload: %d new worker(s) serving; retiring the old ones", len(self.booting))
        for old in list(self.workers):
            self._retire(old)
            self.restarts["reload"] += 1
        for new in self.booting:
            self.workers[new] = time.monotonic()
        self.booting.clear()
        self._reload_settled()

    def _reload_failed(self, pid: int, code: int) -> None:
        error_log.error(
            "reload failed: new worker %d could not start (exit %d); still serving with the"
            " %d old worker(s)", pid, code, len(self.workers),
        )
        for other in list(self.booting):
            self._retire(other)
        self.booting.clear()
        self._reload_settled()

    def _reload_settled(self) -> None:
        """A SIGHUP that came during the reload starts the next one now."""
        if self._hup_again:
            self._hup_again = False
            self.signals.append("hup")
            try:
                os.write(self._wake_write, b"!")  # (handled at once, not after the loop's sleep)
            except OSError:
                pass

    # ------------------------------------------------------------------ health

    def _replace(self, pid: int, cause: str) -> None:
        """Start a replacement for ``pid``; retire ``pid`` once the replacement serves, so
        that capacity never dips."""
        if self.stopping or pid not in self.workers or pid in self.replacing.values():
            return
        new = self._spawn()
        self.replacing[new] = pid
        self.restarts[cause] += 1
        error_log.info("replacing worker %d (%s) with worker %d", pid, cause, new)

    def _check_health(self) -> None:
        """Kill workers whose loop is stuck; replace those above the memory limit."""
        now = time.monotonic()
        timeout = self.settings.worker_timeout
        for pid in list(self.workers):
            since = self.ready.get(pid)
            if since is None:
                continue  # still starting
            if timeout is not None and pid in self.heartbeats:
                try:
                    beat = max(read_heartbeat(self.heartbeats[pid]), since)
                except OSError:
                    beat = since
                if now - beat > timeout:
                    self._kill_stuck(pid, now - beat)
                    continue
            limit = self.settings.max_worker_memory
            if limit and _rss(pid) > limit:
                error_log.warning("worker %d uses %d MiB, above --max-worker-memory %d MiB", pid,
                                  _rss(pid) >> 20, limit >> 20)
                self._replace(pid, "memory")

    def _kill_stuck(self, pid: int, stuck: float) -> None:
        error_log.error(
            "worker %d: event loop blocked for %.1fs (--worker-timeout %gs), a blocking call in an async"
            " app?; its stack follows; killing and replacing it", pid, stuck, self.settings.worker_timeout,
        )
        self.workers.pop(pid, None)
        self.restarts["timeout"] += 1
        self.retiring[pid] = time.monotonic() + _DUMP_WAIT
        self._kill(pid, STACK_DUMP_SIGNAL)

    # ------------------------------------------------------------------ workers

    def _spawn_missing(self) -> None:
        if time.monotonic() < self._spawn_after:
            return
        while len(self.workers) < self.target and not self.stopping:
            self.workers[self._spawn()] = time.monotonic()

    def _trim_extra(self) -> None:
        while len(self.workers) > self.target:
            oldest = min(self.workers, key=self.workers.__getitem__)
            self._retire(oldest)

    def _spawn(self) -> int:
        heartbeat = _heartbeat_file() if self.settings.worker_timeout is not None else -1
        metrics = self.metrics
        counters = metrics.counters.new() if metrics is not None else None
        pid = os.fork()
        if pid:
            if heartbeat >= 0:
                self.heartbeats[pid] = heartbeat
            if metrics is not None and counters is not None:
                metrics.counters.started(pid, counters)
            return pid
        # In the child: default signal dispositions, no arbiter state, then serve. SIGINT
        # and SIGHUP are the arbiter's (a Ctrl-C reaches the whole process group).
        code = 1
        try:
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            for fd in (self._wake_read, self._wake_write, self._alive_write, self._ready_read,
                       *self.heartbeats.values()):
                os.close(fd)
            if metrics is not None:
                metrics.close()  # (the arbiter's sockets: a worker must not hold the port)
            code = self.worker_main(SupervisorLink(alive=self._alive_read, ready=self._ready_write,
                                                   heartbeat=heartbeat, metrics=counters))
        except BaseException:  # the child must never return into the arbiter's loop
            error_log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def _retire(self, pid: int) -> None:
        self.workers.pop(pid, None)
        self.booting.pop(pid, None)
        self.retiring[pid] = time.monotonic() + self.settings.graceful_timeout + _KILL_MARGIN
        self._kill(pid, signal.SIGTERM)

    def _kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid, deadline in list(self.retiring.items()):
            if now > deadline:
                error_log.warning("worker %d did not drain in time; killing it", pid)
                self._kill(pid, signal.SIGKILL)
                self.retiring[pid] = now + 60.0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                raise
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            was_ready = pid in self.ready
            self.ready.pop(pid, None)
            heartbeat = self.heartbeats.pop(pid, None)
            if heartbeat is not None:
                _log_stack(pid, heartbeat)
                os.close(heartbeat)
            if self.metrics is not None:
                self.metrics.counters.reaped(pid)
            if self.replacing.pop(pid, None) is not None:
                error_log.warning("worker %d exited (%d) before serving; the one it was to replace stays",
                                  pid, code)
                continue
            if self.retiring.pop(pid, None) is not None:
                continue
            if self.booting.pop(pid, None) is not None:
                self._reload_failed(pid, code)
            elif self.workers.pop(pid, None) is not None:
                self._worker_died(pid, code, was_ready)

    def _worker_died(self, pid: int, code: int, was_ready: bool) -> None:
        if code == WORKER_BOOT_ERROR and not was_ready and not self.ready:
            # Nothing serves and the app cannot start: restarting would only crash-loop.
            error_log.error("worker %d could not start (exit %d); stopping", pid, code)
            self.exit_code = 1
            self._stop("boot failure")
            return
        self.restarts["crash"] += 1
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < _CRASH_WINDOW] + [now]
        delay = min(_BACKOFF_FIRST * 2 ** (len(self._crashes) - 1), _BACKOFF_MAX)
        self._spawn_after = max(self._spawn_after, now + delay)
        error_log.warning("worker %d exited unexpectedly (%d); replacing it in %.1fs (crash %d in %gs)",
                          pid, code, delay, len(self._crashes), _CRASH_WINDOW)
        if len(self._crashes) >= _CRASH_LIMIT:
            error_log.error("workers keep dying (%d in %gs); stopping", _CRASH_LIMIT, _CRASH_WINDOW)
            self.exit_code = 1
            self._stop("crash loop")


def _log_stack(pid: int, heartbeat: int) -> None:
    """The stack a worker killed as stuck wrote (``STACK_DUMP_SIGNAL``), as one error-log entry."""
    try:
        stack = read_stack(heartbeat)
    except OSError:
        return
    if stack:
        error_log.error("worker %d's stack when it was killed:\n%s", pid, stack)


def _heartbeat_file() -> int:
    """An anonymous file, shared with the worker forked next, for its heartbeat."""
    return os.memfd_create("synack-heartbeat", os.MFD_CLOEXEC)


def _rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as file:
            return int(file.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    return read, write


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    except (BlockingIOError, InterruptedError):
        pass
    return b"".join(chunks)
