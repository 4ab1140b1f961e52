"""ServerContext: what every connection of one worker shares (handler, limits, timeouts, the
clock and the cached response fields), and the deadline sweep over its connections."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

from ..h1 import Limits
from ..logs import access_lane, access_log, access_writer, custom_access, error_log
from .exchange import Handler, entry_point
from .request_id import RequestIds
from .metrics import Metrics
from .timeouts import Timeouts
from .proxy import Forwarding
from .tls import ServerTls

__all__ = ["ServerContext", "Connection", "expire_deadlines", "access_log_enabled"]


class Connection(Protocol):
    """What the worker does with each open connection (HttpProtocol is the one kind today)."""

    #: When ``on_deadline`` is due (loop time), or 0 for never.
    deadline: float

    def on_deadline(self) -> None: ...

    def shutdown(self, keep_idle: bool = False) -> None:
        """Graceful server shutdown: make this the last exchange; an idle connection is
        closed at once, or with ``keep_idle`` at its next response or keep-alive deadline."""

    def cancel(self) -> None:
        """Graceful timeout expired: cancel the handler and drop the connection."""


class ServerContext:
    """What every connection of one worker shares: handler, limits, timeouts and the clock."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: Handler,
        limits: Limits,
        timeouts: Timeouts,
        *,
        server_header: bytes = b"synack",
        access_log: bool = True,
        root_path: str = "",
        scheme: str = "http",
        tls: ServerTls | None = None,
        forwarding: Forwarding | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.loop = loop
        #: The clock every deadline is armed from (``loop.time``; a test harness may swap it).
        self.time = loop.time
        self.handler = handler  # (also sets ``handle``)
        self.limits = limits
        self.timeouts = timeouts
        self.server_header = server_header
        self.access_log = access_log and access_log_enabled()
        #: A named or JSON access format (``--access-log-format``, ``--log-format json``), or None
        #: for the default line.
        self.access_custom = custom_access()
        if self.access_custom is not None:
            self.access_custom.lane = access_lane(self.access_custom.json_lines)
        #: Where a default access line goes (``logs.access_writer``: the logger, or straight
        #: onto its writer thread's queue).
        self.access_write = access_writer()
        #: X-Request-IDs, made when something asks for one.
        self.request_ids = RequestIds()
        self.root_path = root_path
        self.scheme = "https" if tls is not None else scheme
        #: The TLS context and what its connections share, when serving TLS.
        self.tls = tls
        #: Proxy headers from trusted peers (``--proxy-headers``), or None when off.
        self.forwarding = forwarding
        #: The request counters (``--metrics``), or None when off.
        self.metrics = metrics
        #: Whether each request's start time is taken (for the access log or the metrics).
        self.timed = self.access_log or metrics is not None
        self.connections: set[Connection] = set()
        self.now = loop.time()
        #: The ``date`` and ``server`` field lines, refreshed once a second by the worker.
        self.default_headers = b""
        self.log_time = ""
        self.shutting_down = False
        #: Requests started on this worker's connections.
        self.requests = 0
        self.on_connection_lost: list[Any] = []
        #: (connection, exchange) pairs whose dispatch waits for the loop's next pass, done
        #: there together (``protocol.HttpProtocol._answer_now``).
        self.answers: list[tuple[Any, Any]] = []

    @property
    def handler(self) -> Handler:
        """What answers each exchange (setting it also sets ``handle``, ``respond_now`` and
        ``begin``)."""
        return self._handler

    @handler.setter
    def handler(self, handler: Handler) -> None:
        self._handler = handler
        #: What the driver calls for each exchange (``exchange.entry_point``).
        self.handle: Callable[[Any], Awaitable[None]] = entry_point(handler)
        #: The handler's synchronous fast path, when it has one (see ``Handler``).
        self.respond_now: Any = getattr(handler, "respond_now", None)
        #: The handler's task-free entry, when it has one (see ``Handler``).
        self.begin: Any = getattr(handler, "begin", None)


def access_log_enabled() -> bool:
    return access_log.isEnabledFor(logging.INFO)


def expire_deadlines(connections: set[Connection], now: float) -> None:
    """Call ``on_deadline`` on every connection whose deadline has passed at ``now``."""
    for connection in list(connections):
        deadline = connection.deadline
        if deadline and deadline <= now:
            try:
                connection.on_deadline()
            except Exception:  # never let one connection stop the clock
                error_log.exception("error while timing out a connection")

