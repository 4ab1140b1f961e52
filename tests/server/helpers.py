"""Raw-socket helpers for the server tests: a buffered HTTP/1.1 response reader that can tell a
clean close (EOF) from a reset, and a wait for text on a server's stderr."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

from tests.conftest import Server

#: Small driver timeouts so the suite stays fast (seconds; the sweep runs once a second).
FAST = ["--head-timeout", "1", "--keep-alive-timeout", "1", "--linger-timeout", "1"]
APP = "server_app:app"


@dataclass
class Response:
    status: int
    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    informational: list[bytes] = field(default_factory=list)
    #: True when the body was framed by EOF (no Content-Length, not chunked).
    close_delimited: bool = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Reader:
    """Reads HTTP/1.1 responses from a blocking socket, keeping surplus bytes for the next."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.buffer = b""
        sock.settimeout(timeout)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"EOF in the middle of a line: {self.buffer[:200]!r}")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError(f"EOF with {count - len(self.buffer)} body bytes missing")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _head(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        status_line = self._line()
        headers = []
        while True:
            line = self._line()
            if not line:
                return status_line, headers
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))

    def response(self, method: bytes = b"GET") -> Response:
        """The next final response (1xx responses before it are collected in ``informational``)."""
        informational = []
        while True:
            status_line, headers = self._head()
            match = re.fullmatch(rb"HTTP/1\.[01] (\d{3}) ?.*", status_line)
            assert match, f"bad status line {status_line!r}"
            status = int(match.group(1))
            if 100 <= status < 200:
                informational.append(status_line)
                continue
            break
        response = Response(status, status_line, headers, b"", informational)
        if method == b"HEAD" or status in (204, 304):
            return response
        encoding = response.header(b"transfer-encoding")
        length = response.header(b"content-length")
        if encoding is not None:
            assert encoding.lower() == b"chunked", encoding
            response.body = self._chunked()
        elif length is not None:
            response.body = self._exactly(int(length))
        else:
            response.close_delimited = True
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def _chunked(self) -> bytes:
        body = []
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():
                    pass  # trailers
                return b"".join(body)
            body.append(self._exactly(size))
            assert self._exactly(2) == b"\r\n"

    def expect_eof(self) -> None:
        """Assert the server closes cleanly next: nothing more, then EOF (a reset raises)."""
        while self._fill():
            pass
        assert self.buffer == b"", f"unexpected bytes before EOF: {self.buffer[:200]!r}"

    def read_until_closed(self) -> tuple[bytes, str]:
        """Everything until the connection ends, and how it ended: "eof" or "reset"."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return self.buffer, "reset"
        return self.buffer, "eof"


def get(path: bytes = b"/", extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET " + path + b" HTTP/" + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n" % len(body)
            + extra + b"\r\n" + body)


def wait_for_stderr(server: Server, text: str, timeout: float = 10.0) -> str:
    """Block until ``text`` appears in the server's stderr (a readiness signal, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.stderr_text():
            return server.stderr_text()
        server._read_some(min(0.2, max(0.0, deadline - time.monotonic())))
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{server.stderr_text()}")


def assert_served(server: Server, path: bytes = b"/") -> None:
    """A fresh connection gets a normal 200 (the server still works)."""
    with server.connect(timeout=10) as sock:
        sock.sendall(get(path, b"Connection: close\r\n"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"Hello, world!"
        reader.expect_eof()
