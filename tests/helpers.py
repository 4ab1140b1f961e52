"""Client-side helpers shared by the server and app suites: a buffered raw-socket HTTP/1.1
response reader (1xx, chunked bodies and trailers included; tells a clean close from a reset),
request builders, and a synack subprocess that lives for a whole test module."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Server

Fields = list[tuple[bytes, bytes]]


@dataclass
class Response:
    status: int
    status_line: bytes
    headers: Fields
    body: bytes = b""
    trailers: Fields = field(default_factory=list)
    #: The 1xx responses received before this one, as (status, headers).
    informational: list[tuple[int, Fields]] = field(default_factory=list)
    #: True when the body was framed by EOF (no Content-Length, not chunked).
    close_delimited: bool = False
    #: The head as received: status line, field lines and the empty line.
    raw_head: bytes = b""

    @property
    def reason(self) -> bytes:
        _, _, *reason = self.status_line.split(b" ", 2)
        return reason[0] if reason else b""

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)

    def header_all(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class Reader:
    """Reads HTTP/1.1 responses from a blocking socket, keeping surplus bytes for the next.
    The one raw-response reader of the suites: everything that reads a response off a socket
    byte by byte goes through it. ``timeout=None`` keeps the socket's own timeout."""

    def __init__(self, sock: socket.socket, timeout: float | None = 10.0, buffer: bytes = b"") -> None:
        self.sock = sock
        self.buffer = buffer
        if timeout is not None:
            sock.settimeout(timeout)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def at_least(self, count: int) -> bytes:
        """Read until ``count`` bytes are buffered (EOF first raises); returns the buffer, unconsumed."""
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buffer)} of {count} bytes")
        return self.buffer

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"EOF in the middle of a line: {self.buffer[:200]!r}")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError(f"EOF with {count - len(self.buffer)} body bytes missing")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def until_eof(self) -> bytes:
        """Everything up to a clean close (a reset raises)."""
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def _field_lines(self) -> list[bytes]:
        lines = []
        while line := self.line():
            lines.append(line)
        return lines

    @staticmethod
    def _parse_fields(lines: list[bytes]) -> Fields:
        fields = []
        for line in lines:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), value.strip()))
        return fields

    def _fields(self) -> Fields:
        return self._parse_fields(self._field_lines())

    def head(self) -> Response:
        """Status line and headers of the next final response (1xx collected on the way)."""
        informational = []
        while True:
            status_line = self.line()
            match = re.fullmatch(rb"HTTP/1\.[01] (\d{3}) ?.*", status_line)
            assert match, f"bad status line {status_line!r}"
            status = int(match.group(1))
            lines = self._field_lines()
            headers = self._parse_fields(lines)
            if 100 <= status < 200:
                informational.append((status, headers))
                continue
            raw_head = b"".join(line + b"\r\n" for line in (status_line, *lines, b""))
            return Response(status, status_line, headers, informational=informational, raw_head=raw_head)

    def chunk(self) -> bytes | None:
        """The next chunk of a chunked body; None at the last chunk (trailers left unread)."""
        size = int(self.line().split(b";")[0], 16)
        if size == 0:
            return None
        data = self.exactly(size)
        assert self.exactly(2) == b"\r\n"
        return data

    def response(self, method: bytes = b"GET") -> Response:
        """The next final response, body (and trailers) included."""
        response = self.head()
        if method == b"HEAD" or response.status in (204, 304):
            return response
        encoding = response.header(b"transfer-encoding")
        length = response.header(b"content-length")
        if encoding is not None:
            assert encoding.lower() == b"chunked", encoding
            chunks = []
            while (data := self.chunk()) is not None:
                chunks.append(data)
            response.body = b"".join(chunks)
            response.trailers = self._fields()
        elif length is not None:
            response.body = self.exactly(int(length))
        else:
            response.close_delimited = True
            response.body = self.until_eof()
        return response

    def expect_eof(self) -> None:
        """Assert the server closes cleanly next: nothing more, then EOF (a reset raises)."""
        rest = self.until_eof()
        assert rest == b"", f"unexpected bytes before EOF: {rest[:200]!r}"

    def read_until_closed(self) -> tuple[bytes, str]:
        """Everything until the connection ends (consumed), and how it ended: "eof" or "reset".
        Bytes that arrived before a reset are kept. A connection still open when the timeout
        runs out fails the test."""
        how = "eof"
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            how = "reset"
        except TimeoutError:
            pytest.fail(f"the connection did not end within {self.sock.gettimeout()} s; "
                        f"received {self.buffer[:200]!r}")
        data, self.buffer = self.buffer, b""
        return data, how


class RawClient(Reader):
    """A new connection to ``server`` that speaks HTTP/1.1 bytes and reads the responses."""

    def __init__(self, server: Server, timeout: float = 10.0) -> None:
        super().__init__(server.connect(timeout), timeout)

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0): the server sees the client vanish at once."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(self, target: str, headers: bytes = b"", version: bytes = b"1.1") -> None:
        self.send(get(target.encode(), headers, version))


def assert_aborted(reader: Reader, rest: bytes = b"") -> str:
    """The server cut the response short: after what the caller has read so far, exactly
    ``rest`` arrived (so never the end of the response the caller knows is unfinished), and
    then the connection ended, by EOF or by a reset. A connection that stays open fails.
    Returns how it ended: "eof" or "reset"."""
    data, how = reader.read_until_closed()
    assert data == rest, f"after the cut-off point expected {rest[:200]!r}, received {data[:200]!r} ({how})"
    return how


def get(path: bytes = b"/", extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET " + path + b" HTTP/" + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n" % len(body)
            + extra + b"\r\n" + body)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_file(tmp_path_factory: pytest.TempPathFactory, suite: str, size: int) -> Path:
    """``size`` random bytes in ``big.bin``, in a new temporary directory named after ``suite``."""
    path = tmp_path_factory.mktemp(suite) / "big.bin"
    path.write_bytes(os.urandom(size))
    return path


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Server]:
    """A synack subprocess for a whole module (no access log, so its stderr pipe stays small)."""
    server = Server(["--port", "0", "--no-access-log", *args], cwd=cwd, env=env)
    try:
        yield server
    finally:
        server.stop()
        if os.environ.get("SYNACK_TEST_SHOW_STDERR"):  # debugging aid: pytest -s shows the server log
            print(f"\n--- stderr of {' '.join(args)} ---\n{server.stderr_text()}")
        server.close()
