"""The two request-head paths in reader.py give the same verdict: the fast path of
``parse_head_in`` (split into lines; the request line checked piece by piece; each field line
looked up among the lines found valid before, else checked and, for names whose values are no
secret, remembered; then inline Host/Content-Length checks) and the general path
(``_parse_head_general``: line by line, then ``_build_request``).

Each generated head is strictly shaped, so ``parse_head_in`` takes its fast path (asserted:
it never falls back to the general path but for CONNECT); the general path is called
directly. Both must produce an equal ``Request`` (every dataclass field, the raw names through
``Headers.raw_items``) or a RemoteProtocolError with the same status, and so must a second
parse of the same head, from the remembered lines.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synack.h1 import Limits, RemoteProtocolError, Request, reader
from synack.h1.reader import _parse_head_general, parse_head_in

SETTINGS = settings(
    max_examples=int(os.environ.get("SYNACK_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

LIMITS = st.sampled_from([
    Limits(),
    Limits(max_body_bytes=5),
    Limits(max_body_bytes=None),
    Limits(max_header_count=3),
    Limits(max_request_line=20),
    Limits(allow_bare_lf=True, allow_obs_fold=True),
])


def spellings(name: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from([name.lower(), name.upper(), name.title(), name]).map(str.encode)


OWS = st.sampled_from([b"", b" ", b"\t", b"  \t "])

VALID_HOSTS = [b"", b"example.com", b"localhost:8000", b"a:", b"a:65535", b"[::1]", b"[::1]:80",
               b"a%20b", b"[v1.x]", b"1.2.3.4:5", b"[::ffff:1.2.3.4]:0"]
INVALID_HOSTS = [b"a:65536", b"a:123456", b"a:bc", b"a,b", b"::::", b"][", b"a:80:90", b"user@host",
                 b"[::1", b":80", b"a%zz", b"caf\xc3\xa9", b"a b", b"[fe80::1%25x]", b"a/b"]
HOSTS = st.one_of(
    st.sampled_from(VALID_HOSTS),
    st.sampled_from(VALID_HOSTS),
    st.sampled_from(VALID_HOSTS),
    st.sampled_from(VALID_HOSTS),
    st.sampled_from(INVALID_HOSTS),
    # field-vchar, SP and HTAB only, so the head keeps the strict shape
    st.binary(max_size=12).filter(
        lambda value: all(byte >= 0x20 or byte == 9 for byte in value) and 0x7F not in value
    ),
)
CONTENT_LENGTHS = st.sampled_from([
    b"0", b"3", b"5", b"6", b"0", b"3", b"5", b"6", b"3, 3", b"3,3", b"3, 4", b"", b"+3", b"-1", b"0x3", b"3 3", b"003",
    b"3,", b",3", b"999999999999999999", b"0000000000000000003", b"1" * 19, b"\xb3",
])
TRANSFER_ENCODINGS = st.sampled_from([
    b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"", b"x y, chunked",
    b",chunked", b"chunked, chunked", b'"chunked"', b"gzip;q=1, chunked", b"chunked;a=b",
])
CONNECTIONS = st.sampled_from([
    b"close", b"keep-alive", b"Keep-Alive, close", b"upgrade", b"Upgrade, close", b"", b"foo",
    b"close, close", b", keep-alive ,",
])
EXPECTS = st.sampled_from([b"100-continue", b"100-Continue", b"foo", b"", b"100-continue, foo"])
UPGRADES = st.sampled_from([b"websocket", b"h2c", b""])
OTHERS = st.sampled_from([(b"Accept", b"*/*"), (b"X-Empty", b""), (b"User-Agent", b"t \xe9 1"),
                          (b"Cookie", b"a=b; c=d")])


FIELD_VALUES = {
    "Content-Length": CONTENT_LENGTHS,
    "Transfer-Encoding": TRANSFER_ENCODINGS,
    "Connection": CONNECTIONS,
    "Expect": EXPECTS,
    "Upgrade": UPGRADES,
    # Proxy fields decide nothing in the parser but Request.forwarded, on either path.
    "X-Forwarded-For": st.sampled_from([b"203.0.113.9", b"1.2.3.4, 5.6.7.8", b""]),
    "X-Forwarded-Proto": st.sampled_from([b"https", b"http"]),
    "Forwarded": st.sampled_from([b"for=192.0.2.60;proto=https", b""]),
}


@st.composite
def field_lines(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Usually one Host (sometimes none or two) among up to four other fields, any order."""
    pairs = [(draw(spellings("Host")), draw(HOSTS))
             for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 1, 2])))]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from([*FIELD_VALUES, "Content-Length", "other"]))
        if name == "other":
            pairs.append(draw(OTHERS))
        else:
            pairs.append((draw(spellings(name)), draw(FIELD_VALUES[name])))
    return draw(st.permutations(pairs))


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"GET", b"POST", b"OPTIONS",
                                   b"get", b"CONNECT"]))
    target = draw(st.sampled_from([b"/", b"/a?b", b"/a%20b?x=%2F", b"/x?y?z", b"//a", b"/?", b"/p;q"]))
    minor = draw(st.sampled_from([b"0", b"1", b"1", b"9"]))
    lines = [method + b" " + target + b" HTTP/1." + minor]
    for name, value in draw(field_lines()):
        lines.append(name + b":" + draw(OWS) + value + draw(OWS))
    return b"\r\n".join(lines)


def verdict(parse: Any, head: bytes, limits: Limits) -> tuple[str, Any]:
    try:
        request = parse(head, len(head), limits)
    except RemoteProtocolError as error:
        return "error", error.status
    return "request", facts(request)


def facts(request: Request) -> dict[str, Any]:
    """Every field of the event. ``raw_fields`` is compared as the raw names it stands for
    (only the names are ever read)."""
    result: dict[str, Any] = {}
    for item in dataclasses.fields(request):
        if item.name == "_headers":
            continue
        if item.name == "_raw":
            result["raw_items"] = request.headers.raw_items()
            result["raw_fields"] = request.raw_fields
        else:
            result[item.name] = getattr(request, item.name)
    return result


@SETTINGS
@given(head=heads(), limits=LIMITS)
@example(head=b"GET / HTTP/1.1\r\nHost: a:bc", limits=Limits())
@example(head=b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nHost: h", limits=Limits())
@example(head=b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 999999999999999999", limits=Limits(max_body_bytes=None))
@example(head=b"GET / HTTP/1.0\r\nHost: [::1]:80", limits=Limits())
@example(head=b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0000000000000000003", limits=Limits())
def test_fast_and_general_paths_agree(head: bytes, limits: Limits) -> None:
    general = verdict(_parse_head_general, head, limits)
    with fallbacks() as calls:
        fast = verdict(parse_head_in, head, limits)
        again = verdict(parse_head_in, head, limits)  # (the remembered lines, this time)
    if SPIED:
        assert calls == ([head, head] if beyond_the_fast_path(head, limits) else []), "the head must take the fast path"
    assert fast == general
    assert again == general


#: Whether ``fallbacks`` can see the fast path's calls: compiled code (the mypyc build) calls
#: the functions of its own module directly, past any patch.
SPIED = reader.__file__.endswith(".py")


def beyond_the_fast_path(head: bytes, limits: Limits) -> bool:
    """What sends a strictly shaped head to the general path: CONNECT, or a bound exceeded."""
    lines = head.split(b"\r\n")
    return (head.startswith(b"CONNECT ") or len(lines[0]) > limits.max_request_line
            or len(lines) - 1 > limits.max_header_count or len(head) > limits.max_field_bytes)


@contextmanager
def fallbacks() -> Iterator[list[bytes]]:
    """The heads ``parse_head_in`` hands to the general path meanwhile."""
    calls: list[bytes] = []
    general = reader._parse_head_general

    def spy(buffer: bytes, end: int, limits: Limits) -> Request:
        calls.append(bytes(buffer[:end]))
        return general(buffer, end, limits)

    with mock.patch.object(reader, "_parse_head_general", spy):
        yield calls


def test_the_fast_path_returns_early_for_the_common_heads() -> None:
    # The generated heads above must exercise the fast path's own Request construction, not
    # only its fall-through to _build_request: these heads take the early returns.
    for head in (b"GET / HTTP/1.1\r\nHost: h ", b"POST / HTTP/1.1\r\nHost: h \r\nContent-Length: 3",
                 b"GET / HTTP/1.1\r\nHost: h \r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https",
                 b"GET / HTTP/1.1\r\nConnection: close\r\nHost: h"):
        expected = facts(_parse_head_general(head, len(head), Limits()))
        with mock.patch.object(reader, "_build_request", side_effect=AssertionError("not early")), \
                mock.patch.object(reader, "_parse_head_general", side_effect=AssertionError("not fast")):
            request = parse_head_in(head, len(head), Limits())
        assert facts(request) == expected, head
        assert request.forwarded == (b"Forwarded" in head)
        # In either build: the Host pair is the remembered one itself, which only the fast
        # path hands out (the general path makes its own).
        host_line = next(line for line in head.split(b"\r\n") if line.startswith(b"Host:"))
        assert request.fields[[name for name, _ in request.fields].index(b"host")] is \
            reader._FIELD_ENTRIES[host_line][0], head


# ---------------------------------------------------------------------- remembered field lines


@pytest.fixture
def empty_cache() -> Iterator[dict[bytes, Any]]:
    saved = dict(reader._FIELD_ENTRIES)
    reader._FIELD_ENTRIES.clear()
    yield reader._FIELD_ENTRIES
    reader._FIELD_ENTRIES.clear()
    reader._FIELD_ENTRIES.update(saved)


def test_lines_of_common_fields_are_remembered_and_secrets_never(empty_cache: dict[bytes, Any]) -> None:
    # A remembered line is answered faster than a new one, which a client could time to learn
    # whether somebody else sent it: only fields whose values are no secret are remembered.
    head = (b"GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"
            b"Cookie: session=s3cret\r\nAuthorization: Bearer t0ken\r\nX-Api-Key: k3y\r\n"
            b"Proxy-Authorization: Basic eDp5\r\nReferer: https://example.com/?token=t")
    request = parse_head_in(head, len(head), Limits())
    assert request.headers.get(b"cookie") == b"session=s3cret"
    assert sorted(empty_cache) == [b"Accept: */*", b"Host: example.com", b"User-Agent: curl/8.5.0"]
    assert empty_cache[b"User-Agent: curl/8.5.0"][:1] == ((b"user-agent", b"curl/8.5.0"),)
    assert request.raw_fields[1] == (b"User-Agent", b"curl/8.5.0")  # (the raw names, from the lines)
    # The second parse takes the remembered lines and gives the same request.
    again = parse_head_in(head, len(head), Limits())
    assert facts(again) == facts(request)


def test_the_remembered_lines_are_bounded(empty_cache: dict[bytes, Any]) -> None:
    long_agent = b"User-Agent: " + b"x" * reader._FIELD_ENTRY_BYTES
    for number in range(reader._FIELD_ENTRY_SIZE + 10):
        head = b"GET / HTTP/1.1\r\nHost: host%d.example\r\n%s" % (number, long_agent)
        parse_head_in(head, len(head), Limits())
        assert len(empty_cache) <= reader._FIELD_ENTRY_SIZE
    assert long_agent not in empty_cache  # (over _FIELD_ENTRY_BYTES: never remembered)
    assert b"Host: host%d.example" % (reader._FIELD_ENTRY_SIZE + 9) in empty_cache


def test_a_remembered_line_still_obeys_the_limits(empty_cache: dict[bytes, Any]) -> None:
    head = b"GET / HTTP/1.1\r\nHost: a-rather-long-host-name.example\r\nAccept: */*"
    parse_head_in(head, len(head), Limits())
    assert b"Host: a-rather-long-host-name.example" in empty_cache
    with pytest.raises(RemoteProtocolError) as error:
        parse_head_in(head, len(head), Limits(max_field_bytes=30))
    assert error.value.status == 431
    with pytest.raises(RemoteProtocolError) as error:
        parse_head_in(head, len(head), Limits(max_header_count=1))
    assert error.value.status == 431


@pytest.mark.parametrize("line", [
    b"Host : example.com",  # whitespace before the colon (RFC 9112 §5.1: 400)
    b" Host: example.com",  # obs-fold at the start
    b"Host: exa\x00mple.com",
    b"Host: exa\rmple.com",
    b"Host: exa\nmple.com",
    b"Host: exa\x7fmple.com",
    b"Host example.com",
    b"H@st: example.com",
])
def test_an_invalid_line_is_never_remembered(empty_cache: dict[bytes, Any], line: bytes) -> None:
    head = b"GET / HTTP/1.1\r\n" + line
    assert verdict(parse_head_in, head, Limits()) == verdict(_parse_head_general, head, Limits())
    assert verdict(parse_head_in, head, Limits())[0] == "error"
    assert empty_cache == {}


def test_every_byte_in_a_target_gets_the_general_verdict() -> None:
    for byte in range(256):
        head = b"GET /a%sb HTTP/1.1\r\nHost: h" % bytes([byte])
        assert verdict(parse_head_in, head, Limits()) == verdict(_parse_head_general, head, Limits()), byte
        assert (verdict(parse_head_in, head, Limits())[0] == "request") == (0x21 <= byte <= 0x7E and byte != 0x23)


@pytest.mark.parametrize("line", [
    b"get / HTTP/1.1", b"PROPFIND /a HTTP/1.1", b"GET / HTTP/1.9", b"GET /a#b HTTP/1.1", b"GET  / HTTP/1.1",
    b"GET / HTTP/1.1 ", b"GET /\x80 HTTP/1.1", b"GET / HTTP/2.0", b"GET / http/1.1", b"CONNECT a:1 HTTP/1.1",
    b"GET http://a/b HTTP/1.1", b"OPTIONS * HTTP/1.1", b"G\x00T / HTTP/1.1", b"GET /\r HTTP/1.1",
])
def test_request_lines_get_the_general_verdict(line: bytes) -> None:
    head = line + b"\r\nHost: h"
    assert verdict(parse_head_in, head, Limits()) == verdict(_parse_head_general, head, Limits())
