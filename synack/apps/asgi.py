"""ASGI 3 http: the scope, and the receive/send ordering state machine over an Exchange."""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from ..server.exchange import BodyError, ClientDisconnected, Exchange

__all__ = ["ASGIHandler", "build_scope"]

error_log = logging.getLogger("synack.error")

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_METHODS: dict[bytes, str] = {}


def _split_target(target: bytes) -> tuple[bytes, bytes]:
    if target[:1] != b"/":
        if target == b"*":
            return b"*", b""
        parts = urlsplit(target)
        path = parts.path or b"/"
        return path, parts.query
    path, _, query = target.partition(b"?")
    return path, query


def build_scope(exchange: Exchange, state: dict[str, Any] | None) -> dict[str, Any]:
    """The ``http`` connection scope for ``exchange`` (ASGI spec, HTTP connection scope)."""
    head = exchange.head
    method = _METHODS.get(head.method)
    if method is None:
        method = head.method.decode("ascii")
        if len(_METHODS) < 64:
            _METHODS[head.method] = method
    raw_path, query = _split_target(head.target)
    path = raw_path.decode("ascii")
    if "%" in path:
        path = unquote(path, encoding="utf-8", errors="surrogateescape")
    root_path = exchange.root_path
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": "1.1" if head.http_version == b"1.1" else "1.0",
        "server": exchange.server,
        "client": exchange.client,
        "scheme": exchange.scheme,
        "method": method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": head.headers.items,
        "extensions": {"http.response.pathsend": {}, "http.response.trailers": {}, "http.response.early_hint": {}},
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


_START, _BODY, _TRAILERS, _DONE = range(4)


class ASGIProtocolError(RuntimeError):
    """The application sent an ASGI message that is not allowed now."""


class _Cycle:
    """One request's receive/send pair, enforcing the ASGI message order."""

    __slots__ = ("exchange", "state", "request_sent", "trailers", "__weakref__")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.state = _START
        self.request_sent = False
        self.trailers = False

    async def receive(self) -> dict[str, Any]:
        exchange = self.exchange
        if exchange.disconnected or self.state == _DONE:
            return {"type": "http.disconnect"}
        if exchange.more_body:
            try:
                data = await exchange.receive()
            except (ClientDisconnected, BodyError):
                return {"type": "http.disconnect"}
            self.request_sent = True
            return {"type": "http.request", "body": data, "more_body": exchange.more_body}
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await exchange.wait_disconnected()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        state = self.state
        exchange = self.exchange
        if state == _BODY and kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if not more:
                if self.trailers:
                    self.state = _TRAILERS
                    await exchange.send_body(body, more=True)
                    return
                self.state = _DONE
            await exchange.send_body(body, more)
            return
        if state == _START:
            if kind == "http.response.start":
                await self._start(message)
                return
            if kind == "http.response.early_hint":
                await exchange.send_informational(103, _headers(message.get("links", ()), link=True))
                return
            raise ASGIProtocolError(f"expected 'http.response.start', got {kind!r}")
        if state == _BODY:
            if kind == "http.response.pathsend":
                await self._pathsend(message)
                return
            raise ASGIProtocolError(f"expected 'http.response.body', got {kind!r}")
        if state == _TRAILERS:
            if kind != "http.response.trailers":
                raise ASGIProtocolError(f"expected 'http.response.trailers', got {kind!r}")
            if not message.get("more_trailers", False):
                self.state = _DONE
                headers = _headers(message.get("headers", ()))
                await exchange.end(headers if exchange.trailers_allowed else ())
            return
        raise ASGIProtocolError(f"unexpected ASGI message {kind!r} after the response completed")

    async def _start(self, message: dict[str, Any]) -> None:
        status = message.get("status")
        if type(status) is not int:
            raise ASGIProtocolError(f"http.response.start 'status' must be an int, got {status!r}")
        headers = _headers(message.get("headers", ()))
        self.trailers = bool(message.get("trailers", False))
        self.state = _BODY
        await self.exchange.send_head(status, headers)

    async def _pathsend(self, message: dict[str, Any]) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ASGIProtocolError("http.response.pathsend 'path' must be an absolute path")
        self.state = _DONE
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            await self.exchange.send_file(file, 0, size)


def _headers(raw: Any, link: bool = False) -> list[tuple[bytes, bytes]]:
    if link:
        return [(b"link", value if isinstance(value, bytes) else str(value).encode("latin-1")) for value in raw]
    try:
        return [(bytes(name).lower(), bytes(value)) for name, value in raw]
    except (TypeError, ValueError):
        raise ASGIProtocolError("headers must be an iterable of [name, value] byte pairs") from None


class ASGIHandler:
    """Runs an ASGI 3 application for each exchange (plus its lifespan, when supported)."""

    def __init__(self, app: ASGIApp, lifespan: str = "auto", lifespan_timeout: float = 60.0) -> None:
        self.app = app
        self.lifespan_mode = lifespan
        self.lifespan_timeout = lifespan_timeout
        self.state: dict[str, Any] | None = None
        self._lifespan: Any = None

    async def __call__(self, exchange: Exchange) -> None:
        cycle = _Cycle(exchange)
        scope = build_scope(exchange, self.state)
        await self.app(scope, cycle.receive, cycle.send)

    async def startup(self) -> None:
        if self.lifespan_mode == "off":
            return
        from .lifespan import Lifespan

        self._lifespan = Lifespan(self.app, self.lifespan_mode == "on", self.lifespan_timeout)
        await self._lifespan.startup()
        if self._lifespan.supported:
            self.state = self._lifespan.state

    async def shutdown(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.shutdown()

