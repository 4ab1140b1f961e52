"""Sending a file range to a connection: sendfile(2) where the transport allows, chunks elsewhere.

Three strategies, picked per call:
- asyncio's selector loop on a plain socket: ``loop.sendfile`` (zero-copy, in slices);
- another loop (uvloop) on a plain socket: ``os.sendfile`` on a duplicate of the descriptor;
- anything else (TLS): ``pread`` chunks written through the transport, draining between them.

In every strategy the write deadline bounds a stall, not the transfer: it is re-armed for each
slice, so a large file to a client that keeps reading is never cut off.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Protocol

from .exchange import ClientDisconnected

__all__ = ["FileSink", "send_file", "FILE_CHUNK", "SENDFILE_SLICE"]

#: Chunk size for sending files when sendfile is not available (TLS).
FILE_CHUNK = 256 * 1024
#: sendfile(2) runs in slices this big, the write deadline re-armed for each.
SENDFILE_SLICE = 256 * 1024


class FileSink(Protocol):
    """What the strategies need from the connection."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    #: The task blocked in a sendfile call, so a write timeout can cancel it (see protocol.py).
    sendfile_task: asyncio.Task[Any] | None

    def gone(self) -> bool: ...

    def arm_write(self) -> None:
        """(Re-)arm the write deadline: progress was made, or a wait for progress begins."""

    def settle_write(self) -> None:
        """The file is out (or failed): leave the write phase."""

    async def drain(self) -> None: ...


async def send_file(sink: FileSink, file: Any, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``file`` from ``offset``; return how many went out (fewer when
    the file shrank).

    Raises:
        ClientDisconnected: the client went away or stalled.
    """
    if sink.gone():
        raise ClientDisconnected("client disconnected")
    transport = sink.transport
    if transport.get_extra_info("sslcontext") is None and _has_socket(transport):
        sink.sendfile_task = asyncio.current_task()
        try:
            if isinstance(sink.loop, asyncio.selector_events.BaseSelectorEventLoop):
                return await _send_native(sink, file, offset, count)
            return await _send_duplicate(sink, file, offset, count)
        finally:
            sink.sendfile_task = None
            sink.settle_write()
    return await _send_chunks(sink, file, offset, count)


async def _send_native(sink: FileSink, file: Any, offset: int, count: int) -> int:
    # asyncio's selector loop implements sendfile(2) for plain sockets; uvloop does not and
    # would fall back to reading the file into memory in one piece per call.
    await sink.drain()
    sent = 0
    try:
        while sent < count:
            sink.arm_write()
            size = min(SENDFILE_SLICE, count - sent)
            done = await sink.loop.sendfile(sink.transport, file, offset + sent, size, fallback=True)
            sent += done
            if done < size:
                break  # end of file: the file shrank
    except (ConnectionError, RuntimeError) as error:
        if sink.gone():
            raise ClientDisconnected("client disconnected") from None
        raise ClientDisconnected(str(error)) from None
    return sent


async def _send_duplicate(sink: FileSink, file: Any, offset: int, count: int) -> int:
    """Zero-copy for loops without loop.sendfile (uvloop): sendfile(2) on a duplicate of the
    connection's descriptor, waiting for writability on the duplicate (the loop won't watch a
    descriptor its transport owns). The transport's buffer is flushed first so bytes stay in
    order, and nothing else writes until the file is out."""
    out_fd = os.dup(sink.transport.get_extra_info("socket").fileno())
    in_fd = file.fileno()
    sent = 0
    try:
        await _wait_flushed(sink, out_fd)
        while sent < count:
            if sink.gone():
                raise ClientDisconnected("client disconnected")
            sink.arm_write()
            try:
                done = os.sendfile(out_fd, in_fd, offset + sent, min(SENDFILE_SLICE, count - sent))
            except BlockingIOError:
                await _writable(sink.loop, out_fd)
                continue
            except OSError:
                raise ClientDisconnected("client disconnected") from None
            if done == 0:
                break  # end of file: the file shrank
            sent += done
    finally:
        os.close(out_fd)
    return sent


async def _wait_flushed(sink: FileSink, fd: int) -> None:
    """Wait until the transport has handed all its buffered bytes to the kernel: each time
    the socket turns writable, the transport flushes in the same loop pass."""
    while sink.transport.get_write_buffer_size():
        if sink.gone():
            raise ClientDisconnected("client disconnected")
        sink.arm_write()
        await _writable(sink.loop, fd)
        await asyncio.sleep(0)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    waiter: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _set_result_once, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


async def _send_chunks(sink: FileSink, file: Any, offset: int, count: int) -> int:
    fd = file.fileno()
    sent = 0
    while sent < count:
        chunk = os.pread(fd, min(FILE_CHUNK, count - sent), offset + sent)
        if not chunk:
            break
        if sink.gone():
            raise ClientDisconnected("client disconnected")
        sink.transport.write(chunk)
        sent += len(chunk)
        await sink.drain()
    return sent


def _set_result_once(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _has_socket(transport: asyncio.BaseTransport) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
