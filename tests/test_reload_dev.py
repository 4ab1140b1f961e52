"""``--reload`` (development): real ``python -m synack`` subprocesses serving a fixture app
written to a temporary directory, edited while they serve. Every wait polls with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, SYNACK_PATH, Server
from tests.supervisor.helpers import body, get, wait_for

from synack.reloader import watchfiles_missing

#: The tests that watch files need watchfiles (the test extra has it); the error without it is tested anyway.
needs_watchfiles = pytest.mark.skipif(watchfiles_missing(), reason="watchfiles is not installed")

APP = '''\
from reload_fixture_message import MESSAGE


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": MESSAGE.encode()})
'''
SPEC = "reload_fixture_app:app"
#: How long a reload may take to show (the check child imports the app; nothing waits this long when it works).
DEADLINE = 15.0


def _write_app(directory: Path, message: str) -> None:
    (directory / "reload_fixture_app.py").write_text(APP)
    _say(directory, message)


def _save(path: Path, text: str) -> None:
    """Save ``path`` whole, as an editor that writes a temporary file and renames it does: a
    reload started by the save never reads half of it (``write_text`` truncates first, and
    under load the reloader could import the empty or partial file in between)."""
    temporary = path.with_name(path.name + ".saving")
    temporary.write_text(text)
    os.replace(temporary, path)


def _say(directory: Path, message: str) -> None:
    _save(directory / "reload_fixture_message.py", f"MESSAGE = {message!r}\n")


def _serves(server: Server, expected: bytes) -> Callable[[], bool]:
    return lambda: body(get(server)) == expected


def _reloads(server: Server) -> int:
    return server.stderr_text().count("changed; reloading")


def _start(server_factory: Callable[..., Server], directory: Path, *extra: str) -> Server:
    _write_app(directory, "one")
    server = server_factory(["--reload", "--port", "0", "--no-access-log", *extra, SPEC], cwd=str(directory))
    assert body(get(server)) == b"one"
    return server


@needs_watchfiles
def test_an_edited_module_is_served_and_a_syntax_error_keeps_the_old_code(
        server_factory: Callable[..., Server], tmp_path: Path) -> None:
    server = _start(server_factory, tmp_path)
    _say(tmp_path, "two")
    assert wait_for(_serves(server, b"two"), DEADLINE), server.stderr_text()

    _save(tmp_path / "reload_fixture_message.py", 'MESSAGE = "broken\n')
    assert wait_for(lambda: "SyntaxError" in server.stderr_text(), DEADLINE), server.stderr_text()
    log = server.stderr_text()
    assert "not reloading, still serving the old code" in log
    assert "Traceback (most recent call last)" in log and "reload_fixture_message.py" in log
    assert body(get(server)) == b"two"
    assert server.process.poll() is None

    _say(tmp_path, "three")
    assert wait_for(_serves(server, b"three"), DEADLINE), server.stderr_text()


@needs_watchfiles
def test_excluded_files_do_not_reload(server_factory: Callable[..., Server], tmp_path: Path) -> None:
    server = _start(server_factory, tmp_path, "--reload-exclude", "generated_*", "--reload-include", "*.txt")
    # Ignored: a hidden file and bytecode (the default excludes), a user exclude, and a
    # file that is not Python. Then one change that counts: the reload it causes is the only one.
    (tmp_path / ".hidden.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "stale.py").write_text("x = 1\n")
    (tmp_path / "generated_table.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("not watched\n")
    (tmp_path / "settings.txt").write_text("watched: --reload-include *.txt\n")
    _say(tmp_path, "two")
    assert wait_for(_serves(server, b"two"), DEADLINE), server.stderr_text()
    assert wait_for(lambda: _reloads(server) >= 1, DEADLINE)
    changed = [line for line in server.stderr_text().splitlines() if "changed; reloading" in line]
    for name in (".hidden.py", "stale.py", "generated_table.py", "notes.md"):
        assert not any(name in line for line in changed), changed
    assert any("settings.txt" in line for line in changed), changed
    assert any("reload_fixture_message.py" in line for line in changed), changed


@needs_watchfiles
def test_reload_with_workers_replaces_the_set_and_survives_a_syntax_error(
        server_factory: Callable[..., Server], tmp_path: Path) -> None:
    server = _start(server_factory, tmp_path, "--workers", "2")
    _say(tmp_path, "two")
    assert wait_for(lambda: all(body(get(server)) == b"two" for _ in range(4)), DEADLINE), server.stderr_text()

    _save(tmp_path / "reload_fixture_message.py", 'MESSAGE = "broken\n')
    assert wait_for(lambda: "reload failed" in server.stderr_text(), DEADLINE), server.stderr_text()
    assert "SyntaxError" in server.stderr_text()
    assert all(body(get(server)) == b"two" for _ in range(4))

    _say(tmp_path, "three")
    assert wait_for(lambda: all(body(get(server)) == b"three" for _ in range(4)), DEADLINE), server.stderr_text()


def _without_watchfiles(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The interpreter cannot import watchfiles (a None entry in sys.modules blocks it, as if
    # it were not installed); then the synack command runs as usual.
    code = "import sys; sys.modules['watchfiles'] = None; from synack.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SYNACK_PATH, str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code, *arguments], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


def test_reload_without_watchfiles_is_a_one_line_error(tmp_path: Path) -> None:
    _write_app(tmp_path, "one")
    result = _without_watchfiles("--reload", "--port", "0", SPEC, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "synack: error: --reload needs the watchfiles package: pip install 'synack[reload]'")
    assert "listening on" not in result.stderr


def test_reload_settings_need_reload(tmp_path: Path) -> None:
    result = _without_watchfiles("--reload-dir", str(tmp_path), "--port", "0", SPEC, cwd=tmp_path)
    assert result.returncode == 2
    assert "--reload-dir needs --reload" in result.stderr and "Traceback" not in result.stderr


@needs_watchfiles
def test_a_missing_reload_dir_is_a_one_line_error(tmp_path: Path) -> None:
    _write_app(tmp_path, "one")
    result = subprocess.run([sys.executable, "-m", "synack", "--reload", "--reload-dir", "nowhere", "--port", "0", SPEC],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join([SYNACK_PATH, str(ROOT)])}, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "synack: error: --reload-dir 'nowhere' is not a directory"


@pytest.mark.parametrize(("path", "include", "exclude", "wanted"), [
    ("app.py", (), (), True),
    ("pkg/views.py", (), (), True),
    ("notes.txt", (), (), False),
    ("notes.txt", ("*.txt",), (), True),
    (".hidden.py", (), (), False),
    (".git/hooks/x.py", (), (), False),
    ("__pycache__/app.py", (), (), False),
    ("app.pyc", (), (), False),
    ("app.py~", (), (), False),
    ("static/gen.py", (), ("static",), False),
    ("static/gen.py", (), ("static/*",), False),
    ("gen_table.py", (), ("gen_*",), False),
    (".env", (".env",), (), True),
    ("templates/a.html", ("templates/*.html",), (), True),
])
def test_which_changes_reload(tmp_path: Path, path: str, include: tuple[str, ...], exclude: tuple[str, ...],
                              wanted: bool) -> None:
    from synack.reloader import WatchSettings

    settings = WatchSettings((str(tmp_path),), include, exclude)
    assert settings.wanted(str(tmp_path / path)) is wanted


#: A message module whose import waits (bounded) until the test creates ``go``, then fails:
#: the reload check is still running while the test saves again.
SLOW_AND_BROKEN = '''\
import os, time
open("importing", "w").close()
deadline = time.monotonic() + 20
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
raise RuntimeError("this version does not load")
'''


@needs_watchfiles
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_save_during_a_failing_reload_is_not_lost(server_factory: Callable[..., Server], tmp_path: Path,
                                                    workers: str) -> None:
    server = _start(server_factory, tmp_path, "--workers", workers)
    _save(tmp_path / "reload_fixture_message.py", SLOW_AND_BROKEN)
    # The check child (one process) or the new workers (--workers 2) import it: wait until they do.
    assert wait_for((tmp_path / "importing").exists, DEADLINE), server.stderr_text()
    _say(tmp_path, "three")  # a good save while that reload is still under way
    assert wait_for(lambda: server.stderr_text().count("changed; reloading") >= 2, DEADLINE), server.stderr_text()
    (tmp_path / "go").write_text("")
    assert wait_for(lambda: "this version does not load" in server.stderr_text(), DEADLINE), server.stderr_text()
    assert wait_for(_serves(server, b"three"), DEADLINE), server.stderr_text()
