"""Drivers shared by the h1 tests: feed bytes to a ServerConnection (and to the h11 and
httptools oracles) and reduce what comes out to plain, comparable data."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from synack.h1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    Request,
    ServerConnection,
)

#: A well-formed request head used as the base of many table rows.
GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def latin1(value: bytes) -> str:
    return value.decode("latin-1")


def pairs(headers: Iterable[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[latin1(name), latin1(value)] for name, value in headers]


def drain(connection: ServerConnection, events: list[Any], budget: int) -> int:
    """Pull events until NEED_DATA / PAUSED / ConnectionClosed; returns the budget left.

    The budget bounds the loop so a parser that stops making progress fails the test
    instead of hanging it.
    """
    while True:
        budget -= 1
        if budget < 0:
            raise AssertionError(f"next_event made no progress; events so far: {events[-5:]!r}")
        event = connection.next_event()
        if event is NEED_DATA or event is PAUSED:
            return budget
        events.append(event)
        if type(event) is ConnectionClosed:
            return budget


def feed(
    pieces: Sequence[bytes], limits: Limits | None = None, eof: bool = True
) -> tuple[list[Any], RemoteProtocolError | None, ServerConnection]:
    """Feed ``pieces`` one ``receive_data`` call each (then EOF), collecting every event.

    Returns (events, error, connection); ``error`` is the RemoteProtocolError that ended
    parsing, or None.
    """
    connection = ServerConnection(limits or Limits())
    events: list[Any] = []
    budget = 16 + 4 * sum(len(piece) for piece in pieces)
    try:
        for piece in pieces:
            if not piece:
                continue  # b"" would mean EOF; an empty piece is just nothing arriving
            connection.receive_data(piece)
            budget = drain(connection, events, budget)
        if eof:
            connection.receive_data(b"")
            drain(connection, events, budget)
    except RemoteProtocolError as error:
        return events, error, connection
    return events, None, connection


def parse(data: bytes, limits: Limits | None = None, eof: bool = True) -> list[Any]:
    """Events for ``data`` fed whole; re-raises the RemoteProtocolError if there is one."""
    events, error, _ = feed([data], limits, eof)
    if error is not None:
        raise error
    return events


def status_of(data: bytes | Sequence[bytes], limits: Limits | None = None) -> int | None:
    """The status of the RemoteProtocolError ``data`` causes (None if it parses cleanly)."""
    pieces = [data] if isinstance(data, bytes) else list(data)
    _, error, _ = feed(pieces, limits)
    return None if error is None else error.status


def first_request(data: bytes, limits: Limits | None = None, eof: bool = True) -> Request:
    events = parse(data, limits, eof)
    assert type(events[0]) is Request, events
    return events[0]


def summarize(events: list[Any], error: RemoteProtocolError | None) -> dict[str, Any]:
    """Reduce one request's events to the fields the corpus json files record.

    Data events are joined, so different splits of the same bytes summarize equally.
    """
    result: dict[str, Any] = {}
    body = b""
    for event in events:
        kind = type(event)
        if kind is Request:
            if "method" in result:
                break  # only the first request is summarized
            result.update(
                method=latin1(event.method),
                target=latin1(event.target),
                version=latin1(event.http_version),
                headers=pairs(event.headers),
                keep_alive=event.keep_alive,
                framing=event.framing.value,
                content_length=event.content_length,
                expect_continue=event.expect_continue,
                upgrade=None if event.upgrade is None else latin1(event.upgrade),
                path=latin1(event.path),
                query=latin1(event.query),
                host=None if event.host is None else latin1(event.host),
            )
        elif kind is Data:
            body += bytes(event.data)
        elif kind is EndOfMessage:
            result["trailers"] = pairs(event.trailers)
            break
    result["body"] = latin1(body)
    if error is not None:
        result["status"] = error.status
    return result


# ---------------------------------------------------------------------------- splitting


def split_whole(data: bytes) -> list[bytes]:
    return [data]


def split_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [data]


def split_bytes(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_random(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def splits(data: bytes, seeds: Iterable[int] = range(5)) -> dict[str, list[bytes]]:
    """Every way the corpus replay cuts ``data``: whole, per line, per byte and at random."""
    ways = {"whole": split_whole(data), "lines": split_lines(data), "bytes": split_bytes(data)}
    if len(data) > 1:
        for seed in seeds:
            ways[f"random{seed}"] = split_random(data, seed)
    return ways


# ---------------------------------------------------------------------------- oracles


def h11_summary(data: bytes) -> dict[str, Any] | None:
    """What h11 makes of ``data`` (method, target, headers, body, trailers), or None if it
    rejects the bytes or never completes a request."""
    import h11

    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    result: dict[str, Any] = {}
    body = b""
    try:
        for _ in range(16 + 4 * len(data)):
            event = connection.next_event()
            if type(event) is h11.Request:
                result.update(
                    method=latin1(event.method),
                    target=latin1(event.target),
                    headers=pairs(event.headers),
                )
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                result.update(body=latin1(body), trailers=pairs(event.headers))
                return result
            else:
                return None  # NEED_DATA, PAUSED or ConnectionClosed before a full request
    except h11.RemoteProtocolError:
        return None
    raise AssertionError("h11 made no progress")


class _HttptoolsRequest:
    def __init__(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.head_done = False
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        target = self.trailers if self.head_done else self.headers
        target.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def httptools_summary(data: bytes) -> dict[str, Any] | None:
    """What httptools (llhttp) makes of ``data``, or None if it rejects it or never
    completes a request (httptools has no way to signal EOF)."""
    import httptools

    request = _HttptoolsRequest()
    parser = httptools.HttpRequestParser(request)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass  # llhttp stops after a complete Upgrade / CONNECT request head
    except httptools.HttpParserError:
        return None
    if not request.complete:
        return None
    return {
        "method": latin1(parser.get_method()),
        "target": latin1(request.target),
        "headers": pairs(request.headers),
        "body": latin1(request.body),
        "trailers": pairs(request.trailers),
    }
