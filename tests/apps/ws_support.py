"""Client side of the WebSocket suites: a raw-socket handshake and frame reader/writer (for
what a well-behaved client library will not do), and the asyncio ``websockets`` client."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import Server
from tests.helpers import Reader, Response

KEY = base64.b64encode(b"0123456789abcdef")


def handshake(target: str = "/echo", extra: bytes = b"", key: bytes = KEY, version: bytes = b"13",
              method: bytes = b"GET", http: bytes = b"1.1") -> bytes:
    return (method + b" " + target.encode() + b" HTTP/" + http + b"\r\nHost: test\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
            b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")


def frame(payload: bytes, opcode: int = 0x2, fin: bool = True, masked: bool = True) -> bytes:
    """A client frame (RFC 6455 §5.2), masked unless asked otherwise."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


class RawWebSocket(Reader):
    """A raw-socket WebSocket client: sends the handshake, reads the 101 and then frames."""

    def __init__(self, server: Server, request: bytes, timeout: float = 10.0) -> None:
        super().__init__(server.connect(timeout), timeout)
        self.sock.sendall(request)

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def response(self, method: bytes = b"GET") -> Response:
        return super().response(method)

    def opened(self) -> Response:
        """The 101 response head (``Reader.head`` would take it for a 1xx and read on)."""
        status_line = self.line()
        assert status_line.startswith(b"HTTP/1.1 101 "), status_line
        return Response(101, status_line, self._fields())

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (unmasked, unfragmented)."""
        first, second = self.exactly(2)
        assert not second & 0x80, "server frames are never masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self.exactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self.exactly(8))[0]
        return first & 0x0F, self.exactly(size)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


def close_code(payload: bytes) -> int:
    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005


def run(coroutine: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine(), timeout)
    return asyncio.run(bounded())


def url(server: Server, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
