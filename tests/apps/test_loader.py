"""Loading apps: module:attr (dotted), --factory, --app-dir, --interface, ASGI 2/3 and WSGI
detection, static files for DIR or nothing, and one-line errors with exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from synack.apps.loader import AppLoadError, detect_interface
from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH


def run_until_exit(args: list[str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)])
    return subprocess.run([sys.executable, "-m", "synack", "--port", "0", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["asgi_variants:app"], "asgi3 function"),
        (["asgi_variants:instance"], "asgi3 instance"),
        (["asgi_variants:asgi2_class"], "asgi2 class"),
        (["asgi_variants:asgi2_function"], "asgi2 function"),
        (["asgi_variants:nested.inner.app"], "asgi3 instance"),
        (["asgi_variants:create_app", "--factory"], "asgi3 from factory"),
        (["asgi_variants:asgi2_class", "--interface", "asgi"], "asgi2 class"),
        (["wsgi_variants:app"], "wsgi function"),
        (["wsgi_variants:instance"], "wsgi instance"),
        (["wsgi_variants:create_app", "--factory"], "wsgi from factory"),
        (["wsgi_variants:app", "--interface", "wsgi"], "wsgi function"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_loads_and_serves(server_factory, args: list[str], expected: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory([*args, "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == expected


def test_app_dir(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app_dir = tmp_path / "elsewhere"
    app_dir.mkdir()
    (app_dir / "asgi_only_in_app_dir.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'http':\n"
        "        await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "        await send({'type': 'http.response.body', 'body': b'from app dir'})\n"
    )
    failed = run_until_exit(["asgi_only_in_app_dir:app"], cwd=str(tmp_path))
    assert failed.returncode == 1
    server = server_factory(["asgi_only_in_app_dir:app", "--app-dir", str(app_dir), "--no-access-log"],
                            cwd=str(tmp_path))
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "from app dir"


def test_current_directory_is_importable(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "wsgi_in_cwd.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'from cwd']\n"
    )
    server = server_factory(["wsgi_in_cwd:app", "--no-access-log"], cwd=str(tmp_path))
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "from cwd"


@pytest.mark.parametrize("with_arg", [True, False], ids=["dir", "no-arg"])
def test_directory_or_nothing_serves_files(server_factory, tmp_path: Path, with_arg: bool) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "hello.txt").write_text("static hello")
    args = [str(tmp_path)] if with_arg else []
    server = server_factory([*args, "--no-access-log"], cwd=str(tmp_path))
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/hello.txt").text == "static hello"


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last stderr line, which must be the one 'synack: error:' line."""
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines, "no output"
    assert sum(line.startswith("synack: error:") for line in lines) == 1, result.stderr
    assert lines[-1].startswith("synack: error: "), result.stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no_such_module_anywhere:app",
         "synack: error: could not import module 'no_such_module_anywhere': no module named 'no_such_module_anywhere'"),
        ("asgi_variants.sub:app", "could not import module 'asgi_variants.sub'"),
        ("asgi_variants:missing", "synack: error: module 'asgi_variants' has no attribute 'missing'"),
        ("asgi_variants:nested.inner.nope", "has no attribute 'nested.inner.nope' ('nested.inner' has no 'nope')"),
        ("asgi_variants:not_callable", "42 is not callable, so it is neither an ASGI nor a WSGI app"),
        ("asgi_variants:takes_four", "takes 4 required arguments"),
        ("asgi_variants:", "app must look like module:attribute"),
        ("not_a_directory_nor_module", "is neither a directory nor module:attribute"),
    ],
)
def test_load_errors_are_one_line_without_traceback(spec: str, expected: str) -> None:
    result = run_until_exit([spec])
    assert result.returncode == 1
    assert expected in _error_line(result)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_error_inside_user_module_shows_its_traceback() -> None:
    result = run_until_exit(["asgi_broken_import:app"])
    assert result.returncode == 1
    assert _error_line(result) == ("synack: error: error while importing 'asgi_broken_import':"
                                   " KeyError: 'missing-key-in-user-module'")
    assert "Traceback (most recent call last)" in result.stderr
    assert 'asgi_broken_import.py", line 8, in <module>' in result.stderr
    assert 'asgi_broken_import.py", line 5, in helper' in result.stderr
    # only the user's frames: not importlib's, not synack's
    assert "importlib" not in result.stderr
    assert "synack/apps" not in result.stderr


def test_missing_dependency_of_user_module_shows_traceback() -> None:
    result = run_until_exit(["asgi_missing_dependency:app"])
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'synack_test_no_such_dependency'" in _error_line(result)
    assert 'asgi_missing_dependency.py", line 3, in <module>' in result.stderr


def test_failing_factory_shows_traceback() -> None:
    result = run_until_exit(["asgi_variants:failing_factory", "--factory"])
    assert result.returncode == 1
    assert "factory refused: missing FACTORY_SETTING" in _error_line(result)
    assert "in failing_factory" in result.stderr


def test_factory_of_non_callable() -> None:
    result = run_until_exit(["asgi_variants:not_callable", "--factory"])
    assert result.returncode == 1
    assert "--factory: asgi_variants:not_callable is not callable" in _error_line(result)


def test_missing_app_dir() -> None:
    result = run_until_exit(["asgi_variants:app", "--app-dir", "/nonexistent/synack/dir"])
    assert result.returncode == 1
    assert "--app-dir '/nonexistent/synack/dir' is not a directory" in _error_line(result)


# ---------------------------------------------------------------------- detection, in process


async def _asgi3(scope, receive, send):  # type: ignore[no-untyped-def]
    pass


def _wsgi(environ, start_response):  # type: ignore[no-untyped-def]
    return []


def _asgi2(scope):  # type: ignore[no-untyped-def]
    return _asgi3


class _SyncCallReturningCoroutine:
    def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        return _asgi3(scope, receive, send)


class _ASGI3Class:
    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        pass


class _ASGI2Class:
    def __init__(self, scope):  # type: ignore[no-untyped-def]
        self.scope = scope

    async def __call__(self, receive, send):  # type: ignore[no-untyped-def]
        pass


def _wsgi_with_defaults(environ, start_response, extra=None, *, flag=False):  # type: ignore[no-untyped-def]
    return []


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (_asgi3, "asgi"),
        (_ASGI3Class(), "asgi"),
        (_SyncCallReturningCoroutine(), "asgi"),
        (_asgi2, "asgi2"),
        (_ASGI2Class, "asgi2"),
        (_wsgi, "wsgi"),
        (_wsgi_with_defaults, "wsgi"),
    ],
)
def test_detect_interface(app: object, expected: str) -> None:
    assert detect_interface(app) == expected


@pytest.mark.parametrize("app", [42, lambda: None, lambda a, b, c, d: None])
def test_detect_interface_rejects(app: object) -> None:
    with pytest.raises(AppLoadError):
        detect_interface(app)
