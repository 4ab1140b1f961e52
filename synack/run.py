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
import contextlib
import importlib.util
import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from dataclasses import dataclass

from . import __version__
from .apps.loader import AppLoadError, load_handler
from .config import Address, Config, parse_address
from .logs import LogSetupError, error_log, flush_access_log, setup_logging
from .reloader import Reloader, ReloadError, WatchSettings
from .server.exchange import Handler
from .server.listeners import BindError, bind_tcp, bind_unix, from_fd
from .server.proxy import Forwarding, Trust, trust_from
from .server.proxy_protocol import ProxyProtocol
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
    loop_name,
)
from .supervisor.arbiter import Arbiter, ArbiterSettings

__all__ = ["run", "StartupError", "bind", "Listeners", "addresses", "INHERITED_FDS"]

#: Environment variable naming listening sockets inherited across a reload ("3,4"; with a
#: leading "inherited:" when synack did not create them, see ``WorkerSettings.own_listeners``).
INHERITED_FDS = "SYNACK_FDS"
_NOT_OURS = "inherited:"
#: systemd socket activation (sd_listen_fds(3)): the passed sockets start at descriptor 3.
_LISTEN_FDS_START = 3
#: How long the new code may take to load in the reload check.
RELOAD_CHECK_TIMEOUT = 120.0


class StartupError(Exception):
    """synack cannot start; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Listeners:
    """The listening sockets, and whether synack created them (``own_listeners``)."""

    sockets: list[socket.socket]
    owned: bool = True


def addresses(config: Config) -> list[Address]:
    """Where ``config`` says to listen: every ``--bind``, else ``--fd``, ``--uds`` or host:port."""
    if config.bind:
        return [parse_address(text) for text in config.bind]
    if config.fd is not None:
        return [Address("fd", fd=config.fd)]
    if config.uds is not None:
        return [Address("unix", path=config.uds)]
    return [Address("tcp", host=config.host, port=config.port)]


def bind(config: Config) -> Listeners:
    """The listening sockets: those a reload handed over, those systemd passed (socket
    activation, ``LISTEN_FDS``), or those ``config`` asks for."""
    inherited = os.environ.pop(INHERITED_FDS, None)
    if inherited is not None:
        owned = not inherited.startswith(_NOT_OURS)
        listed = inherited.removeprefix(_NOT_OURS)
        try:
            fds = [int(fd, 10) for fd in listed.split(",")]
        except ValueError:
            raise BindError(f"{INHERITED_FDS} must list file descriptors, got {inherited!r}") from None
        return Listeners([from_fd(fd) for fd in fds], owned)
    activated = _socket_activation()
    if activated is not None:
        _refuse_addresses_beside(config, activated)
        return Listeners(activated, owned=False)
    sockets: list[socket.socket] = []
    wanted = addresses(config)
    try:
        for address in wanted:
            sockets.append(_listen(address, config))
    except BindError:
        for sock in sockets:
            sock.close()
        raise
    return Listeners(sockets, owned=all(address.kind != "fd" for address in wanted))


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


def _listen(address: Address, config: Config) -> socket.socket:
    if address.kind == "fd":
        return from_fd(address.fd)
    if address.kind == "unix":
        mode = int(config.uds_mode, 8) if config.uds_mode else None
        return bind_unix(address.path, config.backlog, mode=mode)
    return bind_tcp(address.host, address.port, config.backlog)


def _socket_activation() -> list[socket.socket] | None:
    """The sockets systemd passed to this process (``LISTEN_PID``/``LISTEN_FDS``), if any.
    The variables are removed, so that neither the app nor a child process takes them as its own."""
    pid, count = os.environ.pop("LISTEN_PID", None), os.environ.pop("LISTEN_FDS", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid is None or count is None:
        return None
    if pid.strip() != str(os.getpid()):
        return None  # meant for another process (the variables leaked into our environment)
    try:
        number = int(count, 10)
    except ValueError:
        raise BindError(f"LISTEN_FDS must be a number of file descriptors, got {count!r}") from None
    if number < 1:
        return None
    sockets = [from_fd(fd) for fd in range(_LISTEN_FDS_START, _LISTEN_FDS_START + number)]
    for sock in sockets:
        os.set_inheritable(sock.fileno(), False)
    error_log.info("socket activation: serving %d listener(s) passed in LISTEN_FDS", number)
    return sockets


def _refuse_addresses_beside(config: Config, activated: list[socket.socket]) -> None:
    """Under socket activation the sockets systemd passed are the listeners (gunicorn serves
    them the same way). An address asked for explicitly as well (``--bind``, ``--uds``,
    ``--fd``) is an error naming both rather than silently ignored, as gunicorn does, or bound
    beside them, which would listen where the unit file does not say, or collide with the
    socket unit's own port. ``--host``/``--port`` are only the default address, which
    systemd's replace.

    Raises:
        BindError: an explicit address besides ``LISTEN_FDS``.
    """
    given = [f"--bind {address}" for address in config.bind]
    if config.uds is not None:
        given.append(f"--uds {config.uds}")
    if config.fd is not None:
        given.append(f"--fd {config.fd}")
    if given:
        for sock in activated:
            sock.close()
        named = ", ".join(given)
        raise BindError(
            f"systemd passed {len(activated)} listening socket(s) (LISTEN_FDS) and {named} names more:"
            f" under socket activation the socket unit's ListenStream= lines are the addresses; drop {named}"
            " or the socket unit")


def _trust(config: Config) -> Trust:
    try:
        return trust_from(config.forwarded_allow_ips)
    except ValueError as error:
        raise StartupError(str(error)) from None


def _worker_settings(config: Config, tls: ServerTls | None = None, owned: bool = True) -> WorkerSettings:
    trust = _trust(config)
    return WorkerSettings(
        tls=tls,
        forwarding=None if config.proxy_headers == "off" else Forwarding(trust, config.proxy_headers),
        proxy_protocol=None if config.proxy_protocol == "off" else ProxyProtocol(config.proxy_protocol, trust),
        shutdown_delay=config.shutdown_delay,
        server_header=config.server_header.encode("ascii"),
        access_log=config.access_log != "off",
        root_path=config.root_path,
        max_connections=config.max_connections,
        loop=config.loop,
        # Workers of a supervisor share the listening sockets: take turns accepting.
        accept_batch=SHARED_ACCEPT_BATCH if config.supervised else ACCEPT_BATCH,
        own_listeners=owned,
        interactive=_interactive(),
        max_requests=config.max_requests + random.randint(0, config.max_requests_jitter) if config.max_requests else 0,
    )


def _interactive() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _interface(handler: Handler) -> str:
    names = {"ASGIHandler": "ASGI", "WSGIHandler": "WSGI", "StaticFiles": "static files"}
    mounted = getattr(handler, "mounts", None) if type(handler).__name__ == "Mount" else None
    if mounted is not None:
        return f"{_interface(getattr(handler, 'app'))}, with {len(mounted)} static mount(s)"
    return names.get(type(handler).__name__, type(handler).__name__)


def _what(config: Config) -> str:
    return config.app or f"the directory {os.path.abspath('.')}"


def run(config: Config, command: Sequence[str] | None = None) -> int:
    """Serve according to ``config`` until told to stop; returns the exit code.

    Args:
        command: the ``synack`` command-line arguments ``config`` came from. With them, a
            single process reloads itself in place on SIGHUP; without them (``serve()``
            from Python) it drains and stops.

    Raises:
        StartupError: a listener could not be bound or the app could not be loaded.
    """
    try:
        setup_logging(config.log_level, config.access_log, log_format=config.log_format,
                      access_format=config.access_log_format, log_config=config.log_config,
                      access_queue=config.access_log_queue)
    except LogSetupError as error:
        raise StartupError(str(error)) from None
    tls = load_tls_context(config)  # (the master's copy only checks the files: workers load theirs)
    _trust(config)  # (a bad --forwarded-allow-ips is a one-line error before anything starts)
    if config.check:
        _load(config)
        error_log.info("%s loads", config.app or "the current directory")
        return 0
    reloader = _reloader(config, command)
    with _pid_file(config.pid):
        if config.supervised:
            return _run_supervised(config, reloader)
        _start(reloader)  # (before the import: a file saved while the app loads reloads it once more)
        handler = _load(config)
        try:
            listeners = bind(config)
        except BindError as error:
            raise StartupError(str(error)) from None
        error_log.info("synack %s serving %s (%s) in one process, %s loop", __version__, _what(config),
                       _interface(handler), loop_name(config.loop))
        return _serve(config, handler, listeners, tls, command=command)


def _reloader(config: Config, command: Sequence[str] | None) -> Reloader | None:
    """``--reload``: the file watcher (not started yet), or None without the setting."""
    if not config.reload:
        return None
    if command is None and not config.supervised:
        # SIGHUP stops a process started from Python: only the synack command re-executes itself.
        raise StartupError("--reload needs the synack command (or --workers), not serve() from Python")
    settings = WatchSettings(config.reload_dir or (config.app_dir,), config.reload_include, config.reload_exclude)
    try:
        return Reloader(settings)
    except ReloadError as error:
        raise StartupError(str(error)) from None


def _start(reloader: Reloader | None) -> None:
    """Start watching. The watcher reloads with SIGHUP: until the worker or the arbiter
    handles it, a SIGHUP is ignored rather than allowed to end the process (and the watcher
    holds its own until then, see ``Reloader``)."""
    if reloader is not None:
        if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        reloader.start()


@contextlib.contextmanager
def _pid_file(path: str | None) -> Iterator[None]:
    """Write this process's id to ``path`` while it runs, and remove the file at the end if
    it still holds our id. (A reload re-executes the same pid without coming back here.)"""
    if path is None:
        yield
        return
    try:
        with open(path, "w", encoding="ascii") as file:
            file.write(f"{os.getpid()}\n")
    except OSError as error:
        raise StartupError(f"cannot write --pid {path}: {error.strerror or error}") from None
    try:
        yield
    finally:
        try:
            with open(path, encoding="ascii") as file:
                ours = file.read().strip() == str(os.getpid())
            if ours:
                os.unlink(path)
        except OSError:
            pass


def _load(config: Config) -> Handler:
    try:
        return load_handler(config)
    except AppLoadError as error:
        raise StartupError(str(error)) from None


def _serve(config: Config, handler: Handler, listeners: Listeners, tls: ServerTls | None, *,
           link: SupervisorLink | None = None, command: Sequence[str] | None = None) -> int:
    reload = _reload_check(command) if command is not None and link is None else None
    settings = _worker_settings(config, tls, listeners.owned)
    if config.metrics is not None and link is None:  # (under a supervisor, the arbiter serves them)
        settings = dataclasses.replace(settings, metrics=_bind_metrics(config.metrics, config.backlog))
    try:
        worker = Worker(handler, listeners.sockets, config.limits, config.timeouts, settings, link=link,
                        reload=reload)
    except RuntimeError as error:
        if settings.metrics is not None:
            settings.metrics.close()
        raise StartupError(str(error)) from None
    try:
        code = worker.run()
    finally:
        if settings.metrics is not None:
            settings.metrics.close()  # (a reload in place binds it anew)
    flush_access_log(config.timeouts.graceful)
    if worker.reloading and command is not None:
        _restart_in_place(command, listeners)
    return code


def _bind_metrics(text: str, backlog: int) -> socket.socket:
    """The ``--metrics`` listener."""
    address = parse_address(text)
    try:
        return bind_tcp(address.host, address.port, backlog)
    except BindError as error:
        raise StartupError(f"--metrics: {error}") from None


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


def _restart_in_place(command: Sequence[str], listeners: Listeners) -> NoReturn:
    """Re-execute this process (same pid, same arguments), handing over the listeners."""
    fds = [sock.fileno() for sock in listeners.sockets]
    for fd in fds:
        os.set_inheritable(fd, True)
    os.environ[INHERITED_FDS] = ("" if listeners.owned else _NOT_OURS) + ",".join(map(str, fds))
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


def _run_supervised(config: Config, reloader: Reloader | None = None) -> int:
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
        listeners = bind(config)
    except BindError as error:
        raise StartupError(str(error)) from None
    error_log.info("synack %s serving %s with %d worker(s) under a supervisor, %s loop", __version__,
                   _what(config), config.workers, loop_name(config.loop))
    if _interactive():
        error_log.info("Press CTRL+C to quit")

    def worker_main(link: SupervisorLink) -> int:
        try:
            handler = load_handler(config)
            tls = load_tls_context(config)  # after fork: a reload's new workers read the files anew
        except (AppLoadError, StartupError) as error:
            error_log.error("%s", error)
            return WORKER_BOOT_ERROR
        error_log.info("worker %d: %s app loaded", os.getpid(), _interface(handler))
        return _serve(config, handler, listeners, tls, link=link)

    # (The workers serve on for --shutdown-delay before their graceful drain begins.)
    settings = ArbiterSettings(workers=config.workers,
                               graceful_timeout=config.timeouts.graceful + config.shutdown_delay,
                               own_listeners=listeners.owned, worker_timeout=config.worker_timeout,
                               max_worker_memory=config.max_worker_memory << 20,
                               shutdown_delay=config.shutdown_delay)
    metrics = _bind_metrics(config.metrics, config.backlog) if config.metrics is not None else None
    _start(reloader)  # (in the arbiter: its SIGHUP starts a new set of workers)
    try:
        return Arbiter(worker_main, settings, listeners.sockets, metrics).run()
    finally:
        if metrics is not None:
            metrics.close()
        if reloader is not None:
            reloader.stop()
        for sock in listeners.sockets:
            sock.close()
