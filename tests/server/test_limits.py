"""Every limit and framing rule gives its status over a real socket, followed by a clean close
(the whole response, then EOF — never a reset). Also Expect: 100-continue."""

from __future__ import annotations

import pytest

from tests.helpers import Reader, get, post, running
from tests.server.helpers import APP, FAST, assert_served

LIMITS = [
    "--max-request-line", "200",
    "--max-head-bytes", "2000",
    "--max-header-count", "10",
    "--max-field-bytes", "300",
    "--max-body-bytes", "1000",
]


@pytest.fixture(scope="module")
def limited():
    with running([APP, *FAST, *LIMITS]) as server:
        yield server


@pytest.fixture(scope="module")
def unlimited():
    with running([APP, *FAST]) as server:
        yield server


# Python < 3.13 names these two statuses as RFC 7231 did; RFC 9110 renamed them.
_OLD_PHRASES = {
    b"HTTP/1.1 413 Content Too Large": b"HTTP/1.1 413 Request Entity Too Large",
    b"HTTP/1.1 414 URI Too Long": b"HTTP/1.1 414 Request-URI Too Long",
}


def status_lines(status_line: bytes) -> set[bytes]:
    return {status_line, _OLD_PHRASES.get(status_line, status_line)}


def _rejected(server, request: bytes, status_line: bytes) -> bytes:
    with server.connect() as sock:
        sock.sendall(request)
        reader = Reader(sock)
        response = reader.response()
        assert response.status_line in status_lines(status_line), response
        assert response.header(b"connection") == b"close"
        assert response.body.startswith(status_line[9:12])
        reader.expect_eof()
    assert_served(server)
    return response.body


def _head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


CASES = {
    "request-line-414": (
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        b"HTTP/1.1 414 URI Too Long",
    ),
    "request-line-414-incomplete": (  # no line end yet: detected while still receiving
        b"GET /" + b"a" * 400,
        b"HTTP/1.1 414 URI Too Long",
    ),
    "head-431": (
        _head(b"GET / HTTP/1.1", b"Host: test", *[b"X-Big-%d: " % i + b"v" * 270 for i in range(8)]),
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ),
    "head-431-incomplete": (
        b"GET / HTTP/1.1\r\nHost: test\r\n" + b"X-Filler: abc\r\n" * 200,
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ),
    "header-count-431": (
        _head(b"GET / HTTP/1.1", b"Host: test", *[b"X-N%d: v" % i for i in range(10)]),
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ),
    "field-size-431": (
        _head(b"GET / HTTP/1.1", b"Host: test", b"X-Long: " + b"v" * 400),
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ),
    "content-length-413": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Content-Length: 1001") + b"x" * 1001,
        b"HTTP/1.1 413 Content Too Large",
    ),
    "chunked-413": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: chunked")
        + (b"200\r\n" + b"c" * 512 + b"\r\n") * 3 + b"0\r\n\r\n",
        b"HTTP/1.1 413 Content Too Large",
    ),
    "bad-chunk-size-400": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: chunked") + b"zz\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "chunk-without-crlf-400": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: chunked") + b"5\r\nhelloXX0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "unsupported-te-501": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n",
        b"HTTP/1.1 501 Not Implemented",
    ),
    "te-not-chunked-400": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: gzip") + b"abc",
        b"HTTP/1.1 400 Bad Request",
    ),
    "te-and-cl-400": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Transfer-Encoding: chunked", b"Content-Length: 5")
        + b"0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "conflicting-cl-400": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Content-Length: 5", b"Content-Length: 6") + b"hello!",
        b"HTTP/1.1 400 Bad Request",
    ),
    "missing-host-400": (
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "two-hosts-400": (
        _head(b"GET / HTTP/1.1", b"Host: a", b"Host: b"),
        b"HTTP/1.1 400 Bad Request",
    ),
    "http2-505": (
        b"GET / HTTP/2.0\r\nHost: test\r\n\r\n",
        b"HTTP/1.1 505 HTTP Version Not Supported",
    ),
    "expect-foo-417": (
        _head(b"POST /echo HTTP/1.1", b"Host: test", b"Expect: foo", b"Content-Length: 3") + b"abc",
        b"HTTP/1.1 417 Expectation Failed",
    ),
    "garbage-400": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "space-before-colon-400": (
        _head(b"GET / HTTP/1.1", b"Host: test", b"X-Bad : v"),
        b"HTTP/1.1 400 Bad Request",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_limit_status_and_clean_close(limited, name):
    request, status_line = CASES[name]
    _rejected(limited, request, status_line)


def test_limits_are_inclusive(limited):
    """Requests exactly at each limit are served."""
    target = b"/" + b"a" * (200 - len(b"GET  HTTP/1.1") - 1)
    request = b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(
        b"X-N%d: v\r\n" % i for i in range(9)) + b"\r\n"
    assert len(request.split(b"\r\n")[0]) == 200
    with limited.connect() as sock:
        reader = Reader(sock)
        sock.sendall(request)
        assert reader.response().status == 200
        sock.sendall(post(b"/echo", b"y" * 1000))
        assert reader.response().body == b"y" * 1000
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3e8\r\n" + b"z" * 1000 + b"\r\n0\r\n\r\n")
        assert reader.response().body == b"z" * 1000


def test_error_after_good_pipelined_request(limited):
    """A bad request behind a good one: the good one is answered, then the error, then EOF."""
    with limited.connect() as sock:
        sock.sendall(get() + b"GET / HTTP/2.0\r\nHost: test\r\n\r\n" + get())
        reader = Reader(sock)
        assert reader.response().body == b"Hello, world!"
        assert reader.response().status_line == b"HTTP/1.1 505 HTTP Version Not Supported"
        reader.expect_eof()


# ---------------------------------------------------------------------- Expect: 100-continue

def _expect_head(path: bytes, length: int) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n" % length
            + b"Expect: 100-continue\r\n\r\n")


def test_expect_continue_sent_when_app_reads_body(unlimited):
    with unlimited.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_expect_head(b"/echo", 11))
        assert reader.line() == b"HTTP/1.1 100 Continue"
        assert reader.line() == b""
        sock.sendall(b"hello there")
        response = reader.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.informational == []
        assert response.body == b"hello there"
        # The connection stays usable.
        sock.sendall(get(extra=b"Connection: close\r\n"))
        assert reader.response().body == b"Hello, world!"
        reader.expect_eof()


def test_expect_continue_not_sent_when_app_does_not_read(unlimited):
    with unlimited.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_expect_head(b"/noread", 11))
        response = reader.response()
        assert response.informational == []  # no 100 Continue before the final response
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"ignored"
        # The body may or may not follow now, so the server cannot reuse the connection.
        assert response.header(b"connection") == b"close"
        reader.expect_eof()


def test_expect_continue_ignored_for_http10(unlimited):
    with unlimited.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        response = reader.response()
        assert response.informational == []
        assert response.body == b"hello"
        reader.expect_eof()


def test_expect_continue_body_over_limit_gets_413_without_continue(limited):
    with limited.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_expect_head(b"/echo", 5000))
        response = reader.response()
        assert response.informational == []
        assert response.status_line in status_lines(b"HTTP/1.1 413 Content Too Large")
        reader.expect_eof()
