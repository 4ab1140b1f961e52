"""Body framing tables (RFC 9112 §6, §7): Content-Length, Transfer-Encoding, chunked coding,
trailers, and the body-size limit."""

from __future__ import annotations

import pytest

from synack.h1 import Data, EndOfMessage, Framing, Limits, Request

from .helpers import feed, first_request, parse, split_bytes, status_of

POST = b"POST / HTTP/1.1\r\nHost: h\r\n"


def post(*lines: bytes, body: bytes = b"", start: bytes = POST) -> bytes:
    return start + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def body_events(raw: bytes, limits: Limits | None = None) -> list[tuple[str, object]]:
    """The events after the Request, as ("data", bytes) / ("eom", trailers) pairs."""
    events = parse(raw, limits)
    assert type(events[0]) is Request
    result: list[tuple[str, object]] = []
    for event in events[1:]:
        if type(event) is Data:
            result.append(("data", event.data))
        else:
            assert type(event) is EndOfMessage
            result.append(("eom", list(event.trailers)))
    return result


# --- Content-Length (RFC 9110 §8.6, RFC 9112 §6.2, §6.3)

CONTENT_LENGTHS_ACCEPTED = [
    # (field lines, content_length, framing)
    ([b"Content-Length: 0"], 0, Framing.NONE),
    ([b"Content-Length: 3"], 3, Framing.LENGTH),
    ([b"Content-Length:  3 "], 3, Framing.LENGTH),
    ([b"Content-Length: 003"], 3, Framing.LENGTH),
    ([b"Content-Length: 3", b"Content-Length: 3"], 3, Framing.LENGTH),
    ([b"Content-Length: 3,3"], 3, Framing.LENGTH),
    ([b"Content-Length: 3 , 3", b"content-length: 03"], 3, Framing.LENGTH),
    ([], None, Framing.NONE),
]


@pytest.mark.parametrize(("lines", "length", "framing"), CONTENT_LENGTHS_ACCEPTED)
def test_content_length_accepted(lines: list[bytes], length: int | None, framing: Framing) -> None:
    request = first_request(post(*lines, body=b"abc"[: length or 0]))
    assert (request.content_length, request.framing) == (length, framing)


CONTENT_LENGTHS_REJECTED = [
    b"Content-Length: +3",
    b"Content-Length: -3",
    b"Content-Length: 3 3",
    b"Content-Length: 3a",
    b"Content-Length: 0x3",
    b"Content-Length: 3.0",
    b"Content-Length: 3e0",
    b"Content-Length: \xd9\xa3",  # ARABIC-INDIC DIGIT THREE: not an ASCII DIGIT
    b"Content-Length:",
    b"Content-Length: ,3",
    b"Content-Length: 3,",
    b"Content-Length: 3,4",
    b"Content-Length: 1234567890123456789",
    b"Content-Length: 99999999999999999999999999999999",
]


@pytest.mark.parametrize("line", CONTENT_LENGTHS_REJECTED)
def test_content_length_rejected(line: bytes) -> None:
    assert status_of(post(line, body=b"abc")) == 400


def test_differing_content_length_fields_rejected() -> None:
    assert status_of(post(b"Content-Length: 3", b"Content-Length: 4", body=b"abcd")) == 400


def test_content_length_body_is_delivered_exactly() -> None:
    raw = post(b"Content-Length: 5", body=b"hello")
    assert body_events(raw) == [("data", b"hello"), ("eom", [])]
    events, error, _ = feed(split_bytes(raw))
    assert error is None
    assert b"".join(event.data for event in events if type(event) is Data) == b"hello"


def test_content_length_leaves_the_next_request_in_the_buffer() -> None:
    events, error, connection = feed([post(b"Content-Length: 2", body=b"hiGET / HTTP/1.1")], eof=False)
    assert error is None
    assert [type(event) for event in events] == [Request, Data, EndOfMessage]
    assert events[1].data == b"hi"
    assert connection.trailing_data == (b"GET / HTTP/1.1", False)


def test_truncated_content_length_body_is_an_error_at_eof() -> None:
    events, error, _ = feed([post(b"Content-Length: 10", body=b"short")])
    assert error is not None and error.status == 400
    assert [type(event) for event in events] == [Request, Data]


# --- Transfer-Encoding (RFC 9112 §6.1, §6.3)

TRANSFER_ENCODINGS = [
    # (field lines, status or None for a chunked body)
    ([b"Transfer-Encoding: chunked"], None),
    ([b"Transfer-Encoding: CHUNKED"], None),
    ([b"Transfer-Encoding:  chunked\t"], None),
    ([b"Transfer-Encoding: chunked,"], None),
    ([b"Transfer-Encoding: , chunked"], None),
    ([b"Transfer-Encoding: chunked", b"Content-Length: 5"], 400),
    ([b"Content-Length: 5", b"Transfer-Encoding: chunked"], 400),
    ([b"Content-Length: 0", b"Transfer-Encoding: chunked"], 400),
    ([b"Transfer-Encoding: gzip, chunked"], 501),
    ([b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"], 501),
    ([b"Transfer-Encoding: chunked, gzip"], 400),
    ([b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"], 400),
    ([b"Transfer-Encoding: chunked, chunked"], 400),
    ([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], 400),
    ([b"Transfer-Encoding: gzip"], 400),
    ([b"Transfer-Encoding: identity"], 400),
    ([b"Transfer-Encoding: xchunked"], 400),
    ([b"Transfer-Encoding: chunkedx"], 400),
    ([b"Transfer-Encoding: chunked;q=1"], 400),
    ([b'Transfer-Encoding: "chunked"'], 400),
    ([b"Transfer-Encoding: chunk ed"], 400),
    ([b"Transfer-Encoding:"], 400),
    ([b"Transfer-Encoding: ,"], 400),
    ([b"Transfer-Encoding : chunked"], 400),
    ([b"Transfer-Encoding: \x0bchunked"], 400),
    ([b"Transfer-Encoding: chunked\x00"], 400),
    ([b"Transfer_Encoding: chunked"], "ignored"),  # a different field name, not framing
]


@pytest.mark.parametrize(("lines", "outcome"), TRANSFER_ENCODINGS)
def test_transfer_encoding(lines: list[bytes], outcome: int | str | None) -> None:
    raw = post(*lines, body=b"0\r\n\r\n")
    if outcome is None:
        request = first_request(raw)
        assert (request.framing, request.content_length) == (Framing.CHUNKED, None)
    elif outcome == "ignored":
        assert first_request(raw, eof=False).framing is Framing.NONE
    else:
        assert status_of(raw) == outcome


def test_transfer_encoding_in_http10_rejected() -> None:
    raw = post(b"Transfer-Encoding: chunked", body=b"0\r\n\r\n", start=b"POST / HTTP/1.0\r\n")
    assert status_of(raw) == 400


# --- chunked coding (RFC 9112 §7.1)

CHUNKED = post(b"Transfer-Encoding: chunked")

CHUNKED_BODIES = [
    # (body after the head, events)
    (b"0\r\n\r\n", [("eom", [])]),
    (b"3\r\nabc\r\n0\r\n\r\n", [("data", b"abc"), ("eom", [])]),
    (b"1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", [("data", b"a"), ("data", b"bc"), ("eom", [])]),
    (b"a\r\n0123456789\r\n0\r\n\r\n", [("data", b"0123456789"), ("eom", [])]),
    (b"A\r\n0123456789\r\n0\r\n\r\n", [("data", b"0123456789"), ("eom", [])]),
    (b"000003\r\nabc\r\n00\r\n\r\n", [("data", b"abc"), ("eom", [])]),
    (b"3;x=y\r\nabc\r\n0;z\r\n\r\n", [("data", b"abc"), ("eom", [])]),
    (b'3;x="a;b\\"c"\r\nabc\r\n0\r\n\r\n', [("data", b"abc"), ("eom", [])]),
    (b"3 ; x = y ; z\r\nabc\r\n0\r\n\r\n", [("data", b"abc"), ("eom", [])]),
    (b"2\r\n\r\n\r\n0\r\n\r\n", [("data", b"\r\n"), ("eom", [])]),
    (b"0\r\nX-A: 1\r\nx-b:2 \r\n\r\n", [("eom", [(b"x-a", b"1"), (b"x-b", b"2")])]),
    (b"1\r\nz\r\n0\r\nX-A: 1\r\n\r\n", [("data", b"z"), ("eom", [(b"x-a", b"1")])]),
]


@pytest.mark.parametrize(("body", "expected"), CHUNKED_BODIES)
def test_chunked_bodies(body: bytes, expected: list[tuple[str, object]]) -> None:
    assert body_events(CHUNKED + body) == expected


CHUNKED_REJECTED = [
    b"\r\nabc\r\n0\r\n\r\n",
    b"-3\r\nabc\r\n0\r\n\r\n",
    b"+3\r\nabc\r\n0\r\n\r\n",
    b"0x3\r\nabc\r\n0\r\n\r\n",
    b" 3\r\nabc\r\n0\r\n\r\n",
    b"3g\r\nabc\r\n0\r\n\r\n",
    b"\xd9\xa3\r\nabc\r\n0\r\n\r\n",
    b"00000000000000003\r\nabc\r\n0\r\n\r\n",  # 17 digits: over the overflow bound
    b"3\nabc\r\n0\r\n\r\n",
    b"3\rabc\r\n0\r\n\r\n",
    b"3;x\nabc\r\n0\r\n\r\n",
    b"3;\r\nabc\r\n0\r\n\r\n",
    b"3;=y\r\nabc\r\n0\r\n\r\n",
    b"3;x=\r\nabc\r\n0\r\n\r\n",
    b'3;x="y\r\nabc\r\n0\r\n\r\n',
    b"3;x=y z\r\nabc\r\n0\r\n\r\n",
    b"3;x\x00\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabcd\r\n0\r\n\r\n",
    b"3\r\nabcXY0\r\n\r\n",  # two junk bytes where the CRLF belongs must not be skipped
    b"3\r\nabc\n0\r\n\r\n",
    b"3\r\nabc\r0\r\n\r\n",
    b"3\r\nabc0\r\n\r\n",
    b"0\r\nX-A : 1\r\n\r\n",
    b"0\r\nX-A: 1\n\r\n",
    b"0\r\nX-A: 1\n\n",
    b"0\r\nX-A 1\r\n\r\n",
    b"0\r\nX-A: \x01\r\n\r\n",
    b"0\r\n X-A: 1\r\n\r\n",
]


@pytest.mark.parametrize("body", CHUNKED_REJECTED)
def test_chunked_rejected(body: bytes) -> None:
    raw = CHUNKED + body
    assert status_of(raw) == 400
    assert status_of(split_bytes(raw)) == 400


def test_chunk_size_overflow_bound() -> None:
    # Sixteen hex digits parse (and are then refused by the body limit, not by overflow).
    assert status_of(CHUNKED + b"ffffffffffffffff\r\n") == 413
    unbounded = Limits(max_body_bytes=None)
    events, error, _ = feed([CHUNKED + b"ffffffffffffffff\r\nxy"], unbounded, eof=False)
    assert error is None and events[-1] == Data(b"xy")
    _, error, _ = feed([CHUNKED + b"1ffffffffffffffff\r\nxy"], unbounded, eof=False)
    assert error is not None and error.status == 400


def test_chunked_trailers_keep_raw_names() -> None:
    events = parse(CHUNKED + b"0\r\nX-Sum: 1\r\nx-sum: 2\r\n\r\n")
    trailers = events[-1].trailers
    assert trailers.get_all(b"x-sum") == [b"1", b"2"]
    assert trailers.raw_items() == [(b"X-Sum", b"1"), (b"x-sum", b"2")]


def test_truncated_chunked_bodies_are_errors_at_eof() -> None:
    for cut in (b"3", b"3\r", b"3\r\nab", b"3\r\nabc", b"3\r\nabc\r\n", b"3\r\nabc\r\n0\r\n",
                b"3\r\nabc\r\n0\r\nX-A: 1\r\n"):
        events, error, _ = feed([CHUNKED + cut])
        assert error is not None and error.status == 400, cut
        assert all(type(event) is not EndOfMessage for event in events), cut


# --- the body-size limit (→ 413)


def test_content_length_over_the_limit_is_refused_at_head_time() -> None:
    limits = Limits(max_body_bytes=10)
    events, error, _ = feed([post(b"Content-Length: 11")], limits, eof=False)
    assert error is not None and error.status == 413
    assert events == []  # not even the Request: the head itself is refused
    assert first_request(post(b"Content-Length: 10", body=b"x" * 10), limits).content_length == 10
    assert first_request(post(b"Content-Length: 11", body=b"x" * 11), Limits(max_body_bytes=None))


def test_chunked_over_the_limit_is_refused_before_its_data_is_delivered() -> None:
    limits = Limits(max_body_bytes=10)
    raw = CHUNKED + b"6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n"
    for pieces in ([raw], split_bytes(raw)):
        events, error, _ = feed(pieces, limits, eof=False)
        assert error is not None and error.status == 413
        delivered = b"".join(event.data for event in events if type(event) is Data)
        assert delivered == b"abcdef"  # nothing of the chunk that crosses the limit


def test_chunked_limit_counts_the_running_total() -> None:
    limits = Limits(max_body_bytes=4)
    ok = CHUNKED + b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n0\r\n\r\n"
    assert body_events(ok, limits)[-1] == ("eom", [])
    over = CHUNKED + b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n1\r\ne\r\n0\r\n\r\n"
    assert status_of(over, limits) == 413
