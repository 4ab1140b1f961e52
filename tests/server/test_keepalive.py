"""Connection reuse over real sockets: keep-alive, HTTP/1.0, Connection: close, pipelining,
half-close, and a real curl client."""

from __future__ import annotations

import socket
import subprocess

from tests.helpers import Reader, get, post
from tests.server.helpers import APP, FAST, assert_served

KEEP = ["--head-timeout", "5", "--keep-alive-timeout", "5", "--linger-timeout", "1"]


def test_keep_alive_several_requests_on_one_connection(server_factory):
    server = server_factory([APP, *KEEP])
    with server.connect() as sock:
        reader = Reader(sock)
        for _ in range(5):
            sock.sendall(get())
            response = reader.response()
            assert response.status_line == b"HTTP/1.1 200 OK"
            assert response.body == b"Hello, world!"
            assert response.header(b"connection") is None
        for size in (0, 1, 5000):
            sock.sendall(post(b"/echo", b"e" * size))
            response = reader.response()
            assert response.status == 200
            assert response.body == b"e" * size
        sock.sendall(get(extra=b"Connection: close\r\n"))
        response = reader.response()
        assert response.body == b"Hello, world!"
        assert response.header(b"connection") == b"close"
        reader.expect_eof()


def test_http10_closes_by_default(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"Hello, world!"
        assert response.header(b"connection") == b"close"
        reader.expect_eof()


def test_http10_keep_alive_when_asked(server_factory):
    server = server_factory([APP, *KEEP])
    with server.connect() as sock:
        reader = Reader(sock)
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = reader.response()
            assert response.status == 200
            assert response.header(b"connection") == b"keep-alive"
            assert response.body == b"Hello, world!"
        # Without the keep-alive token the connection ends after this response.
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        response = reader.response()
        assert response.header(b"connection") == b"close"
        assert response.body == b"Hello, world!"
        reader.expect_eof()


def test_connection_close_request(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(get(extra=b"Connection: close\r\n") + get())  # the second is never answered
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.header(b"connection") == b"close"
        reader.expect_eof()


def test_pipelined_requests_in_one_packet_answered_in_order(server_factory):
    server = server_factory([APP, *KEEP])
    with server.connect() as sock:
        sock.sendall(
            get(b"/") + post(b"/echo", b"first") + post(b"/noread", b"unread body")
            + post(b"/echo", b"second") + get(b"/", b"Connection: close\r\n")
        )
        reader = Reader(sock)
        bodies = [reader.response().body for _ in range(5)]
        assert bodies == [b"Hello, world!", b"first", b"ignored", b"second", b"Hello, world!"]
        reader.expect_eof()


def test_large_pipelined_burst_all_answered(server_factory):
    server = server_factory([APP, *KEEP, "--no-access-log"])
    count = 200
    burst = b"".join(post(b"/echo", b"request %d" % i) for i in range(count))
    burst += get(extra=b"Connection: close\r\n")
    with server.connect() as sock:
        sock.sendall(burst)
        reader = Reader(sock)
        for i in range(count):
            response = reader.response()
            assert response.status == 200
            assert response.body == b"request %d" % i
        assert reader.response().body == b"Hello, world!"
        reader.expect_eof()


def test_pipelined_burst_larger_than_the_read_buffer(server_factory):
    # Enough pipelined bytes that the server must pause reading while it answers.
    server = server_factory([APP, *KEEP, "--no-access-log"])
    body = b"b" * 4000
    count = 150
    with server.connect() as sock:
        sock.sendall(b"".join(post(b"/echo", body) for _ in range(count)) + get(extra=b"Connection: close\r\n"))
        reader = Reader(sock)
        for _ in range(count):
            assert reader.response().body == body
        assert reader.response().body == b"Hello, world!"
        reader.expect_eof()


def test_half_close_after_request_still_gets_response(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(get())
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"Hello, world!"
        reader.expect_eof()


def test_half_close_after_pipelined_posts(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(post(b"/echo", b"one") + post(b"/echo", b"two" * 10000))
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        assert reader.response().body == b"one"
        assert reader.response().body == b"two" * 10000
        reader.expect_eof()


def test_half_close_mid_head_gets_400_and_eof(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: te")
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        assert reader.response().status_line == b"HTTP/1.1 400 Bad Request"
        reader.expect_eof()


def test_curl_get(server_factory):
    server = server_factory([APP, *FAST])
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-i", server.url + "/"],
        capture_output=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-length: 13" in head
    assert body == b"Hello, world!"


def test_curl_post_with_body(server_factory):
    server = server_factory([APP, *FAST])
    for payload in (b"small body", bytes(range(256)) * 800):  # the large one uses Expect: 100-continue
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--data-binary", "@-", server.url + "/echo"],
            input=payload, capture_output=True, timeout=20,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == payload
    assert_served(server)
