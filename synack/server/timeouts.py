"""Timeouts: named per-connection deadlines, checked by one sweep a second per worker.

A deadline is a float on the connection, re-armed at each phase change (head, body, idle
keep-alive, write, linger). One periodic sweep compares them with the clock, so the hot path
never creates or cancels timer handles.

This dataclass is the one declaration of these settings: ``synack.config`` turns each field
into a setting from its default and metadata (``help``; ``flag``, the command-line name,
e.g. ``--body-timeout`` for ``body_idle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timeouts"]


def _seconds(default: float, flag: str, help: str) -> Any:
    return field(default=default, metadata={"flag": flag, "help": help})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every time bound of the driver, in seconds."""

    #: Whole request head, from the connection (or the first byte of a kept-alive request)
    #: to the blank line. The slowloris guard: a deadline, not a per-read timeout. → 408
    head: float = _seconds(10.0, "--head-timeout", "seconds to receive a whole request head (→ 408)")
    #: Longest wait for the next piece of request body while the app is reading. → 408
    body_idle: float = _seconds(
        30.0, "--body-timeout", "seconds to wait for more request body (→ 408)"
    )
    #: Idle time allowed between requests on a kept-alive connection (uvicorn: 5 s).
    keep_alive: float = _seconds(
        5.0, "--keep-alive-timeout", "seconds an idle keep-alive connection stays open"
    )
    #: Longest wait for a slow client to accept more response bytes before aborting.
    write: float = _seconds(30.0, "--write-timeout", "seconds to wait for a slow client to read")
    #: After the final FIN, how long to read and discard input before closing (aiohttp: 10 s).
    linger: float = _seconds(
        2.0, "--linger-timeout", "seconds to discard input after the final response before closing"
    )
    #: On SIGTERM/SIGINT, how long in-flight requests may take before they are cancelled.
    graceful: float = _seconds(
        30.0, "--graceful-timeout", "seconds in-flight requests get to finish on SIGTERM/SIGINT"
    )
    #: How long ASGI lifespan startup and shutdown may take.
    lifespan: float = _seconds(
        60.0, "--lifespan-timeout", "seconds ASGI lifespan startup or shutdown may take"
    )
