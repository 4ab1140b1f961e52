"""Command line: argv → Config (flags generated from Config's fields, merged with the
environment and a ``--config`` file by ``sources``) → run.run().

The only module that prints usage errors or calls sys.exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from . import __version__
from .compiled import build
from .config import SETTINGS, Config, ConfigError, Setting
from .sources import apply_env_file, gather, read_env_file, to_toml, without_env_file

__all__ = ["main", "build_parser", "parse_config", "parse_command", "Command"]

#: Options of the command itself, not settings: where more settings come from, and what to do.
_COMMAND_OPTIONS = ("config", "env_file", "print_config")


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


def _whole_number_or_auto(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}") from None


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
    if default is None or default == ():
        return "none"
    return '""' if default == "" else str(default)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser, one option per entry of ``config.SETTINGS``."""
    parser = _Parser(
        prog="synack",
        description="synack: an HTTP/1.1 server for static files and Python web apps.",
    )
    parser.add_argument("--version", action="version", version=f"synack {__version__} ({build()})")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="read settings from this TOML file (name = value, the names of these options"
                             " with underscores); the command line and SYNACK_<NAME> variables win")
    parser.add_argument("--env-file", metavar="FILE", default=None,
                        help="add the KEY=VALUE lines of FILE to the environment (variables already set win)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective settings as a --config file and exit")
    groups: dict[str, Any] = {}
    for setting in SETTINGS:
        group = groups.get(setting.group)
        if group is None:
            group = groups[setting.group] = parser.add_argument_group(setting.group)
        _add_option(group, setting)
    return parser


def _add_option(group: Any, setting: Setting) -> None:
    # Defaults are not filled in here: only what the command line gives reaches ``sources``,
    # which knows what the environment and the file say.
    if setting.positional:
        group.add_argument(setting.name, nargs="?", default=argparse.SUPPRESS, help=setting.help,
                           metavar=setting.metavar)
        return
    names = [setting.flag] if setting.short is None else [setting.short, setting.flag]
    help = f"{setting.help} (default: {_shown(setting)})".replace("%", "%%")
    if setting.kind is bool:
        group.add_argument(*names, dest=setting.name, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=help)
        return
    metavar = setting.metavar
    if metavar is None and setting.choices is None:
        metavar = setting.name.rsplit("_", 1)[-1].upper()
    if setting.kind is tuple:
        group.add_argument(*names, dest=setting.name, action="append", default=argparse.SUPPRESS,
                           metavar=metavar, help=help)
        return
    parse = _whole_number_or_auto if setting.auto else _PARSERS[setting.kind]
    group.add_argument(*names, dest=setting.name, type=parse, default=argparse.SUPPRESS,
                       choices=setting.choices, metavar=metavar, help=help)
    if setting.negative is not None:
        group.add_argument("--no-" + setting.flag[2:], dest=setting.name, action="store_const",
                           const=setting.negative, default=argparse.SUPPRESS,
                           help=f"same as {setting.flag} {setting.negative}")


@dataclass(frozen=True, slots=True)
class Command:
    """What the command line asks for: the settings, and what to do with them."""

    config: Config
    print_config: bool
    #: The ``--env-file`` variables (already merged under ``environ`` for the settings).
    env_file: dict[str, str]


def parse_command(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Command:
    """Parse argv, merged with ``environ`` (default: this process's) and a ``--config`` file;
    exits with status 2 and one line on a bad flag or value."""
    parser = build_parser()
    given = vars(parser.parse_args(list(argv)))
    options = {name: given.pop(name) for name in _COMMAND_OPTIONS}
    environ = os.environ if environ is None else environ
    try:
        env_file = read_env_file(options["env_file"]) if options["env_file"] else {}
        config = gather(given, {**env_file, **without_env_file(environ)}, options["config"]).build()
    except ConfigError as error:
        parser.error(str(error))
    return Command(config, options["print_config"], env_file)


def parse_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Config:
    """Parse argv into a Config (see ``parse_command``)."""
    return parse_command(argv, environ).config


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``synack`` command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = parse_command(arguments)
    if command.print_config:
        sys.stdout.write(to_toml(command.config))
        sys.exit(0)
    apply_env_file(command.env_file)
    config = command.config
    from .logs import fatal_line
    from .run import StartupError, run

    try:
        code = run(config, command=arguments)
    except StartupError as error:
        sys.stderr.write(fatal_line(str(error), config.log_format))
        sys.exit(1)
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)
