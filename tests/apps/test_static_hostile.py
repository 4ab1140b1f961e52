"""Static files against hostile or malformed request fields, on a real server: every field the
static engine parses (Range, If-Range, the conditional dates and entity-tag lists,
Accept-Encoding, the path and query) gets its exact 2xx/3xx/4xx answer, never a 500, and the
error log stays silent (an invalid field is ignored, RFC 9110 §13.1.3, §13.1.4, §14.2; it is
not an error worth a log line, let alone a traceback per request)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apps.static_support import fetch, write
from tests.conftest import Server

DATA = bytes(i % 251 for i in range(10_000))
DIGITS = "9" * 4400  # past Python's 4,300-digit int() limit
YEAR_ZERO = [
    "Sun, 06 Nov 0000 08:49:37 GMT",
    "Sunday, 06-Nov-00 08:49:37 GMT",  # valid: 2000 (the two-digit year is never 0000)
    "Sun Nov  6 08:49:37 0000",
]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="synack-hostile-"))
    write(base / "data.bin", DATA)
    write(base / "docs" / "a.txt", "a")
    write(base / "comp" / "app.js", "x" * 100)
    write(base / "comp" / "app.js.gz", b"GZ")
    server = Server(["--port", "0", str(base)])
    try:
        yield server
        log = server.stderr_text()
    finally:
        server.close()
        shutil.rmtree(base)
    assert "Traceback" not in log
    # Only the startup lines and access lines: no warning or error for any request here.
    noisy = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert noisy == []


def short(value: object) -> str:
    """A readable test id for a (possibly huge) parameter."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}..{len(text)}"


def get(server: Server, target: str | bytes, *fields: tuple[str, str]) -> tuple[int, dict[str, list[str]], bytes]:
    reply = fetch(server, target, headers=list(fields))
    server.stderr_text()  # drain the log pipe: a full pipe would stall the server
    return reply.status, reply.headers, reply.body


# ---------------------------------------------------------------- Range


@pytest.mark.parametrize("value, status, content_range", ids=short, argvalues=[
    # Issue 10 Low #6: a suffix-length past int()'s digit limit is still a suffix-length: the
    # whole file (RFC 9110 §14.1.1: a suffix longer than the representation selects all of it).
    (f"bytes=-{DIGITS}", 206, "bytes 0-9999/10000"),
    (f"bytes=0-{DIGITS}", 206, "bytes 0-9999/10000"),  # last-pos past the end is clamped
    (f"bytes={DIGITS}-", 416, "bytes */10000"),  # first-pos past the end: unsatisfiable
    (f"bytes={'9' * 3000}-{DIGITS}", 416, "bytes */10000"),
    (f"bytes=00000000000000000000000000000001-{'0' * 4400}2", 206, "bytes 1-2/10000"),
    (f"bytes={'1' * 4400}-{'1' * 3000}", 200, None),  # first > last: invalid, ignored
    (f"bytes=0-1,{DIGITS}-", 206, "bytes 0-1/10000"),
    ("bytes=" + ",".join(["0-0"] * 2000), 200, None),  # thousands of ranges: the whole file
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 2000, 200)), 206, None),  # multipart
    ("bytes=" + "," * 6000 + "0-1", 206, "bytes 0-1/10000"),  # empty list elements
    ("bytes=-0", 416, "bytes */10000"),
    ("bytes=--5", 200, None),
    ("bytes=5--6", 200, None),
    ("bytes=-5-", 200, None),
    ("bytes=0-1;x", 200, None),
    ("bytes=+1-2", 200, None),
    ("bytes=1_0-20", 200, None),
    ("bytes=0x10-20", 200, None),
    ("bytes=1e3-2e3", 200, None),
    ("bytes = 0 - 1", 200, None),
    ("bytes=\xd9\xa0-\xd9\xa1", 200, None),  # Arabic-Indic digits: not DIGIT
    ("bytes=\xb9-\xb2", 200, None),  # superscript digits (latin-1)
    ("bytes", 200, None),
    ("=0-1", 200, None),
    ("bytes=", 200, None),
    ("chars=0-1", 200, None),
])
def test_range_values(server: Server, value: str, status: int, content_range: str | None) -> None:
    code, headers, body = get(server, "/data.bin", ("Range", value))
    assert code == status
    if content_range is not None:
        assert headers["content-range"] == [content_range]
    if status == 200:
        assert body == DATA
    if value.startswith("bytes=00000000000000000000000000000001"):
        assert body == DATA[1:3]


def test_range_on_a_precompressed_variant_with_huge_numbers(server: Server) -> None:
    code, headers, body = get(server, "/comp/app.js", ("Range", f"bytes=-{DIGITS}"), ("Accept-Encoding", "gzip"))
    assert (code, headers["content-encoding"], body) == (206, ["gzip"], b"GZ")


def test_two_range_fields_are_ignored(server: Server) -> None:
    code, _, body = get(server, "/data.bin", ("Range", "bytes=0-1"), ("Range", f"bytes=-{DIGITS}"))
    assert (code, body) == (200, DATA)


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize("field", ids=short, argvalues=["If-Modified-Since", "If-Unmodified-Since"])
@pytest.mark.parametrize("value", ids=short, argvalues=[
    "Sun, 06 Nov 0000 08:49:37 GMT",
    "Sun Nov  6 08:49:37 0000",
    "Sat, 00 Jan 2000 00:00:00 GMT",
    "Sat, 31 Feb 2000 00:00:00 GMT",
    "Sat, 29 Feb 2001 00:00:00 GMT",
    "Sat, 01 Jan 2000 24:00:00 GMT",
    "Sat, 01 Jan 2000 00:60:00 GMT",
    "Sat, 01 Jan 2000 00:00:61 GMT",
    "Sat, 01 Jan 20000 00:00:00 GMT",
    "Sat, 01 Jan -2000 00:00:00 GMT",
    f"Sat, 01 Jan {DIGITS} 00:00:00 GMT",
    f"Sat, {DIGITS} Jan 2000 00:00:00 GMT",
    "Sat, \xd9\xa0\xd9\xa1 Jan 2000 00:00:00 GMT",  # Arabic-Indic digits
    "Sat, 01 Jan 2000 00:00:00 GMT" * 200,
    "-1",
    DIGITS,
    "",
    "Sunday, 06-Nov-94 08:49:37 UTC",
])
def test_invalid_dates_are_ignored(server: Server, field: str, value: str) -> None:
    code, _, body = get(server, "/data.bin", (field, value))
    assert (code, body) == (200, DATA)


def test_year_9999_is_a_valid_date(server: Server) -> None:
    late = "Fri, 31 Dec 9999 23:59:59 GMT"
    assert get(server, "/data.bin", ("If-Modified-Since", late))[0] == 304
    assert get(server, "/data.bin", ("If-Unmodified-Since", late))[0] == 200
    leap = "Fri, 31 Dec 9999 23:59:60 GMT"  # a leap second counts as :59
    assert get(server, "/data.bin", ("If-Modified-Since", leap))[0] == 304
    early = "Mon, 01 Jan 0001 00:00:00 GMT"
    assert get(server, "/data.bin", ("If-Modified-Since", early))[0] == 200
    assert get(server, "/data.bin", ("If-Unmodified-Since", early))[0] == 412


@pytest.mark.parametrize("value", ids=short, argvalues=[*YEAR_ZERO, f"Sat, 01 Jan {DIGITS} 00:00:00 GMT", "W/", '"', DIGITS, "*"])
def test_if_range_that_does_not_match_sends_the_whole_file(server: Server, value: str) -> None:
    code, headers, body = get(server, "/data.bin", ("Range", "bytes=0-1"), ("If-Range", value))
    assert (code, body) == (200, DATA)
    assert "content-range" not in headers


# ---------------------------------------------------------------- entity-tag lists


@pytest.mark.parametrize("field, value, status", ids=short, argvalues=[
    ("If-Match", ", ".join(f'"{i}"' for i in range(1000)), 412),
    ("If-None-Match", ", ".join(f'"{i}"' for i in range(1000)), 200),
    ("If-None-Match", "," * 8000, 200),
    ("If-None-Match", '"' * 8000, 200),
    ("If-None-Match", "W/" * 4000, 200),
    ("If-None-Match", '"unterminated' + "x" * 8000, 200),
    ("If-Match", " ," * 4000, 412),
    ("If-Match", "**", 412),
    ("If-None-Match", "*, *", 200),
])
def test_entity_tag_lists(server: Server, field: str, value: str, status: int) -> None:
    assert get(server, "/data.bin", (field, value))[0] == status


def test_many_entity_tag_lines(server: Server) -> None:
    fields = [("If-None-Match", ", ".join(f'"{i}-{j}"' for i in range(20))) for j in range(60)]
    assert get(server, "/data.bin", *fields)[0] == 200


# ---------------------------------------------------------------- Accept-Encoding


@pytest.mark.parametrize("value, coding", ids=short, argvalues=[
    (f"gzip;q={DIGITS}", None),
    (f"gzip;q=0.{DIGITS}", None),
    ("gzip;q=1e400", None),
    ("gzip;q=nan", None),
    ("gzip;q=inf", None),
    ("gzip;q=-1", None),
    ("gzip;q=1.0001", None),
    ("gzip;" * 1500, "gzip"),
    ("," * 8000, None),
    ("gzip;q=0.5;q=0", "gzip"),
    ("gz\xffip, gzip", "gzip"),
    ("gzip;q=\xd9\xa1", None),
])
def test_accept_encoding_values(server: Server, value: str, coding: str | None) -> None:
    code, headers, _ = get(server, "/comp/app.js", ("Accept-Encoding", value))
    assert code == 200
    assert headers.get("content-encoding", [None]) == [coding]


# ---------------------------------------------------------------- paths and queries


@pytest.mark.parametrize("target, status", ids=short, argvalues=[
    (b"/data.bin?" + b"%ZZ" * 1000, 200),
    (b"/docs?%00%ff=\x7e", 301),
    (b"/%FF", 400),
    (b"/%C0%AE%C0%AE/data.bin", 400),
    (b"/%00", 404),
    (b"/data.bin%00.txt", 404),
    (b"/data.bin/", 404),
    (b"/" + b"a" * 300, 404),  # a segment longer than NAME_MAX
    (b"/" + b"%41" * 2000, 404),
    (b"/a" * 3000, 404),  # past PATH_MAX once joined
    (b"/" + b"a/" * 3000, 404),
    (b"/" + b"/" * 5000 + b"data.bin", 200),
    (b"/docs/" + b"%E2%82%AC" * 600, 404),
    (b"/%F0%9F%98%80", 404),
    (b"/%ED%A0%80", 400),  # a surrogate in UTF-8
    (b"/%F4%90%80%80", 400),  # past U+10FFFF
    (b"/" + b"%" * 10, 400),
    (b"/%2e%2e/%2e%2e/etc/passwd", 404),
    (b"http://x/data.bin", 200),
    (b"http://x", 200),
    (b"/data.bin#frag", 400),  # RFC 9112 §3.2: a request-target has no fragment
])
def test_paths(server: Server, target: bytes, status: int) -> None:
    assert get(server, target)[0] == status


# ---------------------------------------------------------------- file metadata


def _far_future_root() -> Path:
    """A tmpfs directory holding files whose mtimes no HTTP-date can carry (tmpfs keeps 64-bit
    seconds; ext4 clamps them to 2446), or a skip when there is no tmpfs to try it on."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable tmpfs at /dev/shm")
    base = Path(tempfile.mkdtemp(prefix="synack-mtime-", dir=shm))
    for name, seconds in (("year36812.txt", 2**40), ("past-gmtime.txt", 2**62), ("pre-epoch.txt", -2**40)):
        write(base / name, name)
        try:
            os.utime(base / name, (seconds, seconds))
        except OSError:
            shutil.rmtree(base)
            pytest.skip(f"this tmpfs refuses mtime {seconds}")
    return base


def test_mtimes_outside_http_dates(server_factory) -> None:  # type: ignore[no-untyped-def]
    base = _far_future_root()
    try:
        server = server_factory([str(base)])
        for name, last_modified in (("year36812.txt", "Fri, 31 Dec 9999 23:59:59 GMT"),
                                    ("past-gmtime.txt", "Fri, 31 Dec 9999 23:59:59 GMT"),
                                    ("pre-epoch.txt", "Thu, 01 Jan 1970 00:00:00 GMT")):
            reply = fetch(server, "/" + name)
            assert (reply.status, reply.body) == (200, name.encode())
            assert reply.header("last-modified") == last_modified
            revalidated = fetch(server, "/" + name, headers={"If-Modified-Since": last_modified})
            assert revalidated.status == 304
        listing = fetch(server, "/")
        assert listing.status == 200
        for name in ("year36812.txt", "past-gmtime.txt", "pre-epoch.txt"):
            assert f'href="{name}"'.encode() in listing.body
        assert b'datetime="9999-12-31T23:59:59Z"' in listing.body
        log = server.stderr_text()
        assert "Traceback" not in log and "WARNING" not in log
    finally:
        shutil.rmtree(base)


# ---------------------------------------------------------------- configuration the URL carries


def test_a_non_ascii_root_path_is_percent_encoded_in_redirects(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "docs" / "a.txt", "a")
    server = server_factory(["--root-path", "/m\u00f6unt point/", str(tmp_path)])
    reply = fetch(server, "/docs?x=1")
    assert reply.status == 301
    assert reply.header("location") == "/m%C3%B6unt%20point/docs/?x=1"
    listing = fetch(server, "/docs/")
    assert listing.status == 200 and "Index of /m\u00f6unt point/docs/" in listing.body.decode()
    assert "Traceback" not in server.stderr_text()
