"""The request-target as every adapter sees it: path, query and host come from the HTTP core's
``Request`` (split once, absolute-form included: RFC 9112 §3.2.2), so ASGI, WSGI and static
files agree, and WSGI's CONTENT_LENGTH is the length the core framed the body by."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.apps.static_path import StaticError, parse_path
from synack.h1 import Limits, RemoteProtocolError
from synack.h1.reader import parse_head
from tests.apps.static_support import fetch, serve_for_module, write
from tests.conftest import Server
from tests.helpers import RawClient, running


def request_for(target: bytes, host: bytes = b"b.example", version: bytes = b"1.1"):  # type: ignore[no-untyped-def]
    head = b"GET " + target + b" HTTP/" + version + (b"\r\nHost: " + host if host else b"")
    return parse_head(head, Limits())


# ---------------------------------------------------------------- static: the path rules


@pytest.mark.parametrize("target, parts, slash, query", [
    (b"/", (), True, b""),
    (b"/a/b.txt", ("a", "b.txt"), False, b""),
    (b"/a/", ("a",), True, b""),
    (b"/a//b", ("a", "b"), False, b""),
    (b"/%E2%82%AC.txt?x=1", ("\u20ac.txt",), False, b"x=1"),
    (b"/a%20b", ("a b",), False, b""),
    (b"/%252e%252e/", ("%2e%2e",), True, b""),  # decoded once only
    (b"http://example.com/a/b?q", ("a", "b"), False, b"q"),
    (b"http://example.com", (), True, b""),
    (b"http://example.com?x", (), True, b"x"),
    (b"/a?b/../c", ("a",), False, b"b/../c"),  # the query is not part of the path
    (b"/...", ("...",), False, b""),
])
def test_static_paths_from_the_request(target: bytes, parts: tuple[str, ...], slash: bool, query: bytes) -> None:
    request = request_for(target)
    parsed = parse_path(request.path, request.query)
    assert (parsed.parts, parsed.trailing_slash, parsed.query) == (parts, slash, query)


@pytest.mark.parametrize("target, status", [
    (b"/../x", 404), (b"/a/./b", 404), (b"/%2e%2e/x", 404), (b"/a%2fb", 404), (b"/a%5Cb", 404),
    (b"/a\\b", 404), (b"/%00", 404), (b"/a%zz", 400), (b"/a%", 400), (b"/%c0%ae", 400),
    (b"/%ed%a0%80", 400), (b"http://h/%2e%2e/x", 404), (b"http://h/a%2fb", 404),
])
def test_static_refused_paths(target: bytes, status: int) -> None:
    request = request_for(target)
    with pytest.raises(StaticError) as caught:
        parse_path(request.path, request.query)
    assert caught.value.status == status


def test_static_refuses_the_asterisk_form() -> None:
    request = parse_head(b"OPTIONS * HTTP/1.1\r\nHost: h", Limits())
    with pytest.raises(StaticError) as caught:
        parse_path(request.path, request.query)
    assert caught.value.status == 400


@pytest.mark.parametrize("target", [b"a/b", b"/a#b", b"http://u@h/a"])
def test_targets_no_adapter_sees(target: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        request_for(target)
    assert caught.value.status == 400


# ---------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def asgi() -> Iterator[Server]:
    with running(["asgi_app:app"]) as server:
        yield server


@pytest.fixture(scope="module")
def wsgi() -> Iterator[Server]:
    with running(["wsgi_app:app"]) as server:
        yield server


@pytest.fixture(scope="module")
def static() -> Iterator[Server]:
    root = Path(tempfile.mkdtemp(prefix="synack-target-"))
    try:
        write(root / "dir" / "hello.txt", "hello\n")
        yield from serve_for_module(root)
    finally:
        shutil.rmtree(root)


def exchange(server: Server, request: bytes) -> dict:  # type: ignore[type-arg]
    with RawClient(server) as raw:
        raw.send(request)
        response = raw.response()
    assert response.status == 200, response.body
    return json.loads(response.body)  # type: ignore[no-any-return]


def test_asgi_absolute_form_authority_is_the_host(asgi: Server) -> None:
    scope = exchange(asgi, b"GET http://a.example:8080/scope/x%20y?k=v HTTP/1.1\r\n"
                           b"X-First: 1\r\nHost: b.example\r\n\r\n")
    assert scope["headers"] == [["x-first", "1"], ["host", "a.example:8080"]]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope/x y", "/scope/x%20y", "k=v")


def test_asgi_absolute_form_http10_without_host(asgi: Server) -> None:
    scope = exchange(asgi, b"GET http://a.example/scope/p HTTP/1.0\r\n\r\n")
    assert scope["headers"] == [["host", "a.example"]]
    assert (scope["path"], scope["query_string"]) == ("/scope/p", "")


def test_asgi_origin_form_keeps_host(asgi: Server) -> None:
    scope = exchange(asgi, b"GET /scope/p?a?b HTTP/1.1\r\nHost: b.example:81\r\n\r\n")
    assert scope["headers"] == [["host", "b.example:81"]]
    assert (scope["path"], scope["query_string"]) == ("/scope/p", "a?b")


def test_wsgi_absolute_form_authority_is_the_host(wsgi: Server) -> None:
    environ = exchange(wsgi, b"GET http://a.example:8080/environ/x%20y?k=v HTTP/1.1\r\n"
                             b"Host: b.example\r\n\r\n")
    assert environ["HTTP_HOST"] == "a.example:8080"
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/environ/x y", "k=v")
    assert environ["REQUEST_URI"] == "http://a.example:8080/environ/x%20y?k=v"  # as received


def test_wsgi_absolute_form_without_path(wsgi: Server) -> None:
    environ = exchange(wsgi, b"GET http://a.example?x=1 HTTP/1.1\r\nHost: b.example\r\n\r\n")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["HTTP_HOST"]) == ("/", "x=1", "a.example")


@pytest.mark.parametrize("value, expected", [(b"3", "3"), (b"3, 3", "3"), (b"003", "3"), (b"0", "0")])
def test_wsgi_content_length_is_the_parsed_value(wsgi: Server, value: bytes, expected: str) -> None:
    body = b"abc"[: int(expected)]
    environ = exchange(wsgi, b"POST /environ/x HTTP/1.1\r\nHost: h\r\nContent-Length: " + value
                             + b"\r\nContent-Length: " + value + b"\r\n\r\n" + body)
    assert environ["CONTENT_LENGTH"] == expected
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_wsgi_chunked_body_has_no_content_length(wsgi: Server) -> None:
    environ = exchange(wsgi, b"POST /environ/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n0\r\n\r\n")
    assert "CONTENT_LENGTH" not in environ


def test_static_absolute_form(static: Server) -> None:
    reply = fetch(static, "http://other.example/dir/hello.txt?x=1")
    assert (reply.status, reply.body) == (200, b"hello\n")
    # The directory redirect is built from the path the core split off, query kept.
    reply = fetch(static, "http://other.example/dir?x=1")
    assert reply.status in (301, 308) and reply.header("location") == "/dir/?x=1"


@pytest.mark.parametrize("start", [b"GET /\r\n", b"GET /index.html\r\n", b"\x16\x03\x01\x02\x00\x01\x00"])
def test_a_line_that_starts_no_http11_head_gets_400_at_once(asgi: Server, start: bytes) -> None:
    # An HTTP/0.9 simple request (or a TLS ClientHello) can never become an HTTP/1.x head: the
    # answer is 400 now, not a 408 when the head timeout (10 s by default) runs out.
    with RawClient(asgi, timeout=30) as raw:
        raw.send(start)
        response = raw.response()
        raw.expect_eof()
    assert response.status == 400
    assert b"request line" in response.body
