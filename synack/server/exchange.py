"""Exchange and Handler: the one contract between the driver and applications.

An ``Exchange`` is one request/response cycle. Adapters (ASGI, WSGI, static files) read the
request head and body from it and send the response through it; they never see transports.

The Exchange itself sees only two things: the connection's ``ServerConnection`` (the sans-I/O
HTTP/1.1 state, for framing) and a ``Channel``: the narrow set of I/O services the driver
declares below (write, drain, wait for body bytes, send a file, finish, abort, upgrade). This
module imports only ``synack.h1`` and the standard library (enforced by tests/test_layers.py),
so any driver that offers a ``Channel`` — the asyncio protocol today, a test harness, later
TLS or HTTP/2 streams — can carry the same adapters.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ..compiled import mypyc_attr
from ..h1 import Data, EndOfMessage, FieldBlock, Headers, InformationalResponse, LocalProtocolError, Request
from ..h1 import RemoteProtocolError, RequestState, Response, ServerConnection

__all__ = [
    "Exchange",
    "Handler",
    "Channel",
    "RawStream",
    "ClientDisconnected",
    "BodyError",
    "FieldBlock",
    "FileRange",
    "TlsInfo",
    "Settle",
    "AnswerBatch",
    "ANSWER_BATCH",
    "entry_point",
]

HeaderList = Iterable[tuple[bytes, bytes]]


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of OSError
class ClientDisconnected(OSError):
    """The client went away; the response cannot be delivered."""


class BodyError(Exception):
    """The request body could not be read (malformed, too large, or timed out).

    ``status`` is what the client was (or would have been) answered.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """What a connection's TLS handshake settled, in the terms of the ASGI ``tls`` extension."""

    #: The server's certificate (PEM), or None when unknown.
    server_cert: str | None
    #: The client's certificates (PEM), leaf first; empty when it sent none.
    client_cert_chain: tuple[str, ...]
    #: The client certificate's subject as an RFC 4514 string, or None.
    client_cert_name: str | None
    #: Why the client certificate failed verification, or None.
    client_cert_error: str | None
    #: The protocol version (0x0303 for TLS 1.2, 0x0304 for TLS 1.3), or None.
    tls_version: int | None
    #: The IANA number of the cipher suite, or None.
    cipher_suite: int | None


class RawStream(Protocol):
    """The connection's byte stream after a protocol switch (101, e.g. WebSocket).

    HTTP/1.1 no longer applies: bytes are read and written as they are, with backpressure.
    """

    async def read(self) -> bytes:
        """The next bytes from the client; ``b""`` once it sent EOF.

        Raises:
            ClientDisconnected: the connection is gone.
        """
        ...

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the client (call ``drain`` to respect backpressure)."""
        ...

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written (write timeout)."""
        ...

    def close(self) -> None:
        """Send what is queued, then close gracefully (FIN, linger)."""
        ...

    def abort(self) -> None:
        """Drop the connection at once."""
        ...

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the server starts draining (SIGTERM/SIGINT, reload),
        or soon if it already is: the upgraded protocol's cue to say goodbye (WebSocket 1001).
        The connection then gets the graceful timeout to close before it is dropped."""
        ...


class Channel(Protocol):
    """What an ``Exchange`` needs from the connection that carries it: the driver's side of
    the seam. Every method is about bytes and time; none exposes a transport."""

    #: True while the transport refuses more bytes (above its high-water mark).
    write_paused: bool
    #: True once the connection is lost (``gone()`` also covers a transport still closing).
    closed: bool
    #: The connection's TLS parameters, or None for a plain connection.
    tls: TlsInfo | None

    def gone(self) -> bool:
        """Whether the connection is closed or closing: nothing written would arrive."""
        ...

    def write(self, data: bytes) -> None:
        """Hand response bytes to the transport (dropped once the connection is gone)."""
        ...

    async def drain(self) -> None:
        """Wait until the client has taken enough of the response (under the write timeout).

        Raises:
            ClientDisconnected: the connection is gone, or the client stalled.
        """
        ...

    async def wait_for_body(self) -> None:
        """Wait until more request bytes or EOF arrived (under the body-idle timeout).

        Raises:
            ClientDisconnected: the connection is gone.
            BodyError: the body timed out (the driver has answered 408).
        """
        ...

    def body_failed(self, error: RemoteProtocolError) -> None:
        """The request body broke the rules: the driver answers it (if it still can) and closes."""
        ...

    async def send_file(self, file: Any, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` (sendfile where possible).

        Raises:
            ClientDisconnected: the connection is gone, stalled, or the file came up short.
        """
        ...

    def finish(self, exchange: Exchange, last: bytes) -> None:
        """Write ``last`` (may be empty): ``exchange``'s response is complete."""
        ...

    def abort(self) -> None:
        """Drop the connection at once: the response cannot be completed correctly."""
        ...

    async def wait_closed(self) -> None:
        """Wait until the client can send nothing more (EOF or connection lost)."""
        ...

    def upgrade(self, exchange: Exchange, head: bytes) -> RawStream:
        """Write ``head`` (a 101 response) and hand the connection over as a raw stream."""
        ...

    def request_id(self, head: Request) -> str:
        """The ``X-Request-ID`` of ``head``: the one a trusted peer sent, else a new one."""
        ...


class AnswerBatch:
    """Which batch of answers the driver is dispatching now, for ``respond_now``.

    The driver answers synchronously only in batches: one loop callback answers every request
    whose head an earlier pass read. All of a batch's requests were received before the batch
    began, so whatever a handler checks about the world during the batch (that a cached file
    is still the file its path names) is as fresh for every later request of the same batch
    as a check of its own would be: each response still reflects a state between the
    request's arrival and its answer. ``number`` is that batch's number (unique in the process,
    never 0) while the batch runs, and 0 between batches; a handler may reuse a check made
    under the same nonzero number and must check afresh otherwise.

    One per process (several loops in threads included): a batch that starts sets a new
    number and one that ends sets 0, so a number seen is never older than the batch seeing
    it, and a reused check is never older than the requests it serves.
    """

    __slots__ = ("number",)

    def __init__(self) -> None:
        self.number = 0


#: The current batch of answers (see ``AnswerBatch``); written by the driver only.
ANSWER_BATCH: Final = AnswerBatch()


class Handler(Protocol):
    """The application side: an async callable taking an ``Exchange``.

    It may also define ``async startup()`` and ``async shutdown()``; the worker awaits them
    before accepting connections and after draining them.

    And it may define ``respond_now(exchange) -> bool``, which the driver calls first: a
    handler that can answer without waiting for anything (a cached small file) completes the
    response there with ``respond`` (or ``start_response`` + ``complete_response``) and returns True, and no
    task is created for the request; False means "not now", and ``__call__`` runs as usual.
    It must not raise for anything but a disconnected client. It is called only from a batch
    of answers (``ANSWER_BATCH``), and may check once per batch what holds for all of it.

    And it may define ``begin(exchange, settle)``, which the driver then calls instead of
    ``__call__``: the handler takes the request on without a task (one that waits for a
    thread, not for the loop) and, later, on the loop, answers and reports the end once with
    ``settle(exchange, outcome)``. ``outcome`` is what the coroutine would have ended with:
    None (returned), an exception (raised: logged and turned into a 500 or an abort, as
    from ``__call__``), or an awaitable that finishes the request as a task (a path that
    must wait on the loop, e.g. a file to send). ``begin`` itself may raise as ``__call__``
    may. No ``after_handler`` is awaited for such a request.
    """

    def __call__(self, exchange: Exchange) -> Awaitable[None]: ...


_HEAD_IDLE: Final = 0
_HEAD_PENDING: Final = 1
_HEAD_SENT: Final = 2
_REQUEST_BODY = RequestState.BODY  # a global: cheaper than the Enum attribute per body chunk


def entry_point(handler: Any) -> Any:
    """What to call to call ``handler``: its bound ``__call__`` when its class defines one in
    Python, else ``handler`` itself. (Calling an instance goes through its type's call slot,
    which looks the method up and repacks the arguments each time: on Python 3.11, 750
    instructions per call more than the bound method, which the interpreter calls inline.)
    The method is the one the class has now: one patched onto the class later is not seen
    by what this returned (ASGIHandler takes it again after lifespan startup)."""
    for klass in type(handler).__mro__:
        call = klass.__dict__.get("__call__")
        if call is not None:
            # Bound from the type, as the call itself finds it (for a class whose metaclass
            # defines __call__, ``handler.__call__`` would be the method for its instances),
            # and only a plain function: a staticmethod, say, is called as it is.
            return types.MethodType(call, handler) if type(call) is types.FunctionType else handler
    return handler


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
        "bytes_received",
        "_channel",
        "_connection",
        "_head_state",
        "_status",
        "_headers",
        "_reason",
        "_pending",
        "_error",
        "_ended",
        "after_handler",
        "_request_id",
    )

    _request_id: str

    def __init__(
        self,
        channel: Channel,
        connection: ServerConnection,
        head: Request,
        body_done: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        scheme: str,
        root_path: str,
    ) -> None:
        #: The request head, with keep-alive, framing and upgrade already computed.
        self.head = head
        #: (host, port) of the client, or None (UNIX sockets).
        self.client = client
        #: (host, port) of the local end, or None.
        self.server = server
        #: "http" or "https".
        self.scheme = scheme
        #: The prefix a proxy stripped before forwarding (``--root-path``).
        self.root_path = root_path
        #: True once the whole request body has been received.
        self.body_done = body_done
        #: Response body bytes handed to the transport (for the access log).
        self.bytes_sent = 0
        #: Request body bytes handed to the app (for the metrics).
        self.bytes_received = 0
        self._channel = channel
        self._connection = connection
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
        """Whether the client connection is gone (lost; a transport still closing after a
        failed write is reported by the next send)."""
        return self._channel.closed

    @property
    def gone(self) -> bool:
        """Whether nothing more can reach the client: the connection is lost, or closing (an
        abort, e.g. the graceful timeout, closes the transport at once and reports the loss
        on a later loop iteration)."""
        return self._channel.gone()

    @property
    def request_id(self) -> str:
        """This request's ``X-Request-ID``: a trusted peer's, else a new one (decided on first use)."""
        try:
            return self._request_id
        except AttributeError:  # (not set in __init__: most requests never ask)
            request_id = self._request_id = self._channel.request_id(self.head)
        return request_id

    @property
    def response_headers(self) -> Any:
        """The response's header fields as the app gave them ((name, value) byte pairs)."""
        return self._headers

    @property
    def tls(self) -> TlsInfo | None:
        """The connection's TLS parameters, or None when it is not over TLS."""
        return self._channel.tls

    @property
    def response_started(self) -> bool:
        return self._head_state != _HEAD_IDLE

    @property
    def response_complete(self) -> bool:
        return self._ended

    @property
    def bytes_written(self) -> bool:
        """Whether any byte of the response (head included) went to the transport."""
        return self._head_state == _HEAD_SENT

    def receive_nowait(self) -> bytes | None:
        """What ``receive()`` would return, when that needs no waiting (the body, or the
        rest of it, is already buffered); None when ``await receive()`` must be used."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        if self.body_done:
            return b""
        connection = self._connection
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
            self.bytes_received += len(data)
            self._read_ahead(connection)
            return data
        if kind is EndOfMessage:
            self.body_done = True
            return b""
        return None

    async def receive(self) -> bytes:
        """The next piece of request body, or ``b""`` once it is complete.

        The first call sends ``100 Continue`` when the client asked for it. Several tasks
        may wait at once (one reading the body, one checking for a disconnect): each is
        woken when bytes arrive, and each gets what was there when it ran.

        Raises:
            ClientDisconnected: the client went away before the body was complete.
            BodyError: the body was malformed, too large, or too slow.
        """
        channel = self._channel
        connection = self._connection
        while True:
            data = self.receive_nowait()
            if data is not None:
                return data
            error = self._error
            if error is not None:
                channel.body_failed(error)
                raise BodyError(error.message, error.status)
            if connection.continue_owed:
                channel.write(connection.send_continue())
                continue
            await channel.wait_for_body()

    def _read_ahead(self, connection: ServerConnection) -> None:
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
            pending: bytes = event.data  # type: ignore[union-attr]
            self.bytes_received += len(pending)
            self._pending = pending

    @property
    def more_body(self) -> bool:
        """Whether ``receive()`` may still return more body bytes."""
        return self._pending is not None or not self.body_done

    async def wait_disconnected(self) -> None:
        """Wait until the client connection is gone (for ASGI ``http.disconnect``)."""
        await self._channel.wait_closed()

    # ------------------------------------------------------------------ response

    async def send_informational(self, status: int, headers: HeaderList = ()) -> None:
        """Send a 1xx response (e.g. 103 Early Hints) before the final one."""
        if self._head_state != _HEAD_IDLE:
            raise LocalProtocolError("informational response after the response started")
        channel = self._channel
        if channel.gone():
            raise ClientDisconnected("client disconnected")
        if self.head.http_version == b"1.0":
            return  # RFC 9110 §15.2: no 1xx to HTTP/1.0 clients
        for piece in self._connection.send(InformationalResponse(status, list(headers))):
            channel.write(piece)

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

    def respond(self, status: int, headers: HeaderList, data: bytes, reason: bytes = b"") -> None:
        """``start_response`` and ``complete_response`` in one call: a whole small response,
        head and body, in one write (the hot path of adapters that have it all at once).

        Raises:
            ClientDisconnected: the client is gone.
            LocalProtocolError: the response already started, or the head or body breaks
                HTTP (nothing has been written).
        """
        channel = self._channel
        if channel.closed:  # (a closing transport drops the write; the loss is reported next)
            raise ClientDisconnected("client disconnected")
        if self._head_state != _HEAD_IDLE:
            raise LocalProtocolError("response already started")
        self._status = status
        self._headers = headers
        payload = self._connection.send_response(status, headers, data, reason)
        self._head_state = _HEAD_SENT
        self._ended = True
        self.bytes_sent += len(data)
        channel.finish(self, payload)

    def complete_response(self, data: bytes) -> None:
        """Head (pending) plus the whole body in one write, without the coroutine: the
        common small response. Only valid while ``head_pending``.

        Raises:
            ClientDisconnected: the client is gone.
            LocalProtocolError: the head or body breaks HTTP (nothing has been written).
        """
        channel = self._channel
        if channel.closed:  # (a closing transport drops the write; the loss is reported next)
            raise ClientDisconnected("client disconnected")
        if self._head_state != _HEAD_PENDING:
            raise LocalProtocolError("complete_response() needs a pending head")
        # (Kept free of property and helper calls: this is the hot path of every small response.)
        payload = self._connection.send_response(self._status, self._headers, data, self._reason)
        self._head_state = _HEAD_SENT
        self._ended = True
        self.bytes_sent += len(data)
        channel.finish(self, payload)

    async def send_body(self, data: bytes, more: bool = False) -> None:
        """Send body bytes; ``more=False`` ends the response."""
        channel = self._channel
        # A failed write closes the transport at once but the loss is only reported on a
        # later loop iteration: gone() covers both, so an app that streams without awaiting
        # anything else stops here instead of spinning forever once the client is gone.
        if channel.gone():
            raise ClientDisconnected("client disconnected")
        if self._ended:
            raise LocalProtocolError("response already complete")
        connection = self._connection
        if self._head_state == _HEAD_PENDING:
            if not more:
                self.complete_response(data)
                return
            head = connection.send(Response(self._status, self._headers, self._reason))[0]
            self._head_state = _HEAD_SENT
            if data:
                channel.write(head + b"".join(connection.send(Data(data))))
            else:
                channel.write(head)
        elif self._head_state == _HEAD_IDLE:
            raise LocalProtocolError("body sent before the response head")
        elif data:
            pieces = connection.send(Data(data))
            channel.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        self.bytes_sent += len(data)
        if not more:
            await self.end()
            return
        if channel.write_paused:
            await channel.drain()

    async def end(self, trailers: HeaderList = ()) -> None:
        """End the response, with trailer fields when the body is chunked."""
        if self._ended:
            return
        if self._head_state == _HEAD_PENDING:
            await self.send_body(b"", more=False) if not trailers else await self._start_then_end(trailers)
            return
        channel = self._channel
        if channel.gone():
            raise ClientDisconnected("client disconnected")
        pieces = self._connection.send(EndOfMessage(Headers(list(trailers))))
        self._ended = True
        channel.finish(self, b"".join(pieces))

    async def _start_then_end(self, trailers: HeaderList) -> None:
        await self.send_body(b"", more=True)
        await self.end(trailers)

    @property
    def trailers_allowed(self) -> bool:
        """Whether trailers can be sent (chunked coding is in use)."""
        return self._connection.response_chunked

    async def send_file(self, file: Any, offset: int, count: int, more: bool = False) -> None:
        """Send ``count`` bytes of ``file`` (an open binary file) from ``offset``, with
        sendfile where the transport allows; ``more=False`` ends the response."""
        channel = self._channel
        if self._head_state == _HEAD_PENDING:
            await self.send_body(b"", more=True)
        if channel.gone():
            raise ClientDisconnected("client disconnected")
        for piece in self._connection.send(Data(FileRange(count))):
            if type(piece) is FileRange:
                await channel.send_file(file, offset, count)
            else:
                channel.write(piece)
        self.bytes_sent += count
        if not more:
            await self.end()

    async def upgrade(self, headers: HeaderList = ()) -> RawStream:
        """Accept the client's ``Upgrade`` with ``101 Switching Protocols`` and ``headers``;
        the connection leaves HTTP/1.1 and becomes a raw byte stream (RFC 9110 §7.8).

        Raises:
            LocalProtocolError: the request asked for no upgrade, or the response started.
            ClientDisconnected: the client is gone.
        """
        if self._head_state != _HEAD_IDLE:
            raise LocalProtocolError("upgrade after the response started")
        if not self.head.upgrade:
            raise LocalProtocolError("upgrade() on a request that did not ask for one")
        channel = self._channel
        if channel.gone():
            raise ClientDisconnected("client disconnected")
        pieces = self._connection.send(Response(101, list(headers)))
        self._head_state = _HEAD_SENT
        self._status = 101
        self._ended = True
        return channel.upgrade(self, b"".join(pieces))

    @property
    def status(self) -> int:
        return self._status

    def abort(self) -> None:
        """Drop the connection at once (the response cannot be completed)."""
        self._channel.abort()


#: The driver's end-of-request callback given to ``Handler.begin``.
Settle = Callable[[Exchange, Awaitable[None] | BaseException | None], None]


class FileRange:
    """A placeholder body piece of ``count`` bytes that the driver sends from a file."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count
