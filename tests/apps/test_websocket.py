"""WebSockets over real sockets: the ``websockets`` asyncio client (and raw frames where a client
library would refuse to misbehave) against ``python -m synack`` serving tests/fixtures/apps/ws_apps.py.

RFC 6455 (framing, handshake, close codes), RFC 7692 (permessage-deflate), ASGI websocket spec 2.4.
"""

from __future__ import annotations

import ast
import select
import signal
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.apps.ws_support import RawWebSocket, close_code, frame, handshake, reset, run, url
from tests.conftest import Server
from tests.helpers import RawClient, running

APP = "ws_apps:echo"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running([APP]) as server:
        yield server


async def _last_disconnect(server: Server) -> Any:
    async with connect(url(server, "/echo")) as ws:
        await ws.send("last-disconnect")
        return ast.literal_eval(str(await ws.recv()))


async def _disconnect_code(server: Server, expected: int) -> int:
    """The close code the app last saw, polled (bounded) until it is ``expected``: the app
    records it when it runs, which may be just after the client saw the close."""
    for _ in range(50):
        last = await _last_disconnect(server)
        if last is not None and last[0] == expected:
            break
    return int(last[0]) if last is not None else 0


# ---------------------------------------------------------------------- messages


def test_text_binary_empty_and_large_messages_echo(server: Server) -> None:
    big = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB

    async def body() -> None:
        async with connect(url(server, "/echo"), max_size=None) as ws:
            for message in ("hello", "ünïcödé ✓", "", b"\x00\x01binary", b"", big):
                await ws.send(message)
                echoed = await ws.recv()
                assert echoed == message and type(echoed) is type(message)

    run(body)


def test_fragmented_messages_are_assembled(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/echo")) as ws:
            await ws.send(["frag", "mented ", "tëxt"])
            assert await ws.recv() == "fragmented tëxt"
            await ws.send([b"a", b"", b"bc"])
            assert await ws.recv() == b"abc"

    run(body)


def test_ping_is_answered_with_pong(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/echo")) as ws:
            latency = await (await ws.ping(b"payload"))
            assert latency >= 0

    run(body)


def test_frames_sent_with_the_handshake_are_read_as_frames(server: Server) -> None:
    # Bytes that follow the handshake in the same packet belong to the WebSocket (RFC 6455 §4.1).
    with RawWebSocket(server, handshake("/echo") + frame(b"early", opcode=0x1)) as ws:
        ws.opened()
        assert ws.read_frame() == (0x1, b"early")


# ---------------------------------------------------------------------- handshake and scope


def test_scope_has_every_websocket_key(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/scope?x=1"), subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
            return ast.literal_eval(str(await ws.recv()))

    scope = run(body)
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1" and scope["scheme"] == "ws"
    assert scope["path"] == "/scope" and scope["raw_path"] == b"/scope" and scope["query_string"] == b"x=1"
    assert scope["root_path"] == "" and scope["subprotocols"] == ["one", "two"]
    assert (b"upgrade", b"websocket") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"][1] == server.port
    assert "websocket.http.response" in scope["extensions"] and "method" not in scope


def test_subprotocol_chosen_by_the_app_is_negotiated(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/subprotocol"), subprotocols=["chat", "superchat"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "superchat"
            assert ws.response is not None and ws.response.headers["x-accepted"] == "1"

    run(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (handshake(version=b"8"), 426, b"version 13"),
        (handshake(key=b"short"), 400, b"Sec-WebSocket-Key"),
        (handshake(key=b"!!!not base64 at all!!!"), 400, b"Sec-WebSocket-Key"),
        (handshake(method=b"POST").replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"), 400, b"GET"),
        (handshake(extra=b"Content-Length: 5\r\n") + b"xxxxx", 400, b"must not have a body"),
        (handshake(extra=b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", 400, b"must not have a body"),
        (handshake(http=b"1.0"), 400, b"HTTP/1.1"),
        (handshake().replace(b"Sec-WebSocket-Key: " + b"MDEyMzQ1Njc4OWFiY2RlZg==\r\n", b""), 400,
         b"Sec-WebSocket-Key"),
    ],
    ids=["version-8", "short-key", "bad-base64-key", "post", "body", "chunked-body", "http-1.0", "no-key"],
)
def test_malformed_handshakes_get_a_clear_answer(server: Server, request_bytes: bytes, status: int,
                                                 reason: bytes) -> None:
    with RawWebSocket(server, request_bytes) as client:
        response = client.response()
        assert response.status == status, response
        assert reason in response.body
        if status == 426:
            assert response.header(b"sec-websocket-version") == b"13"
        client.expect_eof()  # nothing after the handshake is read as HTTP or as frames


def test_other_upgrades_are_plain_http(server: Server) -> None:
    with RawClient(server) as client:
        client.get("/", b"Connection: Upgrade\r\nUpgrade: h2c\r\n")
        response = client.response()
        assert response.status == 200 and response.body == b"plain http"


def test_close_before_accept_is_403(server: Server) -> None:
    for path in ("/deny", "/exit-before-accept"):
        with RawWebSocket(server, handshake(path)) as client:
            assert client.response().status == 403


def test_denial_with_websocket_http_response(server: Server) -> None:
    async def body() -> None:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(url(server, "/deny-http")):
                pass
        response = caught.value.response
        assert response.status_code == 401
        assert response.headers["x-denied"] == "yes" and response.body == b"no entry"

    run(body)


# ---------------------------------------------------------------------- closing


def test_close_codes_from_the_app(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/hello-then-close")) as ws:
            assert await ws.recv() == "hello"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001 and ws.close_reason == "bye now"

    run(body)


def test_close_codes_from_the_client_reach_the_app(server: Server) -> None:
    async def body() -> Any:
        async with connect(url(server, "/echo")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4000, "client leaving")
        return await _last_disconnect(server)

    assert run(body) == (4000, "client leaving")


def test_abrupt_disconnect_reaches_the_receiving_app(server: Server) -> None:
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        ws.send(frame(b"one"))
        assert ws.read_frame() == (0x2, b"one")
        reset(ws.sock)  # the app is waiting in receive()

    async def body() -> Any:
        # The app records its disconnect when it sees it: poll the record (bounded), no sleeping.
        for _ in range(50):
            last = await _last_disconnect(server)
            if last == (1006, ""):
                return last
        return last

    assert run(body) == (1006, "")


def test_app_returning_after_accept_closes_1000(server: Server) -> None:
    async def body() -> None:
        async with connect(url(server, "/return-after-accept")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1000

    run(body)


def test_unmasked_client_frame_is_a_protocol_error(server: Server) -> None:
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        ws.send(frame(b"naked", masked=False))
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1002  # RFC 6455 §5.1
        ws.expect_eof()


def test_invalid_utf8_text_closes_1007(server: Server) -> None:
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        ws.send(frame(b"\xff\xfe", opcode=0x1))
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1007  # RFC 6455 §8.1


def test_invalid_utf8_fails_fast_in_a_fragment(server: Server) -> None:
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        ws.send(frame(b"ok \xc3", opcode=0x1, fin=False))  # a split sequence is fine so far
        ws.send(frame(b"\x28", opcode=0x0, fin=False))  # 0xC3 0x28 is not UTF-8
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1007


# ---------------------------------------------------------------------- app errors


def test_app_errors_before_accept_are_500_and_logged(server_factory: Any) -> None:
    server = server_factory([APP])
    for path, logged in (("/raise-before-accept", "boom before accept"),
                         ("/send-before-accept", "unexpected ASGI message 'websocket.send'")):
        with RawWebSocket(server, handshake(path)) as client:
            assert client.response().status == 500
        deadline = time.monotonic() + 10
        while logged not in server.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logged in server.stderr_text()


def test_app_error_after_a_denial_is_logged_and_the_connection_goes_on(server_factory: Any) -> None:
    server = server_factory([APP])
    with RawWebSocket(server, handshake("/deny-then-raise")) as client:
        assert client.response().status == 403
        client.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")  # the handler finished: HTTP goes on
        assert client.response().body == b"plain http"
    assert server.stop() == 0
    log = server.stderr_text()
    assert log.count("RuntimeError: boom after the denial") == 1  # logged once, by the driver
    assert "pending" not in log  # no handler task left hanging


def test_app_error_after_accept_closes_1011_and_is_logged(server_factory: Any) -> None:
    server = server_factory([APP])

    async def body() -> None:
        async with connect(url(server, "/raise-after-accept")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011

    run(body)
    deadline = time.monotonic() + 10
    while "boom after accept" not in server.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.stderr_text()
    assert "boom after accept" in log and "Traceback" in log


def test_wrong_message_order_after_accept_closes_1011_and_is_logged(server_factory: Any) -> None:
    server = server_factory([APP])

    async def body() -> None:
        async with connect(url(server, "/accept-twice")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011

    run(body)
    deadline = time.monotonic() + 10
    while "'websocket.accept' in WebSocket state OPEN" not in server.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "'websocket.accept' in WebSocket state OPEN" in server.stderr_text()


# ---------------------------------------------------------------------- compression


def test_permessage_deflate_negotiated_with_window_bits(server: Server) -> None:
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10; server_max_window_bits=10\r\n"
    with RawWebSocket(server, handshake("/echo", offer)) as ws:
        head = ws.opened()
        extensions = head.header(b"sec-websocket-extensions") or b""
        assert b"permessage-deflate" in extensions and b"server_max_window_bits=10" in extensions
        # A compressed client frame (RSV1, RFC 7692 §6): raw deflate, the 4-byte tail removed.
        compressor = zlib.compressobj(wbits=-10)
        payload = compressor.compress(b"squeeze " * 100) + compressor.flush(zlib.Z_SYNC_FLUSH)
        data = frame(payload[:-4])
        ws.send(bytes((data[0] | 0x40,)) + data[1:])
        first, second = ws.exactly(2)
        assert first & 0x40, "the echo is compressed too"
        size = second & 0x7F
        assert size < 126
        decompressor = zlib.decompressobj(wbits=-10)
        assert decompressor.decompress(ws.exactly(size) + b"\x00\x00\xff\xff") == b"squeeze " * 100


def test_compression_on_and_off(server: Server, server_factory: Any) -> None:
    plain = server_factory([APP, "--no-ws-per-message-deflate"])

    async def body() -> None:
        async with connect(url(server, "/echo")) as ws:
            assert [type(extension).__name__ for extension in ws.protocol.extensions] == ["PerMessageDeflate"]
            await ws.send("compressed " * 1000)
            assert await ws.recv() == "compressed " * 1000
        async with connect(url(plain, "/echo")) as ws:
            assert ws.protocol.extensions == []
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(body)


# ---------------------------------------------------------------------- limits


def test_oversized_message_closes_1009(server_factory: Any) -> None:
    server = server_factory([APP, "--ws-max-size", "1000"])

    async def body() -> None:
        async with connect(url(server, "/echo")) as ws:
            await ws.send(b"x" * 1000)
            assert await ws.recv() == b"x" * 1000
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
        assert await _disconnect_code(server, 1009) == 1009  # the app hears what was sent
        async with connect(url(server, "/echo")) as ws:  # fragments count together
            await ws.send([b"x" * 600, b"x" * 600])
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009

    run(body)


def test_compressed_bomb_closes_1009_without_inflating_it(server_factory: Any) -> None:
    server = server_factory([APP, "--ws-max-size", "1048576"])
    pid = server.process.pid

    async def body() -> None:
        async with connect(url(server, "/echo"), max_size=None) as ws:
            rss_before = _rss_kib(pid)
            await ws.send(bytes(256 * 1024 * 1024))  # 256 MiB of zeros: ~256 KiB compressed
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
            assert _rss_kib(pid) - rss_before < 64 * 1024  # far from 256 MiB

    run(body, timeout=120)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_stops_reading_is_dropped(server_factory: Any) -> None:
    # /push sends 64 KiB messages forever without receiving; this client never reads. The app's
    # sends wait for the client (drain), and the write timeout drops the connection.
    server = server_factory([APP, "--write-timeout", "1"])
    with RawWebSocket(server, handshake("/push")) as ws:
        ws.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
        ws.opened()
        deadline = time.monotonic() + 30
        while "too slow to read" not in server.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "too slow to read" in server.stderr_text()
        assert _rss_kib(server.process.pid) < 200 * 1024


def test_app_that_does_not_receive_stops_reading_until_the_close(server_factory: Any) -> None:
    # /no-receive accepts and never calls receive(): reading stops once a few messages wait, so
    # the client's sends block long before it could push 256 MiB into the server. On SIGTERM
    # the server sends 1001 and must read again, or the client's answer would wait behind the
    # unread messages until the close timeout (an hour here, so only a completed handshake lets
    # the server exit in the bounded wait).
    server = server_factory([APP, "--ws-close-timeout", "3600", "--graceful-timeout", "3600"])
    with RawWebSocket(server, handshake("/no-receive")) as ws:
        ws.opened()
        message = frame(b"m" * 65536)
        sent = offset = 0  # offset: how much of the message in flight is sent
        ws.sock.setblocking(False)
        while sent < 256 * 1024 * 1024 and select.select([], [ws.sock], [], 2.0)[1]:
            count = ws.sock.send(message[offset:])
            sent, offset = sent + count, (offset + count) % len(message)
        assert sent < 64 * 1024 * 1024
        assert _rss_kib(server.process.pid) < 200 * 1024
        ws.sock.settimeout(10.0)
        server.signal(signal.SIGTERM)
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1001
        # The rest of the message in flight (dropped), then the answer.
        ws.send((message[offset:] if offset else b"") + frame(payload, opcode=0x8))
        ws.expect_eof()
    assert server.wait(30) == 0
    assert "timed out" not in server.stderr_text()


def test_unanswered_pings_close_1011(server_factory: Any) -> None:
    server = server_factory([APP, "--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.3"])
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        opcode, _ = ws.read_frame()
        assert opcode == 0x9  # a ping, which this client does not answer
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1011
        ws.expect_eof()


def test_answered_pings_keep_the_connection(server_factory: Any) -> None:
    server = server_factory([APP, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "1"])
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        for _ in range(3):
            opcode, payload = ws.read_frame()
            assert opcode == 0x9
            ws.send(frame(payload, opcode=0xA))  # pong
        ws.send(frame(b"still here"))
        assert ws.read_frame() == (0x2, b"still here")


def test_close_handshake_times_out(server_factory: Any) -> None:
    server = server_factory([APP, "--ws-close-timeout", "0.5"])
    with RawWebSocket(server, handshake("/hello-then-close")) as ws:
        ws.opened()
        assert ws.read_frame() == (0x1, b"hello")
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 4001
        ws.expect_eof()  # never answered: the server closes on its own


# ---------------------------------------------------------------------- server lifecycle


def test_sigterm_closes_open_websockets_with_1001(server_factory: Any) -> None:
    server = server_factory([APP])

    async def body() -> None:
        async with connect(url(server, "/echo")) as first, connect(url(server, "/echo")) as second:
            await first.send("up")
            assert await first.recv() == "up"
            server.signal(signal.SIGTERM)
            for ws in (first, second):
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1001

    run(body)
    assert server.wait(30) == 0


def test_access_log_has_the_handshake_and_the_lifetime(server_factory: Any) -> None:
    server = server_factory([APP])

    async def body() -> None:
        async with connect(url(server, "/echo?log=1")) as ws:
            await ws.send("x")
            await ws.recv()

    run(body)
    deadline = time.monotonic() + 10
    while "websocket closed" not in server.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.stderr_text().splitlines() if "GET /echo?log=1 HTTP/1.1" in line]
    assert len(lines) == 2
    assert '" 101 ' in lines[0] and '" 101 ' in lines[1]
    assert lines[1].endswith("us websocket closed 1000")  # the lifetime, then the close code


def test_wsgi_app_answers_an_upgrade_as_plain_http(server_factory: Any) -> None:
    server = server_factory(["wsgi_app:app"])
    with RawWebSocket(server, handshake("/")) as client:
        response = client.response()
        assert response.status == 200


# ---------------------------------------------------------------------- without the library


def test_without_the_library_handshakes_get_501_and_one_log_line(server_factory: Any, tmp_path: Any) -> None:
    # A stub package that hides the real one, put first on the path of the server process.
    stub = tmp_path / "hide" / "websockets"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('websockets hidden for this test')\n")
    from tests.conftest import FIXTURE_APPS, ROOT, SYNACK_PATH
    server = server_factory([APP], env={"PYTHONPATH": f"{stub.parent}:{SYNACK_PATH}:{ROOT}:{FIXTURE_APPS}"})
    for _ in range(2):
        with RawWebSocket(server, handshake("/echo")) as client:
            response = client.response()
            assert response.status == 501 and b"not available" in response.body
    with RawClient(server) as client:
        client.get("/")
        assert client.response().status == 200  # plain HTTP is unaffected
    assert server.stderr_text().count("pip install 'synack[websockets]'") == 1


def test_ws_none_answers_501(server_factory: Any) -> None:
    server = server_factory([APP, "--ws", "none"])
    with RawWebSocket(server, handshake("/echo")) as client:
        response = client.response()
        assert response.status == 501 and b"disabled" in response.body


def test_close_between_fragments_is_echoed(server: Server) -> None:
    # RFC 6455 §5.4: a control frame may come between fragments; a close there ends the
    # unfinished message and gets the close echoed, not a 1002 (Autobahn case 7.1.5).
    with RawWebSocket(server, handshake("/echo")) as ws:
        ws.opened()
        ws.send(frame(b"fragment1", opcode=0x1, fin=False) + frame(b"\x03\xe8", opcode=0x8)
                + frame(b"fragment2", opcode=0x0))
        opcode, payload = ws.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1000
        ws.expect_eof()
