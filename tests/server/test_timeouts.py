"""Deadlines over real sockets: slowloris (head), idle keep-alive, body idle, slow readers
(write). Each bad client is dealt with while other clients are served normally.

The driver sweeps deadlines once a second, so a 1 s timeout fires after 1-2 s; the tests only
bound the wait generously and never assert how fast anything was. Timing rules that need no
kernel (never early, re-armed per phase, slow but steady bodies) are tested in process with a
manual clock in test_driver.py."""

from __future__ import annotations

import select
import socket
import time

from tests.helpers import Reader, get, post
from tests.server.helpers import APP, FAST, assert_served, wait_for_stderr

#: Upper bound on waiting for a 1 s timeout to fire (sweep granularity plus slack).
BOUND = 10.0


def test_slowloris_gets_408_while_others_are_served(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        served_meanwhile = False
        deadline = time.monotonic() + BOUND
        while True:
            assert time.monotonic() < deadline, "slowloris client was never cut off"
            readable, _, _ = select.select([slow], [], [], 0.2)  # also the trickle interval
            if readable:
                break
            if not served_meanwhile:
                assert_served(server)
                served_meanwhile = True
            slow.sendall(b"X-Trickle: a\r\n")
        assert served_meanwhile
        reader = Reader(slow)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 408 Request Timeout"
        assert response.header(b"connection") == b"close"
        reader.expect_eof()
    assert_served(server)


def test_connection_that_sends_nothing_is_closed_without_response(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect(timeout=BOUND) as sock:
        assert Reader(sock, timeout=BOUND).read_until_closed() == (b"", "eof")
    assert_served(server)


def test_idle_keep_alive_connection_is_closed(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        reader = Reader(sock, timeout=BOUND)
        sock.sendall(get())
        response = reader.response()
        assert response.status == 200
        assert response.header(b"connection") is None  # kept alive...
        reader.expect_eof()  # ...until the idle timeout: then a clean close, no bytes


def test_body_idle_timeout_gives_408(server_factory):
    server = server_factory([APP, *FAST, "--body-timeout", "1"])
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"0123456789")
        reader = Reader(sock, timeout=BOUND)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 408 Request Timeout"
        assert response.header(b"connection") == b"close"
        reader.expect_eof()
    assert_served(server)
    assert "Traceback" not in server.stderr_text()


def test_body_idle_timeout_chunked(server_factory):
    server = server_factory([APP, *FAST, "--body-timeout", "1"])
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        reader = Reader(sock, timeout=BOUND)
        assert reader.response().status_line == b"HTTP/1.1 408 Request Timeout"
        reader.expect_eof()


def test_slow_reader_is_aborted_by_write_timeout(server_factory):
    server = server_factory([APP, *FAST, "--write-timeout", "1", "--no-access-log"])
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(10)
        slow.connect((server.host, server.port))
        slow.sendall(get(b"/stream"))  # never read while the server streams
        assert_served(server)
        wait_for_stderr(server, "too slow to read the response", timeout=BOUND + 5)
        assert_served(server)
        reader = Reader(slow)
        head = reader.head()
        assert head.status_line == b"HTTP/1.1 200 OK"
        assert head.header(b"transfer-encoding") == b"chunked"
        body, _ = reader.read_until_closed()  # (fails if the connection stays open)
        # Whole 64 KiB chunks as the app sent them, the last one perhaps cut short: never the
        # last chunk (the stream has no end) nor anything else.
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
        assert (chunk * (len(body) // len(chunk) + 1)).startswith(body), body[:100]
    finally:
        slow.close()
    assert "Traceback" not in server.stderr_text()


def test_write_timeout_spares_a_reader_that_keeps_up(server_factory):
    server = server_factory([APP, *FAST, "--write-timeout", "1", "--no-access-log"])
    with server.connect() as sock:
        sock.sendall(post(b"/echo", b"r" * 5_000_000))
        sock.settimeout(10)
        response = Reader(sock).response()
        assert response.body == b"r" * 5_000_000
