"""Request-line tables (RFC 9112 §3, §2.3): bytes in, Request fields or a status out."""

from __future__ import annotations

import pytest

from synack.h1 import NEED_DATA, Limits, RemoteProtocolError

from .helpers import feed, first_request, parse, status_of


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
    (b"CONNECT example.com: HTTP/1.1", 400),  # ... a non-empty one
    (b"CONNECT a,b:443 HTTP/1.1", 400),  # and obeys the Host grammar (RFC 9112 §3.2.3)
    (b"CONNECT user@example.com:443 HTTP/1.1", 400),
    (b"CONNECT example.com:65536 HTTP/1.1", 400),
    (b"CONNECT [::1:443 HTTP/1.1", 400),
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


def test_absolute_form_authority_replaces_host() -> None:
    # RFC 9112 §3.2.2: the server MUST ignore the Host field and use the target's authority.
    request = first_request(
        with_line(b"GET http://a.example:8080/p?q=1 HTTP/1.1", b"X: 1\r\nHost: b.example\r\n")
    )
    assert request.target == b"http://a.example:8080/p?q=1"  # verbatim, for logs and RAW_URI
    assert (request.path, request.query, request.host) == (b"/p", b"q=1", b"a.example:8080")
    assert request.fields == [(b"x", b"1"), (b"host", b"a.example:8080")]
    assert request.headers.raw_items() == [(b"X", b"1"), (b"Host", b"a.example:8080")]


def test_absolute_form_without_host_field_gains_one() -> None:
    request = first_request(with_line(b"GET http://a.example HTTP/1.0", host=b""))
    assert (request.path, request.query, request.host) == (b"/", b"", b"a.example")
    assert request.fields == [(b"host", b"a.example")]
    assert request.headers.raw_items() == [(b"host", b"a.example")]


TARGETS = [
    # (request line, path, query, host): the facts every adapter reads, computed once.
    (b"GET / HTTP/1.1", b"/", b"", b"example.com"),
    (b"GET /a/b?c=d&e=%20 HTTP/1.1", b"/a/b", b"c=d&e=%20", b"example.com"),
    (b"GET /?q=/x?y HTTP/1.1", b"/", b"q=/x?y", b"example.com"),
    (b"GET /p? HTTP/1.1", b"/p", b"", b"example.com"),
    (b"GET /%2F%3F HTTP/1.1", b"/%2F%3F", b"", b"example.com"),  # still percent-encoded
    (b"GET http://h.example HTTP/1.1", b"/", b"", b"h.example"),
    (b"GET http://h.example?x HTTP/1.1", b"/", b"x", b"h.example"),
    (b"GET http://h.example/ HTTP/1.1", b"/", b"", b"h.example"),
    (b"GET https://[::1]:8443//a/../b?c?d HTTP/1.1", b"//a/../b", b"c?d", b"[::1]:8443"),
    (b"GET HTTP://H.Example:/x HTTP/1.1", b"/x", b"", b"H.Example:"),
    (b"OPTIONS * HTTP/1.1", b"*", b"", b"example.com"),
]


@pytest.mark.parametrize(("line", "path", "query", "host"), TARGETS)
def test_target_facts(line: bytes, path: bytes, query: bytes, host: bytes) -> None:
    # Each twice: the fast head path (Host only) and the general one (another special field).
    for extra in (b"", b"Connection: keep-alive\r\n"):
        request = first_request(with_line(line, b"Host: example.com\r\n" + extra))
        assert (request.path, request.query, request.host) == (path, query, host), extra
        assert request.headers.get(b"host") == host


def test_http10_without_host_has_no_host() -> None:
    request = first_request(with_line(b"GET /x?y HTTP/1.0", host=b""))
    assert (request.path, request.query, request.host) == (b"/x", b"y", None)


@pytest.mark.parametrize("target", [
    b"http://user@h.example/",  # RFC 9110 §4.2.4: userinfo is an error
    b"http://user:pw@h.example/",
    b"http:///p",  # RFC 9110 §4.2.1: an empty host is invalid
    b"http://?q",
    b"http://h.example:http/",
    b"http://h.example:99999/",
    b"http://[::1/",
    b"http://a,b/",
    b"http://h.example/p#frag",
    b"http://h.example#frag",
])
def test_absolute_form_with_a_bad_authority_is_refused(target: bytes) -> None:
    assert status_of(with_line(b"GET " + target + b" HTTP/1.1")) == 400


@pytest.mark.parametrize("target", [b"/#", b"/a#b", b"/a?b#c", b"#"])
def test_fragment_in_target_is_refused(target: bytes) -> None:
    # RFC 9112 §3.2: no request-target form has a fragment; a "#" makes the line invalid.
    assert status_of(with_line(b"GET " + target + b" HTTP/1.1")) == 400
    assert status_of(with_line(b"GET " + target + b" HTTP/1.1", b"Host: h\r\nX: y\r\n")) == 400


# --- a first line that cannot start an HTTP/1.x head is refused as soon as that is certain


@pytest.mark.parametrize(("start", "status"), [
    (b"GET /\r\n", 400),  # HTTP/0.9 simple request: no version, no head will follow
    (b"GET / HTTP/1.1 extra\r\n", 400),
    (b"GET / HTTP/2.0\r\n", 505),
    (b"GET / HTTP/0.9\r\n", 505),
    (b"CONNECT example.com:443 HTTP/1.1\r\n", 501),
    (b"GET * HTTP/1.1\r\n", 400),
    (b"GET http://u@h/ HTTP/1.1\r\n", 400),
    (b"GET / HTTP/1.1\r\r\n", 400),
    (b"\x16\x03\x01\x00\xa5", 400),  # a TLS ClientHello: no line end needed
    (b"GET  ", 400),
    (b" GET", 400),
    (b"GET / http", 400),
    (b"GET / HTTP/1.1 ", 400),
])
def test_refused_before_the_head_ends(start: bytes, status: int) -> None:
    # No EOF and no end of head: the verdict must come from these bytes alone (before the
    # fix, "GET /\r\n" waited for more input until the driver's head timeout).
    for pieces in ([start], [start[:3], start[3:]], [bytes([byte]) for byte in start]):
        _, error, _ = feed([piece for piece in pieces if piece], eof=False)
        assert error is not None and error.status == status, (pieces, error)


@pytest.mark.parametrize("start", [
    b"", b"G", b"GET", b"GET ", b"GET /", b"GET / ", b"GET / H", b"GET / HTTP/1.", b"GET / HTTP/1.1",
    b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n",
    b"GET / HTTP/10.12", b"PRI * HTTP/2.0", b"\r\n\r\nGET", b"OPTIONS *",
])
def test_a_possible_start_waits_for_more(start: bytes) -> None:
    events, error, connection = feed([start], eof=False)
    assert (events, error) == ([], None)
    assert connection.next_event() is NEED_DATA


def test_a_bare_lf_first_line_is_checked_when_allowed() -> None:
    limits = Limits(allow_bare_lf=True)
    _, error, _ = feed([b"GET /\n"], limits, eof=False)
    assert error is not None and error.status == 400
    assert feed([b"GET / HTTP/1.1\n"], limits, eof=False)[1] is None


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
