"""A real Flask app (tests/fixtures/apps/flask_app.py) under synack's WSGI adapter, driven
with httpx and curl."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import random_file, running, sha256

import flask  # noqa: F401  (installed by the test extra; missing is a failure)
CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_file(tmp_path_factory, "flask", 20 * 1024 * 1024)


@pytest.fixture(scope="module")
def server(big_file: Path) -> Iterator[Server]:
    with running(["flask_app:app", "--threads", "8"], env={"FLASK_BIG_FILE": str(big_file)}) as server:
        yield server


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run([CURL, "-sS", "--max-time", "30", *args], capture_output=True, timeout=60, check=True)


def test_index(client: httpx.Client) -> None:
    assert client.get("/").text == "Hello from Flask"


def test_json(client: httpx.Client) -> None:
    assert client.get("/json", params={"a": "b c"}).json() == {"message": "hi", "path": "/json", "args": {"a": "b c"}}
    response = client.post("/json", json={"numbers": [1, 2, 3]})
    assert response.json() == {"received": {"numbers": [1, 2, 3]}, "doubled": [2, 4, 6]}


def test_form_post(client: httpx.Client) -> None:
    response = client.post("/form", data={"name": "Zoë & co", "tag": ["a", "b"]})
    assert response.json() == {"name": "Zoë & co", "tags": ["a", "b"]}


def test_multipart_upload_httpx(client: httpx.Client) -> None:
    big = os.urandom(6 * 1024 * 1024 + 11)
    small = b"tiny file\n"
    response = client.post("/upload", data={"note": "two files"},
                           files=[("doc", ("big.bin", big, "application/octet-stream")),
                                  ("doc", ("small.txt", small, "text/plain"))])
    assert response.status_code == 200
    assert response.json() == {
        "note": "two files",
        "files": {"big.bin": {"field": "doc", "size": len(big), "sha256": sha256(big)},
                  "small.txt": {"field": "doc", "size": len(small), "sha256": sha256(small)}},
    }


def test_multipart_upload_curl(server: Server, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(5 * 1024 * 1024))
    result = curl("-F", f"file=@{upload}", "-F", "note=via curl", server.url + "/upload")
    assert json.loads(result.stdout) == {
        "note": "via curl",
        "files": {"upload.bin": {"field": "file", "size": upload.stat().st_size,
                                 "sha256": sha256(upload.read_bytes())}},
    }


def test_cookies_and_redirect(client: httpx.Client) -> None:
    response = client.get("/cookie/set")
    assert response.status_code == 302
    assert response.headers["location"] == "/cookie/read"
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert any(cookie.startswith('flavour="oatmeal raisin"') and "HttpOnly" in cookie for cookie in cookies)
    with httpx.Client(base_url=client.base_url) as fresh:
        followed = fresh.get("/cookie/set", follow_redirects=True)
        assert followed.json() == {"flavour": "oatmeal raisin", "count": "1"}
        assert fresh.get("/cookie/read").json() == {"flavour": "oatmeal raisin", "count": "1"}


def test_redirect(client: httpx.Client) -> None:
    response = client.get("/redirect", follow_redirects=True)
    assert [r.status_code for r in response.history] == [302]
    assert response.json()["args"] == {"via": "redirect"}


def test_streaming_generator_is_incremental(server: Server, client: httpx.Client) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as streamer:
        with streamer.stream("GET", "/stream", params={"name": "flask-stream"}) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = response.iter_text()
            assert next(chunks) == "first chunk for /stream\n"  # sent while the generator waits
            assert client.get("/release", params={"name": "flask-stream"}).text == "released"
            assert "".join(chunks) == "chunk 0\nchunk 1\nchunk 2\n"


def test_send_file_large(client: httpx.Client, big_file: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", "/download") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(big_file.stat().st_size)
        assert response.headers["content-disposition"] == "attachment; filename=big.bin"
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert size == big_file.stat().st_size
    assert digest.hexdigest() == sha256(big_file.read_bytes())


def test_send_file_large_curl(server: Server, big_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "downloaded.bin"
    curl("-o", str(target), server.url + "/download")
    assert sha256(target.read_bytes()) == sha256(big_file.read_bytes())


def test_send_file_range_and_head(client: httpx.Client, big_file: Path) -> None:
    partial = client.get("/download", headers={"Range": "bytes=1000-1999"})
    assert partial.status_code == 206
    with big_file.open("rb") as file:
        file.seek(1000)
        assert partial.content == file.read(1000)
    head = client.head("/download")
    assert head.headers["content-length"] == str(big_file.stat().st_size)
    assert head.content == b""


def test_error_handlers(server: Server, client: httpx.Client) -> None:
    boom = client.get("/boom")
    assert boom.status_code == 500
    assert boom.json() == {"error": "internal", "handled_by": "flask"}
    assert client.get("/missing/page").json() == {"error": "not found", "path": "/missing/page"}
    assert client.get("/teapot").status_code == 418
    assert client.get("/").status_code == 200
