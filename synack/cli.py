"""Command line: argv → Config (flags generated from Config's fields) → run.run().

The only module that prints usage errors or calls sys.exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .config import SETTINGS, Config, ConfigError, Setting

__all__ = ["main", "build_parser", "parse_config"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line that says what to fix, then exit 2 (no usage dump).
        sys.stderr.write(f"synack: error: {message} (see synack --help)\n")
        sys.exit(2)


def _whole_number(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


_PARSERS: dict[type, Callable[[str], Any]] = {int: _whole_number, float: _seconds, str: str}


def _shown(setting: Setting) -> str:
    """The default as ``--help`` shows it."""
    default = setting.default
    if default is None and setting.none_value is not None:
        default = setting.none_value
    if isinstance(default, bool):
        return "on" if default else "off"
    if default is None:
        return "none"
    return '""' if default == "" else str(default)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser, one option per entry of ``config.SETTINGS``."""
    parser = _Parser(
        prog="synack",
        description="synack: an HTTP/1.1 server for static files and Python web apps.",
    )
    parser.add_argument("--version", action="version", version=f"synack {__version__}")
    groups: dict[str, Any] = {}
    for setting in SETTINGS:
        group = groups.get(setting.group)
        if group is None:
            group = groups[setting.group] = parser.add_argument_group(setting.group)
        if setting.positional:
            group.add_argument(setting.name, nargs="?", default=setting.default, help=setting.help,
                               metavar=setting.metavar)
            continue
        help = f"{setting.help} (default: {_shown(setting)})".replace("%", "%%")
        if setting.kind is bool:
            group.add_argument(setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction,
                               default=setting.default, help=help)
            continue
        metavar = setting.metavar
        if metavar is None and setting.choices is None:
            metavar = setting.name.rsplit("_", 1)[-1].upper()
        group.add_argument(setting.flag, dest=setting.name, type=_PARSERS[setting.kind],
                           default=setting.default, choices=setting.choices, metavar=metavar,
                           help=help)
    return parser


def parse_config(argv: Sequence[str]) -> Config:
    """Parse argv into a Config; exits with status 2 and one line on a bad flag or value."""
    parser = build_parser()
    namespace = parser.parse_args(list(argv))
    try:
        return Config.from_mapping(vars(namespace))
    except ConfigError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``synack`` command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(arguments)
    from .run import StartupError, run

    try:
        code = run(config, command=arguments)
    except StartupError as error:
        sys.stderr.write(f"synack: error: {error}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)
