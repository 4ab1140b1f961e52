"""Input held as received: a whole ``bytes`` read is parsed in place (no copy into the
buffer) while that is correct, and everything else goes through the buffer in order."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from synack.h1 import NEED_DATA, PAUSED, Data, EndOfMessage, Limits, Request, ServerConnection

POST = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
GET = b"GET /g HTTP/1.1\r\nHost: h\r\n\r\n"


def events(connection: ServerConnection) -> list[Any]:
    """Every event up to NEED_DATA/PAUSED, cycling to the next request after a GET/POST."""
    out: list[Any] = []
    while True:
        event = connection.next_event()
        if event is NEED_DATA:
            return out
        if event is PAUSED:
            connection.send_response(200, [], b"")
            assert connection.next_cycle() is True
            continue
        out.append(event)


def summary(items: list[Any]) -> list[Any]:
    result: list[Any] = []
    for event in items:
        if type(event) is Request:
            result.append(event.target)
        elif type(event) is Data:
            result.append(bytes(event.data))
        elif type(event) is EndOfMessage:
            result.append("end")
    return result


def test_a_body_read_on_its_own_is_handed_on_without_a_copy() -> None:
    connection = ServerConnection()
    connection.receive_data(POST)
    assert type(connection.next_event()) is Request
    body = b"he" + b"llo"[:3]  # a bytes object built at run time: identity is meaningful
    connection.receive_data(body)
    assert connection.buffered == 5
    event = connection.next_event()
    assert type(event) is Data and event.data is body
    assert type(connection.next_event()) is EndOfMessage


def test_a_mutable_read_is_copied_not_held() -> None:
    connection = ServerConnection()
    connection.receive_data(POST)
    connection.next_event()
    body = bytearray(b"hello")
    connection.receive_data(body)
    body[:] = b"other"  # the caller reuses its buffer for its next read
    event = connection.next_event()
    assert type(event) is Data and event.data == b"hello"


@pytest.mark.parametrize("pieces", [
    [POST + b"hello" + GET + POST + b"wor", b"ld"],
    [POST + b"hel", b"lo" + GET[:5], GET[5:] + POST, b"world"],
    [POST[:10], POST[10:] + b"hello" + GET + POST + b"world"],
    [b"\r\n" + POST + b"hello", GET + POST + b"w", b"o", b"rld"],  # a leading empty line
])
def test_held_and_buffered_input_keep_their_order(pieces: list[bytes]) -> None:
    expected = [b"/p", b"hello", "end", b"/g", "end", b"/p", b"world", "end"]
    connection = ServerConnection()
    seen: list[Any] = []
    for piece in pieces:
        connection.receive_data(piece)
        seen += events(connection)
    merged: list[Any] = []
    for item in summary(seen):  # bodies may come in several Data events
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes) and not merged[-1].startswith(b"/"):
            merged[-1] += item
        else:
            merged.append(item)
    assert merged == expected


def test_a_body_longer_than_declared_leaves_the_rest_for_the_next_request() -> None:
    connection = ServerConnection()
    connection.receive_data(POST + b"hello" + GET)
    assert summary(events(connection)) == [b"/p", b"hello", "end", b"/g", "end"]


def test_buffered_and_trailing_data_count_held_input() -> None:
    connection = ServerConnection()
    connection.receive_data(b"GET / HT")
    assert connection.buffered == 8
    assert connection.next_event() is NEED_DATA
    connection.receive_data(b"TP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nrest")
    assert type(connection.next_event()) is Request
    assert connection.buffered == 4
    assert connection.trailing_data == (b"rest", False)
    fresh = ServerConnection()
    fresh.receive_data(b"abc")
    assert fresh.buffered == 3 and fresh.trailing_data == (b"abc", False)


def test_a_chunked_body_after_a_held_head_is_read_from_the_buffer() -> None:
    connection = ServerConnection()
    connection.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + GET
    )
    assert summary(events(connection)) == [b"/", b"hello", "end", b"/g", "end"]


def test_a_bad_head_in_held_input_is_refused_like_a_buffered_one() -> None:
    from synack.h1 import RemoteProtocolError

    for raw in (b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", b"GET / HTTP/1.1\nHost: h\r\n\r\n"):
        statuses = []
        for pieces in ([raw], [raw[:3], raw[3:]]):
            connection = ServerConnection(Limits())
            with pytest.raises(RemoteProtocolError) as error:
                for piece in pieces:
                    connection.receive_data(piece)
                    connection.next_event()
            statuses.append(error.value.status)
        assert statuses[0] == statuses[1] == 400


def test_pipelined_requests_after_a_held_head_go_to_the_buffer_once() -> None:
    # Slicing the held bytes after every head would copy the rest of a long pipeline again
    # for each request (quadratic); the rest moves to the buffer once instead. Measured as
    # memory allocated while each event is parsed, which must not grow with the pipeline.
    count = 2000
    connection = ServerConnection()
    connection.receive_data(GET * count)
    assert type(connection.next_event()) is Request
    assert connection.buffered == len(GET) * (count - 1)  # (trailing_data would move it all)
    allocated, targets = 0, []
    tracemalloc.start()
    try:
        while True:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            event = connection.next_event()
            allocated += tracemalloc.get_traced_memory()[1] - before
            if event is NEED_DATA:
                break
            if event is PAUSED:
                connection.send_response(200, [], b"")
                assert connection.next_cycle() is True
            elif type(event) is Request:
                targets.append(event.target)
    finally:
        tracemalloc.stop()
    assert targets == [b"/g"] * (count - 1) and connection.buffered == 0
    # About 1.5 KiB per request here; copying the rest each time is about 28 KiB on average.
    assert allocated / count < 8 * 1024, f"{allocated / count:.0f} bytes allocated per request"
    # A body that is all of the rest is handed on as it came.
    posting = ServerConnection()
    posting.receive_data(POST + b"hel")
    assert type(posting.next_event()) is Request
    assert posting.buffered == 3 and posting.trailing_data == (b"hel", False)
    assert summary(events(posting)) == [b"hel"]
