"""Helpers for the static-file tests: a raw-socket HTTP client that checks framing, a tree
builder, and a server launcher without the DAC-override capabilities (for 403 tests as root)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import FIXTURE_APPS, ROOT, Server

SECRET = b"TOPSECRET-b7f3e9a1c0d2"


@dataclass
class Reply:
    """One parsed response."""

    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def fields(self, skip: tuple[str, ...] = ("date",)) -> list[tuple[str, str]]:
        """Every header as (name, value), in order, minus ``skip``."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in head]
        return [(name.lower(), value) for name, value in pairs if name.lower() not in skip]  # type: ignore[misc]


def parse_head(head: bytes) -> tuple[int, dict[str, list[str]]]:
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, f"bad status line {lines[0]!r}"
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(match.group(1)), headers


def build_request(method: str, target: str | bytes, headers: dict[str, str] | list[tuple[str, str]] | None = None,
                  close: bool = True) -> bytes:
    if isinstance(target, str):
        target = target.encode("latin-1")
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: test"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in items]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_reply(sock: socket.socket, method: str, buffer: bytearray) -> Reply:
    """Read exactly one response from ``sock`` (``buffer`` carries bytes between calls),
    checking that its body is framed by Content-Length exactly."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response head: {bytes(buffer)!r}")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        length = 0
    else:
        assert "transfer-encoding" not in headers, "static responses are never chunked"
        assert "content-length" in headers, f"no Content-Length in {head!r}"
        length = int(headers["content-length"][0])
    while len(rest) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"body short: {len(rest)} of {length}")
        rest += chunk
    body, extra = rest[:length], rest[length:]
    buffer[:] = extra
    return Reply(status, headers, body, head + b"\r\n\r\n" + body)


def fetch(server: Server, target: str | bytes, method: str = "GET",
          headers: dict[str, str] | list[tuple[str, str]] | None = None, timeout: float = 10.0) -> Reply:
    """One request on a fresh connection; asserts nothing follows the framed body."""
    with server.connect(timeout) as sock:
        sock.sendall(build_request(method, target, headers))
        buffer = bytearray()
        reply = read_reply(sock, method, buffer)
        tail = bytes(buffer)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            tail += chunk
    assert tail == b"", f"bytes after the framed response: {tail[:200]!r}"
    return reply


def multipart_parts(reply: Reply) -> list[tuple[dict[str, str], bytes]]:
    """The (headers, data) parts of a multipart/byteranges body."""
    content_type = reply.header("content-type") or ""
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    body = reply.body
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n"), body[-80:]
    inner = body[len(delimiter) + 2: -(len(delimiter) + 6)]
    parts = []
    for chunk in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    return parts


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_files(pid: int) -> list[str]:
    names = []
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{entry}"))
        except OSError:
            pass
    return names


class RestrictedServer(Server):
    """A synack server that file permissions apply to, even when the tests run as root.

    Root normally reads any file (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH); started through
    ``setpriv`` without those capabilities, a mode-000 file is unreadable to it as well.
    """

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(FIXTURE_APPS), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        prefix: list[str] = []
        if os.geteuid() == 0:
            drop = "-dac_override,-dac_read_search"
            prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]
        self.args = [*prefix, sys.executable, "-m", "synack", "--port", "0", *args]
        self.process = subprocess.Popen(
            self.args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._err = b""
        self.host = ""
        self.port = 0
        self.uds: str | None = None
        self._wait_ready(20.0)


def serve_for_module(root: Path) -> Iterator[Server]:
    """A static server for ``root`` outside the ``server_factory`` fixture (``yield from`` it in a
    module-scoped fixture); its log must show no traceback when the module is done."""
    server = Server(["--port", "0", str(root)])
    yield server
    log = server.stderr_text()
    server.close()
    assert "Traceback" not in log


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
