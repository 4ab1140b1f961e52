"""ASGI lifespan: startup before accepting connections, shutdown after draining, with timeouts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["Lifespan", "LifespanFailure"]

error_log = logging.getLogger("synack.error")


class LifespanFailure(Exception):
    """The application reported (or raised) a failure during lifespan startup or shutdown."""


class Lifespan:
    """Drives one ``lifespan`` scope for the whole life of the worker."""

    def __init__(self, app: Any, required: bool, timeout: float) -> None:
        self.app = app
        self.required = required
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        self.supported = True
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        message = await self._wait("startup")
        if message is None:
            return
        if message["type"] == "lifespan.startup.failed":
            raise LifespanFailure(f"application startup failed: {message.get('message', '')}".rstrip(": "))

    async def shutdown(self) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        message = await self._wait("shutdown")
        if message is not None and message["type"] == "lifespan.shutdown.failed":
            error_log.error("application shutdown failed: %s", message.get("message", ""))

    async def _wait(self, phase: str) -> dict[str, Any] | None:
        assert self._task is not None
        getter = asyncio.ensure_future(self._outbox.get())
        try:
            done, _ = await asyncio.wait({getter, self._task}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        if self._task in done:
            # The app returned or raised without answering: lifespan is unsupported.
            error = self._task.exception()
            if self.required or phase == "shutdown":
                raise LifespanFailure(f"application {phase} failed: {error!r}")
            self.supported = False
            error_log.info("ASGI lifespan not supported by the application; continuing without it")
            return None
        raise LifespanFailure(f"application {phase} timed out after {self.timeout:g}s")

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        await self.app(scope, self._inbox.get, self._outbox.put)
