"""Exchange and Handler: the one contract between the driver and applications.

An ``Exchange`` is one request/response cycle. Adapters (ASGI, WSGI, static files) read the
request head and body from it and send the response through it; they never see transports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..h1 import Data, EndOfMessage, FieldBlock, Headers, InformationalResponse, LocalProtocolError, Request
from ..h1 import NEED_DATA, RemoteProtocolError, RequestState, Response

if TYPE_CHECKING:
    from .protocol import HttpProtocol

__all__ = ["Exchange", "Handler", "ClientDisconnected", "BodyError", "FieldBlock"]

HeaderList = Iterable[tuple[bytes, bytes]]


class ClientDisconnected(OSError):
    """The client went away; the response cannot be delivered."""


class BodyError(Exception):
    """The request body could not be read (malformed, too large, or timed out).

    ``status`` is what the client was (or would have been) answered.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@runtime_checkable
class Handler(Protocol):
    """The application side: an async callable taking an ``Exchange``.

    It may also define ``async startup()`` and ``async shutdown()``; the worker awaits them
    before accepting connections and after draining them.

    And it may define ``respond_now(exchange) -> bool``, which the driver calls first: a
    handler that can answer without waiting for anything (a cached small file) completes the
    response there with ``start_response`` + ``complete_response`` and returns True, and no
    task is created for the request; False means "not now", and ``__call__`` runs as usual.
    It must not raise for anything but a disconnected client.
    """

    def __call__(self, exchange: Exchange) -> Awaitable[None]: ...


_HEAD_IDLE, _HEAD_PENDING, _HEAD_SENT = 0, 1, 2
_REQUEST_BODY = RequestState.BODY  # a global: cheaper than the Enum attribute per body chunk


class Exchange:
    """One request and its response on a connection."""

    __slots__ = (
        "head",
        "client",
        "server",
        "scheme",
        "root_path",
        "body_done",
        "bytes_sent",
        "_protocol",
        "_head_state",
        "_status",
        "_headers",
        "_reason",
        "_pending",
        "_error",
        "_ended",
        "after_handler",
    )

    def __init__(self, protocol: HttpProtocol, head: Request, body_done: bool) -> None:
        #: The request head, with keep-alive, framing and upgrade already computed.
        self.head = head
        #: (host, port) of the client, or None (UNIX sockets).
        self.client: tuple[str, int] | None = protocol.client
        #: (host, port) of the local end, or None.
        self.server: tuple[str, int] | None = protocol.server
        #: "http" or "https".
        self.scheme: str = protocol.scheme
        self.root_path: str = protocol.context.root_path
        #: True once the whole request body has been received.
        self.body_done = body_done
        #: Response body bytes handed to the transport (for the access log).
        self.bytes_sent = 0
        self._protocol = protocol
        self._head_state = _HEAD_IDLE
        self._status = 0
        self._headers: Any = ()
        self._reason = b""
        self._pending: bytes | None = None
        #: A body error found while reading ahead, reported by the next ``receive()``.
        self._error: RemoteProtocolError | None = None
        self._ended = False
        #: Awaited by the driver once the handler returned (an adapter's last word), or None.
        self.after_handler: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ request body

    @property
    def disconnected(self) -> bool:
        """Whether the client connection is gone."""
        return self._protocol.closed

    @property
    def response_started(self) -> bool:
        return self._head_state != _HEAD_IDLE

    @property
    def response_complete(self) -> bool:
        return self._ended

    def receive_nowait(self) -> bytes | None:
        """What ``receive()`` would return, when that needs no waiting (the body, or the
        rest of it, is already buffered); None when ``await receive()`` must be used."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        if self.body_done:
            return b""
        connection = self._protocol.connection
        if connection.continue_owed or self._error is not None:
            return None
        try:
            event = connection.next_event()
        except RemoteProtocolError as error:
            self._error = error  # raised by receive(), which answers it
            return None
        kind = type(event)
        if kind is Data:
            data: bytes = event.data  # type: ignore[union-attr]
            self._read_ahead(connection)
            return data
        if kind is EndOfMessage:
            self.body_done = True
            return b""
        return None

    async def receive(self) -> bytes:
        """The next piece of request body, or ``b""`` once it is complete.

        The first call sends ``100 Continue`` when the client asked for it.

        Raises:
            ClientDisconnected: the client went away before the body was complete.
            BodyError: the body was malformed, too large, or too slow.
        """
        protocol = self._protocol
        connection = protocol.connection
        while True:
            data = self.receive_nowait()
            if data is not None:
                return data
            error = self._error
            if error is not None:
                protocol.body_error(error)
                raise BodyError(error.message, error.status)
            if connection.continue_owed:
                protocol.write(connection.send_continue())
                continue
            await protocol.wait_for_body()

    def _read_ahead(self, connection: Any) -> None:
        # Peek one event so the caller knows whether more body follows (ASGI more_body).
        if connection.request_state is not _REQUEST_BODY:
            return
        try:
            event = connection.next_event()
        except RemoteProtocolError as error:
            self._error = error  # reported by the next receive()
            return
        kind = type(event)
        if kind is EndOfMessage:
            self.body_done = True
        elif kind is Data:
            self._pending = event.data

    @property
    def more_body(self) -> bool:
        """Whether ``receive()`` may still return more body bytes."""
        return self._pending is not None or not self.body_done

    async def wait_disconnected(self) -> None:
        """Wait until the client connection is gone (for ASGI ``http.disconnect``)."""
        await self._protocol.wait_closed()

    # ------------------------------------------------------------------ response

    async def send_informational(self, status: int, headers: HeaderList = ()) -> None:
        """Send a 1xx response (e.g. 103 Early Hints) before the final one."""
        if self._head_state != _HEAD_IDLE:
            raise LocalProtocolError("informational response after the response started")
        protocol = self._protocol
        if protocol.closed:
            raise ClientDisconnected("client disconnected")
        if protocol.connection.request is not None and protocol.connection.request.http_version == b"1.0":
            return  # RFC 9110 §15.2: no 1xx to HTTP/1.0 clients
        for piece in protocol.connection.send(InformationalResponse(status, list(headers))):
            protocol.write(piece)

    async def send_head(self, status: int, headers: HeaderList, reason: bytes = b"") -> None:
        """Start the response. The head is held until the first body bytes, so a small
        response goes out in one write with an exact Content-Length."""
        self.start_response(status, headers, reason)

    def start_response(self, status: int, headers: HeaderList, reason: bytes = b"") -> None:
        """``send_head`` without the coroutine (it never waits): for adapters' hot paths."""
        if self._head_state != _HEAD_IDLE:
            raise LocalProtocolError("response already started")
        self._status = status
        self._headers = headers
        self._reason = reason
        self._head_state = _HEAD_PENDING

    @property
    def head_pending(self) -> bool:
        """A head was given and nothing has been written yet."""
        return self._head_state == _HEAD_PENDING

    def complete_response(self, data: bytes) -> None:
        """Head (pending) plus the whole body in one write, without the coroutine: the
        common small response. Only valid while ``head_pending``.

        Raises:
            ClientDisconnected: the client is gone.
            LocalProtocolError: the head or body breaks HTTP.
        """
        protocol = self._protocol
        if protocol.closed or protocol.transport.is_closing():
            raise ClientDisconnected("client disconnected")
        if self._head_state != _HEAD_PENDING:
            raise LocalProtocolError("complete_response() needs a pending head")
        # (Kept free of property and helper calls: this is the hot path of every small response.)
        self._head_state = _HEAD_SENT
        self._ended = True
        connection = protocol.connection
        connection.default_headers = protocol.context.default_headers
        payload = connection.send_response(self._status, self._headers, data, self._reason)
        self.bytes_sent += len(data)
        protocol.transport.write(payload)
        protocol.response_complete(self)

    async def send_body(self, data: bytes, more: bool = False) -> None:
        """Send body bytes; ``more=False`` ends the response."""
        protocol = self._protocol
        # A failed write closes the transport at once but connection_lost only runs on a later
        # loop iteration: without the is_closing() check, an app that streams without awaiting
        # anything else would spin here forever once the client is gone.
        if protocol.closed or protocol.transport.is_closing():
            raise ClientDisconnected("client disconnected")
        if self._ended:
            raise LocalProtocolError("response already complete")
        connection = protocol.connection
        if self._head_state == _HEAD_PENDING:
            if not more:
                self.complete_response(data)
                return
            self._head_state = _HEAD_SENT
            protocol.set_default_headers()
            head = connection.send(Response(self._status, self._headers, self._reason))[0]
            if data:
                pieces = connection.send(Data(data))
                protocol.write(head + b"".join(pieces))
            else:
                protocol.write(head)
        elif self._head_state == _HEAD_IDLE:
            raise LocalProtocolError("body sent before the response head")
        elif data:
            protocol.write_pieces(connection.send(Data(data)))
        self.bytes_sent += len(data)
        if not more:
            await self.end()
            return
        if protocol.write_paused:
            await protocol.drain()

    async def end(self, trailers: HeaderList = ()) -> None:
        """End the response, with trailer fields when the body is chunked."""
        if self._ended:
            return
        protocol = self._protocol
        if self._head_state == _HEAD_PENDING:
            await self.send_body(b"", more=False) if not trailers else await self._start_then_end(trailers)
            return
        if protocol.closed:
            raise ClientDisconnected("client disconnected")
        self._ended = True
        protocol.write_pieces(protocol.connection.send(EndOfMessage(Headers(list(trailers)))))
        protocol.response_complete(self)

    async def _start_then_end(self, trailers: HeaderList) -> None:
        await self.send_body(b"", more=True)
        await self.end(trailers)

    @property
    def trailers_allowed(self) -> bool:
        """Whether trailers can be sent (chunked coding is in use)."""
        return self._protocol.connection.response_chunked

    async def send_file(self, file: Any, offset: int, count: int, more: bool = False) -> None:
        """Send ``count`` bytes of ``file`` (an open binary file) from ``offset``, with
        sendfile where the transport allows; ``more=False`` ends the response."""
        protocol = self._protocol
        if self._head_state == _HEAD_PENDING:
            await self.send_body(b"", more=True)
        if protocol.closed:
            raise ClientDisconnected("client disconnected")
        connection = protocol.connection
        pieces = connection.send(Data(_FileRange(count)))
        for piece in pieces:
            if type(piece) is _FileRange:
                await protocol.send_file(file, offset, count)
            else:
                protocol.write(piece)
        self.bytes_sent += count
        if not more:
            await self.end()

    @property
    def status(self) -> int:
        return self._status

    def abort(self) -> None:
        """Drop the connection at once (the response cannot be completed)."""
        self._protocol.abort()


class _FileRange:
    """A placeholder body piece of ``count`` bytes that the driver sends from a file."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

