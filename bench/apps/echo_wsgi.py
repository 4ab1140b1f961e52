"""Raw WSGI (PEP 3333) app: reads the whole request body, answers 200 with its length as text."""

from __future__ import annotations

from typing import Any, Callable, Iterable

CHUNK = 65536


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        remaining = 0
    size = 0
    while remaining > 0:
        data = stream.read(min(CHUNK, remaining))
        if not data:
            break
        size += len(data)
        remaining -= len(data)
    body = str(size).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
