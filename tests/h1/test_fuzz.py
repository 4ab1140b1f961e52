"""Property tests: whatever bytes arrive, in whatever pieces, the parser produces events or
raises RemoteProtocolError (never another exception, never a hang), and the verdict does not
depend on how the bytes were split. Strictly valid requests parse the same as h11 and
httptools."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.h1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Framing,
    Limits,
    RemoteProtocolError,
    Request,
    RequestState,
    ServerConnection,
)

from .helpers import feed, h11_summary, httptools_summary, summarize

#: SYNACK_FUZZ_EXAMPLES=20000 for a long local run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("SYNACK_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

LIMITS = st.sampled_from([
    Limits(),
    Limits(allow_bare_lf=True, allow_obs_fold=True),
    Limits(max_request_line=40, max_head_bytes=120, max_header_count=6, max_field_bytes=40,
           max_chunk_ext_bytes=16, max_trailer_bytes=40, max_body_bytes=30),
])


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({point % (len(data) + 1) for point in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def outcome(pieces: list[bytes], limits: Limits, eof: bool) -> dict[str, Any]:
    """Feed pieces; any exception other than RemoteProtocolError propagates (and fails)."""
    events, error, connection = feed(pieces, limits, eof)
    check_event_order(events, connection, error)
    return summarize(events, error) | {"count": sum(type(e) is Request for e in events)}


def check_event_order(events: list[Any], connection: ServerConnection, error: Any) -> None:
    expecting_head = True
    for event in events:
        kind = type(event)
        if expecting_head:
            assert kind in (Request, ConnectionClosed), events
            expecting_head = False
            if kind is Request and event.framing is Framing.LENGTH:
                assert event.content_length and event.content_length > 0
        else:
            assert kind in (Data, EndOfMessage), events
            if kind is Data:
                assert len(event.data) > 0
    if error is not None:
        assert connection.request_state is RequestState.ERROR
        assert not connection.keep_alive
        assert 400 <= error.status <= 505


# --- any bytes at all


@FUZZ
@given(data=st.binary(max_size=300), points=st.lists(st.integers(0, 300), max_size=8),
       limits=LIMITS, eof=st.booleans())
def test_any_bytes_parse_or_raise_remote_protocol_error(
    data: bytes, points: list[int], limits: Limits, eof: bool
) -> None:
    assert outcome(cut(data, points), limits, eof) == outcome([data], limits, eof)


# --- structured near-valid requests, then mutated

TOKENS = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"CONNECT", b"get", b"X"])
TARGETS = st.sampled_from([b"/", b"/a?b=c", b"*", b"http://h/x", b"h:80", b"/%00", b"//x"])
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/1"])
NAMES = st.sampled_from([
    b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"Upgrade",
    b"X-A", b"content-length", b"TRANSFER-ENCODING",
])
VALUES = st.sampled_from([
    b"h", b"", b"0", b"3", b"5", b"3, 3", b"+3", b"chunked", b"gzip, chunked", b"chunked, chunked",
    b"close", b"keep-alive", b"upgrade", b"100-continue", b"websocket", b" x ", b"a\tb",
])
CHUNK_SIZES = st.sampled_from([b"0", b"3", b"03", b"3;e=v", b"3 ", b"ffffffffffffffff", b"-1", b"g"])
TRAILERS = st.lists(st.sampled_from([b"T: v", b"T : v", b"T:\x00", b" folded"]), max_size=2)


@st.composite
def near_valid_requests(draw: st.DrawFn) -> bytes:
    line = b"%s %s %s" % (draw(TOKENS), draw(TARGETS), draw(VERSIONS))
    fields = [b"%s: %s" % (draw(NAMES), draw(VALUES)) for _ in range(draw(st.integers(0, 5)))]
    if draw(st.booleans()):
        fields.insert(0, b"Host: h")
    body = draw(st.sampled_from([b"", b"abc", b"abcde"]))
    if draw(st.booleans()):
        chunks = draw(st.lists(CHUNK_SIZES, max_size=3))
        body = b"".join(size + b"\r\nabc\r\n" for size in chunks) + b"0\r\n"
        body += b"".join(trailer + b"\r\n" for trailer in draw(TRAILERS)) + b"\r\n"
    return b"\r\n".join([line, *fields, b"", b""]) + body


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "lf"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\x00", b":", b",",
                                                b"\r\n", b"\r\n ", b"\xff", b"0"]))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 3))]
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "duplicate":
            end = data.find(b"\r\n", at)
            if end >= 0:
                start = data.rfind(b"\r\n", 0, at) + 2
                data[end:end] = b"\r\n" + data[start:end]
        elif kind == "lf":
            crlf = data.find(b"\r\n", at)
            if crlf >= 0:
                del data[crlf]
    return bytes(data)


@FUZZ
@given(data=st.data(), limits=LIMITS, eof=st.booleans())
def test_mutated_requests_parse_or_raise_remote_protocol_error(
    data: st.DataObject, limits: Limits, eof: bool
) -> None:
    raw = data.draw(near_valid_requests().flatmap(lambda base: mutated(base)))
    raw = raw * data.draw(st.integers(1, 2))  # sometimes pipelined
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    whole = outcome([raw], limits, eof)
    assert outcome(cut(raw, points), limits, eof) == whole
    assert outcome([raw[i : i + 1] for i in range(len(raw))], limits, eof) == whole


@FUZZ
@given(data=st.data())
def test_a_driver_loop_never_sees_another_exception(data: st.DataObject) -> None:
    # Serve pipelined mutated requests the way a driver would: respond, cycle, continue.
    raw = data.draw(near_valid_requests().flatmap(lambda base: mutated(base))) * 3
    connection = ServerConnection()
    connection.receive_data(raw)
    connection.receive_data(b"")
    try:
        for _ in range(200):
            event = connection.next_event()
            if event is NEED_DATA or type(event) is ConnectionClosed:
                return
            if event is PAUSED:
                return
            if type(event) is EndOfMessage:
                connection.send_response(200, [(b"x", b"y")], b"ok")
                if not connection.keep_alive:
                    return
                assert connection.next_cycle() is True
    except RemoteProtocolError:
        return
    raise AssertionError("no progress in 200 events")


# --- strictly valid requests agree with the oracles

SAFE_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1,
                     max_size=12).map(str.encode)
SAFE_VALUE = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=/.,-", max_size=20).map(
    lambda text: text.strip().encode()
)
SKIP_NAMES = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
              b"upgrade", b"te", b"trailer"}


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"PROPFIND"]))
    target = b"/" + draw(st.text("abcxyz019-._~%/?=&", max_size=30).map(str.encode))
    fields = [(name, value) for name, value in draw(st.lists(st.tuples(SAFE_TOKEN, SAFE_VALUE),
                                                             max_size=8))
              if name.lower() not in SKIP_NAMES]
    body = draw(st.binary(max_size=40))
    chunked = draw(st.booleans())
    fields = [(b"Host", b"example.com"), *fields]
    if chunked:
        fields.append((b"Transfer-Encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 10), max_size=4))
        encoded, rest = b"", body
        for size in sizes:
            piece, rest = rest[:size], rest[size:]
            if piece:
                encoded += b"%x\r\n%s\r\n" % (len(piece), piece)
        if rest:
            encoded += b"%X\r\n%s\r\n" % (len(rest), rest)
        encoded += b"0\r\n\r\n"
    else:
        fields.append((b"Content-Length", b"%d" % len(body)))
        encoded = body
    head = b"%s %s HTTP/1.1\r\n" % (method, target)
    head += b"".join(b"%s: %s\r\n" % pair for pair in fields) + b"\r\n"
    expected = {
        "method": method.decode(),
        "target": target.decode(),
        "headers": [[name.lower().decode("latin-1"), value.decode("latin-1")] for name, value in fields],
        "body": body.decode("latin-1"),
        "trailers": [],
    }
    return head + encoded, expected


@FUZZ
@given(case=valid_requests(), points=st.lists(st.integers(0, 1000), max_size=6))
def test_valid_requests_agree_with_h11_and_httptools(
    case: tuple[bytes, dict[str, Any]], points: list[int]
) -> None:
    raw, expected = case
    events, error, _ = feed(cut(raw, points))
    assert error is None, error
    ours = summarize(events, None)
    assert {field: ours[field] for field in expected} == expected
    assert h11_summary(raw) == expected
    assert httptools_summary(raw) == expected
