"""The response side: framing chosen per request, Content-Length enforced, chunked coding,
close-delimited HTTP/1.0 bodies, bodiless responses, 1xx, and header injection."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from synack.h1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    LocalProtocolError,
    Request,
    RequestState,
    Response,
    ResponseState,
    ServerConnection,
    reason_phrase,
)
from synack.h1.writer import status_line

GET11 = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KEEP = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
EXPECT = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"


def received(raw: bytes) -> ServerConnection:
    """A connection that has read the request head in ``raw`` and, if complete, its body."""
    connection = ServerConnection()
    connection.receive_data(raw)
    event = connection.next_event()
    assert type(event) is Request
    while type(event) is not EndOfMessage and event is not NEED_DATA:
        event = connection.next_event()
    return connection


def respond(connection: ServerConnection, status: int, headers: Any, *body: bytes,
            trailers: Any = ()) -> bytes:
    pieces = connection.send(Response(status, headers))
    for data in body:
        pieces += connection.send(Data(data))
    pieces += connection.send(EndOfMessage(Headers(trailers)))
    return b"".join(pieces)


def head_lines(response: bytes) -> list[bytes]:
    return response.partition(b"\r\n\r\n")[0].split(b"\r\n")


# --- framing of the response body

FRAMING = [
    # (request, headers, body pieces, exact wire bytes, keep_alive after)
    (GET11, [(b"content-length", b"5")], [b"he", b"llo"],
     b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", True),
    (GET11, [(b"x-a", b"1")], [b"he", b"", b"llo"],
     b"HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"
     b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", True),
    (GET11, [], [], b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", True),
    (GET11, [(b"Transfer-Encoding", b"chunked")], [b"x" * 26],
     b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1a\r\n" + b"x" * 26 + b"\r\n0\r\n\r\n",
     True),
    (GET10, [], [b"he", b"llo"], b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello", False),
    (GET10, [(b"transfer-encoding", b"chunked")], [b"hi"],
     b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhi", False),
    (GET10_KEEP, [(b"content-length", b"2")], [b"hi"],
     b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nhi", True),
    (GET10_KEEP, [], [b"hi"], b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhi", False),
    (GET11, [(b"connection", b"close"), (b"content-length", b"2")], [b"hi"],
     b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi", False),
    (HEAD11, [(b"content-length", b"5")], [b"hello"],
     b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", True),
    (HEAD11, [], [b"hello"], b"HTTP/1.1 200 OK\r\n\r\n", True),
    (GET11, [(b"content-length", b"5")], [], b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (GET11, [(b"content-length", b"5")], [],
     b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n", True),
]


@pytest.mark.parametrize(("request_bytes", "headers", "body", "wire", "keep_alive"), FRAMING)
def test_response_framing(
    request_bytes: bytes, headers: Any, body: list[bytes], wire: bytes, keep_alive: bool
) -> None:
    connection = received(request_bytes)
    status = int(wire[9:12])
    body_pieces = body if status not in (204, 304) else [b"ignored"]
    assert respond(connection, status, headers, *body_pieces) == wire
    assert connection.response_state is ResponseState.DONE
    assert connection.keep_alive is keep_alive


def test_send_response_adds_content_length() -> None:
    connection = received(GET11)
    assert connection.send_response(200, [(b"x", b"y")], b"hello") == (
        b"HTTP/1.1 200 OK\r\nx: y\r\ncontent-length: 5\r\n\r\nhello"
    )
    assert connection.next_cycle() is True


def test_send_response_for_head_and_204_has_no_body() -> None:
    assert received(HEAD11).send_response(200, [], b"hello") == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    )
    assert received(GET11).send_response(204, [], b"hello") == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_custom_reason_and_default_headers() -> None:
    connection = received(GET11)
    connection.default_headers = b"server: synack\r\n"
    wire = connection.send_response(299, [], b"", reason=b"Fine Thanks")
    assert wire == b"HTTP/1.1 299 Fine Thanks\r\nserver: synack\r\ncontent-length: 0\r\n\r\n"
    assert connection.response_status == 299


def test_chunked_trailers() -> None:
    connection = received(GET11)
    connection.send(Response(200, []))
    assert connection.response_chunked is True
    assert connection.body_remaining is None
    connection = received(GET11)
    wire = respond(connection, 200, [], b"abc", trailers=[(b"x-sum", b"1")])
    assert wire.endswith(b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n")
    assert connection.response_chunked is False  # writer released after the end


def test_data_buffers_pass_through_untouched() -> None:
    connection = received(GET11)
    connection.send(Response(200, [(b"content-length", b"4")]))
    view = memoryview(b"abcd")
    assert connection.body_remaining == 4
    pieces = connection.send(Data(view))
    assert pieces[0] is view
    assert connection.body_remaining == 0


# --- Content-Length is enforced (the application broke HTTP → LocalProtocolError)


def test_too_many_body_bytes() -> None:
    connection = received(GET11)
    connection.send(Response(200, [(b"content-length", b"3")]))
    connection.send(Data(b"ab"))
    with pytest.raises(LocalProtocolError):
        connection.send(Data(b"cd"))
    assert connection.response_state is ResponseState.ERROR
    assert not connection.keep_alive


def test_too_few_body_bytes() -> None:
    connection = received(GET11)
    connection.send(Response(200, [(b"content-length", b"3")]))
    connection.send(Data(b"ab"))
    with pytest.raises(LocalProtocolError):
        connection.send(EndOfMessage())
    assert connection.response_state is ResponseState.ERROR
    assert not connection.keep_alive
    assert connection.next_cycle() is False


@pytest.mark.parametrize("body", [b"ab", b"abcd"])
def test_send_response_length_mismatch(body: bytes) -> None:
    connection = received(GET11)
    with pytest.raises(LocalProtocolError):
        connection.send_response(200, [(b"content-length", b"3")], body)
    assert connection.response_state is ResponseState.ERROR


BAD_RESPONSE_HEADERS = [
    [(b"content-length", b"-1")],
    [(b"content-length", b"1.0")],
    [(b"content-length", b"")],
    [(b"content-length", b"1"), (b"content-length", b"2")],
    [(b"transfer-encoding", b"gzip")],
    [(b"transfer-encoding", b"gzip, chunked")],
    # header injection / response splitting
    [(b"x-a", b"1\r\nSet-Cookie: evil=1")],
    [(b"x-a", b"1\nx-b: 2")],
    [(b"x-a", b"1\rx")],
    [(b"x-a", b"\x00")],
    [(b"x-a", b" leading-space")],
    [(b"x-a\r\nx-b", b"1")],
    [(b"x a", b"1")],
    [(b"", b"1")],
    [(b"x-a:", b"1")],
    [("x-a", b"1")],
    [(b"x-a", "1")],
    [(b"x-a", 1)],
]


@pytest.mark.parametrize("headers", BAD_RESPONSE_HEADERS)
def test_bad_response_headers(headers: Any) -> None:
    connection = received(GET11)
    with pytest.raises(LocalProtocolError):
        connection.send(Response(200, headers))
    assert connection.response_state is ResponseState.ERROR
    assert not connection.keep_alive


def test_trailer_injection() -> None:
    connection = received(GET11)
    connection.send(Response(200, []))
    with pytest.raises(LocalProtocolError):
        connection.send(EndOfMessage(Headers([(b"x-sum", b"1\r\n\r\nHTTP/1.1 200 OK")])))


def test_reason_injection() -> None:
    with pytest.raises(LocalProtocolError):
        received(GET11).send(Response(200, [], reason=b"OK\r\nx-evil: 1"))


@pytest.mark.parametrize("status", [0, 99, 100, 101, 199, 1000, True])
def test_invalid_final_status(status: int) -> None:
    with pytest.raises(LocalProtocolError):
        received(GET11).send(Response(status, []))


@pytest.mark.parametrize("status", ["200", 200.0])
def test_a_status_that_is_not_an_int_is_refused(status: Any) -> None:
    # The pure build refuses it in send(); the compiled build already in the typed event.
    with pytest.raises((LocalProtocolError, TypeError)):
        received(GET11).send(Response(status, []))


@pytest.mark.parametrize("status", [100, 101, 103, 199, 200.0, 204.0, True, 1000])
def test_a_status_whose_line_is_cached_is_still_judged(status: Any) -> None:
    # Status lines are cached from 100 to 999, informational ones included: a final response
    # must still refuse 1xx (101 without an upgrade), and floats that hash like a cached int.
    for cached in (100, 101, 103, 199):
        assert status_line(cached).startswith(b"HTTP/1.1 %d " % cached)  # (now cached)
    received(GET11).send(InformationalResponse(103, []))
    respond(received(GET11), 200, [])
    respond(received(GET11), 204, [])
    with pytest.raises((LocalProtocolError, TypeError)):
        received(GET11).send_response(status, [], b"ok")
    with pytest.raises((LocalProtocolError, TypeError)):
        received(GET11).send(Response(status, []))


# --- ordering of outbound events


def test_outbound_order_is_enforced() -> None:
    connection = received(GET11)
    with pytest.raises(LocalProtocolError):
        connection.send(Data(b"x"))
    connection = received(GET11)
    with pytest.raises(LocalProtocolError):
        connection.send(EndOfMessage())
    connection = received(GET11)
    connection.send(Response(200, []))
    with pytest.raises(LocalProtocolError):
        connection.send(Response(200, []))
    connection = received(GET11)
    respond(connection, 200, [])
    with pytest.raises(LocalProtocolError):
        connection.send(Data(b"late"))
    with pytest.raises(LocalProtocolError):
        connection.send(object())


# --- 1xx: 100 Continue (RFC 9110 §10.1.1, §15.2)


def test_continue_is_sent_only_when_owed() -> None:
    connection = ServerConnection()
    connection.receive_data(EXPECT)
    assert type(connection.next_event()) is Request
    assert connection.continue_owed
    assert connection.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not connection.continue_owed
    assert connection.send_continue() == b""
    connection.receive_data(b"hi")
    assert connection.next_event() == Data(b"hi")
    assert type(connection.next_event()) is EndOfMessage
    connection.send_response(200, [], b"ok")
    assert connection.keep_alive  # the body was read: the connection can be reused
    assert connection.next_cycle() is True


@pytest.mark.parametrize("raw", [
    GET11,
    b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n",
])
def test_continue_not_owed(raw: bytes) -> None:
    connection = ServerConnection()
    connection.receive_data(raw)
    assert type(connection.next_event()) is Request
    assert not connection.continue_owed
    assert connection.send_continue() == b""


def test_final_response_instead_of_continue_closes() -> None:
    # RFC 9110 §10.1.1: the client may or may not send the body now; the bytes that follow
    # cannot be told apart from a new request, so this connection ends after the response.
    connection = ServerConnection()
    connection.receive_data(EXPECT)
    connection.next_event()
    wire = connection.send_response(417, [], b"")
    assert b"\r\nconnection: close\r\n" in wire
    assert not connection.continue_owed
    assert connection.send_continue() == b""
    assert not connection.keep_alive


def test_informational_responses() -> None:
    connection = ServerConnection()
    connection.receive_data(EXPECT)
    connection.next_event()
    wire = connection.send(InformationalResponse(103, [(b"link", b"</a.css>; rel=preload")]))
    assert wire == [b"HTTP/1.1 103 " + reason_phrase(103) + b"\r\nlink: </a.css>; rel=preload\r\n\r\n"]
    assert connection.continue_owed  # 103 does not answer the expectation
    assert connection.send(InformationalResponse(100)) == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert not connection.continue_owed
    for bad in (InformationalResponse(101), InformationalResponse(200),
                InformationalResponse(103, [(b"x", b"a\r\nb")])):
        with pytest.raises(LocalProtocolError):
            received(GET11).send(bad)
    connection = received(GET11)
    connection.send(Response(200, []))
    with pytest.raises(LocalProtocolError):
        connection.send(InformationalResponse(103))


def test_switching_protocols_only_for_upgrade_requests() -> None:
    upgrade = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    connection = received(upgrade)
    wire = connection.send_response(101, [(b"upgrade", b"websocket")])
    assert wire == b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    with pytest.raises(LocalProtocolError):
        received(GET11).send(Response(101, []))


def test_response_before_the_body_is_read_waits_for_the_body() -> None:
    # The core does not guess: the connection is reusable only once the rest of the request
    # body has been consumed (or the driver closes it). next_cycle skips what has arrived.
    connection = ServerConnection()
    connection.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel")
    connection.next_event()
    connection.send_response(200, [], b"early")
    assert connection.next_cycle() is False
    assert connection.request_state is RequestState.BODY
    assert connection.buffered == 0  # "hel" was skipped
    connection.receive_data(b"lo")
    assert connection.next_cycle() is True
    assert connection.request_state is RequestState.IDLE


def test_close_after_response() -> None:
    connection = received(GET11)
    connection.close_after_response()
    assert b"\r\nconnection: close\r\n" in connection.send_response(200, [], b"")
    assert not connection.keep_alive
    assert connection.next_cycle() is False


# ---------------------------------------------------------------------------- FieldBlock

from synack.h1 import FieldBlock  # noqa: E402

PLAIN_FIELDS = [(b"Content-Type", b"text/plain"), (b"ETag", b'"1-2-3"'), (b"content-length", b"5")]


@pytest.mark.parametrize("raw", [GET11, GET10, GET10_KEEP, HEAD11])
def test_a_field_block_frames_exactly_like_the_fields_it_holds(raw: bytes) -> None:
    body = b"" if raw is HEAD11 else b"hello"
    expected = received(raw).send_response(200, PLAIN_FIELDS, body)
    assert received(raw).send_response(200, FieldBlock(PLAIN_FIELDS), body) == expected
    assert respond(received(raw), 200, FieldBlock(PLAIN_FIELDS), body) == respond(received(raw), 200, PLAIN_FIELDS, body)


def test_a_field_block_still_enforces_its_content_length() -> None:
    connection = received(GET11)
    connection.send(Response(200, FieldBlock(PLAIN_FIELDS)))
    with pytest.raises(LocalProtocolError):
        connection.send(Data(b"too long by far"))


def test_a_field_block_without_length_is_chunked_or_sized_from_the_body() -> None:
    block = FieldBlock([(b"content-type", b"text/plain")])
    assert b"content-length: 2\r\n" in received(GET11).send_response(200, block, b"ok")
    assert b"transfer-encoding: chunked\r\n" in respond(received(GET11), 200, block, b"ok")
    assert list(block) == [(b"content-type", b"text/plain")] and len(block) == 1


@pytest.mark.parametrize("fields", BAD_RESPONSE_HEADERS + [
    # Framing and persistence are decided per response, so these never go in a block.
    [(b"transfer-encoding", b"chunked")],
    [(b"Connection", b"close")],
    [(b"content-length", b"5"), (b"content-length", b"5")],
])
def test_a_field_block_refuses_what_send_would_refuse_or_the_core_must_decide(fields: Any) -> None:
    with pytest.raises(LocalProtocolError):
        FieldBlock(fields)


# ---------------------------------------------------------------------------- field-line cache

def test_remembered_fields_are_still_checked_field_by_field() -> None:
    # A valid field is remembered; its look-alikes (other value, other types, a name that
    # only differs in bytes the cache must not fold) are each judged on their own.
    good = [(b"x-a", b"1")]
    first = received(GET11).send_response(200, good, b"ok")
    assert b"\r\nx-a: 1\r\n" in first
    assert received(GET11).send_response(200, good, b"ok") == first  # (now from the cache)
    for bad in ([(b"x-a", b"1\r\nSet-Cookie: evil=1")], [("x-a", b"1")], [(b"x-a", "1")],
                [("x-a", "1")], [(b"x-a ", b"1")]):
        with pytest.raises(LocalProtocolError):
            received(GET11).send_response(200, bad, b"ok")
    # Unhashable fields get the same precise refusal (the core takes bytes only), and
    # framing fields are never remembered.
    with pytest.raises(LocalProtocolError, match="must be bytes"):
        received(GET11).send_response(200, [(bytearray(b"x-b"), bytearray(b"2"))], b"ok")
    for look_alike in ([(b"x-a", memoryview(b"1"))], [(memoryview(b"x-a"), b"1")],
                       [(b"x-a", memoryview(bytearray(b"1")))]):  # (the last one is unhashable)
        connection = received(GET11)
        with pytest.raises(LocalProtocolError, match="must be bytes"):
            connection.send_response(200, look_alike, b"ok")
        assert not connection.keep_alive
    # (That framing fields keep their meaning however often they were sent is the next test.)


def test_a_remembered_field_keeps_its_framing_meaning() -> None:
    # Connection: close must close however often it was sent before.
    for _ in range(3):
        connection = received(GET11)
        connection.send_response(200, [(b"Connection", b"close")], b"ok")
        assert not connection.keep_alive


def _retained_after_distinct_fields(count: int, start: int, prefix: bytes = b"") -> int:
    """Bytes still allocated after ``count`` responses, each with a field never sent before."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(start, start + count):
        received(GET11).send_response(200, [(b"x-n", prefix + b"%d" % index)], b"")
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def test_the_field_line_cache_is_bounded() -> None:
    # Remembering every distinct field line would keep about 4 MiB for 20,000 short ones; a
    # bounded cache keeps at most one cache's worth. Long lines are not remembered at all (a
    # few hundred 8 KB lines would be 4 MiB).
    tracemalloc.start()
    try:
        _retained_after_distinct_fields(2_000, 0)  # warmed up: the cache holds what it holds
        short = _retained_after_distinct_fields(20_000, 1_000_000)
        long = _retained_after_distinct_fields(2_000, 2_000_000, prefix=b"v" * 8000)
    finally:
        tracemalloc.stop()
    assert short < 1024 * 1024, f"{short} bytes retained"
    assert long < 256 * 1024, f"{long} bytes retained"


# ----------------------------------------------------------------------- Content-Length cache

from synack.h1 import connection as _h1_connection  # noqa: E402

NOT_MODIFIED_GET = b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n"


@pytest.mark.parametrize("name", [b"content-length", b"Content-Length"])
def test_a_remembered_content_length_keeps_its_meaning(name: bytes) -> None:
    # The first response judges the field; the same pair later comes from the cache. Every
    # time, each framing decision is the same as on a cold cache.
    _h1_connection._LENGTH_FIELDS.clear()
    length = [(b"content-type", b"text/plain"), (name, b"5")]
    for attempt in range(3):
        whole = received(GET11).send_response(200, length, b"hello")
        assert whole.endswith(b"\r\ncontent-length: 5\r\n\r\nhello"), (attempt, whole)
        head_only = received(HEAD11).send_response(200, length, b"")
        assert b"\r\ncontent-length: 5\r\n" in head_only and head_only.endswith(b"\r\n\r\n")
        assert b"\r\ncontent-length: 5\r\n" in received(NOT_MODIFIED_GET).send_response(304, length, b"")
        assert b"content-length" not in received(GET11).send_response(204, length, b"").lower()
        # Streamed, the number still bounds the body.
        streamed = received(GET11)
        streamed.send(Response(200, length))
        with pytest.raises(LocalProtocolError):
            streamed.send(Data(b"too long by far"))
        # A body that is not the announced length is refused.
        with pytest.raises(LocalProtocolError):
            received(GET11).send_response(200, length, b"four")
        # Two lengths that disagree, each remembered by now, still conflict; two that agree
        # still pass.
        with pytest.raises(LocalProtocolError, match="conflicting"):
            received(GET11).send_response(200, [(name, b"5"), (b"content-length", b"6")], b"hello")
        received(GET11).send_response(200, [(b"content-length", b"6")], b"sixsix")
        assert received(GET11).send_response(200, [(name, b"5"), (name, b"5")], b"hello").endswith(b"hello")
        # Only exact bytes match: a look-alike is refused as on a cold cache.
        with pytest.raises(LocalProtocolError, match="must be bytes"):
            received(GET11).send_response(200, [(name, memoryview(b"5"))], b"hello")
    assert (name, b"5") in _h1_connection._LENGTH_FIELDS  # (so the later rounds did use it)
    # A value that is not digits is never remembered, however often sent.
    for _ in range(2):
        with pytest.raises(LocalProtocolError, match="invalid Content-Length"):
            received(GET11).send_response(200, [(name, b"+5")], b"hello")
    assert (name, b"+5") not in _h1_connection._LENGTH_FIELDS


@pytest.mark.parametrize("digits", [19, 4301])
def test_a_content_length_of_too_many_digits_is_refused_as_on_the_way_in(digits: int) -> None:
    # At most 18 digits, as the request parser allows (int() refuses over 4,300 on 3.11): a
    # LocalProtocolError, whatever the status or method, never a ValueError; never remembered.
    value = b"1" * digits
    for raw, status in ((GET11, 200), (HEAD11, 200), (NOT_MODIFIED_GET, 304), (GET11, 204)):
        for _ in range(2):
            connection = received(raw)
            with pytest.raises(LocalProtocolError, match="invalid Content-Length"):
                connection.send_response(status, [(b"content-length", value)], b"")
            assert not connection.keep_alive
    with pytest.raises(LocalProtocolError, match="invalid Content-Length"):
        FieldBlock([(b"content-length", value)])
    assert (b"content-length", value) not in _h1_connection._LENGTH_FIELDS
    # Eighteen digits still pass, and frame the body as announced.
    streamed = received(GET11)
    assert b"\r\ncontent-length: 999999999999999999\r\n" in b"".join(
        streamed.send(Response(200, [(b"content-length", b"9" * 18)])))


def test_a_field_block_length_frames_head_and_not_modified_like_the_fields() -> None:
    block = FieldBlock(PLAIN_FIELDS)
    for raw, status in ((HEAD11, 200), (NOT_MODIFIED_GET, 304), (GET11, 204)):
        assert received(raw).send_response(status, block, b"") == received(raw).send_response(status, PLAIN_FIELDS, b"")


def test_the_content_length_cache_is_bounded_and_apart_from_the_field_lines() -> None:
    # Sizes vary from response to response: 20,000 of them keep at most one cache's worth,
    # and do not push the other remembered fields out.
    received(GET11).send_response(200, [(b"x-kept", b"1")], b"")
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for size in range(20_000):
            received(GET11).send(Response(200, [(b"content-length", b"%d" % size)]))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 1024 * 1024, f"{retained} bytes retained"
    assert len(_h1_connection._LENGTH_FIELDS) <= _h1_connection._LENGTH_LINE_CACHE_SIZE
    assert (b"x-kept", b"1") in _h1_connection._FIELD_LINES
