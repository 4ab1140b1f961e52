"""ASGI lifespan: startup before serving, failures exit non-zero with the app's message,
shutdown after draining on SIGTERM, --lifespan auto|on|off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH
from tests.helpers import RawClient


def run_until_exit(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run synack expecting it to exit by itself (startup failures)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)])
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "synack", "--port", "0", *args], env=full_env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_startup_runs_before_listening(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["asgi_app:app"])
    log = server.stderr_text()
    assert log.index("asgi_app: lifespan startup") < log.index("listening on")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/state").json()["started"] == "yes"


def test_failed_startup_exits_nonzero_with_message() -> None:
    result = run_until_exit(["asgi_app:app"], env={"ASGI_LIFESPAN_FAIL": "database unreachable at db:5432"})
    assert result.returncode != 0
    assert "database unreachable at db:5432" in result.stderr
    assert "listening on" not in result.stderr


def test_shutdown_runs_after_draining(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record = tmp_path / "events.txt"
    server = server_factory(["asgi_app:app", "--no-access-log"], env={"ASGI_SHUTDOWN_FILE": str(record)})
    with RawClient(server) as raw:
        raw.send(b"POST /drain HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
        raw.head()
        assert raw.chunk() == b"started\n"  # the request is in flight
        server.signal(signal.SIGTERM)
        raw.send(b"67890")  # the in-flight request may still finish
        assert raw.chunk() == b"got 10\n"
        assert raw.chunk() is None
    assert server.wait() == 0
    assert record.read_text().splitlines() == ["request done", "shutdown"]


def test_shutdown_failure_is_reported(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["asgi_app:app", "--no-access-log"], env={"ASGI_SHUTDOWN_FAIL": "could not flush queue"})
    assert server.stop() != 0
    assert "could not flush queue" in server.stderr_text()


def test_lifespan_off_skips_it(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["asgi_app:app", "--lifespan", "off", "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/scope").json().get("state") is None
    assert "lifespan startup" not in server.stderr_text()


def test_auto_serves_app_without_lifespan(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["hello:app", "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "Hello, world!"
    assert "lifespan not supported" in server.stderr_text()
    assert server.stop() == 0


def test_auto_serves_app_that_raises_on_lifespan(server_factory) -> None:  # type: ignore[no-untyped-def]
    # Django's ASGIHandler raises ValueError for a lifespan scope; that means "unsupported".
    server = server_factory(["asgi_variants:strict", "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "strict"
    assert "ValueError: cannot handle 'lifespan' scopes" in server.stderr_text()
    assert server.stop() == 0


def test_lifespan_on_requires_support() -> None:
    result = run_until_exit(["hello:app", "--lifespan", "on"])
    assert result.returncode != 0
    assert "returned from lifespan without answering startup" in result.stderr


def test_startup_timeout() -> None:
    result = run_until_exit(["asgi_lifespan_hang:app", "--lifespan-timeout", "0.5"])
    assert result.returncode != 0
    assert "startup timed out after 0.5s" in result.stderr
