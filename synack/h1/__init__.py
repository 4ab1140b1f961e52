"""synack.h1: a sans-I/O HTTP/1.1 server core (RFC 9110, RFC 9112).

Pure stdlib: no asyncio, socket, ssl, os, time or logging.
"""

from .connection import FieldBlock, RequestState, ResponseState, ServerConnection
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError, reason_phrase
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
from .headers import Headers, split_list
from .limits import Limits, remember

__all__ = [
    "ServerConnection",
    "FieldBlock",
    "RequestState",
    "ResponseState",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "reason_phrase",
    "NEED_DATA",
    "PAUSED",
    "Signal",
    "Framing",
    "Request",
    "Data",
    "EndOfMessage",
    "ConnectionClosed",
    "InformationalResponse",
    "Response",
    "Headers",
    "split_list",
    "Limits",
    "remember",
    "error_response",
]


def error_body(status: int, message: str) -> bytes:
    """The short plain-text body of an error response."""
    return b"%d %s: %s\n" % (status, reason_phrase(status), message.encode("ascii", "replace"))


ERROR_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"))


def error_response(connection: ServerConnection, status: int, message: str) -> bytes:
    """Serialise a complete error response (with ``Connection: close``) through ``connection``."""
    return connection.send_response(status, ERROR_HEADERS, error_body(status, message))
