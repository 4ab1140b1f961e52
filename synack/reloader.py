"""``--reload`` for development: watch files, and reload the way SIGHUP does.

The watcher is a thread of the process that handles SIGHUP: the single serving process, or
the arbiter under ``--workers``. On a change it sends SIGHUP to its own process, so a change
takes exactly the operator's reload path (``run.py`` and ``server/worker.py`` for one
process: a ``--check`` child loads the new code first, then the process re-executes;
``supervisor/arbiter.py`` with workers: new workers must report ready before the old ones
retire). Code that does not load leaves the old code serving and its error (with the
traceback) in the log; the next save that loads reloads.

Watching uses the optional ``watchfiles`` package (``pip install 'synack[reload]'``).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import signal
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .logs import error_log

__all__ = ["ReloadError", "WatchSettings", "Reloader", "DEFAULT_INCLUDE", "DEFAULT_EXCLUDE", "watchfiles_missing"]

#: File names whose change reloads, besides ``--reload-include``.
DEFAULT_INCLUDE = ("*.py",)
#: Names (of the file or of a directory above it) whose change never reloads, besides
#: ``--reload-exclude``: hidden files and directories (.git, editor swap files), bytecode,
#: editor backups.
DEFAULT_EXCLUDE = (".*", "*.py[cod]", "*~", "__pycache__")
#: How long changes are gathered into one reload, at most (milliseconds); a reload starts
#: once no change came for ``_STEP`` ms.
_DEBOUNCE = 1600
_STEP = 50
#: How often a change waits to see whether SIGHUP is handled yet (seconds).
_HANDLER_POLL = 0.05


class ReloadError(Exception):
    """``--reload`` cannot start; the message says what to fix."""


def watchfiles_missing() -> bool:
    """Whether the optional ``watchfiles`` package cannot be imported."""
    try:
        return importlib.util.find_spec("watchfiles") is None
    except (ImportError, ValueError):
        return True


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """What to watch: directories, and the globs that select (or ignore) their files."""

    directories: tuple[str, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def wanted(self, path: str) -> bool:
        """Whether a change of ``path`` (absolute) reloads: its name or its path under a
        watched directory matches an include glob, and neither it nor a directory above
        it matches an exclude glob. The user's excludes always apply; the default ones
        not to a path that one of the user's include globs names."""
        relative = self._relative(path)
        parts = relative.split(os.sep)
        name = parts[-1]
        if _matches(self.exclude, relative, parts):
            return False
        if _matches(self.include, relative, [name]):
            return True
        if _matches(DEFAULT_EXCLUDE, relative, parts):
            return False
        return _matches(DEFAULT_INCLUDE, relative, [name])

    def _relative(self, path: str) -> str:
        path = os.path.abspath(path)
        for directory in self.directories:
            root = os.path.abspath(directory)
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(path, root)
        return os.path.basename(path)


def _matches(patterns: Iterable[str], relative: str, names: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) or any(fnmatch.fnmatchcase(name, pattern) for name in names)
               for pattern in patterns)


class Reloader:
    """A daemon thread that sends SIGHUP to this process when a wanted file changes.

    Raises:
        ReloadError: (from ``__init__``) watchfiles is missing or a directory does not exist.
    """

    def __init__(self, settings: WatchSettings) -> None:
        if watchfiles_missing():
            raise ReloadError("--reload needs the watchfiles package: pip install 'synack[reload]'")
        for directory in settings.directories:
            if not os.path.isdir(directory):
                raise ReloadError(f"--reload-dir {directory!r} is not a directory")
        self.settings = settings
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="synack-reload", daemon=True)

    def start(self) -> None:
        # What the watch thread imports is imported here first: an import under way in that
        # thread when the arbiter forks leaves the module's import lock held in the new worker,
        # which hangs as soon as it imports the same module (watchfiles pulls in anyio, asyncio,
        # ssl ...; its watch() imports platform on its first step, which uuid imports too).
        import platform  # noqa: F401
        import watchfiles  # noqa: F401

        where = ", ".join(os.path.abspath(directory) for directory in self.settings.directories)
        error_log.info("reload: watching %s for changes", where)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _hang_up(self) -> None:
        """SIGHUP to this process, once something handles it: a change saved while the app
        is still loading (the signal ignored until the worker's loop or the arbiter takes it)
        is not lost but delivered then."""
        while signal.getsignal(signal.SIGHUP) in (signal.SIG_IGN, signal.SIG_DFL, None):
            if self._stopping.wait(_HANDLER_POLL):
                return
        os.kill(os.getpid(), signal.SIGHUP)

    def _watch(self) -> None:
        import watchfiles  # (imported already by start())

        def wanted(change: Any, path: str) -> bool:
            return self.settings.wanted(path)

        try:
            for changes in watchfiles.watch(*self.settings.directories, watch_filter=wanted, debounce=_DEBOUNCE,
                                            step=_STEP, stop_event=self._stopping, raise_interrupt=False):
                if self._stopping.is_set():
                    return
                names = sorted({os.path.relpath(path) for _, path in changes})
                error_log.info("reload: %s changed; reloading", ", ".join(names))
                self._hang_up()
        except Exception as error:  # a watch that fails must not take the server down
            error_log.error("reload: watching stopped: %s", error)
