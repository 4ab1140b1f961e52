"""Metrics: one worker's counters, their fixed binary layout, and ``GET /metrics`` in the
Prometheus text exposition format (version 0.0.4), written directly: the format is a few
lines of text, and the counters stay plain Python numbers on the hot path (``prometheus-client``
keeps its values behind locks and objects, and shares them across processes only through files).

Theory of operation. A worker counts in plain ints and floats (``record``, ``reject``): the
cheapest thing CPython does. Once a second, on the worker's clock tick,
and when it exits, ``publish`` copies them into a buffer of ``SIZE`` bytes: unsigned 64-bit
words in a fixed layout, then one double. Under the supervisor the buffer is an anonymous
shared mapping the arbiter created before forking the worker: the arbiter reads it, and
keeps reading it after the worker exited, so that its last counts stay counted
(``supervisor/metrics.py``). A single process renders from the same layout: one layout, one
renderer.

Why not write the shared words on each response: a ``memoryview`` increment costs CPython
about 2.5 times a list's, and a response touches three counters (callgrind on
``bench/micro_driver.py``, ASGI hello: +7.3 % instructions per request that way, +2.7 % this
way, for responses in the first duration bucket). The price is that a scrape under the
supervisor sees counts up to a second old, and a worker killed by SIGKILL loses what it
counted since its last tick.

* ``HttpProtocol.finish`` does what ``record`` does, inlined (with ``SLOTS``, ``GET_SLOTS``,
  ``OTHER_SLOTS``, ``FIRST_BUCKET`` and ``bucket_slot``): the method call alone was a tenth
  of the cost. ``record`` itself serves the rarer paths (``upgrade`` for a 101,
  ``_answer_error`` for a request whose body broke the rules), with the request body bytes
  the app read (``Exchange.bytes_received``). One slot per (method, status class, duration
  bucket) takes the whole response in one increment; the requests by method and status, and
  the histogram, are sums of those.
* ``_answer_error`` calls ``reject`` for a request refused before any app saw it.
* The gauges (open connections, requests in flight) are sampled when publishing.

Each word is stored whole (one 8-byte store) and every counter only grows, so a reader that
races a publication sees each counter at its old or its new value, never less than before.
"""

from __future__ import annotations

import asyncio
import operator
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from math import floor as _floor
from time import monotonic as _monotonic
from typing import Any

from ..logs import error_log

__all__ = ["Metrics", "Totals", "serve_metrics", "answer", "render", "too_large", "BUCKETS", "SIZE",
           "MAX_REQUEST_HEAD", "FIRST_BUCKET", "SLOTS", "GET_SLOTS", "OTHER_SLOTS", "bucket_slot"]

#: Upper bounds (seconds) of the request duration histogram's buckets; +Inf is implied.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The methods counted under their own name (RFC 9110 section 9.3, and PATCH: RFC 5789); any
#: other is counted as "other" (a client must not grow the label set without bound).
METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH", b"other")

# The layout: slot numbers of the 64-bit words.
_BUCKET_COUNT = len(BUCKETS) + 1
#: Status classes ``status // 100``: the final statuses are 200-999 (``h1`` refuses others),
#: 101 is an upgrade.
_CLASSES = 10
_RESPONSES = len(METHODS) * _CLASSES * _BUCKET_COUNT
#: The slot of a response's first duration bucket, by method and status (two lookups: cheaper
#: on the hot path than computing it).
SLOTS = {method: [(index * _CLASSES + status // 100) * _BUCKET_COUNT for status in range(_CLASSES * 100)]
          for index, method in enumerate(METHODS)}
OTHER_SLOTS = SLOTS.pop(b"other")
GET_SLOTS = SLOTS[b"GET"]
#: Refused requests by status, 400-599 (the driver only refuses with those).
_REJECTED = _RESPONSES
_REJECT_STATUSES = range(400, 600)
_RESPONSE_BYTES = _REJECTED + len(_REJECT_STATUSES)
_RECEIVED = _RESPONSE_BYTES + 1
_OPEN_CONNECTIONS = _RECEIVED + 1
_IN_FLIGHT = _OPEN_CONNECTIONS + 1
_GAUGES = (_OPEN_CONNECTIONS, _IN_FLIGHT)
_WORDS = _IN_FLIGHT + 1
#: Bytes of one worker's buffer: the words, then the seconds spent answering (a double).
SIZE = _WORDS * 8 + 8

FIRST_BUCKET = BUCKETS[0]
#: The bucket of a duration, by whole milliseconds below the last bound: every bound is a whole
#: number of milliseconds, so a table lookup replaces a search (a duration of exactly a bound
#: counts in the next bucket, which no clock can tell apart).
_BUCKET_AT_MS = [bisect_right(BUCKETS, milliseconds / 1000) for milliseconds in range(int(BUCKETS[-1] * 1000))]
_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Bytes a scrape's request head may have.
MAX_REQUEST_HEAD = 8192
_READ_TIMEOUT = 10.0


def bucket_slot(slot: int, seconds: float) -> int:
    """The slot of a response that took ``seconds`` (more than the first bucket's bound),
    from the slot of its first bucket."""
    try:
        return slot + _BUCKET_AT_MS[_floor(seconds * 1000.0)]
    except IndexError:
        return slot + _BUCKET_COUNT - 1


class Metrics:
    """One worker's counters; ``publish`` writes them into ``buffer`` (``SIZE`` bytes, private
    by default) for the renderer, or the arbiter, to read.

    Only the worker's loop thread counts: plain read-modify-writes."""

    __slots__ = ("buffer", "counts", "seconds", "responses", "rejected", "sent", "received", "duration")

    def __init__(self, buffer: Any = None) -> None:
        self.buffer: Any = bytearray(SIZE) if buffer is None else buffer
        view = memoryview(self.buffer)
        #: The published 64-bit words (see the layout above).
        self.counts = view[: _WORDS * 8].cast("Q")
        #: ``[0]``: the published seconds spent answering (the histogram's ``_sum``).
        self.seconds = view[_WORDS * 8 : SIZE].cast("d")
        #: Responses by (method, status class, duration bucket) slot.
        self.responses = [0] * _RESPONSES
        #: Refused requests by status - 400.
        self.rejected = [0] * len(_REJECT_STATUSES)
        #: Response body bytes.
        self.sent = 0
        #: Request body bytes the apps read.
        self.received = 0
        #: Seconds spent answering, summed.
        self.duration = 0.0

    def record(self, method: bytes, status: int, size: int, received: int, started: float) -> None:
        """One response is complete: ``size`` body bytes, after ``received`` request body bytes
        read, head taken at ``started`` (monotonic)."""
        seconds = _monotonic() - started
        if method == b"GET":  # (most requests: a comparison instead of a dict lookup)
            slot = GET_SLOTS[status]
        else:
            slot = SLOTS.get(method, OTHER_SLOTS)[status]
        if seconds > FIRST_BUCKET:  # (most responses fall in the first bucket)
            slot = bucket_slot(slot, seconds)
        self.responses[slot] += 1
        self.sent += size
        self.duration += seconds
        if received:
            self.received += received

    def reject(self, status: int) -> None:
        """A request was answered with ``status`` by the driver, before any app saw it."""
        if status in _REJECT_STATUSES:
            self.rejected[status - 400] += 1

    def publish(self, connections: Iterable[Any] = ()) -> None:
        """Write the counters into the buffer, with the gauges sampled from the open
        ``connections`` (those with an exchange are answering a request)."""
        open_now = list(connections)
        in_flight = sum(1 for connection in open_now if getattr(connection, "exchange", None) is not None)
        counts = self.counts
        # Word by word: each store is whole, where a bulk copy may go byte by byte.
        for slot, value in enumerate((*self.responses, *self.rejected, self.sent, self.received,
                                      len(open_now), in_flight)):
            counts[slot] = value
        self.seconds[0] = self.duration

    def release(self) -> None:
        """Drop the views on the buffer (a shared mapping can be closed only after)."""
        self.counts.release()
        self.seconds.release()


class Totals:
    """Counters summed over workers (plain ints), for rendering."""

    def __init__(self) -> None:
        self.counts = [0] * _WORDS
        self.seconds = 0.0

    def add(self, metrics: Metrics, gauges: bool = True) -> None:
        """Add a worker's counters; its gauges too only if ``gauges`` (an exited worker's
        connections are closed, while its counts stay counted)."""
        kept = [metrics.counts[slot] for slot in _GAUGES]
        self.counts = list(map(operator.add, self.counts, metrics.counts))
        if not gauges:
            for slot, value in zip(_GAUGES, kept):
                self.counts[slot] -= value
        self.seconds += metrics.seconds[0]

    def copy(self) -> Totals:
        totals = Totals()
        totals.counts = list(self.counts)
        totals.seconds = self.seconds
        return totals


def render(totals: Totals, restarts: Mapping[str, int] | None = None) -> bytes:
    """The text exposition of ``totals``, and of the worker ``restarts`` by cause (from a
    supervisor; None in a single process)."""
    counts = totals.counts
    lines: list[str] = []
    _family(lines, "synack_requests_total", "counter", "Responses completed, by method and status class.")
    buckets = [0] * _BUCKET_COUNT
    for index, method in enumerate(METHODS):
        for status_class in range(_CLASSES):
            start = (index * _CLASSES + status_class) * _BUCKET_COUNT
            by_bucket = counts[start : start + _BUCKET_COUNT]
            if any(by_bucket):
                buckets = list(map(operator.add, buckets, by_bucket))
                lines.append(f'synack_requests_total{{method="{method.decode()}",status="{status_class}xx"}}'
                             f" {sum(by_bucket)}")
    _family(lines, "synack_request_duration_seconds", "histogram",
            "Seconds from the request head to the end of the response.")
    cumulative = 0
    for bound, count in zip((*map(repr, BUCKETS), "+Inf"), buckets):
        cumulative += count
        lines.append(f'synack_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f"synack_request_duration_seconds_sum {totals.seconds!r}")
    lines.append(f"synack_request_duration_seconds_count {cumulative}")
    _family(lines, "synack_requests_in_flight", "gauge", "Requests being answered now (sampled each second).")
    lines.append(f"synack_requests_in_flight {counts[_IN_FLIGHT]}")
    _family(lines, "synack_open_connections", "gauge", "Client connections open now (sampled each second).")
    lines.append(f"synack_open_connections {counts[_OPEN_CONNECTIONS]}")
    _family(lines, "synack_response_body_bytes_total", "counter", "Response body bytes from the apps (as in the access log: a HEAD response's, though not sent).")
    lines.append(f"synack_response_body_bytes_total {counts[_RESPONSE_BYTES]}")
    _family(lines, "synack_request_body_bytes_total", "counter", "Request body bytes the apps read.")
    lines.append(f"synack_request_body_bytes_total {counts[_RECEIVED]}")
    _family(lines, "synack_rejected_requests_total", "counter",
            "Requests refused before reaching the app, by status.")
    for status in _REJECT_STATUSES:
        count = counts[_REJECTED + status - 400]
        if count:
            lines.append(f'synack_rejected_requests_total{{status="{status}"}} {count}')
    if restarts is not None:
        _family(lines, "synack_worker_restarts_total", "counter", "Workers replaced, by cause.")
        for cause, count in sorted(restarts.items()):
            lines.append(f'synack_worker_restarts_total{{cause="{cause}"}} {count}')
    return ("\n".join(lines) + "\n").encode("utf-8")


def _family(lines: list[str], name: str, kind: str, help: str) -> None:
    lines.append(f"# HELP {name} {help}")
    lines.append(f"# TYPE {name} {kind}")


async def serve_metrics(sock: socket.socket, metrics: Metrics, connections: Iterable[Any]) -> asyncio.Server:
    """A single process: serve ``GET /metrics`` on the listening socket ``sock`` (one
    response per connection)."""

    def exposition() -> bytes:
        metrics.publish(connections)
        totals = Totals()
        totals.add(metrics)
        return render(totals)

    async def answer_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            writer.write(answer(head, exposition))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except Exception:
            error_log.exception("metrics request failed")
        finally:
            writer.close()

    return await asyncio.start_server(answer_one, sock=sock, limit=MAX_REQUEST_HEAD)


def answer(head: bytes, exposition: Callable[[], bytes]) -> bytes:
    """The whole response (``connection: close``) to a request ``head`` (up to its blank
    line) on the metrics listener; ``exposition`` makes the body of ``GET /metrics``."""
    request_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(request_line) != 3:
        return _plain(400, b"Bad Request", b"malformed request line\n")
    method, target = request_line[0], request_line[1].split(b"?", 1)[0]
    if target != b"/metrics":
        return _plain(404, b"Not Found", b"only /metrics is served here\n")
    if method not in (b"GET", b"HEAD"):
        return _plain(405, b"Method Not Allowed", b"use GET\n", b"allow: GET, HEAD\r\n")
    body = exposition()
    return _head(200, b"OK", _CONTENT_TYPE, len(body)) + (b"" if method == b"HEAD" else body)


def too_large() -> bytes:
    """The answer to a request head longer than ``MAX_REQUEST_HEAD``."""
    return _plain(431, b"Request Header Fields Too Large", b"request head too large\n")


def _plain(status: int, reason: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return _head(status, reason, b"text/plain; charset=utf-8", len(body), extra) + body


def _head(status: int, reason: bytes, content_type: bytes, length: int, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n%s\r\n"
            % (status, reason, content_type, length, extra))
