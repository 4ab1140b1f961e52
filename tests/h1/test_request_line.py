"""Request-line tables (RFC 9112 §3, §2.3): bytes in, Request fields or a status out."""

from __future__ import annotations

import pytest

from synack.h1 import Limits, RemoteProtocolError

from .helpers import first_request, parse, status_of


def with_line(line: bytes, host: bytes = b"Host: example.com\r\n") -> bytes:
    return line + b"\r\n" + host + b"\r\n"


ACCEPTED = [
    # (request line, method, target, version)
    (b"GET / HTTP/1.1", b"GET", b"/", b"1.1"),
    (b"GET /a/b?c=d&e=%20 HTTP/1.1", b"GET", b"/a/b?c=d&e=%20", b"1.1"),
    (b"GET /?q=/x?y HTTP/1.1", b"GET", b"/?q=/x?y", b"1.1"),
    (b"POST /upload HTTP/1.0", b"POST", b"/upload", b"1.0"),
    (b"GET http://example.com/x HTTP/1.1", b"GET", b"http://example.com/x", b"1.1"),
    (b"GET https://example.com:8443 HTTP/1.1", b"GET", b"https://example.com:8443", b"1.1"),
    (b"OPTIONS * HTTP/1.1", b"OPTIONS", b"*", b"1.1"),
    (b"OPTIONS / HTTP/1.1", b"OPTIONS", b"/", b"1.1"),
    (b"get / HTTP/1.1", b"get", b"/", b"1.1"),  # methods are case-sensitive tokens
    (b"PROPFIND /dav HTTP/1.1", b"PROPFIND", b"/dav", b"1.1"),
    (b"!#$%&'*+-.^_`|~09 / HTTP/1.1", b"!#$%&'*+-.^_`|~09", b"/", b"1.1"),
    (b"GET / HTTP/1.9", b"GET", b"/", b"1.1"),  # RFC 9110 §2.5: higher minor → 1.1
]


@pytest.mark.parametrize(("line", "method", "target", "version"), ACCEPTED)
def test_accepted_request_lines(line: bytes, method: bytes, target: bytes, version: bytes) -> None:
    request = first_request(with_line(line))
    assert (request.method, request.target, request.http_version) == (method, target, version)


REJECTED = [
    # (request line, status)
    (b"CONNECT example.com:443 HTTP/1.1", 501),
    (b"CONNECT [::1]:443 HTTP/1.1", 501),
    (b"CONNECT example.com HTTP/1.1", 400),  # authority-form needs a port
    (b"CONNECT / HTTP/1.1", 400),
    (b"CONNECT * HTTP/1.1", 400),
    (b"GET * HTTP/1.1", 400),
    (b"POST * HTTP/1.1", 400),
    (b"GET example.com:80 HTTP/1.1", 400),
    (b"GET example.com HTTP/1.1", 400),
    (b"GET ://x HTTP/1.1", 400),
    (b"GET 1http://x/ HTTP/1.1", 400),
    (b"G(T / HTTP/1.1", 400),
    (b"GE\x00T / HTTP/1.1", 400),
    (b"G\xc3\xa9T / HTTP/1.1", 400),
    (b"GET /\xff HTTP/1.1", 400),
    (b"GET /\x7f HTTP/1.1", 400),
    (b"GET /a\tb HTTP/1.1", 400),
    (b"GET / HTTP/1.1 extra", 400),
    (b"GET / HTTP/1.1\t", 400),
    (b"GET  / HTTP/1.1", 400),
    (b"GET / HTTP/1.1 ", 400),
    (b" GET / HTTP/1.1", 400),
    (b"GET /", 400),
    (b"GET", 400),
    (b"", 400),
    (b"/ HTTP/1.1", 400),
    (b"GET / HTTP/1.x", 400),
    (b"GET / HTTP/", 400),
    (b"GET / HTTPS/1.1", 400),
    (b"GET / http/1.1", 400),
    (b"GET / HTTP/1.1.1", 400),
    (b"GET / HTTP/2.0", 505),
    (b"GET / HTTP/2", 505),
    (b"GET / HTTP/3.0", 505),
    (b"GET / HTTP/0.9", 505),
    (b"GET / HTTP/10.0", 505),
    (b"GET / HTTP/1.10", 505),
    (b"PRI * HTTP/2.0", 505),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00", 400),  # a TLS ClientHello on the plain port
]


@pytest.mark.parametrize(("line", "status"), REJECTED)
def test_rejected_request_lines(line: bytes, status: int) -> None:
    assert status_of(with_line(line)) == status


def test_http10_does_not_need_host() -> None:
    request = first_request(with_line(b"GET / HTTP/1.0", host=b""))
    assert request.http_version == b"1.0" and request.headers == []


def test_absolute_form_is_kept_verbatim_with_its_host() -> None:
    request = first_request(with_line(b"GET http://a.example/p HTTP/1.1", b"Host: b.example\r\n"))
    assert request.target == b"http://a.example/p"
    assert request.headers.get(b"host") == b"b.example"


def test_error_carries_status_and_message() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse(with_line(b"GET / HTTP/2.0"))
    assert caught.value.status == 505
    assert "version" in caught.value.message


def test_leading_empty_lines_are_ignored() -> None:
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
    request = first_request(b"\r\n\r\n\r\n" + with_line(b"GET /x HTTP/1.1"))
    assert request.target == b"/x"


def test_leading_bare_lf_is_refused_unless_allowed() -> None:
    data = b"\n" + with_line(b"GET / HTTP/1.1")
    assert status_of(data) == 400
    assert first_request(data, Limits(allow_bare_lf=True)).target == b"/"
