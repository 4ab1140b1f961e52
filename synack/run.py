"""Orchestration: bind listeners, load the handler, then run the worker."""

from __future__ import annotations

import socket

from .apps.loader import AppLoadError, load_handler
from .config import Config
from .logs import setup_logging
from .server.listeners import BindError, bind_tcp, bind_unix, from_fd
from .server.worker import Worker, WorkerSettings

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


def run(config: Config) -> int:
    """Serve according to ``config`` until told to stop; returns the exit code.

    Raises:
        StartupError: a listener could not be bound or the app could not be loaded.
    """
    setup_logging(config.log_level, config.access_log)
    try:
        handler = load_handler(config)
    except AppLoadError as error:
        raise StartupError(str(error)) from None
    try:
        sockets = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None
    settings = WorkerSettings(
        server_header=config.server_header.encode("ascii"),
        access_log=config.access_log,
        root_path=config.root_path,
        max_connections=config.max_connections,
        loop=config.loop,
    )
    try:
        worker = Worker(handler, sockets, config.limits, config.timeouts, settings)
    except RuntimeError as error:
        raise StartupError(str(error)) from None
    return worker.run()
