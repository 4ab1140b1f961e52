"""Fuzz targets: each takes any bytes and raises (AssertionError or anything unexpected) only
when it finds a bug. They are plain functions, so the seeds and regression cases replay in
the ordinary test run without atheris; ``tests/fuzz/fuzz.py`` drives them coverage-guided.

- ``h1``: the bytes as a client's input to ``synack.h1.ServerConnection``, served the way the
  driver does (respond, next cycle, pipelining). Invariant: events or ``RemoteProtocolError``
  (status 4xx/505, connection unusable afterwards), never another exception, never a stall,
  and the same outcome whether the bytes arrive whole or in pieces.
- ``path``: the bytes as a request-target (split by h1's ``parse_head``) through
  ``parse_path`` and ``Resolver.open`` on a tree with hostile symlinks, and as raw path
  segments straight into ``Resolver.open``.
  Invariant: only ``StaticError`` (with a 4xx), and whatever is opened is under the root, not
  a dotfile (unless enabled), and a regular file or directory.
- ``ranges``: the bytes as a Range field value (optionally ``SIZE\\n`` first), against an
  independent model of RFC 9110 §14.1.
- ``conditional``: the bytes as conditional request fields (If-Match, If-None-Match,
  If-Modified-Since, If-Unmodified-Since, If-Range, Accept-Encoding), checked against
  RFC 9110 §5.6.7 dates built with ``datetime`` and §13.2.2's outcomes.
- ``static``: the bytes as a whole request head, parsed by h1 and answered by ``StaticFiles``
  on a real tree through a real ``Exchange`` over an in-memory channel. Invariant: never a 5xx or an exception, and
  every response is framed exactly (Content-Length, Content-Range, multipart parts).
"""

from __future__ import annotations

import asyncio
import atexit
import calendar
import datetime
import os
import re
import shutil
import stat
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

from synack.apps.static import StaticFiles, StaticSettings
from synack.apps.static_http import (
    MAX_RANGES,
    RANGE_MERGE_GAP,
    Variant,
    check_preconditions,
    choose_encoding,
    if_range_allows,
    parse_range,
    plan_ranges,
)
from synack.apps.static_path import Resolver, StaticError, is_hidden, parse_path
from synack.server.exchange import Exchange
from synack.h1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    Request,
    RequestState,
    ServerConnection,
    split_list,
)
from synack.h1.reader import parse_head
from synack.httpdate import LATEST, format_http_date, parse_http_date

# ---------------------------------------------------------------------------- h1

H1_LIMITS = (
    Limits(),
    Limits(allow_bare_lf=True, allow_obs_fold=True),
    Limits(max_request_line=40, max_head_bytes=120, max_header_count=6, max_field_bytes=40,
           max_chunk_ext_bytes=16, max_trailer_bytes=40, max_body_bytes=30),
)
#: The statuses a RemoteProtocolError may carry (h1/errors.py's table).
H1_STATUSES = frozenset((400, 408, 413, 414, 417, 431, 501, 505))


def h1(data: bytes) -> None:
    """Serve ``data`` under every Limits whole, and once in pieces chosen from its hash."""
    outcomes = [_serve([data], limits, eof=True) for limits in H1_LIMITS]
    seed = zlib.crc32(data)
    limits = H1_LIMITS[seed % len(H1_LIMITS)]
    eof = bool(seed & 4)
    whole = outcomes[seed % len(H1_LIMITS)] if eof else _serve([data], limits, eof=False)
    pieces = _cut(data, seed)
    split = _serve(pieces, limits, eof)
    assert split == whole, f"split {pieces!r} gives {split!r}, whole gives {whole!r}"


def _cut(data: bytes, seed: int) -> list[bytes]:
    """Up to 8 pieces; one byte at a time for short inputs whose hash says so."""
    if len(data) <= 64 and seed & 8:
        return [data[index:index + 1] for index in range(len(data))]
    points = sorted({(seed >> shift) % (len(data) + 1) for shift in range(0, 28, 4)} | {0, len(data)})
    return [data[start:end] for start, end in zip(points, points[1:])]


def _serve(pieces: list[bytes], limits: Limits, eof: bool) -> list[Any]:
    """What a driver sees, as comparable data: one row per event, Data joined per request."""
    connection = ServerConnection(limits)
    rows: list[Any] = []
    budget = 64 + 8 * sum(len(piece) for piece in pieces)
    feed = [piece for piece in pieces if piece] + ([b""] if eof else [])
    try:
        while True:
            budget -= 1
            assert budget > 0, f"next_event made no progress: {rows[-4:]!r}"
            event = connection.next_event()
            if event is NEED_DATA:
                if not feed:
                    return rows + ["need-data"]
                connection.receive_data(feed.pop(0))
                continue
            if event is PAUSED:
                return rows + ["paused"]  # (only after a response is owed: never here)
            if not _handle(connection, event, rows):
                return rows
    except RemoteProtocolError as error:
        assert error.status in H1_STATUSES, error.status
        assert connection.request_state is RequestState.ERROR
        assert not connection.keep_alive
        return rows + [("error", error.status)]


def _handle(connection: ServerConnection, event: Any, rows: list[Any]) -> bool:
    """Record ``event`` and act on it like the driver; False when the connection is done."""
    kind = type(event)
    if kind is Request:
        rows.append(("request", event.method, event.target, event.http_version, list(event.headers),
                     event.keep_alive, event.framing.value, event.content_length, event.upgrade))
        if event.expect_continue:
            assert connection.send_continue().startswith(b"HTTP/1.1 100 ")
        return True
    if kind is Data:
        assert len(event.data) > 0
        if rows and rows[-1][0] == "data":
            rows[-1] = ("data", rows[-1][1] + bytes(event.data))
        else:
            rows.append(("data", bytes(event.data)))
        return True
    if kind is EndOfMessage:
        rows.append(("end", list(event.trailers)))
        method = connection.request.method if connection.request is not None else b""
        connection.send_response(200, [(b"x", b"y")], b"" if method == b"HEAD" else b"ok")
        return connection.next_cycle()
    assert kind is ConnectionClosed, event
    rows.append(("closed",))
    return False


# ---------------------------------------------------------------------------- path


class _Tree:
    """A served root full of traps, and a secret outside it (built once per process)."""

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="synack-fuzz-")
        atexit.register(shutil.rmtree, self.base, True)
        root = os.path.join(self.base, "root")
        for directory in ("sub/deeper", ".git", "d.d", "\u20ac"):
            os.makedirs(os.path.join(root, directory))
        os.makedirs(os.path.join(self.base, "rootless"))
        files = {
            "index.html": b"<p>index</p>", "a.txt": b"a" * 100, "sub/b.txt": b"b", ".env": b"SECRET",
            ".git/config": b"SECRET", "sub/.hidden": b"SECRET", "\u20ac/e.txt": b"euro",
            "big.bin": bytes(range(256)) * 200, "a.txt.gz": b"GZ", "a.txt.br": b"BR", "empty": b"",
        }
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as file:
                file.write(data)
        with open(os.path.join(self.base, "secret.txt"), "wb") as file:
            file.write(b"SECRET")
        with open(os.path.join(self.base, "rootless", "x"), "wb") as file:
            file.write(b"SECRET")
        links = {
            "link_in": "a.txt", "link_dir": "sub", "escape": "../secret.txt", "escape_dir": "..",
            "prefix_escape": "../rootless", "absolute": "/etc", "loop_a": "loop_b", "loop_b": "loop_a",
            "dangling": "nowhere", "hidden_link": ".env", "sub/up": "..", "sub/deeper/up2": "../..",
            "gz_escape.txt.gz": "../secret.txt", "self": ".",
        }
        for name, destination in links.items():
            os.symlink(destination, os.path.join(root, name))
        os.mkfifo(os.path.join(root, "fifo"))
        self.root = os.path.realpath(root)
        self.resolvers = (Resolver(self.root, dotfiles=False), Resolver(self.root, dotfiles=True))


_tree: _Tree | None = None


def tree() -> _Tree:
    global _tree
    if _tree is None:
        _tree = _Tree()
    return _tree


def path(data: bytes) -> None:
    """``data`` as a request-target, then as raw path segments and a sibling name."""
    served = tree()
    try:
        request = parse_head(b"GET " + data + b" HTTP/1.1\r\nHost: h", Limits())
    except RemoteProtocolError:
        request = None  # not a request-target h1 accepts: only the raw segments below
    for resolver in served.resolvers if request is not None else ():
        try:
            target = parse_path(request.path, request.query)
        except StaticError as error:
            assert error.status in (400, 404), error.status
        else:
            for part in target.parts:
                assert part and "/" not in part and "\0" not in part and part not in (".", ".."), target
                part.encode("utf-8")  # strict UTF-8: no surrogates reach the file system
            if resolver.dotfiles or not is_hidden(target.parts):
                _open_and_check(resolver, target.parts, served.root)
    raw_parts = tuple(part for part in data.replace(b"\0", b"").decode("utf-8", "surrogateescape").split("/") if part)
    for resolver in served.resolvers:
        _open_and_check(resolver, raw_parts, served.root)
        # child() is given names already vetted for dots (a URL's last segment plus a suffix,
        # or the configured index name), like open() is given parse_path's segments.
        if raw_parts and (resolver.dotfiles or not raw_parts[-1].startswith(".")):
            sibling = resolver.child(served.root, raw_parts[-1])
            if sibling is not None:
                _check_contained(sibling, resolver, served.root)


def _open_and_check(resolver: Resolver, parts: tuple[str, ...], root: str) -> None:
    try:
        opened = resolver.open(parts)
    except StaticError as error:
        assert error.status in (403, 404), (parts, error.status, error)
        return
    with opened:
        real = os.readlink(f"/proc/self/fd/{opened.fd}") if os.path.isdir("/proc/self/fd") else opened.path
        _check_contained(real, resolver, root)
        mode = os.fstat(opened.fd).st_mode
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), (parts, real)


def _check_contained(real: str, resolver: Resolver, root: str) -> None:
    assert real == root or real.startswith(root + os.sep), f"escaped the root: {real!r}"
    if not resolver.dotfiles:
        assert not is_hidden(real[len(root) + 1:].split(os.sep)) or real == root, f"a dotfile: {real!r}"


# ---------------------------------------------------------------------------- ranges

_DIGITS = re.compile(rb"[0-9]+")


def ranges(data: bytes) -> None:
    """``data`` as a Range value (``SIZE\\n`` first to pick the representation's length)."""
    size = 10_000
    head, newline, rest = data.partition(b"\n")
    if newline and head.isdigit() and len(head) <= 5:
        size, data = int(head), rest
    specs = parse_range(data)
    expected = _model_specs(data)
    assert (specs is None) == (expected is None), (data, specs, expected)
    if specs is None or expected is None:
        return
    assert len(specs) == len(expected)
    plan = plan_ranges(specs, size)
    assert plan == _model_plan(expected, size), (data, size, plan)


def _number(digits: bytes) -> int:
    """The model's own saturation: any position of 20+ significant digits is past every file."""
    significant = digits.lstrip(b"0") or b"0"
    return int(significant) if len(significant) < 20 else 10**20


def _model_specs(value: bytes) -> list[tuple[int, int | None]] | None:
    """RFC 9110 §14.1.1 range-set, written as a plain tokenizer (with synack's leniency: OWS
    around the unit and around each element). Suffix ranges are (-length, None)."""
    if b"=" not in value:
        return None
    unit, _, text = value.partition(b"=")
    if unit.strip(b" \t").lower() != b"bytes":
        return None
    specs: list[tuple[int, int | None]] = []
    for element in text.split(b","):
        element = element.strip(b" \t")
        if not element:
            continue
        first, dash, last = element.partition(b"-")
        if not dash:
            return None
        if not first:
            if not _DIGITS.fullmatch(last):
                return None
            specs.append((-_number(last) - 1, None))  # suffix: encoded below zero
            continue
        if not _DIGITS.fullmatch(first) or (last and not _DIGITS.fullmatch(last)):
            return None
        if last:
            lo, hi = first.lstrip(b"0") or b"0", last.lstrip(b"0") or b"0"
            if (len(lo), lo) > (len(hi), hi):
                return None
        specs.append((_number(first), _number(last) if last else None))
    return specs or None


def _model_plan(specs: list[tuple[int, int | None]], size: int) -> list[tuple[int, int]] | None:
    if len(specs) > MAX_RANGES or size == 0:
        return None
    wanted: list[tuple[int, int]] = []
    for first, last in specs:
        if first < 0:  # a suffix of -first - 1 bytes
            length = -first - 1
            if length:
                wanted.append((max(0, size - length), size - 1))
        elif first < size:
            wanted.append((first, size - 1 if last is None else min(last, size - 1)))
    if not wanted:
        return []
    if len(wanted) > 1 and sum(end - start + 1 for start, end in wanted) > size:
        return None
    merged: list[list[int]] = []
    for start, end in sorted(wanted):
        if merged and start - merged[-1][1] - 1 <= RANGE_MERGE_GAP:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


# ---------------------------------------------------------------------------- conditional

_FIELDS = (b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since")
_IMF = re.compile(rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
                  rb"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT")
_MONTHS = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"]
_EARLIEST = calendar.timegm((1, 1, 1, 0, 0, 0))


def conditional(data: bytes) -> None:
    """``data`` as ``name: value`` lines; every conditional rule runs on what it names."""
    fields: dict[bytes, list[bytes]] = {}
    for line in data.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(value.strip(b" \t"))
    mtime = zlib.crc32(data) % 2_000_000_000
    variant = Variant(b'"%x"' % (mtime % 4096), mtime)
    for method in (b"GET", b"HEAD"):
        decision = check_preconditions(method, {name: fields[name] for name in _FIELDS if name in fields}, variant)
        assert decision in (None, 304, 412), decision
    for value in fields.get(b"if-range", []):
        assert if_range_allows(value, variant) in (True, False)
    for values in (fields.get(b"accept-encoding"),):
        if values is not None:
            elements = [element for value in values for element in split_list(value)]
            assert choose_encoding(elements, [b"br", b"zstd", b"gzip"]) in (None, b"br", b"zstd", b"gzip")
    for value in [data, *(value for values in fields.values() for value in values)]:
        _check_date(value)


def _check_date(value: bytes) -> None:
    seconds = parse_http_date(value)
    if seconds is not None:
        assert type(seconds) is int and _EARLIEST <= seconds <= LATEST, (value, seconds)
        if seconds >= 0:
            assert parse_http_date(format_http_date(seconds)) == seconds
    match = _IMF.fullmatch(value.strip(b" \t"))
    if match is None:
        return
    day, month, year, hour, minute, second = match.groups()
    try:
        moment = datetime.datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                                   min(int(second), 59) if int(second) == 60 else int(second),
                                   tzinfo=datetime.timezone.utc)
    except ValueError:
        expected = None  # no such instant (year 0, 31 Feb, hour 24, an unknown month)
    else:
        expected = calendar.timegm(moment.utctimetuple())
    assert seconds == expected, (value, seconds, expected)


# ---------------------------------------------------------------------------- static


class _MemoryChannel:
    """A ``Channel`` in memory: the real ``Exchange`` writes the response into ``output``."""

    write_paused = False
    closed = False
    tls = None

    def __init__(self) -> None:
        self.output = bytearray()
        self.ended = False
        self.aborted = False

    def gone(self) -> bool:
        return self.aborted

    def write(self, data: bytes) -> None:
        assert not self.ended, "bytes after the end of the response"
        self.output += data

    async def drain(self) -> None:
        pass

    async def wait_for_body(self) -> None:
        raise AssertionError("StaticFiles reads no request body")

    def body_failed(self, error: RemoteProtocolError) -> None:
        raise AssertionError("StaticFiles reads no request body")

    async def send_file(self, file: Any, offset: int, count: int) -> None:
        self.write(os.pread(file.fileno(), count, offset))

    def finish(self, exchange: Exchange, last: bytes) -> None:
        self.write(last)
        self.ended = True

    def abort(self) -> None:
        self.aborted = True

    async def wait_closed(self) -> None:
        raise AssertionError("StaticFiles does not wait for the client")

    def upgrade(self, exchange: Exchange, head: bytes) -> Any:
        raise AssertionError("StaticFiles does not switch protocols")

    def request_id(self, head: Request) -> str:
        return "fuzz"


def _exchange(data: bytes, root_path: str) -> tuple[Exchange, _MemoryChannel] | None:
    """A real ``Exchange`` for the request head in ``data`` (None if it is not one)."""
    connection = ServerConnection()
    connection.receive_data(data)
    try:
        event = connection.next_event()
    except RemoteProtocolError:
        return None
    if type(event) is not Request:
        return None
    channel = _MemoryChannel()
    return Exchange(channel, connection, event, False, None, None, "http", root_path), channel


_static: tuple[StaticFiles, StaticFiles, asyncio.AbstractEventLoop] | None = None


def _engines() -> tuple[StaticFiles, StaticFiles, asyncio.AbstractEventLoop]:
    global _static
    if _static is None:
        root = tree().root
        loop = asyncio.new_event_loop()
        atexit.register(loop.close)
        _static = (StaticFiles(root, StaticSettings()),
                   StaticFiles(root, StaticSettings(dotfiles=True, listing_limit=3)), loop)
    return _static


def static(data: bytes) -> None:
    """``data`` as a request head, answered by ``StaticFiles`` (twice: the second time the
    small-file fast path may answer), then with other settings and a non-ASCII mount point."""
    first, second, loop = _engines()
    for files, root_path in ((first, ""), (first, ""), (second, "/m\u00f6unt%20point/")):
        made = _exchange(data, root_path)
        if made is None:
            return
        exchange, channel = made
        if not files.respond_now(exchange):
            loop.run_until_complete(files(exchange))
        _check_response(exchange.head, channel)


def _check_response(head: Request, channel: _MemoryChannel) -> None:
    assert channel.ended and not channel.aborted, bytes(channel.output[:200])
    raw_head, _, body = bytes(channel.output).partition(b"\r\n\r\n")
    status_line, *lines = raw_head.split(b"\r\n")
    status = int(status_line.split(b" ")[1])
    fields = dict((name.lower(), value) for name, _, value in (line.partition(b": ") for line in lines))
    assert 200 <= status < 500, (status, head, body[:200])
    if status in (204, 304) or head.method == b"HEAD":
        assert body == b"", status  # (the h1 core sends no body for these)
        return
    assert int(fields[b"content-length"]) == len(body), (fields, len(body))
    if status == 206 and b"content-range" in fields:
        match = re.fullmatch(rb"bytes ([0-9]+)-([0-9]+)/([0-9]+)", fields[b"content-range"])
        assert match, fields[b"content-range"]
        start, end, size = (int(group) for group in match.groups())
        assert start <= end < size and end - start + 1 == len(body)
    if status == 416:
        assert re.fullmatch(rb"bytes \*/[0-9]+", fields[b"content-range"])


TARGETS: dict[str, Callable[[bytes], None]] = {
    "h1": h1, "path": path, "ranges": ranges, "conditional": conditional, "static": static,
}
