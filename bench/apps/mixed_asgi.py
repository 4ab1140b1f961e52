"""Raw ASGI 3 app for the memory soak: ``/echo`` is the echo app (answers the request body's
length), every other path the hello app."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from bench.apps import echo_asgi, hello_asgi


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "http" and scope["path"] == "/echo":
        await echo_asgi.app(scope, receive, send)
    else:
        await hello_asgi.app(scope, receive, send)
