"""ASGI lifespan: startup before accepting connections, shutdown after draining, with timeouts.

One ``lifespan`` scope lives for the whole worker. Its ``state`` dict is what the app fills in
at startup; the ASGI adapter copies it into every request scope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..logs import error_log

__all__ = ["Lifespan", "LifespanFailure"]

LIFESPAN_SPEC_VERSION = "2.0"


class LifespanFailure(Exception):
    """The application reported (or raised) a failure during lifespan startup or shutdown."""


class Lifespan:
    """Drives one ``lifespan`` scope for the whole life of the worker.

    Args:
        app: the ASGI 3 application.
        required: ``--lifespan on``: an app that does not support lifespan is a failure.
            Otherwise (``auto``) an app that raises or returns before answering startup is
            taken not to support lifespan, and serving continues without it.
        timeout: seconds startup and shutdown may each take.
    """

    def __init__(self, app: Any, required: bool, timeout: float) -> None:
        self.app = app
        self.required = required
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        #: False once the app showed it does not speak lifespan (only with ``required=False``).
        self.supported = True
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._started = False

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanFailure: the app answered ``lifespan.startup.failed``, timed out, sent
                something else, or (when lifespan is required) did not take part.
        """
        task = self._task = asyncio.get_running_loop().create_task(self._main())
        self._inbox.put_nowait({"type": "lifespan.startup"})
        try:
            message = await self._wait("startup")
            if message is None:
                return
            self._check_answer("startup", message)
        except LifespanFailure:
            await self._finish(task, report=False)
            raise
        self._started = True
        task.add_done_callback(self._ended_early)

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer.

        Raises:
            LifespanFailure: the app answered ``lifespan.shutdown.failed``, raised or timed out.
        """
        task = self._task
        if not self.supported or task is None or not self._started:
            return
        if task.done():
            return  # it ended early; _ended_early already said so
        task.remove_done_callback(self._ended_early)
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        message = None
        try:
            message = await self._wait("shutdown")
            if message is not None:
                self._check_answer("shutdown", message)
        finally:
            await self._finish(task, report=message is not None)

    def _check_answer(self, phase: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == f"lifespan.{phase}.complete":
            return
        if kind == f"lifespan.{phase}.failed":
            reason = message.get("message", "")
            raise LifespanFailure(f"the application reported lifespan.{phase}.failed" + (f": {reason}" if reason else ""))
        raise LifespanFailure(
            f"application sent {kind!r} during lifespan {phase};"
            f" expected 'lifespan.{phase}.complete' or 'lifespan.{phase}.failed'"
        )

    async def _wait(self, phase: str) -> dict[str, Any] | None:
        """The app's answer; None if it turned out not to support lifespan (auto mode)."""
        task = self._task
        assert task is not None
        getter = asyncio.ensure_future(self._outbox.get())
        try:
            done, _ = await asyncio.wait({getter, task}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        if task in done:
            self._returned_without_answer(phase, task)
            return None
        raise LifespanFailure(f"application {phase} timed out after {self.timeout:g}s")

    def _returned_without_answer(self, phase: str, task: asyncio.Task[None]) -> None:
        error = task.exception()
        if phase == "startup" and not self.required:
            # uvicorn and hypercorn read this as "lifespan is not supported" (e.g. an app that
            # asserts scope["type"] == "http", or Django's ValueError for other scope types).
            self.supported = False
            detail = f" ({type(error).__name__}: {error})" if error is not None else ""
            error_log.info("ASGI lifespan not supported by the application%s; continuing without it", detail)
            return
        if error is not None:
            raise LifespanFailure(f"application {phase} failed: {type(error).__name__}: {error}") from error
        raise LifespanFailure(f"application returned from lifespan without answering {phase}")

    def _ended_early(self, task: asyncio.Task[None]) -> None:
        # The lifespan coroutine should run until shutdown; say so if it did not.
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            error_log.error("ASGI lifespan task failed after startup", exc_info=error)
        else:
            error_log.warning("ASGI lifespan task returned before shutdown; shutdown will be skipped")

    async def _finish(self, task: asyncio.Task[None], report: bool) -> None:
        # Let the app return from its lifespan coroutine; never leave a pending task behind
        # (or an exception nobody retrieved).
        if not task.done():
            await asyncio.wait({task}, timeout=min(self.timeout, 5.0))
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and report:
            error_log.error("ASGI lifespan task failed after answering", exc_info=error)

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        await self.app(scope, self._receive, self._send)

    async def _receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if not isinstance(message, dict) or "type" not in message:
            raise LifespanFailure(f"lifespan message must be a dict with a 'type', got {message!r}")
        self._outbox.put_nowait(message)
