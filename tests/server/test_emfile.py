"""Running out of file descriptors: the accept loop backs off instead of spinning or dying,
and serves again once descriptors are free."""

from __future__ import annotations

import resource
import socket
import time

from tests.conftest import recv_all

LIMIT = 48


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / 100.0


def test_survives_emfile_and_recovers(server_factory) -> None:
    server = server_factory(["hello:app", "--no-access-log"], preexec_fn=_low_fd_limit)
    clients: list[socket.socket] = []
    try:
        # Far more connections than the server has descriptors for; the kernel backlog holds them.
        for _ in range(LIMIT * 2):
            clients.append(socket.create_connection((server.host, server.port), timeout=10))
        # Wait (bounded) until the server reports the descriptor shortage.
        deadline = time.monotonic() + 10
        while "cannot accept connections" not in server.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "cannot accept connections" in server.stderr_text()
        # While starved it must not spin: well under a full core over one second.
        before = _cpu_seconds(server.process.pid)
        time.sleep(1.0)
        assert _cpu_seconds(server.process.pid) - before < 0.5
        assert server.process.poll() is None
    finally:
        for client in clients:
            client.close()
    # Descriptors are free again: a new client is served.
    deadline = time.monotonic() + 15
    while True:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                data = recv_all(sock, timeout=5)
            except (ConnectionResetError, TimeoutError):
                data = b""
        if data.startswith(b"HTTP/1.1 200 OK") or time.monotonic() > deadline:
            break
    assert data.startswith(b"HTTP/1.1 200 OK"), data
    assert data.endswith(b"Hello, world!")
    assert "Traceback" not in server.stderr_text()
