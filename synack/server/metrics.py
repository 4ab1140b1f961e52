"""Metrics: one worker's request counters, and ``GET /metrics`` in the Prometheus text
exposition format (version 0.0.4), written directly: the format is a few lines of text,
and the counters stay plain integers the hot path bumps without a library call.

``HttpProtocol.finish`` calls ``Metrics.record`` once per response; ``_answer_error`` calls
``Metrics.reject`` for a request refused before it reached the app. In-flight requests and
open connections are counted when scraped, from the worker's connections, so they cost the
hot path nothing. Served by the worker itself, so only in a single process (``--metrics``
with a supervisor is a configuration error for now).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from time import monotonic as _monotonic
from typing import Any, Iterable

from ..logs import error_log

__all__ = ["Metrics", "serve_metrics", "BUCKETS"]

#: Upper bounds (seconds) of the request duration histogram's buckets; +Inf is implied.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_FIRST_BUCKET = BUCKETS[0]
#: The methods counted under their own name (RFC 9110 section 9.3, and PATCH: RFC 5789).
_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH"))
_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_MAX_REQUEST_HEAD = 8192
_READ_TIMEOUT = 10.0


class Metrics:
    """One worker's counters (plain ints: the loop is single-threaded)."""

    def __init__(self) -> None:
        #: Responses by method, then status class (``status // 100``, the list's index).
        self.requests = {method: [0] * 6 for method in _METHODS}
        #: Responses to any other method (a client must not grow the label set without bound).
        self.other = [0] * 6
        #: Per-bucket (not cumulative) counts; the last slot is +Inf.
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.bytes_out = 0
        #: Requests refused by the driver (malformed head, timeouts, limits), by status.
        self.rejected: dict[int, int] = {}

    def record(self, method: bytes, status: int, size: int, started: float) -> None:
        """One response is complete: ``size`` body bytes, head taken at ``started`` (monotonic)."""
        seconds = _monotonic() - started
        try:
            self.requests[method][status // 100] += 1
        except KeyError:  # (a try costs nothing until it raises, from Python 3.11)
            self.other[status // 100] += 1
        # Most responses fall in the first bucket: one comparison instead of a search.
        self.buckets[0 if seconds <= _FIRST_BUCKET else bisect_left(BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self.bytes_out += size

    def reject(self, status: int) -> None:
        """A request was answered with ``status`` by the driver, before any app saw it."""
        self.rejected[status] = self.rejected.get(status, 0) + 1

    def render(self, in_flight: int, connections: int) -> bytes:
        """The text exposition of every counter, plus the two gauges given."""
        lines: list[str] = []
        _family(lines, "synack_requests_total", "counter", "Responses completed, by method and status class.")
        for method, counts in sorted((*self.requests.items(), (b"other", self.other))):
            for status_class, count in enumerate(counts):
                if count:
                    lines.append(f'synack_requests_total{{method="{_label(method)}",status="{status_class}xx"}} {count}')
        _family(lines, "synack_request_duration_seconds", "histogram",
                "Seconds from the request head to the end of the response.")
        cumulative = 0
        for bound, count in zip((*map(repr, BUCKETS), "+Inf"), self.buckets):
            cumulative += count
            lines.append(f'synack_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f"synack_request_duration_seconds_sum {self.duration_sum!r}")
        lines.append(f"synack_request_duration_seconds_count {cumulative}")
        _family(lines, "synack_requests_in_flight", "gauge", "Requests being answered now.")
        lines.append(f"synack_requests_in_flight {in_flight}")
        _family(lines, "synack_open_connections", "gauge", "Client connections open now.")
        lines.append(f"synack_open_connections {connections}")
        _family(lines, "synack_response_body_bytes_total", "counter", "Response body bytes sent.")
        lines.append(f"synack_response_body_bytes_total {self.bytes_out}")
        _family(lines, "synack_rejected_requests_total", "counter",
                "Requests refused before reaching the app, by status.")
        for status, count in sorted(self.rejected.items()):
            lines.append(f'synack_rejected_requests_total{{status="{status}"}} {count}')
        return ("\n".join(lines) + "\n").encode("utf-8")


def _family(lines: list[str], name: str, kind: str, help: str) -> None:
    lines.append(f"# HELP {name} {help}")
    lines.append(f"# TYPE {name} {kind}")


def _label(value: bytes) -> str:
    """A label value, with the exposition format's escapes."""
    return value.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def serve_metrics(sock: Any, metrics: Metrics, connections: Iterable[Any]) -> asyncio.Server:
    """Serve ``GET /metrics`` on the listening socket ``sock`` (one response per connection)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            writer.write(_response(head, metrics, connections))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except Exception:
            error_log.exception("metrics request failed")
        finally:
            writer.close()

    return await asyncio.start_server(answer, sock=sock, limit=_MAX_REQUEST_HEAD)


def _response(head: bytes, metrics: Metrics, connections: Iterable[Any]) -> bytes:
    request_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(request_line) != 3:
        return _plain(400, b"Bad Request", b"malformed request line\n")
    method, target = request_line[0], request_line[1].split(b"?", 1)[0]
    if target != b"/metrics":
        return _plain(404, b"Not Found", b"only /metrics is served here\n")
    if method not in (b"GET", b"HEAD"):
        return _plain(405, b"Method Not Allowed", b"use GET\n", b"allow: GET, HEAD\r\n")
    open_connections = list(connections)
    in_flight = sum(1 for connection in open_connections if getattr(connection, "exchange", None) is not None)
    body = metrics.render(in_flight, len(open_connections))
    return _head(200, b"OK", _CONTENT_TYPE, len(body)) + (b"" if method == b"HEAD" else body)


def _plain(status: int, reason: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return _head(status, reason, b"text/plain; charset=utf-8", len(body), extra) + body


def _head(status: int, reason: bytes, content_type: bytes, length: int, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n%s\r\n"
            % (status, reason, content_type, length, extra))
