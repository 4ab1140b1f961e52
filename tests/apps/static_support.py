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

from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH, Server
from tests.helpers import Reader, Response

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


def headers_of(response: Response) -> dict[str, list[str]]:
    """The response's fields as {lowercased name: [values, in order]}."""
    headers: dict[str, list[str]] = {}
    for name, value in response.headers:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return headers


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


def _reply(reader: Reader, method: str) -> Reply:
    """The next response from ``reader``, checking that its body is framed by Content-Length."""
    response = reader.head()
    headers = headers_of(response)
    length = 0
    if method != "HEAD" and response.status not in (204, 304):
        assert "transfer-encoding" not in headers, "static responses are never chunked"
        assert "content-length" in headers, f"no Content-Length in {response.raw_head!r}"
        length = int(headers["content-length"][0])
    body = reader.exactly(length)
    return Reply(response.status, headers, body, response.raw_head + body)


def read_reply(sock: socket.socket, method: str, buffer: bytearray) -> Reply:
    """Read exactly one response from ``sock`` (``buffer`` carries bytes between calls),
    checking that its body is framed by Content-Length exactly."""
    reader = Reader(sock, timeout=None, buffer=bytes(buffer))
    reply = _reply(reader, method)
    buffer[:] = reader.buffer
    return reply


def fetch(server: Server, target: str | bytes, method: str = "GET",
          headers: dict[str, str] | list[tuple[str, str]] | None = None, timeout: float = 10.0) -> Reply:
    """One request on a fresh connection; asserts nothing follows the framed body."""
    with server.connect(timeout) as sock:
        sock.sendall(build_request(method, target, headers))
        reader = Reader(sock, timeout=None)
        reply = _reply(reader, method)
        reader.expect_eof()
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


GATE_ENV = "SYNACK_TEST_LISTING_GATE"


def run_gated_server() -> None:
    """``python -c`` entry point of ``GatedServer``: synack whose directory reads first wait
    at a gate, a UNIX socket the test listens on. The reader connects, says ``entered``, and
    waits for one byte (or the test closing the gate) before it reads the directory, so a
    test knows a listing is in progress and decides when it may finish. When the whole
    listing build (``static._build_listing``) has returned, it connects again and says
    ``done``."""
    import synack.apps.static as static
    from synack.cli import main

    original = static.read_directory
    gate_path = os.environ[GATE_ENV]

    def gated(*args, **kwargs):  # type: ignore[no-untyped-def]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
            gate.connect(gate_path)
            gate.sendall(b"entered")
            gate.recv(1)
        return original(*args, **kwargs)

    static.read_directory = gated  # type: ignore[assignment]
    build = getattr(static, "_build_listing", None)
    if build is not None:  # the listing is built in a thread: say when it has finished

        def reported(*args):  # type: ignore[no-untyped-def]
            try:
                return build(*args)
            finally:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
                    gate.connect(gate_path)
                    gate.sendall(b"done")

        static._build_listing = reported
    main(sys.argv[1:])


class GatedServer(Server):
    """A synack server whose listings wait at the UNIX socket ``gate_path`` (see
    ``run_gated_server``)."""

    def __init__(self, args: list[str], gate_path: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        env[GATE_ENV] = gate_path
        entry = "from tests.apps.static_support import run_gated_server; run_gated_server()"
        self.args = [sys.executable, "-c", entry, "--port", "0", *args]
        self.process = subprocess.Popen(
            self.args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._err = b""
        self.host = ""
        self.port = 0
        self.uds: str | None = None
        try:
            self._wait_ready(20.0)
        except BaseException:
            self.close()
            raise


class RestrictedServer(Server):
    """A synack server that file permissions apply to, even when the tests run as root.

    Root normally reads any file (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH); started through
    ``setpriv`` without those capabilities, a mode-000 file is unreadable to it as well.
    """

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS), env.get("PYTHONPATH", "")])
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
