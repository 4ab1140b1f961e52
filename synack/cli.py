"""Command line: argv → Config (flags generated from Config's fields) → run.run().

The only module that prints usage errors or calls sys.exit.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, NoReturn, Sequence

from . import __version__
from .config import Config, ConfigError

__all__ = ["main", "build_parser", "parse_config"]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except for options that have none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line that says what to fix, then exit 2 (no usage dump).
        sys.stderr.write(f"synack: error: {message} (see synack --help)\n")
        sys.exit(2)


def _type_for(item: dataclasses.Field[Any]) -> Any:
    kind = str(item.type)
    if "int" in kind:
        return _whole_number
    if "float" in kind:
        return _seconds
    return str


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synack",
        description="synack: an HTTP/1.1 server for static files and Python web apps.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"synack {__version__}")
    groups: dict[str, Any] = {}
    for item in dataclasses.fields(Config):
        meta = item.metadata
        group = groups.get(meta["group"])
        if group is None:
            group = groups[meta["group"]] = parser.add_argument_group(meta["group"])
        if meta["positional"]:
            group.add_argument(item.name, nargs="?", default=item.default, help=meta["help"],
                               metavar=meta["metavar"])
            continue
        flag = meta["flag"] or "--" + item.name.replace("_", "-")
        if str(item.type) == "bool":
            group.add_argument(flag, dest=item.name, action=argparse.BooleanOptionalAction,
                               default=item.default, help=meta["help"])
            continue
        group.add_argument(
            flag,
            dest=item.name,
            type=_type_for(item),
            default=item.default,
            choices=meta["choices"],
            metavar=meta["metavar"] or (item.name.split("_")[-1].upper() if not meta["choices"] else None),
            help=meta["help"],
        )
    return parser


def parse_config(argv: Sequence[str]) -> Config:
    """Parse argv into a Config; exits with status 2 and one line on a bad flag or value."""
    parser = build_parser()
    namespace = parser.parse_args(list(argv))
    try:
        return Config(**vars(namespace))
    except ConfigError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``synack`` command."""
    config = parse_config(sys.argv[1:] if argv is None else argv)
    from .run import StartupError, run

    try:
        code = run(config)
    except StartupError as error:
        sys.stderr.write(f"synack: error: {error}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)
