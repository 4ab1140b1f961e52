"""Limits: every size and count bound of the HTTP/1.1 wire format, with its default.

This dataclass is the one declaration of these settings: ``synack.config`` turns each field
into a setting (``--max-head-bytes``, ``Config.from_mapping({"max_head_bytes": …})``) from
its default and the metadata below (``help``, ``minimum`` and, for an optional bound,
``none_value``: the number that stands for "no limit" on the command line).

``remember`` is the one put of every bounded cache (h1, the proxy tables, WSGI).

Pure data; must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Limits", "remember"]


def _bound(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the core enforces while parsing requests.

    Each bound maps to the status a client receives when it is exceeded.
    """

    #: Request line (method, target, version). 8 KiB, as nginx's
    #: large_client_header_buffers and gunicorn's limit_request_line (4094). → 414
    max_request_line: int = _bound(8 * 1024, "longest request line, in bytes (→ 414)", minimum=1)
    #: Whole head: request line plus all header lines. 16 KiB, h11's
    #: DEFAULT_MAX_INCOMPLETE_EVENT_SIZE. → 431
    max_head_bytes: int = _bound(16 * 1024, "largest request head, in bytes (→ 431)", minimum=1)
    #: Number of header fields. 100, as gunicorn's limit_request_fields. → 431
    max_header_count: int = _bound(100, "most header fields in a request (→ 431)", minimum=1)
    #: One header line (name, colon, value). 8 KiB, gunicorn's limit_request_field_size. → 431
    max_field_bytes: int = _bound(8 * 1024, "largest single header line, in bytes (→ 431)", minimum=1)
    #: Chunk-size line including extensions. 4 KiB; extensions carry no meaning for us. → 400
    max_chunk_ext_bytes: int = _bound(
        4 * 1024, "longest chunk-size line with extensions (→ 400)", minimum=1
    )
    #: All trailer fields of a chunked body together. 16 KiB, like the head. → 431
    max_trailer_bytes: int = _bound(16 * 1024, "largest chunked trailer section (→ 431)", minimum=1)
    #: Request body, declared (Content-Length) or received (chunked). None means unbounded.
    #: 1 GiB by default: large uploads work, endless ones do not. → 413
    max_body_bytes: int | None = _bound(
        1024 * 1024 * 1024,
        "largest request body, in bytes; 0 for no limit (→ 413)",
        minimum=1,
        none_value=0,
    )
    #: Risk: accept bare LF as a line ending in the head (RFC 9112 §2.2 MAY). Off.
    allow_bare_lf: bool = _bound(False, "risk: accept bare LF line endings in request heads")
    #: Risk: accept obs-fold continuation lines (RFC 9112 §5.2 allows a server to reject). Off.
    allow_obs_fold: bool = _bound(False, "risk: accept obsolete folded header lines")


def remember(table: dict[Any, Any], size: int, key: Any, value: Any) -> None:
    """Add ``key`` to a cache bounded to ``size`` entries, emptying it first when it is full:
    filled as values are met, so no client (or app) can grow it without bound."""
    if len(table) >= size:
        table.clear()
    table[key] = value
