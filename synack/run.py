"""Orchestration: bind listeners, load the handler, then run one worker in this process or a
pre-fork supervisor with several."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys

from .apps.loader import AppLoadError, load_handler
from .config import Config
from .logs import error_log, setup_logging
from .server.exchange import Handler
from .server.listeners import BindError, bind_tcp, bind_unix, from_fd
from .server.worker import ACCEPT_BATCH, SHARED_ACCEPT_BATCH, Worker, WorkerSettings
from .supervisor.arbiter import WORKER_BOOT_ERROR, Arbiter, ArbiterSettings

__all__ = ["run", "StartupError", "bind"]


class StartupError(Exception):
    """synack cannot start; the message says what to fix."""


def bind(config: Config) -> list[socket.socket]:
    """The listening sockets ``config`` asks for."""
    if config.fd is not None:
        return [from_fd(config.fd)]
    if config.uds is not None:
        return [bind_unix(config.uds, config.backlog)]
    return [bind_tcp(config.host, config.port, config.backlog)]


def _worker_settings(config: Config) -> WorkerSettings:
    return WorkerSettings(
        server_header=config.server_header.encode("ascii"),
        access_log=config.access_log,
        root_path=config.root_path,
        max_connections=config.max_connections,
        loop=config.loop,
        # Workers of a supervisor share the listening sockets: take turns accepting.
        accept_batch=SHARED_ACCEPT_BATCH if config.workers > 1 else ACCEPT_BATCH,
    )


def run(config: Config) -> int:
    """Serve according to ``config`` until told to stop; returns the exit code.

    Raises:
        StartupError: a listener could not be bound or the app could not be loaded.
    """
    setup_logging(config.log_level, config.access_log)
    if config.check:
        handler = _load(config)
        error_log.info("%s loads", config.app or "the current directory")
        return 0
    if config.workers > 1:
        return _run_supervised(config)
    handler = _load(config)
    try:
        sockets = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None
    return _serve(config, handler, sockets)


def _load(config: Config) -> Handler:
    try:
        return load_handler(config)
    except AppLoadError as error:
        raise StartupError(str(error)) from None


def _serve(config: Config, handler: Handler, sockets: list[socket.socket]) -> int:
    try:
        worker = Worker(handler, sockets, config.limits, config.timeouts, _worker_settings(config))
    except RuntimeError as error:
        raise StartupError(str(error)) from None
    return worker.run()


def _run_supervised(config: Config) -> int:
    # The master never imports the app (workers do, after fork), but it checks that the
    # module exists so the commonest mistake still gets a one-line error and status 1.
    spec = config.app
    if spec is not None and ":" in spec and not os.path.isdir(spec):
        module = spec.partition(":")[0]
        if config.app_dir and os.path.abspath(config.app_dir) not in sys.path:
            sys.path.insert(0, os.path.abspath(config.app_dir))
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise StartupError(f"could not import module {module!r}: no module named {module!r}")
    try:
        sockets = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None

    def worker_main() -> int:
        try:
            handler = load_handler(config)
        except AppLoadError as error:
            error_log.error("%s", error)
            return WORKER_BOOT_ERROR
        return _serve(config, handler, sockets)

    settings = ArbiterSettings(workers=config.workers, graceful_timeout=config.timeouts.graceful)
    try:
        return Arbiter(worker_main, settings).run()
    finally:
        for sock in sockets:
            sock.close()
