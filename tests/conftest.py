"""Shared fixtures: run a real ``python -m synack`` subprocess and learn its address from the
ready line it logs (never by sleeping)."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import synack
from synack.compiled import build

ROOT = Path(__file__).resolve().parent.parent
#: Where the synack under test is imported from: this checkout, or the site-packages of an
#: installed build (.ci/run's compiled run). Subprocesses get it first on PYTHONPATH, so they
#: run the same build as the tests (ROOT follows it, for the ``tests`` package).
SYNACK_PATH = str(Path(synack.__file__).resolve().parent.parent)
#: SYNACK_TEST_BUILD's values and the builds they name (``synack.compiled.build()``).
BUILDS = {"pure": "pure Python", "compiled": "compiled: mypyc"}
FIXTURE_APPS = Path(__file__).resolve().parent / "fixtures" / "apps"
READY = re.compile(r"listening on (?:http|https)://(\S+):(\d+)|listening on unix:(\S+)")


class Server:
    """A running synack subprocess. ``stderr_text()`` returns what it logged so far."""

    def __init__(self, args: list[str], cwd: str | None = None, env: dict[str, str] | None = None,
                 ready_timeout: float = 20.0, preexec_fn: Any = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [SYNACK_PATH, str(ROOT), str(FIXTURE_APPS), full_env.get("PYTHONPATH", "")]
        )
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.args = [sys.executable, "-m", "synack", *args]
        self.process = subprocess.Popen(
            self.args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec_fn,
        )
        self._err = b""
        self.host = ""
        self.port = 0
        self.uds: str | None = None
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()
            raise

    def _read_some(self, timeout: float) -> bool:
        assert self.process.stderr is not None
        ready, _, _ = select.select([self.process.stderr], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self.process.stderr.fileno(), 65536)
        if not chunk:
            return False
        self._err += chunk
        return True

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = READY.search(self._err.decode("utf-8", "replace"))
            if match:
                if match.group(3):
                    self.uds = match.group(3)
                else:
                    self.host = match.group(1).strip("[]")
                    self.port = int(match.group(2))
                return
            if self.process.poll() is not None and not self._read_some(0.1):
                raise RuntimeError(f"synack exited ({self.process.returncode}) before ready:\n{self.stderr_text()}")
            self._read_some(0.2)
        self.kill()
        raise RuntimeError(f"synack not ready in {timeout}s:\n{self.stderr_text()}")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A new client socket to the server (blocking, with a timeout)."""
        if self.uds:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.uds)
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def stderr_text(self) -> str:
        while self._read_some(0):
            pass
        return self._err.decode("utf-8", "replace")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self.stderr_text()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def close(self) -> int:
        """Stop the server (if still running) and close its output pipes."""
        code = self.stop()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def server_factory() -> Iterator:
    """Start servers with ``server_factory(args, cwd=..., env=...)``; all are stopped after the test."""
    servers: list[Server] = []

    def start(args: list[str], cwd: str | None = None, env: dict[str, str] | None = None,
              preexec_fn: Any = None) -> Server:
        where = ("--uds", "--fd", "--port", "--bind", "-b")
        server = Server(args if any(flag in args for flag in where) else ["--port", "0", *args],
                        cwd=cwd, env=env, preexec_fn=preexec_fn)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def pytest_configure(config: pytest.Config) -> None:
    """With SYNACK_TEST_BUILD (``pure`` or ``compiled``), refuse to test any other build.

    .ci/run sets it for each run; in the one against the installed compiled package, a source
    checkout earlier on sys.path would otherwise silently test the pure modules instead.
    """
    expected = os.environ.get("SYNACK_TEST_BUILD")
    if expected is None:
        return
    if expected not in BUILDS:
        raise pytest.UsageError(f"SYNACK_TEST_BUILD={expected!r}: expected one of {', '.join(BUILDS)}")
    if build() != BUILDS[expected]:
        raise pytest.UsageError(f"SYNACK_TEST_BUILD={expected}, but {synack.__file__} is the {build()} build")
    if expected == "compiled":
        # mypyc's coroutines pass a cancellation on with the (type, exc, tb) form of throw(),
        # which Python 3.12 deprecates (mypyc/mypyc#1214); outside tests nobody sees it (the
        # warning is raised inside asyncio, where the default filters ignore it).
        config.addinivalue_line(
            "filterwarnings", r"ignore:the \(type, exc, tb\) signature of throw\(\) is deprecated:DeprecationWarning"
        )
