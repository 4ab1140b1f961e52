"""A real Starlette app (tests/fixtures/apps/starlette_app.py): FileResponse and StaticFiles
use http.response.pathsend when synack offers it, and files arrive intact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import running, sha256

import starlette  # noqa: F401  (installed by the test extra; missing is a failure)


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("starlette")
    (root / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024 + 7))
    (root / "sub").mkdir()
    (root / "sub" / "page.html").write_text("<h1>café</h1>\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(static_dir: Path) -> Iterator[Server]:
    with running(["starlette_app:app"], env={"STARLETTE_STATIC_DIR": str(static_dir)}) as server:
        yield server


def sent(client: httpx.Client, path: str) -> dict[str, object]:
    record = client.get("/sent", params={"path": path}).json()
    assert record is not None, f"nothing recorded for {path}"
    return record  # type: ignore[no-any-return]


def test_file_response_uses_pathsend(client: httpx.Client, static_dir: Path) -> None:
    response = client.get("/download/big.bin")
    assert response.status_code == 200
    assert response.headers["content-length"] == str((static_dir / "big.bin").stat().st_size)
    assert response.headers["content-disposition"] == 'attachment; filename="download.bin"'
    assert sha256(response.content) == sha256((static_dir / "big.bin").read_bytes())
    assert sent(client, "/download/big.bin") == {"offered": True,
                                                 "types": ["http.response.start", "http.response.pathsend"]}


@pytest.mark.parametrize("name", ["big.bin", "sub/page.html"])
def test_mounted_files_use_pathsend(client: httpx.Client, static_dir: Path, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert sha256(response.content) == sha256((static_dir / name).read_bytes())
    assert sent(client, f"/static/{name}") == {"offered": True,
                                               "types": ["http.response.start", "http.response.pathsend"]}


def test_mounted_range_request(client: httpx.Client, static_dir: Path) -> None:
    response = client.get("/static/big.bin", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == (static_dir / "big.bin").read_bytes()[100:200]


def test_mounted_head_and_not_modified(client: httpx.Client, static_dir: Path) -> None:
    head = client.head("/static/sub/page.html")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str((static_dir / "sub" / "page.html").stat().st_size)
    etag = head.headers["etag"]
    assert client.get("/static/sub/page.html", headers={"If-None-Match": etag}).status_code == 304


def test_mounted_missing_is_404(client: httpx.Client) -> None:
    assert client.get("/static/nope.txt").status_code == 404
