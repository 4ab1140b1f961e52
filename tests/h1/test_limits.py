"""Every Limits bound gives its status (RFC 9110 §5.4, §15.5; RFC 6585 §5), at its default and
at a small configured value, whether the oversized part arrives whole or never ends; the
connection then refuses to go on and the error response closes it."""

from __future__ import annotations

from typing import Any

import pytest

from synack.h1 import (
    NEED_DATA,
    PAUSED,
    Limits,
    RemoteProtocolError,
    Request,
    RequestState,
    ServerConnection,
    error_response,
    reason_phrase,
)

from .helpers import feed, split_bytes, splits, status_of

HOST = b"Host: h\r\n"
CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def request_line(length: int) -> bytes:
    """A request head whose request line is exactly ``length`` bytes long."""
    return b"GET /" + b"a" * (length - 14) + b" HTTP/1.1\r\n" + HOST + b"\r\n"


def filler_fields(length: int) -> bytes:
    """Field lines of about 1000 bytes, CRLF-separated, exactly ``length`` bytes in all."""
    lines = []
    while length > 1500:
        lines.append(b"X: " + b"v" * 997)
        length -= 1002
    lines.append(b"X: " + b"v" * (length - 3))
    return b"\r\n".join(lines)


def head_of(length: int) -> bytes:
    """A head of exactly ``length`` bytes (without its final CRLF CRLF)."""
    base = b"GET / HTTP/1.1\r\nHost: h\r\n"
    return base + filler_fields(length - len(base)) + b"\r\n\r\n"


def field_of(length: int) -> bytes:
    """A head with one field line of exactly ``length`` bytes."""
    return b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"v" * (length - 3) + b"\r\n\r\n"


def fields(count: int) -> bytes:
    """A head with exactly ``count`` fields (Host included)."""
    return b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: v\r\n" % i for i in range(count - 1)) + b"\r\n"


def chunk_line(length: int) -> bytes:
    return CHUNKED_HEAD + b"1;e=" + b"x" * (length - 4) + b"\r\nz\r\n0\r\n\r\n"


def trailers_of(length: int) -> bytes:
    """A chunked body whose trailer section is exactly ``length`` bytes (without CRLF CRLF)."""
    return CHUNKED_HEAD + b"0\r\n" + filler_fields(length) + b"\r\n\r\n"


def trailer_count(count: int) -> bytes:
    return CHUNKED_HEAD + b"0\r\n" + b"".join(b"T-%d: v\r\n" % i for i in range(count)) + b"\r\n"


def content_length(length: int) -> bytes:
    return b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % length


BOUNDS = [
    # (limit name, configured value, builder, status when one over)
    ("max_request_line", 64, request_line, 414),
    ("max_head_bytes", 96, head_of, 431),
    ("max_header_count", 5, fields, 431),
    ("max_field_bytes", 40, field_of, 431),
    ("max_chunk_ext_bytes", 32, chunk_line, 400),
    ("max_trailer_bytes", 48, trailers_of, 431),
    ("max_header_count", 3, trailer_count, 431),
]


@pytest.mark.parametrize(("name", "value", "build", "status"), BOUNDS)
def test_limit_at_and_over_configured_value(name: str, value: int, build: Any, status: int) -> None:
    limits = Limits(**{name: value})
    for way, pieces in splits(build(value)).items():
        assert status_of(pieces, limits) is None, f"{way}: exactly at the limit must pass"
    for way, pieces in splits(build(value + 1)).items():
        assert status_of(pieces, limits) == status, way


DEFAULTS = [
    (8 * 1024, request_line, 414),
    (16 * 1024, head_of, 431),
    (100, fields, 431),
    (8 * 1024, field_of, 431),
    (4 * 1024, chunk_line, 400),
    (16 * 1024, trailers_of, 431),
]


@pytest.mark.parametrize(("value", "build", "status"), DEFAULTS)
def test_default_limits(value: int, build: Any, status: int) -> None:
    assert status_of(build(value)) is None
    assert status_of(build(value + 1)) == status


def test_default_body_limit() -> None:
    one_gib = 1024 * 1024 * 1024
    _, error, _ = feed([content_length(one_gib)], eof=False)
    assert error is None
    assert status_of(content_length(one_gib + 1)) == 413
    assert status_of(CHUNKED_HEAD + b"%x\r\n" % (one_gib + 1)) == 413


ENDLESS = [
    # (prefix, repeated filler, limits, status): the terminator never comes, so the limit must
    # be enforced on the partial input instead of buffering without bound.
    (b"GET /", b"a", Limits(max_request_line=1000), 414),
    (b"GET / HTTP/1.1\r\nX: ", b"v", Limits(max_head_bytes=1000), 431),
    (b"GET / HTTP/1.1\r\n", b"X: v\r\n", Limits(max_head_bytes=1000), 431),
    (CHUNKED_HEAD + b"1;e=", b"x", Limits(max_chunk_ext_bytes=1000), 400),
    (CHUNKED_HEAD + b"1", b"0", Limits(max_chunk_ext_bytes=1000), 400),
    (CHUNKED_HEAD + b"0\r\nT: ", b"v", Limits(max_trailer_bytes=1000), 431),
    (CHUNKED_HEAD + b"0\r\n", b"T: v\r\n", Limits(max_trailer_bytes=1000), 431),
]


@pytest.mark.parametrize(("prefix", "filler", "limits", "status"), ENDLESS)
def test_endless_input_is_cut_off_near_the_limit(
    prefix: bytes, filler: bytes, limits: Limits, status: int
) -> None:
    connection = ServerConnection(limits)
    connection.receive_data(prefix)
    while connection.next_event() is not NEED_DATA:
        pass  # the Request of the chunked cases
    fed = 0
    with pytest.raises(RemoteProtocolError) as caught:
        for _ in range(10_000):
            connection.receive_data(filler * 10)
            fed += len(filler) * 10
            while connection.next_event() not in (NEED_DATA, PAUSED):
                pass
    assert caught.value.status == status
    assert fed <= 1000 + 10 * len(filler) + 3, "the limit was enforced late"


# --- after a limit (or any protocol error) the connection is finished


def test_error_state_is_final_and_the_error_response_closes() -> None:
    limits = Limits(max_request_line=64)
    connection = ServerConnection(limits)
    connection.receive_data(request_line(65) + request_line(20))
    with pytest.raises(RemoteProtocolError) as caught:
        connection.next_event()
    assert caught.value.status == 414
    assert connection.request_state is RequestState.ERROR
    assert not connection.keep_alive
    with pytest.raises(RemoteProtocolError):
        connection.next_event()  # nothing more is parsed, not even the valid second request
    response = error_response(connection, 414, "request line too long")
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 414 " + reason_phrase(414),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    assert body == b"414 " + reason_phrase(414) + b": request line too long\n"
    assert connection.next_cycle() is False


@pytest.mark.parametrize("status", [400, 413, 414, 417, 431, 501, 505])
def test_error_response_for_every_parser_status(status: int) -> None:
    connection = ServerConnection()
    response = error_response(connection, status, "bad \u00e9")  # non-ASCII message is escaped
    assert response.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nconnection: close\r\n" in response
    assert response.endswith(b": bad ?\n")
    assert not connection.keep_alive


def test_oversized_body_error_mid_stream_closes() -> None:
    connection = ServerConnection(Limits(max_body_bytes=3))
    connection.receive_data(CHUNKED_HEAD + b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    assert type(connection.next_event()) is Request
    assert connection.next_event().data == b"ab"
    with pytest.raises(RemoteProtocolError) as caught:
        connection.next_event()
    assert caught.value.status == 413
    response = error_response(connection, 413, "too large")
    assert b"\r\nconnection: close\r\n" in response and not connection.keep_alive


def test_byte_by_byte_limits_match_whole() -> None:
    # The boundary must not move with the split: the same bytes get the same verdict.
    limits = Limits(max_request_line=30, max_head_bytes=60)
    for size in range(20, 80):
        raw = head_of(size)
        assert status_of(raw, limits) == status_of(split_bytes(raw), limits), size
