"""Raw WSGI (PEP 3333) app: every request gets 200 ``Hello, world!`` as text/plain."""

from __future__ import annotations

from typing import Any, Callable, Iterable

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
