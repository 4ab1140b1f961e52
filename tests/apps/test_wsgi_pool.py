"""The WSGI thread pool's hand-out, pass by pass, on a real loop with real threads: a small
batch of jobs gathers the next passes' before it wakes a parked thread (one wake, one pair of
context switches, for more jobs), but never for long: a pass that brings nothing, a batch of
``GATHER_JOBS`` or ``GATHER_PASSES`` passes end the gathering. (Throughput: bench/run.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from synack.apps import wsgi
from synack.apps.wsgi import GATHER_JOBS, GATHER_PASSES, ThreadPool, _Bridge


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def _run(body: Callable[[ThreadPool, _Bridge, list[Any]], Any]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        pool = ThreadPool(4)
        parked = pool._parked
        bridge = _Bridge(loop)
        done: list[Any] = []
        try:
            # The first job starts the first thread, which parks once it has run it.
            pool.submit(bridge, lambda x: x, "first", lambda argument, result, error: done.append(result))
            await _until(lambda: done == ["first"] and len(parked) == 1)
            await body(pool, bridge, done)
        finally:
            pool.shutdown()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.fixture(autouse=True)
def _no_backlog_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    # The backlog timer wakes threads too (after 2 ms): out of the way, so only the hand-out
    # wakes the parked thread here.
    monkeypatch.setattr(wsgi, "BACKLOG_WAIT", 60.0)


def _gathering(pool: ThreadPool, jobs: int) -> bool:
    """The one thread is still parked, ``jobs`` wait for it, and the hand-out runs again next pass."""
    return len(pool._parked) == 1 and len(pool._jobs) == jobs and pool._handing_out


def _woken(pool: ThreadPool) -> bool:
    """The hand-out is over: it woke the thread (which may already have run the jobs and
    parked again) and is not scheduled again."""
    return not pool._handing_out and pool._gathered == 0


def _submit(pool: ThreadPool, bridge: _Bridge, done: list[Any], *arguments: Any) -> None:
    for argument in arguments:
        pool.submit(bridge, lambda x: x, argument, lambda argument, result, error: done.append(result))


def test_a_lone_job_waits_one_pass_for_company_and_no_more() -> None:
    async def body(pool: ThreadPool, bridge: _Bridge, done: list[Any]) -> None:
        _submit(pool, bridge, done, "lone")
        await asyncio.sleep(0)  # the pass that hands it out: it waits for the next one's
        assert _gathering(pool, 1)
        await asyncio.sleep(0)  # that pass brought nothing: the thread is woken
        assert _woken(pool)
        await _until(lambda: done == ["first", "lone"])

    _run(body)


def test_jobs_arriving_every_pass_gather_for_at_most_gather_passes() -> None:
    async def body(pool: ThreadPool, bridge: _Bridge, done: list[Any]) -> None:
        for index in range(GATHER_PASSES):
            _submit(pool, bridge, done, index)
            await asyncio.sleep(0)
            assert _gathering(pool, index + 1), index  # every job waits in the queue
        _submit(pool, bridge, done, GATHER_PASSES)
        await asyncio.sleep(0)
        assert _woken(pool)  # one wake for all of them
        await _until(lambda: len(done) == GATHER_PASSES + 2)
        assert done == ["first", *range(GATHER_PASSES + 1)]

    _run(body)


def test_a_batch_of_gather_jobs_wakes_a_thread_at_once() -> None:
    async def body(pool: ThreadPool, bridge: _Bridge, done: list[Any]) -> None:
        _submit(pool, bridge, done, *range(GATHER_JOBS))
        await asyncio.sleep(0)
        assert _woken(pool)
        await _until(lambda: len(done) == GATHER_JOBS + 1)

    _run(body)
