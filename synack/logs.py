"""Logging: logger names (synack.error, synack.access), the access-log line, and their setup."""

from __future__ import annotations

import logging
import sys

__all__ = [
    "error_log", "access_log", "setup_logging", "LogSetupError", "access_line", "rejected_line", "escape",
    "format_peer",
]

error_log = logging.getLogger("synack.error")
access_log = logging.getLogger("synack.access")


class LogSetupError(Exception):
    """A log destination cannot be opened; the message says which and why."""


def setup_logging(level: str = "info", access: bool | str = "stderr") -> None:
    """Errors to stderr with a timestamp; access lines, as they are, to ``access``: "stderr",
    "-" (stdout), "off" (or False), or a file path (appended to).

    The access log writes at INFO, so ``level`` governs it too: ``warning`` turns it off.

    Raises:
        LogSetupError: the access-log file cannot be opened.
    """
    error_handler = logging.StreamHandler(sys.stderr)
    error_handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(levelname)s: %(message)s"))
    error_log.handlers[:] = [error_handler]
    error_log.setLevel(level.upper())
    error_log.propagate = False
    destination = access if isinstance(access, str) else ("stderr" if access else "off")
    access_log.propagate = False
    if destination == "off":
        access_log.handlers[:] = []
        access_log.setLevel(logging.CRITICAL + 1)
        return
    access_handler = _access_handler(destination)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [access_handler]
    access_log.setLevel(level.upper())


def _access_handler(destination: str) -> logging.Handler:
    if destination == "stderr":
        return logging.StreamHandler(sys.stderr)
    if destination == "-":
        return logging.StreamHandler(sys.stdout)
    try:
        return logging.FileHandler(destination, encoding="utf-8")
    except OSError as error:
        raise LogSetupError(f"cannot open the access log {destination}: {error.strerror or error}") from None


# Bytes shown as they are in a log line: printable ASCII except the quote and the backslash,
# which frame and escape the quoted fields. Everything else (controls, DEL, and every byte
# >= 0x80, some of which str.splitlines() would treat as a line break once decoded) is written
# as \xHH, as nginx does, so a client can never forge or split a log line.
_ESCAPES = {byte: f"\\x{byte:02X}" for byte in range(256) if not 0x20 <= byte < 0x7F}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def escape(raw: bytes) -> str:
    """``raw`` as safe log text: printable ASCII kept, every other byte as ``\\xHH``."""
    text = raw.decode("latin-1")
    if raw.isascii() and text.isprintable() and b'"' not in raw and b"\\" not in raw:
        return text  # the usual case: nothing to escape
    return text.translate(_ESCAPES)


def format_peer(peer: tuple[str, int] | None) -> str:
    """``host:port`` (``[v6]:port``) of a peer, or ``unix socket`` when it has no address."""
    if peer is None:
        return "unix socket"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def access_line(
    client: tuple[str, int] | None,
    log_time: str,
    request_line: bytes,
    status: int,
    size: int,
    referer: bytes | None,
    agent: bytes | None,
    duration_us: int | None = None,
) -> str:
    """One access-log line in the Combined Log Format, every client-supplied field escaped,
    then the time from the request head to the end of the response (``1234us``)."""
    host = client[0] if client else "-"
    return (
        f'{host} - - [{log_time}] "{escape(request_line)}" {status} {size if size else "-"}'
        f' "{escape(referer or b"-")}" "{escape(agent or b"-")}" {"-" if duration_us is None else f"{duration_us}us"}'
    )


def rejected_line(client: tuple[str, int] | None, log_time: str, status: int) -> str:
    """The access-log line for a request rejected before its head could be parsed."""
    host = client[0] if client else "-"
    return f'{host} - - [{log_time}] "-" {status} - "-" "-" -'
