"""Limits: every size and count bound of the HTTP/1.1 wire format, with its default.

Pure data; must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the core enforces while parsing requests.

    Each bound maps to the status a client receives when it is exceeded.
    """

    #: Request line (method, target, version). 8 KiB, as nginx's
    #: large_client_header_buffers and gunicorn's limit_request_line (4094). → 414
    max_request_line: int = 8 * 1024
    #: Whole head: request line plus all header lines. 16 KiB, h11's
    #: DEFAULT_MAX_INCOMPLETE_EVENT_SIZE. → 431
    max_head_bytes: int = 16 * 1024
    #: Number of header fields. 100, as gunicorn's limit_request_fields. → 431
    max_header_count: int = 100
    #: One header line (name, colon, value). 8 KiB, gunicorn's limit_request_field_size. → 431
    max_field_bytes: int = 8 * 1024
    #: Chunk-size line including extensions. 4 KiB; extensions carry no meaning for us. → 400
    max_chunk_ext_bytes: int = 4 * 1024
    #: All trailer fields of a chunked body together. 16 KiB, like the head. → 431
    max_trailer_bytes: int = 16 * 1024
    #: Request body, declared (Content-Length) or received (chunked). None means unbounded.
    #: 1 GiB by default: large uploads work, endless ones do not. → 413
    max_body_bytes: int | None = 1024 * 1024 * 1024
    #: Risk: accept bare LF as a line ending in the head (RFC 9112 §2.2 MAY). Off.
    allow_bare_lf: bool = False
    #: Risk: accept obs-fold continuation lines (RFC 9112 §5.2 allows a server to reject). Off.
    allow_obs_fold: bool = False
