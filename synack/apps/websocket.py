"""ASGI websocket: the opening handshake's checks (RFC 6455 §4.2), the ``websocket`` scope and
its messages, over the ``websockets`` package's sans-I/O ``ServerProtocol`` (the optional extra
``synack[websockets]``, imported lazily: without it a handshake gets a clear 501).

Theory of operation. One ``_Session`` per WebSocket request owns the ``receive``/``send`` pair
the app gets. Before the app is called, the handshake is checked here, so a malformed one is
answered 400 (426 for another protocol version) with its reason and the app never sees it. The
app then gets ``websocket.connect`` and answers with one of:

    CONNECTING ──websocket.accept──▶ OPEN ──websocket.close / peer close──▶ CLOSING ──▶ CLOSED
               ──websocket.close──▶ DENIED (403)
               ──websocket.http.response.start──▶ RESPONDING ──…body (last)──▶ DENIED

On accept the connection leaves HTTP/1.1 (``Exchange.upgrade``: 101, then a raw byte stream).
A reader task feeds the stream's bytes to the ``ServerProtocol``, which answers pings and close
frames itself; messages are assembled from frames here (text is UTF-8-checked fragment by
fragment) and queued for the app. Everything is bounded: a message is at most ``max_size``
bytes after decompression (bigger: close 1009, with nothing buffered past the limit); at most
``QUEUE_MESSAGES`` messages / ``QUEUE_BYTES`` bytes wait for an app that does not receive, and
then reading from the socket stops until the app takes them or the server sends its close frame
(what arrives after that is dropped, so reading is bounded again); the app's sends wait for
the client to read (the stream's ``drain``, under the write timeout). A ping every
``ping_interval`` seconds must be answered within ``ping_timeout`` (anything received
counts), else the peer is closed with 1011; a close handshake gets ``close_timeout``
seconds. When the server drains, open WebSockets are closed with 1001 (going away).

The handler coroutine returns only once the connection is closed, so the driver's graceful
close (FIN, linger) follows the WebSocket close handshake.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import logging
import os
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..h1 import Framing, Request, split_list
from ..logs import access_line, access_log, custom_access, error_log
from ..server.exchange import ClientDisconnected, Exchange, RawStream
from .asgi import ASGIProtocolError, _headers, build_scope

__all__ = ["WebSocketSettings", "websocket_handler", "check_library", "check_handshake", "INSTALL_HINT"]

Message = dict[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

#: ASGI websocket spec 2.4: ``reason`` in close and disconnect, the ``websocket.http.response``
#: extension, and ``send`` raising an OSError subclass once the connection is closed.
SPEC_VERSION = "2.4"
INSTALL_HINT = "WebSockets need the websockets package: pip install 'synack[websockets]'"

#: Messages received and not yet taken by the app, above which reading from the socket stops
#: (websockets' own asyncio layer: 16). Reading resumes once the app took them all, or once
#: the server sent its close frame (what arrives after that is dropped).
QUEUE_MESSAGES = 16
#: The same in bytes (a single message may still be up to ``max_size``).
QUEUE_BYTES = 1024 * 1024

# Session states (see the theory of operation above).
_CONNECTING, _RESPONDING, _DENIED, _OPEN, _CLOSING, _CLOSED = range(6)
_STATE_NAMES = ("CONNECTING", "RESPONDING", "DENIED", "OPEN", "CLOSING", "CLOSED")

#: RFC 6455 §7.4.1 codes used here.
NORMAL, GOING_AWAY, ABNORMAL, INTERNAL_ERROR = 1000, 1001, 1006, 1011

_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """The WebSocket settings (``--ws*``); every bound named, with its default."""

    #: "auto" (use the websockets package when installed), "websockets" (require it) or "none".
    mode: str = "auto"
    #: Largest message, in bytes, after decompression (RFC 6455 §10.4): bigger → close 1009.
    max_size: int = 16 * 1024 * 1024
    #: Seconds between keepalive pings (0: none).
    ping_interval: float = 20.0
    #: Seconds the peer has to answer a ping (anything it sends counts) before close 1011.
    ping_timeout: float = 20.0
    #: Seconds a close handshake may take before the connection is closed anyway.
    close_timeout: float = 10.0
    #: Negotiate permessage-deflate (RFC 7692) when the client offers it.
    per_message_deflate: bool = True


# ---------------------------------------------------------------------- the library


class _Library:
    """The parts of the websockets package used here, imported once."""

    def __init__(self) -> None:
        from websockets.datastructures import Headers
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        from websockets.frames import Close, Opcode
        from websockets.http11 import Request as HandshakeRequest
        from websockets.protocol import State
        from websockets.server import ServerProtocol

        close_opcode = Opcode.CLOSE

        class _ServerProtocol(ServerProtocol):
            def recv_frame(self, frame: Any) -> None:
                if frame.opcode is close_opcode and self.current_size is not None:
                    # RFC 6455 §5.4: control frames may come between the fragments of a
                    # message, and a close ends the connection with the message unfinished:
                    # echo it, rather than fail with 1002 (Autobahn case 7.1.5).
                    self.current_size = None
                super().recv_frame(frame)

        self.Headers = Headers
        self.HandshakeRequest = HandshakeRequest
        self.ServerProtocol = _ServerProtocol
        self.Close = Close
        self.deflate = ServerPerMessageDeflateFactory
        self.TEXT, self.BINARY, self.CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
        self.PING, self.PONG, self.CLOSE = Opcode.PING, Opcode.PONG, Opcode.CLOSE
        self.OPEN = State.OPEN


_library: _Library | None = None
_library_missing = False


def _load_library() -> _Library | None:
    global _library, _library_missing
    if _library is None and not _library_missing:
        try:
            _library = _Library()
        except ImportError:
            _library_missing = True
    return _library


def check_library(settings: WebSocketSettings) -> None:
    """At startup: load the framing library, or log once that WebSockets are unavailable.

    Raises:
        RuntimeError: ``--ws websockets`` and the package is not installed.
    """
    if settings.mode == "none":
        return
    if _load_library() is not None:
        return
    if settings.mode == "websockets":
        raise RuntimeError(f"--ws websockets: {INSTALL_HINT}")
    error_log.warning("%s; WebSocket handshakes will be answered 501", INSTALL_HINT)


# ---------------------------------------------------------------------- the handshake


def _values(head: Request, name: bytes) -> list[bytes]:
    return [value for key, value in head.fields if key == name]


def _tokens(head: Request, name: bytes) -> list[bytes]:
    tokens: list[bytes] = []
    for value in _values(head, name):
        tokens.extend(token.lower() for token in split_list(value))
    return tokens


def is_websocket(head: Request) -> bool:
    """Whether ``head`` asks to upgrade to WebSocket (other upgrades stay plain HTTP)."""
    upgrade = head.upgrade
    if upgrade is None:
        return False
    if upgrade.lower() == b"websocket":
        return True
    return b"websocket" in _tokens(head, b"upgrade")


def check_handshake(head: Request) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
    """What is wrong with a WebSocket opening handshake (RFC 6455 §4.2.1), as (status,
    reason, extra headers), or None when it is sound. ``Upgrade: websocket`` and the
    ``Connection: upgrade`` token are already known to be there."""
    if head.method != b"GET":
        return 400, "a WebSocket handshake must be a GET request", [(b"allow", b"GET")]
    if head.http_version != b"1.1":
        return 400, "a WebSocket handshake needs HTTP/1.1", []
    if head.framing is not Framing.NONE:
        # §4.1: the handshake is a GET without a body; bytes after it would be taken for frames.
        return 400, "a WebSocket handshake must not have a body", []
    versions = _values(head, b"sec-websocket-version")
    if len(versions) != 1 or versions[0].strip() != b"13":
        # §4.2.2 point 4: another version → 426 naming the versions this server speaks.
        return 426, "unsupported WebSocket version: this server speaks version 13", [
            (b"sec-websocket-version", b"13"), (b"upgrade", b"websocket")]
    keys = _values(head, b"sec-websocket-key")
    if len(keys) != 1:
        return 400, "a WebSocket handshake needs exactly one Sec-WebSocket-Key", []
    try:
        nonce = base64.b64decode(keys[0].strip(), validate=True)
    except ValueError:
        nonce = b""
    if len(nonce) != 16:  # §4.1: a random 16-byte value, base64-encoded
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64", []
    return None


def _subprotocols(head: Request) -> list[str]:
    names: list[str] = []
    for value in _values(head, b"sec-websocket-protocol"):
        names.extend(token.decode("latin-1") for token in split_list(value) if token)
    return names


# ---------------------------------------------------------------------- handler entry


def websocket_handler(
    app: ASGIApp, exchange: Exchange, state: dict[str, Any] | None, settings: WebSocketSettings,
    request_id: bool = False,
) -> Coroutine[Any, Any, None] | None:
    """The coroutine that serves a WebSocket handshake with ``app``, or None when the request
    is not a WebSocket upgrade (it is then plain HTTP). ``request_id`` (``--request-id``) puts
    the handshake's X-Request-ID in the scope's state, as for HTTP."""
    head = exchange.head
    if not is_websocket(head):
        return None
    if settings.mode == "none":
        return _refuse(exchange, 501, "WebSockets are disabled on this server")
    library = _load_library()
    if library is None:
        return _refuse(exchange, 501, "WebSockets are not available on this server")
    problem = check_handshake(head)
    if problem is not None:
        status, reason, headers = problem
        return _refuse(exchange, status, reason, headers)
    return _Session(app, exchange, state, settings, library, request_id).run()


async def _refuse(exchange: Exchange, status: int, reason: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer a handshake with an HTTP error and its reason; the connection then closes
    (bytes the client may have sent after the handshake are not parsed as HTTP)."""
    if error_log.isEnabledFor(logging.INFO):
        error_log.info("refused WebSocket handshake from %s: %d %s", _peer(exchange), status, reason)
    exchange.respond(status, [_TEXT_PLAIN, _CLOSE, *(headers or ())], reason.encode() + b"\n")


def _peer(exchange: Exchange) -> str:
    client = exchange.client
    return f"{client[0]}:{client[1]}" if client else "unix socket"


# ---------------------------------------------------------------------- one WebSocket


class _Session:
    """One WebSocket: the app's receive/send pair, the reader, keepalive and close handshake."""

    __slots__ = (
        "app", "exchange", "settings", "lib", "scope", "state", "protocol", "stream", "loop",
        "queue", "queued_bytes", "connect_sent", "disconnect", "disconnect_sent", "waiter",
        "reader", "reader_paused", "reader_waiter", "fragments", "fragment_text", "decoder",
        "received", "ping_received_mark", "timer", "close_timer",
        "closed_event", "opened_at", "close_code",
    )

    def __init__(self, app: ASGIApp, exchange: Exchange, state: dict[str, Any] | None,
                 settings: WebSocketSettings, library: _Library, request_id: bool) -> None:
        self.app = app
        self.exchange = exchange
        self.settings = settings
        self.lib = library
        scope = build_scope(exchange, state, request_id)
        del scope["method"]
        scope["type"] = "websocket"
        scope["asgi"] = {"version": "3.0", "spec_version": SPEC_VERSION}
        scope["scheme"] = "wss" if exchange.scheme == "https" else "ws"
        scope["subprotocols"] = _subprotocols(exchange.head)
        scope["extensions"] = {"websocket.http.response": {}}
        self.scope = scope
        self.state = _CONNECTING
        self.protocol: Any = None
        self.stream: RawStream | None = None
        self.loop = asyncio.get_running_loop()
        #: Messages for the app, and their size in bytes.
        self.queue: deque[Message] = deque()
        self.queued_bytes = 0
        self.connect_sent = False
        #: (code, reason) once the connection is closed, for ``websocket.disconnect``.
        self.disconnect: tuple[int, str] | None = None
        self.disconnect_sent = False
        #: The app's ``receive`` waiting for a message (or the close).
        self.waiter: asyncio.Future[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.reader_paused = False
        self.reader_waiter: asyncio.Future[None] | None = None
        #: A fragmented message being assembled (RFC 6455 §5.4).
        self.fragments: list[Any] = []
        self.fragment_text = False
        self.decoder: Any = None
        #: Reads so far (liveness: anything received answers a ping).
        self.received = 0
        self.ping_received_mark = -1
        self.timer: asyncio.TimerHandle | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.closed_event: asyncio.Future[None] | None = None
        self.opened_at = 0.0
        self.close_code = ABNORMAL

    # ------------------------------------------------------------------ running the app

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException as error:
            if self.state < _OPEN:
                raise  # the driver logs it and answers 500 if no response went out yet
            if isinstance(error, Exception):
                _log_app_error(self.exchange, error)
            self._close_after_app(INTERNAL_ERROR, "")
            await self._finish()
            if not isinstance(error, Exception):
                raise
            return
        state = self.state
        if state == _CONNECTING:
            # ASGI: an app that exits before accepting → 403, the handshake not completed.
            self._deny()
        elif state == _RESPONDING:
            error_log.error("application returned without completing its websocket.http.response to %s",
                            _peer(self.exchange))
            self.exchange.abort()
        elif state >= _OPEN:
            self._close_after_app(NORMAL, "")
            await self._finish()

    def _close_after_app(self, code: int, reason: str) -> None:
        if self.state == _OPEN:
            self._send_close(code, reason)

    async def _finish(self) -> None:
        """Wait (bounded by the close timer) for the close handshake, then let go."""
        if self.state != _CLOSED:
            waiter = self.closed_event
            if waiter is None:
                waiter = self.closed_event = self.loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self._lost(ABNORMAL, "")
                raise
        reader = self.reader
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------------ receive

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            queue = self.queue
            if queue:
                message = queue.popleft()
                if self.reader_paused:
                    self.queued_bytes -= _size(message)
                    if not queue:
                        self._resume_reader()
                return message
            disconnect = self.disconnect
            if disconnect is not None:
                if self.disconnect_sent:
                    raise ClientDisconnected("the WebSocket is closed")
                self.disconnect_sent = True
                code, reason = disconnect
                return {"type": "websocket.disconnect", "code": code, "reason": reason}
            if self.state == _DENIED:
                self.disconnect = (ABNORMAL, "")
                continue
            if self.state < _DENIED:
                await self._wait_before_accept()
                continue
            waiter = self.loop.create_future()
            self.waiter = waiter
            try:
                await waiter
            finally:
                self.waiter = None

    async def _wait_before_accept(self) -> None:
        # Nothing can arrive before the app accepts: wait until it answers or the client goes.
        waiter = self.waiter = self.loop.create_future()
        closed = asyncio.ensure_future(self.exchange.wait_disconnected())
        try:
            await asyncio.wait((closed, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            self.waiter = None
        if closed.done() and not closed.cancelled() and self.state < _DENIED:
            self.disconnect = (ABNORMAL, "")

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ send

    async def send(self, message: Message) -> None:
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise ASGIProtocolError(f"ASGI message must be a dict with a 'type', got {message!r}") from None
        state = self.state
        if kind == "websocket.send" and state == _OPEN:
            text = message.get("text")
            if text is not None:
                if message.get("bytes") is not None or type(text) is not str:
                    raise ASGIProtocolError("websocket.send needs exactly one of 'bytes' or 'text' (a str)")
                data: Any = text.encode()
                opcode = 0x81
            else:
                data = message.get("bytes")
                if type(data) is not bytes:
                    if not isinstance(data, (bytearray, memoryview)):
                        raise ASGIProtocolError(
                            "websocket.send needs exactly one of 'bytes' (bytes) or 'text' (a str)")
                    data = bytes(data)
                opcode = 0x82
            stream = self.stream
            assert stream is not None
            protocol = self.protocol
            if protocol.extensions:  # (permessage-deflate) the library frames and compresses
                protocol.send_text(data) if opcode == 0x81 else protocol.send_binary(data)
                stream.write(protocol.data_to_send()[0])
            else:
                stream.write(_frame(opcode, data))
            await stream.drain()
        elif kind == "websocket.send" and state >= _CLOSING:
            raise ClientDisconnected("the WebSocket is closed")
        elif kind == "websocket.accept" and state == _CONNECTING:
            await self._accept(message)
        elif kind == "websocket.close":
            await self._app_close(message, state)
        elif kind == "websocket.http.response.start" and state == _CONNECTING:
            status = message.get("status")
            if type(status) is not int or not 100 <= status <= 999 or status == 101:
                raise ASGIProtocolError(
                    f"websocket.http.response.start 'status' must be an int status other than 101, got {status!r}")
            self.exchange.start_response(status, _headers(message.get("headers", ())))
            self.state = _RESPONDING
        elif kind == "websocket.http.response.body" and state == _RESPONDING:
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise ASGIProtocolError("websocket.http.response.body 'body' must be bytes")
            more = bool(message.get("more_body", False))
            if not more:
                self.state = _DENIED
                self._wake()
            await self.exchange.send_body(bytes(body), more=more)
        else:
            raise ASGIProtocolError(
                f"unexpected ASGI message {kind!r} in WebSocket state {_STATE_NAMES[state]}")

    async def _app_close(self, message: Message, state: int) -> None:
        if state == _CONNECTING:
            self._deny()  # ASGI: close before accept → 403
            return
        if state == _OPEN:
            code = message.get("code", NORMAL)
            reason = message.get("reason") or ""
            if type(code) is not int or not isinstance(reason, str):
                raise ASGIProtocolError("websocket.close needs an int 'code' and a str 'reason'")
            if len(reason.encode()) > 123:  # RFC 6455 §5.5: control payloads are at most 125 bytes
                raise ASGIProtocolError("websocket.close 'reason' is longer than 123 bytes in UTF-8")
            try:
                self.lib.Close(code, reason).serialize()  # checks the code (RFC 6455 §7.4)
            except Exception:
                raise ASGIProtocolError(f"websocket.close 'code' {code} is not a code an endpoint may send") from None
            self._send_close(code, reason)
            return
        if state == _CLOSED:
            raise ClientDisconnected("the WebSocket is closed")
        if state != _CLOSING:
            raise ASGIProtocolError(f"unexpected ASGI message 'websocket.close' in WebSocket state {_STATE_NAMES[state]}")

    def _deny(self) -> None:
        self.state = _DENIED
        self._wake()
        exchange = self.exchange
        if not exchange.response_started and not exchange.disconnected:
            try:
                exchange.respond(403, [_TEXT_PLAIN], b"WebSocket connection refused\n")
            except ClientDisconnected:
                pass

    # ------------------------------------------------------------------ accept

    async def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        offered = self.scope["subprotocols"]
        if subprotocol is not None and (not isinstance(subprotocol, str) or subprotocol not in offered):
            raise ASGIProtocolError(
                f"websocket.accept 'subprotocol' {subprotocol!r} was not offered by the client (offered: {offered})")
        chosen: Any = subprotocol
        extra = _headers(message.get("headers", ()))
        lib = self.lib
        settings = self.settings
        extensions = []
        if settings.per_message_deflate:
            # Small windows keep each connection's zlib state to tens of KiB (RFC 7692 §7.1.2).
            extensions.append(lib.deflate(server_max_window_bits=12, client_max_window_bits=12,
                                          compress_settings={"memLevel": 5}))
        # Built OPEN: its parser then reads frames from the first byte (the handshake request
        # was parsed by h1, and ``accept`` only negotiates extensions and the subprotocol).
        protocol = lib.ServerProtocol(
            state=lib.OPEN,
            extensions=extensions,
            select_subprotocol=lambda _protocol, _offered: chosen,
            max_size=settings.max_size,
        )
        head = self.exchange.head
        request = lib.HandshakeRequest(
            head.target.decode("latin-1"),
            lib.Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in head.fields]),
        )
        response = protocol.accept(request)
        if response.status_code != 101:  # (the checks above make this unlikely)
            reason = response.body.decode("utf-8", "replace").strip() or "invalid WebSocket handshake"
            self.state = _DENIED
            self._wake()
            await _refuse(self.exchange, response.status_code, reason)
            return
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                   for name, value in response.headers.raw_items()
                   if name.lower() not in ("date", "connection")]
        headers.extend(extra)
        self.protocol = protocol
        stream = await self.exchange.upgrade(headers)
        self.stream = stream
        self.state = _OPEN
        self.opened_at = time.monotonic()
        self.reader = self.loop.create_task(self._read())
        stream.on_shutdown(self._shutdown)
        if settings.ping_interval:
            self.timer = self.loop.call_later(settings.ping_interval, self._keepalive)
        self._wake()

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        stream = self.stream
        assert stream is not None
        protocol = self.protocol
        try:
            while self.state < _CLOSED:
                if self.reader_paused:
                    waiter = self.reader_waiter = self.loop.create_future()
                    await waiter
                    continue
                data = await stream.read()
                self.received += 1
                if not data:
                    protocol.receive_eof()
                    self._handle()
                    self._lost(ABNORMAL, "")
                    return
                protocol.receive_data(data)
                if self._handle():
                    await stream.drain()  # pongs and closes respect backpressure too
        except ClientDisconnected:
            self._lost(ABNORMAL, "")

    def _handle(self) -> bool:
        """Pass received frames on; write what the protocol owes. True if it wrote."""
        protocol = self.protocol
        events = protocol.events_received()
        if events:
            self._frames(events)
        writes = protocol.data_to_send()
        if not writes:
            return False
        stream = self.stream
        assert stream is not None
        eof = False
        if writes[-1] == b"":  # SEND_EOF: the close handshake is done (or failed) on our side
            writes.pop()
            eof = True
        try:
            if writes:
                stream.write(writes[0] if len(writes) == 1 else b"".join(writes))
        except ClientDisconnected:
            eof = True
        if eof:
            self._closed_by_protocol()
        return True

    def _frames(self, frames: list[Any]) -> None:
        lib = self.lib
        for frame in frames:
            opcode = frame.opcode
            if opcode is lib.TEXT or opcode is lib.BINARY:
                if frame.fin:
                    self._message(frame.data, opcode is lib.TEXT)
                else:
                    self.fragment_text = opcode is lib.TEXT
                    self.fragments = []
                    self.decoder = codecs.getincrementaldecoder("utf-8")() if self.fragment_text else None
                    self._fragment(frame.data, False)
            elif opcode is lib.CONT:
                self._fragment(frame.data, frame.fin)
            elif opcode is lib.CLOSE:
                close = self.protocol.close_rcvd
                if close is not None:
                    if self.state == _OPEN:
                        self.state = _CLOSING
                        self.close_code = close.code
                    self._set_disconnect(close.code, close.reason)
            if self.state >= _CLOSED:
                return

    def _message(self, data: Any, text: bool) -> None:
        if text:
            try:
                content: Any = data.decode()
            except UnicodeDecodeError as error:
                self._fail(1007, f"invalid UTF-8: {error.reason}")  # RFC 6455 §8.1
                return
            self._enqueue({"type": "websocket.receive", "text": content})
        else:
            self._enqueue({"type": "websocket.receive", "bytes": data if type(data) is bytes else bytes(data)})

    def _enqueue(self, message: Message) -> None:
        if self.state != _OPEN:
            return  # the app said goodbye: what still arrives is dropped (RFC 6455 §1.4)
        queue = self.queue
        queue.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(queue) > 1:
            # The app is behind: count what waits, and stop reading once it is too much.
            if self.reader_paused:
                self.queued_bytes += _size(message)
            else:
                self.queued_bytes = sum(_size(item) for item in queue)
                self.reader_paused = len(queue) >= QUEUE_MESSAGES or self.queued_bytes >= QUEUE_BYTES

    def _fragment(self, data: Any, fin: bool) -> None:
        if self.fragment_text:
            try:
                self.fragments.append(self.decoder.decode(data, fin))  # fails fast (RFC 6455 §8.1)
            except UnicodeDecodeError as error:
                self._fail(1007, f"invalid UTF-8: {error.reason}")
                return
        else:
            self.fragments.append(data)
        if not fin:
            return
        pieces, self.fragments, self.decoder = self.fragments, [], None
        if self.fragment_text:
            self._enqueue({"type": "websocket.receive", "text": "".join(pieces)})
        else:
            self._enqueue({"type": "websocket.receive", "bytes": b"".join(pieces)})

    def _resume_reader(self) -> None:
        self.reader_paused = False
        self.queued_bytes = 0
        waiter = self.reader_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): close frame, FIN, discard the rest."""
        protocol = self.protocol
        if protocol.state is self.lib.OPEN:
            self.close_code = code
            self._set_disconnect(code, reason)
        protocol.fail(code, reason)

    # ------------------------------------------------------------------ closing

    def _send_close(self, code: int, reason: str) -> None:
        protocol = self.protocol
        self.state = _CLOSING
        self.close_code = code
        protocol.send_close(code, reason)
        self._handle()
        if self.state < _CLOSED:
            self.close_timer = self.loop.call_later(self.settings.close_timeout, self._close_timed_out)
            if self.reader_paused:
                # From now on nothing read reaches the app (_enqueue drops it), so the app's pace
                # no longer bounds reading: the peer's close frame waits behind the messages the
                # app did not take, and unread it would make every such close time out.
                self._resume_reader()

    def _close_timed_out(self) -> None:
        self.close_timer = None
        if self.state < _CLOSED:
            error_log.info("WebSocket close handshake with %s timed out", _peer(self.exchange))
            self._set_disconnect(self.close_code, "")
            self._closed_by_protocol()

    def _shutdown(self) -> None:
        """The server drains: say goodbye with 1001 (RFC 6455 §7.4.1)."""
        try:
            if self.state == _OPEN:
                self._set_disconnect(GOING_AWAY, "server shutting down")
                self._send_close(GOING_AWAY, "server shutting down")
        except Exception:  # never let one connection stop the drain
            error_log.exception("error while closing a WebSocket for shutdown")

    def _keepalive(self) -> None:
        self.timer = None
        if self.state != _OPEN:
            return
        settings = self.settings
        if self.ping_received_mark >= 0:
            # A ping is out: the peer answered if anything arrived since (a pong, or frames
            # of a long message that hold the pong back).
            if self.received == self.ping_received_mark:
                error_log.info("WebSocket peer %s did not answer a ping in %.1fs; closing",
                               _peer(self.exchange), settings.ping_timeout)
                self._fail(INTERNAL_ERROR, "keepalive ping timeout")
                self._handle()
                return
            self.ping_received_mark = -1
            self.timer = self.loop.call_later(max(settings.ping_interval - settings.ping_timeout, 0.0) or 0.001,
                                              self._keepalive)
            return
        self.ping_received_mark = self.received
        self.protocol.send_ping(os.urandom(4))
        self._handle()
        self.timer = self.loop.call_later(settings.ping_timeout, self._keepalive)

    def _set_disconnect(self, code: int, reason: str) -> None:
        if self.disconnect is None:
            self.disconnect = (int(code), str(reason))  # (plain types: websockets hands out enums)
        self._wake()

    def _closed_by_protocol(self) -> None:
        """Our side of the close is done: the stream closes gracefully (FIN, linger). The app
        hears the peer's close code, or, when we failed the connection, the code we sent."""
        sent = self.protocol.close_sent
        if sent is not None:
            self._lost(sent.code, sent.reason)
        else:
            self._lost(self.close_code, "")
        stream = self.stream
        if stream is not None:
            stream.close()

    def _lost(self, code: int, reason: str) -> None:
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        self._set_disconnect(code, reason)
        for timer in (self.timer, self.close_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.close_timer = None
        waiter = self.closed_event
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        reader_waiter = self.reader_waiter
        if reader_waiter is not None and not reader_waiter.done():
            reader_waiter.set_result(None)
        self._log_lifetime()

    def _log_lifetime(self) -> None:
        """A second access-log line when the WebSocket ends: its lifetime as the duration, then
        the close code (the first, with the 101, was written by the driver at the handshake)."""
        if not access_log.isEnabledFor(logging.INFO):
            return
        exchange = self.exchange
        head = exchange.head
        log_time = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        lifetime = int((time.monotonic() - self.opened_at) * 1_000_000)
        code = self.disconnect[0] if self.disconnect else ABNORMAL
        custom = custom_access()
        if custom is not None:  # --access-log-format / --log-format json: the same fields as the 101's
            custom.websocket_closed(exchange.client, log_time, head, lifetime, exchange, code)
            return
        line = access_line(
            exchange.client, log_time, head.method + b" " + head.target + b" HTTP/" + head.http_version,
            101, 0, head.headers.get(b"referer", b"-"), head.headers.get(b"user-agent", b"-"), lifetime,
        )
        access_log.info("%s websocket closed %d", line, code)


_HEAD_16 = struct.Struct("!BBH").pack
_HEAD_64 = struct.Struct("!BBQ").pack


def _frame(first: int, data: bytes) -> bytes:
    """A whole unmasked server frame: FIN + ``first``'s opcode, then the payload length in
    its shortest form (RFC 6455 §5.2: 7 bits, 126 + 16 bits, or 127 + 64 bits)."""
    size = len(data)
    if size < 126:
        return bytes((first, size)) + data
    if size < 65536:
        return _HEAD_16(first, 126, size) + data
    return _HEAD_64(first, 127, size) + data


def _size(message: Message) -> int:
    data = message.get("bytes")
    if data is None:
        data = message.get("text", "")
    return len(data)


def _log_app_error(exchange: Exchange, error: Exception) -> None:
    head = exchange.head
    error_log.error(
        "exception in application while handling WebSocket \"%s\" from %s",
        (head.method + b" " + head.target).decode("latin-1"), _peer(exchange), exc_info=error,
    )
