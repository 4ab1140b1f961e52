"""Helpers for the process tests: a process's children from /proc, polling waits, one GET on a
fresh connection, and a bounded load of fresh connections that counts how each one ended."""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH, Server
from tests.helpers import Reader


def children(pid: int) -> set[int]:
    """Live (not zombie) child processes of ``pid``."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (never asserts on timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def recv_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything until the server closes (a reset raises ConnectionResetError)."""
    return Reader(sock, timeout).until_eof()


def get(server: Server, path: str = "/") -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return recv_all(sock)


def body(response: bytes) -> bytes:
    assert response.startswith(b"HTTP/1.1 200 OK"), response[:200]
    return response.rpartition(b"\r\n\r\n")[2]


def start_workers(server_factory: Callable[..., Server], marker: Path | None = None,
                  count: int = 2) -> tuple[Server, set[int]]:
    """``sup_pid:app`` under an arbiter with ``count`` workers (``marker`` set as the file
    its /slow creates), once all are running; the server and the workers' pids."""
    env = {"SUP_MARKER": str(marker)} if marker is not None else None
    server = server_factory(["sup_pid:app", "--workers", str(count), "--no-access-log"], env=env)
    assert wait_for(lambda: len(children(server.process.pid)) == count)
    return server, children(server.process.pid)


class InFlight:
    """A request on its own connection, read to the end by a thread (which then closes it), that
    is inside the app (``marker`` exists: the fixture app creates it) when the constructor
    returns."""

    def __init__(self, server: Server, marker: Path, path: str = "/slow") -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self._result: dict[str, bytes] = {}
        self._thread = threading.Thread(target=self._read)
        self._thread.start()
        assert wait_for(marker.exists), "the request never reached the app"

    def _read(self) -> None:
        try:
            self._result["data"] = recv_all(self.sock, 30)
        finally:
            self.sock.close()  # at EOF, as clients do: the server need not linger

    def response(self) -> bytes:
        """Everything the server sent, once it closed the connection."""
        self._thread.join(30)
        return self._result["data"]


@contextlib.contextmanager
def synack_process(args: list[str], **popen: object) -> Iterator[subprocess.Popen[str]]:
    """``python -m synack *args`` (or ``python *args`` when args[0] is a script), started
    outside server_factory (for pass_fds, or a script), ready once it logs that it listens;
    killed at the end if still running."""
    command = [sys.executable, *args] if args[0].endswith(".py") else [sys.executable, "-m", "synack", *args]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)]))
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, **popen)  # type: ignore[call-overload]
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "listening on" in line:
                break
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


class Load:
    """``threads`` clients, each opening fresh connections (one GET each) in a loop until a
    connection is refused or it has made ``per_thread`` attempts. Counts the outcomes:
    ``ok`` (a whole 200), ``refused`` (ECONNREFUSED), ``reset`` (ECONNRESET, or a close with
    no response, after the connection was accepted), ``stalled`` (no answer in 10 s)."""

    def __init__(self, server: Server, threads: int = 8, per_thread: int = 3000) -> None:
        self.address = (server.host, server.port)
        self.per_thread = per_thread
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self.threads:
            thread.join(120)

    def total(self, outcome: str) -> int:
        with self.lock:
            return self.counts[outcome]

    def _client(self) -> None:
        for _ in range(self.per_thread):
            outcome = self._one()
            with self.lock:
                self.counts[outcome] += 1
            if outcome == "refused":
                return

    def _one(self) -> str:
        try:
            sock = socket.create_connection(self.address, timeout=10)
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "stalled"
        with sock:
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = recv_all(sock)
            except (ConnectionResetError, BrokenPipeError):
                return "reset"
            except TimeoutError:
                return "stalled"
        return "ok" if data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, world!") else "reset"
