"""HttpProtocol: bytes ⇄ ServerConnection ⇄ Exchange, deadlines, error answers and graceful close.

Per-connection state lives here; per-request state lives in the ``Exchange``, which reaches
this class only through the ``Channel`` methods it declares. Reading is pull-based: request
bodies are parsed only when the application asks for them, and reading pauses once unparsed
input passes a high-water mark, so memory per connection stays bounded.

Theory of operation. A connection is always in one *phase*, each with at most one deadline
(``_arm`` sets both; the worker's once-a-second sweep calls ``on_deadline``):

    HEAD ──request──▶ APP ⇄ BODY (app waits for body bytes)
                       ⇄ WRITE (app waits for the client to read)
    APP ──response complete──▶ FLUSH (transport above high water) ──▶ KEEPALIVE or HEAD
                           └──▶ LINGER (FIN sent, input discarded) ──▶ closed
    APP ──101──▶ UPGRADED (bytes go to a raw stream)

Writes respect backpressure everywhere: a finished response whose bytes are still queued
holds the next pipelined request back (FLUSH) until the client has read them, and no timer
cuts a response that is still flowing: write, flush and linger deadlines only fire after the
client took nothing for the whole write timeout. Every close that could leave client bytes
unread is graceful: the response, then FIN (``write_eof``), then input is read and discarded
until the client goes quiet (bounded in time, like nginx's lingering close), then close —
never a reset the client could see before reading its response.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import sys
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, Final, cast

from ..h1 import (
    ConnectionClosed,
    Framing,
    RemoteProtocolError,
    Request,
    ResponseState,
    ServerConnection,
    error_response,
)
from ..logs import access_line, error_log, format_peer, rejected_line
from . import sendfile
from .context import ServerContext
from .exchange import ANSWER_BATCH, BodyError, ClientDisconnected, Exchange, RawStream, TlsInfo
from .metrics import FIRST_BUCKET, GET_SLOTS, OTHER_SLOTS, SLOTS, bucket_slot
from .proxy import Forwarding
from .stream import HIGH_WATER, UpgradedStream

__all__ = ["HttpProtocol", "HIGH_WATER"]

#: Unparsed input above this (``stream.HIGH_WATER``, the same bound as for an upgraded
#: connection) pauses reading until the app consumes it (request bodies) or the current
#: response ends (pipelined requests).
#: Seconds a connection that has not sent its first request yet may still send it once the
#: server drains (see ``HttpProtocol.shutdown``).
DRAIN_FIRST_REQUEST_GRACE = 1.0
#: How often a response waiting for a slow client checks that the client still reads
#: (the worker's sweep runs once a second anyway).
WRITE_POLL = 1.0
#: Longest a lingering close keeps discarding input from a client that goes on sending
#: (nginx ``lingering_time``: 30 s). Each quiet spell of ``Timeouts.linger`` ends it earlier.
LINGER_TOTAL = 30.0

#: (client, server) addresses of a connection, as a PROXY protocol header tells them.
Origin = tuple[tuple[str, int] | None, tuple[str, int] | None]

# Phases, each with its own deadline (see the theory of operation above).
# (Final: the compiled build reads them as constants, not from the module's dict.)
_HEAD: Final = 0
_APP: Final = 1
_BODY: Final = 2
_WRITE: Final = 3
_FLUSH: Final = 4
_KEEPALIVE: Final = 5
_LINGER: Final = 6
_UPGRADED: Final = 7
_CLOSED: Final = 8
_FRAMING_NONE: Final = Framing.NONE
_RESPONSE_IDLE: Final = ResponseState.IDLE
_monotonic: Final = time.monotonic


class HttpProtocol(asyncio.Protocol):
    """One client connection: the driver's side of the ``Channel`` seam."""

    transport: asyncio.Transport

    def __init__(self, context: ServerContext, origin: Origin | None = None) -> None:
        self.context = context
        #: The client and server addresses a PROXY protocol header gave, if any.
        self.origin = origin
        self.loop = context.loop
        self.connection = ServerConnection(context.limits)
        self.exchange: Exchange | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = context.scheme
        #: What the TLS handshake settled (set in connection_made), or None.
        self.tls: TlsInfo | None = None
        #: Reads proxy headers into each exchange, when the peer is a trusted proxy.
        self.forwarding: Forwarding | None = None
        self.closed = False
        self.write_paused = False
        self.reading_paused = False
        self.phase = _HEAD
        self.deadline = 0.0
        #: The task blocked in a sendfile call, if any (see on_deadline).
        self.sendfile_task: asyncio.Task[Any] | None = None
        self._body_waiters: list[asyncio.Future[None]] = []
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        #: True while ``_next_request`` runs: a response completed synchronously inside it
        #: returns to that loop instead of recursing into the next request.
        self._dispatching = False
        #: True while ``_answer_now`` runs: the synchronous answer is tried at once.
        self._answering = False
        #: Write progress: the transport's buffered bytes at the last check, and when they last
        #: went down (a stall is measured from there).
        self._write_mark = 0
        self._write_since = 0.0
        self._linger_end = 0.0
        #: When the current request's head was taken (for the access log's duration).
        self.started = 0.0
        self._stream: UpgradedStream | None = None

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        context = self.context
        context.connections.add(self)
        if self.origin is None:
            self.client = _address(transport.get_extra_info("peername"))
            self.server = _address(transport.get_extra_info("sockname"))
        else:
            self.client, self.server = self.origin
        if context.tls is not None:
            self.tls = context.tls.describe(transport)
        forwarding = context.forwarding
        if forwarding is not None and (self.client is None or self.client[0] in forwarding.trust):
            self.forwarding = forwarding
        self._arm(_HEAD, context.timeouts.head)
        if error_log.isEnabledFor(logging.DEBUG):
            error_log.debug("connection open from %s", format_peer(self.client))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.phase = _CLOSED
        self.deadline = 0.0
        context = self.context
        context.connections.discard(self)
        disconnected = ClientDisconnected("client disconnected")
        for waiter in (*self._body_waiters, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(disconnected)
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        if self._stream is not None:
            self._stream.connection_lost()
        for callback in context.on_connection_lost:
            callback()
        if error_log.isEnabledFor(logging.DEBUG):
            error_log.debug("connection closed from %s", format_peer(self.client))

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        connection = self.connection
        if phase == _KEEPALIVE and self.exchange is None:
            # The usual read: the next request's head, whole. Taken in one call; anything
            # else (a partial or invalid head, a buffer not empty) goes the way below.
            request = connection.receive_request(data)
            if request is not None:
                # (Not dispatching: a request answered at once, within _start, goes on to any
                # input after it from finish(), with the head deadline, as _ready_for_next does.)
                self._start(request)
                return
        elif phase == _LINGER:
            self._linger_input()
            return
        elif phase == _UPGRADED:
            assert self._stream is not None
            self._stream.feed(data)
            return
        connection.receive_data(data)
        if self.exchange is None:
            if phase == _KEEPALIVE:
                # The first bytes of the next request: the head deadline runs from now. (Armed
                # only if the head is still incomplete afterwards: a whole request, the usual
                # case, moves on to APP at once.)
                self.phase = _HEAD
                self._next_request()
                if self.phase == _HEAD:
                    self._arm(_HEAD, self.context.timeouts.head)
            elif phase == _HEAD:
                self._next_request()
            else:  # FLUSH: the next request waits until the client has read this response
                if connection.buffered > HIGH_WATER:
                    self.pause_input()
        elif self._body_waiters:
            for waiter in self._body_waiters:  # (inline: once per body chunk)
                if not waiter.done():
                    waiter.set_result(None)
        elif connection.buffered > HIGH_WATER:
            self.pause_input()

    def eof_received(self) -> bool | None:
        phase = self.phase
        if phase == _LINGER:
            self.transport.close()  # flushes what is queued first
            return None
        if phase == _UPGRADED:
            assert self._stream is not None
            self.connection.receive_data(b"")  # (so a graceful close knows not to wait for it)
            self._stream.feed_eof()
            return True
        self.connection.receive_data(b"")
        closed_waiter = self._closed_waiter  # the client will send nothing more: wake wait_closed()
        if closed_waiter is not None and not closed_waiter.done():
            closed_waiter.set_result(None)
        if self.exchange is None:
            if phase in (_HEAD, _KEEPALIVE):
                self._next_request()
        elif self._body_waiters:
            self._wake_body_waiters()
        # Keep the write side open: the response may still be on its way. (Over TLS the
        # transport closes after the client's close_notify whatever is returned, and asyncio
        # warns if True is.)
        return True if self.tls is None else None

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.phase == _FLUSH:
            self._ready_for_next()

    # ------------------------------------------------------------------ deadlines

    def _arm(self, phase: int, seconds: float) -> None:
        """Enter ``phase`` with a deadline ``seconds`` from now (0: no deadline)."""
        self.phase = phase
        if seconds:
            clock = self.context.time  # (an attribute, then the call, as in finish())
            self.deadline = clock() + seconds
        else:
            self.deadline = 0.0

    def _arm_write(self, phase: int) -> None:
        """Enter a phase that waits for the client to read (WRITE, FLUSH): the deadline polls
        the client's progress every ``WRITE_POLL`` seconds and fires only once the client took
        nothing for the whole write timeout."""
        now = self.context.time()
        self.phase = phase
        self._write_mark = self.transport.get_write_buffer_size()
        self._write_since = now
        self.deadline = now + min(WRITE_POLL, self.context.timeouts.write)

    def _write_stalled(self, now: float) -> bool:
        """Whether the client took none of the queued response for the write timeout. If it
        is still within it, the deadline moves to the next poll."""
        size = self.transport.get_write_buffer_size()
        if size < self._write_mark:
            self._write_mark = size
            self._write_since = now
        until = self._write_since + self.context.timeouts.write
        if now >= until:
            return True
        self.deadline = min(until, now + WRITE_POLL)
        return False

    def on_deadline(self) -> None:
        """Called by the worker's sweep when ``deadline`` has passed."""
        phase = self.phase
        now = self.context.time()
        self.deadline = 0.0
        if phase == _HEAD:
            if self.connection.buffered and self.connection.response_state is _RESPONSE_IDLE:
                self._reject(RemoteProtocolError("request head not received in time", 408))
            else:
                self.graceful_close()
        elif phase == _KEEPALIVE:
            self.graceful_close()
        elif phase == _BODY:
            self._body_timed_out()
        elif phase in (_WRITE, _FLUSH):
            if self._write_stalled(now):
                self._write_timed_out()
        elif phase == _LINGER:
            self._linger_deadline(now)

    def _body_timed_out(self) -> None:
        error = BodyError("request body not received in time", 408)
        for waiter in self._body_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self.body_failed(RemoteProtocolError("request body not received in time", 408))

    def _write_timed_out(self) -> None:
        error_log.info("client %s too slow to read the response; aborting", format_peer(self.client))
        task = self.sendfile_task
        if task is not None and not task.done():
            # Aborting the transport under loop.sendfile() trips asyncio (InvalidStateError in
            # _call_connection_lost) and strands the sendfile future on a closed socket, so the
            # handler and its open file would never finish. Cancel the task instead: sendfile
            # unwinds, then _run() aborts the connection.
            task.cancel()
        else:
            self.abort()

    # ------------------------------------------------------------------ requests

    def _next_request(self) -> None:
        connection = self.connection
        self._dispatching = True
        try:
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
        finally:
            self._dispatching = False

    def _start(self, request: Request) -> bool:
        """Start handling ``request``. True when it was answered synchronously and input is
        waiting to be parsed (the caller loops instead of recursing, so a long pipeline of
        quick answers cannot exhaust the stack)."""
        connection = self.connection
        # (A request without a body leaves its EndOfMessage unread: next_cycle() skips it.)
        body_done = request.framing is _FRAMING_NONE
        self.phase = _APP
        self.deadline = 0.0
        context = self.context
        connection.default_headers = context.default_headers
        exchange = Exchange(
            self, connection, request, body_done, self.client, self.server, self.scheme, context.root_path
        )
        self.exchange = exchange
        context.requests += 1  # (for --max-requests)
        if context.timed:
            self.started = _monotonic()  # the access log's and the metrics' duration
        if request.forwarded and self.forwarding is not None:
            self.forwarding.apply(exchange)  # a trusted proxy names the client, scheme and host
        if context.shutting_down:
            connection.close_after_response()
        if context.respond_now is not None or (_EAGER and context.begin is None):
            if not self._answering:
                # The handler's first step (its synchronous answer, or on Python 3.12+ its task,
                # started eagerly) waits for the loop's next pass (see ``_answer_now``), with
                # every other one this pass read: one callback for all of them.
                answers = context.answers
                answers.append((self, exchange))
                if len(answers) == 1:
                    self.loop.call_soon(_answer_all, context)
                return False
        elif context.begin is None:
            # Python 3.11, a handler that is only a coroutine (an ASGI app), the common case:
            # its task, started lazily (on the next pass, too), as ``_dispatch`` would make it
            # here: ``_lazy_task`` inline, without the call.
            loop = self.loop
            if loop.get_task_factory() is None:
                self._task = _Task(self._run(exchange), loop=loop, name=_TASK_NAME, context=_BASE_CONTEXT.copy())
            else:
                self._task = loop.create_task(self._run(exchange), context=_BASE_CONTEXT.copy())
            return False
        return self._dispatch(exchange)

    def _dispatch(self, exchange: Exchange) -> bool:
        """Hand ``exchange`` to the handler: its synchronous answer, else ``begin``, else a
        task. True as for ``_start``."""
        context = self.context
        # Answered when the phase is HEAD again: finish() cleared self.exchange before
        # re-arming it. (Only the phase is read: the type checker takes self.exchange to still
        # hold ``exchange`` here, and compiled code would check that.)
        if context.respond_now is not None and self._respond_now(exchange):
            return self.phase == _HEAD
        begin = context.begin
        if begin is not None:
            # The handler answers later without a task (see ``Handler.begin``) and reports
            # the end through ``_settle``.
            try:
                begin(exchange, self._settle)
            except Exception as error:
                self._failed(exchange, error)
            return self.phase == _HEAD
        # The handler runs as a task, from a fresh contextvars context: a pipelined request is
        # started from inside the previous request's task, whose context variables it must not
        # inherit. The task starts on a pass after the read, as ``_answer_now`` explains: in
        # that pass already (``_answering``), on Python 3.12+ at once (eagerly), else lazily.
        # A task factory the app (or a tool such as an error tracker) installed makes it.
        loop = self.loop
        if self._answering and _EAGER and loop.get_task_factory() is None:
            task = _Task(  # type: ignore[call-arg]
                self._run(exchange), loop=loop, name=_TASK_NAME, eager_start=True, context=_BASE_CONTEXT.copy()
            )
        else:
            task = self._lazy_task(self._run(exchange))
        if task.done():  # finished already (started eagerly)
            return self.phase == _HEAD
        self._task = task
        return False

    def _lazy_task(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A request's task, to start on the loop's next pass, from a fresh context: made by
        the loop's task factory when the app installed one."""
        loop = self.loop
        if loop.get_task_factory() is None:
            return _Task(coroutine, loop=loop, name=_TASK_NAME, context=_BASE_CONTEXT.copy())
        return loop.create_task(coroutine, context=_BASE_CONTEXT.copy())

    def _answer_now(self, exchange: Exchange) -> None:
        """Dispatch ``exchange`` on the pass after the one that read its head, when its
        handler may answer synchronously (``respond_now``) or, on Python 3.12+, its task
        starts eagerly; then go on with pipelined requests, which this pass answers at once.

        Answering on a later pass than the read is the faster order under load, measured: a
        response written from inside the read callback (a synchronous answer, or a task
        started eagerly) cost a quarter of the throughput against a load generator on another
        core (ASGI hello on Python 3.12, wrk -c64: 53k req/s from a task started on the next
        pass, 39k eagerly; static 1 KiB +10-17 % from this deferral), in user and system time
        per request alike, most visibly in the kernel waking the client for each response.
        A pass of reads, then a pass of answers, keeps the client busy with one batch while
        the next is prepared. Started from here, an eager task keeps what it saves: ASGI hello
        on 3.12 takes 94.2k instructions per request, against 103.9k for a lazy task. (With
        one connection alone, the later pass cost 3-6 µs of latency: wrk -c1, p50 103 µs
        eagerly, 106-109 µs this way.)"""
        if self.exchange is not exchange:
            return  # aborted meanwhile
        self._answering = self._dispatching = True
        try:
            more = self._dispatch(exchange)
            self._dispatching = False
            if more:
                self._next_request()
        finally:
            self._answering = self._dispatching = False

    def _respond_now(self, exchange: Exchange) -> bool:
        try:
            respond_now = self.context.respond_now  # (an attribute, then the call, as in _run)
            return bool(respond_now(exchange))
        except ClientDisconnected:
            if not exchange.response_complete and self.exchange is exchange:
                self.abort()
            return True  # nothing more to do for this request
        except Exception:
            # The fast path is optional: a bug in it must not cost the request.
            error_log.exception("respond_now failed; answering through the handler")
            if exchange.bytes_written:
                self.abort()
                return True
            return False

    async def _run(self, exchange: Exchange, rest: Awaitable[None] | None = None) -> None:
        """The request's task: the handler (or, after ``Handler.begin``, the awaitable it
        settled with), then what its end means for the connection."""
        try:
            if rest is None:
                handle = self.context.handle  # (an attribute, then the call: LOAD_METHOD cannot specialise on it)
                rest = handle(exchange)
            await rest
            after = exchange.after_handler
            if after is not None:
                await after()
        except asyncio.CancelledError:
            self.abort()
            return
        except Exception as error:
            self._failed(exchange, error)
            return
        # (The usual end, a completed response, has nothing more to do: no call.)
        if self.exchange is exchange or self.phase == _UPGRADED:
            self._returned(exchange)

    def _settle(self, exchange: Exchange, outcome: Awaitable[None] | BaseException | None) -> None:
        """The end of a request taken on by ``Handler.begin``: as ``_run`` ends a task."""
        if outcome is None:
            if self.exchange is exchange or self.phase == _UPGRADED:
                self._returned(exchange)
        elif isinstance(outcome, Exception):
            self._failed(exchange, outcome)
        elif isinstance(outcome, BaseException):
            raise outcome  # (SystemExit, KeyboardInterrupt: the worker ends, as from a task)
        else:
            self._task = self._lazy_task(self._run(exchange, outcome))

    def _failed(self, exchange: Exchange, error: Exception) -> None:
        """The handler raised ``error``: a lost client or a bad body ends the exchange (the
        client has been answered if it could be); anything else is the app's fault."""
        if isinstance(error, (ClientDisconnected, BodyError)):
            if not exchange.response_complete and self.exchange is exchange:
                self.abort()
            return
        # Logged whatever the connection's state: an app (Starlette, FastAPI) may send its
        # own 500 and then raise for the server to log.
        self._log_app_error(exchange, error)
        if self.exchange is exchange:
            self._app_failed(exchange)

    def _returned(self, exchange: Exchange) -> None:
        """The handler returned: close an upgraded stream, or answer a response it left
        unfinished (a 500, or an abort once part of it went out)."""
        if self.phase == _UPGRADED and self._stream is not None and self._stream.exchange is exchange:
            self._stream.close()
        elif self.exchange is exchange and not exchange.response_complete and not self.closed:
            if exchange.bytes_written:
                error_log.error("application returned without completing the response to %s",
                                _request_line(exchange.head).decode("latin-1"))
                self.abort()
            else:
                error_log.error("application returned without sending a response to %s",
                                _request_line(exchange.head).decode("latin-1"))
                self._app_failed(exchange)

    def _log_app_error(self, exchange: Exchange, error: Exception) -> None:
        error_log.error(
            "exception in application while handling \"%s\" from %s",
            _request_line(exchange.head).decode("latin-1"),
            format_peer(self.client),
            exc_info=error,
        )

    def _app_failed(self, exchange: Exchange) -> None:
        """The app failed: a 500 if none of its response went out yet, else abort."""
        if not exchange.bytes_written:
            self.connection.abandon_response()
        self._answer_error(500, "the application failed", exchange.head)

    # ------------------------------------------------------------------ Channel: writing

    def gone(self) -> bool:
        return self.closed or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark (write deadline)."""
        if not self.write_paused:
            return
        if self.closed:
            raise ClientDisconnected("client disconnected")
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._drain_waiter = waiter
        previous_phase, previous_deadline = self.phase, self.deadline
        self._arm_write(_WRITE)
        try:
            await waiter
        finally:
            self._drain_waiter = None
            if self.phase == _WRITE:
                self.phase, self.deadline = previous_phase, previous_deadline

    def arm_write(self) -> None:
        self._arm_write(_WRITE)

    def settle_write(self) -> None:
        if self.phase == _WRITE:
            self.phase, self.deadline = _APP, 0.0

    async def send_file(self, file: Any, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset``; abort if the file came up short."""
        sent = await sendfile.send_file(self, file, offset, count)
        if sent != count:
            error_log.error("file changed size while being sent; aborting the connection")
            self.abort()
            raise ClientDisconnected("file shorter than announced")

    def finish(self, exchange: Exchange, last: bytes) -> None:
        """The exchange's response is complete (``last`` holds its final bytes)."""
        if last and not self.closed:
            self.transport.write(last)
        context = self.context
        if context.access_log:
            self._log_access(exchange.head, self.connection.response_status, exchange.bytes_sent,
                             exchange.client)
        metrics = context.metrics
        if metrics is not None:
            # Metrics.record, inlined for the common case (a response in the first duration
            # bucket): a method call is a tenth of the hot path's metrics cost.
            seconds = _monotonic() - self.started
            method = exchange.head.method
            slot = (GET_SLOTS if method == b"GET" else SLOTS.get(method, OTHER_SLOTS))[
                self.connection.response_status]
            if seconds > FIRST_BUCKET:
                slot = bucket_slot(slot, seconds)
            metrics.responses[slot] += 1
            metrics.sent += exchange.bytes_sent
            metrics.duration += seconds
            received = exchange.bytes_received
            if received:
                metrics.received += received
        if self.exchange is not exchange:
            return
        self.exchange = None
        if context.shutting_down or not self.connection.next_cycle():
            self.graceful_close()
        elif self.write_paused:
            # The response is still queued: hold the next request back until the client
            # has read it (pipelined requests must not pile responses up in memory).
            self._arm_write(_FLUSH)
        elif self.reading_paused or self.connection.input_waiting():
            self._ready_for_next()
        else:
            # The usual case, inline (``_ready_for_next`` in short): wait for the next request.
            self.phase = _KEEPALIVE
            clock = context.time  # (an attribute, then the call: LOAD_METHOD cannot specialise on it)
            self.deadline = clock() + context.timeouts.keep_alive

    def _ready_for_next(self) -> None:
        """The last response is out: wait for (or start) the next request."""
        if self.context.shutting_down:
            self.graceful_close()
            return
        connection = self.connection
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        if connection.buffered or connection.client_eof:
            # Part of the next request is here already: it gets the head deadline (a 408 if
            # it never completes), not the keep-alive one.
            self._arm(_HEAD, self.context.timeouts.head)
            if not self._dispatching:
                self._next_request()
        else:
            self._arm(_KEEPALIVE, self.context.timeouts.keep_alive)

    def upgrade(self, exchange: Exchange, head: bytes) -> RawStream:
        """Write the 101 ``head``; from now on the connection's bytes belong to the stream."""
        if self.context.metrics is not None:
            self.context.metrics.record(exchange.head.method, 101, 0, exchange.bytes_received, self.started)
        self.write(head)
        if self.context.access_log:
            self._log_access(exchange.head, 101, 0, exchange.client)
        trailing, eof = self.connection.trailing_data
        stream = UpgradedStream(self, exchange)
        self._stream = stream
        self.exchange = None
        self._arm(_UPGRADED, 0)
        if trailing:
            stream.feed(trailing)
        if eof:
            stream.feed_eof()
        if self.context.shutting_down:  # upgraded while the server drains: say so at once
            stream.shutdown()
        return stream

    # ------------------------------------------------------------------ Channel: reading

    async def wait_for_body(self) -> None:
        """Wait until more request bytes (or EOF) arrive, under the body-idle deadline.
        Several tasks may wait at once; each is woken."""
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if self.reading_paused:
            self.resume_input()
        waiter: asyncio.Future[None] = self.loop.create_future()
        waiters = self._body_waiters
        waiters.append(waiter)
        if self.phase == _APP:
            self._arm(_BODY, self.context.timeouts.body_idle)
        try:
            await waiter
        finally:
            waiters.remove(waiter)
            if not waiters and self.phase == _BODY:
                self.phase = _APP
                self.deadline = 0.0

    def _wake_body_waiters(self) -> None:
        for waiter in self._body_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def body_failed(self, error: RemoteProtocolError) -> None:
        """The request body broke the rules (or the limit): answer if possible, then close."""
        if self.closed or self.phase == _LINGER:
            return  # already answered (the app read again after the error) and closing
        error_log.info("bad request body from %s: %s", format_peer(self.client), error.message)
        exchange = self.exchange
        self._answer_error(error.status, error.message, exchange.head if exchange is not None else None)

    async def wait_closed(self) -> None:
        """Wait until the connection is lost or the client closed its side (EOF): either way
        it will send nothing more (ASGI http.disconnect, as uvicorn and hypercorn on EOF)."""
        if self.closed or self.connection.client_eof:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self.loop.create_future()
        await asyncio.shield(self._closed_waiter)

    def pause_input(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_input(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------------ closing

    def _reject(self, error: RemoteProtocolError) -> None:
        """A request head broke the rules: answer with its status, then close gracefully."""
        if error_log.isEnabledFor(logging.INFO):
            error_log.info(
                "rejected request from %s: %d %s", format_peer(self.client), error.status, error.message
            )
        self._answer_error(error.status, error.message, None)

    def _answer_error(self, status: int, message: str, request: Request | None) -> None:
        """The one error answer: ``status`` through the connection's normal ``send`` path
        if no response has started, then a graceful close; otherwise abort."""
        if self.closed or self.phase == _LINGER:
            return  # already answered (the app read again after the error) and closing
        connection = self.connection
        if connection.response_state is _RESPONSE_IDLE:
            connection.default_headers = self.context.default_headers
            self.write(error_response(connection, status, message))
            if request is not None:
                exchange = self.exchange
                self._log_access(request, status, 0, exchange.client if exchange is not None else self.client)
                if self.context.metrics is not None:
                    self.context.metrics.record(request.method, status, 0,
                                                exchange.bytes_received if exchange is not None else 0, self.started)
            else:
                if self.context.access_log:
                    custom = self.context.access_custom
                    if custom is not None:  # (JSON: a status field to query, not a message)
                        custom.rejected(self.client, self.context.log_time, status)
                    else:
                        self.context.access_write(rejected_line(self.client, self.context.log_time, status))
                if self.context.metrics is not None:
                    self.context.metrics.reject(status)
            self.graceful_close()
        else:
            self.abort()

    def graceful_close(self) -> None:
        """Half-close (FIN) after the response, discard input until the client goes quiet,
        then close. Queued response bytes still go out first, under the write timeout."""
        if self.phase in (_LINGER, _CLOSED):
            return
        self.exchange = None
        transport = self.transport
        now = self.context.time()
        self._linger_end = now + LINGER_TOTAL
        self._write_mark = transport.get_write_buffer_size()
        self._write_since = now
        self._arm(_LINGER, self.context.timeouts.linger)
        if transport.is_closing():
            return
        if self.connection.client_eof:
            transport.close()  # nothing more will arrive; the queued response is flushed first
            return
        if not transport.can_write_eof():
            # TLS: close_notify (RFC 8446 §6.1), TLS's own end of data, goes out after the
            # queued response; the transport then reads until the client's close_notify (at
            # most the linger timeout, see worker.py) before it closes the socket.
            transport.close()
            return
        try:
            transport.write_eof()  # sent by the transport once its buffer is flushed
        except OSError:
            transport.close()
            return
        self.resume_input()

    def _linger_input(self) -> None:
        # Discarded. While the response is still queued its own deadline rules; once it is
        # out, the close waits for a quiet spell of ``linger`` seconds (at most LINGER_TOTAL).
        if not self.transport.get_write_buffer_size():
            self.deadline = min(self.context.time() + self.context.timeouts.linger, self._linger_end)

    def _linger_deadline(self, now: float) -> None:
        transport = self.transport
        if not transport.get_write_buffer_size():
            transport.close()  # the client has had its response and went quiet (or took too long)
        elif self._write_stalled(now):
            transport.abort()  # the client stopped reading: the response cannot be delivered

    def abort(self) -> None:
        """Drop the connection now (a response cannot be completed correctly)."""
        if not self.closed:
            self.exchange = None
            self.phase = _LINGER
            self.deadline = 0.0
            self.transport.abort()

    def cancel(self) -> None:
        """Graceful timeout expired: cancel the handler and drop the connection."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self.abort()

    def shutdown(self, keep_idle: bool = False) -> None:
        """Graceful server shutdown: close if idle, else make this the last exchange.

        On a stop, an idle keep-alive connection is closed at once (a client must be ready to
        retry on a kept-alive connection, RFC 9112 §9.3.1). With ``keep_idle`` (a supervised
        worker retiring while others serve in its place: a reload, ``--max-requests``), it is
        left open instead: its next request is answered, with ``Connection: close``, or its
        keep-alive deadline closes it. Nothing races a request the client may be sending, and
        a TLS connection keeps the certificate it was opened with until then. A new
        connection that has sent nothing yet gets ``DRAIN_FIRST_REQUEST_GRACE`` seconds
        for its first request, which is likely already on the way, and is then answered,
        with ``Connection: close``.
        """
        if self._stream is not None:
            if not self.closed:
                self._stream.shutdown()  # an upgraded connection closes the way its protocol says
            return
        self.connection.close_after_response()
        if self.exchange is not None or self.connection.buffered:
            return
        if self.phase == _KEEPALIVE:
            if not keep_idle:
                self.graceful_close()
        elif self.phase == _HEAD:
            grace = self.context.time() + DRAIN_FIRST_REQUEST_GRACE
            self.deadline = min(self.deadline, grace) if self.deadline else grace

    def request_id(self, head: Request) -> str:
        """``X-Request-ID`` of ``head``: taken when the peer is a trusted proxy (``--forwarded-allow-ips``,
        as for the other proxy headers, or a PROXY protocol hop), else made (``server/request_id.py``)."""
        trusted = self.forwarding is not None or self.origin is not None
        return self.context.request_ids.for_request(head.headers, trusted)

    # ------------------------------------------------------------------ logging

    def _log_access(self, request: Request, status: int, size: int, client: tuple[str, int] | None) -> None:
        """The access-log entry for ``request``, as the client sent it: the connection's
        current request when it has one, since an adapter may have rewritten the exchange's
        head (a --mount takes its prefix off the path)."""
        if not self.context.access_log:
            return
        request = self.connection.request or request
        if self.context.access_custom is not None:
            self._log_custom(request, status, size, client)
            return
        headers = request.headers
        self.context.access_write(
            access_line(
                client,
                self.context.log_time,
                _request_line(request),
                status,
                size,
                headers.get(b"referer", b"-"),
                headers.get(b"user-agent", b"-"),
                int((_monotonic() - self.started) * 1_000_000),
            )
        )

    def _log_custom(self, request: Request, status: int, size: int, client: tuple[str, int] | None) -> None:
        """``--access-log-format`` / ``--log-format json``: the compiled ``logs.AccessFormat``."""
        custom, exchange = self.context.access_custom, self.exchange
        assert custom is not None
        custom(client, self.context.log_time, request, status, size,
               int((_monotonic() - self.started) * 1_000_000),
               exchange if exchange is not None and exchange.head is request else None)


def _answer_all(context: ServerContext) -> None:
    """The requests the last pass deferred (``_answer_now``), in the order their heads
    arrived: one batch of answers (``ANSWER_BATCH``)."""
    answers, context.answers = context.answers, []
    ANSWER_BATCH.number = next(_BATCH_NUMBERS)
    try:
        for protocol, exchange in answers:
            try:
                protocol._answer_now(exchange)
            except Exception:  # (as the loop would log a callback's): the others still go out
                error_log.exception("error while answering a request")
    finally:
        ANSWER_BATCH.number = 0


#: Numbers for ``ANSWER_BATCH``: unique, from 1 (``next`` on a count is atomic under the GIL).
_BATCH_NUMBERS: Final = itertools.count(1)


#: Tasks can start eagerly (Python 3.12+): done from ``_answer_all``, a pass after the read.
_EAGER: Final = sys.version_info >= (3, 12)
#: Each request's task is made directly, unless the loop has a task factory
#: (``loop.create_task`` adds a call, and under uvloop names the task only after making it),
#: and on Python 3.11 with a name: without one, 3.11 formats "Task-<n>" for every task (1.4k of
#: the 85k instructions a hello request took there); 3.12 and later make the default name
#: only when it is asked for.
_Task: Final = asyncio.Task
_TASK_NAME: Final = "synack-request" if sys.version_info < (3, 12) else None
#: Every request starts from the context the server was imported in (Context.copy() is O(1)),
#: never from the task that happened to parse it.
_BASE_CONTEXT: Final = contextvars.copy_context()


def _request_line(request: Request) -> bytes:
    return request.method + b" " + request.target + b" HTTP/" + request.http_version


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None
