"""Helpers for the server tests: fast driver timeouts, a wait for text on a server's stderr and a
check that a server still serves. The raw-socket client (``Reader``, ``get``, ``post``) is in
tests/helpers.py."""

from __future__ import annotations

import time

from tests.conftest import Server
from tests.helpers import Reader, get

#: Small driver timeouts so the suite stays fast (seconds; the sweep runs once a second).
FAST = ["--head-timeout", "1", "--keep-alive-timeout", "1", "--linger-timeout", "1"]
APP = "server_app:app"


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
