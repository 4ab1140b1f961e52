"""Connection life cycle: pipelining, PAUSED, next_cycle, EOF, and the state enums."""

from __future__ import annotations

import pytest

from synack.h1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    RequestState,
    Response,
    ResponseState,
    ServerConnection,
)

from .helpers import split_bytes, splits

GET_A = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
POST_B = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
CHUNKED_C = b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
GET10_D = b"GET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
CLOSE_E = b"GET /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


def serve_all(pieces: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Act as a driver: answer each request, cycle while keep-alive, and return
    (target, body) per request."""
    connection = ServerConnection()
    served: list[tuple[bytes, bytes]] = []
    target, body = b"", b""
    for piece in [*pieces, b""]:
        connection.receive_data(piece)
        for _ in range(1000):
            event = connection.next_event()
            kind = type(event)
            if event is NEED_DATA or kind is ConnectionClosed:
                break
            if kind is Request:
                target, body = event.target, b""
            elif kind is Data:
                body += event.data
            elif kind is EndOfMessage:
                served.append((target, body))
                connection.send_response(200, [], b"ok")
                if not connection.keep_alive:
                    return served
                assert connection.next_cycle() is True
            else:
                raise AssertionError(f"unexpected {event!r}")
    return served


def test_pipelined_requests_at_every_split() -> None:
    stream = GET_A + POST_B + b"\r\n" + CHUNKED_C + GET10_D + CLOSE_E + GET_A
    expected = [(b"/a", b""), (b"/b", b"xyz"), (b"/c", b"xy"), (b"/d", b""), (b"/e", b"")]
    for way, pieces in splits(stream).items():
        assert serve_all(pieces) == expected, way


def test_paused_until_the_next_cycle() -> None:
    connection = ServerConnection()
    connection.receive_data(GET_A + POST_B)
    first = connection.next_event()
    assert type(first) is Request and first.target == b"/a"
    assert connection.request_state is RequestState.BODY
    assert type(connection.next_event()) is EndOfMessage
    assert connection.request_state is RequestState.DONE
    for _ in range(3):
        assert connection.next_event() is PAUSED  # the second request waits
    assert connection.buffered == len(POST_B)
    assert connection.next_cycle() is False  # no response yet
    connection.send(Response(200))
    assert connection.response_state is ResponseState.BODY
    assert connection.next_cycle() is False  # response not finished
    connection.send(EndOfMessage())
    assert connection.response_state is ResponseState.DONE
    assert connection.next_event() is PAUSED
    assert connection.next_cycle() is True
    assert connection.request is None
    assert (connection.request_state, connection.response_state) == (
        RequestState.IDLE, ResponseState.IDLE
    )
    second = connection.next_event()
    assert type(second) is Request and second.target == b"/b"
    assert connection.request is second
    assert connection.next_event() == Data(b"xyz")
    assert type(connection.next_event()) is EndOfMessage
    assert connection.next_event() is PAUSED


def test_next_cycle_needs_the_request_finished() -> None:
    connection = ServerConnection()
    connection.receive_data(POST_B[:-1])
    connection.next_event()
    connection.send_response(200, [], b"")
    assert connection.next_cycle() is False


def test_connection_close_ends_the_cycle() -> None:
    connection = ServerConnection()
    connection.receive_data(CLOSE_E + GET_A)
    assert type(connection.next_event()) is Request
    assert type(connection.next_event()) is EndOfMessage
    assert b"\r\nconnection: close\r\n" in connection.send_response(200, [], b"")
    assert not connection.keep_alive
    assert connection.next_cycle() is False


def test_an_error_in_the_second_request_does_not_spoil_the_first() -> None:
    connection = ServerConnection()
    connection.receive_data(GET_A + b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n")
    assert type(connection.next_event()) is Request
    assert type(connection.next_event()) is EndOfMessage
    connection.send_response(200, [], b"")
    assert connection.next_cycle() is True
    with pytest.raises(RemoteProtocolError) as caught:
        connection.next_event()
    assert caught.value.status == 400


# --- EOF


def test_eof_when_idle_is_a_clean_close() -> None:
    for pieces in ([b""], [b"\r\n", b""]):
        connection = ServerConnection()
        for piece in pieces:
            connection.receive_data(piece)
        assert type(connection.next_event()) is ConnectionClosed
        assert connection.request_state is RequestState.CLOSED
        assert type(connection.next_event()) is ConnectionClosed
        assert connection.client_eof and not connection.keep_alive


@pytest.mark.parametrize("partial", [b"G", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r"])
def test_eof_inside_a_head_is_an_error(partial: bytes) -> None:
    connection = ServerConnection()
    connection.receive_data(partial)
    assert connection.next_event() is NEED_DATA
    connection.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as caught:
        connection.next_event()
    assert caught.value.status == 400


def test_eof_after_a_complete_request_still_gets_a_response() -> None:
    connection = ServerConnection()
    connection.receive_data(GET_A)
    connection.receive_data(b"")
    assert type(connection.next_event()) is Request
    assert type(connection.next_event()) is EndOfMessage
    assert connection.next_event() is PAUSED
    wire = connection.send_response(200, [], b"bye")
    assert b"\r\nconnection: close\r\n" in wire
    assert connection.next_cycle() is False


def test_no_data_after_eof() -> None:
    connection = ServerConnection()
    connection.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        connection.receive_data(b"GET")


def test_need_data_byte_by_byte_until_the_head_ends() -> None:
    connection = ServerConnection()
    pieces = split_bytes(GET_A)
    for piece in pieces[:-1]:
        connection.receive_data(piece)
        assert connection.next_event() is NEED_DATA
    connection.receive_data(pieces[-1])
    assert type(connection.next_event()) is Request


def test_upgrade_leaves_the_following_bytes_untouched() -> None:
    connection = ServerConnection()
    upgrade = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    connection.receive_data(upgrade + b"\x81\x00frame")
    request = connection.next_event()
    assert type(request) is Request and request.upgrade == b"websocket"
    assert connection.trailing_data == (b"\x81\x00frame", False)


# --- skipping an unread body


def test_discard_buffered_body() -> None:
    connection = ServerConnection()
    connection.receive_data(POST_B + GET_A)
    assert type(connection.next_event()) is Request
    assert connection.discard_buffered_body() is True
    assert connection.request_state is RequestState.DONE
    connection.send_response(200, [], b"")
    assert connection.next_cycle() is True
    assert connection.next_event().target == b"/a"


def test_discard_buffered_body_needs_the_whole_body() -> None:
    connection = ServerConnection()
    connection.receive_data(POST_B[:-1])
    connection.next_event()
    assert connection.discard_buffered_body() is False
    assert connection.request_state is RequestState.BODY
    connection.receive_data(b"z")
    assert connection.discard_buffered_body() is True


def test_discard_buffered_body_stops_at_a_protocol_error() -> None:
    connection = ServerConnection()
    connection.receive_data(CHUNKED_C.replace(b"2\r\nxy", b"2\r\nxyz"))
    connection.next_event()
    assert connection.discard_buffered_body() is False
    assert connection.request_state is RequestState.ERROR
    assert not connection.keep_alive
