"""A real FastAPI app (tests/fixtures/apps/fastapi_app.py) under synack's ASGI adapter."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import running, sha256

import fastapi  # noqa: F401  (installed by the test extra; missing is a failure)
CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(["fastapi_app:app"]) as server:
        yield server


def test_validation(client: httpx.Client) -> None:
    ok = client.post("/items", json={"name": "widget", "price": 2.5, "tags": ["a"]})
    assert ok.status_code == 200
    assert ok.json() == {"item": {"name": "widget", "price": 2.5, "tags": ["a"]}, "double_price": 5.0}
    bad = client.post("/items", json={"name": "widget", "price": "not a number"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "price"]
    assert client.get("/items/abc").status_code == 422
    assert client.get("/items/7", params={"q": "x"}).json() == {"item_id": 7, "q": "x"}


def test_upload_file(client: httpx.Client) -> None:
    data = os.urandom(4 * 1024 * 1024 + 1)
    response = client.post("/upload", data={"note": "fastapi"}, files={"file": ("data.bin", data)})
    assert response.json() == {"filename": "data.bin", "size": len(data), "sha256": sha256(data), "note": "fastapi"}


def test_upload_file_curl(server: Server, tmp_path: Path) -> None:
    assert CURL is not None, "curl is required (.ci/run installs it)"
    upload = tmp_path / "curl.bin"
    upload.write_bytes(os.urandom(3 * 1024 * 1024))
    result = subprocess.run([CURL, "-sS", "--max-time", "30", "-F", f"file=@{upload}", "-F", "note=curl",
                             server.url + "/upload"], capture_output=True, check=True, timeout=60)
    assert sha256(upload.read_bytes()) in result.stdout.decode()


def test_missing_form_field_is_422(client: httpx.Client) -> None:
    assert client.post("/upload", files={"file": ("x", b"x")}).status_code == 422


def test_streaming_response_is_incremental(server: Server, client: httpx.Client) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as streamer:
        with streamer.stream("GET", "/stream", params={"name": "fa-stream"}) as response:
            chunks = response.iter_text()
            assert next(chunks) == "first\n"  # arrives while the generator waits for /release
            assert client.get("/release", params={"name": "fa-stream"}).json() == {"released": "fa-stream"}
            assert "".join(chunks) == "chunk 0\nchunk 1\nchunk 2\n"


def test_background_task_runs_after_response(client: httpx.Client) -> None:
    assert client.post("/background", params={"name": "bg1"}).json() == {"scheduled": "bg1"}
    assert client.get("/wait", params={"name": "bg1"}).json() == {"notes": ["response", "background task ran"]}


def test_lifespan_state_reaches_requests(client: httpx.Client) -> None:
    assert client.get("/state").json() == {"started_by": "fastapi lifespan", "connections": "ready"}


def test_fifty_concurrent_requests(server: Server) -> None:
    async def main() -> list[dict[str, object]]:
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            responses = await asyncio.gather(
                *(client.get("/concurrent", params={"name": "c50", "n": "50"}) for _ in range(50))
            )
        return [response.json() for response in responses]

    # every request waits until all 50 are inside the app at once: a server that ran them
    # one after another would answer {"together": false} after 10 s
    assert asyncio.run(main()) == [{"together": True}] * 50
