"""WSGI (PEP 3333) over a real synack subprocess (fixture: tests/fixtures/apps/wsgi_app.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from synack.apps.wsgi import WSGIHandler, _Bridge
from tests.conftest import Server
from tests.helpers import RawClient, assert_aborted, random_file, running, sha256
from tests.server.harness import Harness, count_responses, run
from tests.server.helpers import wait_for_stderr

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # asyncio's loop, so file_wrapper responses go out with os.sendfile
    with running(["wsgi_app:app", "--threads", "8", "--loop", "asyncio", "--graceful-timeout", "2"]) as server:
        yield server


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_file(tmp_path_factory, "wsgi", 5 * 1024 * 1024 + 3)


# ---------------------------------------------------------------------- environ


def test_environ(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"GET /environ/caf%C3%A9%20%2F?x=1&y=%20 HTTP/1.1\r\nHost: example.test:8080\r\n"
                 b"X-Dup: one\r\nX-Dup: two\r\nCookie: a=1\r\nCookie: b=2\r\nX-Auth_User: spoof\r\n"
                 b"X-Auth-User: real\r\n\r\n")
        environ = json.loads(raw.response().body)
        local_port = raw.sock.getsockname()[1]
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/environ/café /".encode().decode("latin-1")
    assert environ["path_utf8"] == "/environ/café /"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(server.port)
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(local_port)
    assert environ["HTTP_HOST"] == "example.test:8080"
    assert environ["HTTP_X_DUP"] == "one, two"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"  # cookies join with "; " (RFC 9113 §8.2.3)
    assert environ["HTTP_X_AUTH_USER"] == "real"  # the underscore spelling was dropped
    assert "CONTENT_TYPE" not in environ and "CONTENT_LENGTH" not in environ
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.errors"] is True
    assert environ["wsgi.file_wrapper"] == "synack.apps.wsgi.FileWrapper"
    for key, value in environ.items():
        if isinstance(value, str):
            value.encode("latin-1")  # PEP 3333: native strings holding latin-1 only


def test_environ_content_headers_and_http10(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"POST /environ HTTP/1.0\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc")
        environ = json.loads(raw.response().body)
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_script_name_from_root_path(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["wsgi_app:app", "--root-path", "/prefix", "--no-access-log"])
    with httpx.Client(base_url=server.url) as client:
        environ = client.get("/environ/x").json()
    assert environ["SCRIPT_NAME"] == "/prefix"
    assert environ["PATH_INFO"] == "/environ/x"


# ---------------------------------------------------------------------- wsgi.input

LINES = b"".join(b"line %d %s\n" % (n, b"y" * (n % 300)) for n in range(3000)) + b"no newline at end"


@pytest.mark.parametrize("mode", ["read", "read-n", "read-length", "readline", "readline-limit", "iter", "readlines"])
def test_input_modes(client: httpx.Client, mode: str) -> None:
    result = client.post("/echo", params={"mode": mode, "n": "777"}, content=LINES).json()
    assert result["length"] == len(LINES)
    assert result["sha256"] == sha256(LINES)
    assert result["content_length"] == str(len(LINES))
    if mode in ("readline", "iter", "readlines"):
        assert result["pieces"] == [len(line) for line in LINES.splitlines(keepends=True)]
    if mode == "readline-limit":
        assert max(result["pieces"]) == 5
    if mode == "read-n":  # full reads of n bytes until the last, shorter one
        whole, last = divmod(len(LINES), 777)
        assert result["pieces"] == [777] * whole + ([last] if last else [])
    if mode in ("read", "read-length"):
        assert result["pieces"] == [len(LINES)]


@pytest.mark.parametrize("mode", ["read", "read-n", "readline", "iter"])
def test_chunked_request_body(client: httpx.Client, mode: str) -> None:
    pieces = [LINES[i:i + 5000] for i in range(0, len(LINES), 5000)]
    result = client.post("/echo", params={"mode": mode}, content=iter(pieces)).json()
    assert result["sha256"] == sha256(LINES)
    assert result["content_length"] is None


def test_input_is_streamed(server: Server) -> None:
    rest = b"z" * 100_000
    first = b"first line\n"
    with RawClient(server) as raw:
        raw.send(b"POST /first-line HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (len(first) + len(rest)) + first)
        assert raw.head().status == 200
        assert raw.chunk() == b"first:" + first  # answered before the rest of the body was sent
        raw.send(rest)
        assert raw.chunk() == b"rest:100000\n"
        assert raw.chunk() is None


def test_expect_100_continue(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert raw.line() == b"HTTP/1.1 100 Continue"
        assert raw.line() == b""
        raw.send(b"hello")
        assert json.loads(raw.response().body)["sha256"] == sha256(b"hello")


# ---------------------------------------------------------------------- responses


def test_streaming_response_is_sent_as_produced(server: Server, client: httpx.Client) -> None:
    with RawClient(server) as raw:
        raw.get("/stream?name=stream1")
        head = raw.head()
        assert head.header(b"transfer-encoding") == b"chunked"
        assert raw.chunk() == b"chunk-1\n"  # the generator is still blocked on the event
        assert client.get("/set", params={"name": "stream1"}).text == "set"
        assert raw.chunk() == b"chunk-2\n"
        assert raw.chunk() is None


def test_streaming_response_http10_is_close_delimited(server: Server, client: httpx.Client) -> None:
    with RawClient(server) as raw:
        raw.get("/stream?name=stream10", version=b"1.0")
        head = raw.head()
        assert head.header(b"transfer-encoding") is None
        assert raw.exactly(8) == b"chunk-1\n"
        client.get("/set", params={"name": "stream10"})
        assert raw.until_eof() == b"chunk-2\n"


def test_write_callable(client: httpx.Client) -> None:
    assert client.get("/write").text == "written-1\nwritten-2\nreturned-3\n"


def test_empty_chunks_are_skipped(client: httpx.Client) -> None:
    assert client.get("/empty-chunks").text == "ab"


def test_status_reason_and_repeated_headers(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/custom-status")
        response = raw.response()
    assert (response.status, response.reason) == (299, b"Custom Reason")
    assert response.header_all(b"x-multi") == [b"1", b"2"]


def test_app_connection_close_is_honoured(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/connection-close")
        response = raw.response()
        assert response.header(b"connection") == b"close"
        assert raw.until_eof() == b""


def test_head_request(client: httpx.Client) -> None:
    response = client.head("/write")
    assert response.status_code == 200
    assert response.content == b""


# ---------------------------------------------------------------------- close()


@pytest.mark.parametrize("mode", ["list", "ok", "error", "error-first", "file"])
def test_close_is_always_called(client: httpx.Client, tmp_path: Path, big_file: Path, mode: str) -> None:
    record = tmp_path / "close.txt"
    name = f"close-{mode}"
    params = {"mode": mode, "name": name, "file": str(record), "path": str(big_file)}
    if mode == "error":  # fails after the first chunk: the connection is aborted
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/close-recorder", params=params)
        assert client.get("/wait", params={"name": name}).text == "set"
        assert record.read_text() == f"closed {name}\n"
        return
    response = client.get("/close-recorder", params=params)
    if mode in ("list", "ok"):
        assert response.status_code == 200
    elif mode == "file":
        assert sha256(response.content) == sha256(big_file.read_bytes())
    elif mode == "error-first":
        assert response.status_code == 500
    assert client.get("/wait", params={"name": name}).text == "set"
    assert record.read_text() == f"closed {name}\n"


def test_close_on_error_mid_stream_aborts(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    record = tmp_path / "close.txt"
    with RawClient(server) as raw:
        raw.get(f"/close-recorder?mode=error&name=close-abort&file={record}")
        assert raw.head().status == 200
        assert raw.chunk() == b"a"
        assert_aborted(raw)  # nothing after the first chunk: no "b", no last chunk
    assert client.get("/wait", params={"name": "close-abort"}).text == "set"
    assert record.read_text() == "closed close-abort\n"


def test_close_on_client_disconnect(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    record = tmp_path / "close.txt"
    raw = RawClient(server)
    raw.get(f"/close-recorder?mode=disconnect&name=close-gone&file={record}")
    assert raw.head().status == 200
    assert raw.chunk() == b"first\n"
    raw.reset()  # the client vanishes while the app is blocked before its next chunk
    assert client.get("/set", params={"name": "close-gone-go"}).text == "set"
    assert client.get("/wait", params={"name": "close-gone"}).text == "set"
    assert record.read_text() == "closed close-gone\n"


# ---------------------------------------------------------------------- errors


def test_app_exception_is_500_and_server_keeps_serving(server: Server, client: httpx.Client) -> None:
    response = client.get("/error-before")
    assert response.status_code == 500
    assert "secret-detail" not in response.text
    wait_for_stderr(server, "RuntimeError: secret-detail-in-wsgi-app")  # (the error log is written by a thread)
    assert client.get("/write").status_code == 200


def test_exception_after_first_chunk_aborts(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/error-after")
        assert raw.head().status == 200
        assert raw.chunk() == b"partial\n"
        assert_aborted(raw)  # never the last chunk: the client can tell the body is cut off


def test_exc_info_before_headers_sent_replaces_response(client: httpx.Client) -> None:
    response = client.get("/exc-info-early")
    assert response.status_code == 500
    assert response.text == "handled"


def test_exc_info_after_headers_sent_reraises(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/exc-info-late")
        assert raw.head().status == 200
        assert raw.chunk() == b"started\n"
        assert_aborted(raw)  # neither the 500 nor the app's later b"never\n"


def test_start_response_twice_without_exc_info_is_an_error(client: httpx.Client) -> None:
    assert client.get("/start-twice").text.startswith("AssertionError: start_response() called a second time")


@pytest.mark.parametrize("path", ["/no-start", "/hop-by-hop"])
def test_broken_apps_get_500(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 500


def test_body_shorter_than_content_length_aborts(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/wrong-length")
        head = raw.head()
        assert head.header(b"content-length") == b"100"
        assert_aborted(raw, rest=b"too short")  # 9 of the 100 declared bytes, then the end


# ---------------------------------------------------------------------- file_wrapper


@pytest.mark.parametrize(
    ("params", "start", "stop"),
    [({}, 0, None), ({"seek": "1000"}, 1000, None), ({"seek": "1000", "length": "500"}, 1000, 1500)],
)
def test_file_wrapper_uses_sendfile(client: httpx.Client, big_file: Path, params: dict[str, str], start: int,
                                    stop: int | None) -> None:
    before = client.get("/file-reads").text
    response = client.get("/file-wrapper", params={"path": str(big_file), **params})
    expected = big_file.read_bytes()[start:stop]
    assert response.headers["content-length"] == str(len(expected))
    assert sha256(response.content) == sha256(expected)
    assert client.get("/file-reads").text == before, "the file was read() by Python, not sent with sendfile"


def test_file_wrapper_head(client: httpx.Client, big_file: Path) -> None:
    response = client.head("/file-wrapper", params={"path": str(big_file)})
    assert response.headers["content-length"] == str(big_file.stat().st_size)
    assert response.content == b""


def test_file_wrapper_over_non_file_is_iterated(client: httpx.Client) -> None:
    assert client.get("/file-wrapper-bytesio").content == b"in-memory " * 1000


# ---------------------------------------------------------------------- threads


def test_requests_run_concurrently(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=15) as one, httpx.Client(base_url=server.url, timeout=15) as two:
        with ThreadPoolExecutor(2) as executor:
            results = list(executor.map(lambda c: c.get("/barrier", params={"name": "b1", "n": "2"}).text, [one, two]))
    assert results == ["together", "together"]


def test_a_burst_of_blocking_requests_gets_the_whole_pool(server: Server) -> None:
    # A batch of jobs wakes one thread; when the jobs block (each waits until all 8 are in
    # the app: the whole pool, --threads 8), the rest get theirs once the oldest has waited
    # ``BACKLOG_WAIT``.
    def fetch(_: int) -> str:
        return httpx.get(server.url + "/barrier", params={"name": "burst8", "n": "8"}, timeout=20).text

    with ThreadPoolExecutor(8) as executor:
        results = list(executor.map(fetch, range(8)))
    assert results == ["together"] * 8


def test_hung_app_blocks_only_its_thread(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["wsgi_app:app", "--threads", "2", "--no-access-log", "--graceful-timeout", "2"])
    hung = RawClient(server)
    try:
        hung.get("/hang?name=h1")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/wait", params={"name": "h1-entered"}).text == "set"  # one thread now blocked
            names = {client.get("/thread-name").text for _ in range(10)}
            assert len(names) == 1  # every other request ran on the one free thread
            with ThreadPoolExecutor(8) as executor:
                names |= set(executor.map(lambda _: httpx.get(server.url + "/thread-name", timeout=10).text, range(16)))
            assert names <= {"synack-wsgi-0", "synack-wsgi-1"}  # the pool never grows past --threads
            client.get("/set", params={"name": "h1"})
        assert hung.response().body == b"released h1"
    finally:
        hung.close()


def test_contextvar_not_visible_in_next_request(server_factory) -> None:  # type: ignore[no-untyped-def]
    # one thread, so both requests certainly run on the same pool thread
    server = server_factory(["wsgi_app:app", "--threads", "1", "--no-access-log"])
    with RawClient(server) as raw:
        for n in range(3):
            raw.get(f"/contextvar?n={n}")
            assert raw.response().body == b"unset"


# ---------------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def small_server() -> Iterator[Server]:
    with running(["wsgi_app:app", "--max-body-bytes", "1000"]) as server:
        yield server


def test_413_for_declared_length(small_server: Server) -> None:
    with httpx.Client(base_url=small_server.url) as client:
        assert client.post("/echo", content=b"x" * 1001).status_code == 413
        assert client.post("/echo", content=b"x" * 1000).json()["length"] == 1000


def test_413_for_chunked_body(small_server: Server) -> None:
    with httpx.Client(base_url=small_server.url) as client:
        response = client.post("/echo", content=iter([b"x" * 600, b"x" * 600]))
    assert response.status_code == 413
    # the app saw the error while reading; the server answered and carries on
    with httpx.Client(base_url=small_server.url) as client:
        assert client.get("/write").status_code == 200


def test_pool_threads_are_named(client: httpx.Client) -> None:
    assert client.get("/thread-name").text.startswith("synack-wsgi-")


def test_many_parallel_requests(server: Server) -> None:
    def fetch(index: int) -> str:
        with httpx.Client(base_url=server.url, timeout=15) as client:
            return client.post("/echo", params={"mode": "read"}, content=b"%d" % index).json()["sha256"]

    with ThreadPoolExecutor(16) as executor:
        results = list(executor.map(fetch, range(64)))
    assert results == [sha256(b"%d" % index) for index in range(64)]


def test_a_file_handed_over_after_the_request_was_cancelled_is_closed(tmp_path: Path) -> None:
    # The graceful timeout cancels (aborts) the request while the app still runs in its
    # thread; what the thread hands over afterwards (an open file to send) must still be
    # closed, and nothing is sent.
    path = tmp_path / "file"
    path.write_bytes(b"x" * 1000)
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        entered.set()
        release.wait(10)
        start_response("200 OK", [])
        file = open(path, "rb")  # noqa: SIM115 (closed by the server, through the wrapper)

        def close() -> None:
            file.close()
            closed.set()

        wrapper = environ["wsgi.file_wrapper"](file)
        wrapper.close = close
        return wrapper

    async def body() -> None:
        handler = WSGIHandler(app, threads=1)
        protocol, transport = Harness(handler).connect()
        protocol.data_received(GET)
        assert await _until(entered.is_set)
        protocol.cancel()
        release.set()
        assert await _until(closed.is_set)
        assert transport.aborted and not transport.received
        handler.pool.shutdown()

    run(body)


async def _until(condition: Callable[[], bool]) -> bool:
    """Let the loop run (the pool threads answer through it) until ``condition()``, at most 10 s."""
    for _ in range(1000):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def test_concurrent_requests_each_get_their_own_answer() -> None:
    # Finished jobs come back to the loop in batches (one wakeup for all that finished
    # meanwhile): 64 connections with 3 pipelined requests each, 4 threads, and every
    # response reaches its own connection, in order.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    async def body() -> None:
        handler = WSGIHandler(app, threads=4)
        harness = Harness(handler)
        connections = [harness.connect() for _ in range(64)]
        for index, (protocol, _) in enumerate(connections):
            protocol.data_received(b"".join(b"GET /%d/%d HTTP/1.1\r\nHost: t\r\n\r\n" % (index, n)
                                            for n in range(3)))
        assert await _until(lambda: all(count_responses(bytes(t.queue)) == 3 for _, t in connections))
        for index, (_, transport) in enumerate(connections):
            bodies = [response.partition(b"\r\n\r\n")[2] for response in transport.take().split(b"HTTP/1.1 ")[1:]]
            assert bodies == [b"/%d/%d" % (index, n) for n in range(3)]
        handler.pool.shutdown()

    run(body)


def test_jobs_finished_while_the_loop_is_busy_wake_it_once() -> None:
    # The bridge's batching: a thread posts 100 finished jobs while the loop is blocked; one
    # call_soon_threadsafe carries them all, each done() runs once, in order. Then 8 threads
    # post at once while the loop runs: none is lost or run twice.
    async def body() -> None:
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop)
        wakeups = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return call_soon_threadsafe(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        seen: list[Any] = []

        def done(argument: Any, result: Any, error: BaseException | None) -> None:
            seen.append((argument, result, error))

        poster = threading.Thread(target=lambda: [bridge.post(done, n, n * 2, None) for n in range(100)])
        poster.start()
        poster.join(10)  # the loop is blocked here: nothing is drained yet
        assert await _until(lambda: len(seen) == 100)
        assert seen == [(n, n * 2, None) for n in range(100)]
        assert wakeups == 1
        seen.clear()
        posters = [threading.Thread(target=lambda t=t: [bridge.post(done, (t, n), None, None) for n in range(500)])
                   for t in range(8)]
        for thread in posters:
            thread.start()
        assert await _until(lambda: len(seen) >= 4000 and not any(thread.is_alive() for thread in posters))
        await asyncio.sleep(0.05)  # (a duplicate would show up by now)
        assert sorted(argument for argument, _, _ in seen) == sorted((t, n) for t in range(8) for n in range(500))

    run(body)


def test_an_app_exception_is_a_500_with_its_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    def failing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("raised in the app thread")

    async def body() -> None:
        handler = WSGIHandler(failing_app, threads=2)
        protocol, transport = Harness(handler).connect()
        protocol.data_received(GET)
        assert await _until(lambda: bool(transport.queue))
        assert transport.take().startswith(b"HTTP/1.1 500 ")
        assert transport.ended and not transport.aborted  # a graceful close after the 500
        handler.pool.shutdown()

    with caplog.at_level(logging.ERROR, logger="synack.error"):
        run(body)
    failures = [record for record in caplog.records if record.exc_info]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert "GET / HTTP/1.1" in failures[0].getMessage()
    frames = [frame.name for frame in traceback.extract_tb(failures[0].exc_info[2])]
    assert "failing_app" in frames


def test_contextvar_not_visible_in_pipelined_request(server_factory) -> None:  # type: ignore[no-untyped-def]
    # The next pipelined request starts on the loop from inside the previous one's completion;
    # it must not inherit anything the app set (one thread: the same one runs both).
    server = server_factory(["wsgi_app:app", "--threads", "1", "--no-access-log"])
    with RawClient(server) as raw:
        raw.send(b"".join(b"GET /contextvar?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in range(4)))
        assert [raw.response().body for _ in range(4)] == [b"unset"] * 4


def test_environ_keys_stay_exact_across_many_distinct_field_names(client: httpx.Client) -> None:
    # Field names → environ keys are remembered, in a bounded table emptied when full: more
    # distinct names than it holds, and each request still gets exactly its own fields.
    for batch in range(8):
        names = [f"x-field-{batch}-{index}" for index in range(90)]
        headers = {name: f"{batch}.{index}" for index, name in enumerate(names)}
        headers["x_underscored"] = "dropped"  # never HTTP_X_UNDERSCORED (a spoofing vector)
        environ = client.get("/environ/x", headers=headers).json()
        seen = {key: value for key, value in environ.items() if key.startswith("HTTP_X_")}
        assert seen == {"HTTP_" + name.upper().replace("-", "_"): value
                        for name, value in headers.items() if "_" not in name}
