"""Clock: the cached ``date`` header, refreshed once a second by a loop timer."""

from __future__ import annotations

from ..httpdate import format_http_date

__all__ = ["http_date", "default_headers"]


def http_date(timestamp: float) -> bytes:
    """IMF-fixdate (RFC 9110 §5.6.7) for ``timestamp``."""
    return format_http_date(timestamp)


def default_headers(timestamp: float, server_header: bytes) -> bytes:
    """The header lines the driver adds to every response: date and (optional) server."""
    lines = b"date: " + http_date(timestamp) + b"\r\n"
    if server_header:
        lines += b"server: " + server_header + b"\r\n"
    return lines
