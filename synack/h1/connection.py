"""ServerConnection: the server half of HTTP/1.1 as a sans-I/O state machine.

Theory of operation: bytes go in with ``receive_data``; ``next_event`` turns them into
``Request``, ``Data`` and ``EndOfMessage`` events (or a ``Signal``). The application's answer goes
through ``send`` (or ``send_response`` for a complete response in one call), which returns the
bytes to write. Each side has its own state; when both reach DONE and the connection may be
reused, ``next_cycle`` resets them and pipelined bytes already buffered are parsed next.
Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Final

from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Framing,
    InformationalResponse,
    Request,
    Response,
    Signal,
)
from .headers import split_list
from .limits import Limits, remember
from .reader import EMPTY_EOM, ChunkedReader, LengthReader, check_head_prefix, parse_head_in
from .writer import (
    ChunkedWriter,
    CloseWriter,
    LengthWriter,
    NoBodyWriter,
    check_field,
    encode_fields,
    status_line,
)
from .writer import _STATUS_LINES as _status_lines


__all__ = ["ServerConnection", "RequestState", "ResponseState", "FieldBlock"]

_HEAD_END_LENIENT: Final = re.compile(rb"\r?\n\r?\n")
_CONNECTION_CLOSE: Final = b"connection: close\r\n"
_CONNECTION_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
_CHUNKED: Final = b"transfer-encoding: chunked\r\n"
_CONTINUE = status_line(100) + b"\r\n"
#: ``writer.status_line``'s cache, bound here by assignment: on 3.11 a method of a name bound
#: by ``from ... import`` is called through a new bound method each time (the compiler takes
#: such names for modules), a dictionary lookup's worth more per response.
_STATUS_LINES: Final[dict[int, bytes]] = _status_lines


class FieldBlock:
    """Response header fields serialised and validated once, for a head sent many times
    (a cached static file's, say): ``send``/``send_response`` copy its bytes instead of
    checking each field again. Iterating yields the ``(name, value)`` pairs as given.

    It may carry one Content-Length; Transfer-Encoding and Connection are refused (the core
    decides framing and persistence per request).

    Raises:
        LocalProtocolError: a field breaks HTTP, as ``send`` would say.
    """

    __slots__ = ("lines", "content_length", "length_line", "length_number", "_pairs")

    def __init__(self, fields: Any) -> None:
        pairs = tuple(fields)
        lines = []
        length: bytes | None = None
        for name, value in pairs:
            check_field(name, value)
            lower = name.lower()
            if lower in (b"transfer-encoding", b"connection"):
                raise LocalProtocolError(f"{name!r} cannot be part of a FieldBlock")
            if lower == b"content-length":
                if length is not None or not value.isdigit() or len(value) > _LENGTH_DIGITS:
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                length = value
                continue
            lines.append(b"%s: %s\r\n" % (name, value))
        #: The serialised fields other than Content-Length, each line ending in CRLF.
        self.lines = b"".join(lines)
        #: The Content-Length value, or None; then its line and its number (computed once).
        self.content_length = length
        self.length_line = b"" if length is None else _length_line(length)
        self.length_number = 0 if length is None else int(length)
        self._pairs = pairs

    def __iter__(self) -> Any:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


class RequestState(enum.Enum):
    #: Waiting for (the rest of) a request head.
    IDLE = "IDLE"
    #: Head received; body events are being produced.
    BODY = "BODY"
    #: The whole request was received; waiting for the response to finish.
    DONE = "DONE"
    #: The client closed its side before a new request began.
    CLOSED = "CLOSED"
    #: The client broke the protocol; nothing more will be parsed.
    ERROR = "ERROR"


class ResponseState(enum.Enum):
    #: No response started for the current request.
    IDLE = "IDLE"
    #: Head sent; body being written.
    BODY = "BODY"
    #: Response complete.
    DONE = "DONE"
    #: The response (or the app) failed; the connection must be aborted.
    ERROR = "ERROR"


# The enum members as module globals: the hot paths compare states many times per request,
# and a global is about half the cost of an Enum class attribute lookup.
# (Final: the compiled build reads them as constants, not from the module's dict.)
_RQ_IDLE: Final = RequestState.IDLE
_RQ_BODY: Final = RequestState.BODY
_RQ_DONE: Final = RequestState.DONE
_RQ_CLOSED: Final = RequestState.CLOSED
_RQ_ERROR: Final = RequestState.ERROR
_RS_IDLE: Final = ResponseState.IDLE
_RS_BODY: Final = ResponseState.BODY
_RS_DONE: Final = ResponseState.DONE
_RS_ERROR: Final = ResponseState.ERROR
_FRAMING_NONE: Final = Framing.NONE
_FRAMING_LENGTH: Final = Framing.LENGTH

#: Statuses whose response has no body: 204 and 304 (RFC 9110 §6.4.1), and 101, after which
#: the bytes are the new protocol's.
_NO_BODY_OR_SWITCHING: Final = frozenset((101, 204, 304))
#: Marks a response whose Content-Length was computed from the body passed to send_response.
_BODY_AS_GIVEN: Final = object()
#: Serialised lines of response fields already validated, by (name, value): most responses
#: repeat the same fields (Content-Type, Server, Cache-Control ...), and the regex check costs
#: several times the lookup. Only ordinary fields (never Content-Length, Transfer-Encoding or
#: Connection), only exact ``bytes`` (hashed by content), bounded in count and line size;
#: emptied when full.
_FIELD_LINES: Final[dict[tuple[bytes, bytes], bytes]] = {}
_FIELD_LINE_CACHE_SIZE: Final = 512
_FIELD_LINE_CACHE_BYTES: Final = 256
# name ": " value CRLF, value being field-vchar / SP / HTAB (RFC 9110 §5.5), not starting with
# whitespace.
_FIELD_LINE: Final = re.compile(
    rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+: (?:[\x21-\x7e\x80-\xff][\t\x20-\x7e\x80-\xff]*)?\r\n"
)


#: ``content-length: N\r\n`` by N, for the body sizes seen (the lines of the Content-Length
#: fields an app sends are remembered with the field, in ``_LENGTH_FIELDS``).
_LENGTH_LINES: Final[dict[int, bytes]] = {}
_LENGTH_LINE_CACHE_SIZE: Final = 1024
#: A Content-Length field sent before, by its exact (name, value) pair: its line and its
#: number. Kept apart from ``_FIELD_LINES`` (sizes vary: they must not crowd the other
#: fields out), under like rules: exact ``bytes`` only, values of at most ``_LENGTH_DIGITS``
#: digits (as every Content-Length sent), at most ``_LENGTH_LINE_CACHE_SIZE`` entries,
#: emptied when full.
_LENGTH_FIELDS: Final[dict[tuple[bytes, bytes], tuple[bytes, int]]] = {}
#: The most digits a Content-Length may have, on the way out as on the way in
#: (``grammar.CONTENT_LENGTH``): 18 keep the number under 2**63, and int() far from
#: the 4,300 digits past which Python refuses to convert.
_LENGTH_DIGITS: Final = 18


def _length_line(length: int | bytes) -> bytes:
    """The Content-Length line for ``length`` (a body's size, or the digits a field gave),
    remembered by size; a field's digits are remembered by the caller, with the field."""
    if isinstance(length, bytes):
        return b"content-length: " + length + b"\r\n"
    line = _LENGTH_LINES.get(length)
    if line is None:
        line = b"content-length: " + str(length).encode("ascii") + b"\r\n"
        remember(_LENGTH_LINES, _LENGTH_LINE_CACHE_SIZE, length, line)
    return line


class ServerConnection:
    """One HTTP/1.1 server connection's protocol state.

    Args:
        limits: the size and count bounds to enforce on requests.
    """

    __slots__ = (
        "limits",
        "request_state",
        "response_state",
        "request",
        "_buffer",
        "_held",
        "_search_from",
        "client_eof",
        "_reader",
        "_writer",
        "_keep_alive",
        "continue_owed",
        "default_headers",
        "response_status",
    )

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.request_state = _RQ_IDLE
        self.response_state = _RS_IDLE
        #: The request being answered (None until its head is parsed).
        self.request: Request | None = None
        self._buffer = bytearray()
        # Input as it was received (one ``bytes`` object), while the buffer is empty: heads and
        # Content-Length bodies are taken from it without first copying it into the buffer.
        # Invariant: when it is not None the buffer is empty (it comes first).
        self._held: bytes | None = None
        self._search_from = 0
        #: Whether the client has closed its sending side.
        self.client_eof = False
        self._reader: LengthReader | ChunkedReader | None = None
        self._writer: Any = None
        self._keep_alive = True
        #: The client asked for ``100 Continue`` and has not been sent it (nor a response).
        self.continue_owed = False
        #: Pre-serialised header lines added to every response (the driver's date/server).
        self.default_headers = b""
        #: Status of the response sent for the current request (0 before one starts).
        self.response_status = 0

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the client; ``b""`` means the client closed its side (EOF).

        A bytearray (a reused read buffer) is copied; only bytes are kept as they are.
        """
        if data:
            if self.client_eof:
                raise LocalProtocolError("received data after EOF")
            if self._held is None and not self._buffer and type(data) is bytes:
                self._held = data  # (immutable: safe to keep without a copy)
                return
            self._spill()
            self._buffer += data
        else:
            self.client_eof = True

    def receive_request(self, data: bytes) -> Request | None:
        """``receive_data(data)`` and then ``next_event()``, in one call, for the usual read: a
        connection waiting for a request, with nothing buffered, is sent a whole request head
        (and perhaps body bytes after it). Returns the ``Request``, or None having taken
        nothing (any other case, or a head that is not valid): then feed ``data`` to
        ``receive_data`` and read events with ``next_event`` as usual, which says what is
        wrong with it.
        """
        if (
            self.request_state is not _RQ_IDLE
            or self._held is not None
            or self._buffer
            or type(data) is not bytes
            or self.client_eof
        ):
            return None
        limits = self.limits
        if limits.allow_bare_lf:
            return None
        # (partition, not find: on 3.11 bytes.find parses its arguments from a tuple, which
        # costs more than the search and the copies partition makes, of the head and of what
        # follows it: usually nothing, or this request's body, held as it is.)
        head, found, rest = data.partition(b"\r\n\r\n")
        end = len(head)
        if not found or not 0 < end <= limits.max_head_bytes or head[0] == 13:
            return None
        try:
            request = parse_head_in(head, end, limits)  # (the whole of ``head``: not copied again)
        except RemoteProtocolError:
            return None  # (nothing taken: the usual path parses it again and reports it)
        if rest:
            self._keep_after_head(rest, 0, request)
        self._take(request)
        return request

    def _keep_after_head(self, data: bytes, start: int, request: Request) -> None:
        """The bytes of one read that follow the head just parsed from it (``data[start:]``,
        not empty; nothing is held then): this request's body bytes are held (one copy),
        pipelined input goes into the buffer, which consumes it in place (slicing the held
        bytes for each request would copy the rest each time)."""
        if request.framing is _FRAMING_LENGTH and len(data) - start <= (request.content_length or 0):
            self._held = data[start:]
        else:
            self._buffer += memoryview(data)[start:]

    def _spill(self) -> None:
        """Move held input into the buffer, for the parsing paths that work there."""
        held = self._held
        if held is not None:
            self._held = None
            self._buffer += held

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed (for protocol upgrades), and whether EOF was seen."""
        self._spill()
        return bytes(self._buffer), self.client_eof

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet turned into events."""
        held = self._held
        return len(self._buffer) if held is None else len(held)

    def input_waiting(self) -> bool:
        """Whether received bytes wait to be parsed, or EOF was seen (``buffered or client_eof``
        in one method call, cheaper than the property: the driver asks after every response)."""
        held = self._held
        return bool(self._buffer if held is None else held) or self.client_eof

    @property
    def keep_alive(self) -> bool:
        """Whether another request may follow on this connection."""
        return self._keep_alive and not self.client_eof

    def next_event(self) -> Request | Data | EndOfMessage | ConnectionClosed | Signal:
        """The next event from the client, or ``NEED_DATA`` / ``PAUSED``.

        Raises:
            RemoteProtocolError: the client broke HTTP; ``status`` says what to answer.
        """
        state = self.request_state
        try:
            if state is _RQ_BODY:
                return self._next_body()
            if state is _RQ_IDLE:
                return self._next_head()
        except RemoteProtocolError:
            self.request_state = _RQ_ERROR
            self._keep_alive = False
            raise
        if state is _RQ_DONE:
            return PAUSED
        if state is _RQ_CLOSED:
            return ConnectionClosed()
        raise RemoteProtocolError("cannot read after a protocol error")

    def _next_head(self) -> Request | ConnectionClosed | Signal:
        request = None
        held = self._held
        if held is not None:
            # The usual case: a whole head at the start of what one read returned, parsed
            # where it is.
            limits = self.limits
            end = held.find(b"\r\n\r\n")
            if 0 < end <= limits.max_head_bytes and held[0] != 13 and not limits.allow_bare_lf:
                start = end + 4
                try:
                    request = parse_head_in(held, end, limits)
                except RemoteProtocolError:
                    self._held = held[start:] or None  # (the head is consumed, as below)
                    raise
                self._held = None
                if len(held) > start:
                    self._keep_after_head(held, start, request)
            else:
                self._spill()
        if request is None:
            buffer = self._buffer
            # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
            # request-line.
            if buffer and buffer[0] == 13:  # (a CR first: looked at as an int, no slice made)
                while buffer[:2] == b"\r\n":
                    del buffer[:2]
            if self.limits.allow_bare_lf:
                # Empty lines may then end in CRLF or LF, in any mix ("\n\r\n" is two of them).
                while buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
                    del buffer[: 1 if buffer[0] == 10 else 2]
                match = _HEAD_END_LENIENT.search(buffer, self._search_from)
                end, skip = (match.start(), match.end()) if match else (-1, 0)
            else:
                end = buffer.find(b"\r\n\r\n", self._search_from)
                skip = end + 4
            if end < 0:
                return self._incomplete_head()
            if end > self.limits.max_head_bytes:
                # Same verdict as when the head arrives in pieces: 414, bare LF, then 431.
                check_head_prefix(buffer, self.limits)
                raise RemoteProtocolError(
                    f"request head too large (limit {self.limits.max_head_bytes} bytes)", 431
                )
            try:
                request = parse_head_in(buffer, end, self.limits)  # straight from the buffer
            finally:
                del buffer[:skip]
            self._search_from = 0
        self._take(request)
        return request

    def _take(self, request: Request) -> None:
        """The head is parsed: the request's body comes next."""
        self.request = request
        self.response_status = 0
        self._keep_alive = request.keep_alive
        self.continue_owed = request.expect_continue
        framing = request.framing
        if framing is _FRAMING_NONE:
            self._reader = None
        elif framing is _FRAMING_LENGTH:
            self._reader = LengthReader(request.content_length or 0)
        else:
            self._reader = ChunkedReader(self.limits)
        self.request_state = _RQ_BODY

    def _incomplete_head(self) -> ConnectionClosed | Signal:
        buffer = self._buffer
        size = len(buffer)
        limits = self.limits
        check_head_prefix(buffer, limits)
        # "+ 3": a head exactly at the limit may still be missing the last LF of its CRLF CRLF.
        if size > limits.max_head_bytes + 3:
            raise RemoteProtocolError(
                f"request head too large (limit {limits.max_head_bytes} bytes)", 431
            )
        if self.client_eof:
            if size == 0:
                self.request_state = _RQ_CLOSED
                return ConnectionClosed()
            raise RemoteProtocolError("client closed in the middle of a request head")
        self._search_from = max(0, size - 3)
        return NEED_DATA

    def _next_body(self) -> Data | EndOfMessage | Signal:
        reader = self._reader
        if reader is None:
            self.request_state = _RQ_DONE
            return EMPTY_EOM
        held = self._held
        if held is not None:
            if isinstance(reader, LengthReader):
                remaining = reader.remaining
                if remaining:
                    # Body bytes straight from held input: no copy when it is all body.
                    size = len(held)
                    if size <= remaining:
                        self._held = None
                        reader.remaining = remaining - size
                        return Data(held)
                    self._held = held[remaining:]
                    reader.remaining = 0
                    return Data(held[:remaining])
            else:
                self._spill()
        event = reader.read(self._buffer)
        if event is None:
            if self.client_eof:
                raise RemoteProtocolError(reader.incomplete())
            return NEED_DATA
        if type(event) is EndOfMessage:
            self.request_state = _RQ_DONE
            self._reader = None
        return event

    # ------------------------------------------------------------------ sending

    def send_continue(self) -> bytes:
        """Bytes of ``100 Continue`` if owed (b"" otherwise); call when the body is first read."""
        if not self.continue_owed:
            return b""
        self.continue_owed = False
        return _CONTINUE

    def send(self, event: Any) -> list[Any]:
        """Serialise an outbound event and return the pieces to write, in order.

        ``Data.data`` is passed through untouched (it may be a file range for sendfile).

        Raises:
            LocalProtocolError: the event is illegal now, or breaks the declared framing.
        """
        kind = type(event)
        try:
            if kind is Data:
                return self._send_data(event.data)
            if kind is EndOfMessage:
                return self._send_end(event.trailers)
            if kind is Response:
                return [b"".join(self._start_response(event.status, event.headers, event.reason, None))]
            if kind is InformationalResponse:
                return [self._informational(event)]
        except LocalProtocolError:
            self.response_state = _RS_ERROR
            self._keep_alive = False
            raise
        raise LocalProtocolError(f"cannot send {kind.__name__}")

    def send_response(
        self, status: int, headers: Any, body: bytes = b"", reason: bytes = b""
    ) -> bytes:
        """A complete response in one piece; Content-Length is added when absent.

        Raises:
            LocalProtocolError: as for ``send``.
        """
        try:
            pieces = self._start_response(status, headers, reason, len(body))
            if self._writer is _BODY_AS_GIVEN:
                # The length came from this very body: nothing left to check or frame.
                self.response_state = _RS_DONE
                self._writer = None
                pieces.append(body)
                return b"".join(pieces)
            if body:
                pieces += self._writer.write(body)
            pieces += self._writer.end()
        except LocalProtocolError:
            self.response_state = _RS_ERROR
            self._keep_alive = False
            raise
        self._finish_response()
        return b"".join(pieces)

    def _informational(self, event: InformationalResponse) -> bytes:
        if self.response_state is not _RS_IDLE:
            raise LocalProtocolError("informational response after the response started")
        if not 100 <= event.status < 200 or event.status == 101:
            raise LocalProtocolError(f"{event.status} is not an informational status")
        fields = list(event.headers)
        for name, value in fields:
            check_field(name, value)
        if event.status == 100:
            self.continue_owed = False
        return status_line(event.status) + encode_fields(fields) + b"\r\n"

    def _start_response(
        self, status: int, headers: Any, reason: bytes, body_length: int | None
    ) -> list[bytes]:
        """The pieces of the response head, status line first and the blank line last."""
        if self.response_state is not _RS_IDLE:
            raise LocalProtocolError(f"response already started (state {self.response_state.name})")
        # A final status sent before has its line cached (status_line fills the cache for
        # 100-999: the type and lower bound keep 1xx, and floats that hash alike, out).
        line = _STATUS_LINES.get(status) if type(status) is int and status >= 200 and not reason else None
        if line is None:
            if type(status) is not int or not 200 <= status <= 999:
                if not (status == 101 and self.request is not None and self.request.upgrade):
                    raise LocalProtocolError(f"invalid final status {status!r}")
            line = status_line(status, reason)
        request = self.request
        if self.continue_owed:
            # The client may still be waiting to send its body; we cannot know whether the
            # bytes that follow are body or a new request, so this connection ends here.
            self.continue_owed = False
            self._keep_alive = False
        if self.request_state is _RQ_ERROR:
            self._keep_alive = False
        fields = [line, self.default_headers]
        # The Content-Length value, if any; then also its line and its number.
        length: bytes | None = None
        length_line = b""
        length_number = 0
        chunked = False
        if type(headers) is FieldBlock:
            fields.append(headers.lines)
            length = headers.content_length
            length_line = headers.length_line
            length_number = headers.length_number
            headers = ()
        # (The caches' methods are looked up where they are called: taken out first as bound
        # methods, each would be a new object per response, which 3.11 cannot specialise.)
        for name, value in headers:
            if type(name) is not bytes or type(value) is not bytes:
                # First: only exact bytes may match a remembered field (a look-alike that
                # compares equal must not pass, nor an unhashable buffer raise elsewhere).
                check_field(name, value)  # raises with the precise complaint
            pair: Any = (name, value)  # (Any: the compiled build then makes the tuple once)
            line = _FIELD_LINES.get(pair)
            if line is not None:
                fields.append(line)  # a field sent before, validated then
                continue
            known = _LENGTH_FIELDS.get(pair)
            if known is not None:  # a Content-Length sent before, validated then
                if length is not None and length != value:
                    raise LocalProtocolError("conflicting Content-Length in response")
                length = value
                length_line, length_number = known
                continue
            lower = name.lower()
            if lower == b"content-length":
                # 1*DIGIT (RFC 9110 §8.6), bounded: the name and value need no other check.
                if not value.isdigit() or len(value) > _LENGTH_DIGITS:
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                if length is not None and length != value:
                    raise LocalProtocolError("conflicting Content-Length in response")
                length = value
                length_line = _length_line(value)
                length_number = int(value)
                remember(_LENGTH_FIELDS, _LENGTH_LINE_CACHE_SIZE, pair, (length_line, length_number))
                continue
            if lower == b"transfer-encoding":
                if value.lower() != b"chunked":
                    raise LocalProtocolError("only chunked transfer coding is supported")
                chunked = True
                continue
            # Serialise, then validate the whole line with one regex: a name that is a token,
            # a value of field-vchars, SP and HTAB, so no CR/LF can split the response.
            line = b"%s: %s\r\n" % (name, value)
            if _FIELD_LINE.fullmatch(line) is None:
                check_field(name, value)  # raises with the precise complaint
                raise LocalProtocolError(f"invalid header {name!r}")  # pragma: no cover
            if lower == b"connection":
                if b"close" in split_list(value):
                    self._keep_alive = False
                continue
            fields.append(line)
            if lower in _DEFAULT_FIELD_NAMES:
                # The app's own Date or Server wins over the driver's (one of each): such
                # lines are never remembered, so every one of them passes here.
                fields[1] = _without_field(fields[1], lower)
                continue
            if len(line) <= _FIELD_LINE_CACHE_BYTES:
                remember(_FIELD_LINES, _FIELD_LINE_CACHE_SIZE, pair, line)
        head_request = request is not None and request.method == b"HEAD"
        if status in _NO_BODY_OR_SWITCHING:
            # RFC 9110 §8.6: no Content-Length in 204; 304 keeps the GET length (when given).
            if status == 304 and length is not None:
                fields.append(length_line)
            self._writer = NoBodyWriter()
        elif head_request:
            if length is not None:
                fields.append(length_line)
            elif body_length is not None and body_length > 0:
                fields.append(_LENGTH_LINES.get(body_length) or _length_line(body_length))
            self._writer = NoBodyWriter()
        elif length is not None:
            fields.append(length_line)
            if length_number == body_length and not chunked:
                self._writer = _BODY_AS_GIVEN  # the whole body is here and has that length
            else:
                self._writer = LengthWriter(length_number)
        elif body_length is not None and not chunked:
            fields.append(_LENGTH_LINES.get(body_length) or _length_line(body_length))
            self._writer = _BODY_AS_GIVEN
        elif request is None or request.http_version == b"1.1":
            self._writer = ChunkedWriter()
            fields.append(_CHUNKED)
        else:
            # HTTP/1.0 without a length: the end of the body is the end of the connection.
            self._keep_alive = False
            self._writer = CloseWriter()
        if status == 101:
            fields.append(b"connection: upgrade\r\n")
        elif not self._keep_alive or (self.client_eof and not self.buffered):
            fields.append(_CONNECTION_CLOSE)
        elif request is not None and request.http_version == b"1.0":
            fields.append(_CONNECTION_KEEP_ALIVE)
        self.response_state = _RS_BODY
        self.response_status = status
        fields.append(b"\r\n")
        return fields

    def _send_data(self, data: Any) -> list[Any]:
        if self.response_state is not _RS_BODY:
            raise LocalProtocolError(f"cannot send body in state {self.response_state.name}")
        return self._writer.write(data)  # type: ignore[no-any-return]

    def _send_end(self, trailers: Any) -> list[Any]:
        if self.response_state is not _RS_BODY:
            raise LocalProtocolError(f"cannot end body in state {self.response_state.name}")
        pieces: list[Any] = self._writer.end(trailers)
        self._finish_response()
        return pieces

    def _finish_response(self) -> None:
        self.response_state = _RS_DONE
        self._writer = None

    # ------------------------------------------------------------------ cycle

    @property
    def response_chunked(self) -> bool:
        """Whether the current response uses chunked coding (trailers possible)."""
        return type(self._writer) is ChunkedWriter

    @property
    def body_remaining(self) -> int | None:
        """Bytes the Content-Length still allows in the response body (None if unbounded)."""
        writer = self._writer
        if type(writer) is LengthWriter:
            return writer.remaining
        return None

    def discard_buffered_body(self) -> bool:
        """Skip the unread rest of the request body if it is already buffered.

        Returns True when the request is now complete (the connection can be reused).
        """
        while self.request_state is _RQ_BODY:
            try:
                event = self.next_event()
            except RemoteProtocolError:
                return False
            if event is NEED_DATA:
                return False
        return self.request_state is _RQ_DONE

    def close_after_response(self) -> None:
        """Make the current exchange the last on this connection (graceful shutdown)."""
        self._keep_alive = False

    def abandon_response(self) -> None:
        """Forget a response that failed before any of its bytes were sent (the app gave a
        bad header, status or length), so that an error response can be sent in its place.
        The connection closes after that one."""
        self.response_state = _RS_IDLE
        self._writer = None
        self._keep_alive = False

    def next_cycle(self) -> bool:
        """Start the next cycle if this exchange is complete and the connection may be reused
        (skipping an unread request body that is already buffered). Returns whether it did."""
        if self.request_state is _RQ_BODY:
            if self._reader is None:
                self.request_state = _RQ_DONE  # (no body: its EndOfMessage, without the event)
            else:
                self.discard_buffered_body()
        if (
            self.request_state is not _RQ_DONE
            or self.response_state is not _RS_DONE
            or not self._keep_alive
            or (self.client_eof and not self.buffered)
        ):
            # A client that half-closed (FIN) after pipelining its requests still gets an
            # answer to every complete request it sent: EOF ends the input, not the requests.
            return False
        self.request_state = _RQ_IDLE
        self.response_state = _RS_IDLE
        self.request = None
        self._reader = None
        return True


#: Fields the driver adds to every response (``ServerConnection.default_headers``) unless the
#: application sets its own.
_DEFAULT_FIELD_NAMES: Final = frozenset((b"date", b"server"))


def _without_field(block: bytes, lower_name: bytes) -> bytes:
    """``block`` (serialised field lines) without the lines named ``lower_name``."""
    prefix = lower_name + b":"
    return b"".join(line for line in block.splitlines(keepends=True) if not line.lower().startswith(prefix))
