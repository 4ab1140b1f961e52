"""Loader: "module:attr" or a directory → Handler, telling ASGI from WSGI; errors say what to fix."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from ..server.exchange import Handler

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["AppLoadError", "load_handler", "import_from_string", "detect_interface"]


class AppLoadError(Exception):
    """The application could not be loaded; the message says what failed."""


def load_handler(config: Config) -> Handler:
    """The Handler for ``config.app``: static files for a directory (or nothing), else the app."""
    spec = config.app
    if spec is None or os.path.isdir(spec) or ":" not in spec:
        from .static import StaticFiles, StaticSettings

        root = spec or "."
        if not os.path.isdir(root):
            raise AppLoadError(
                f"{root!r} is neither a directory nor module:attribute (e.g. myapp:app)"
            )
        return StaticFiles(
            root,
            StaticSettings(
                listing=config.listing,
                dotfiles=config.dotfiles,
                index=config.index,
                cache_control=config.cache_control,
            ),
        )
    if config.app_dir:
        directory = os.path.abspath(config.app_dir)
        if not os.path.isdir(directory):
            raise AppLoadError(f"--app-dir {config.app_dir!r} is not a directory")
        if directory not in sys.path:
            sys.path.insert(0, directory)
    app = import_from_string(spec)
    if config.factory:
        if not callable(app):
            raise AppLoadError(f"--factory: {spec} is not callable")
        try:
            app = app()
        except Exception as error:
            raise AppLoadError(f"--factory: calling {spec} failed: {error!r}") from None
    interface = config.interface if config.interface != "auto" else detect_interface(app)
    if interface == "asgi2":
        app = _asgi2_to_3(app)
        interface = "asgi"
    if interface == "asgi":
        from .asgi import ASGIHandler

        return ASGIHandler(app, config.lifespan, config.lifespan_timeout)
    if interface == "wsgi":
        from .wsgi import WSGIHandler

        return WSGIHandler(app, config.threads)
    raise AppLoadError(f"{spec} is not an application: {interface}")


def _asgi2_to_3(app: Any) -> Any:
    async def asgi3(scope: Any, receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


def import_from_string(spec: str) -> Any:
    """Import ``module:attr.path``; raise AppLoadError naming what is missing."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppLoadError(f"app must look like module:attribute, got {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise AppLoadError(f"could not import module {module_name!r}: no module named {error.name!r}") from None
        raise AppLoadError(_user_error(module_name, error)) from None
    except Exception as error:
        raise AppLoadError(_user_error(module_name, error)) from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return value


def _user_error(module_name: str, error: BaseException) -> str:
    # An error raised inside the user's module: show its traceback, it is theirs to fix.
    text = "".join(traceback.format_exception(error)).rstrip()
    return f"error while importing {module_name!r}:\n{text}"


def detect_interface(app: Any) -> str:
    """"asgi" for ``async def (scope, receive, send)`` callables (functions or instances),
    "asgi2" for ``app(scope)`` returning ``async (receive, send)``, "wsgi" for
    ``app(environ, start_response)``.

    Raises:
        AppLoadError: the object is not callable or takes another number of arguments.
    """
    if not callable(app):
        raise AppLoadError(f"{app!r} is not callable, so it is neither an ASGI nor a WSGI app")
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return "wsgi"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters) or len(positional) == 2:
        return "wsgi"
    if len(positional) == 1:
        return "asgi2"
    if len(positional) == 3:
        return "asgi"
    raise AppLoadError(
        f"{app!r} takes {len(positional)} arguments: expected ASGI (scope, receive, send) or"
        " WSGI (environ, start_response)"
    )
