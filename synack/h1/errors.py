"""Protocol errors that know their HTTP status, and the status-phrase table.

Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

from http import HTTPStatus

__all__ = [
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "reason_phrase",
]

_PHRASES: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
# Status codes http.HTTPStatus does not name (or names differently) in older Pythons.
# RFC 9110 §15 names, whatever the running Python's http.HTTPStatus calls them.
_PHRASES.update({
    103: b"Early Hints",
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    422: b"Unprocessable Content",
    425: b"Too Early",
})


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase for ``status`` (b"" when there is none)."""
    return _PHRASES.get(status, b"")


class ProtocolError(Exception):
    """Something broke HTTP. ``status`` is the response the error calls for."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    @property
    def reason(self) -> str:
        return self.message


class RemoteProtocolError(ProtocolError):
    """The client broke HTTP: answer ``status`` (if nothing was sent yet) and close."""


class LocalProtocolError(ProtocolError):
    """We or the application broke HTTP: log it, then send 500 or abort."""

    status = 500
