"""Logging: logger names (synack.error, synack.access) and their setup."""

from __future__ import annotations

import logging
import sys

__all__ = ["error_log", "access_log", "setup_logging"]

error_log = logging.getLogger("synack.error")
access_log = logging.getLogger("synack.access")


def setup_logging(level: str = "info", access: bool = True) -> None:
    """Send both logs to stderr: errors with a timestamp, access lines as they are."""
    error_handler = logging.StreamHandler(sys.stderr)
    error_handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(levelname)s: %(message)s"))
    error_log.handlers[:] = [error_handler]
    error_log.setLevel(level.upper())
    error_log.propagate = False
    access_handler = logging.StreamHandler(sys.stderr)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [access_handler]
    access_log.setLevel(logging.INFO if access else logging.WARNING)
    access_log.propagate = False
