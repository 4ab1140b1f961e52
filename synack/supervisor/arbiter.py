"""Arbiter: fork workers that share the listening sockets, reap and replace them, and turn
signals into actions: TERM/INT drain and exit, HUP reload (new workers, then drain the old),
TTIN/TTOU add or remove a worker.

Signal handlers only record the signal and wake the loop through a pipe; ``run`` dispatches
to ``handle_<name>`` methods outside the handler (gunicorn's arbiter does the same).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Arbiter", "ArbiterSettings", "WORKER_BOOT_ERROR"]

error_log = logging.getLogger("synack.error")

#: A worker exits with this when it cannot start (app import, lifespan startup): restarting it
#: would only crash-loop, so the arbiter stops instead.
WORKER_BOOT_ERROR = 3
#: How many unexpected worker deaths within ``_CRASH_WINDOW`` seconds stop the arbiter.
_CRASH_LIMIT = 10
_CRASH_WINDOW = 10.0

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
    #: Seconds a worker gets to drain on TERM before it is killed (the worker's own graceful
    #: timeout plus a margin).
    graceful_timeout: float = 30.0


class Arbiter:
    """Runs ``settings.workers`` copies of ``worker_main`` (called in each forked child; its
    return value is the child's exit code)."""

    def __init__(self, worker_main: Callable[[], int], settings: ArbiterSettings) -> None:
        self.worker_main = worker_main
        self.settings = settings
        self.target = settings.workers
        self.workers: dict[int, float] = {}  # pid → start time
        self.retiring: dict[int, float] = {}  # pid → kill deadline
        self.signals: list[str] = []
        self.stopping = False
        self.exit_code = 0
        self._crashes: list[float] = []
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        """Supervise until TERM/INT (or a boot failure); returns the exit code."""
        previous = {sig: signal.signal(sig, self._record) for sig in _SIGNALS}
        try:
            error_log.info("arbiter %d starting %d worker(s)", os.getpid(), self.target)
            self._spawn_missing()
            while True:
                self._sleep(1.0)
                while self.signals:
                    getattr(self, "handle_" + self.signals.pop(0))()
                self._reap()
                self._kill_overdue()
                if self.stopping:
                    if not self.workers and not self.retiring:
                        return self.exit_code
                    continue
                self._spawn_missing()
                self._trim_extra()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _record(self, signum: int, frame: object) -> None:
        # Only record and wake: the loop does the work (no logging in a signal handler).
        if len(self.signals) < 32:
            self.signals.append(_SIGNALS[signal.Signals(signum)])
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass

    def _sleep(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_read], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_read, 4096):
                    pass
            except (BlockingIOError, InterruptedError):
                pass

    # ------------------------------------------------------------------ signals

    def handle_term(self) -> None:
        self._stop("SIGTERM")

    def handle_int(self) -> None:
        self._stop("SIGINT")

    def handle_hup(self) -> None:
        """Reload: start a fresh set of workers, then drain the old ones."""
        if self.stopping:
            return
        error_log.info("SIGHUP: starting %d new worker(s), then draining the old ones", self.target)
        old = list(self.workers)
        for _ in range(self.target):
            self._spawn()
        for pid in old:
            self._retire(pid)

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
        error_log.info("%s: draining %d worker(s)", name, len(self.workers))
        self.stopping = True
        for pid in list(self.workers):
            self._retire(pid)

    # ------------------------------------------------------------------ workers

    def _spawn_missing(self) -> None:
        while len(self.workers) < self.target and not self.stopping:
            self._spawn()

    def _trim_extra(self) -> None:
        while len(self.workers) > self.target:
            oldest = min(self.workers, key=self.workers.__getitem__)
            self._retire(oldest)

    def _spawn(self) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = time.monotonic()
            return
        # In the child: default signal dispositions, no arbiter state, then serve.
        code = 1
        try:
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._wake_read)
            os.close(self._wake_write)
            code = self.worker_main()
        except BaseException:  # the child must never return into the arbiter's loop
            error_log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def _retire(self, pid: int) -> None:
        self.workers.pop(pid, None)
        self.retiring[pid] = time.monotonic() + self.settings.graceful_timeout + 5.0
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
            if self.retiring.pop(pid, None) is not None:
                continue
            if self.workers.pop(pid, None) is None:
                continue
            self._worker_died(pid, code)

    def _worker_died(self, pid: int, code: int) -> None:
        if code == WORKER_BOOT_ERROR:
            error_log.error("worker %d could not start (exit %d); stopping", pid, code)
            self.exit_code = 1
            self._stop("boot failure")
            return
        error_log.warning("worker %d exited unexpectedly (%d); replacing it", pid, code)
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < _CRASH_WINDOW] + [now]
        if len(self._crashes) >= _CRASH_LIMIT:
            error_log.error("workers keep dying (%d in %gs); stopping", _CRASH_LIMIT, _CRASH_WINDOW)
            self.exit_code = 1
            self._stop("crash loop")
