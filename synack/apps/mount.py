"""``--mount PREFIX=DIR``: static directories served at URL prefixes in front of the app.

``Mount`` is a Handler that sends a request whose path is ``PREFIX`` or starts with
``PREFIX/`` to that directory's ``StaticFiles`` (the whole engine: ranges, validators,
precompressed siblings, sendfile, the ``respond_now`` fast path), as if the prefix were its
``root_path``; every other request goes to the app unchanged. The longest prefix wins.
The prefix is matched against the path as received (still percent-encoded); the static engine
then applies its own path rules (no ``..``, no dotfiles) to the rest.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from ..server.exchange import Exchange, Handler, Settle
from .static import StaticFiles

__all__ = ["Mount", "static_files"]


class Mount:
    """The app, with static directories in front of it at URL prefixes."""

    def __init__(self, app: Handler, mounts: Sequence[tuple[str, StaticFiles]]) -> None:
        self.app = app
        #: (prefix as bytes, its files), longest prefix first.
        self.mounts = sorted(((prefix.encode("ascii"), files) for prefix, files in mounts),
                             key=lambda item: -len(item[0]))
        self._app_respond_now: Any = getattr(app, "respond_now", None)
        self._app_begin: Callable[[Exchange, Settle], None] | None = getattr(app, "begin", None)
        #: ``Handler.begin`` when the app has one (a WSGI app): its requests then start
        #: without a task, as without the mount; the mounted files' go on as a task (``settle``
        #: with their coroutine). None otherwise, so the driver makes the task itself.
        self.begin: Callable[[Exchange, Settle], None] | None = None if self._app_begin is None else self._begin

    def _route(self, exchange: Exchange) -> StaticFiles | None:
        """The files for ``exchange``'s path, the exchange rewritten for them; or None."""
        head = exchange.head
        path = head.path
        for prefix, files in self.mounts:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == 0x2F):
                rest = path[len(prefix):]  # (b"" for the prefix itself: redirected to PREFIX/)
                exchange.head = dataclasses.replace(head, path=rest)
                exchange.root_path = exchange.root_path.rstrip("/") + prefix.decode("ascii")
                return files
        return None

    def respond_now(self, exchange: Exchange) -> bool:
        head, root_path = exchange.head, exchange.root_path
        files = self._route(exchange)
        if files is not None:
            if not exchange.head.path:
                exchange.head, exchange.root_path = head, root_path
                return False
            if files.respond_now(exchange):
                return True
            exchange.head, exchange.root_path = head, root_path  # routed again by __call__
            return False
        respond_now = self._app_respond_now
        return respond_now is not None and bool(respond_now(exchange))

    def _begin(self, exchange: Exchange, settle: Settle) -> None:
        files = self._route(exchange)
        if files is None:
            assert self._app_begin is not None  # (``begin`` is only set when it is)
            self._app_begin(exchange, settle)
        elif not exchange.head.path:
            settle(exchange, _redirect_to_slash(exchange))
        else:
            settle(exchange, files(exchange))

    async def __call__(self, exchange: Exchange) -> None:
        files = self._route(exchange)
        if files is None:
            await self.app(exchange)
        elif not exchange.head.path:
            await _redirect_to_slash(exchange)
        else:
            await files(exchange)

    async def startup(self) -> None:
        startup = getattr(self.app, "startup", None)
        if startup is not None:
            await startup()

    async def shutdown(self) -> None:
        shutdown = getattr(self.app, "shutdown", None)
        if shutdown is not None:
            await shutdown()
        for _, files in self.mounts:
            await files.shutdown()


async def _redirect_to_slash(exchange: Exchange) -> None:
    """``/static`` → ``/static/`` (RFC 9110 §15.4.2), so the directory's relative links resolve."""
    location = quote(exchange.root_path, safe="/%!$&'()*+,;=:@-._~").encode("ascii") + b"/"
    if exchange.head.query:
        location += b"?" + exchange.head.query
    body = b"Moved to " + location + b"\n"
    await exchange.send_head(301, [(b"location", location), (b"content-type", b"text/plain; charset=utf-8"),
                                   (b"content-length", b"%d" % len(body))])
    await exchange.send_body(body)


def static_files(directory: str, settings: Any) -> StaticFiles:
    """The engine for one mounted directory (``settings``: a ``StaticSettings``).

    Raises:
        ValueError: ``directory`` is not a directory.
    """
    if not os.path.isdir(directory):
        raise ValueError(f"--mount: {directory!r} is not a directory")
    return StaticFiles(directory, settings)
