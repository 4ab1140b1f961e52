"""Response serialisation: status line, header block, and body writers.

Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

from typing import Any, Final

from . import grammar
from .errors import LocalProtocolError, reason_phrase

__all__ = [
    "status_line",
    "encode_fields",
    "LengthWriter",
    "ChunkedWriter",
    "CloseWriter",
    "NoBodyWriter",
]

_STATUS_LINES: Final[dict[int, bytes]] = {}


def status_line(status: int, reason: bytes = b"") -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``, cached for the standard phrases."""
    if not reason:
        line = _STATUS_LINES.get(status)
        if line is None:
            if not 100 <= status <= 999:
                raise LocalProtocolError(f"invalid status code {status!r}")
            line = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))
            _STATUS_LINES[status] = line
        return line
    if grammar.FIELD_VALUE.fullmatch(reason) is None:
        raise LocalProtocolError("invalid character in reason phrase")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


def encode_fields(fields: list[tuple[bytes, bytes]]) -> bytes:
    """Serialise validated (name, value) pairs as ``name: value\\r\\n`` lines."""
    return b"".join([b"%s: %s\r\n" % pair for pair in fields])


def check_field(name: Any, value: Any) -> None:
    """Refuse names and values that would break the message (response splitting)."""
    if type(name) is not bytes or type(value) is not bytes:
        raise LocalProtocolError(f"header name and value must be bytes: {name!r}: {value!r}")
    if grammar.FIELD_NAME.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if grammar.FIELD_VALUE.fullmatch(value) is None or value[:1] in (b" ", b"\t"):
        raise LocalProtocolError(f"invalid header value for {name!r}")


class LengthWriter:
    """Body of exactly the declared Content-Length; more or fewer bytes is an app error."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def write(self, data: Any) -> list[Any]:
        size = len(data)
        if size > self.remaining:
            raise LocalProtocolError(
                f"response body exceeds Content-Length by {size - self.remaining} bytes"
            )
        self.remaining -= size
        return [data] if size else []

    def end(self, trailers: Any = ()) -> list[Any]:
        if self.remaining:
            raise LocalProtocolError(
                f"response body ended {self.remaining} bytes short of Content-Length"
            )
        return []


class ChunkedWriter:
    """Chunked transfer coding (RFC 9112 §7.1), with optional trailer fields."""

    __slots__ = ()

    def write(self, data: Any) -> list[Any]:
        size = len(data)
        if not size:
            return []
        return [b"%x\r\n" % size, data, b"\r\n"]

    def end(self, trailers: Any = ()) -> list[Any]:
        if not trailers:
            return [b"0\r\n\r\n"]
        fields = list(trailers)
        for name, value in fields:
            check_field(name, value)
        return [b"0\r\n" + encode_fields(fields) + b"\r\n"]


class CloseWriter:
    """Body delimited by closing the connection (HTTP/1.0 without Content-Length)."""

    __slots__ = ()

    def write(self, data: Any) -> list[Any]:
        return [data] if len(data) else []

    def end(self, trailers: Any = ()) -> list[Any]:
        return []


class NoBodyWriter:
    """HEAD, 204 and 304: the body is dropped (RFC 9110 §9.3.2, §15.3.5, §15.4.5)."""

    __slots__ = ()

    def write(self, data: Any) -> list[Any]:
        return []

    def end(self, trailers: Any = ()) -> list[Any]:
        return []
