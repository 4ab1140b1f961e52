"""ASGI 3 http: the scope, and the receive/send ordering state machine over an Exchange.

Theory of operation: one ``_Cycle`` per request owns the ``receive``/``send`` pair the app gets.
``send`` walks a small state table (START → BODY → [TRAILERS] → DONE); a message that is not
allowed in the current state raises ``ASGIProtocolError`` inside the app, which the driver turns
into a 500 (before the head went out) or an aborted connection (after). ``receive`` hands out
the request body as it arrives (never buffered here), then parks until the client goes away or
the response is complete, and answers ``http.disconnect``.

Extensions offered in ``scope["extensions"]``: ``http.response.pathsend`` and
``http.response.zerocopysend`` (both go out with sendfile where the transport allows),
``http.response.trailers`` (chunked trailer fields on HTTP/1.1) and
``http.response.early_hint`` (103 Early Hints, never to HTTP/1.0 clients), and ``tls`` on a
TLS connection (the certificates, version and cipher suite the handshake settled).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import quote, unquote_to_bytes

from ..compiled import mypyc_attr
from ..logs import error_log
from ..server.exchange import BodyError, ClientDisconnected, Exchange, TlsInfo, entry_point

__all__ = ["ASGIHandler", "ASGIProtocolError", "build_scope"]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: ASGI 3 with HTTP spec 2.4: ``send`` raises an OSError subclass (``ClientDisconnected``)
#: once the client is gone, so frameworks need not poll ``receive`` for disconnects.
ASGI_VERSION: Final = "3.0"
HTTP_SPEC_VERSION: Final = "2.4"

_METHODS: Final[dict[bytes, str]] = {}
#: Single bytes are looked for as ints: ``b"%" in data`` first tries to read b"%" as an int,
#: and building (then clearing) that TypeError costs several times the search.
_PERCENT: Final = ord("%")
#: Copied (shallowly) into each scope; the per-extension dicts are empty and never written.
_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.pathsend": {},
    "http.response.zerocopysend": {},
    "http.response.trailers": {},
    "http.response.early_hint": {},
}
_METHOD_CACHE_SIZE = 64
#: Copied for each scope, then the request's own values are stored: copying a dict is a
#: fraction of the cost of building one entry by entry (3.11: ~1.1k instructions less a
#: request). The keys in the order of the ASGI spec; the values the common ones or None.
_SCOPE: Final[dict[str, Any]] = {
    "type": "http",
    "asgi": None,
    "http_version": "1.1",
    "method": None,
    "scheme": "http",
    "path": None,
    "raw_path": None,
    "query_string": None,
    "root_path": "",
    "headers": None,
    "client": None,
    "server": None,
    "extensions": None,
}
_ASGI: Final[dict[str, str]] = {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION}


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of RuntimeError
class ASGIProtocolError(RuntimeError):
    """The application sent an ASGI message that is malformed or not allowed now."""


# ---------------------------------------------------------------------- scope


def _decode_path(raw_path: bytes) -> str:
    # ASGI: "percent escapes decoded and UTF-8 byte sequences decoded into characters".
    # Invalid UTF-8 becomes U+FFFD (as uvicorn); the exact bytes stay in raw_path.
    if _PERCENT in raw_path:
        raw_path = unquote_to_bytes(raw_path)
    return raw_path.decode("utf-8", "replace")


def _method(raw: bytes) -> str:
    method = _METHODS.get(raw)
    if method is None:
        method = raw.decode("ascii")
        if len(_METHODS) < _METHOD_CACHE_SIZE:
            _METHODS[raw] = method
    return method


def build_scope(exchange: Exchange, state: dict[str, Any] | None, request_id: bool = False) -> dict[str, Any]:
    """The ``http`` connection scope for ``exchange`` (ASGI HTTP connection scope).

    ``root_path`` is the prefix a proxy stripped before forwarding (uvicorn's ``--root-path``):
    ``path`` and ``raw_path`` are the full paths, i.e. the prefix plus the request's path.
    ``state`` (the lifespan state) is shallow-copied so one request cannot leak into the next;
    with ``request_id`` (``--request-id``) the copy (or a new dict) holds the request's id.
    """
    head = exchange.head
    # Path and query as the core split them (absolute-form included, RFC 9112 §3.2.2); the
    # Host field in ``head.fields`` is already the effective host.
    raw_path = head.path
    if _PERCENT not in raw_path:
        # No escapes (the common case): no decoding to do.
        try:
            path = raw_path.decode()  # (no arguments: the fast call)
        except UnicodeDecodeError:  # not from our parser, which admits only visible ASCII
            path = raw_path.decode("utf-8", "replace")
    else:
        path = _decode_path(raw_path)
    scope = _SCOPE.copy()  # type, HTTP/1.1, http, no root path: the rest is stored below
    scope["asgi"] = _ASGI.copy()
    if head.http_version != b"1.1":
        scope["http_version"] = "1.0"
    scope["method"] = _METHODS.get(head.method) or _method(head.method)
    root_path = exchange.root_path
    if root_path:
        path = root_path + path
        raw_path = quote(root_path).encode("ascii") + raw_path
        scope["root_path"] = root_path
    scope["path"] = path
    scope["raw_path"] = raw_path
    scope["query_string"] = head.query
    scope["headers"] = head.fields  # the parsed list itself: it was built for this request alone
    scope["client"] = exchange.client
    scope["server"] = exchange.server
    scope["extensions"] = _EXTENSIONS.copy()
    if request_id:
        # The request's X-Request-ID (a trusted peer's, else a new one) in the state's copy.
        request_state = state.copy() if state is not None else {}
        request_state["request_id"] = exchange.request_id
        scope["state"] = request_state
    elif state is not None:
        scope["state"] = state.copy()
    scheme = exchange.scheme
    if scheme != "http":  # (plain http, the common case, skips the property call)
        scope["scheme"] = scheme
        tls = exchange.tls
        if tls is not None:  # (https may also come from a trusted proxy, without TLS here)
            scope["extensions"]["tls"] = _tls_extension(tls)
    return scope


def _tls_extension(tls: TlsInfo) -> dict[str, Any]:
    """The ASGI ``tls`` extension (ASGI TLS extension spec, version 0.2)."""
    return {
        "server_cert": tls.server_cert,
        "client_cert_chain": list(tls.client_cert_chain),
        "client_cert_name": tls.client_cert_name,
        "client_cert_error": tls.client_cert_error,
        "tls_version": tls.tls_version,
        "cipher_suite": tls.cipher_suite,
    }


# ---------------------------------------------------------------------- one request

#: States of the response side, in order. Each ``send`` either moves forward or raises.
_START: Final = 0
_BODY: Final = 1
_TRAILERS: Final = 2
_DONE: Final = 3
_STATE_NAMES = ("START", "BODY", "TRAILERS", "DONE")

#: Message types allowed in each state (for error messages; dispatch is in ``_Cycle.send``).
_EXPECTED = {
    _START: "'http.response.start' (or 'http.response.early_hint')",
    _BODY: "'http.response.body', 'http.response.pathsend' or 'http.response.zerocopysend'",
    _TRAILERS: "'http.response.trailers'",
}

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


class _Cycle:
    """One request's receive/send pair, enforcing the ASGI message order."""

    __slots__ = ("exchange", "state", "request_sent", "trailers", "pending_trailers", "streaming", "status",
                 "headers", "_finished")

    #: Set only when the app announces trailers (``trailers`` says whether it did).
    pending_trailers: list[tuple[bytes, bytes]]
    #: The status and header fields of ``http.response.start``: given to the exchange with the
    #: whole body (``Exchange.respond``), or when the body starts streaming. (Declared here,
    #: not in ``__init__``, where a bare annotation still costs an instruction per request.)
    status: int
    headers: Any

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.state = _START
        #: Whether the app has been given the (last) ``http.request`` message.
        self.request_sent = False
        #: The app announced trailers in ``http.response.start`` (``pending_trailers`` is
        #: only set then).
        self.trailers = False
        #: Part of the body has gone out (so the one-write path no longer applies).
        self.streaming = False
        #: Resolved when the response is complete (wakes a parked ``receive``).
        self._finished: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ receive

    async def receive(self) -> dict[str, Any]:
        exchange = self.exchange
        if self.state == _DONE or exchange.disconnected:
            return dict(_DISCONNECT)
        if exchange.more_body:
            data = exchange.receive_nowait()  # no coroutine when the body is already here
            if data is None:
                try:
                    data = await exchange.receive()
                except (ClientDisconnected, BodyError):
                    # BodyError: the driver has already answered (400/408/413) and is closing.
                    return dict(_DISCONNECT)
            more = exchange.more_body
            self.request_sent = not more
            return {"type": "http.request", "body": data, "more_body": more}
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._wait_for_disconnect()
        return dict(_DISCONNECT)

    async def _wait_for_disconnect(self) -> None:
        """Park until the client goes away or the response completes."""
        if self._finished is None:
            self._finished = asyncio.get_running_loop().create_future()
        closed = asyncio.ensure_future(self.exchange.wait_disconnected())
        try:
            await asyncio.wait((closed, self._finished), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()

    def _complete(self) -> None:
        self.state = _DONE
        finished = self._finished
        if finished is not None and not finished.done():
            finished.set_result(None)

    # ------------------------------------------------------------------ send

    async def send(self, message: Message) -> None:
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise ASGIProtocolError(f"ASGI message must be a dict with a 'type', got {message!r}") from None
        exchange = self.exchange
        state = self.state
        if state == _BODY and kind == "http.response.body":
            body = message.get("body", b"")
            if (
                type(body) is bytes
                and not self.trailers
                and not self.streaming
                and not message.get("more_body", False)
            ):
                # The common case, done without further coroutines: head and whole body in
                # one call and one write.
                self.state = _DONE
                if self._finished is not None:
                    self._complete()
                exchange.respond(self.status, self.headers, body)
                return
            await self._body(message)
        elif state == _START and kind == "http.response.start":
            # (Inline: every response passes here.) Nothing is written yet, so a client that
            # is gone is reported by the first body message, as the spec allows.
            status = message.get("status")
            if type(status) is not int or not 200 <= status <= 999:
                raise ASGIProtocolError(
                    f"http.response.start 'status' must be an int from 200 to 999, got {status!r}"
                )
            headers = message.get("headers", ())
            if type(headers) is list:
                # (``_headers`` inline for the usual shape, a list of byte-string pairs, which
                # is handed on as it is: the core validates every name and value.)
                try:
                    for name, value in headers:
                        if type(name) is not bytes or type(value) is not bytes:
                            headers = _headers(headers)
                            break
                except (TypeError, ValueError):  # not pairs: the careful path says what is wrong
                    headers = _headers(headers)
            else:
                headers = _headers(headers)
            self.headers = headers
            self.status = status
            if message.get("trailers", False):
                self.trailers = True
                self.pending_trailers = []
                exchange.after_handler = self.finish
            self.state = _BODY
        elif state == _START and kind == "http.response.early_hint":
            if exchange.disconnected:
                raise ClientDisconnected("client disconnected")
            await exchange.send_informational(103, _links(message.get("links", ())))
        elif state == _BODY and kind == "http.response.pathsend":
            await self._pathsend(message)
        elif state == _BODY and kind == "http.response.zerocopysend":
            await self._zerocopysend(message)
        elif state == _TRAILERS and kind == "http.response.trailers":
            await self._trailers(message)
        elif state == _DONE:
            if exchange.disconnected:
                raise ClientDisconnected("client disconnected")
            raise ASGIProtocolError(f"unexpected ASGI message {kind!r} after the response completed")
        else:
            raise ASGIProtocolError(
                f"unexpected ASGI message {kind!r} in state {_STATE_NAMES[state]}:"
                f" expected {_EXPECTED[state]}"
            )

    def _stream(self) -> None:
        """The body goes out in more than one piece: the head goes first (held by the
        exchange until the first body bytes)."""
        if not self.streaming:
            self.streaming = True
            self.exchange.start_response(self.status, self.headers)

    async def _body(self, message: Message) -> None:
        body = message.get("body", b"")
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise ASGIProtocolError(f"http.response.body 'body' must be bytes, got {type(body).__name__}")
            body = bytes(body)
        self._stream()
        more = bool(message.get("more_body", False))
        if more:
            await self.exchange.send_body(body, more=True)
        elif self.trailers:
            self.state = _TRAILERS
            await self.exchange.send_body(body, more=True)
        else:
            self._complete()
            await self.exchange.send_body(body, more=False)

    async def _pathsend(self, message: Message) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ASGIProtocolError(f"http.response.pathsend 'path' must be an absolute path, got {path!r}")
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            await self._send_file(file, 0, size, more=False)

    async def _zerocopysend(self, message: Message) -> None:
        file: Any = message.get("file")
        if isinstance(file, int):
            file = os.fdopen(file, "rb", closefd=False)
        if not hasattr(file, "fileno"):
            raise ASGIProtocolError("http.response.zerocopysend 'file' must be a file object with fileno()")
        offset = message.get("offset")
        count = message.get("count")
        more = bool(message.get("more_body", False))
        for name, value in (("offset", offset), ("count", count)):
            if value is not None and (type(value) is not int or value < 0):
                raise ASGIProtocolError(f"http.response.zerocopysend {name!r} must be an int >= 0, got {value!r}")
        descriptor = file.fileno()
        advance = offset is None  # like sendfile(2) with no offset: read from, and move, the file position
        if offset is None:
            offset = os.lseek(descriptor, 0, os.SEEK_CUR)
        if count is None:
            count = max(0, os.fstat(descriptor).st_size - offset)
        await self._send_file(file, offset, count, more)
        if advance:
            os.lseek(descriptor, offset + count, os.SEEK_SET)

    async def _send_file(self, file: Any, offset: int, count: int, more: bool) -> None:
        self._stream()
        if not more:
            if self.trailers:
                self.state = _TRAILERS
                more = True
            else:
                self._complete()
        await self.exchange.send_file(file, offset, count, more=more)

    async def _trailers(self, message: Message) -> None:
        self.pending_trailers += _headers(message.get("headers", ()))
        if message.get("more_trailers", False):
            return
        self._complete()
        exchange = self.exchange
        # Trailers need chunked coding (RFC 9112 §7.1.2); with a Content-Length or for an
        # HTTP/1.0 client they are dropped, which the extension allows.
        await exchange.end(self.pending_trailers if exchange.trailers_allowed else ())

    async def finish(self) -> None:
        """After the app returned: end a response that only lacks its announced trailers
        (the exchange's ``after_handler`` once trailers are announced)."""
        if self.state == _TRAILERS and not self.exchange.disconnected:
            error_log.warning("application announced trailers but returned without sending them")
            self._complete()
            await self.exchange.end()


def _headers(raw: Any) -> Any:
    if type(raw) is list:
        # Already a list of byte-string pairs (the usual shape): hand it on as it is; the core
        # validates every name and value as it serialises them.
        try:
            for name, value in raw:
                if type(name) is not bytes or type(value) is not bytes:
                    break
            else:
                return raw
        except (TypeError, ValueError):  # not pairs: the careful path below says what is wrong
            pass
    headers = []
    try:
        for name, value in raw:
            if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
                raise TypeError
            headers.append((bytes(name).lower(), bytes(value)))
    except (TypeError, ValueError):
        raise ASGIProtocolError(f"headers must be an iterable of [name, value] byte-string pairs, got {raw!r}") from None
    return headers


def _links(raw: Any) -> list[tuple[bytes, bytes]]:
    try:
        return [(b"link", bytes(link) if isinstance(link, (bytes, bytearray)) else link.encode("latin-1"))
                for link in raw]
    except (AttributeError, TypeError, UnicodeEncodeError):
        raise ASGIProtocolError(f"http.response.early_hint 'links' must be a list of byte strings, got {raw!r}") from None


# ---------------------------------------------------------------------- handler


class ASGIHandler:
    """Runs an ASGI 3 application for each exchange (plus its lifespan, when supported).

    Args:
        app: the ASGI 3 callable.
        lifespan: "auto" (use lifespan if the app supports it), "on" (require it) or "off".
        lifespan_timeout: seconds startup and shutdown may each take.
    """

    def __init__(self, app: ASGIApp, lifespan: str = "auto", lifespan_timeout: float = 60.0,
                 websocket: Any = None, request_id: bool = False) -> None:
        self.app = app
        #: What is called for each request: the app, or its bound ``__call__`` (an app object
        #: such as Starlette's or FastAPI's, called without the type's call slot).
        self._call_app: ASGIApp = entry_point(app)
        #: Put each request's X-Request-ID in its scope's state.
        self.request_id = request_id
        self.lifespan_mode = lifespan
        self.lifespan_timeout = lifespan_timeout
        #: ``websocket.WebSocketSettings`` (None: the defaults).
        self.websocket = websocket
        #: The lifespan state, copied into every request scope (None without lifespan).
        self.state: dict[str, Any] | None = None
        self._lifespan: Any = None

    def __call__(self, exchange: Exchange) -> Awaitable[None]:
        # The app's own coroutine is what the driver awaits (no wrapper coroutine per
        # request); a response still owing its announced trailers is ended by
        # ``_Cycle.finish``, which ``send`` registers as the exchange's ``after_handler``.
        if exchange.head.upgrade is not None:
            upgraded = self._upgrade(exchange)
            if upgraded is not None:
                return upgraded
        cycle = _Cycle(exchange)
        call = self._call_app  # (an attribute, then the call: LOAD_METHOD cannot specialise on it)
        return call(build_scope(exchange, self.state, self.request_id), cycle.receive, cycle.send)

    def _upgrade(self, exchange: Exchange) -> Awaitable[None] | None:
        """The WebSocket session for a WebSocket upgrade (None: other upgrades are plain HTTP)."""
        from .websocket import WebSocketSettings, websocket_handler

        if self.websocket is None:
            self.websocket = WebSocketSettings()
        return websocket_handler(self.app, exchange, self.state, self.websocket, self.request_id)

    async def startup(self) -> None:
        """Check WebSocket support (logs once when the library is missing), then run lifespan
        startup (raises ``LifespanFailure`` when it fails)."""
        from .websocket import WebSocketSettings, check_library

        if self.websocket is None:
            self.websocket = WebSocketSettings()
        check_library(self.websocket)
        if self.lifespan_mode == "off":
            return
        from .lifespan import Lifespan

        lifespan = Lifespan(self.app, self.lifespan_mode == "on", self.lifespan_timeout)
        self._lifespan = lifespan
        await lifespan.startup()
        if lifespan.supported:
            self.state = lifespan.state
        # Startup may have patched the app's class (an error tracker initialised there wraps
        # Starlette.__call__, say): requests call what the class has now.
        self._call_app = entry_point(self.app)

    async def shutdown(self) -> None:
        """Run lifespan shutdown, after the connections have drained."""
        if self._lifespan is not None:
            await self._lifespan.shutdown()
