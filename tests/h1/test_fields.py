"""Header-field tables (RFC 9110 §5, RFC 9112 §5): names, values, folding, line endings, Host,
Connection, Expect and Upgrade."""

from __future__ import annotations

import pytest

from synack.h1 import Framing, Headers, Limits, split_list

from .helpers import first_request, status_of

START = b"GET / HTTP/1.1\r\nHost: example.com\r\n"


def with_fields(*lines: bytes, start: bytes = START) -> bytes:
    return start + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


FIELDS_ACCEPTED = [
    # (field line, (name, value) as reported)
    (b"X-A: b", (b"x-a", b"b")),
    (b"X-A:b", (b"x-a", b"b")),
    (b"X-A:   b  ", (b"x-a", b"b")),
    (b"X-A:\tb\t", (b"x-a", b"b")),
    (b"X-A: b  c\td", (b"x-a", b"b  c\td")),
    (b"X-A:", (b"x-a", b"")),
    (b"X-A:   ", (b"x-a", b"")),
    (b"X-A: :b:", (b"x-a", b":b:")),
    (b"X-A: \x80\xff", (b"x-a", b"\x80\xff")),
    (b"X-A: \"quoted, string\"", (b"x-a", b'"quoted, string"')),
    (b"CONTENT-TYPE: text/plain", (b"content-type", b"text/plain")),
    (b"x-!#$%&'*+.^_`|~: v", (b"x-!#$%&'*+.^_`|~", b"v")),
]


@pytest.mark.parametrize(("line", "pair"), FIELDS_ACCEPTED)
def test_accepted_fields(line: bytes, pair: tuple[bytes, bytes]) -> None:
    request = first_request(with_fields(line))
    assert list(request.headers)[1] == pair


FIELDS_REJECTED = [
    b"X-A : b",  # RFC 9112 §5.1: no whitespace between name and colon
    b"X-A\t: b",
    b" X-A: b",  # whitespace-led line right after another field: obs-fold
    b"X A: b",
    b"X-A",
    b": b",
    b"X(A): b",
    b"X-\xe9: b",
    b"X-A: b\x00c",  # RFC 9110 §5.5: NUL, CR, LF are invalid
    b"X-A: b\rc",
    b"X-A: b\x0bc",
    b"X-A: b\x1fc",
    b"X-A: b\x7fc",
    b"X-A: \x00",
]


@pytest.mark.parametrize("line", FIELDS_REJECTED)
def test_rejected_fields(line: bytes) -> None:
    assert status_of(with_fields(line)) == 400


def test_raw_names_are_kept_and_duplicates_ordered() -> None:
    request = first_request(with_fields(b"X-Dup: 1", b"Other: o", b"x-dup: 2"))
    headers = request.headers
    assert headers.get_all(b"x-dup") == [b"1", b"2"]
    assert headers.get(b"x-dup") == b"1"
    assert headers.get(b"missing") is None
    assert headers.get(b"missing", b"d") == b"d"
    assert headers.raw_items() == [
        (b"Host", b"example.com"), (b"X-Dup", b"1"), (b"Other", b"o"), (b"x-dup", b"2")
    ]


def test_headers_list_helpers() -> None:
    headers = Headers([(b"accept", b"a, B ,,c"), (b"accept", b" d"), (b"x", b"y")])
    assert headers.get_list(b"accept") == [b"a", b"b", b"c", b"d"]
    assert split_list(b" , ,") == []
    assert headers == [(b"accept", b"a, B ,,c"), (b"accept", b" d"), (b"x", b"y")]
    assert headers != Headers([(b"x", b"y")])
    assert len(headers) == 3 and headers[2] == (b"x", b"y")


# --- obs-fold (RFC 9112 §5.2)


def test_obs_fold_rejected_by_default() -> None:
    assert status_of(with_fields(b"X-A: one", b" two")) == 400
    assert status_of(with_fields(b"X-A: one", b"\ttwo")) == 400


def test_obs_fold_replaced_with_space_when_allowed() -> None:
    limits = Limits(allow_obs_fold=True)
    request = first_request(with_fields(b"X-A: one", b" \t two  ", b"\tthree", b"X-B: b"), limits)
    assert request.headers.get(b"x-a") == b"one two three"
    assert request.headers.get(b"x-b") == b"b"
    empty_first = first_request(with_fields(b"X-A:", b" two"), limits)
    assert empty_first.headers.get(b"x-a") == b"two"


def test_obs_fold_still_checked_when_allowed() -> None:
    limits = Limits(allow_obs_fold=True)
    assert status_of(with_fields(b"X-A: one", b" t\x00wo"), limits) == 400
    # A continuation with no field before it is whitespace after the request line: 400.
    assert status_of(b"GET / HTTP/1.1\r\n folded: x\r\nHost: h\r\n\r\n", limits) == 400


def test_obs_fold_cannot_smuggle_transfer_encoding() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n"
    assert status_of(raw) == 400
    # Unfolded, the coding list is "x chunked": one unknown coding, still not chunked → 400.
    assert status_of(raw, Limits(allow_obs_fold=True)) == 400


# --- line endings (RFC 9112 §2.2)

BARE_LF_HEADS = [
    b"GET / HTTP/1.1\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\n",
    b"GET / HTTP/1.1\nHost: h\n\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: 1\nY: 2\r\n\r\n",
]


@pytest.mark.parametrize("raw", BARE_LF_HEADS)
def test_bare_lf_rejected_by_default(raw: bytes) -> None:
    assert status_of(raw) == 400
    assert status_of([raw[i : i + 1] for i in range(len(raw))]) == 400


@pytest.mark.parametrize("raw", BARE_LF_HEADS)
def test_bare_lf_accepted_when_allowed(raw: bytes) -> None:
    request = first_request(raw, Limits(allow_bare_lf=True))
    assert request.headers.get(b"host") == b"h"


def test_bare_cr_is_never_a_line_ending() -> None:
    for limits in (Limits(), Limits(allow_bare_lf=True)):
        assert status_of(b"GET / HTTP/1.1\rHost: h\r\n\r\n", limits) == 400
        assert status_of(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", limits) == 400


# --- Host (RFC 9112 §3.2, RFC 9110 §7.2)

HOSTS = [
    (b"Host: example.com", True),
    (b"Host: example.com:8080", True),
    (b"Host: 127.0.0.1", True),
    (b"Host: [2001:db8::1]:443", True),
    (b"Host: xn--bcher-kva.example", True),
    (b"Host:", True),
    (b"Host: a b", False),
    (b"Host: a/b", False),
    (b"Host: a@b", False),
    (b"Host: a?b", False),
    (b"Host: \xe9.example", False),
]


@pytest.mark.parametrize(("line", "ok"), HOSTS)
def test_host_values(line: bytes, ok: bool) -> None:
    raw = with_fields(line, start=b"GET / HTTP/1.1\r\n")
    assert status_of(raw) == (None if ok else 400)


def test_host_count() -> None:
    assert status_of(with_fields(start=b"GET / HTTP/1.1\r\n")) == 400
    assert status_of(with_fields(b"Host: example.com")) == 400  # START already has one
    assert status_of(with_fields(b"HOST: example.com")) == 400
    assert status_of(with_fields(b"Host: a", b"Host: a", start=b"GET / HTTP/1.0\r\n")) == 400
    assert status_of(with_fields(start=b"GET / HTTP/1.0\r\n")) is None


# --- Connection and keep-alive (RFC 9112 §9.3)

KEEP_ALIVE = [
    (b"1.1", [], True),
    (b"1.1", [b"Connection: close"], False),
    (b"1.1", [b"Connection: Close"], False),
    (b"1.1", [b"Connection: keep-alive, close"], False),
    (b"1.1", [b"Connection: keep-alive", b"Connection: close"], False),
    (b"1.1", [b"Connection: keep-alive"], True),
    (b"1.1", [b"Connection: closed"], True),  # a different token, not "close"
    (b"1.0", [], False),
    (b"1.0", [b"Connection: keep-alive"], True),
    (b"1.0", [b"Connection: Keep-Alive"], True),
    (b"1.0", [b"Connection: upgrade, keep-alive"], True),
    (b"1.0", [b"Connection: keep-alive, close"], False),
    (b"1.0", [b"Connection: keep-alive-ish"], False),
]


@pytest.mark.parametrize(("version", "lines", "keep_alive"), KEEP_ALIVE)
def test_keep_alive(version: bytes, lines: list[bytes], keep_alive: bool) -> None:
    start = b"GET / HTTP/" + version + b"\r\nHost: h\r\n"
    assert first_request(with_fields(*lines, start=start)).keep_alive is keep_alive


# --- Expect (RFC 9110 §10.1.1)

EXPECT = [
    # (version, extra lines, expect_continue or the error status)
    (b"1.1", [b"Expect: 100-continue", b"Content-Length: 3"], True),
    (b"1.1", [b"Expect: 100-CONTINUE", b"Transfer-Encoding: chunked"], True),
    (b"1.1", [b"Expect: 100-continue"], False),  # no body: nothing to wait for
    (b"1.1", [b"Expect: 100-continue", b"Content-Length: 0"], False),
    (b"1.0", [b"Expect: 100-continue", b"Content-Length: 3"], False),  # MUST be ignored
    (b"1.1", [b"Content-Length: 3"], False),
    (b"1.1", [b"Expect: 200-ok", b"Content-Length: 3"], 417),
    (b"1.1", [b"Expect: 100-continue, x-other", b"Content-Length: 3"], 417),
    (b"1.1", [b"Expect: 100-continue", b"Expect: x-other"], 417),
    (b"1.1", [b"Expect:"], 417),
    (b"1.0", [b"Expect: x-other"], 417),
]


@pytest.mark.parametrize(("version", "lines", "outcome"), EXPECT)
def test_expect(version: bytes, lines: list[bytes], outcome: bool | int) -> None:
    raw = with_fields(*lines, start=b"POST / HTTP/" + version + b"\r\nHost: h\r\n")
    if isinstance(outcome, bool):
        assert first_request(raw, eof=False).expect_continue is outcome
    else:
        assert status_of(raw) == outcome


# --- Upgrade (RFC 9110 §7.8)


def test_upgrade_needs_the_connection_token() -> None:
    asked = first_request(with_fields(b"Connection: keep-alive, Upgrade", b"Upgrade: websocket"))
    assert asked.upgrade == b"websocket"
    assert asked.framing is Framing.NONE
    not_asked = first_request(with_fields(b"Upgrade: websocket"))
    assert not_asked.upgrade is None
    no_protocol = first_request(with_fields(b"Connection: upgrade"))
    assert no_protocol.upgrade is None
