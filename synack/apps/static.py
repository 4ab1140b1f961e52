"""Static files: safe path resolution, validators, conditional and range requests, precompressed
siblings, directory listings, and zero-copy bodies through ``Exchange.send_file`` (bodies of
at most ``SMALL_FILE`` bytes are read and sent with the head in one write instead).

Split by concern: ``static_path`` (URL and file-system safety), ``static_http`` (the RFC 9110
rules as pure functions), ``static_listing`` (directory pages); this module wires them up.

The request flow, each step in its own helper:

1. method: GET and HEAD are served; OPTIONS → 204; anything else → 405 (RFC 9110 §15.5.6).
2. path: ``static_path.parse_path`` (URL rules) then ``Resolver`` (file-system rules).
3. directory: redirect to the slash form, serve the index file, or list it.
4. file: pick the precompressed variant (``Accept-Encoding``), open it and ``fstat`` the
   descriptor — every header below comes from that one fstat, so Content-Length always
   matches what the descriptor held when we looked.
5. preconditions (RFC 9110 §13.2.2) → 412 / 304; then Range / If-Range → 206 / 416 / 200.

Disk calls for files (open, fstat, pread) run on the event loop: on a local disk they take
microseconds, less than a hop to a thread. Directory listings are the exception: reading,
sorting and rendering a big directory takes milliseconds to seconds, so they are built in the
loop's default executor, and capped at ``StaticSettings.listing_limit`` entries.
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from ..h1 import reason_phrase
from ..httpdate import clamp_to_http_date, format_http_date
from ..logs import error_log
from ..server.exchange import ANSWER_BATCH, ClientDisconnected, Exchange, FieldBlock
from .static_http import (
    ENCODINGS,
    Variant,
    check_preconditions,
    choose_encoding,
    content_type,
    if_range_allows,
    make_etag,
    parse_range,
    plan_ranges,
)
from .static_listing import LISTING_LIMIT, read_directory, render_listing
from .static_path import Opened, Resolver, StaticError, Target, is_hidden, os_error_status, parse_path

__all__ = ["StaticFiles", "StaticSettings"]


Fields = list[tuple[bytes, bytes]]

ALLOW = b"GET, HEAD, OPTIONS"
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_ACCEPT_RANGES = (b"accept-ranges", b"bytes")
_VARY = (b"vary", b"accept-encoding")
# Listings are generated from file names: allow nothing but their own inline style.
_LISTING_CSP = (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'")
#: Request fields that take part in precondition evaluation (RFC 9110 §13.1).
_CONDITIONAL = (b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since")
#: pchar characters left as they are when a path segment is put back into a URL.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_I: Final = ord("i")
#: Bodies up to this size are read and sent with their head in one write, not with sendfile.
SMALL_FILE = 16 * 1024
_COMPRESSED_SUFFIXES = tuple(suffix for _, suffix in ENCODINGS)
#: How old a file's last change (ctime) must be before ``respond_now`` keeps its bytes in
#: memory instead of reading them for each request (see ``_settled``).
_SETTLE_NS = 1_000_000_000
#: Directories whose precompressed names are remembered (the cache is emptied when full).
_SIBLING_CACHE_SIZE = 1024


def _open_file_cache_size() -> int:
    """How many small files stay open for ``respond_now``: 256, or fewer when the descriptor
    limit is low (the cache must never be what runs a worker out of descriptors)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no limit to read
        return 0
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(0, min(256, soft // 16))


def _settled(ctime_ns: int) -> bool:
    """True when bytes read now can stand for the file for as long as its ctime stays put.

    The kernel stamps ctime from a coarse clock (a tick, a few milliseconds), so a write in
    the same tick as an earlier one can leave ctime unchanged: bytes read right after a change
    are "racily clean" (git's term for the same problem in its index). Once the last change is
    ``_SETTLE_NS`` old, any later write stamps a ctime that differs, and ``respond_now`` sees it
    before serving: the cached bytes are then dropped with their entry.
    """
    return time.time_ns() - ctime_ns > _SETTLE_NS


class _OpenFile:
    """A small file ready to answer: its descriptor, the identity it had when
    it was opened through the safe path walk, and its ready-made response head.

    ``respond_now`` serves it only after ``stat`` of the URL's path (following symlinks as
    they are *now*, checked once per batch of answers) shows the very same file (device,
    inode, size, ctime) and the directory that holds its precompressed siblings is
    unchanged; any difference drops the entry and the request takes the full path. The
    bytes always come from the cached descriptor, whose containment under the root was
    checked when it was opened, so a symlink swapped in since can only make the identities
    differ, never make a file outside the root servable.
    """

    __slots__ = ("fd", "path", "device", "inode", "size", "ctime_ns", "directory", "directory_key", "fields",
                 "data", "checked")

    def __init__(self, fd: int, path: str, status: os.stat_result, directory: str,
                 directory_key: tuple[int, int], fields: FieldBlock) -> None:
        self.fd = fd
        # Kept encoded: ``os.stat`` of bytes skips the file-system encoding on every request.
        self.path = os.fsencode(path)
        self.device = status.st_dev
        self.inode = status.st_ino
        self.size = status.st_size
        # ctime moves with every write and also with chmod, chown and renames: a file made
        # unreadable since it was cached is not served from the old descriptor.
        self.ctime_ns = status.st_ctime_ns
        self.directory = os.fsencode(directory)
        self.directory_key = directory_key
        self.fields = fields
        #: The file's bytes, once they can be trusted to match its ctime (see ``_settled``).
        self.data: bytes | None = None
        #: The batch of answers (``ANSWER_BATCH.number``) whose ``stat`` calls found the file
        #: unchanged, or 0.
        self.checked = 0


@dataclass(frozen=True)
class StaticSettings:
    """How a directory is served (from ``--listing``, ``--dotfiles``, ``--index``, ``--cache-control``)."""

    #: HTML listings for directories without an index file; off → 404.
    listing: bool = True
    #: Serve paths with a segment starting with "." (.git, .env); off → 404.
    dotfiles: bool = False
    #: The file served for a directory URL.
    index: str = "index.html"
    #: Cache-Control value for file responses; empty to omit the header.
    cache_control: str = ""
    #: The most entries a listing page shows (the first ones, directories first, then by
    #: name), with a note saying how many were left out. See ``LISTING_LIMIT``.
    listing_limit: int = LISTING_LIMIT

    def __post_init__(self) -> None:
        if self.listing_limit < 1:
            raise ValueError(f"listing_limit must be at least 1, not {self.listing_limit}")


class StaticFiles:
    """The Handler that serves the files under ``root``."""

    def __init__(self, root: str, settings: StaticSettings) -> None:
        self.resolver = Resolver(root, settings.dotfiles)
        self.root = self.resolver.root
        self.settings = settings
        self._sibling_cache: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}
        self._cache_control: Fields = (
            [(b"cache-control", settings.cache_control.encode("ascii"))] if settings.cache_control else []
        )
        #: request-target → open small file, for ``respond_now``.
        self._open_files: dict[bytes, _OpenFile] = {}
        self._open_files_size = _open_file_cache_size()

    # ------------------------------------------------------------------ the fast path

    def respond_now(self, exchange: Exchange) -> bool:
        """Answer a plain GET/HEAD of a small file seen before, without a task or a coroutine:
        two ``stat`` calls, once per batch of answers (``ANSWER_BATCH``: the batch's other
        requests for the file were received before those calls, so they are as fresh for them),
        and one ``pread`` until the file's bytes are kept (``_settled``). Anything else (ranges,
        preconditions, a changed file or directory, precompressed variants) returns False for
        the full path."""
        head = exchange.head
        entry = self._open_files.get(head.target)
        if entry is None:
            return False
        method = head.method
        if method != b"GET" and method != b"HEAD":
            return False
        for name, _ in head.headers.items:
            # (The first byte first: no slice made for the usual names.)
            if (name[0] == _I and name[:3] == b"if-") or name == b"range":
                return False
        batch = ANSWER_BATCH.number
        if not batch or entry.checked != batch:
            try:
                status = os.stat(entry.path)
                directory = os.stat(entry.directory)
            except OSError:
                self._forget(head.target)
                return False
            if (status.st_ctime_ns != entry.ctime_ns or status.st_ino != entry.inode or status.st_size != entry.size
                    or status.st_dev != entry.device or directory.st_mtime_ns != entry.directory_key[1]
                    or directory.st_ino != entry.directory_key[0]):
                self._forget(head.target)
                return False
            entry.checked = batch
        if method == b"GET":
            data = entry.data
            if data is None:
                try:
                    data = os.pread(entry.fd, entry.size, 0)
                except OSError:
                    data = b""
                if len(data) != entry.size:
                    self._forget(head.target)
                    return False
                if _settled(entry.ctime_ns):
                    entry.data = data
        else:
            data = b""
        exchange.respond(200, entry.fields, data)
        return True

    def _remember(self, target: bytes, url_path: str, opened: Opened, real_dir: str, fields: Fields) -> None:
        if self._open_files_size == 0 or target in self._open_files:
            return
        # The directory's identity as of the sibling listing this response was chosen by, so
        # a sibling that appeared since then is noticed by the next request.
        listed = self._sibling_cache.get(real_dir)
        if listed is None:
            return
        try:
            fd = os.dup(opened.fd)  # non-inheritable, like every descriptor Python makes
        except OSError:
            return
        if len(self._open_files) >= self._open_files_size:
            self.close()
        self._open_files[target] = _OpenFile(fd, url_path, opened.stat, real_dir, listed[0], FieldBlock(fields))

    def _forget(self, target: bytes) -> None:
        entry = self._open_files.pop(target, None)
        if entry is not None:
            os.close(entry.fd)

    async def shutdown(self) -> None:
        """Called by the worker after draining: close the cached descriptors."""
        self.close()

    def close(self) -> None:
        """Close the cached descriptors."""
        entries = list(self._open_files.values())
        self._open_files.clear()
        for entry in entries:
            os.close(entry.fd)

    async def __call__(self, exchange: Exchange) -> None:
        method = exchange.head.method
        if method != b"GET" and method != b"HEAD":
            await _method_response(exchange, method)
            return
        try:
            target = parse_path(exchange.head.path, exchange.head.query)
            if not self.settings.dotfiles and is_hidden(target.parts):
                raise StaticError(404, "dotfile")
            opened = self.resolver.open(target.parts)
        except StaticError as error:
            await _error(exchange, error.status)
            return
        with opened:
            try:
                if opened.is_dir:
                    await self._directory(exchange, target, opened)
                elif target.trailing_slash:
                    await _error(exchange, 404)  # "/file.txt/" names a directory that is not one
                else:
                    # Precompressed siblings sit next to the name the URL used, even when
                    # that name is a symlink to elsewhere under the root.
                    await self._file(exchange, opened, target.parts[-1], opened.directory,
                                     self._url_path(target.parts))
            except ClientDisconnected:
                raise
            except StaticError as error:
                await _fail(exchange, error.status, error)
            except OSError as error:  # a disk error while reading: answer it, never a traceback
                await _fail(exchange, os_error_status(error), error)

    # ------------------------------------------------------------------ directories

    async def _directory(self, exchange: Exchange, target: Target, opened: Opened) -> None:
        if not target.trailing_slash:
            await self._redirect_to_slash(exchange, target)
            return
        index = self.resolver.child(opened.path, self.settings.index)
        if index is not None:
            try:
                index_file = self.resolver.open_real(index)
            except StaticError:
                pass
            else:
                with index_file:
                    if not index_file.is_dir:
                        await self._file(exchange, index_file, self.settings.index, opened.path,
                                         self._url_path((*target.parts, self.settings.index)))
                        return
        if not self.settings.listing:
            await _error(exchange, 404)
            return
        await self._listing(exchange, target, opened)

    async def _redirect_to_slash(self, exchange: Exchange, target: Target) -> None:
        # Built from the decoded, validated segments, so "//evil.example/dir" can never turn
        # into a protocol-relative Location (an open redirect).
        path = "/" + "/".join(quote(part, safe=_SEGMENT_SAFE) for part in target.parts) + "/"
        # The configured mount point may hold characters a URL cannot (--root-path "/café"):
        # percent-encode those, keeping its slashes and any escapes it already has.
        mount = quote(exchange.root_path.rstrip("/"), safe="/%" + _SEGMENT_SAFE)
        location = (mount + path).encode("ascii")
        if target.query:
            location += b"?" + target.query
        body = b"Moved to " + location + b"\n"
        await exchange.send_head(301, [
            (b"location", location),
            (b"content-type", b"text/plain; charset=utf-8"),
            _NOSNIFF,
            (b"content-length", b"%d" % len(body)),
        ])
        await exchange.send_body(body)

    async def _listing(self, exchange: Exchange, target: Target, opened: Opened) -> None:
        shown_path = exchange.root_path.rstrip("/") + "/" + "".join(part + "/" for part in target.parts)
        try:
            # The thread gets its own descriptor: if this request is cancelled (the client
            # left), ``opened`` is closed at once while the thread may still be reading, and
            # the number could be reused by another open meanwhile.
            fd = os.dup(opened.fd)
        except OSError as error:
            raise StaticError(os_error_status(error)) from None
        try:
            body = await asyncio.get_running_loop().run_in_executor(
                None, _build_listing, fd, opened.path, shown_path, bool(target.parts), self
            )
        except OSError as error:
            raise StaticError(os_error_status(error)) from None
        await exchange.send_head(200, [
            (b"content-type", b"text/html; charset=utf-8"),
            _NOSNIFF,
            _LISTING_CSP,
            (b"cache-control", b"no-cache"),
            (b"content-length", b"%d" % len(body)),
        ])
        await exchange.send_body(body)

    # ------------------------------------------------------------------ files

    def _url_path(self, parts: tuple[str, ...]) -> str:
        """The file-system path the URL names, symlinks not resolved (for ``respond_now``)."""
        return os.path.join(self.root, *parts)

    async def _file(self, exchange: Exchange, base: Opened, name: str, real_dir: str, url_path: str) -> None:
        """Serve the regular file ``base``, reached by ``name`` in the resolved ``real_dir``
        (and by ``url_path`` before resolving symlinks)."""
        siblings = self._siblings(real_dir, name)
        headers = exchange.head.headers
        accept = headers.get_list(b"accept-encoding") if headers.get(b"accept-encoding") is not None else None
        coding = choose_encoding(accept, [coding for coding, _ in siblings])
        served, encoded = base, None
        if coding is not None:
            try:
                encoded = served = self.resolver.open_real(dict(siblings)[coding])
            except StaticError:
                coding = None  # vanished or unreadable since the probe: send the original
        try:
            await self._send_variant(exchange, served, name, coding, bool(siblings), (url_path, real_dir))
        finally:
            if encoded is not None:
                encoded.close()

    def _siblings(self, real_dir: str, name: str) -> list[tuple[bytes, str]]:
        candidates = self._compressed_names(real_dir)
        found = []
        for coding, suffix in ENCODINGS:
            sibling = name + suffix
            if candidates is not None and sibling not in candidates:
                continue
            path = self.resolver.child(real_dir, sibling)
            if path is not None:
                found.append((coding, path))
        return found

    def _compressed_names(self, real_dir: str) -> frozenset[str] | None:
        """Names in ``real_dir`` that could be precompressed variants, cached per directory
        and re-read whenever the directory's mtime or inode changes (adding, removing or
        renaming an entry changes its mtime). One stat per request instead of a probe per
        encoding. None when the directory can't be read (then every sibling is probed)."""
        try:
            status = os.stat(real_dir)
        except OSError:
            return None
        key = (status.st_ino, status.st_mtime_ns)
        cached = self._sibling_cache.get(real_dir)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            names = frozenset(
                entry for entry in os.listdir(real_dir) if entry.endswith(_COMPRESSED_SUFFIXES)
            )
        except OSError:
            return None
        if len(self._sibling_cache) >= _SIBLING_CACHE_SIZE:
            self._sibling_cache.clear()
        self._sibling_cache[real_dir] = (key, names)
        return names

    async def _send_variant(
        self, exchange: Exchange, opened: Opened, name: str, coding: bytes | None, varies: bool,
        location: tuple[str, str],
    ) -> None:
        status = opened.stat
        size = status.st_size
        variant = Variant(make_etag(status.st_ino, size, status.st_mtime_ns),
                          clamp_to_http_date(status.st_mtime_ns // 1_000_000_000))
        validators: Fields = [(b"etag", variant.etag), (b"last-modified", format_http_date(variant.mtime))]
        validators += self._cache_control
        if varies:
            validators.append(_VARY)
        request = exchange.head
        decision = None
        if any(field[:3] == b"if-" for field, _ in request.headers):
            conditional = {field: request.headers.get_all(field) for field in _CONDITIONAL}
            decision = check_preconditions(request.method, conditional, variant)
        if decision == 304:
            # RFC 9110 §15.4.5: the validators and caching fields of the 200, no content.
            await exchange.send_head(304, validators)
            await exchange.send_body(b"")
            return
        if decision == 412:
            await _empty(exchange, 412, validators)
            return
        media_type = content_type(name)
        fields: Fields = [(b"content-type", media_type), _NOSNIFF, _ACCEPT_RANGES, *validators]
        if coding is not None:
            fields.append((b"content-encoding", coding))
        ranges = self._ranges(exchange, variant, size)
        if ranges == []:
            fields.append((b"content-range", b"bytes */%d" % size))
            await _empty(exchange, 416, fields)
        elif ranges is None:
            if not varies and size <= SMALL_FILE:
                # The same head answers every plain GET/HEAD of this file until it changes.
                self._remember(request.target, location[0], opened, location[1],
                               [*fields, (b"content-length", b"%d" % size)])
            await _send_whole(exchange, opened, fields, size)
        elif len(ranges) == 1:
            await _send_single_range(exchange, opened, fields, ranges[0], size)
        else:
            await _send_multipart(exchange, opened, fields, ranges, size, media_type)

    def _ranges(self, exchange: Exchange, variant: Variant, size: int) -> list[tuple[int, int]] | None:
        request = exchange.head
        # RFC 9110 §14.2: Range is defined for GET only; a HEAD answers as its GET would
        # without a Range.
        if request.method != b"GET":
            return None
        values = request.headers.get_all(b"range")
        if len(values) != 1:
            return None
        specs = parse_range(values[0])
        if specs is None:
            return None  # invalid syntax: ignore the field
        if_range = request.headers.get(b"if-range")
        if if_range is not None and not if_range_allows(if_range, variant):
            return None
        return plan_ranges(specs, size)


# ---------------------------------------------------------------------------- listings


def _build_listing(fd: int, real_dir: str, shown_path: str, has_parent: bool, files: StaticFiles) -> bytes:
    """Read and render the listing of directory ``fd`` (closed here), in an executor thread:
    a directory of 50,000 names takes tens of milliseconds even with the page capped, far
    too long to hold the event loop. Touches nothing shared but the thread-safe resolver."""
    def allowed(name: str) -> bool:
        return files.resolver.allows(os.path.join(real_dir, name))

    try:
        listing = read_directory(fd, files.settings.dotfiles, allowed, files.settings.listing_limit)
    finally:
        os.close(fd)
    return render_listing(shown_path, listing, has_parent)


# ---------------------------------------------------------------------------- bodies


async def _send_whole(exchange: Exchange, opened: Opened, fields: Fields, size: int) -> None:
    fields.append((b"content-length", b"%d" % size))
    if exchange.head.method == b"HEAD" or size == 0:
        await exchange.send_head(200, fields)
        await exchange.send_body(b"")
        return
    await _send_span(exchange, opened, 200, fields, 0, size)


async def _send_single_range(
    exchange: Exchange, opened: Opened, fields: Fields, byte_range: tuple[int, int], size: int
) -> None:
    start, end = byte_range
    fields.append((b"content-range", b"bytes %d-%d/%d" % (start, end, size)))
    fields.append((b"content-length", b"%d" % (end - start + 1)))
    await _send_span(exchange, opened, 206, fields, start, end - start + 1)


async def _send_span(exchange: Exchange, opened: Opened, status: int, fields: Fields, offset: int,
                     count: int) -> None:
    """The head, then ``count`` bytes from ``offset``: zero-copy, or in one write when small."""
    if count <= SMALL_FILE:
        # One pread and one write (head and body together) beat setting up sendfile for a
        # single packet's worth of bytes: ~40% more small-file requests per second.
        data = _read(opened, offset, count)
        await exchange.send_head(status, fields)
        await exchange.send_body(data)
        return
    await exchange.send_head(status, fields)
    with open(opened.detach(), "rb", buffering=0) as file:
        await exchange.send_file(file, offset, count)


def _read(opened: Opened, offset: int, count: int) -> bytes:
    data = os.pread(opened.fd, count, offset)
    if len(data) != count:
        # Nothing is sent yet, so the client can still get an honest answer.
        raise StaticError(503, "file changed while being read")
    return data


async def _send_multipart(
    exchange: Exchange, opened: Opened, fields: Fields, ranges: list[tuple[int, int]], size: int,
    media_type: bytes,
) -> None:
    # RFC 9110 §14.6: multipart/byteranges, one part per range, each with Content-Range.
    boundary = secrets.token_hex(16).encode("ascii")
    heads = []
    for index, (start, end) in enumerate(ranges):
        heads.append(
            (b"--" if index == 0 else b"\r\n--") + boundary
            + b"\r\ncontent-type: " + media_type
            + b"\r\ncontent-range: bytes %d-%d/%d\r\n\r\n" % (start, end, size)
        )
    closing = b"\r\n--" + boundary + b"--\r\n"
    data_length = sum(end - start + 1 for start, end in ranges)
    length = sum(len(head) for head in heads) + data_length + len(closing)
    fields[0] = (b"content-type", b"multipart/byteranges; boundary=" + boundary)
    fields.append((b"content-length", b"%d" % length))
    if data_length <= SMALL_FILE:
        pieces: list[bytes] = []
        for head, (start, end) in zip(heads, ranges):
            pieces += (head, _read(opened, start, end - start + 1))
        body = b"".join(pieces) + closing
        await exchange.send_head(206, fields)
        await exchange.send_body(body)
        return
    await exchange.send_head(206, fields)
    with open(opened.detach(), "rb", buffering=0) as file:
        for head, (start, end) in zip(heads, ranges):
            await exchange.send_body(head, more=True)
            await exchange.send_file(file, start, end - start + 1, more=True)
        await exchange.send_body(closing)


# ---------------------------------------------------------------------------- small responses

#: The bodies of the statuses answered here, from the one reason-phrase table (synack.h1).
_ERROR_TEXT = {
    status: b"%d %s\n" % (status, reason_phrase(status)) for status in (400, 403, 404, 405, 500, 503)
}


async def _error(exchange: Exchange, status: int, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = _ERROR_TEXT.get(status, b"%d\n" % status)
    await exchange.send_head(status, [
        (b"content-type", b"text/plain; charset=utf-8"),
        _NOSNIFF,
        *extra,
        (b"content-length", b"%d" % len(body)),
    ])
    await exchange.send_body(body)


async def _fail(exchange: Exchange, status: int, error: Exception) -> None:
    if status >= 500:
        error_log.warning("static file %s: %s", exchange.head.target.decode("latin-1"), error)
    if exchange.response_started:
        exchange.abort()  # part of the response is out: dropping it is the only honest end
    else:
        await _error(exchange, status)


async def _empty(exchange: Exchange, status: int, fields: Fields) -> None:
    fields.append((b"content-length", b"0"))
    await exchange.send_head(status, fields)
    await exchange.send_body(b"")


async def _method_response(exchange: Exchange, method: bytes) -> None:
    if method == b"OPTIONS":
        await exchange.send_head(204, [(b"allow", ALLOW)])
        await exchange.send_body(b"")
        return
    await _error(exchange, 405, ((b"allow", ALLOW),))

