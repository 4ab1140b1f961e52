"""Events exchanged with the core: frozen, slotted, bytes fields.

Inbound (from the client): Request, Data, EndOfMessage, ConnectionClosed.
Outbound (to the client): InformationalResponse, Response, Data, EndOfMessage.
Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .headers import Headers, raw_pairs

__all__ = [
    "Signal",
    "NEED_DATA",
    "PAUSED",
    "Framing",
    "Request",
    "Data",
    "EndOfMessage",
    "ConnectionClosed",
    "InformationalResponse",
    "Response",
    "Event",
]


class Signal(enum.Enum):
    """Non-event results of ``ServerConnection.next_event()``."""

    #: More bytes are needed before the next event can be produced.
    NEED_DATA = "NEED_DATA"
    #: A request is complete; the next one (if any) waits until the response ends.
    PAUSED = "PAUSED"


NEED_DATA = Signal.NEED_DATA
PAUSED = Signal.PAUSED


class Framing(enum.Enum):
    """How a request body is delimited (RFC 9112 §6.3)."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"


# Request and Data are created once per request / body chunk, so they are slotted but not
# frozen: a frozen dataclass's __init__ costs ~0.9 µs against ~0.2 µs (measured with timeit),
# a few percent of a whole hello-world exchange. Treat them as immutable all the same.
@dataclass(slots=True)
class Request:
    """A request head, with the facts the core derived from it computed once."""

    method: bytes
    #: The request-target exactly as received (origin-, absolute- or asterisk-form).
    target: bytes
    http_version: bytes
    #: The (lowercased name, value) pairs in arrival order: the list ``headers`` wraps, for
    #: adapters that hand it on as it is (ASGI's scope). Do not mutate. For an absolute-form
    #: target the Host field holds the target's authority (added if the client sent none):
    #: RFC 9112 §3.2.2 says the Host field is then ignored and replaced by it.
    fields: list[tuple[bytes, bytes]]
    #: What ``raw_fields`` is made from: those pairs, or (from the parser's fast path, which
    #: does not build them) the field lines themselves (``headers.raw_pairs``).
    _raw: Any = field(repr=False, compare=False)
    #: Whether the connection may carry another request after this exchange.
    keep_alive: bool = True
    #: The client sent ``Expect: 100-continue`` (HTTP/1.1 only).
    expect_continue: bool = False
    #: How the body is framed.
    framing: Framing = Framing.NONE
    #: Declared Content-Length (None when chunked or absent).
    content_length: int | None = None
    #: The Upgrade header value when ``Connection: upgrade`` asks for it, else None.
    upgrade: bytes | None = None
    #: The target's path, still percent-encoded: the part before "?" of an origin-form
    #: target, the path of an absolute-form one ("/" when it has none), ``b"*"`` for the
    #: asterisk-form. Every adapter uses this (and ``query``) instead of splitting ``target``.
    path: bytes = b""
    #: The target's query (after the first "?", without it), or ``b""``.
    query: bytes = b""
    #: The effective host (RFC 9110 §7.2, RFC 9112 §3.2.2): an absolute-form target's
    #: authority, else the Host field's value; None when there is neither (HTTP/1.0).
    host: bytes | None = None
    #: Whether a Forwarded or X-Forwarded-* field is present (RFC 7239): what a proxy may say
    #: about the client, scheme and host (believed only from trusted peers, by the driver).
    forwarded: bool = False
    _headers: Headers | None = field(default=None, repr=False, compare=False)

    @property
    def raw_fields(self) -> list[tuple[bytes, bytes]]:
        """One pair per field whose first element is the name as the client spelled it."""
        raw = self._raw
        if raw and type(raw[0]) is bytes:  # the field lines: made into the pairs once
            raw = self._raw = raw_pairs(raw, self.fields)
        return raw  # type: ignore[no-any-return]

    @property
    def headers(self) -> Headers:
        """The fields as ``Headers`` (made on first use: an ASGI request never needs it)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self.fields, self._raw)  # (raw names on demand)
        return headers


@dataclass(slots=True)
class Data:
    """A piece of body. ``data`` is bytes-like; outbound it may be any buffer."""

    data: Any


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The end of a body, with trailer fields (chunked only)."""

    trailers: Headers = field(default_factory=lambda: Headers(()))


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed its side before starting another request."""


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """A 1xx response (100 Continue, 103 Early Hints)."""

    status: int
    headers: Any = ()


@dataclass(frozen=True, slots=True)
class Response:
    """A final response head. ``headers`` is an iterable of (name, value) byte pairs."""

    status: int
    headers: Any = ()
    reason: bytes = b""


Event = Request | Data | EndOfMessage | ConnectionClosed | InformationalResponse | Response
