"""UpgradedStream: a connection's raw bytes after ``101 Switching Protocols``.

The driver hands every byte received after the 101 (including bytes that arrived together with
the upgrade request) to this stream instead of the HTTP/1.1 parser. Reading pauses while more
than ``HIGH_WATER`` bytes wait unread; writing goes through the connection's drain, under the
write timeout. Closing is the connection's graceful close (FIN, then linger).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Protocol

from .exchange import ClientDisconnected, Exchange

__all__ = ["UpgradedStream", "StreamSink", "HIGH_WATER"]

#: Unread input above this pauses reading from the socket until the application reads.
HIGH_WATER: Final = 256 * 1024


class StreamSink(Protocol):
    """What the stream needs from the connection that feeds it (the driver's protocol)."""

    loop: asyncio.AbstractEventLoop

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...

    def gone(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def graceful_close(self) -> None: ...

    def abort(self) -> None: ...


class UpgradedStream:
    """The ``RawStream`` the driver gives an application after a protocol switch."""

    def __init__(self, protocol: StreamSink, exchange: Exchange) -> None:
        self.exchange = exchange
        self._protocol = protocol
        #: Received chunks not read yet (kept as they came: a lone chunk is handed on uncopied).
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_shutdown: Callable[[], None] | None = None
        #: The server began draining before anyone asked to hear of it.
        self._shutdown_pending = False

    # ------------------------------------------------------------------ from the protocol

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._protocol.pause_input()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def connection_lost(self) -> None:
        self._lost = True
        self._wake()

    def shutdown(self) -> None:
        """The server is draining: tell the application (once), now or when it asks."""
        callback, self._on_shutdown = self._on_shutdown, None
        if callback is not None:
            callback()
        else:
            self._shutdown_pending = True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ RawStream

    async def read(self) -> bytes:
        while not self._chunks:
            if self._eof:
                return b""
            if self._lost:
                raise ClientDisconnected("client disconnected")
            self._protocol.resume_input()
            self._waiter = self._protocol.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        self._protocol.resume_input()
        return data

    def write(self, data: bytes) -> None:
        if self._lost or self._protocol.gone():
            raise ClientDisconnected("client disconnected")
        self._protocol.write(data)

    async def drain(self) -> None:
        await self._protocol.drain()

    def close(self) -> None:
        if not self._lost:
            self._protocol.graceful_close()

    def abort(self) -> None:
        self._protocol.abort()

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        self._on_shutdown = callback
        if self._shutdown_pending:  # the drain began before the application asked
            self._shutdown_pending = False
            self._protocol.loop.call_soon(self.shutdown)
