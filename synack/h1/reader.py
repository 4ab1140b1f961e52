"""Request-head parser and body readers (Content-Length, chunked).

Framing and request-smuggling rules live here (RFC 9112 §2-§7, RFC 9110 §5-§8).
Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

import re
from typing import Any, Final

from . import grammar
from .errors import RemoteProtocolError
from .events import Data, EndOfMessage, Framing, Request
from .headers import Headers, split_list
from .limits import Limits, remember

__all__ = [
    "parse_head",
    "parse_head_in",
    "parse_fields",
    "check_head_prefix",
    "split_target",
    "LengthReader",
    "ChunkedReader",
    "EMPTY_EOM",
]

EMPTY_EOM = EndOfMessage()
# Globals, not Enum attribute lookups (about half the cost) on the per-request path.
_FRAMING_NONE: Final = Framing.NONE
_FRAMING_LENGTH: Final = Framing.LENGTH
_FRAMING_CHUNKED: Final = Framing.CHUNKED

_BARE_LF_LINES = re.compile(rb"\r?\n")
#: Fields that proxies use to name the client, scheme and host (RFC 7239 and the de-facto
#: X-Forwarded-*): the Request says whether any is present, so that the driver, which believes
#: them only from trusted peers, looks no further for the great majority of requests.
_PROXY_FIELDS: Final = frozenset(
    (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port")
)
_SPECIAL: Final = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
) | _PROXY_FIELDS
_TOKEN: Final = grammar.FIELD_NAME.fullmatch
_VALUE: Final = grammar.FIELD_VALUE.fullmatch
#: The methods the fast path takes without the token check (CONNECT needs the careful path).
_KNOWN_METHODS: Final = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"))
_TARGET_TABLE: Final = grammar.TARGET_TABLE
#: Kinds of field: one that shapes the exchange (in _SPECIAL), a proxy's, any other.
_PLAIN: Final = 0
_SHAPING: Final = 1
_PROXY: Final = 2
#: Field lines found valid before, with what the fast path makes of them: browsers and
#: clients repeat most of their lines on every request, and a dict lookup costs a fraction of
#: the checks. Only lines of the names in _CACHED_FIELDS, whose values are no secret (a lookup
#: that hits is faster than one that misses, so a cached Cookie or Authorization line could be
#: probed for by timing); at most _FIELD_ENTRY_SIZE lines of up to _FIELD_ENTRY_BYTES bytes,
#: emptied when full.
#: (The pairs are typed Any: compiled, a tuple[bytes, bytes] would be unboxed from the entry
#: and boxed again, a new tuple per line, where the remembered one itself can be handed out.)
_FIELD_ENTRIES: Final[dict[bytes, tuple[Any, int]]] = {}
_FIELD_ENTRY_SIZE: Final = 512
_FIELD_ENTRY_BYTES: Final = 256
_CACHED_FIELDS: Final = frozenset((
    b"host", b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"accept-charset",
    b"connection", b"keep-alive", b"cache-control", b"pragma", b"content-type", b"content-length",
    b"transfer-encoding", b"expect", b"upgrade", b"te", b"dnt", b"upgrade-insecure-requests",
    b"sec-fetch-dest", b"sec-fetch-mode", b"sec-fetch-site", b"sec-fetch-user", b"sec-ch-ua",
    b"sec-ch-ua-mobile", b"sec-ch-ua-platform", b"priority", b"origin", b"x-requested-with",
))
_REQUEST_LINE_PREFIX: Final = grammar.REQUEST_LINE_PREFIX.fullmatch
_TRANSFER_CODING: Final = grammar.TRANSFER_CODING.fullmatch
_valid_host: Final = grammar.valid_host
#: Host values found valid (RFC 9110 §7.2) before: nearly every request on a server repeats one
#: of a few, and a set lookup costs a twentieth of the grammar check for "name:port". Values up
#: to _KNOWN_HOST_BYTES long only, at most _KNOWN_HOSTS_SIZE of them; emptied when full.
_KNOWN_HOSTS: Final[set[bytes]] = set()
_KNOWN_HOSTS_SIZE: Final = 256
_KNOWN_HOST_BYTES: Final = 262  # a DNS name (253) plus ":" and a port


def _host_ok(value: bytes) -> bool:
    """``grammar.valid_host(value)``, remembering the values that pass (the callers look in
    _KNOWN_HOSTS first, inline)."""
    if not _valid_host(value):
        return False
    if len(value) <= _KNOWN_HOST_BYTES:
        if len(_KNOWN_HOSTS) >= _KNOWN_HOSTS_SIZE:
            _KNOWN_HOSTS.clear()
        _KNOWN_HOSTS.add(value)
    return True


def _error(message: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(message, status)


def parse_fields(
    lines: list[bytes], limits: Limits, kind: str = "header"
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Parse field lines into (lowercased name, value) pairs plus (raw name, value) pairs.

    Raises:
        RemoteProtocolError: 400 for malformed lines, 431 for too many or too large fields.
    """
    if len(lines) > limits.max_header_count:
        raise _error(f"too many {kind} fields (limit {limits.max_header_count})", 431)
    items: list[tuple[bytes, bytes]] = []
    raw: list[tuple[bytes, bytes]] = []
    max_field = limits.max_field_bytes
    name_ok = grammar.FIELD_NAME.fullmatch
    value_ok = grammar.FIELD_VALUE.fullmatch
    for line in lines:
        if len(line) > max_field:
            raise _error(f"{kind} field too large (limit {max_field} bytes)", 431)
        if line[:1] in (b" ", b"\t"):
            # obs-fold (RFC 9112 §5.2): a server MUST reject it or replace it with SP.
            if not limits.allow_obs_fold or not items:
                raise _error(f"obsolete line folding in {kind} fields")
            value = line.strip(b" \t")
            if value_ok(value) is None:
                raise _error(f"invalid character in {kind} value")
            name, previous = items[-1]
            items[-1] = (name, previous + b" " + value if previous else value)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise _error(f"{kind} line without a colon")
        if name_ok(name) is None:
            # Covers whitespace between name and colon (RFC 9112 §5.1: MUST reject with 400).
            raise _error(f"invalid {kind} name {name[:40]!r}")
        value = value.strip(b" \t")
        if value_ok(value) is None:
            raise _error(f"invalid character in {kind} value of {name[:40]!r}")
        items.append((name.lower(), value))
        raw.append((name, value))
    return items, raw


def check_head_prefix(
    buffer: bytes | bytearray, limits: Limits
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes | None] | None:
    """The checks that can refuse a head before it is complete, in this order: a start that
    cannot become a request-line (400), a request line over the limit (414), a complete
    request line that is invalid (400, 505 or 501), a bare LF (400).

    Run on every partial head, on an over-long complete one and before the careful parse, in
    this order, so that the same bytes get the same status however they were split: each check
    only looks at a bounded prefix, and one that fires on a prefix fires on the whole head.

    Returns:
        The parsed request line (method, target, version, path, query, authority) once its
        CRLF has arrived, else None.

    Raises:
        RemoteProtocolError: 400, 414, 501 or 505 as above.
    """
    limit = limits.max_request_line
    line_end = buffer.find(b"\n", 0, limit + 2)
    # RFC 9112 §3: bytes that start no request-line (a TLS handshake, a versionless HTTP/0.9
    # line) get 400 at once rather than a wait for the head timeout.
    stop = line_end if line_end >= 0 else min(len(buffer), limit + 2)
    carriage_return = buffer.find(b"\r", 0, stop)
    if _REQUEST_LINE_PREFIX(buffer, 0, stop if carriage_return < 0 else carriage_return) is None:
        raise _error("malformed request line")
    # RFC 9112 §3: request line over the limit → 414. Measured to the first LF (or the end
    # of what arrived), with one byte of room for the CR of its CRLF.
    if (line_end if line_end >= 0 else len(buffer)) > limit + 1:
        raise _error(f"request line too long (limit {limit} bytes)", 414)
    request_line = None
    if line_end >= 0:
        if buffer[line_end - 1 : line_end] == b"\r":
            request_line = _parse_request_line(bytes(buffer[: line_end - 1]), limits)
        elif limits.allow_bare_lf:
            request_line = _parse_request_line(bytes(buffer[:line_end]), limits)
    if not limits.allow_bare_lf:
        # RFC 9112 §2.2: a bare LF line ending MAY be accepted; we refuse it unless configured.
        # Only the bytes a head within the limit can span are looked at (then 431 applies).
        stop = limits.max_head_bytes + 3
        if buffer.count(b"\n", 0, stop) != buffer.count(b"\r\n", 0, stop):
            raise _error("bare LF line ending in request head")
    return request_line


def _split_head(head: bytes, limits: Limits) -> list[bytes]:
    if limits.allow_bare_lf:
        return _BARE_LF_LINES.split(head)
    lines = head.split(b"\r\n")
    return lines


def _parse_request_line(
    line: bytes, limits: Limits
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes | None]:
    """(method, target, version, path, query, authority) of a request line without its CRLF."""
    if len(line) > limits.max_request_line:
        raise _error(f"request line too long (limit {limits.max_request_line} bytes)", 414)
    match = grammar.REQUEST_LINE.fullmatch(line)
    if match is None:
        if grammar.HTTP_VERSION_LIKE.fullmatch(line) and b"\r" not in line and b"\n" not in line:
            raise _error("unsupported HTTP version", 505)
        if b"\n" in line or b"\r" in line:
            raise _error("bare CR or LF in request line")
        raise _error("malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1":
        # HTTP/0.9, HTTP/2.0 and beyond are not spoken over HTTP/1.1 framing.
        raise _error("unsupported HTTP version", 505)
    # RFC 9110 §2.5: a higher minor version is processed as the highest we implement.
    version = b"1.0" if minor == b"0" else b"1.1"
    path, query, authority = split_target(method, target)
    return method, target, version, path, query, authority


def split_target(method: bytes, target: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Path, query and (absolute-form only) authority of a request-target, accepting each of
    the four forms of RFC 9112 §3.2 only where it belongs.

    Raises:
        RemoteProtocolError: 400 for a form the method cannot use or a bad authority, 501 for
            CONNECT.
    """
    if target[:1] == b"/":
        if method == b"CONNECT":
            raise _error("CONNECT requires an authority-form target")
        path, _, query = target.partition(b"?")  # origin-form (RFC 9112 §3.2.1)
        return path, query, None
    if target == b"*":
        if method != b"OPTIONS":
            raise _error("asterisk-form target is only allowed with OPTIONS")
        return target, b"", None
    if method == b"CONNECT":
        # authority-form = uri-host ":" port (RFC 9112 §3.2.3): the Host grammar, port required.
        match = grammar.HOST.fullmatch(target)
        if match is None or not match.group(1) or not _valid_host(target):
            raise _error("CONNECT requires an authority-form target")
        raise _error("CONNECT is not supported", 501)
    match = grammar.ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise _error("invalid request target")
    # absolute-form (RFC 9112 §3.2.2: servers MUST accept it). Its authority stands for the
    # Host, so it obeys the Host grammar: no userinfo (RFC 9110 §4.2.4: treat it as an
    # error), not empty (RFC 9110 §4.2.1: an empty host MUST be rejected as invalid).
    authority, rest = match.groups()
    if not authority or not _host_ok(authority):
        raise _error("invalid authority in absolute-form target")
    path, _, query = rest.partition(b"?")
    # RFC 9112 §3.2.1: an empty path is sent as "/" in origin-form; the same path here.
    return path or b"/", query, authority


def parse_head(head: bytes, limits: Limits) -> Request:
    """Parse a request head (without its final empty line) into a ``Request``.

    Raises:
        RemoteProtocolError: with the status the violation calls for.
    """
    return parse_head_in(head, len(head), limits)


def parse_head_in(buffer: bytes | bytearray, end: int, limits: Limits) -> Request:
    """``parse_head(buffer[:end])``, by the fast path when the head has the common shape.

    Raises:
        RemoteProtocolError: with the status the violation calls for.
    """
    if end <= limits.max_field_bytes:  # (so no line can be over the limit)
        # The common shape: an origin-form HTTP/1.0 or 1.1 request line and CRLF-separated
        # "token:value" lines with nothing but field-vchars, SP and HTAB. Anything else (or
        # anything wrong) takes the careful path, which names the fault.
        # tests/h1/test_head_paths.py holds this path to the same verdicts as that one.
        # (bytes: the head's own copy; a bytearray, the buffer: one copy out of it, as bytes)
        head = buffer[:end] if type(buffer) is bytes else bytes(memoryview(buffer)[:end])
        lines = head.split(b"\r\n")
        request_line = lines[0]
        parts = request_line.split(b" ")
        if len(parts) == 3 and len(lines) <= limits.max_header_count + 1:
            method, target, version = parts
            if version == b"HTTP/1.1":
                version = b"1.1"
            elif version == b"HTTP/1.0":
                version = b"1.0"
            elif len(version) == 8 and version[:7] == b"HTTP/1." and version[7:].isdigit():
                version = b"1.1"  # RFC 9110 §2.5: a higher minor version is processed as 1.1
            else:
                return _parse_head_general(buffer, end, limits)
            if (
                target[:1] == b"/"
                and target.translate(_TARGET_TABLE) == target
                and (method in _KNOWN_METHODS or (method != b"CONNECT" and _TOKEN(method) is not None))
                and len(request_line) <= limits.max_request_line
            ):
                # (Lists of Any, as the entries: compiled, typed pairs would be made anew.)
                items: list[Any] = []
                special: list[tuple[bytes, bytes]] = []
                forwarded = False
                field_lines = lines[1:]
                for line in field_lines:
                    entry = _FIELD_ENTRIES.get(line)
                    if entry is None:
                        entry = _field_entry(line)
                        if entry is None:
                            return _parse_head_general(buffer, end, limits)
                    pair, kind = entry
                    items.append(pair)
                    if kind:
                        if kind == _PROXY:
                            forwarded = True  # (read by server/proxy.py; nothing to decide here)
                        else:
                            special.append(pair)
                path, _, query = target.partition(b"?")  # origin-form (RFC 9112 §3.2.1)
                count = len(special)
                if count == 1:
                    lower, value = special[0]
                    if lower == b"host" and (value in _KNOWN_HOSTS or _host_ok(value)):
                        # Host and no other field that shapes the exchange (the common GET):
                        # no body, the version's default persistence, no expectation, no upgrade.
                        return Request(method, target, version, items, field_lines, version == b"1.1", False,
                                       _FRAMING_NONE, None, None, path, query, value, forwarded)
                elif count == 2:
                    # Host and, either order, one plain Content-Length (the common POST: 1*DIGIT,
                    # bounded like CONTENT_LENGTH, within the body limit) or one one-token
                    # Connection (keep-alive or close, as browsers send it).
                    (lower, value), (other, second) = special
                    if lower != b"host":
                        lower, value, other, second = other, second, lower, value
                    if lower == b"host" and (value in _KNOWN_HOSTS or _host_ok(value)):
                        if other == b"content-length":
                            if second.isdigit() and len(second) <= 18:
                                declared = int(second)
                                if limits.max_body_bytes is None or declared <= limits.max_body_bytes:
                                    return Request(method, target, version, items, field_lines, version == b"1.1", False,
                                                   _FRAMING_LENGTH if declared else _FRAMING_NONE, declared,
                                                   None, path, query, value, forwarded)
                        elif other == b"connection":
                            token = second.lower()
                            if token == b"keep-alive" or token == b"close":
                                return Request(method, target, version, items, field_lines, token == b"keep-alive", False,
                                               _FRAMING_NONE, None, None, path, query, value, forwarded)
                return _build_request(
                    method, target, version, items, field_lines, special, limits, path, query, None, forwarded
                )
    return _parse_head_general(buffer, end, limits)


def _field_entry(line: bytes) -> tuple[Any, int] | None:
    """A field line's ((lowercased name, value), kind), or None when the line is not a plain
    "token:value" one; remembered when its name is in _CACHED_FIELDS."""
    name, colon, value = line.partition(b":")
    if not colon or _TOKEN(name) is None or _VALUE(value) is None:
        return None
    value = value.strip(b" \t")
    lower = name.lower()
    kind = _PLAIN
    if lower in _SPECIAL:
        kind = _PROXY if lower in _PROXY_FIELDS else _SHAPING
    entry: tuple[Any, int] = ((lower, value), kind)  # (Any: as _FIELD_ENTRIES)
    if lower in _CACHED_FIELDS and len(line) <= _FIELD_ENTRY_BYTES:
        remember(_FIELD_ENTRIES, _FIELD_ENTRY_SIZE, line, entry)
    return entry


def _parse_head_general(buffer: bytes | bytearray, end: int, limits: Limits) -> Request:
    """The careful path of ``parse_head_in``: line by line, naming the exact fault. (Called
    directly only by the test that holds the fast path to the same verdicts.)"""
    # The same first checks as while the head was arriving, so that a head with several
    # faults gets the same status whether it came in one piece or many.
    head = bytes(buffer[:end])
    request_line = check_head_prefix(head, limits)
    lines = _split_head(head, limits)
    if request_line is None:  # a head of one line: no line end inside ``head``
        request_line = _parse_request_line(lines[0], limits)
    method, target, version, path, query, authority = request_line
    items, raw = parse_fields(lines[1:], limits)
    special = [(name, value) for name, value in items if name in _SPECIAL]
    return _build_request(
        method, target, version, items, raw, special, limits, path, query, authority
    )


def _build_request(
    method: bytes,
    target: bytes,
    version: bytes,
    items: list[tuple[bytes, bytes]],
    raw: list[Any],
    special_fields: list[tuple[bytes, bytes]],
    limits: Limits,
    path: bytes,
    query: bytes,
    authority: bytes | None,
    forwarded: bool = False,
) -> Request:
    """The Request event, with keep-alive, framing, expectations, upgrade and the effective
    host decided once. ``special_fields`` are the (lowercased name, value) pairs whose names
    are in _SPECIAL (the fast path leaves the proxy fields out and says ``forwarded`` if it
    saw one); ``authority`` is an absolute-form target's."""
    special: dict[bytes, list[bytes]] = {}
    for name, value in special_fields:
        values = special.get(name)
        if values is None:
            special[name] = [value]
        else:
            values.append(value)
    host = _check_host(special.get(b"host"), version)
    if authority is not None:
        host = _replace_host(items, raw, authority)
    if b"transfer-encoding" in special or b"content-length" in special:
        framing, length = _body_framing(special, version, limits)
    else:
        framing, length = _FRAMING_NONE, None
    connection_values = special.get(b"connection")
    connection = _tokens(connection_values) if connection_values else ()
    if version == b"1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
    expect_continue = False
    upgrade = None
    expect_values = special.get(b"expect")
    if expect_values is not None:
        expect_continue = _expectation(expect_values, version) and framing is not _FRAMING_NONE
    upgrade_values = special.get(b"upgrade")
    if upgrade_values and b"upgrade" in connection:
        upgrade = upgrade_values[0]
    return Request(
        method, target, version, items, raw, keep_alive, expect_continue, framing, length, upgrade,
        path, query, host, forwarded or not _PROXY_FIELDS.isdisjoint(special),
    )


def _replace_host(
    items: list[tuple[bytes, bytes]], raw: list[tuple[bytes, bytes]], authority: bytes
) -> bytes:
    """RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore the Host field
    and use the target's authority instead. The field list says so too (one place for every
    adapter), and gains a Host field when the client sent none (HTTP/1.0)."""
    for index, (name, _) in enumerate(items):
        if name == b"host":
            items[index] = (b"host", authority)
            return authority
    items.append((b"host", authority))
    raw.append((b"host", authority))
    return authority


def _tokens(values: list[bytes] | None) -> list[bytes]:
    if not values:
        return []
    result: list[bytes] = []
    for value in values:
        result.extend(split_list(value))
    return result


def _check_host(hosts: list[bytes] | None, version: bytes) -> bytes | None:
    """The one valid Host value (None when absent, which only HTTP/1.0 may be)."""
    # RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request that lacks a Host
    # header field, and to any request with more than one Host header field line or a Host
    # header field with an invalid field value (the grammar: grammar.valid_host).
    if hosts is None:
        if version == b"1.1":
            raise _error("missing Host header")
        return None
    if len(hosts) > 1:
        raise _error("more than one Host header")
    host = hosts[0]
    if host not in _KNOWN_HOSTS and not _host_ok(host):
        raise _error("invalid Host header")
    return host


def _body_framing(
    special: dict[bytes, list[bytes]], version: bytes, limits: Limits
) -> tuple[Framing, int | None]:
    """Decide how the request body is delimited (RFC 9112 §6.3)."""
    transfer_encoding = special.get(b"transfer-encoding")
    content_length = special.get(b"content-length")
    if transfer_encoding is not None:
        if version == b"1.0":
            # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            raise _error("Transfer-Encoding is not allowed in HTTP/1.0 requests")
        if content_length is not None:
            # RFC 9112 §6.3 item 3: both present is a smuggling vector; reject and close.
            raise _error("both Transfer-Encoding and Content-Length")
        codings = _tokens(transfer_encoding)
        for coding in codings:
            if _TRANSFER_CODING(coding) is None:
                # RFC 9112 §7: transfer-coding = token *( OWS ";" OWS transfer-parameter );
                # anything else is malformed framing (400), not an unknown coding (501).
                raise _error("invalid Transfer-Encoding")
        if not codings or codings[-1] != b"chunked":
            # RFC 9112 §6.3 item 4: chunked not final → MUST respond 400 and close.
            raise _error("Transfer-Encoding must end in chunked")
        if b"chunked" in codings[:-1]:
            # RFC 9112 §6.1: a sender MUST NOT apply chunked more than once; this is malformed
            # framing (400), not a coding we lack (501).
            raise _error("chunked applied more than once")
        if len(codings) > 1:
            # RFC 9112 §6.1: a transfer coding we don't understand → SHOULD respond 501.
            raise _error("unsupported transfer coding", 501)
        return _FRAMING_CHUNKED, None
    if content_length is None:
        return _FRAMING_NONE, None
    length = _content_length(content_length)
    if limits.max_body_bytes is not None and length > limits.max_body_bytes:
        raise _error(f"request body too large (limit {limits.max_body_bytes} bytes)", 413)
    return (_FRAMING_LENGTH if length else _FRAMING_NONE), length


def _content_length(values: list[bytes]) -> int:
    # RFC 9110 §8.6: Content-Length = 1*DIGIT. A list of identical values may be accepted as
    # one; differing values are an unrecoverable error (RFC 9112 §6.3 item 5).
    seen: bytes | None = None
    for value in values:
        for part in value.split(b","):
            part = part.strip(b" \t")
            if grammar.CONTENT_LENGTH.fullmatch(part) is None:
                raise _error("invalid Content-Length")
            if seen is None:
                seen = part
            elif int(part) != int(seen):
                raise _error("conflicting Content-Length values")
    assert seen is not None
    return int(seen)


def _expectation(values: list[bytes] | None, version: bytes) -> bool:
    if not values:
        return False
    expectations = _tokens(values)
    if all(item == b"100-continue" for item in expectations) and expectations:
        # RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue MUST be ignored.
        return version == b"1.1"
    raise _error("unsupported expectation", 417)


class LengthReader:
    """Body of exactly ``length`` bytes."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, buffer: bytearray) -> Data | EndOfMessage | None:
        if self.remaining == 0:
            return EMPTY_EOM
        if not buffer:
            return None
        count = min(self.remaining, len(buffer))
        data = bytes(buffer[:count]) if count < len(buffer) else bytes(buffer)
        del buffer[:count]
        self.remaining -= count
        return Data(data)

    def incomplete(self) -> str:
        return f"client closed with {self.remaining} body bytes unsent"


_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedReader:
    """Body in chunked transfer coding (RFC 9112 §7.1), trailers bounded and parsed."""

    __slots__ = ("_limits", "_state", "_remaining", "_total")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state = _SIZE
        self._remaining = 0
        self._total = 0

    def read(self, buffer: bytearray) -> Data | EndOfMessage | None:
        while True:
            state = self._state
            if state == _DATA:
                if not buffer:
                    return None
                count = min(self._remaining, len(buffer))
                data = bytes(buffer[:count])
                del buffer[:count]
                self._remaining -= count
                if self._remaining == 0:
                    self._state = _DATA_END
                return Data(data)
            if state == _SIZE:
                if not self._read_size(buffer):
                    return None
            elif state == _DATA_END:
                if len(buffer) < 2:
                    if buffer and buffer[0] != 13:
                        raise _error("missing CRLF after chunk data")
                    return None
                if buffer[0] != 13 or buffer[1] != 10:
                    raise _error("missing CRLF after chunk data")
                del buffer[:2]
                self._state = _SIZE
            elif state == _TRAILERS:
                return self._read_trailers(buffer)
            else:
                return EMPTY_EOM

    def _read_size(self, buffer: bytearray) -> bool:
        limit = self._limits.max_chunk_ext_bytes
        end = buffer.find(b"\r\n", 0, limit + 2)
        if end < 0:
            # "+ 1": a line exactly at the limit may still be waiting for the LF of its CRLF;
            # the verdict must not depend on how the bytes were split (RFC 9112 §7.1).
            if len(buffer) > limit + 1:
                raise _error(f"chunk header too long (limit {limit} bytes)")
            if b"\n" in buffer:
                raise _error("bare LF in chunk header")
            return False
        match = grammar.CHUNK_SIZE_LINE.fullmatch(buffer, 0, end)
        if match is None:
            raise _error("invalid chunk size line")
        size = int(match.group(1), 16)
        del buffer[: end + 2]
        self._total += size
        limit_body = self._limits.max_body_bytes
        if limit_body is not None and self._total > limit_body:
            raise _error(f"request body too large (limit {limit_body} bytes)", 413)
        if size == 0:
            self._state = _TRAILERS
        else:
            self._remaining = size
            self._state = _DATA
        return True

    def _read_trailers(self, buffer: bytearray) -> EndOfMessage | None:
        if buffer[:2] == b"\r\n":
            del buffer[:2]
            self._state = _DONE
            return EMPTY_EOM
        limit = self._limits.max_trailer_bytes
        end = buffer.find(b"\r\n\r\n", 0, limit + 4)
        if end < 0:
            _check_trailer_line_ends(buffer, limit)
            # "+ 3": a section exactly at the limit may still be missing the last byte of its
            # final CRLF CRLF (RFC 9112 §7.1.2); don't let the split decide.
            if len(buffer) > limit + 3:
                raise _error(f"trailer section too large (limit {limit} bytes)", 431)
            return None
        block = bytes(buffer[:end])
        _check_trailer_line_ends(block, limit)
        del buffer[: end + 4]
        items, raw = parse_fields(block.split(b"\r\n"), self._limits, "trailer")
        self._state = _DONE
        return EndOfMessage(Headers(items, raw))

    def incomplete(self) -> str:
        return "client closed in the middle of a chunked body"


def _check_trailer_line_ends(buffer: bytes | bytearray, limit: int) -> None:
    # RFC 9112 §7.1.2: trailer lines end in CRLF. Checked before the size limit and the field
    # parse, on a bounded prefix, so the status does not depend on how the bytes were split.
    stop = limit + 3
    if buffer.count(b"\n", 0, stop) != buffer.count(b"\r\n", 0, stop):
        raise _error("bare LF in trailer section")
