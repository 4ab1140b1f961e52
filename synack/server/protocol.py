"""HttpProtocol: bytes ⇄ ServerConnection ⇄ Exchange, error responses and graceful close.

Per-connection state lives here; per-request state lives in the ``Exchange``. Reading is
pull-based: request bodies are parsed only when the application asks for them, and reading
pauses once unparsed input passes a high-water mark, so memory per connection stays bounded.
Every close that could leave client bytes unread is graceful: the response, then FIN
(``write_eof``), then input is read and discarded for a bounded time and amount, then close —
never a reset the client could see before reading its response.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import sys
from typing import Any, cast

from ..h1 import (
    NEED_DATA,
    ConnectionClosed,
    Framing,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    RequestState,
    ResponseState,
    ServerConnection,
    error_response,
)
from .exchange import BodyError, ClientDisconnected, Exchange, Handler
from .timeouts import Timeouts

__all__ = ["HttpProtocol", "ServerContext"]

error_log = logging.getLogger("synack.error")
access_log = logging.getLogger("synack.access")

#: Unparsed input above this pauses reading until the app consumes it (request bodies) or the
#: current response ends (pipelined requests).
HIGH_WATER = 256 * 1024
#: Seconds a connection that has not sent its first request yet may still send it once the
#: server drains (see ``HttpProtocol.shutdown``).
DRAIN_FIRST_REQUEST_GRACE = 1.0
#: While lingering after FIN, discard at most this much input before giving up with an abort.
LINGER_BYTES = 4 * 1024 * 1024
#: Chunk size for sending files when sendfile is not available (TLS, uvloop).
FILE_CHUNK = 256 * 1024
#: sendfile(2) runs in slices this big, the write deadline re-armed for each (as for FILE_CHUNK).
SENDFILE_SLICE = 256 * 1024

# Phases, each with its own deadline (see timeouts.py).
_HEAD, _APP, _BODY, _WRITE, _KEEPALIVE, _LINGER, _CLOSED = range(7)
_FRAMING_NONE = Framing.NONE


class ServerContext:
    """What every connection of one worker shares: handler, limits, timeouts and the clock."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: Handler,
        limits: Limits,
        timeouts: Timeouts,
        *,
        server_header: bytes = b"synack",
        access_log: bool = True,
        root_path: str = "",
        scheme: str = "http",
    ) -> None:
        self.loop = loop
        #: ``loop.time``, bound once (the hot path re-arms a deadline per request).
        self.time = loop.time
        self.handler = handler
        self.limits = limits
        self.timeouts = timeouts
        self.server_header = server_header
        self.access_log = access_log and access_log_enabled()
        self.root_path = root_path
        self.scheme = scheme
        self.connections: set[HttpProtocol] = set()
        self.now = loop.time()
        self.default_headers = b""
        self.log_time = ""
        self.shutting_down = False
        self.on_connection_lost: list[Any] = []
        #: The handler's synchronous fast path, when it has one (see ``Handler``).
        self.respond_now: Any = getattr(handler, "respond_now", None)


def access_log_enabled() -> bool:
    return access_log.isEnabledFor(logging.INFO)


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.connection = ServerConnection(context.limits)
        self.exchange: Exchange | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = context.scheme
        self.closed = False
        self.write_paused = False
        self.reading_paused = False
        self.phase = _HEAD
        self.deadline = 0.0
        self._lingered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._responding_now = False
        #: The task blocked in loop.sendfile(), if any (see on_deadline).
        self._sendfile_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        context = self.context
        context.connections.add(self)
        self.client = _address(transport.get_extra_info("peername"))
        self.server = _address(transport.get_extra_info("sockname"))
        # Deadlines are armed from the live clock: ``context.now`` is only refreshed by the
        # once-a-second sweep, and arming from it would let a timeout fire up to 1 s early.
        self.deadline = context.loop.time() + context.timeouts.head
        if error_log.isEnabledFor(logging.DEBUG):
            error_log.debug("connection open from %s", _format_peer(self.client))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.phase = _CLOSED
        self.deadline = 0.0
        context = self.context
        context.connections.discard(self)
        disconnected = ClientDisconnected("client disconnected")
        for waiter in (self._body_waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(disconnected)
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        for callback in context.on_connection_lost:
            callback()
        if error_log.isEnabledFor(logging.DEBUG):
            error_log.debug("connection closed from %s", _format_peer(self.client))

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == _LINGER:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.abort()
            return
        connection = self.connection
        connection.receive_data(data)
        if self.exchange is None:
            if phase == _KEEPALIVE:
                self.phase = _HEAD
                self._next_request()
                if self.phase == _HEAD:
                    # The head is still incomplete: its deadline runs from now. (Armed only
                    # here: a whole request, the usual case, moves on to _APP at once.)
                    self.deadline = self.context.time() + self.context.timeouts.head
                return
            self._next_request()
        elif self._body_waiter is not None:
            if not self._body_waiter.done():
                self._body_waiter.set_result(None)
        elif connection.buffered > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self.phase == _LINGER:
            self.transport.close()
            return None
        self.connection.receive_data(b"")
        closed_waiter = self._closed_waiter  # the client will send nothing more: wake wait_closed()
        if closed_waiter is not None and not closed_waiter.done():
            closed_waiter.set_result(None)
        if self.exchange is None:
            self._next_request()
        elif self._body_waiter is not None and not self._body_waiter.done():
            self._body_waiter.set_result(None)
        return True  # keep the write side open: the response may still be on its way

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ requests

    def _next_request(self) -> None:
        connection = self.connection
        while True:  # more than once only while requests are answered synchronously
            try:
                event = connection.next_event()
            except RemoteProtocolError as error:
                self._reject(error)
                return
            kind = type(event)
            if kind is Request:
                if self._start(event):  # type: ignore[arg-type]
                    continue
            elif kind is ConnectionClosed:
                self.graceful_close()
            return

    def _start(self, request: Request) -> bool:
        """Start handling ``request``. True when it was answered synchronously and the
        connection is back to waiting with bytes or EOF to look at (the caller loops instead
        of recursing, so a long pipeline of cached files cannot exhaust the stack)."""
        body_done = request.framing is _FRAMING_NONE
        if body_done:
            self.connection.skip_empty_body()
        self.phase = _APP
        self.deadline = 0.0
        exchange = Exchange(self, request, body_done)
        self.exchange = exchange
        context = self.context
        if context.shutting_down:
            self.connection.close_after_response()
        if context.respond_now is not None and self._respond_now(exchange):
            connection = self.connection
            return self.phase == _KEEPALIVE and bool(connection.buffered or connection.client_eof)
        # A fresh contextvars context per request: a pipelined request is started from inside
        # the previous request's task, whose context variables it must not inherit.
        if _EAGER:
            # Python 3.12+: start the handler eagerly, so an exchange that never waits (most
            # small responses) completes inside data_received without a trip through the
            # scheduler.
            task = asyncio.Task(  # type: ignore[call-arg]
                self._run(exchange), loop=context.loop, eager_start=True, context=_BASE_CONTEXT.copy()
            )
            if task.done():  # finished (and maybe started the next request) already
                return False
        else:
            task = context.loop.create_task(self._run(exchange), context=_BASE_CONTEXT.copy())
        self._task = task
        return False

    def _respond_now(self, exchange: Exchange) -> bool:
        self._responding_now = True
        try:
            return bool(self.context.respond_now(exchange))
        except ClientDisconnected:
            if not exchange.response_complete and self.exchange is exchange:
                self.abort()
            return True  # nothing more to do for this request
        except Exception:
            # The fast path is optional: a bug in it must not cost the request.
            error_log.exception("respond_now failed; answering through the handler")
            if exchange.response_started:
                self.abort()
                return True
            return False
        finally:
            self._responding_now = False

    async def _run(self, exchange: Exchange) -> None:
        try:
            await self.context.handler(exchange)
            after = exchange.after_handler
            if after is not None:
                await after()
        except (ClientDisconnected, BodyError):
            if not exchange.response_complete and self.exchange is exchange:
                self.abort()
            return
        except asyncio.CancelledError:
            self.abort()
            return
        except Exception as error:
            if self.exchange is not exchange:
                return  # the driver already answered (body error, timeout)
            if isinstance(error, LocalProtocolError):
                error_log.error("application broke HTTP: %s", error)
            else:
                error_log.exception("exception in application", exc_info=error)
            self._app_failed(exchange)
            return
        if self.exchange is exchange and not exchange._ended and not self.closed:
            if exchange.response_started and exchange.bytes_sent:
                error_log.error("application returned without completing the response")
                self.abort()
            else:
                error_log.error("application returned without sending a response")
                self._app_failed(exchange)

    def _app_failed(self, exchange: Exchange) -> None:
        if self.closed:
            return
        connection = self.connection
        if connection.response_state is ResponseState.IDLE:
            self.set_default_headers()
            self.write(error_response(connection, 500, "the application failed"))
            self._log_access(exchange.head, 500, 0)
            self.exchange = None
            self.graceful_close()
        else:
            self.abort()

    def response_complete(self, exchange: Exchange) -> None:
        """The exchange's response was fully handed to the transport."""
        if self.context.access_log:
            self._log_access(exchange.head, self.connection.response_status, exchange.bytes_sent)
        if self.exchange is not exchange:
            return
        self.exchange = None
        connection = self.connection
        context = self.context
        if not context.shutting_down and connection.next_cycle():
            self.phase = _KEEPALIVE
            self.deadline = context.time() + context.timeouts.keep_alive
            if self.reading_paused:
                self.reading_paused = False
                self.transport.resume_reading()
            if (connection.buffered or connection.client_eof) and not self._responding_now:
                self._next_request()
        else:
            self.graceful_close()

    # ------------------------------------------------------------------ body reading

    async def wait_for_body(self) -> None:
        """Wait until more request bytes (or EOF) arrive, under the body-idle deadline."""
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        waiter: asyncio.Future[None] = self.context.loop.create_future()
        self._body_waiter = waiter
        self.phase = _BODY
        self.deadline = self.context.loop.time() + self.context.timeouts.body_idle
        try:
            await waiter
        finally:
            self._body_waiter = None
            if self.phase == _BODY:
                self.phase = _APP
                self.deadline = 0.0

    def body_error(self, error: RemoteProtocolError) -> None:
        """The request body broke the rules (or the limit): answer if possible, then close."""
        if self.closed or self.phase == _LINGER:
            return  # already answered (the app read again after the error) and closing
        exchange = self.exchange
        error_log.info("bad request body from %s: %s", _format_peer(self.client), error.message)
        if self.connection.response_state is ResponseState.IDLE:
            self.set_default_headers()
            self.write(error_response(self.connection, error.status, error.message))
            if exchange is not None:
                self._log_access(exchange.head, error.status, 0)
            self.exchange = None
            self.graceful_close()
        else:
            self.abort()

    # ------------------------------------------------------------------ writing

    def set_default_headers(self) -> None:
        self.connection.default_headers = self.context.default_headers

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def write_pieces(self, pieces: list[Any]) -> None:
        if self.closed or not pieces:
            return
        if len(pieces) == 1:
            self.transport.write(pieces[0])
        else:
            self.transport.write(b"".join(pieces))

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark (write deadline)."""
        if not self.write_paused:
            return
        if self.closed:
            raise ClientDisconnected("client disconnected")
        waiter: asyncio.Future[None] = self.context.loop.create_future()
        self._drain_waiter = waiter
        previous_phase, previous_deadline = self.phase, self.deadline
        self.phase = _WRITE
        self.deadline = self.context.loop.time() + self.context.timeouts.write
        try:
            await waiter
        finally:
            self._drain_waiter = None
            if self.phase == _WRITE:
                self.phase, self.deadline = previous_phase, previous_deadline

    async def send_file(self, file: Any, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset``; abort if the file came up short."""
        if self.closed:
            raise ClientDisconnected("client disconnected")
        sent = 0
        loop = self.context.loop
        if self.transport.get_extra_info("sslcontext") is None and _sendfile_native(loop):
            await self.drain()
            self._sendfile_task = asyncio.current_task()
            try:
                # In slices, re-arming the write deadline for each: the deadline bounds a
                # stall, not the whole transfer, so a large file to a client that keeps
                # reading is never cut off (one deadline for the whole file did that).
                while sent < count:
                    self.phase, self.deadline = _WRITE, self.context.loop.time() + self.context.timeouts.write
                    size = min(SENDFILE_SLICE, count - sent)
                    done = await loop.sendfile(self.transport, file, offset + sent, size, fallback=True)
                    sent += done
                    if done < size:
                        break  # end of file: the file shrank
            except (ConnectionError, RuntimeError) as error:
                if self.closed:
                    raise ClientDisconnected("client disconnected") from None
                raise ClientDisconnected(str(error)) from None
            finally:
                self._sendfile_task = None
                if self.phase == _WRITE:
                    self.phase, self.deadline = _APP, 0.0
        elif self.transport.get_extra_info("sslcontext") is None and _has_socket(self.transport):
            sent = await self._send_file_dup(file, offset, count)
        else:
            sent = await self._send_file_chunks(file, offset, count)
        if sent != count:
            error_log.error("file changed size while being sent; aborting the connection")
            self.abort()
            raise ClientDisconnected("file shorter than announced")

    async def _send_file_dup(self, file: Any, offset: int, count: int) -> int:
        """Zero-copy for loops without loop.sendfile (uvloop): sendfile(2) on a duplicate of
        the connection's descriptor, waiting for writability on the duplicate (the loop won't
        watch a descriptor its transport owns). The transport's buffer is flushed first so
        bytes stay in order, and nothing else writes until the file is out."""
        loop = self.context.loop
        out_fd = os.dup(self.transport.get_extra_info("socket").fileno())
        in_fd = file.fileno()
        sent = 0
        self._sendfile_task = asyncio.current_task()
        try:
            await self._wait_flushed(out_fd)
            while sent < count:
                if self.closed:
                    raise ClientDisconnected("client disconnected")
                self.phase, self.deadline = _WRITE, loop.time() + self.context.timeouts.write
                try:
                    done = os.sendfile(out_fd, in_fd, offset + sent, min(SENDFILE_SLICE, count - sent))
                except BlockingIOError:
                    await self._writable(out_fd)
                    continue
                except OSError:
                    raise ClientDisconnected("client disconnected") from None
                if done == 0:
                    break  # end of file: the file shrank
                sent += done
        finally:
            os.close(out_fd)
            self._sendfile_task = None
            if self.phase == _WRITE:
                self.phase, self.deadline = _APP, 0.0
        return sent

    async def _writable(self, fd: int) -> None:
        waiter: asyncio.Future[None] = self.context.loop.create_future()
        self.context.loop.add_writer(fd, _set_result_once, waiter)
        try:
            await waiter
        finally:
            self.context.loop.remove_writer(fd)

    async def _wait_flushed(self, fd: int) -> None:
        """Wait until the transport has handed all its buffered bytes to the kernel: each
        time the socket turns writable, the transport flushes in the same loop pass."""
        loop = self.context.loop
        while self.transport.get_write_buffer_size():
            if self.closed:
                raise ClientDisconnected("client disconnected")
            self.phase, self.deadline = _WRITE, loop.time() + self.context.timeouts.write
            await self._writable(fd)
            await asyncio.sleep(0)

    async def _send_file_chunks(self, file: Any, offset: int, count: int) -> int:
        fd = file.fileno()
        sent = 0
        while sent < count:
            chunk = os.pread(fd, min(FILE_CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            if self.closed:
                raise ClientDisconnected("client disconnected")
            self.transport.write(chunk)
            sent += len(chunk)
            await self.drain()
        return sent

    # ------------------------------------------------------------------ closing

    def _reject(self, error: RemoteProtocolError) -> None:
        """A request head broke the rules: answer with its status, then close gracefully."""
        if error_log.isEnabledFor(logging.INFO):
            error_log.info(
                "rejected request from %s: %d %s", _format_peer(self.client), error.status, error.message
            )
        if self.connection.response_state is ResponseState.IDLE and not self.closed:
            self.set_default_headers()
            self.write(error_response(self.connection, error.status, error.message))
            self._log_rejected(error.status)
        self.graceful_close()

    def graceful_close(self) -> None:
        """Half-close (FIN) after the response, discard input for a while, then close."""
        if self.phase in (_LINGER, _CLOSED):
            return
        self.exchange = None
        transport = self.transport
        if self.connection.client_eof or transport.is_closing():
            transport.close()
            self.phase = _LINGER
            return
        self.phase = _LINGER
        self.deadline = self.context.loop.time() + self.context.timeouts.linger
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:
                transport.close()
                return
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection now (a response cannot be completed correctly)."""
        if not self.closed:
            self.exchange = None
            self.phase = _LINGER
            self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is lost or the client closed its side (EOF): either way
        it will send nothing more (ASGI http.disconnect, as uvicorn and hypercorn on EOF)."""
        if self.closed or self.connection.client_eof:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self.context.loop.create_future()
        await asyncio.shield(self._closed_waiter)

    def on_deadline(self) -> None:
        """Called by the worker's sweep when ``deadline`` has passed."""
        phase = self.phase
        self.deadline = 0.0
        if phase == _HEAD:
            if self.connection.buffered and self.connection.response_state is ResponseState.IDLE:
                self._reject(RemoteProtocolError("request head not received in time", 408))
            else:
                self.graceful_close()
        elif phase == _KEEPALIVE:
            self.graceful_close()
        elif phase == _BODY:
            waiter = self._body_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(BodyError("request body not received in time", 408))
            self.body_error(RemoteProtocolError("request body not received in time", 408))
        elif phase == _WRITE:
            error_log.info("client %s too slow to read the response; aborting", _format_peer(self.client))
            task = self._sendfile_task
            if task is not None and not task.done():
                # Aborting the transport under loop.sendfile() trips asyncio (InvalidStateError
                # in _call_connection_lost) and strands the sendfile future on a closed socket,
                # so the handler and its open file would never finish. Cancel the task
                # instead: sendfile unwinds, then _run() aborts the connection.
                task.cancel()
            else:
                self.abort()
        elif phase == _LINGER:
            transport = self.transport
            if transport.get_write_buffer_size():
                transport.abort()
            else:
                transport.close()

    def cancel(self) -> None:
        """Graceful timeout expired: cancel the handler and drop the connection."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self.abort()

    def shutdown(self) -> None:
        """Graceful server shutdown: close if idle, else make this the last exchange.

        An idle keep-alive connection is closed at once (a client must be ready to retry on
        a kept-alive connection, RFC 9112 §9.3.1). A new connection that has sent nothing yet
        is different: its first request is likely already on the way, and closing it would
        throw that request away, so it gets ``DRAIN_FIRST_REQUEST_GRACE`` seconds to arrive
        and is then answered, with ``Connection: close``.
        """
        self.connection.close_after_response()
        if self.exchange is not None or self.connection.buffered:
            return
        if self.phase == _KEEPALIVE:
            self.graceful_close()
        elif self.phase == _HEAD:
            grace = self.context.loop.time() + DRAIN_FIRST_REQUEST_GRACE
            self.deadline = min(self.deadline, grace) if self.deadline else grace

    # ------------------------------------------------------------------ logging

    def _log_access(self, request: Request, status: int, size: int) -> None:
        if not self.context.access_log:
            return
        headers = request.headers
        referer = headers.get(b"referer", b"-") or b"-"
        agent = headers.get(b"user-agent", b"-") or b"-"
        host = self.client[0] if self.client else "-"
        line = (request.method + b" " + request.target + b" HTTP/" + request.http_version).decode(
            "latin-1"
        )
        access_log.info(
            '%s - - [%s] "%s" %d %s "%s" "%s"',
            host,
            self.context.log_time,
            _escape(line),
            status,
            size if size else "-",
            _escape(referer.decode("latin-1")),
            _escape(agent.decode("latin-1")),
        )

    def _log_rejected(self, status: int) -> None:
        if not self.context.access_log:
            return
        host = self.client[0] if self.client else "-"
        access_log.info('%s - - [%s] "-" %d - "-" "-"', host, self.context.log_time, status)


_EAGER = sys.version_info >= (3, 12)
#: Every request starts from the context the server was imported in (Context.copy() is O(1)),
#: never from the task that happened to parse it.
_BASE_CONTEXT = contextvars.copy_context()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def _format_peer(peer: tuple[str, int] | None) -> str:
    if peer is None:
        return "unix socket"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _set_result_once(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _has_socket(transport: asyncio.BaseTransport) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)


def _sendfile_native(loop: asyncio.AbstractEventLoop) -> bool:
    # asyncio's selector loop implements sendfile(2) for plain sockets; uvloop does not and
    # would fall back to reading the file into memory in one piece per call.
    return isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)
