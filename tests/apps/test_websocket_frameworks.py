"""Framework WebSocket routes run unchanged on synack: Starlette, FastAPI and Django Channels
fixture apps, driven by the ``websockets`` client; and a headless Chromium page whose script
talks to a Starlette WebSocket route (the result is read from the DOM)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.apps.test_static_browser import CHROMIUM, FLAGS
from tests.apps.ws_support import run, url
from tests.conftest import Server
from tests.helpers import RawClient, running


@pytest.fixture(scope="module")
def starlette() -> Iterator[Server]:
    with running(["ws_starlette:app"]) as server:
        yield server


@pytest.fixture(scope="module")
def fastapi() -> Iterator[Server]:
    with running(["ws_fastapi:app"]) as server:
        yield server


def test_starlette_json_route(starlette: Server) -> None:
    async def body() -> None:
        async with connect(url(starlette, "/ws/json")) as ws:
            await ws.send(json.dumps({"n": 1}))
            assert json.loads(await ws.recv()) == {"echo": {"n": 1}, "path": "/ws/json"}

    run(body)


def test_starlette_endpoint_with_subprotocol(starlette: Server) -> None:
    async def body() -> None:
        async with connect(url(starlette, "/ws/count"), subprotocols=["count.v1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "count.v1"
            for expected in ("1: a", "2: b"):
                await ws.send(expected[-1])
                assert await ws.recv() == expected

    run(body)


def test_starlette_close_before_accept_is_403_and_http_still_works(starlette: Server) -> None:
    async def body() -> None:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(url(starlette, "/ws/refuse")):
                pass
        assert caught.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as caught:  # no such WebSocket route
            async with connect(url(starlette, "/ws/missing")):
                pass
        assert caught.value.response.status_code == 403

    run(body)
    with RawClient(starlette) as client:
        client.get("/")
        assert client.response().body == b"hello over http"


def test_fastapi_route_with_path_and_query(fastapi: Server) -> None:
    async def body() -> None:
        async with connect(url(fastapi, "/ws/lobby?token=secret")) as ws:
            await ws.send("hi")
            assert await ws.recv() == "[lobby] hi"
            await ws.close(4002)
        async with connect(url(fastapi, "/ws/lobby?token=secret")) as ws:
            await ws.send("closed?")
            assert 4002 in eval(str(await ws.recv()))  # the first socket's WebSocketDisconnect code
        with pytest.raises(InvalidStatus) as caught:
            async with connect(url(fastapi, "/ws/lobby")):
                pass
        assert caught.value.response.status_code == 403

    run(body)


def test_fastapi_bytes_and_close_reason(fastapi: Server) -> None:
    async def body() -> None:
        async with connect(url(fastapi, "/bytes")) as ws:
            await ws.send(b"abc")
            assert await ws.recv() == b"cba"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4321, "done")

    run(body)


def test_django_channels_consumer(server_factory: Any) -> None:
    server = server_factory(["ws_channels:application"])

    async def body() -> None:
        async with connect(url(server, "/ws/shout/")) as ws:
            await ws.send("quiet")
            assert await ws.recv() == "QUIET"
            await ws.send(b"\x01\x02")
            assert await ws.recv() == b"\x01\x02"

    run(body)
    with RawClient(server) as client:
        client.get("/")
        assert client.response().body == b"django http"


def test_browser_page_talks_to_a_websocket(starlette: Server, tmp_path: Path) -> None:
    # Driven over the DevTools protocol rather than --dump-dom: a WebSocket is not a pending
    # fetch, so a virtual-time budget may end before its answer arrives. The page's result is
    # read from the DOM until it is no longer "pending" (bounded).
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium"
    browser = subprocess.Popen(
        [CHROMIUM, *[flag for flag in FLAGS if not flag.startswith("--virtual-time")],
         "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        endpoint = _devtools_endpoint(browser)
        text = run(lambda: _page_result(endpoint, f"{starlette.url}/page"), timeout=60)
    finally:
        browser.kill()
        browser.wait(10)
        assert browser.stderr is not None
        browser.stderr.close()
    assert text == 'received {"echo":{"greeting":"hello from the browser"},"path":"/ws/json"}'


def _devtools_endpoint(browser: subprocess.Popen[bytes]) -> str:
    assert browser.stderr is not None
    deadline = time.monotonic() + 30
    seen = b""
    while time.monotonic() < deadline:
        line = browser.stderr.readline()
        seen += line
        match = re.search(rb"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1).decode()
        if not line and browser.poll() is not None:
            break
    raise AssertionError(f"chromium did not start its DevTools endpoint: {seen.decode(errors='replace')[-2000:]}")


async def _page_result(endpoint: str, page: str) -> str:
    async with connect(endpoint, max_size=None) as devtools:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, params: dict[str, Any], session: str | None = None) -> Any:
            number = next(ids)
            message: dict[str, Any] = {"id": number, "method": method, "params": params}
            if session:
                message["sessionId"] = session
            await devtools.send(json.dumps(message))
            while True:
                answer = json.loads(await devtools.recv())
                if answer.get("id") == number:
                    assert "error" not in answer, answer
                    return answer["result"]

        target = (await call("Target.createTarget", {"url": page}))["targetId"]
        session = (await call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        text = "pending"
        for _ in range(300):  # at most ~30 s
            result = await call("Runtime.evaluate", {
                "expression": "(document.getElementById('result') || {}).textContent || 'pending'",
                "returnByValue": True}, session)
            text = result["result"]["value"]
            if text != "pending":
                break
            await asyncio.sleep(0.1)
        return str(text)
