"""The static-file HTTP rules as pure functions: dates, entity tags, preconditions (RFC 9110
§13.2.2), Range parsing and planning (§14), Accept-Encoding (§12.5.3), media types, and the
hostile values of each (issue 10 Low #6). Fast tables; the same rules are exercised end to end
elsewhere (request-target decoding: tests/apps/test_target.py)."""

from __future__ import annotations

import calendar

import pytest

from synack.apps.static_http import (
    Variant,
    check_preconditions,
    choose_encoding,
    content_type,
    if_range_allows,
    make_etag,
    parse_range,
    plan_ranges,
)
from synack.httpdate import format_http_date as http_date
from synack.httpdate import parse_http_date

# RFC 9110 §5.6.7's example instant, in its three accepted forms.
EXAMPLE = calendar.timegm((1994, 11, 6, 8, 49, 37))


@pytest.mark.parametrize("text", [
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sunday, 06-Nov-94 08:49:37 GMT",
    b"Sun Nov  6 08:49:37 1994",
])
def test_http_date_forms(text: bytes) -> None:
    assert parse_http_date(text, now=calendar.timegm((2024, 1, 1, 0, 0, 0))) == EXAMPLE


@pytest.mark.parametrize("text", [
    b"", b"yesterday", b"Sun, 06 Nov 1994 08:49:37 UTC", b"Sun, 6 Nov 1994 08:49:37 GMT",
    b"Sun, 31 Feb 1994 08:49:37 GMT", b"Sun, 06 Nov 1994 25:49:37 GMT", b"1994-11-06T08:49:37Z",
    b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
])
def test_invalid_http_dates(text: bytes) -> None:
    assert parse_http_date(text) is None


def test_http_date_round_trip() -> None:
    assert http_date(EXAMPLE) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(http_date(1_700_000_000)) == 1_700_000_000


def test_rfc850_two_digit_year_is_the_recent_past() -> None:
    now = calendar.timegm((2024, 6, 1, 0, 0, 0))
    assert parse_http_date(b"Monday, 01-Jan-73 00:00:00 GMT", now=now) == calendar.timegm((2073, 1, 1, 0, 0, 0))
    assert parse_http_date(b"Tuesday, 01-Jan-75 00:00:00 GMT", now=now) == calendar.timegm((1975, 1, 1, 0, 0, 0))


def test_etags_are_strong_and_distinct_per_file() -> None:
    tag = make_etag(0x1A, 1024, 1_700_000_000_123_456_789)
    assert tag.startswith(b'"') and tag.endswith(b'"') and not tag.startswith(b"W/")
    assert make_etag(0x1B, 1024, 1_700_000_000_123_456_789) != tag
    assert make_etag(0x1A, 1025, 1_700_000_000_123_456_789) != tag
    assert make_etag(0x1A, 1024, 1_700_000_000_123_456_790) != tag


# ---------------------------------------------------------------- preconditions

V = Variant(b'"abc"', EXAMPLE)
OLDER = b"Sat, 05 Nov 1994 08:49:37 GMT"
SAME = b"Sun, 06 Nov 1994 08:49:37 GMT"
NEWER = b"Mon, 07 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize("fields, method, expected", [
    ({}, b"GET", None),
    # If-Match: strong comparison, "*", lists, weak tags never match.
    ({b"if-match": [b'"abc"']}, b"GET", None),
    ({b"if-match": [b'"xyz"']}, b"GET", 412),
    ({b"if-match": [b"*"]}, b"GET", None),
    ({b"if-match": [b'"x", "abc"']}, b"GET", None),
    ({b"if-match": [b'"x"', b'"abc"']}, b"GET", None),
    ({b"if-match": [b'W/"abc"']}, b"GET", 412),
    ({b"if-match": [b"garbage"]}, b"GET", 412),
    # If-Unmodified-Since, only without If-Match.
    ({b"if-unmodified-since": [OLDER]}, b"GET", 412),
    ({b"if-unmodified-since": [SAME]}, b"GET", None),
    ({b"if-unmodified-since": [NEWER]}, b"GET", None),
    ({b"if-unmodified-since": [b"not a date"]}, b"GET", None),
    ({b"if-match": [b'"abc"'], b"if-unmodified-since": [OLDER]}, b"GET", None),
    # If-None-Match: weak comparison, "*", lists; 304 for GET/HEAD.
    ({b"if-none-match": [b'"abc"']}, b"GET", 304),
    ({b"if-none-match": [b'W/"abc"']}, b"GET", 304),
    ({b"if-none-match": [b'W/"abc"']}, b"HEAD", 304),
    ({b"if-none-match": [b'"x", W/"abc"']}, b"GET", 304),
    ({b"if-none-match": [b"*"]}, b"GET", 304),
    ({b"if-none-match": [b'"xyz"']}, b"GET", None),
    ({b"if-none-match": [b'"a,bc"']}, b"GET", None),
    # If-Modified-Since only without If-None-Match.
    ({b"if-modified-since": [SAME]}, b"GET", 304),
    ({b"if-modified-since": [NEWER]}, b"GET", 304),
    ({b"if-modified-since": [OLDER]}, b"GET", None),
    ({b"if-modified-since": [b"garbage"]}, b"GET", None),
    ({b"if-modified-since": [SAME, SAME]}, b"GET", None),
    ({b"if-none-match": [b'"xyz"'], b"if-modified-since": [NEWER]}, b"GET", None),
    # Order: If-Match failure wins over everything after it.
    ({b"if-match": [b'"xyz"'], b"if-none-match": [b'"abc"']}, b"GET", 412),
    ({b"if-unmodified-since": [OLDER], b"if-none-match": [b'"abc"']}, b"GET", 412),
])
def test_precondition_matrix(fields: dict[bytes, list[bytes]], method: bytes, expected: int | None) -> None:
    assert check_preconditions(method, fields, V) == expected


@pytest.mark.parametrize("value, allowed", [
    (b'"abc"', True), (b'"xyz"', False), (b'W/"abc"', False), (SAME, True), (OLDER, False),
    (NEWER, False), (b"garbage", False),
])
def test_if_range(value: bytes, allowed: bool) -> None:
    assert if_range_allows(value, V) is allowed


# ---------------------------------------------------------------- ranges (RFC 9110 §14.1.2 examples, 10000 bytes)


@pytest.mark.parametrize("header, plan", [
    (b"bytes=0-499", [(0, 499)]),
    (b"bytes=500-999", [(500, 999)]),
    (b"bytes=-500", [(9500, 9999)]),
    (b"bytes=9500-", [(9500, 9999)]),
    (b"bytes=0-0,-1", [(0, 0), (9999, 9999)]),
    (b"bytes=0-999,4500-5499,-1000", [(0, 999), (4500, 5499), (9000, 9999)]),
    (b"bytes=500-600,601-999", [(500, 999)]),  # adjacent: coalesced
    (b"bytes=500-700,601-999", [(500, 999)]),  # overlapping: coalesced
    (b"bytes=5000-5100, 0-100", [(0, 100), (5000, 5100)]),  # sorted
    (b"bytes=0-100,150-200", [(0, 200)]),  # a gap smaller than a part header
    (b"bytes=9000-20000", [(9000, 9999)]),  # last-pos past the end is clamped
    (b"bytes=-20000", [(0, 9999)]),
    (b"BYTES = 0-1", [(0, 1)]),
    (b"bytes=0-1,,2-3", [(0, 3)]),
    (b"bytes=10000-", []),  # unsatisfiable → 416
    (b"bytes=-0", []),
    (b"bytes=10000-10005,20000-", []),
    (b"bytes=0-,0-,0-", None),  # overlapping beyond the size → whole file
    (b"bytes=" + b",".join(b"%d-%d" % (i * 100, i * 100) for i in range(17)), None),  # > 16 ranges
])
def test_range_plans(header: bytes, plan: list[tuple[int, int]] | None) -> None:
    specs = parse_range(header)
    assert specs is not None
    assert plan_ranges(specs, 10_000) == plan


@pytest.mark.parametrize("header", [
    b"bytes=", b"bytes=abc", b"bytes=5-1", b"bytes=1-2-3", b"bytes=--1", b"items=0-1", b"bytes 0-1",
    b"bytes=0x10-20", b"bytes=1.5-2", b"bytes=-", b"bytes=0-1,x",
])
def test_invalid_range_syntax_is_ignored(header: bytes) -> None:
    assert parse_range(header) is None


def test_empty_file_ignores_ranges() -> None:
    assert plan_ranges([(0, 10)], 0) is None


# ---------------------------------------------------------------- Accept-Encoding

ALL = [b"br", b"zstd", b"gzip"]


@pytest.mark.parametrize("accept, available, chosen", [
    (None, ALL, None),  # no Accept-Encoding: identity
    ([], ALL, None),  # empty: identity only
    ([b"gzip, deflate, br, zstd"], ALL, b"br"),
    ([b"gzip"], ALL, b"gzip"),
    ([b"x-gzip"], ALL, b"gzip"),
    ([b"zstd, gzip"], ALL, b"zstd"),
    ([b"gzip;q=1.0, br;q=0.5"], ALL, b"gzip"),
    ([b"br;q=0, gzip"], ALL, b"gzip"),
    ([b"br;q=0, gzip;q=0"], ALL, None),
    ([b"*"], ALL, b"br"),
    ([b"*;q=0.5, br;q=0"], ALL, b"zstd"),
    ([b"*;q=0"], ALL, None),
    ([b"gzip;q=0.5, identity"], ALL, None),  # identity preferred by q
    ([b"gzip;q=0.5, identity;q=0.5"], ALL, b"gzip"),  # a tie goes to the compressed one
    ([b"gzip;q=0.5"], ALL, b"gzip"),  # identity, not named, never outranks a named coding
    ([b"identity;q=0, gzip;q=0.1"], ALL, b"gzip"),
    ([b"br"], [b"gzip"], None),
    ([b"gzip;q=bogus"], ALL, None),
    ([b"GZIP"], ALL, b"gzip"),
])
def test_accept_encoding(accept: list[bytes] | None, available: list[bytes], chosen: bytes | None) -> None:
    lowered = None if accept is None else [part.strip().lower() for value in accept for part in value.split(b",")
                                           if part.strip()]
    assert choose_encoding(lowered, available) == chosen


# ---------------------------------------------------------------- media types


@pytest.mark.parametrize("name, expected", [
    ("a.html", b"text/html; charset=utf-8"),
    ("a.HTML", b"text/html; charset=utf-8"),
    ("a.css", b"text/css; charset=utf-8"),
    ("a.js", b"text/javascript; charset=utf-8"),
    ("a.mjs", b"text/javascript; charset=utf-8"),
    ("a.json", b"application/json; charset=utf-8"),
    ("a.xml", b"text/xml; charset=utf-8"),
    ("a.svg", b"image/svg+xml; charset=utf-8"),
    ("a.png", b"image/png"),
    ("a.wasm", b"application/wasm"),
    ("a.woff2", b"font/woff2"),
    ("a.tar.gz", b"application/gzip"),
    ("a.unknownext", b"application/octet-stream"),
    ("Makefile", b"application/octet-stream"),
    (".bashrc", b"application/octet-stream"),
])
def test_content_types(name: str, expected: bytes) -> None:
    assert content_type(name) == expected


# ---------------------------------------------------------------- hostile values (issue 10 Low #6)

DIGITS = b"9" * 4400  # past Python's 4,300-digit int() limit


@pytest.mark.parametrize("text", [
    b"Sun, 06 Nov 0000 08:49:37 GMT", b"Sun Nov  6 08:49:37 0000", b"Mon, 01 Jan 0000 00:00:00 GMT",
    b"Sat, 29 Feb 2001 00:00:00 GMT", b"Sat, 01 Jan 2000 00:00:61 GMT", b"Sat, 01 Jan 2000 00:60:00 GMT",
    b"Sat, 00 Jan 2000 00:00:00 GMT", b"Sun Nov  0 08:49:37 1994", b"Sunday, 00-Nov-94 08:49:37 GMT",
    b"Sat, 01 Jan " + DIGITS + b" 00:00:00 GMT", b"Sat, 01 Jan 20000 00:00:00 GMT",
    "Sat, \u0660\u0661 Jan 2000 00:00:00 GMT".encode(), b"Sat, \xb9\xb2 Jan 2000 00:00:00 GMT",
])
def test_impossible_dates_are_invalid_not_errors(text: bytes) -> None:
    assert parse_http_date(text) is None


def test_the_calendar_edges_parse() -> None:
    assert parse_http_date(b"Mon, 01 Jan 0001 00:00:00 GMT") == calendar.timegm((1, 1, 1, 0, 0, 0))
    assert parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799
    assert parse_http_date(b"Fri, 31 Dec 9999 23:59:60 GMT") == 253_402_300_799  # leap second
    assert parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT") == calendar.timegm((2000, 2, 29, 0, 0, 0))


@pytest.mark.parametrize("seconds, text", [
    (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
    (-1, b"Thu, 01 Jan 1970 00:00:00 GMT"),  # clamped: never a pre-epoch Last-Modified
    (-10**30, b"Thu, 01 Jan 1970 00:00:00 GMT"),
    (float("nan"), b"Thu, 01 Jan 1970 00:00:00 GMT"),
    (2**40, b"Fri, 31 Dec 9999 23:59:59 GMT"),  # a tmpfs mtime in year 36812: four digits only
    (2**62, b"Fri, 31 Dec 9999 23:59:59 GMT"),  # past what gmtime() can convert
    (float("inf"), b"Fri, 31 Dec 9999 23:59:59 GMT"),
    (1_700_000_000.999, b"Tue, 14 Nov 2023 22:13:20 GMT"),
])
def test_http_dates_are_always_valid(seconds: float, text: bytes) -> None:
    assert http_date(seconds) == text


def test_formatter_matches_the_email_module() -> None:
    # The driver's Date header used email.utils.formatdate; the shared formatter is identical.
    import email.utils
    import random

    generator = random.Random(1994)
    for seconds in [0, 59, 86_399, 951_782_400, 253_402_300_799] + [generator.uniform(0, 4e9) for _ in range(2000)]:
        assert http_date(seconds) == email.utils.formatdate(seconds, usegmt=True).encode()


@pytest.mark.parametrize("header, plan", [
    (b"bytes=-" + DIGITS, [(0, 9999)]),  # a suffix longer than the file: all of it
    (b"bytes=0-" + DIGITS, [(0, 9999)]),
    (b"bytes=" + DIGITS + b"-", []),
    (b"bytes=" + b"9" * 20 + b"-", []),
    (b"bytes=" + b"0" * 4400 + b"5-" + b"0" * 4400 + b"7", [(5, 7)]),  # leading zeros are fine
    (b"bytes=9223372036854775807-", []),
    (b"bytes=-9223372036854775807", [(0, 9999)]),
])
def test_huge_positions(header: bytes, plan: list[tuple[int, int]]) -> None:
    specs = parse_range(header)
    assert specs is not None
    assert plan_ranges(specs, 10_000) == plan


@pytest.mark.parametrize("header", [
    b"bytes=" + b"2" * 4400 + b"-" + b"1" * 4400,  # first-pos > last-pos, both huge
    b"bytes=" + b"1" * 4401 + b"-" + b"9" * 4400,
    b"bytes=10-09", b"bytes=00010-0009",
    "bytes=\u0660-\u0661".encode(), b"bytes=\xb9-\xb2",
])
def test_huge_or_foreign_positions_that_are_invalid(header: bytes) -> None:
    assert parse_range(header) is None
