"""Deadlines over real sockets: slowloris (head), idle keep-alive, body idle, slow readers
(write). Each bad client is dealt with while other clients are served normally.

The driver sweeps deadlines once a second, so a 1 s timeout fires after 1-2 s; the tests only
bound the wait generously and never assert how fast anything was."""

from __future__ import annotations

import select
import socket
import threading
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


def test_timeouts_never_fire_early(server_factory):
    # A lower bound only (never "how fast"): idle keep-alive and head timeouts of 1 s must not
    # close a connection sooner, whatever the phase of the once-a-second sweep. Connections
    # start at staggered moments so some are armed just before a sweep.
    server = server_factory([APP, *FAST, "--no-access-log"])
    results: list[tuple[str, float]] = []
    errors: list[BaseException] = []

    def keep_alive(offset: float) -> None:
        time.sleep(offset)
        with server.connect() as sock:
            reader = Reader(sock, timeout=BOUND)
            sock.sendall(get())
            reader.response()
            start = time.monotonic()
            reader.expect_eof()
            results.append(("keep-alive", time.monotonic() - start))

    def head(offset: float) -> None:
        time.sleep(offset)
        start = time.monotonic()
        with server.connect() as sock:
            Reader(sock, timeout=BOUND).expect_eof()
            results.append(("head", time.monotonic() - start))

    def run(target, offset):
        try:
            target(offset)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(target, i * 0.1))
               for i in range(10) for target in (keep_alive, head)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND + 5)
    assert not errors, errors
    assert len(results) == 20
    early = [(kind, round(elapsed, 3)) for kind, elapsed in results if elapsed < 0.95]
    assert not early, early


def test_keep_alive_connection_in_use_is_not_cut_between_requests(server_factory):
    # Requests follow each other immediately for a few sweeps of the clock; the idle timeout
    # (1 s) must never close the connection in the gap right after a response.
    server = server_factory([APP, *FAST, "--no-access-log"])
    with server.connect() as sock:
        reader = Reader(sock)
        end = time.monotonic() + 3.5
        count = 0
        while time.monotonic() < end:
            sock.sendall(get())
            assert reader.response().body == b"Hello, world!", count
            count += 1
        sock.sendall(get(extra=b"Connection: close\r\n"))
        assert reader.response().status == 200
        reader.expect_eof()


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


def test_slow_body_within_the_idle_timeout_is_read(server_factory):
    # body_idle bounds each wait, not the whole body.
    server = server_factory([APP, *FAST, "--body-timeout", "3"])
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):
            time.sleep(0.3)  # the behaviour under test: a slow (not idle) uploader
            sock.sendall(piece)
        reader = Reader(sock)
        assert reader.response().body == b"abcdef"


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


def test_a_kept_alive_connection_gets_the_whole_head_timeout_for_its_next_head(server_factory):
    # keep-alive 1 s, head 5 s: a second head that starts arriving right after the first
    # response and takes 2.5 s to finish is served (its 5 s run from its first byte), not cut
    # off by the idle deadline armed when the first response went out.
    server = server_factory([APP, "--keep-alive-timeout", "1", "--head-timeout", "5",
                             "--linger-timeout", "1", "--no-access-log"])
    with server.connect() as sock:
        reader = Reader(sock, timeout=BOUND)
        sock.sendall(get())
        assert reader.response().status == 200
        sock.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(2.5)  # past the keep-alive deadline and the sweep after it
        sock.sendall(b"Host: test\r\n\r\n")
        response = reader.response()
        assert response.status == 200, response.status_line
