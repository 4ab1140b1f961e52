"""The driver's timing, backpressure and dispatch rules, in process: a fake transport and a
manual clock (tests/server/harness.py), so nothing here sleeps or depends on the machine."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from synack.server.context import expire_deadlines
from synack.server.timeouts import Timeouts
from tests.server.harness import Harness, asgi, count_responses, run, settle

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def reply(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.body", "body": body})

    return app


# ---------------------------------------------------------------------- backpressure


def test_pipelined_flood_waits_while_the_client_does_not_read() -> None:
    # Issue 10 High #1: 2,000 pipelined requests for a 100 KB one-message body, never read.
    # Each finished response that is still queued holds the next request back.
    async def body() -> None:
        harness = Harness(asgi(reply(b"x" * 100_000)))
        protocol, transport = harness.connect()
        protocol.data_received(GET * 2000)
        await settle()
        assert count_responses(bytes(transport.queue)) == 1
        assert len(transport.queue) < 200_000
        # Once the client reads, every request is answered in turn.
        answered = 0
        for _ in range(5000):
            answered += count_responses(transport.take())
            await settle(3)
            if answered == 2000:
                break
        assert answered == 2000
        assert not transport.aborted

    run(body)


def test_pipelined_input_stops_being_read_while_a_response_is_held() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"x" * 100_000)))
        protocol, transport = harness.connect()
        for _ in range(40):  # 300 KB of requests, more than the input high-water mark
            protocol.data_received(GET * 250)
            await settle()
        assert not transport.reading
        assert count_responses(bytes(transport.queue)) == 1

    run(body)


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ],
    ids=["keep-alive", "close", "http/1.0"],
)
def test_one_piece_body_reaches_a_slow_steady_reader(request_head: bytes) -> None:
    # Issue 10 High #2: a 4 MB body in one message, read at 128 KiB/s (in fake time) by a client
    # with keep-alive and linger timeouts of 1 s: neither may cut the response while it flows.
    size = 4_000_000

    async def body() -> None:
        harness = Harness(asgi(reply(b"y" * size)), Timeouts(keep_alive=1, linger=1, write=5))
        protocol, transport = harness.connect()
        protocol.data_received(request_head)
        await settle()
        for _ in range(200):
            await harness.advance(0.5)
            transport.take(64 * 1024)
            if not transport.queue:
                break
        head, _, received = bytes(transport.received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert len(received) == size
        assert not transport.aborted
        # Then the connection ends the normal way (idle keep-alive, or the close after FIN).
        await harness.advance(1.5)
        await harness.advance(1.5)
        assert transport.ended and not transport.aborted

    run(body)


def test_a_stalled_reader_is_cut_after_the_write_timeout() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"y" * 1_000_000)), Timeouts(keep_alive=1, linger=1, write=5))
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        transport.take(64 * 1024)
        await harness.advance(4)
        assert not transport.aborted  # less than the write timeout without progress
        await harness.advance(2)
        assert transport.aborted

    run(body)


# ---------------------------------------------------------------------- deadlines


def test_started_pipelined_head_gets_the_head_timeout_not_keep_alive() -> None:
    # Issue 10 Low #9: request 1 arrives with the start of request 2.
    async def body() -> None:
        harness = Harness(asgi(reply(b"one")), Timeouts(head=10, keep_alive=5))
        protocol, transport = harness.connect()
        protocol.data_received(GET + b"GET /two HTTP/1.1\r\nHo")
        await settle()
        assert count_responses(transport.take()) == 1
        await harness.advance(6)  # past keep-alive, within the head timeout
        assert not transport.ended
        protocol.data_received(b"st: test\r\n\r\n")
        await settle()
        assert transport.take().startswith(b"HTTP/1.1 200")

    run(body)


def test_pipelined_head_never_completed_gets_408() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"one")), Timeouts(head=10, keep_alive=5))
        protocol, transport = harness.connect()
        protocol.data_received(GET + b"GET /two HTTP/1.1\r\nHo")
        await settle()
        transport.take()
        await harness.advance(11)
        assert transport.take().startswith(b"HTTP/1.1 408")

    run(body)


def test_half_closed_client_gets_every_pipelined_answer() -> None:
    # Issue 10 Low #10: three GETs then shutdown(SHUT_WR), as `nc -N` does.
    async def waits_then_replies(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0)  # (so the EOF arrives while the first request is in the app)
        await reply(b"ok")(scope, receive, send)

    async def body() -> None:
        harness = Harness(asgi(waits_then_replies))
        protocol, transport = harness.connect()
        protocol.data_received(GET * 3)
        protocol.eof_received()
        await settle()
        received = transport.take()
        assert count_responses(received) == 3
        *earlier, last = received.split(b"HTTP/1.1 ")[1:]
        assert all(b"connection: close" not in response for response in earlier)
        assert b"connection: close" in last
        assert transport.ended and not transport.aborted

    run(body)


def test_long_pipeline_of_immediate_answers_does_not_recurse() -> None:
    # Issue 10 High #3: answering 3,000 pipelined requests must not nest one call per
    # request (on Python 3.12+ a task that starts in the pass after the first read starts
    # eagerly, and may answer at once).
    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")))
        protocol, transport = harness.connect(high=1 << 30)
        protocol.data_received(GET * 3000)
        assert await _answered(transport, 3000) == 3000

    run(body)


async def _answered(transport: Any, expected: int) -> int:
    """Responses the transport received, waiting up to a loop pass per expected one (where
    tasks start lazily) and one more quarter."""
    answered = 0
    for _ in range(expected + expected // 4):
        answered += count_responses(transport.take())
        if answered == expected:
            break
        await asyncio.sleep(0)
    return answered


def _kept_alive(harness: Harness) -> tuple[Any, Any]:
    """A connection that has been answered once and waits for its next request (the reads
    after that take ``receive_request``, the driver's one-call path, when they can)."""
    protocol, transport = harness.connect(high=1 << 30)
    protocol.data_received(GET)
    return protocol, transport


def _files(tmp_path: Any) -> Any:
    """A handler that answers synchronously (``respond_now``): static files."""
    from synack.apps.static import StaticFiles, StaticSettings

    (tmp_path / "index.html").write_bytes(b"ok")
    return StaticFiles(str(tmp_path), StaticSettings())


class _AnswersInBegin:
    """A handler that answers within ``begin``, before it returns (``Handler.begin`` allows
    it): the driver then goes on to the next request in the same call."""

    def begin(self, exchange: Any, settle: Any) -> None:
        exchange.respond(200, [(b"content-type", b"text/plain")], b"ok")
        settle(exchange, None)

    async def __call__(self, exchange: Any) -> None:
        raise AssertionError("begin is used")


def _handler(kind: str, tmp_path: Any) -> Any:
    if kind == "asgi":
        return asgi(reply(b"ok"))
    if kind == "static":
        return _files(tmp_path)
    return _AnswersInBegin()


@pytest.mark.parametrize("handler", ["asgi", "static", "begin"])
def test_a_kept_alive_read_of_whole_heads_and_a_partial_one(handler: str, tmp_path: Any) -> None:
    # Two whole requests and the start of a third in one read, on a connection in keep-alive:
    # both answered in order, and the third's head gets the head timeout (408), not the
    # keep-alive one. (With static files the first is answered within the read itself.)
    async def body() -> None:
        harness = Harness(_handler(handler, tmp_path), Timeouts(head=10, keep_alive=5))
        protocol, transport = _kept_alive(harness)
        await settle()
        assert count_responses(transport.take()) == 1
        protocol.data_received(GET + GET + b"GET /three HTTP/1.1\r\nHo")
        await settle()
        assert count_responses(transport.take()) == 2
        await harness.advance(6)  # past keep-alive, within the head timeout
        assert not transport.ended
        await harness.advance(5)
        assert transport.take().startswith(b"HTTP/1.1 408")

    run(body)


@pytest.mark.parametrize("handler", ["asgi", "static", "begin"])
def test_a_long_kept_alive_pipeline_of_immediate_answers_does_not_recurse(handler: str, tmp_path: Any) -> None:
    async def body() -> None:
        harness = Harness(_handler(handler, tmp_path))
        protocol, transport = _kept_alive(harness)
        await settle()
        transport.take()
        protocol.data_received(GET * 3000)
        assert await _answered(transport, 3000) == 3000

    run(body)


@pytest.mark.parametrize("bad, status", [
    (b"GET / HTTP/1.1\r\nHost: test\r\nBad Name: x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: test\r\nX: " + b"y" * 70000 + b"\r\n\r\n", b"431"),
])
def test_a_kept_alive_read_of_a_bad_head_is_refused(bad: bytes, status: bytes) -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")))
        protocol, transport = _kept_alive(harness)
        await settle()
        assert count_responses(transport.take()) == 1
        protocol.data_received(bad)
        await settle()
        assert transport.take().startswith(b"HTTP/1.1 " + status)
        assert transport.ended

    run(body)


# ---------------------------------------------------------------------- request bodies


def test_concurrent_receive_calls_all_wake() -> None:
    # Issue 10 Medium #4: Starlette's is_disconnected() pattern while the body is awaited.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        reader = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(), 0.01)
        message = await reader
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})

    async def body() -> None:
        harness = Harness(asgi(app))
        protocol, transport = harness.connect()
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\n")
        await asyncio.sleep(0.05)  # the second receive() has timed out by now
        protocol.data_received(b"hello")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if transport.queue:
                break
        assert transport.take().endswith(b"\r\n\r\nhello")

    run(body)


# ---------------------------------------------------------------------- app failures


@pytest.mark.parametrize(
    "app",
    [
        reply(b"x", [(b"x-bad", b"one\r\nset-cookie: two")]),
        reply(b"short", [(b"content-length", b"10")]),
    ],
    ids=["crlf-in-header", "body-shorter-than-content-length"],
)
def test_bad_response_before_any_byte_gets_500(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Issue 10 Low #8: nothing was written yet, so the client gets a 500, not a silent close.
    async def body() -> None:
        harness = Harness(asgi(app))
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        received = transport.take()
        assert received.startswith(b"HTTP/1.1 500 ")
        assert b"set-cookie" not in received
        assert transport.ended and not transport.aborted

    with caplog.at_level(logging.ERROR, logger="synack.error"):
        run(body)
    assert any(record.exc_info for record in caplog.records)


def test_exception_after_the_response_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    # Issue 10: Starlette and FastAPI send their 500, then re-raise for the server to log.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("the real cause " + scope["path"])

    async def body() -> None:
        harness = Harness(asgi(app))
        protocol, transport = harness.connect()
        protocol.data_received(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        await settle()
        assert count_responses(transport.take()) == 2

    with caplog.at_level(logging.ERROR, logger="synack.error"):
        run(body)
    failures = [record for record in caplog.records if record.exc_info]
    assert [str(record.exc_info[1]) for record in failures if record.exc_info] == [
        "the real cause /first",
        "the real cause /second",
    ]
    assert "GET /first HTTP/1.1" in failures[0].getMessage()


def test_apps_own_date_and_server_win() -> None:
    # Issue 10 Low #13: one of each, the app's.
    async def body() -> None:
        app = reply(b"ok", [(b"Date", b"Mon, 02 Feb 2026 00:00:00 GMT"), (b"server", b"mine")])
        harness = Harness(asgi(app))
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        head = transport.take().partition(b"\r\n\r\n")[0].lower()
        assert head.count(b"\r\ndate: ") == 1 and b"date: mon, 02 feb 2026" in head
        assert head.count(b"\r\nserver: ") == 1 and b"server: mine" in head

    run(body)


# ---------------------------------------------------------------------- upgrade


def test_upgrade_hands_the_connection_to_a_raw_stream() -> None:
    async def handler(exchange: Any) -> None:
        stream = await exchange.upgrade([(b"upgrade", b"shout")])
        while data := await stream.read():
            stream.write(data.upper())
            await stream.drain()
        stream.close()

    async def body() -> None:
        harness = Harness(handler)
        protocol, transport = harness.connect()
        protocol.data_received(
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nhello "
        )
        await settle()
        protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")  # not parsed as HTTP any more
        await settle()
        protocol.eof_received()
        await settle()
        head, _, rest = transport.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nupgrade: shout" in head.lower()
        assert rest == b"HELLO GET / HTTP/1.1\r\n\r\n"
        assert transport.ended and not transport.aborted

    run(body)


# ---------------------------------------------------------------------- timing (from the socket suite)


def test_a_kept_alive_connection_gets_the_whole_head_timeout_for_its_next_head() -> None:
    # keep-alive 1 s, head 5 s: a second head that starts right after the first response and
    # takes 2.5 s to finish is served (its 5 s run from its first byte), not cut off by the
    # idle deadline armed when the first response went out.
    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")), Timeouts(keep_alive=1, head=5))
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        assert count_responses(transport.take()) == 1
        protocol.data_received(b"GET / HTTP/1.1\r\n")
        await harness.advance(2.5)
        protocol.data_received(b"Host: test\r\n\r\n")
        await settle()
        assert transport.take().startswith(b"HTTP/1.1 200 ")

    run(body)


@pytest.mark.parametrize("offset", [0.0, 0.01, 0.5, 0.99])
def test_timeouts_never_fire_early(offset: float) -> None:
    # Idle keep-alive and head timeouts of 1 s never close a connection sooner, whatever the
    # phase of the once-a-second sweep relative to the moment they were armed.
    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")), Timeouts(keep_alive=1, head=1))
        harness.now += offset
        idle, idle_transport = harness.connect()
        kept, kept_transport = harness.connect()
        kept.data_received(GET)
        await settle()
        kept_transport.take()
        for _ in range(3):  # sweeps just before the deadline
            harness.now += 0.33
            expire_deadlines(harness.context.connections, harness.now)
            await settle()
            assert not idle_transport.ended and not kept_transport.ended
        await harness.advance(1.0)
        assert idle_transport.ended and kept_transport.ended

    run(body)


def test_keep_alive_connection_in_use_is_not_cut_between_requests() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")), Timeouts(keep_alive=1))
        protocol, transport = harness.connect()
        for _ in range(20):  # 20 requests 0.6 s apart: 12 s in all, many sweeps
            protocol.data_received(GET)
            await settle()
            assert count_responses(transport.take()) == 1
            await harness.advance(0.6)
        assert not transport.ended

    run(body)


def test_slow_body_within_the_idle_timeout_is_read() -> None:
    # body_idle bounds each wait, not the whole body.
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": data})

    async def body() -> None:
        harness = Harness(asgi(echo), Timeouts(body_idle=3))
        protocol, transport = harness.connect()
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):  # 2 s apart: 6 s in all, each wait under 3 s
            await settle()
            await harness.advance(2)
            protocol.data_received(piece)
        await settle()
        assert transport.take().endswith(b"\r\n\r\nabcdef")

    run(body)


def test_idle_body_gets_408() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"never")), Timeouts(body_idle=3))

        async def reader(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await receive()

        harness.context.handler = asgi(reader)
        protocol, transport = harness.connect()
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nab")
        await settle()
        await harness.advance(2)
        assert not transport.queue
        await harness.advance(2)
        assert transport.take().startswith(b"HTTP/1.1 408 ")

    run(body)


# ---------------------------------------------------------------------- Handler.begin


class Later:
    """A handler taking requests on with ``begin``: each is answered on a later loop pass,
    the way its path says, then settled (see ``Handler.begin``)."""

    def __init__(self) -> None:
        self.begun = 0

    def begin(self, exchange: Any, settle: Any) -> None:
        self.begun += 1
        if exchange.head.path == b"/begin-raises":
            raise RuntimeError("begin failed for " + exchange.head.path.decode())
        asyncio.get_running_loop().call_soon(self.answer, exchange, settle)

    def answer(self, exchange: Any, settle: Any) -> None:
        path = exchange.head.path
        if path == b"/fails":
            settle(exchange, RuntimeError("failed on the loop for /fails"))
        elif path == b"/silent":
            settle(exchange, None)  # returned without a response
        elif path == b"/rest":
            settle(exchange, self.rest(exchange))
        elif path == b"/hang":
            pass  # never settles
        else:
            exchange.start_response(200, [(b"content-type", b"text/plain")])
            exchange.complete_response(b"answered " + path)
            settle(exchange, None)

    async def rest(self, exchange: Any) -> None:
        await asyncio.sleep(0)  # a real wait on the loop, in a task
        await exchange.send_head(200, [])
        await exchange.send_body(b"answered by a task", more=False)

    async def __call__(self, exchange: Any) -> None:
        raise AssertionError("the driver calls begin, not __call__")


def test_a_handler_with_begin_is_answered_without_a_task(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        handler = Later()
        harness = Harness(handler)
        protocol, transport = harness.connect()
        paths = [b"/a", b"/rest", b"/b", b"/fails"]
        protocol.data_received(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path for path in paths))
        await settle()
        received = transport.take()
        assert count_responses(received) == 4
        first, rest, second, failed = received.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200 ") and first.endswith(b"answered /a")
        assert rest.startswith(b"200 ") and rest.endswith(b"answered by a task")
        assert second.startswith(b"200 ") and second.endswith(b"answered /b")
        assert failed.startswith(b"500 ")  # the error it settled with is the app's fault
        assert transport.ended and not transport.aborted
        assert handler.begun == 4

    with caplog.at_level(logging.ERROR, logger="synack.error"):
        run(body)
    failures = [record for record in caplog.records if record.exc_info]
    assert [str(record.exc_info[1]) for record in failures if record.exc_info] == ["failed on the loop for /fails"]
    assert "GET /fails HTTP/1.1" in failures[0].getMessage()


@pytest.mark.parametrize("path", [b"/begin-raises", b"/silent"])
def test_a_begin_that_raises_or_settles_without_a_response_gets_500(path: bytes,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        harness = Harness(Later())
        protocol, transport = harness.connect()
        protocol.data_received(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
        await settle()
        assert transport.take().startswith(b"HTTP/1.1 500 ")
        assert transport.ended and not transport.aborted

    with caplog.at_level(logging.ERROR, logger="synack.error"):
        run(body)
    messages = [record.getMessage() for record in caplog.records]
    assert any(path.decode() in message for message in messages), messages


def test_cancel_aborts_a_request_begun_without_a_task() -> None:
    # The graceful timeout cancels what is left: a request taken on by begin has no task to
    # cancel, and its connection is aborted all the same.
    async def body() -> None:
        harness = Harness(Later())
        protocol, transport = harness.connect()
        protocol.data_received(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        await settle()
        assert not transport.queue and not transport.ended
        protocol.cancel()
        await settle()
        assert transport.aborted and protocol.closed

    run(body)


# ---------------------------------------------------------------------- entry points


class _Meta(type):
    def __call__(cls, *args: Any) -> Any:
        return ("made by the metaclass", args)


class _AppClass(metaclass=_Meta):
    def __call__(self, *args: Any) -> Any:
        return ("the instance's method", args)


class _CallableApp:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return ("called", args)


def test_the_entry_point_calls_what_calling_the_handler_calls() -> None:
    from synack.server.exchange import entry_point

    def function(*args: Any) -> Any:
        return ("function", args)

    class Static:
        __call__ = staticmethod(function)

    class FromClass:
        @classmethod
        def __call__(cls, *args: Any) -> Any:
            return (cls.__name__, args)

    instance = _CallableApp()
    app_instance = object.__new__(_AppClass)  # (calling the class goes to its metaclass)
    for handler in (function, instance, _AppClass, app_instance, len, Static(), FromClass()):
        assert entry_point(handler)(*(("x",) if handler is len else (1, 2))) == handler(
            *(("x",) if handler is len else (1, 2)))
    assert entry_point(function) is function  # (a function is called as it is)
    assert entry_point(instance) is not instance  # an instance: through its bound method
    assert instance.calls == 2


def test_a_handler_set_later_is_the_one_called() -> None:
    async def body() -> None:
        harness = Harness(asgi(reply(b"first")))
        harness.context.handler = asgi(reply(b"second"))
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        assert transport.take().endswith(b"second")

    run(body)


def test_an_app_class_patched_during_lifespan_startup_is_called_patched() -> None:
    # Error trackers initialised in startup wrap the framework's __call__ (Sentry does
    # Starlette.__call__ = ...): requests must go through the wrapper.
    from synack.apps.asgi import ASGIHandler

    class App:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                await receive()
                original = App.__call__

                async def patched(self: Any, scope: Any, receive: Any, send: Any) -> None:
                    if scope["type"] == "http":
                        await reply(b"patched")(scope, receive, send)
                    else:
                        await original(self, scope, receive, send)

                App.__call__ = patched  # type: ignore[method-assign]
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})
                return
            await reply(b"original")(scope, receive, send)

    async def body() -> None:
        handler = ASGIHandler(App(), lifespan="on")
        await handler.startup()
        harness = Harness(handler)
        protocol, transport = harness.connect()
        protocol.data_received(GET)
        await settle()
        assert transport.take().endswith(b"patched")
        await handler.shutdown()

    run(body)


def test_the_kept_alive_read_takes_the_one_call_path() -> None:
    from synack.h1 import ServerConnection

    taken: list[bool] = []
    original = ServerConnection.receive_request
    # The pure build's class can be spied on; the compiled one cannot be patched, and there
    # only the answers are checked.
    spied = hasattr(original, "__code__")

    def spy(self: Any, data: bytes) -> Any:
        request = original(self, data)
        taken.append(request is not None)
        return request

    async def body() -> None:
        harness = Harness(asgi(reply(b"ok")))
        protocol, transport = harness.connect()
        protocol.data_received(GET)  # (a new connection: its first read takes the usual calls)
        await settle()
        if spied:
            ServerConnection.receive_request = spy  # type: ignore[method-assign]
        try:
            protocol.data_received(GET)
            await settle()
        finally:
            if spied:
                ServerConnection.receive_request = original  # type: ignore[method-assign]
        assert count_responses(transport.take()) == 2
        assert taken == ([True] if spied else [])

    run(body)
