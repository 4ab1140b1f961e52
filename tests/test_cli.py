"""The command line: flags generated from the settings, parsed into Config; errors exit 2 with
one line; --help shows every option with its default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from synack import __version__
from synack.cli import parse_config
from synack.compiled import build
from synack.config import SETTINGS, Config, Setting
from synack.server import protocol
from tests.conftest import BUILDS, FIXTURE_APPS, ROOT, SYNACK_PATH

OPTIONS = [setting for setting in SETTINGS if not setting.positional]


def _synack(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT), str(FIXTURE_APPS)]))
    return subprocess.run([sys.executable, "-m", "synack", *args], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def _other_value(setting: Setting) -> tuple[list[str], Any]:
    """Arguments that set ``setting`` to something other than its default, and that value."""
    if setting.kind is bool:
        return ([setting.flag] if not setting.default else ["--no-" + setting.flag[2:]]), not setting.default
    if setting.choices:
        value = next(choice for choice in setting.choices if choice != setting.default)
        return [setting.flag, value], value
    if setting.kind is tuple:
        values = {"mount": ("/a=/tmp", "/b=/tmp")}.get(setting.name, ("127.0.0.1:8001", "unix:/tmp/s"))
        return [setting.flag, values[0], setting.flag, values[1]], values
    if setting.kind is str:
        value = {"index": "start.html", "uds_mode": "600", "metrics": "127.0.0.1:9100"}.get(setting.name, "/tmp/synack-cli-test")
        return [setting.flag, value], value
    value = (setting.default or 0) + 1
    if setting.name == "max_request_line":
        value = 100
    return [setting.flag, str(value)], value


#: Settings that only make sense with others, and the arguments that give those.
_NEEDS = {
    "ssl_keyfile": ["--ssl-certfile", "cert.pem"],
    "ssl_keyfile_password": ["--ssl-certfile", "cert.pem"],
    "ssl_ciphers": ["--ssl-certfile", "cert.pem"],
    "ssl_ca_certs": ["--ssl-certfile", "cert.pem"],
    "ssl_cert_reqs": ["--ssl-certfile", "cert.pem", "--ssl-ca-certs", "ca.pem"],
    "reload_dir": ["--reload"],
    "reload_include": ["--reload"],
    "reload_exclude": ["--reload"],
}


@pytest.mark.parametrize("setting", OPTIONS, ids=lambda s: s.flag)
def test_each_flag_sets_its_setting(setting: Setting) -> None:
    args, value = _other_value(setting)
    needed = _NEEDS.get(setting.name, [])
    config = parse_config([*needed, *args])
    assert setting.read(config) == value
    assert setting.read(Config()) == setting.default
    # Nothing else moved.
    for other in SETTINGS:
        if other is not setting and other.flag not in needed:
            assert other.read(config) == other.read(Config()), other.name


def test_positional_app_and_slices() -> None:
    config = parse_config(["hello:app", "--max-body-bytes", "0", "--body-timeout", "2.5",
                           "--max-header-count", "7", "--allow-obs-fold"])
    assert config.app == "hello:app"
    assert config.limits.max_body_bytes is None
    assert config.limits.max_header_count == 7
    assert config.limits.allow_obs_fold is True
    assert config.timeouts.body_idle == 2.5


def test_no_flag_at_all_gives_the_defaults() -> None:
    assert parse_config([]) == Config()


@pytest.mark.parametrize("args, says", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--port", "abc"], "argument --port: expected a whole number, got 'abc'"),
    (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
    (["--workers", "0"], "--workers must be a whole number >= 1, got 0"),
    (["--head-timeout", "0"], "--head-timeout must be a number of seconds > 0, got 0.0"),
    (["--write-timeout", "nan"], "--write-timeout must be a number of seconds > 0, got nan"),
    (["--body-timeout", "soon"], "argument --body-timeout: expected a number of seconds, got 'soon'"),
    (["--loop", "trio"], "argument --loop: invalid choice: 'trio'"),
    (["--max-head-bytes", "-1"], "--max-head-bytes must be a whole number >= 1, got -1"),
    (["--max-request-line", "20000"], "--max-request-line cannot exceed --max-head-bytes"),
    (["--uds", "/tmp/s", "--fd", "3"], "--uds and --fd cannot be used together"),
    (["--server-header", "a\tb"], "--server-header must be printable ASCII"),
])
def test_bad_values_exit_2_with_one_line(args: list[str], says: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        parse_config(args)
    assert raised.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("synack: error: ")
    assert says in lines[0]


def test_bad_value_from_the_real_command_exits_2_with_one_line() -> None:
    result = _synack("hello:app", "--keep-alive-timeout", "-3")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "synack: error: --keep-alive-timeout must be a number of seconds > 0, got -3.0 (see synack --help)"
    ]


def _help_entries() -> dict[str, str]:
    result = _synack("--help")
    assert result.returncode == 0, result.stderr
    # The options part (after the usage lines), each entry joined onto one line.
    entries = re.split(r"\n  (?=-)", result.stdout.partition("\n\n")[2])
    # An entry ends at a blank line (the next group's title follows it).
    flat = [" ".join(entry.partition("\n\n")[0].split()) for entry in entries]
    # Keyed by the long flag ("-w N, --workers N ..." is "--workers").
    return {next(word for word in entry.split() if word.startswith("--")).rstrip(","): entry
            for entry in flat if entry.startswith("-")}


def test_help_lists_every_option_with_its_default() -> None:
    entries = _help_entries()
    for setting in OPTIONS:
        entry = entries.get(setting.flag)
        assert entry is not None, f"{setting.flag} missing from --help"
        match = re.search(r"\(default: ([^)]*)\)$", entry)
        assert match is not None, entry
        shown = match.group(1)
        if setting.kind is bool:
            assert shown == ("on" if setting.default else "off"), entry
        elif setting.default is None or setting.default == ():
            assert shown == "none", entry
        elif setting.default == "":
            assert shown == '""', entry
        else:
            assert shown == str(setting.default), entry
        assert setting.help.split()[0] in entry
    assert "--version" in entries


def test_help_shows_limits_and_timeouts_under_their_flags() -> None:
    entries = _help_entries()
    assert entries["--max-body-bytes"].endswith("0 for no limit (→ 413) (default: 1073741824)")
    assert entries["--body-timeout"].endswith("(→ 408) (default: 30.0)")
    assert entries["--lifespan-timeout"].endswith("(default: 60.0)")


def test_check_loads_the_app_and_exits_without_serving() -> None:
    loads = _synack("hello:app", "--check", "--port", "1")  # port 1 would need privileges
    assert loads.returncode == 0, loads.stderr
    assert "hello:app loads" in loads.stderr
    assert "listening" not in loads.stderr
    broken = _synack("sup_broken:app", "--check", "--workers", "2")
    assert broken.returncode == 1
    assert broken.stderr.splitlines()[-1].startswith("synack: error: ")
    assert "sup_broken refuses to import" in broken.stderr


def test_version_names_the_build_that_runs() -> None:
    """``synack --version`` says pure or compiled by what the subprocess really imported.

    Under SYNACK_TEST_BUILD (.ci/run sets it for each run) it must be that build; otherwise
    it must be the build this test process imported (a source checkout: pure Python).
    """
    expected = BUILDS[os.environ["SYNACK_TEST_BUILD"]] if "SYNACK_TEST_BUILD" in os.environ else build()
    result = _synack("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"synack {__version__} ({expected})\n"
    # The build is decided by the modules' form: extension modules, or the .py sources.
    assert protocol.__file__ is not None
    assert protocol.__file__.endswith(".py") == (expected == "pure Python")
