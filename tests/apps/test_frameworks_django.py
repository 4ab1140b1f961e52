"""A real Django project (tests/fixtures/apps/django_app.py) under synack, both as WSGI
(get_wsgi_application) and as ASGI (get_asgi_application), driven with httpx and curl."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import random_file, running, sha256

import django  # noqa: F401  (installed by the test extra; missing is a failure)
CURL = shutil.which("curl")

ENTRY_POINTS = {"wsgi": "django_app:wsgi_application", "asgi": "django_app:asgi_application"}


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_file(tmp_path_factory, "django", 8 * 1024 * 1024 + 5)


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, big_file: Path) -> Iterator[Server]:
    with running([ENTRY_POINTS[request.param]], env={"DJANGO_BIG_FILE": str(big_file)}) as server:
        yield server


def test_index(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello from Django"


def test_percent_encoded_path(client: httpx.Client) -> None:
    data = client.get("/path/caf%C3%A9/a%20b%2Bc", params={"q": "é"}).json()
    assert data["path"] == "/path/café/a b+c"
    assert data["path_info"] == "/path/café/a b+c"
    assert data["rest"] == "café/a b+c"
    assert data["query"] == {"q": "é"}
    assert data["script_name"] == ""


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_root_path_gives_script_name(server_factory, interface: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory([ENTRY_POINTS[interface], "--root-path", "/mount", "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        data = client.get("/path/caf%C3%A9").json()
    # the same answer from both interfaces: SCRIPT_NAME is the mount point, the rest is PATH_INFO
    assert data["script_name"] == "/mount"
    assert data["path"] == "/mount/path/café"
    assert data["path_info"] == "/path/café"


def test_csrf_protected_form(client: httpx.Client) -> None:
    page = client.get("/form/")
    assert page.status_code == 200
    token = re.search(r"name='csrfmiddlewaretoken' value='([^']+)'", page.text)
    assert token is not None
    assert "csrftoken" in client.cookies
    accepted = client.post("/form/", data={"csrfmiddlewaretoken": token.group(1), "message": "héllo"})
    assert accepted.status_code == 200
    assert accepted.json() == {"accepted": "héllo"}
    with httpx.Client(base_url=client.base_url) as stranger:  # no cookie, no token
        assert stranger.post("/form/", data={"message": "forged"}).status_code == 403
    # cookie without the token is refused too
    assert client.post("/form/", data={"message": "no token"}).status_code == 403


def test_json_body(client: httpx.Client) -> None:
    payload = {"items": list(range(50_000))}
    response = client.post("/json/", json=payload)
    assert response.json()["data"] == payload
    assert response.json()["method"] == "POST"


def test_streaming_http_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream/", params={"count": "2000"}) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        body = response.read()
    assert body == b"".join(b"row %d\n" % n for n in range(2000))


def test_file_response(client: httpx.Client, big_file: Path) -> None:
    response = client.get("/file/")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(big_file.stat().st_size)
    assert response.headers["content-disposition"] == 'attachment; filename="big.bin"'
    assert sha256(response.content) == sha256(big_file.read_bytes())


def test_file_response_curl(server: Server, big_file: Path, tmp_path: Path) -> None:
    assert CURL is not None, "curl is required (.ci/run installs it)"
    target = tmp_path / "out.bin"
    subprocess.run([CURL, "-sS", "--max-time", "30", "-o", str(target), server.url + "/file/"], check=True, timeout=60)
    assert sha256(target.read_bytes()) == sha256(big_file.read_bytes())


def test_async_view(client: httpx.Client) -> None:
    assert client.get("/async/").json() == {"async": True, "method": "GET"}


def test_errors(client: httpx.Client) -> None:
    boom = client.get("/boom/")
    assert boom.status_code == 500
    assert "Server Error (500)" in boom.text
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/").status_code == 200
