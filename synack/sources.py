"""Sources: the settings given on the command line, in the environment and in a ``--config``
file, merged by precedence into one ``Config``, each value remembered with where it came from.

Precedence: command line > environment (``SYNACK_<NAME>``) > ``--config`` file > the platform
variables ``PORT`` and ``WEB_CONCURRENCY`` > defaults. The names are those of
``config.SETTINGS`` (``--max-body-bytes`` ↔ ``SYNACK_MAX_BODY_BYTES`` ↔ ``max_body_bytes = …``
in the file): nothing here lists settings. ``PORT`` and ``WEB_CONCURRENCY`` only replace
defaults, as on the platforms that set them (Heroku, Render, Dokku, …): ``PORT`` also listens on
every IPv4 interface (``0.0.0.0``) unless an address is configured.

An error names the setting, the source (``SYNACK_PORT='x'``, ``synack.toml:3``, the command
line) and what to fix. ``to_toml`` prints the effective configuration in the form the
``--config`` file takes, so ``synack --print-config > synack.toml`` round-trips.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import SETTINGS, Config, ConfigError, Setting

__all__ = [
    "ENV_PREFIX", "RESERVED_ENV", "Sources", "gather", "from_environment", "from_file", "from_platform",
    "read_env_file", "apply_env_file", "without_env_file", "ENV_FILE_KEYS", "to_toml",
]

ENV_PREFIX = "SYNACK_"
#: Variables under the prefix that are not settings: the listeners a reload hands over
#: (``run.INHERITED_FDS``), the names ``--env-file`` added (``ENV_FILE_KEYS``), the switch of
#: the compiled build (``setup.py``), which a shell may still export when synack runs, and the
#: test suite's own switches.
RESERVED_ENV = ("SYNACK_FDS", "SYNACK_ENV_FILE_KEYS", "SYNACK_COMPILE", "SYNACK_TEST_")
#: The variables ``apply_env_file`` put into the environment (comma-separated). A SIGHUP reload
#: in place re-executes the process with that environment: the names listed here are the
#: file's, not the real environment's, so the file is read again and its new values win.
ENV_FILE_KEYS = "SYNACK_ENV_FILE_KEYS"

COMMAND_LINE = "the command line"
_BY_NAME = {setting.name: setting for setting in SETTINGS}
_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))
#: Settings that say where to listen: a platform's PORT yields to any of them.
_ADDRESS_SETTINGS = ("bind", "host", "port", "uds", "fd")


@dataclass
class Sources:
    """Setting values by name, and where each came from (``--port``, ``SYNACK_PORT='80'``,
    ``synack.toml:3``)."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: Any, origin: str) -> None:
        self.values[name] = value
        self.origins[name] = origin

    def under(self, other: Sources) -> None:
        """Take ``other``'s values where this has none (``other`` has lower precedence)."""
        for name, value in other.values.items():
            if name not in self.values:
                self.add(name, value, other.origins[name])

    def build(self) -> Config:
        """The Config; raises ConfigError naming the sources of the settings it involves."""
        try:
            return Config.from_mapping(self.values)
        except ConfigError as error:
            message = str(error)
            named = [f"{_BY_NAME[name].flag} from {origin}" for name, origin in self.origins.items()
                     if origin != COMMAND_LINE and re.search(re.escape(_BY_NAME[name].flag) + r"\b", message)]
            raise ConfigError(f"{message} ({'; '.join(named)})" if named else message) from None


def gather(command_line: Mapping[str, Any], environ: Mapping[str, str], config_file: str | None) -> Sources:
    """Merge the sources by precedence (see the module docstring).

    Raises:
        ConfigError: an unknown name, a value of the wrong type, an unreadable file.
    """
    merged = Sources()
    for name, value in command_line.items():
        merged.add(name, value, COMMAND_LINE)
    merged.under(from_environment(environ))
    if config_file is not None:
        merged.under(from_file(config_file))
    merged.under(from_platform(environ, merged))
    return merged


def from_environment(environ: Mapping[str, str]) -> Sources:
    found = Sources()
    for key, text in environ.items():
        if not key.startswith(ENV_PREFIX) or key.startswith(RESERVED_ENV):
            continue
        name = key[len(ENV_PREFIX):].lower()
        setting = _BY_NAME.get(name)
        origin = f"{key}={text!r}"
        if setting is None or not key[len(ENV_PREFIX):].isupper():
            raise ConfigError(f"{origin}: {_unknown(key, 'environment variable')}")
        found.add(name, _from_text(setting, text, origin), f"the environment ({origin})")
    return found


def _from_text(setting: Setting, text: str, origin: str) -> Any:
    """An environment variable's text as the setting's type."""
    stripped = text.strip()
    if setting.optional and not stripped:
        return None
    kind = setting.kind
    try:
        if kind is bool:
            lowered = stripped.lower()
            if lowered not in _TRUE and lowered not in _FALSE:
                raise ValueError(text)
            return lowered in _TRUE
        if kind is int:
            if setting.auto and stripped.lower() == "auto":
                return "auto"
            return int(stripped, 10)
        elif kind is float:
            return float(stripped)
        elif kind is tuple:
            return tuple(item.strip() for item in text.split(",") if item.strip())
        elif setting.negative is not None and stripped.lower() in _FALSE:
            return setting.negative
    except ValueError:
        expected = {bool: "true or false", int: "a whole number", float: "a number of seconds"}[kind]
        raise ConfigError(f"{origin}: {setting.flag} expects {expected}") from None
    return text


def from_file(path: str) -> Sources:
    """The settings in a TOML file: ``name = value`` with the names of the command line,
    underscores for dashes."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it: {error.strerror or error}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"--config {path}: not valid TOML: {error}") from None
    lines = raw.decode("utf-8").splitlines()
    found = Sources()
    for name, value in document.items():
        origin = _where(path, lines, name)
        setting = _BY_NAME.get(name)
        if isinstance(value, dict):
            raise ConfigError(f"{origin}: [{name}]: settings are 'name = value' lines at the top, not tables")
        if setting is None:
            raise ConfigError(f"{origin}: {_unknown(name, 'setting')}")
        value = setting.normal(value)
        if setting.none_value is not None and value == setting.none_value and type(value) is int:
            value = None
        try:
            setting.check(value)
        except ConfigError as error:
            raise ConfigError(f"{origin}: {error}") from None
        found.add(name, value, origin)
    return found


def from_platform(environ: Mapping[str, str], configured: Sources) -> Sources:
    """``PORT`` and ``WEB_CONCURRENCY``, where nothing else set an address or a worker count."""
    found = Sources()
    port = environ.get("PORT", "").strip()
    if port and not any(name in configured.values for name in _ADDRESS_SETTINGS):
        origin = f"PORT={port!r}"
        found.add("port", _from_text(_BY_NAME["port"], port, origin), f"the environment ({origin})")
        found.add("host", "0.0.0.0", f"the environment ({origin})")
    workers = environ.get("WEB_CONCURRENCY", "").strip()
    if workers and "workers" not in configured.values:
        origin = f"WEB_CONCURRENCY={workers!r}"
        found.add("workers", _from_text(_BY_NAME["workers"], workers, origin), f"the environment ({origin})")
    return found


def _where(path: str, lines: list[str], name: str) -> str:
    """``path:line`` of the line that sets ``name`` (or opens a table of that name)."""
    quoted = rf"[\"']?{re.escape(name)}[\"']?"
    pattern = re.compile(rf"\s*(?:{quoted}\s*=|\[\s*{quoted}\s*\])")
    for number, line in enumerate(lines, 1):
        if pattern.match(line):
            return f"{path}:{number}"
    return path


def _unknown(name: str, what: str) -> str:
    import difflib

    message = f"unknown {what} {name!r}"
    close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX).lower(), list(_BY_NAME), n=1)
    if close:
        spelled = (ENV_PREFIX + close[0].upper()) if what.startswith("environment") else close[0]
        message += f" (did you mean {spelled!r}?)"
    return message


_ENV_LINE = re.compile(r"\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?)\s*")


def read_env_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, values optionally quoted).

    Raises:
        ConfigError: the file cannot be read, or a line is not ``KEY=VALUE`` (file:line).
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--env-file {path}: cannot read it: {getattr(error, 'strerror', None) or error}") from None
    found: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line.strip()!r}")
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[match["key"]] = value
    return found


def to_toml(config: Config) -> str:
    """The effective configuration as a ``--config`` file: every setting, with its help."""
    lines = ["# synack configuration (synack --print-config); load it with synack --config FILE", ""]
    for setting in SETTINGS:
        value = setting.read(config)
        if value is None and setting.none_value is not None:
            value = setting.none_value
        lines.append(f"# {setting.help}")
        if value is None:
            lines.append(f"# {setting.name} = (not set)")
        else:
            lines.append(f"{setting.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_string(str(item)) for item in value) + "]"
    if isinstance(value, int):
        return str(value)
    return _toml_string(str(value))


#: TOML basic-string escapes (TOML 1.0 "String"): the quote, the backslash and every control
#: character but tab, DEL included; everything else, non-ASCII too, is written as it is.
_TOML_ESCAPES = {code: f"\\u{code:04X}" for code in (*range(0x20), 0x7F) if code != 0x09}
_TOML_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", 0x08: "\\b", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"})


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string. (``json.dumps`` is not one: it writes characters
    beyond U+FFFF as surrogate pairs, which TOML refuses, and leaves DEL bare.)"""
    return '"' + text.translate(_TOML_ESCAPES) + '"'


def without_env_file(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what an earlier ``apply_env_file`` of this process added (see
    ``ENV_FILE_KEYS``): the real environment, under which the file is merged again."""
    added = set(filter(None, environ.get(ENV_FILE_KEYS, "").split(",")))
    return {key: value for key, value in environ.items() if key not in added and key != ENV_FILE_KEYS}


def apply_env_file(values: Mapping[str, str]) -> None:
    """Add ``values`` to this process's environment (for the app and its workers too); a
    variable of the real environment keeps its value. What an earlier call added (before a
    reload in place) is replaced: a variable dropped from the file is gone, a changed one
    changes."""
    for key in filter(None, os.environ.pop(ENV_FILE_KEYS, "").split(",")):
        os.environ.pop(key, None)
    added = []
    for key, value in values.items():
        if key not in os.environ:
            os.environ[key] = value
            added.append(key)
    if added:
        os.environ[ENV_FILE_KEYS] = ",".join(added)
