"""Orchestration: bind listeners, load the handler, then run one worker in this process or a
pre-fork supervisor with several.

SIGHUP to a single process reloads it in place. The new code is first loaded in a child
process (``synack --check`` with the same arguments). If that fails, its error is logged and
the old code keeps serving. If it loads, the worker stops accepting and finishes its
connections while the listening sockets stay open (new connections wait in the kernel's
queue), then the process re-executes itself with the same command line, keeping its pid
and handing the listeners over in ``SYNACK_FDS``; the new code serves the queued
connections. Under a supervisor (``--workers N``), the arbiter reloads by starting new
workers instead (see ``supervisor/arbiter.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import NoReturn

from .apps.loader import AppLoadError, load_handler
from .config import Config
from .logs import error_log, setup_logging
from .server.exchange import Handler
from .server.listeners import BindError, bind_tcp, bind_unix, from_fd
from .server.tls import ServerTls, TlsError, TlsSettings
from .server.tls import load as load_tls
from .server.worker import (
    ACCEPT_BATCH,
    SHARED_ACCEPT_BATCH,
    WORKER_BOOT_ERROR,
    ReloadCheck,
    SupervisorLink,
    Worker,
    WorkerSettings,
)
from .supervisor.arbiter import Arbiter, ArbiterSettings

__all__ = ["run", "StartupError", "bind", "INHERITED_FDS"]

#: Environment variable naming listening sockets inherited across a reload ("3,4").
INHERITED_FDS = "SYNACK_FDS"
#: How long the new code may take to load in the reload check.
RELOAD_CHECK_TIMEOUT = 120.0


class StartupError(Exception):
    """synack cannot start; the message says what to fix."""


def bind(config: Config) -> list[socket.socket]:
    """The listening sockets ``config`` asks for (or those a reload handed over)."""
    inherited = os.environ.pop(INHERITED_FDS, None)
    if inherited is not None:
        try:
            fds = [int(fd, 10) for fd in inherited.split(",")]
        except ValueError:
            raise BindError(f"{INHERITED_FDS} must list file descriptors, got {inherited!r}") from None
        return [from_fd(fd) for fd in fds]
    if config.fd is not None:
        return [from_fd(config.fd)]
    if config.uds is not None:
        return [bind_unix(config.uds, config.backlog)]
    return [bind_tcp(config.host, config.port, config.backlog)]


def load_tls_context(config: Config) -> ServerTls | None:
    """The TLS context ``config`` asks for, read from its files now (None: plain HTTP).
    Every serving process loads its own, so a reload picks up renewed certificates.

    Raises:
        StartupError: a file is missing or unusable (the message names it).
    """
    if config.ssl_certfile is None:
        return None
    settings = TlsSettings(config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password,
                           config.ssl_ca_certs, config.ssl_cert_reqs, config.ssl_ciphers)
    try:
        return load_tls(settings)
    except TlsError as error:
        raise StartupError(str(error)) from None


def _worker_settings(config: Config, tls: ServerTls | None) -> WorkerSettings:
    return WorkerSettings(
        tls=tls,
        server_header=config.server_header.encode("ascii"),
        access_log=config.access_log,
        root_path=config.root_path,
        max_connections=config.max_connections,
        loop=config.loop,
        # Workers of a supervisor share the listening sockets: take turns accepting.
        accept_batch=SHARED_ACCEPT_BATCH if config.workers > 1 else ACCEPT_BATCH,
        own_listeners=config.fd is None,
    )


def run(config: Config, command: Sequence[str] | None = None) -> int:
    """Serve according to ``config`` until told to stop; returns the exit code.

    Args:
        command: the ``synack`` command-line arguments ``config`` came from. With them, a
            single process reloads itself in place on SIGHUP; without them (``serve()``
            from Python) it drains and stops.

    Raises:
        StartupError: a listener could not be bound or the app could not be loaded.
    """
    setup_logging(config.log_level, config.access_log)
    tls = load_tls_context(config)  # (the master's copy only checks the files: workers load theirs)
    if config.check:
        _load(config)
        error_log.info("%s loads", config.app or "the current directory")
        return 0
    if config.workers > 1:
        return _run_supervised(config)
    handler = _load(config)
    try:
        sockets = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None
    return _serve(config, handler, sockets, tls, command=command)


def _load(config: Config) -> Handler:
    try:
        return load_handler(config)
    except AppLoadError as error:
        raise StartupError(str(error)) from None


def _serve(config: Config, handler: Handler, sockets: list[socket.socket], tls: ServerTls | None, *,
           link: SupervisorLink | None = None, command: Sequence[str] | None = None) -> int:
    reload = _reload_check(command) if command is not None and link is None else None
    try:
        worker = Worker(handler, sockets, config.limits, config.timeouts, _worker_settings(config, tls),
                        link=link, reload=reload)
    except RuntimeError as error:
        raise StartupError(str(error)) from None
    code = worker.run()
    if worker.reloading and command is not None:
        _restart_in_place(command, sockets)
    return code


def _launcher(command: Sequence[str]) -> list[str]:
    """The interpreter, its options and how synack was started (``-m synack`` or a script),
    so that a check or restart runs the way this process did."""
    original, arguments = list(sys.orig_argv), list(sys.argv[1:])
    if arguments == list(command) and len(original) > len(arguments):
        return [sys.executable, *original[1 : len(original) - len(arguments)]]
    return [sys.executable, "-m", "synack"]


def _reload_check(command: Sequence[str]) -> ReloadCheck:
    async def check() -> str | None:
        args = [*_launcher(command), "--check", *command]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, lambda: subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=RELOAD_CHECK_TIMEOUT,
            ))
        except subprocess.TimeoutExpired:
            return f"loading the app took longer than {RELOAD_CHECK_TIMEOUT:g}s"
        if result.returncode == 0:
            return None
        return result.stderr.strip() or f"synack --check exited with status {result.returncode}"

    return check


def _restart_in_place(command: Sequence[str], sockets: list[socket.socket]) -> NoReturn:
    """Re-execute this process (same pid, same arguments), handing over the listeners."""
    fds = [sock.fileno() for sock in sockets]
    for fd in fds:
        os.set_inheritable(fd, True)
    os.environ[INHERITED_FDS] = ",".join(map(str, fds))
    args = [*_launcher(command), *command]
    error_log.info("restarting in place: %s", " ".join(args))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, args)


def _module_exists(name: str) -> bool:
    """Whether ``name`` can be found, leaving nothing imported: finding ``pkg.app`` imports
    ``pkg``, and workers forked later (after a reload, too) would inherit that old copy."""
    before = set(sys.modules)
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
    except Exception:  # a parent package that fails to import: the workers say why
        return True
    finally:
        for imported in set(sys.modules) - before:
            del sys.modules[imported]


def _run_supervised(config: Config) -> int:
    # The master never imports the app (workers do, after fork), but it checks that the
    # module exists so the commonest mistake still gets a one-line error and status 1.
    spec = config.app
    if spec is not None and ":" in spec and not os.path.isdir(spec):
        module = spec.partition(":")[0]
        if config.app_dir and os.path.abspath(config.app_dir) not in sys.path:
            sys.path.insert(0, os.path.abspath(config.app_dir))
        if not _module_exists(module):
            raise StartupError(f"could not import module {module!r}: no module named {module!r}")
    try:
        sockets = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None

    def worker_main(link: SupervisorLink) -> int:
        try:
            handler = load_handler(config)
            tls = load_tls_context(config)  # after fork: a reload's new workers read the files anew
        except (AppLoadError, StartupError) as error:
            error_log.error("%s", error)
            return WORKER_BOOT_ERROR
        return _serve(config, handler, sockets, tls, link=link)

    settings = ArbiterSettings(workers=config.workers, graceful_timeout=config.timeouts.graceful,
                               own_listeners=config.fd is None)
    try:
        return Arbiter(worker_main, settings, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
