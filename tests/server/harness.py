"""An in-process harness for the driver: a fake transport that models the kernel's send buffer
and a client that reads it at will, and a manual clock, so driver timing and backpressure
tests run in microseconds and deterministically instead of sleeping on real sockets.

The transport follows asyncio's contract as the driver relies on it: ``write`` queues bytes
and calls ``pause_writing`` once more than ``high`` are queued; the client taking bytes calls
``resume_writing`` once the queue drops to ``low``; ``write_eof`` and ``close`` take effect
when the queue is empty; ``abort`` drops the queue; ``connection_lost`` is delivered on the
next loop pass, as asyncio does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from synack.h1 import Limits
from synack.server.context import ServerContext, expire_deadlines
from synack.server.protocol import HttpProtocol
from synack.server.timeouts import Timeouts


class FakeTransport(asyncio.Transport):
    def __init__(self, protocol: HttpProtocol, high: int = 64 * 1024, low: int = 16 * 1024) -> None:
        super().__init__()
        self.protocol = protocol
        self.high = high
        self.low = low
        #: Bytes written and not yet taken by the client (the kernel buffer plus asyncio's).
        self.queue = bytearray()
        #: Everything the client has taken so far.
        self.received = bytearray()
        self.write_paused = False
        self.reading = True
        self.eof_pending = False
        self.eof_sent = False
        self.closing = False
        self.aborted = False
        self.lost = False

    # --------------------------------------------------------------- asyncio.Transport

    def write(self, data: Any) -> None:
        if self.closing or self.aborted:
            return
        self.queue += data
        if not self.write_paused and len(self.queue) > self.high:
            self.write_paused = True
            self.protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return len(self.queue)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_pending = True
        self._settle()

    def is_closing(self) -> bool:
        return self.closing or self.aborted

    def close(self) -> None:
        self.closing = True
        self._settle()

    def abort(self) -> None:
        self.aborted = True
        self.queue.clear()
        self._lose()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 3000)}.get(name, default)

    # --------------------------------------------------------------- the client side

    def take(self, count: int | None = None) -> bytes:
        """The client reads up to ``count`` bytes (all queued bytes by default)."""
        count = len(self.queue) if count is None else min(count, len(self.queue))
        data = bytes(self.queue[:count])
        del self.queue[:count]
        self.received += data
        if self.write_paused and len(self.queue) <= self.low:
            self.write_paused = False
            self.protocol.resume_writing()
        self._settle()
        return data

    def _settle(self) -> None:
        if self.queue:
            return
        if self.eof_pending:
            self.eof_sent = True
        if self.closing:
            self._lose()

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    @property
    def ended(self) -> bool:
        """The client saw the end of the connection: FIN or close after the queue, or a reset."""
        return self.eof_sent or self.lost


class Harness:
    """One worker context with a manual clock; ``connect()`` makes connections to it."""

    def __init__(self, handler: Any, timeouts: Timeouts | None = None, limits: Limits | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = 1000.0
        self.context = ServerContext(self.loop, handler, limits or Limits(), timeouts or Timeouts(), access_log=False)
        self.context.time = lambda: self.now
        self.context.default_headers = b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\nserver: synack\r\n"

    def connect(self, high: int = 64 * 1024, low: int = 16 * 1024) -> tuple[HttpProtocol, FakeTransport]:
        protocol = HttpProtocol(self.context)
        transport = FakeTransport(protocol, high, low)
        protocol.connection_made(transport)
        return protocol, transport

    async def advance(self, seconds: float) -> None:
        """Move the clock on, running the deadline sweep at every second on the way, as the
        worker's once-a-second tick does."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(self.now + 1.0, end)
            expire_deadlines(self.context.connections, self.now)
            await settle()


async def settle(passes: int = 20) -> None:
    """Let the loop run the tasks and callbacks that are ready (no time passes)."""
    for _ in range(passes):
        await asyncio.sleep(0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body on a fresh asyncio loop, bounded in time."""
    async def bounded() -> None:
        await asyncio.wait_for(test(), 30)

    asyncio.run(bounded())


def asgi(app: Any) -> Any:
    """An ASGI app as a driver handler (lifespan off)."""
    from synack.apps.asgi import ASGIHandler

    return ASGIHandler(app, lifespan="off")


def count_responses(data: bytes) -> int:
    return data.count(b"HTTP/1.1 ")
