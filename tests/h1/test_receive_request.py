"""``ServerConnection.receive_request``: ``receive_data`` then ``next_event`` in one call, for
a connection that waits for a request and is sent a whole head. Whatever it is given, it
either takes the request (and the connection is then in exactly the state the two calls
leave) or takes nothing, and the two calls give the verdict."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synack.h1 import (
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    Request,
    ServerConnection,
)

from .corpus_files import INVALID, VALID
from .test_head_paths import LIMITS, SETTINGS, facts, heads

GET = b"GET /g?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"


def state(connection: ServerConnection) -> dict[str, Any]:
    """What a later call can observe of the connection."""
    return {
        "request_state": connection.request_state,
        "response_state": connection.response_state,
        "keep_alive": connection.keep_alive,
        "continue_owed": connection.continue_owed,
        "buffered": connection.buffered,
        "client_eof": connection.client_eof,
        "request": None if connection.request is None else facts(connection.request),
    }


def rest(connection: ServerConnection, more: list[bytes]) -> list[Any]:
    """The events after the first request: its body, then (answered with 200) the
    requests that follow, with ``more`` fed one piece per pass."""
    out: list[Any] = []
    pieces = list(more)
    for _ in range(64):  # bounded: a parser that stops making progress fails here
        try:
            event = connection.next_event()
        except RemoteProtocolError as error:
            out.append(("error", error.status))
            return out
        if event is PAUSED:
            connection.send_response(200, [], b"")
            if not connection.next_cycle():
                out.append("closed")
                return out
            continue
        if event is NEED_DATA:
            if not pieces:
                return out
            connection.receive_data(pieces.pop(0))
            continue
        if type(event) is Request:
            out.append(facts(event))
        elif type(event) is Data:
            out.append(bytes(event.data))
        elif type(event) is EndOfMessage:
            out.append("end")
        else:
            out.append(type(event).__name__)
    raise AssertionError(f"no end after 64 events: {out[-5:]!r}")


def both_ways(data: Any, limits: Limits, more: list[bytes] = []) -> tuple[Any, bool]:
    """(the outcome, whether ``receive_request`` took the request); asserts that it is the
    outcome of ``receive_data`` + ``next_event``."""
    usual = ServerConnection(limits)
    usual.receive_data(data)
    try:
        first: Any = usual.next_event()
    except RemoteProtocolError as error:
        first = ("error", error.status)
    else:
        first = facts(first) if type(first) is Request else first
    usual_state = state(usual)
    usual_rest = rest(usual, more) if type(first) is dict else None

    fast = ServerConnection(limits)
    try:
        taken = fast.receive_request(data)
    except TypeError:
        # The compiled build refuses what is not bytes at the call (the signature says bytes);
        # the pure build takes nothing, as below.
        assert type(data) is not bytes
        taken = None
    if taken is None:
        assert state(fast) == state(ServerConnection(limits)), "took nothing, changed nothing"
        return first, False
    assert facts(taken) == first
    assert state(fast) == usual_state
    assert rest(fast, more) == usual_rest
    return first, True


@pytest.mark.parametrize("case", VALID + INVALID, ids=[case.name for case in VALID + INVALID])
def test_every_corpus_request_gets_the_usual_verdict(case: Any) -> None:
    both_ways(case.raw, case.limits)


@SETTINGS
@given(head=heads(), limits=LIMITS, body=st.sampled_from([b"", b"hello", b"he", b"hello" + GET, GET, GET[:9]]))
def test_generated_heads_with_what_follows_get_the_usual_outcome(head: bytes, limits: Limits, body: bytes) -> None:
    both_ways(head + b"\r\n\r\n" + body, limits, [b"llo", GET])


@pytest.mark.parametrize("data, expected", [
    (GET, {"target": b"/g?x=1", "body": []}),
    (POST + b"hello", {"target": b"/p", "body": [b"hello", "end"]}),
    (POST + b"he", {"target": b"/p", "body": [b"he", b"llo", "end"]}),
    (GET + GET, {"target": b"/g?x=1", "body": ["end", {"target": b"/g?x=1"}]}),
    (POST + b"hello" + GET[:7], {"target": b"/p", "body": [b"hello", "end"]}),
])
def test_the_usual_reads_are_taken_in_one_call(data: bytes, expected: dict[str, Any]) -> None:
    first, taken = both_ways(data, Limits(), [b"llo"])
    assert taken, "the common case must not fall back to the two calls"
    assert first["target"] == expected["target"]
    connection = ServerConnection()
    connection.receive_request(data)
    events = rest(connection, [b"llo"])
    for index, item in enumerate(expected["body"]):
        if isinstance(item, dict):
            assert events[index]["target"] == item["target"]
        else:
            assert events[index] == item


@pytest.mark.parametrize("data", [
    GET[:-2],  # the head is not complete
    b"\r\n" + GET,  # an empty line first
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",  # invalid: the usual path says why
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    bytearray(GET),  # a reused read buffer: receive_data copies it
    b"",
])
def test_anything_else_is_left_to_the_usual_calls(data: Any) -> None:
    _, taken = both_ways(data, Limits())
    assert not taken


def test_only_a_connection_waiting_with_nothing_buffered_takes_it() -> None:
    busy = ServerConnection()
    assert busy.receive_request(GET) is not None
    assert busy.receive_request(GET) is None  # a request is in progress
    busy.receive_data(b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n")  # held while it is
    busy.send_response(200, [], b"")
    assert busy.next_cycle() is True
    assert busy.receive_request(GET) is None  # the held request comes first
    busy.receive_data(GET)
    event = busy.next_event()
    assert type(event) is Request and event.target == b"/second"
    partial = ServerConnection()
    partial.receive_data(b"GET /first HTTP/1.1\r\nX-Long: ")
    assert partial.next_event() is NEED_DATA
    assert partial.receive_request(GET) is None  # bytes are buffered: they come first
    partial.receive_data(GET)
    event = partial.next_event()
    assert type(event) is Request and event.target == b"/first"
    closed = ServerConnection()
    closed.receive_data(b"")
    assert closed.receive_request(GET) is None  # after EOF (receive_data raises there)
    lenient = ServerConnection(Limits(allow_bare_lf=True))
    assert lenient.receive_request(GET) is None  # bare-LF heads take the careful search


def test_a_head_over_the_limit_is_left_to_the_usual_calls() -> None:
    limits = Limits(max_head_bytes=len(GET) - 5)
    first, taken = both_ways(GET, limits)
    assert not taken and first == ("error", 431)
