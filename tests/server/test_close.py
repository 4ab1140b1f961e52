"""Graceful close, never a reset: when the server answers early and closes while the client is
still sending, the client reads the whole response and then EOF (recv → b""), not ECONNRESET."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.helpers import Reader, post
from tests.server.helpers import APP, FAST, assert_served, wait_for_stderr


def _send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Keep sending ``data`` while the main thread reads (like a client uploading)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sock.sendall(data)
        except OSError as error:  # recorded: a reset while uploading is a failure too
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def _upload_and_expect(server, request: bytes, status_line: bytes, half_close: bool) -> bytes:
    with server.connect() as sock:
        reader = Reader(sock)
        sender = _send_in_background(sock, request)
        response = reader.response()
        assert response.status_line in (status_line, status_line.replace(b"Content Too Large",
                                                                          b"Request Entity Too Large"))
        sender.join(10)
        assert not sender.is_alive()
        assert sender.errors == []  # type: ignore[attr-defined]
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reader.expect_eof()  # raises ConnectionResetError on an RST
    assert_served(server)
    return response.body


@pytest.mark.parametrize("half_close", [False, True], ids=["linger-timeout", "client-fin"])
def test_413_while_client_sends_body(server_factory, half_close):
    server = server_factory([APP, *FAST, "--max-body-bytes", "1000"])
    request = (b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n"
               + b"u" * 100000)
    body = _upload_and_expect(server, request, b"HTTP/1.1 413 Content Too Large", half_close)
    assert b"request body too large (limit 1000 bytes)" in body


def test_413_declared_length_large_upload(server_factory):
    server = server_factory([APP, *FAST, "--max-body-bytes", "1000"])
    size = 2 * 1024 * 1024
    request = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % size + b"u" * size
    _upload_and_expect(server, request, b"HTTP/1.1 413 Content Too Large", half_close=False)


def test_413_chunked_while_client_sends_body(server_factory):
    server = server_factory([APP, *FAST, "--max-body-bytes", "1000"])
    chunks = (b"400\r\n" + b"c" * 1024 + b"\r\n") * 500 + b"0\r\n\r\n"
    request = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    _upload_and_expect(server, request, b"HTTP/1.1 413 Content Too Large", half_close=False)


def test_body_error_then_app_reads_again_still_closes_cleanly(server_factory):
    # The app calls receive() again after http.disconnect; that must not turn into a reset.
    server = server_factory([APP, *FAST, "--max-body-bytes", "1000"])
    chunks = (b"400\r\n" + b"c" * 1024 + b"\r\n") * 500 + b"0\r\n\r\n"
    request = b"POST /echo-again HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    _upload_and_expect(server, request, b"HTTP/1.1 413 Content Too Large", half_close=False)


def test_bad_chunk_while_client_sends_more(server_factory):
    server = server_factory([APP, *FAST])
    request = (b"POST /echo-again HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\nzz\r\n" + b"j" * 500000)
    _upload_and_expect(server, request, b"HTTP/1.1 400 Bad Request", half_close=False)


@pytest.mark.parametrize("half_close", [False, True], ids=["linger-timeout", "client-fin"])
def test_400_on_garbage_followed_by_more_garbage(server_factory, half_close):
    server = server_factory([APP, *FAST])
    request = b"\x00\x01garbage garbage\r\n\r\n" + bytes(range(256)) * 2000
    _upload_and_expect(server, request, b"HTTP/1.1 400 Bad Request", half_close)


@pytest.mark.parametrize("half_close", [False, True], ids=["linger-timeout", "client-fin"])
def test_app_answers_post_without_reading_body(server_factory, half_close):
    server = server_factory([APP, *FAST])
    request = post(b"/noread", b"n" * 1_000_000)
    body = _upload_and_expect(server, request, b"HTTP/1.1 200 OK", half_close)
    assert body == b"ignored"


def test_app_answers_unread_small_body_and_keeps_connection(server_factory):
    # A small unread body is already buffered: it is skipped and the connection is reused.
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(post(b"/noread", b"small"))
        assert reader.response().body == b"ignored"
        sock.sendall(post(b"/echo", b"next", b"Connection: close\r\n"))
        assert reader.response().body == b"next"
        reader.expect_eof()


def test_error_response_then_client_closes_without_reading(server_factory):
    # The server must survive clients that leave right after sending junk.
    server = server_factory([APP, *FAST])
    for _ in range(20):
        with server.connect() as sock:
            sock.sendall(b"BROKEN\r\n\r\n" + b"z" * 10000)
    assert_served(server)
    assert "Traceback" not in server.stderr_text()


@pytest.mark.parametrize("path", [b"/echo", b"/echo-again"])
def test_client_still_uploading_after_body_error_is_not_reset(server_factory, path):
    # After the 413 and the server's FIN, the server lingers: bytes the client is still sending
    # are read and discarded, so its sends keep succeeding (no RST) until it closes itself.
    server = server_factory([APP, *FAST, "--linger-timeout", "5", "--max-body-bytes", "1000"])
    with server.connect() as sock:
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"400\r\n" + b"c" * 1024 + b"\r\n")
        reader = Reader(sock)
        assert reader.response().status == 413
        reader.expect_eof()
        for _ in range(50):
            sock.sendall(b"more upload " * 100)
    assert_served(server)
    assert wait_for_stderr(server, "bad request body").count("bad request body") == 1
