"""Defects found by attacking synack from raw sockets (issue 10), each over a real server
subprocess: the lingering close that protects a large response, errors that must reach the
log, a bad app response that must still get a 500, access-log forgery, and memory under a
pipelined flood from a client that never reads."""

from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path

from tests.helpers import Reader, get
from tests.server.helpers import FAST, assert_served, wait_for_stderr

ASGI = "hardening_asgi:app"
WSGI = "hardening_wsgi:app"


def test_naive_client_uploading_a_large_body_gets_the_whole_response(server_factory) -> None:
    # The lesson synack started from: the app answers 1 MiB without reading an 8 MiB upload;
    # the client sends its whole body before it reads. The server must keep discarding input
    # until the client is done, so the client reads every byte and a clean FIN, never a reset.
    server = server_factory([ASGI, *FAST])
    body_size = 8 * 1024 * 1024
    with server.connect(timeout=30) as sock:
        sock.sendall(b"POST /big-noread HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % body_size)
        chunk = b"u" * 65536
        for _ in range(body_size // len(chunk)):
            sock.sendall(chunk)
        reader = Reader(sock, timeout=30)
        response = reader.response()
        assert response.status == 200
        assert response.body == bytes(range(256)) * 4096
        reader.expect_eof()
    assert_served(server)


def test_asgi_exception_after_the_response_is_logged_once(server_factory) -> None:
    server = server_factory([ASGI, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/raise-after") + get(b"/"))
        reader = Reader(sock)
        assert reader.response().status == 500
        assert reader.response().body == b"Hello, world!"  # the connection carried on
    log = wait_for_stderr(server, "RuntimeError: raised after the response: asgi")
    assert log.count("RuntimeError: raised after the response: asgi") == 1
    assert "Traceback (most recent call last)" in log
    assert '"GET /raise-after HTTP/1.1"' in log


def test_wsgi_exception_after_the_response_is_logged_once(server_factory) -> None:
    server = server_factory([WSGI, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/raise-after", b"Connection: close\r\n"))
        reader = Reader(sock)
        response = reader.response()
        assert (response.status, response.body) == (200, b"done")
    log = wait_for_stderr(server, "RuntimeError: raised after the response: wsgi")
    assert log.count("RuntimeError: raised after the response: wsgi") == 1
    assert "Traceback (most recent call last)" in log
    assert '"GET /raise-after HTTP/1.1"' in log


def test_fastapi_route_that_raises_is_logged_with_its_traceback(server_factory) -> None:
    server = server_factory(["fastapi_raise_app:app", *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/divide", b"Connection: close\r\n"))
        assert Reader(sock).response().status == 500
    log = wait_for_stderr(server, "ZeroDivisionError")
    assert log.count("ZeroDivisionError: division by zero") == 1
    assert "Traceback (most recent call last)" in log
    assert "/divide" in log


def test_wsgi_informational_status_gets_500(server_factory) -> None:
    # Issue 10 Low #8: nothing was written yet, so a 500 instead of a silent close.
    server = server_factory([WSGI, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/status-100"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 500
        reader.expect_eof()
    wait_for_stderr(server, "invalid final status 100")


def test_access_log_escapes_bytes_that_could_forge_a_line(server_factory) -> None:
    # Issue 10 Low #15: U+0085 is a line break to str.splitlines(); non-ASCII becomes \xHH.
    server = server_factory([ASGI, *FAST])
    with server.connect() as sock:
        sock.sendall(get(b"/", b"User-Agent: evil\x85127.0.0.1 - - forged\r\nConnection: close\r\n"))
        assert Reader(sock).response().status == 200
    log = wait_for_stderr(server, "evil")
    line = next(line for line in log.splitlines() if "evil" in line)
    assert line.rsplit(" ", 1)[0].endswith('"evil\\x85127.0.0.1 - - forged"')  # then the duration
    assert not any(line.startswith("127.0.0.1 - - forged") for line in log.splitlines())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_pipelined_flood_from_a_client_that_never_reads_stays_bounded(server_factory, tmp_path: Path) -> None:
    # Issue 10 High #1: thousands of pipelined GETs for a 16 KiB file, never read. Before the
    # fix every response was queued in memory (20,000 requests: 26 -> 343 MiB).
    (tmp_path / "f16k.bin").write_bytes(os.urandom(16 * 1024))
    server = server_factory([str(tmp_path), *FAST, "--no-access-log"])
    with server.connect() as sock:
        sock.sendall(get(b"/f16k.bin", b"Connection: close\r\n"))
        assert Reader(sock).response().status == 200
    before = _rss_kib(server.process.pid)
    request = get(b"/f16k.bin")
    flood = request * 20_000
    with socket.create_connection((server.host, server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while sent < len(flood) and time.monotonic() < deadline:
            _, writable, _ = select.select([], [sock], [], 1.0)
            if not writable:
                break  # the server stopped reading: it holds the pipeline back
            try:
                sent += sock.send(flood[sent:sent + 65536])
            except BlockingIOError:
                continue
        peak = before
        for _ in range(10):  # the bound holds however long the server works on it
            peak = max(peak, _rss_kib(server.process.pid))
            time.sleep(0.2)
    assert sent > len(request) * 100  # the attack did reach the server
    assert peak - before < 40 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"
    with server.connect() as sock:  # and it still serves
        sock.sendall(get(b"/f16k.bin", b"Connection: close\r\n"))
        assert Reader(sock).response().status == 200
