"""Loader: "module:attr" or a directory → Handler, telling ASGI from WSGI; errors say what to fix.

Failures raise ``AppLoadError`` with a one-line message (the CLI prints it and exits 1). When
the error was raised by the user's own code while importing (or by a ``--factory`` call), its
traceback, trimmed to the user's frames, goes to the error log first: it is theirs to fix.
A module or attribute that simply does not exist gets no traceback.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from types import TracebackType
from typing import Any, Protocol

from ..logs import error_log
from ..server.exchange import Handler

__all__ = ["AppLoadError", "AppSettings", "load_handler", "import_from_string", "detect_interface"]


_SYNACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_IMPORTLIB_DIR = os.path.dirname(importlib.__file__)


class AppLoadError(Exception):
    """The application could not be loaded; the message says what failed."""


class _LifespanTimeout(Protocol):
    @property
    def lifespan(self) -> float: ...


class AppSettings(Protocol):
    """The settings the loader reads (``synack.Config`` provides them)."""

    @property
    def app(self) -> str | None: ...
    @property
    def factory(self) -> bool: ...
    @property
    def app_dir(self) -> str: ...
    @property
    def interface(self) -> str: ...
    @property
    def request_id_for_apps(self) -> bool: ...
    @property
    def mounts(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def lifespan(self) -> str: ...
    @property
    def timeouts(self) -> _LifespanTimeout: ...
    @property
    def threads(self) -> int: ...
    @property
    def listing(self) -> bool: ...
    @property
    def dotfiles(self) -> bool: ...
    @property
    def index(self) -> str: ...
    @property
    def cache_control(self) -> str: ...
    @property
    def ws(self) -> str: ...
    @property
    def ws_max_size(self) -> int: ...
    @property
    def ws_ping_interval(self) -> float: ...
    @property
    def ws_ping_timeout(self) -> float: ...
    @property
    def ws_close_timeout(self) -> float: ...
    @property
    def ws_per_message_deflate(self) -> bool: ...


def load_handler(config: AppSettings) -> Handler:
    """The Handler for ``config.app``: static files for a directory (or nothing), else the app.

    Raises:
        AppLoadError: the module, attribute or directory is missing, importing failed, or the
            object is not an ASGI or WSGI application.
    """
    handler = _handler(config)
    if not config.mounts:
        return handler
    from .mount import Mount, static_files

    settings = _static_settings(config)
    try:
        mounts = [(prefix, static_files(directory, settings)) for prefix, directory in config.mounts]
    except ValueError as error:
        raise AppLoadError(str(error)) from None
    return Mount(handler, mounts)


def _handler(config: AppSettings) -> Handler:
    spec = config.app
    if spec is None or os.path.isdir(spec) or ":" not in spec:
        return _static_handler(spec, config)
    _add_app_dir(config.app_dir)
    app = import_from_string(spec)
    if config.factory:
        app = _call_factory(spec, app)
    interface = config.interface
    if interface == "auto":
        interface = detect_interface(app)
    elif interface == "asgi":
        interface = "asgi2" if _is_asgi2(app) else "asgi"
    if interface == "asgi2":
        app = _asgi2_to_3(app)
        interface = "asgi"
    if interface == "asgi":
        from .asgi import ASGIHandler
        from .websocket import WebSocketSettings

        websocket = WebSocketSettings(
            mode=config.ws, max_size=config.ws_max_size, ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout, close_timeout=config.ws_close_timeout,
            per_message_deflate=config.ws_per_message_deflate,
        )
        return ASGIHandler(app, config.lifespan, config.timeouts.lifespan, websocket, config.request_id_for_apps)
    from .wsgi import WSGIHandler

    return WSGIHandler(app, config.threads, config.request_id_for_apps)


def _static_handler(spec: str | None, config: AppSettings) -> Handler:
    from .static import StaticFiles

    root = spec or "."
    if not os.path.isdir(root):
        raise AppLoadError(f"{root!r} is neither a directory nor module:attribute (e.g. myapp:app)")
    return StaticFiles(root, _static_settings(config))


def _static_settings(config: AppSettings) -> Any:
    from .static import StaticSettings

    return StaticSettings(listing=config.listing, dotfiles=config.dotfiles, index=config.index,
                          cache_control=config.cache_control)


def _add_app_dir(app_dir: str) -> None:
    directory = os.path.abspath(app_dir or ".")
    if not os.path.isdir(directory):
        raise AppLoadError(f"--app-dir {app_dir!r} is not a directory")
    if directory not in sys.path:
        sys.path.insert(0, directory)


def _call_factory(spec: str, factory: Any) -> Any:
    if not callable(factory):
        raise AppLoadError(f"--factory: {spec} is not callable (it is {type(factory).__name__})")
    try:
        return factory()
    except Exception as error:
        _log_user_traceback(f"calling the factory {spec}", error)
        raise AppLoadError(f"--factory: calling {spec}() failed: {_one_line(error)}") from None


def _asgi2_to_3(app: Any) -> Any:
    """Wrap an ASGI 2 double callable, ``app(scope)`` → ``async (receive, send)``."""

    async def asgi3(scope: Any, receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


def import_from_string(spec: str) -> Any:
    """Import ``module:attr.path``.

    Raises:
        AppLoadError: one line naming what is missing, or what the import raised.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppLoadError(f"app must look like module:attribute, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise AppLoadError(f"could not import module {module_name!r}: no module named {error.name!r}"
                               " (check the name, --app-dir and the current directory)") from None
        _log_user_traceback(f"importing {module_name!r}", error)
        raise AppLoadError(f"error while importing {module_name!r}: {_one_line(error)}") from None
    except Exception as error:
        _log_user_traceback(f"importing {module_name!r}", error)
        raise AppLoadError(f"error while importing {module_name!r}: {_one_line(error)}") from None
    value: Any = module
    path = []
    for part in attribute.split("."):
        path.append(part)
        try:
            value = getattr(value, part)
        except AttributeError:
            found = f" ({'.'.join(path[:-1])!r} has no {part!r})" if len(path) > 1 else ""
            raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}{found}") from None
    return value


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _log_user_traceback(what: str, error: BaseException) -> None:
    tb = _user_frames(error.__traceback__)
    lines = traceback.format_exception(type(error), error, tb)
    error_log.error("error while %s:\n%s", what, "".join(lines).rstrip())


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    # Skip the frames of importlib and synack itself: the first frame left is the user's.
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(("<frozen importlib", _IMPORTLIB_DIR + os.sep, _SYNACK_DIR + os.sep)):
            return tb
        tb = tb.tb_next
    return None


def _is_asgi2(app: Any) -> bool:
    try:
        return detect_interface(app) == "asgi2"
    except AppLoadError:
        return False


def detect_interface(app: Any) -> str:
    """"asgi" for ``async def (scope, receive, send)`` callables (functions or instances),
    "asgi2" for ``app(scope)`` returning ``async (receive, send)``, "wsgi" for
    ``app(environ, start_response)``.

    Raises:
        AppLoadError: the object is not callable or takes another number of arguments.
    """
    name = getattr(app, "__qualname__", None) or repr(app)
    if not callable(app):
        raise AppLoadError(f"{name} is not callable, so it is neither an ASGI nor a WSGI app")
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)
    if not inspect.isclass(app) and call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        parameters = list(inspect.signature(app).parameters.values())
    except (TypeError, ValueError):
        return "wsgi"  # a builtin or C callable: WSGI is the older, likelier interface
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if len(positional) == 3:
        return "asgi"
    if len(positional) == 2 or (len(positional) < 2 and any(p.kind is p.VAR_POSITIONAL for p in parameters)):
        return "wsgi"
    if len(positional) == 1:
        return "asgi2"
    raise AppLoadError(
        f"{name} takes {len(positional)} required arguments: expected ASGI (scope, receive, send)"
        " or WSGI (environ, start_response); if it is a factory, add --factory"
    )
