"""Where settings come from: the command line > SYNACK_* variables > a --config TOML file >
PORT/WEB_CONCURRENCY > defaults; errors name the setting, the source and the fix;
--print-config round-trips; --env-file; the habits of gunicorn and uvicorn users (-w, -b)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synack.cli import parse_command, parse_config
from synack.config import SETTINGS, Config, parse_address
from synack.sources import ENV_PREFIX, RESERVED_ENV, to_toml
from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH


def _config(tmp_path: Path, argv: list[str], environ: dict[str, str] | None = None,
            file: str | None = None) -> Config:
    if file is not None:
        path = tmp_path / "synack.toml"
        path.write_text(file)
        argv = [*argv, "--config", str(path)]
    return parse_config(argv, environ or {})


def _error(capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SystemExit) as raised:
        parse_config(argv, environ or {})
    assert raised.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------- precedence


@pytest.mark.parametrize("on_line, in_env, in_file", list(itertools.product([False, True], repeat=3)))
def test_precedence_matrix(tmp_path: Path, on_line: bool, in_env: bool, in_file: bool) -> None:
    argv = ["--port", "1001"] if on_line else []
    environ = {"SYNACK_PORT": "1002"} if in_env else {}
    file = "port = 1003\n" if in_file else None
    config = _config(tmp_path, argv, environ, file)
    expected = 1001 if on_line else 1002 if in_env else 1003 if in_file else Config().port
    assert config.port == expected


def test_each_source_sets_other_settings_side_by_side(tmp_path: Path) -> None:
    config = _config(tmp_path, ["--workers", "3"], {"SYNACK_HEAD_TIMEOUT": "2.5", "SYNACK_ALLOW_BARE_LF": "yes"},
                     'app = "hello:app"\nmax_body_bytes = 0\nbind = ["127.0.0.1:8001", "unix:/tmp/s"]\n')
    assert config.workers == 3
    assert config.timeouts.head == 2.5
    assert config.limits.allow_bare_lf is True
    assert config.app == "hello:app"
    assert config.limits.max_body_bytes is None
    assert config.bind == ("127.0.0.1:8001", "unix:/tmp/s")


def test_every_setting_has_an_environment_variable() -> None:
    # Derived from SETTINGS: each one, set to its printed default, is accepted by name.
    for setting in SETTINGS:
        if setting.default is None:
            continue
        text = to_toml(Config()).split(f"\n{setting.name} = ", 1)[1].split("\n", 1)[0]
        value = text.strip('"').strip("[]")
        environ = {ENV_PREFIX + setting.name.upper(): value}
        assert setting.read(parse_config([], environ)) == setting.read(Config()), setting.name


def test_platform_port_and_web_concurrency_only_replace_defaults(tmp_path: Path) -> None:
    platform = {"PORT": "8123", "WEB_CONCURRENCY": "4"}
    config = _config(tmp_path, [], platform)
    assert (config.host, config.port, config.workers) == ("0.0.0.0", 8123, 4)
    # Anything configured wins: flags, SYNACK_*, the file.
    config = _config(tmp_path, ["-w", "2", "--port", "9000"], platform)
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 9000, 2)
    config = _config(tmp_path, [], {**platform, "SYNACK_WORKERS": "1"}, 'bind = ["127.0.0.1:7000"]\n')
    assert (config.bind, config.port, config.workers) == (("127.0.0.1:7000",), 3000, 1)


# ---------------------------------------------------------------------- habits


def test_short_flags_of_gunicorn_users() -> None:
    config = parse_config(["-w", "2", "hello:app"], {})
    assert (config.workers, config.app) == (2, "hello:app")
    config = parse_config(["-b", "127.0.0.1:8001", "--bind", "[::1]:8002", "-b", "unix:/tmp/a.sock",
                           "-b", "fd://3", "app:app"], {})
    assert config.bind == ("127.0.0.1:8001", "[::1]:8002", "unix:/tmp/a.sock", "fd://3")
    assert [parse_address(text).kind for text in config.bind] == ["tcp", "tcp", "unix", "fd"]
    assert parse_address("[::1]:8002").host == "::1"


@pytest.mark.parametrize("text", ["8000", "localhost", "host:99999", "[::1]", "unix:", "fd://", "fd://-1", "h:p"])
def test_a_bad_bind_address_says_the_forms(capsys: pytest.CaptureFixture[str], text: str) -> None:
    line = _error(capsys, ["-b", text])
    assert f"--bind {text!r} is not an address: use HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N" in line


def test_bind_conflicts_with_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, ["-b", "127.0.0.1:1"], {"SYNACK_PORT": "5"})
    assert "--bind cannot be combined with --port" in line
    assert "--port from the environment (SYNACK_PORT='5')" in line


def test_env_file_feeds_the_environment_under_real_variables(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# settings\nexport SYNACK_PORT=4001\nSYNACK_WORKERS='2'\nAPP_SECRET=\"s3 cr3t\"\n\n")
    command = parse_command(["--env-file", str(env_file)], {"SYNACK_WORKERS": "3"})
    assert (command.config.port, command.config.workers) == (4001, 3)
    assert command.env_file == {"SYNACK_PORT": "4001", "SYNACK_WORKERS": "2", "APP_SECRET": "s3 cr3t"}


def test_env_file_errors_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("A=1\nnot a line\n")
    assert f"{env_file}:2: expected KEY=VALUE, got 'not a line'" in _error(capsys, ["--env-file", str(env_file)])
    missing = tmp_path / "missing.env"
    assert f"--env-file {missing}: cannot read it" in _error(capsys, ["--env-file", str(missing)])


# ---------------------------------------------------------------------- errors name the source


@pytest.mark.parametrize("file, says", [
    ("port = 80\nworkerz = 3\n", ":2: unknown setting 'workerz' (did you mean 'workers'?)"),
    ('\n\nport = "80"\n', ":3: --port must be a whole number >= 0, got '80'"),
    ("[server]\nport = 1\n", ":1: [server]: settings are 'name = value' lines at the top, not tables"),
    ("port = \n", ": not valid TOML: Invalid value (at line 1, column 8)"),
    ('bind = ["x"]\n', "--bind 'x' is not an address"),
    ('access_log = ""\n', "--access-log must be stderr, -, off or a file path"),
])
def test_file_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str,
                                        says: str) -> None:
    path = tmp_path / "synack.toml"
    path.write_text(file)
    line = _error(capsys, ["--config", str(path)])
    assert says in line, line
    assert str(path) in line


@pytest.mark.parametrize("environ, says", [
    ({"SYNACK_PORT": "abc"}, "SYNACK_PORT='abc': --port expects a whole number"),
    ({"SYNACK_FACTORY": "maybe"}, "SYNACK_FACTORY='maybe': --factory expects true or false"),
    ({"SYNACK_PROT": "1"}, "unknown environment variable 'SYNACK_PROT' (did you mean 'SYNACK_PORT'?)"),
    ({"SYNACK_WORKERS": "0"}, "--workers must be a whole number >= 1, got 0 (--workers from the environment"),
])
def test_environment_errors_name_the_variable(capsys: pytest.CaptureFixture[str], environ: dict[str, str],
                                              says: str) -> None:
    assert says in _error(capsys, [], environ)


def test_conflicts_name_both_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "synack.toml"
    path.write_text('# where\nuds = "/tmp/x.sock"\n')
    line = _error(capsys, ["--config", str(path)], {"SYNACK_FD": "3"})
    assert "--uds and --fd cannot be used together" in line
    assert f"--uds from {path}:2" in line and "--fd from the environment (SYNACK_FD='3')" in line


def test_reserved_variables_are_not_settings() -> None:
    assert parse_config([], {"SYNACK_FDS": "3,4", "SYNACK_COMPILE": "1", "SYNACK_TEST_SHOW_STDERR": "1"}) == Config()
    from synack.run import INHERITED_FDS

    assert INHERITED_FDS.startswith(RESERVED_ENV)


def test_access_log_destination_and_its_off_switch(tmp_path: Path) -> None:
    assert parse_config([], {}).access_log == "stderr"
    assert parse_config(["--access-log", "-"], {}).access_log == "-"
    assert parse_config(["--no-access-log"], {}).access_log == "off"
    assert _config(tmp_path, [], file="access_log = false\n").access_log == "off"
    assert parse_config([], {"SYNACK_ACCESS_LOG": "/var/log/a.log"}).access_log == "/var/log/a.log"


# ---------------------------------------------------------------------- --print-config


def test_print_config_round_trips(tmp_path: Path) -> None:
    argv = ["hello:app", "-w", "3", "-b", "127.0.0.1:8001", "-b", "unix:/tmp/synack \"q\".sock",
            "--max-body-bytes", "0", "--head-timeout", "2.5", "--no-listing", "--server-header", "x\\y",
            "--access-log", "off", "--pid", "/tmp/p", "--uds-mode", "660"]
    config = parse_config(argv, {})
    path = tmp_path / "printed.toml"
    path.write_text(to_toml(config))
    assert parse_config(["--config", str(path)], {}) == config
    # The defaults too (None-valued settings are comments).
    path.write_text(to_toml(Config()))
    assert parse_config(["--config", str(path)], {}) == Config()


def test_print_config_round_trips_any_text(tmp_path: Path) -> None:
    # TOML refuses surrogate escapes and a bare DEL: characters beyond U+FFFF and control
    # characters must still come back as they went in.
    for text in ("emoji \N{GRINNING FACE} caf\u00e9", "del\x7fend", "tab\tnl\ncr\r", 'q"b\\s'):
        config = parse_config(["hello:app", "--root-path", "/" + text], {})
        path = tmp_path / "printed.toml"
        path.write_text(to_toml(config), encoding="utf-8")
        assert parse_config(["--config", str(path)], {}).root_path == "/" + text


def test_print_config_from_the_real_command(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)]), SYNACK_WORKERS="2")
    printed = subprocess.run([sys.executable, "-m", "synack", "--print-config", "--port", "4321", "hello:app"],
                             env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert printed.returncode == 0, printed.stderr
    assert printed.stderr == ""
    assert "\nport = 4321\n" in printed.stdout and "\nworkers = 2\n" in printed.stdout
    path = tmp_path / "printed.toml"
    path.write_text(printed.stdout)
    assert parse_config(["--config", str(path)], {}) == parse_config(["--port", "4321", "hello:app"],
                                                                     {"SYNACK_WORKERS": "2"})
