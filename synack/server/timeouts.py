"""Timeouts: named per-connection deadlines, checked by one sweep a second per worker.

A deadline is a float on the connection, re-armed at each phase change (head, body, idle
keep-alive, write, linger). One periodic sweep compares them with the clock, so the hot path
never creates or cancels timer handles.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every time bound of the driver, in seconds."""

    #: Whole request head, from the connection (or the first byte of a kept-alive request)
    #: to the blank line. The slowloris guard: a deadline, not a per-read timeout. → 408
    head: float = 10.0
    #: Longest wait for the next piece of request body while the app is reading. → 408
    body_idle: float = 30.0
    #: Idle time allowed between requests on a kept-alive connection (uvicorn: 5 s).
    keep_alive: float = 5.0
    #: Longest wait for a slow client to accept more response bytes before aborting.
    write: float = 30.0
    #: After the final FIN, how long to read and discard input before closing (aiohttp: 10 s).
    linger: float = 2.0
    #: On SIGTERM/SIGINT, how long in-flight requests may take before they are cancelled.
    graceful: float = 30.0
    #: How long ASGI lifespan startup and shutdown may take.
    lifespan: float = 60.0
