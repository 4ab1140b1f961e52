"""``--mount PREFIX=DIR``: static directories at URL prefixes in front of an app, with the
whole static engine (ranges, validators, precompressed siblings), over real sockets."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synack.apps.asgi import ASGIHandler
from synack.apps.mount import Mount
from synack.apps.static import StaticFiles, StaticSettings
from synack.apps.wsgi import WSGIHandler
from tests.helpers import Reader, get
from tests.supervisor.helpers import wait_for
from tests.test_operate import _env


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "assets" / "css").mkdir(parents=True)
    (tmp_path / "assets" / "app.js").write_bytes(b"console.log('hi');\n" * 100)
    (tmp_path / "assets" / "app.js.gz").write_bytes(gzip.compress(b"console.log('hi');\n" * 100))
    (tmp_path / "assets" / "index.html").write_bytes(b"<p>assets</p>\n")
    (tmp_path / "assets" / "css" / "site.css").write_bytes(b"body{}\n")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "site.css").write_bytes(b"deeper\n")
    (tmp_path / "secret.txt").write_bytes(b"not under the mount\n")
    return tmp_path


async def hello_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _exchange(server, request: bytes):  # type: ignore[no-untyped-def]
    with server.connect() as sock:
        sock.sendall(request)
        return Reader(sock).response()


def test_mounted_directory_in_front_of_the_app(server_factory, tree: Path) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["--no-access-log", "--mount", f"/static={tree / 'assets'}",
                             "--mount", f"/static/css={tree / 'deeper'}", "hello:app"])
    whole = _exchange(server, get(b"/static/app.js"))
    assert whole.status == 200 and whole.body == b"console.log('hi');\n" * 100
    again = _exchange(server, get(b"/static/app.js"))  # (the cached fast path)
    assert again.status == 200 and again.body == whole.body
    etag = whole.header(b"etag")
    assert etag is not None
    assert _exchange(server, get(b"/static/app.js", b"If-None-Match: " + etag + b"\r\n")).status == 304
    part = _exchange(server, get(b"/static/app.js", b"Range: bytes=0-6\r\n"))
    assert part.status == 206 and part.body == b"console"
    packed = _exchange(server, get(b"/static/app.js", b"Accept-Encoding: gzip\r\n"))
    assert packed.header(b"content-encoding") == b"gzip" and gzip.decompress(packed.body) == whole.body
    assert _exchange(server, get(b"/static/")).body == b"<p>assets</p>\n"
    moved = _exchange(server, get(b"/static?v=1"))
    assert moved.status == 301 and moved.header(b"location") == b"/static/?v=1"
    assert _exchange(server, get(b"/static/css/site.css")).body == b"deeper\n"  # the longest prefix wins
    assert _exchange(server, get(b"/static/nothing")).status == 404  # no fallback to the app
    for path in (b"/", b"/other", b"/staticfile", b"/Static/app.js"):
        assert _exchange(server, get(path)).body == b"Hello, world!", path
    for path in (b"/static/../secret.txt", b"/static/%2e%2e/secret.txt", b"/static/..%2fsecret.txt"):
        response = _exchange(server, get(path))
        assert response.status in (400, 404) and b"not under" not in response.body, path


def test_mount_before_a_wsgi_app(server_factory, tree: Path) -> None:  # type: ignore[no-untyped-def]
    # (The WSGI app's own ``begin`` takes its requests; the mounted files' go on as a task.)
    server = server_factory(["--no-access-log", "--mount", f"/assets={tree / 'assets'}", "wsgi_app:app"])
    for _ in range(2):  # the first through the handler, the second from the cached fast path
        assert _exchange(server, get(b"/assets/css/site.css")).body == b"body{}\n"
    part = _exchange(server, get(b"/assets/app.js", b"Range: bytes=0-6\r\n"))
    assert part.status == 206 and part.body == b"console"
    moved = _exchange(server, get(b"/assets?v=1"))
    assert moved.status == 301 and moved.header(b"location") == b"/assets/?v=1"
    assert _exchange(server, get(b"/assets/nothing")).status == 404
    environ = _exchange(server, get(b"/environ/x"))
    assert environ.status == 200 and b"PATH_INFO" in environ.body
    assert "with 1 static mount(s)" in server.stderr_text()


def test_mount_takes_the_wsgi_apps_begin_and_no_other() -> None:
    files = StaticFiles(str(Path(__file__).parent), StaticSettings())
    wsgi = WSGIHandler(lambda environ, start_response: [])
    assert Mount(wsgi, [("/s", files)]).begin is not None
    assert Mount(ASGIHandler(hello_app), [("/s", files)]).begin is None  # the driver makes its task


@pytest.mark.parametrize("mount, message", [
    ("static=/tmp", "--mount 'static=/tmp': use PREFIX=DIR"),
    ("/=/tmp", "--mount '/=/tmp': use PREFIX=DIR"),
    ("/static", "--mount '/static': use PREFIX=DIR"),
    ("/static=/no/such/dir", "--mount: '/no/such/dir' is not a directory"),
])
def test_bad_mounts_are_one_line(mount: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "synack", "--mount", mount, "hello:app"], env=_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_the_access_log_shows_the_path_as_requested(server_factory, tree: Path) -> None:  # type: ignore[no-untyped-def]
    log = tree / "access.log"
    server = server_factory(["--access-log", str(log), "--access-log-format", "{path} {status}",
                             "--mount", f"/static={tree / 'assets'}", "hello:app"])
    for _ in range(2):  # the first through the handler, the second from the cached fast path
        assert _exchange(server, get(b"/static/app.js")).status == 200
    assert _exchange(server, get(b"/other")).status == 200
    expected = ["/static/app.js 200", "/static/app.js 200", "/other 200"]
    assert wait_for(lambda: log.exists() and log.read_text().splitlines() == expected, timeout=30), \
        log.read_text() if log.exists() else server.stderr_text()
