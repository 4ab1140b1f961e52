"""Static files under load and change: memory stays bounded while 4 clients download 100 MiB
each, a file that shrinks or grows mid-response never corrupts framing, a client that keeps
reading is never cut off by the write timeout, and one that stalls is dropped without
leaking its file. Run with the asyncio loop (sendfile) and the default loop (uvloop when
installed: bounded pread chunks)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.apps.static_support import build_request, fetch, headers_of, open_files, read_reply, rss_kib, write
from tests.conftest import Server
from tests.helpers import Reader
from tests.server.helpers import wait_for_stderr

MiB = 1024 * 1024
LOOPS = ["asyncio", "auto"]


def _sparse(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def _read_head(sock: socket.socket) -> tuple[int, dict[str, list[str]], bytes]:
    """Status and headers of the response, and the body bytes that came with the head."""
    reader = Reader(sock, timeout=None)
    response = reader.head()
    return response.status, headers_of(response), reader.buffer


def _drain(sock: socket.socket, already: int, pause_every: int = 0, pause: float = 0.0) -> tuple[int, bool]:
    """Read to EOF; returns (body bytes, whether the connection ended with a reset)."""
    total, since_pause = already, 0
    buffer = bytearray(MiB)
    try:
        while True:
            count = sock.recv_into(buffer)
            if not count:
                return total, False
            total += count
            since_pause += count
            if pause_every and since_pause >= pause_every:
                since_pause = 0
                time.sleep(pause)
    except ConnectionResetError:
        return total, True


@pytest.mark.parametrize("loop", LOOPS)
def test_four_concurrent_100mib_downloads_keep_rss_bounded(tmp_path: Path, server_factory, loop: str) -> None:  # type: ignore[no-untyped-def]
    size = 100 * MiB
    root = tmp_path / "root"
    _sparse(root / "big.bin", size)
    write(root / "small.txt", "warm up\n")
    server: Server = server_factory(["--loop", loop, str(root)])
    pid = server.process.pid
    for _ in range(3):
        fetch(server, "/small.txt")
        fetch(server, "/big.bin", headers={"Range": "bytes=0-65535"})
    baseline = rss_kib(pid)
    received = [0] * 4
    errors: list[BaseException] = []

    def download(index: int) -> None:
        try:
            with server.connect(timeout=60) as sock:
                sock.sendall(build_request("GET", "/big.bin"))
                status, headers, rest = _read_head(sock)
                assert status == 200 and headers["content-length"] == [str(size)]
                # A little slower than the server can write, so its buffers are exercised.
                received[index], reset = _drain(sock, len(rest), pause_every=4 * MiB, pause=0.005)
                assert not reset
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=download, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    peak = baseline
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_kib(pid))
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert received == [size] * 4
    assert peak - baseline < 60 * 1024, f"RSS grew {(peak - baseline) / 1024:.1f} MiB over {baseline / 1024:.1f} MiB"


@pytest.mark.parametrize("loop", LOOPS)
def test_file_that_shrinks_mid_response_aborts_the_connection(tmp_path: Path, server_factory, loop: str) -> None:  # type: ignore[no-untyped-def]
    size = 48 * MiB
    root = tmp_path / "root"
    path = _sparse(root / "shrinking.bin", size)
    write(root / "hello.txt", "hello\n")
    server = server_factory(["--loop", loop, str(root)])
    with server.connect(timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(build_request("GET", "/shrinking.bin", close=False))
        status, headers, rest = _read_head(sock)
        assert status == 200 and headers["content-length"] == [str(size)]
        os.truncate(path, 1 * MiB)
        total, _ = _drain(sock, len(rest))
    # The body came up short and the connection ended: the client can tell it is truncated,
    # and nothing after it was mistaken for a new response.
    assert total < size
    assert fetch(server, "/hello.txt").body == b"hello\n"
    log = wait_for_stderr(server, "changed size")  # (the error log is written by a thread)
    assert "Traceback" not in log


@pytest.mark.parametrize("loop", LOOPS)
def test_file_that_grows_mid_response_keeps_its_length(tmp_path: Path, server_factory, loop: str) -> None:  # type: ignore[no-untyped-def]
    size = 16 * MiB
    root = tmp_path / "root"
    path = write(root / "growing.bin", b"x" * size)
    write(root / "hello.txt", "hello\n")
    server = server_factory(["--loop", loop, str(root)])
    with server.connect(timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(build_request("GET", "/growing.bin", close=False))
        status, headers, rest = _read_head(sock)
        assert headers["content-length"] == [str(size)]
        with open(path, "ab") as file:
            file.write(b"y" * (4 * MiB))
        buffer = bytearray(rest)
        body = bytes(buffer)
        while len(body) < size:
            chunk = sock.recv(MiB)
            assert chunk
            body += chunk
        assert body[:size] == b"x" * size
        # Exactly Content-Length bytes, then the next response on the same connection.
        sock.sendall(build_request("GET", "/hello.txt"))
        next_buffer = bytearray(body[size:])
        assert read_reply(sock, "GET", next_buffer).body == b"hello\n"


def test_a_reading_client_is_not_cut_off_by_the_write_timeout(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    # --write-timeout bounds a stall, not a whole transfer: this download takes ~3 s, longer
    # than the 2 s timeout, but never stalls.
    size = 24 * MiB
    root = tmp_path / "root"
    _sparse(root / "big.bin", size)
    server = server_factory(["--loop", "asyncio", "--write-timeout", "2", str(root)])
    with server.connect(timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(build_request("GET", "/big.bin"))
        status, _, rest = _read_head(sock)
        started = time.monotonic()
        total, reset = _drain(sock, len(rest), pause_every=256 * 1024, pause=0.03)
        elapsed = time.monotonic() - started
    assert (status, total, reset) == (200, size, False)
    assert elapsed > 2.0, "the test did not outlast the write timeout"
    assert "too slow" not in server.stderr_text()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_stalled_client_is_dropped_and_the_file_closed(tmp_path: Path, server_factory, loop: str) -> None:  # type: ignore[no-untyped-def]
    size = 64 * MiB
    root = tmp_path / "root"
    path = _sparse(root / "big.bin", size)
    write(root / "hello.txt", "hello\n")
    server = server_factory(["--loop", loop, "--write-timeout", "1", str(root)])
    pid = server.process.pid
    with server.connect(timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(build_request("GET", "/big.bin"))
        deadline = time.monotonic() + 10
        while "too slow" not in server.stderr_text():
            assert time.monotonic() < deadline, "the stalled client was never dropped"
            time.sleep(0.05)
        total, _ = _drain(sock, 0)
    assert total < size
    deadline = time.monotonic() + 5
    while str(path) in open_files(pid):
        assert time.monotonic() < deadline, "the file stayed open after the connection was dropped"
        time.sleep(0.05)
    assert fetch(server, "/hello.txt").body == b"hello\n"
    assert "Traceback" not in server.stderr_text()
    assert "InvalidStateError" not in server.stderr_text()
