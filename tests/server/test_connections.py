"""Many connections, the connection cap, clients that vanish mid-body or mid-response, and
application exceptions — each while other clients keep being served."""

from __future__ import annotations

import contextlib
import socket

import pytest

from tests.helpers import Reader, assert_aborted, get
from tests.server.helpers import APP, FAST, assert_served, wait_for_stderr

LONG = ["--head-timeout", "30", "--keep-alive-timeout", "30", "--linger-timeout", "1"]


def test_many_idle_connections_do_not_block_others(server_factory):
    server = server_factory([APP, *LONG, "--no-access-log"])
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(server.connect()) for _ in range(500)]
        for _ in range(3):
            assert_served(server)
        # Every held connection is still alive and usable.
        for sock in idle:
            sock.sendall(get(extra=b"Connection: close\r\n"))
        for sock in idle:
            reader = Reader(sock)
            assert reader.response().body == b"Hello, world!"
            reader.expect_eof()


def test_max_connections_makes_the_next_client_wait(server_factory):
    server = server_factory([APP, *LONG, "--max-connections", "3"])
    with contextlib.ExitStack() as stack:
        held = []
        for _ in range(3):
            sock = stack.enter_context(server.connect())
            reader = Reader(sock)
            sock.sendall(get())
            assert reader.response().status == 200  # accepted and counted
            held.append(sock)
        waiting = stack.enter_context(server.connect())  # queued in the backlog
        waiting.sendall(get(extra=b"Connection: close\r\n"))
        waiting.settimeout(0.5)
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # not served while three connections are open
        held[0].close()
        reader = Reader(waiting, timeout=10)
        assert reader.response().body == b"Hello, world!"
        reader.expect_eof()
        # The held connections still work.
        for sock in held[1:]:
            sock.sendall(get())
            assert Reader(sock).response().status == 200
    wait_for_stderr(server, "connection limit reached (3)")  # (the error log is written by a thread)


# ---------------------------------------------------------------------- vanishing clients

def _closed_logged(server, sock: socket.socket) -> str:
    return f"connection closed from 127.0.0.1:{sock.getsockname()[1]}"


def test_client_disconnects_mid_body(server_factory):
    server = server_factory([APP, *FAST, "--log-level", "debug"])
    sock = server.connect()
    try:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n\r\n"
                     + b"b" * 200_000)
        marker = _closed_logged(server, sock)
    finally:
        sock.close()
    wait_for_stderr(server, marker)
    assert_served(server)
    assert "Traceback" not in server.stderr_text()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnects_mid_response(server_factory, loop, how):
    server = server_factory([APP, *FAST, "--log-level", "debug", "--loop", loop])
    sock = server.connect()
    try:
        sock.sendall(get(b"/stream"))
        Reader(sock).at_least(1_000_000)  # the response is well under way
        marker = _closed_logged(server, sock)
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    finally:
        sock.close()
    wait_for_stderr(server, marker)
    for _ in range(3):
        assert_served(server)
    assert "Traceback" not in server.stderr_text()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_many_clients_vanish_mid_response_while_others_are_served(server_factory, loop):
    # The app streams without awaiting anything but send(): once a write fails, send() must
    # raise at once rather than let the app spin before connection_lost is delivered.
    server = server_factory([APP, *FAST, "--loop", loop])
    for _ in range(10):
        with server.connect() as sock:
            sock.sendall(get(b"/stream"))
            Reader(sock).at_least(100_000)
        assert_served(server)
    log = server.stderr_text()
    assert "Traceback" not in log
    assert "socket.send() raised exception" not in log


# ---------------------------------------------------------------------- application errors

def test_exception_before_response_start_gives_500(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/boom"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 500 Internal Server Error"
        assert response.header(b"connection") == b"close"
        assert b"boom before start" not in response.body  # no details leak to the client
        reader.expect_eof()
    assert_served(server)
    # The access log and the error log are each written by their own thread: wait for both.
    wait_for_stderr(server, '"GET /boom HTTP/1.1" 500')
    log = wait_for_stderr(server, "RuntimeError: boom before start")
    assert "exception in application" in log


def test_exception_after_response_start_aborts_connection(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/boom-after"))
        reader = Reader(sock)
        head = reader.head()
        assert head.status_line == b"HTTP/1.1 200 OK"
        assert head.header(b"transfer-encoding") == b"chunked"
        assert reader.chunk() == b"partial"
        assert_aborted(reader)  # never the last chunk: the client can tell it is cut off
    assert_served(server)
    wait_for_stderr(server, "RuntimeError: boom after start")


def test_exception_in_pipelined_request_answers_earlier_ones(server_factory):
    server = server_factory([APP, *FAST])
    with server.connect() as sock:
        sock.sendall(get() + get(b"/boom") + get())
        reader = Reader(sock)
        assert reader.response().body == b"Hello, world!"
        assert reader.response().status == 500
        reader.expect_eof()
