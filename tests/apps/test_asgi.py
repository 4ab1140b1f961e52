"""ASGI 3 http over a real synack subprocess (fixture: tests/fixtures/apps/asgi_app.py).

Raw sockets where the bytes matter (streaming, trailers, 103, aborts); httpx elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import RawClient, assert_aborted, random_file, running, sha256
from tests.server.helpers import wait_for_stderr

# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(["asgi_app:app"]) as server:
        yield server


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_file(tmp_path_factory, "asgi", 3 * 1024 * 1024 + 17)


# ---------------------------------------------------------------------- scope


def test_scope_is_complete(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"GET /scope/caf%C3%A9%20x/%2F?q=a%20b&x=1 HTTP/1.1\r\nHost: example.test\r\n"
                 b"X-Dup: one\r\nMixed-Case: Value\r\nX-Dup: two\r\n\r\n")
        response = raw.response()
        local_port = raw.sock.getsockname()[1]
    assert response.status == 200
    scope = json.loads(response.body)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/café x//"
    assert scope["raw_path"] == "/scope/caf%C3%A9%20x/%2F"
    assert scope["query_string"] == "q=a%20b&x=1"
    assert scope["root_path"] == ""
    assert scope["headers"] == [["host", "example.test"], ["x-dup", "one"], ["mixed-case", "Value"],
                                ["x-dup", "two"]]
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert set(scope["extensions"]) >= {"http.response.pathsend", "http.response.zerocopysend",
                                        "http.response.trailers", "http.response.early_hint"}
    assert scope["state"] == ["shared", "started"]


def test_scope_http10_and_absolute_form(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"PURGE http://example.test/scope/abs?k=v HTTP/1.0\r\nHost: example.test\r\n\r\n")
        scope = json.loads(raw.response().body)
    assert scope["http_version"] == "1.0"
    assert scope["method"] == "PURGE"
    assert scope["path"] == "/scope/abs"
    assert scope["query_string"] == "k=v"


def test_scope_invalid_utf8_path_is_replaced_but_raw_path_exact(client: httpx.Client) -> None:
    scope = client.get("/scope/%FF%C3%A9").json()
    assert scope["path"] == "/scope/\ufffdé"
    assert scope["raw_path"] == "/scope/%FF%C3%A9"


def test_root_path_is_prefixed(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["asgi_app:app", "--root-path", "/api", "--no-access-log"])
    with httpx.Client(base_url=server.url, timeout=10) as client:
        scope = client.get("/scope/x%20y").json()
    # uvicorn's --root-path: a proxy stripped /api; the app sees the full path and its root.
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/x y"
    assert scope["raw_path"] == "/api/scope/x%20y"


# ---------------------------------------------------------------------- receive


def test_body_chunks_with_more_body(client: httpx.Client) -> None:
    data = os.urandom(2 * 1024 * 1024)
    result = client.post("/echo", content=data).json()
    assert result["length"] == len(data)
    assert result["sha256"] == sha256(data)
    assert len(result["sizes"]) > 1, "a 2 MB body should arrive in several http.request messages"
    assert result["more_body"] == [True] * (len(result["sizes"]) - 1) + [False]


def test_chunked_request_body(client: httpx.Client) -> None:
    pieces = [os.urandom(1000) for _ in range(20)]
    result = client.post("/echo", content=iter(pieces)).json()  # an iterator: httpx sends chunked
    assert result["sha256"] == sha256(b"".join(pieces))
    assert result["more_body"][-1] is False


def test_empty_body_is_one_message(client: httpx.Client) -> None:
    result = client.get("/echo").json()
    assert result["sizes"] == [0]
    assert result["more_body"] == [False]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_is_streamed_not_buffered(server: Server, chunked: bool) -> None:
    first, rest = b"a" * 100, b"b" * 9900
    with RawClient(server) as raw:
        if chunked:
            raw.send(b"POST /first-chunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"64\r\n" + first + b"\r\n")
        else:
            raw.send(b"POST /first-chunk HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n" + first)
        response = raw.head()
        assert response.status == 200
        # The app answered with the first chunk while the rest had not been sent yet.
        assert raw.chunk() == b"first:" + first + b"\n"
        raw.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest) if chunked else rest)
        assert raw.chunk() == b"total:10000\n"
        assert raw.chunk() is None


def test_disconnect_when_client_leaves_mid_body(server: Server, client: httpx.Client) -> None:
    with RawClient(server) as raw:
        raw.send(b"POST /mid-body?name=mid1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 300)
    assert client.get("/wait", params={"name": "mid1"}).text == "disconnect after 300"


def test_disconnect_after_body_only_when_client_leaves(server: Server, client: httpx.Client) -> None:
    with RawClient(server) as raw:
        raw.send(b"POST /disconnect-after-body?name=gone1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        raw.head()
        assert raw.chunk() == b"waiting\n"  # the app is now parked in receive()
    assert client.get("/wait", params={"name": "gone1"}).text == "http.disconnect"


def test_receive_wakes_with_disconnect_once_response_complete(client: httpx.Client) -> None:
    assert client.get("/receive-after-response", params={"name": "rar1"}).text == "sent"
    early, parked, later = json.loads(client.get("/wait", params={"name": "rar1"}).text)
    assert early == "pending"  # nothing to say while the response was unfinished
    assert parked == "http.disconnect"
    assert later == "http.disconnect"


def test_no_disconnect_while_connected_and_response_pending(client: httpx.Client) -> None:
    assert client.get("/no-early-disconnect").text == "no message"


# ---------------------------------------------------------------------- send errors


def test_exception_before_start_is_500_without_details(server: Server, client: httpx.Client) -> None:
    response = client.get("/raise-before")
    assert response.status_code == 500
    assert "secret-detail" not in response.text
    assert "Traceback" not in response.text
    wait_for_stderr(server, "RuntimeError: secret-detail-before-start")  # (the error log is written by a thread)
    assert client.get("/echo").status_code == 200  # still serving


def test_exception_after_start_aborts_connection(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/raise-after")
        head = raw.head()
        assert head.status == 200
        assert raw.chunk() == b"partial"
        assert_aborted(raw)  # nothing more, above all never the last chunk: the body is cut off


@pytest.mark.parametrize("path", ["/no-response", "/start-only"])
def test_app_returning_without_response_is_500(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 500


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("body-first", "unexpected ASGI message 'http.response.body' in state START: expected 'http.response.start'"),
        ("start-twice", "unexpected ASGI message 'http.response.start' in state BODY"),
        ("bad-status", "'status' must be an int"),
        ("bad-headers", "headers must be an iterable of [name, value] byte-string pairs"),
        ("bad-headers-triple", "headers must be an iterable of [name, value] byte-string pairs"),
        ("bad-headers-int", "headers must be an iterable of [name, value] byte-string pairs"),
        ("str-body", "'body' must be bytes, got str"),
        ("unknown-type", "unexpected ASGI message 'http.response.bogus' in state BODY"),
        ("no-type", "ASGI message must be a dict with a 'type'"),
        ("trailers-unannounced", "unexpected ASGI message 'http.response.trailers' in state BODY"),
    ],
)
def test_malformed_or_out_of_order_messages_raise_in_app(client: httpx.Client, kind: str, expected: str) -> None:
    response = client.get("/bad-order", params={"kind": kind})
    assert response.status_code == 200
    assert response.text.startswith("ASGIProtocolError: ")
    assert expected in response.text


def test_message_after_complete_raises(client: httpx.Client) -> None:
    assert client.get("/after-complete", params={"name": "ac1"}).text == "done"
    note = client.get("/wait", params={"name": "ac1"}).text
    assert note == "ASGIProtocolError: unexpected ASGI message 'http.response.body' after the response completed"


# ---------------------------------------------------------------------- contextvars and state


def test_contextvar_not_visible_in_next_request_on_same_connection(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/contextvar?n=1")
        assert raw.response().body == b"unset"
        raw.get("/contextvar?n=2")
        assert raw.response().body == b"unset"


def test_contextvar_not_visible_in_pipelined_request(server: Server) -> None:
    with RawClient(server) as raw:
        raw.send(b"".join(b"GET /contextvar?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in range(3)))
        bodies = [raw.response().body for _ in range(3)]
    assert bodies == [b"unset"] * 3


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_task_factory_the_app_installs_makes_every_request_task(server_factory, loop: str) -> None:  # type: ignore[no-untyped-def]
    # Error trackers and monitors install one (Sentry's asyncio integration): request tasks
    # must come from it, one request at a time and pipelined alike.
    server = server_factory(["task_factory_app:app", "--loop", loop, "--no-access-log"])
    with RawClient(server) as raw:
        answers = []
        for _ in range(2):
            raw.get("/")
            answers.append(json.loads(raw.response().body))
        raw.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
        answers += [json.loads(raw.response().body) for _ in range(3)]
    assert [answer["by_factory"] for answer in answers] == [True] * 5, answers


def test_request_tasks_are_named(client: httpx.Client) -> None:
    # Python 3.11 names them all "synack-request" (formatting "Task-<n>" cost a hello request
    # 2 % of its instructions); 3.12 and later keep the default, made only when asked for.
    names = {client.get("/task-name").text for _ in range(3)}
    if sys.version_info < (3, 12):
        assert names == {"synack-request"}
    else:
        assert len(names) == 3 and all(name.startswith("Task-") for name in names), names


def test_lifespan_state_is_copied_into_each_request(client: httpx.Client) -> None:
    first = client.get("/state").json()
    second = client.get("/state").json()
    assert first["keys"] == second["keys"] == ["shared", "started"]  # a request's additions don't leak
    assert first["started"] == "yes"
    assert second["shared"] == first["shared"] + 1  # shallow copy: shared objects stay shared


# ---------------------------------------------------------------------- extensions


def test_pathsend(client: httpx.Client, big_file: Path) -> None:
    response = client.get("/pathsend", params={"path": str(big_file)})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(big_file.stat().st_size)
    assert sha256(response.content) == sha256(big_file.read_bytes())


def test_pathsend_missing_file_is_500(client: httpx.Client, tmp_path: Path) -> None:
    # open() fails inside send(); the head was held back, so a clean 500 can still go out
    assert client.get("/pathsend", params={"path": str(tmp_path / "vanished")}).status_code == 500


@pytest.mark.parametrize(
    ("params", "start", "stop"),
    [
        ({}, 0, None),
        ({"length": "1"}, 0, None),
        ({"offset": "1000", "count": "5000"}, 1000, 6000),
        ({"offset": "1000", "count": "5000", "length": "1"}, 1000, 6000),
        ({"offset": "123457"}, 123457, None),
        ({"count": "777"}, 0, 777),
    ],
)
def test_zerocopysend(client: httpx.Client, big_file: Path, params: dict[str, str], start: int,
                      stop: int | None) -> None:
    response = client.get("/zerocopy", params={"path": str(big_file), **params})
    assert response.status_code == 200
    assert response.content == big_file.read_bytes()[start:stop]
    if params.get("length") != "1":
        assert response.headers["transfer-encoding"] == "chunked"


def test_zerocopysend_pieces_continue_from_file_position(client: httpx.Client, big_file: Path) -> None:
    response = client.get("/zerocopy-pieces", params={"path": str(big_file), "piece": "300000"})
    assert sha256(response.content) == sha256(big_file.read_bytes())
    assert client.get("/wait", params={"name": "zerocopy-position"}).text == str(big_file.stat().st_size)


def test_trailers_over_chunked(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/trailers", b"TE: trailers\r\n")
        response = raw.response()
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.body == b"".join(b"line %d\n" % i for i in range(100))
    assert response.trailers == [(b"x-checksum", sha256(response.body).encode()), (b"x-count", b"100")]


def test_trailers_dropped_for_http10(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/trailers", version=b"1.0")
        response = raw.response()
        assert response.header(b"transfer-encoding") is None
    assert response.body == b"".join(b"line %d\n" % i for i in range(100))  # and nothing after it
    assert response.header(b"x-checksum") is None and response.header(b"x-count") is None


def test_early_hints_103(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/early-hint")
        response = raw.response()
    assert response.informational == [(103, [(b"link", b"</style.css>; rel=preload; as=style"),
                                             (b"link", b"</app.js>; rel=preload; as=script")])]
    assert response.status == 200
    assert response.body == b"with hints"


def test_no_early_hints_for_http10(server: Server) -> None:
    with RawClient(server) as raw:
        raw.get("/early-hint", version=b"1.0")
        response = raw.response()
        raw.expect_eof()
    assert response.informational == []  # no 1xx for an HTTP/1.0 client (RFC 9110 §15.2)
    assert response.status == 200
    assert response.body == b"with hints"


def test_file_extensions_with_native_sendfile(server_factory, big_file: Path) -> None:  # type: ignore[no-untyped-def]
    # The default loop may be uvloop (chunked reads); force asyncio's os.sendfile path too.
    server = server_factory(["asgi_app:app", "--loop", "asyncio", "--no-access-log"])
    expected = big_file.read_bytes()
    with httpx.Client(base_url=server.url, timeout=15) as client:
        assert sha256(client.get("/pathsend", params={"path": str(big_file)}).content) == sha256(expected)
        partial = client.get("/zerocopy", params={"path": str(big_file), "offset": "5", "count": "2000000"})
        assert partial.content == expected[5:2000005]


def test_a_scope_is_the_requests_own_whatever_the_app_did_to_the_last_one() -> None:
    # Each scope starts from a shared template: what an app writes into one (its top level,
    # its "asgi" dict, the "extensions" dict's own keys) must not reach the next request's.
    from synack.apps.asgi import _SCOPE, ASGIHandler
    from tests.server.harness import Harness, run, settle

    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(dict(scope, asgi=dict(scope["asgi"]), extensions=dict(scope["extensions"])))
        scope["method"] = "MANGLED"
        scope["mine"] = True
        scope["asgi"]["version"] = "9.9"
        scope["extensions"]["mine"] = {}
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def body() -> None:
        protocol, transport = Harness(ASGIHandler(app, lifespan="off")).connect()
        for head in (b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", b"POST /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                     b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"):
            protocol.data_received(head)
            await settle()
        assert transport.take().count(b"HTTP/1.1 200 ") == 3

    template = dict(_SCOPE)
    run(body)
    assert _SCOPE == template  # (the template itself is never written)
    first, second, third = scopes
    assert (first["method"], first["path"], first["query_string"], first["http_version"]) == ("GET", "/a", b"x=1", "1.1")
    assert (second["method"], second["path"], second["query_string"], second["http_version"]) == ("POST", "/b", b"", "1.0")
    assert (third["method"], third["path"], third["http_version"]) == ("GET", "/c", "1.1")
    for scope in scopes:
        assert "mine" not in scope and "mine" not in scope["extensions"]
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
        assert (scope["type"], scope["scheme"], scope["root_path"]) == ("http", "http", "")
        assert list(scope)[:13] == ["type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                                    "query_string", "root_path", "headers", "client", "server", "extensions"]
