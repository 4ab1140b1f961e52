"""Static files, responses against a real server: methods, types, index and listings,
redirects, validators and the conditional matrix (RFC 9110 §13), the range matrix (§14),
precompressed siblings, Cache-Control, HEAD parity and keep-alive framing."""

from __future__ import annotations

import calendar
import email.utils
import gzip
import hashlib
import html
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apps.static_support import (
    Reply,
    build_request,
    fetch,
    multipart_parts,
    read_reply,
    serve_for_module,
    write,
)
from tests.conftest import Server

DATA = bytes(i % 251 for i in range(10_000))  # RFC 9110 §14's examples use a 10000-byte file
BIG = os.urandom(3 * 1024 * 1024 + 17)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f000001010100c6b4d0a80000000049454e44ae426082"
)
JS = b"console.log('the original');\n" * 20
OLD = calendar.timegm((2020, 5, 17, 10, 20, 30))


def build_tree(root: Path) -> None:
    write(root / "hello.txt", "hello\n")
    write(root / "data.bin", DATA)
    write(root / "big.bin", BIG)
    write(root / "empty.txt", b"")
    write(root / "page.html", "<!DOCTYPE html><title>t</title><p>page</p>\n")
    write(root / "style.css", "p{color:red}\n")
    write(root / "app.mjs", "export {}\n")
    write(root / "data.json", "{}\n")
    write(root / "image.png", PNG)
    write(root / "image.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    write(root / "noext", "no extension\n")
    write(root / "archive.tar.gz", gzip.compress(b"tar", mtime=0))
    write(root / "site" / "index.html", "<p>site index</p>\n")
    write(root / "site" / "other.txt", "other\n")
    write(root / "custom" / "home.htm", "<p>custom index</p>\n")
    write(root / "docs" / "b.txt", "b" * 2048)
    write(root / "docs" / "a.txt", "a")
    write(root / "docs" / "Zed.txt", "z")
    write(root / "docs" / "nested" / "deep.txt", "deep\n")
    write(root / "docs" / "<img src=x onerror=alert(1)>.txt", "xss?\n")
    write(root / "docs" / "a b&c.txt", "amp\n")
    write(root / "a b" / "in space.txt", "space\n")
    write(root / "evil.com" / "x.txt", "not a redirect target\n")
    write(root / "comp" / "app.js", JS)
    write(root / "comp" / "app.js.br", b"BROTLI-BYTES")
    write(root / "comp" / "app.js.zst", b"ZSTD-BYTES!")
    write(root / "comp" / "app.js.gz", gzip.compress(JS, mtime=0))
    write(root / "comp" / "plain.txt", "no siblings\n")
    write(root / "gzonly" / "text.txt", "gzip me " * 100)
    write(root / "gzonly" / "text.txt.gz", gzip.compress(b"gzip me " * 100, mtime=0))
    os.utime(root / "docs" / "a.txt", (OLD, OLD))


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="synack-static-"))
    build_tree(base / "root")
    write(base / "secret.txt.gz", b"outside the root")
    os.symlink("../../secret.txt.gz", base / "root" / "gzonly" / "escape.txt.gz")
    write(base / "root" / "gzonly" / "escape.txt", "identity\n")
    try:
        yield base / "root"
    finally:
        shutil.rmtree(base)


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    yield from serve_for_module(root)


def get(server: Server, target: str, **headers: str) -> Reply:
    return fetch(server, target, headers={name.replace("_", "-"): value for name, value in headers.items()})


# ---------------------------------------------------------------- basics


def test_get_file(server: Server, root: Path) -> None:
    reply = get(server, "/hello.txt")
    assert reply.status == 200
    assert reply.body == b"hello\n"
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("x-content-type-options") == "nosniff"
    assert reply.header("accept-ranges") == "bytes"
    assert reply.header("content-length") == "6"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', reply.header("etag") or "")
    mtime = int(os.stat(root / "hello.txt").st_mtime)
    assert reply.header("last-modified") == email.utils.formatdate(mtime, usegmt=True)
    assert "vary" not in reply.headers
    assert "cache-control" not in reply.headers
    assert "content-encoding" not in reply.headers


def test_big_file_is_intact(server: Server) -> None:
    reply = get(server, "/big.bin")
    assert reply.status == 200
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(BIG).digest()


def test_empty_file(server: Server) -> None:
    reply = get(server, "/empty.txt")
    assert (reply.status, reply.body, reply.header("content-length")) == (200, b"", "0")


@pytest.mark.parametrize("target, expected", [
    ("/hello.txt", "text/plain; charset=utf-8"),
    ("/page.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/app.mjs", "text/javascript; charset=utf-8"),
    ("/comp/app.js", "text/javascript; charset=utf-8"),
    ("/data.json", "application/json; charset=utf-8"),
    ("/image.svg", "image/svg+xml; charset=utf-8"),
    ("/image.png", "image/png"),
    ("/data.bin", "application/octet-stream"),
    ("/noext", "application/octet-stream"),
    ("/archive.tar.gz", "application/gzip"),
])
def test_content_types(server: Server, target: str, expected: str) -> None:
    reply = get(server, target)
    assert reply.header("content-type") == expected
    assert reply.header("x-content-type-options") == "nosniff"
    assert "content-encoding" not in reply.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "BREW"])
def test_other_methods_are_405(server: Server, method: str) -> None:
    reply = fetch(server, "/hello.txt", method=method)
    assert reply.status == 405
    assert reply.header("allow") == "GET, HEAD, OPTIONS"


def test_post_with_body_is_405_and_connection_stays_usable(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
                     + build_request("GET", "/hello.txt"))
        buffer = bytearray()
        assert read_reply(sock, "POST", buffer).status == 405
        assert read_reply(sock, "GET", buffer).body == b"hello\n"


@pytest.mark.parametrize("target", ["/hello.txt", "/", "*", "/missing"])
def test_options(server: Server, target: str) -> None:
    reply = fetch(server, target, method="OPTIONS")
    assert reply.status == 204
    assert reply.header("allow") == "GET, HEAD, OPTIONS"
    assert reply.body == b"" and "content-length" not in reply.headers


def test_missing_is_404_without_traceback(server: Server) -> None:
    reply = get(server, "/missing.txt")
    assert reply.status == 404
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert b"Traceback" not in reply.body


# ---------------------------------------------------------------- HEAD parity

HEAD_TARGETS = [
    ("/hello.txt", {}),
    ("/data.bin", {}),
    ("/empty.txt", {}),
    ("/", {}),
    ("/docs/", {}),
    ("/docs", {}),
    ("/site/", {}),
    ("/missing", {}),
    ("/comp/app.js", {}),
    ("/comp/app.js", {"Accept-Encoding": "gzip, br"}),
    ("/data.bin", {"If-None-Match": "*"}),
    ("/data.bin", {"If-Match": '"nope"'}),
    ("/%zz", {}),
]


@pytest.mark.parametrize("target, headers", HEAD_TARGETS)
def test_head_has_the_headers_of_get_and_no_body(server: Server, target: str, headers: dict[str, str]) -> None:
    got = fetch(server, target, headers=headers)
    head = fetch(server, target, method="HEAD", headers=headers)  # fetch() fails on any body bytes
    assert head.body == b""
    assert head.status == got.status
    assert head.fields() == got.fields()


# ---------------------------------------------------------------- index, redirects, listings


def test_index_file(server: Server) -> None:
    reply = get(server, "/site/")
    assert reply.status == 200 and reply.body == b"<p>site index</p>\n"
    assert reply.header("content-type") == "text/html; charset=utf-8"
    assert reply.header("etag") and reply.header("last-modified")


@pytest.mark.parametrize("target, location", [
    ("/site", "/site/"),
    ("/site?x=1&y=%20", "/site/?x=1&y=%20"),
    ("/docs/nested", "/docs/nested/"),
    ("/a%20b", "/a%20b/"),
    ("//evil.com", "/evil.com/"),  # never a protocol-relative Location
    ("http://test//evil.com", "/evil.com/"),
    ("/site?", "/site/"),
])
def test_directory_without_slash_redirects(server: Server, target: str, location: str) -> None:
    reply = get(server, target)
    assert reply.status == 301
    assert reply.header("location") == location


def test_listing(server: Server, root: Path) -> None:
    reply = get(server, "/docs/")
    assert reply.status == 200
    assert reply.header("content-type") == "text/html; charset=utf-8"
    assert reply.header("x-content-type-options") == "nosniff"
    page = reply.body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Index of /docs/</title>" in page
    assert '<a href="../">../</a>' in page
    hrefs = re.findall(r'<a href="([^"]+)">', page)
    assert hrefs == ["../", "nested/", "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt", "Zed.txt",
                     "a%20b%26c.txt", "a.txt", "b.txt"]
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    assert "a b&amp;c.txt" in page
    assert "2.0 KiB" in page  # b.txt, 2048 bytes
    assert '<time datetime="2020-05-17T10:20:30Z">2020-05-17 10:20</time>' in page  # a.txt's mtime
    for href in hrefs[1:]:
        link = get(server, "/docs/" + html.unescape(href))
        assert link.status == 200, href


def test_root_listing_has_no_parent_link(server: Server) -> None:
    page = get(server, "/").body.decode()
    assert "<title>Index of /</title>" in page
    assert 'href="../"' not in page


def test_no_listing_and_custom_index(root: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["--no-listing", "--index", "home.htm", str(root)])
    assert get(server, "/docs/").status == 404
    assert get(server, "/").status == 404
    assert get(server, "/docs").status == 301  # the redirect still comes first
    assert get(server, "/custom/").body == b"<p>custom index</p>\n"
    assert get(server, "/site/").status == 404  # index.html is no longer the index
    assert get(server, "/site/index.html").status == 200


# ---------------------------------------------------------------- conditional requests


@pytest.fixture(scope="module")
def validators(server: Server) -> tuple[str, str]:
    reply = get(server, "/data.bin")
    return reply.header("etag") or "", reply.header("last-modified") or ""


def _shift(date: str, seconds: int) -> str:
    moment = email.utils.parsedate_to_datetime(date).timestamp() + seconds
    return email.utils.formatdate(moment, usegmt=True)


CONDITIONAL = [
    # (request fields, method, expected status); ETAG / LM / EARLIER / LATER are substituted.
    ({"If-None-Match": "ETAG"}, "GET", 304),
    ({"If-None-Match": "W/ETAG"}, "GET", 304),
    ({"If-None-Match": '"other", ETAG'}, "GET", 304),
    ({"If-None-Match": "*"}, "GET", 304),
    ({"If-None-Match": '"other"'}, "GET", 200),
    ({"If-None-Match": "ETAG"}, "HEAD", 304),
    ({"If-Modified-Since": "LM"}, "GET", 304),
    ({"If-Modified-Since": "LATER"}, "GET", 304),
    ({"If-Modified-Since": "EARLIER"}, "GET", 200),
    ({"If-Modified-Since": "not a date"}, "GET", 200),
    ({"If-None-Match": '"other"', "If-Modified-Since": "LM"}, "GET", 200),  # INM wins over IMS
    ({"If-Match": "ETAG"}, "GET", 200),
    ({"If-Match": "*"}, "GET", 200),
    ({"If-Match": '"other"'}, "GET", 412),
    ({"If-Match": "W/ETAG"}, "GET", 412),  # strong comparison
    ({"If-Match": '"other"'}, "HEAD", 412),
    ({"If-Unmodified-Since": "LM"}, "GET", 200),
    ({"If-Unmodified-Since": "EARLIER"}, "GET", 412),
    ({"If-Unmodified-Since": "garbage"}, "GET", 200),
    ({"If-Match": "ETAG", "If-Unmodified-Since": "EARLIER"}, "GET", 200),  # IUS ignored with IM
    ({"If-Match": '"other"', "If-None-Match": "ETAG"}, "GET", 412),  # IM first
    ({"If-Unmodified-Since": "EARLIER", "If-None-Match": "ETAG"}, "GET", 412),
    ({"If-Match": "ETAG", "If-None-Match": "ETAG"}, "GET", 304),
    ({"If-None-Match": "ETAG", "Range": "bytes=0-9"}, "GET", 304),  # preconditions before Range
    ({"If-Match": '"other"', "Range": "bytes=0-9"}, "GET", 412),
    ({"If-Match": "ETAG", "Range": "bytes=0-9"}, "GET", 206),
]


@pytest.mark.parametrize("fields, method, expected", CONDITIONAL)
def test_conditional_matrix(server: Server, validators: tuple[str, str], fields: dict[str, str], method: str,
                            expected: int) -> None:
    etag, last_modified = validators
    values = {"ETAG": etag, "LM": last_modified, "EARLIER": _shift(last_modified, -3600),
              "LATER": _shift(last_modified, 3600)}
    headers = {name: re.sub(r"ETAG|LM|EARLIER|LATER", lambda m: values[m.group(0)], value)
               for name, value in fields.items()}
    reply = fetch(server, "/data.bin", method=method, headers=headers)
    assert reply.status == expected
    if expected == 304:
        assert reply.body == b""
        assert reply.header("etag") == etag
        assert reply.header("last-modified") == last_modified
        assert "content-length" not in reply.headers
    elif expected == 412:
        assert reply.body == b"" and reply.header("content-length") == "0"
    elif expected == 200 and method == "GET":
        assert reply.body == DATA


def test_a_changed_file_gets_a_new_etag(server: Server, root: Path) -> None:
    path = root / "changing.txt"
    write(path, "one\n")
    first = get(server, "/changing.txt").header("etag") or ""
    write(path, "two!\n")
    second = get(server, "/changing.txt")
    assert second.header("etag") != first
    assert get(server, "/changing.txt", If_None_Match=first).status == 200
    assert get(server, "/changing.txt", If_None_Match=second.header("etag") or "").status == 304


# ---------------------------------------------------------------- ranges


@pytest.mark.parametrize("spec, start, end", [
    ("bytes=0-499", 0, 499),
    ("bytes=500-999", 500, 999),
    ("bytes=-500", 9500, 9999),
    ("bytes=9500-", 9500, 9999),
    ("bytes=0-", 0, 9999),
    ("bytes=9999-", 9999, 9999),
    ("bytes=9000-20000", 9000, 9999),
    ("bytes=500-700,601-999", 500, 999),  # overlapping: coalesced to one part
    ("bytes=500-600,601-999", 500, 999),  # adjacent
])
def test_single_ranges(server: Server, spec: str, start: int, end: int) -> None:
    reply = get(server, "/data.bin", Range=spec)
    assert reply.status == 206
    assert reply.header("content-range") == f"bytes {start}-{end}/10000"
    assert reply.header("content-length") == str(end - start + 1)
    assert reply.body == DATA[start:end + 1]
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.header("etag") and reply.header("accept-ranges") == "bytes"


@pytest.mark.parametrize("spec, expected", [
    ("bytes=0-0,-1", [(0, 0), (9999, 9999)]),
    ("bytes=0-999,4500-5499,-1000", [(0, 999), (4500, 5499), (9000, 9999)]),
    ("bytes=5000-5099, 0-99", [(0, 99), (5000, 5099)]),
    ("bytes=0-9,1000-1009,2000-2009,1005-1500", [(0, 9), (1000, 1500), (2000, 2009)]),
])
def test_multiple_ranges(server: Server, spec: str, expected: list[tuple[int, int]]) -> None:
    reply = get(server, "/data.bin", Range=spec)
    assert reply.status == 206
    assert "content-range" not in reply.headers
    parts = multipart_parts(reply)
    assert [(headers["content-range"], data) for headers, data in parts] == [
        (f"bytes {start}-{end}/10000", DATA[start:end + 1]) for start, end in expected
    ]
    assert all(headers["content-type"] == "application/octet-stream" for headers, _ in parts)


def test_large_multipart_ranges_are_streamed(server: Server) -> None:
    # Parts bigger than the small-body threshold go out through send_file, part by part.
    ranges = [(0, 99_999), (2_000_000, 2_999_999), (len(BIG) - 70_000, len(BIG) - 1)]
    spec = "bytes=" + ",".join(f"{start}-{end}" for start, end in ranges)
    reply = get(server, "/big.bin", Range=spec)
    assert reply.status == 206
    assert [(headers["content-range"], data) for headers, data in multipart_parts(reply)] == [
        (f"bytes {start}-{end}/{len(BIG)}", BIG[start:end + 1]) for start, end in ranges
    ]


@pytest.mark.parametrize("spec", ["bytes=10000-", "bytes=20000-30000", "bytes=-0", "bytes=10000-10001,12000-"])
def test_unsatisfiable_is_416(server: Server, spec: str) -> None:
    reply = get(server, "/data.bin", Range=spec)
    assert reply.status == 416
    assert reply.header("content-range") == "bytes */10000"
    assert reply.body == b"" and reply.header("content-length") == "0"


@pytest.mark.parametrize("spec", [
    "bytes=5-1", "bytes=abc", "items=0-1", "bytes 0-1", "bytes=", "bytes=1-2-3",
    "bytes=0-,0-,0-",  # overlapping beyond the whole file
    "bytes=" + ",".join(f"{i * 100}-{i * 100 + 1}" for i in range(17)),  # too many
])
def test_ignored_ranges_give_the_whole_file(server: Server, spec: str) -> None:
    reply = get(server, "/data.bin", Range=spec)
    assert reply.status == 200
    assert reply.body == DATA


def test_two_range_fields_are_ignored(server: Server) -> None:
    reply = fetch(server, "/data.bin", headers=[("Range", "bytes=0-1"), ("Range", "bytes=2-3")])
    assert reply.status == 200


def test_ranges_on_empty_file_and_head(server: Server) -> None:
    assert get(server, "/empty.txt", Range="bytes=0-10").status == 200
    reply = fetch(server, "/data.bin", method="HEAD", headers={"Range": "bytes=0-9"})
    assert reply.status == 200 and reply.header("content-length") == "10000"


def test_if_range(server: Server, validators: tuple[str, str]) -> None:
    etag, last_modified = validators
    assert get(server, "/data.bin", Range="bytes=0-9", If_Range=etag).status == 206
    assert get(server, "/data.bin", Range="bytes=0-9", If_Range=last_modified).status == 206
    for stale in ('"other"', "W/" + etag, _shift(last_modified, -1), _shift(last_modified, 1), "garbage"):
        reply = get(server, "/data.bin", Range="bytes=0-9", If_Range=stale)
        assert reply.status == 200 and reply.body == DATA, stale
    assert get(server, "/data.bin", If_Range='"other"').status == 200  # no Range: nothing to do


def test_ranges_through_curl(server: Server) -> None:
    result = subprocess.run(["curl", "-s", "-r", "0-499", "-o", "-", "-w", "%{http_code}", server.url + "/big.bin"],
                            capture_output=True, timeout=20)
    assert result.stdout == BIG[:500] + b"206"
    result = subprocess.run(["curl", "-s", "-r", "1000000-", "-o", "-", server.url + "/big.bin"],
                            capture_output=True, timeout=20)
    assert result.stdout == BIG[1000000:]


# ---------------------------------------------------------------- precompressed siblings


@pytest.mark.parametrize("accept, coding, body", [
    (None, None, JS),
    ("", None, JS),
    ("identity", None, JS),
    ("gzip, deflate, br, zstd", "br", b"BROTLI-BYTES"),
    ("gzip", "gzip", gzip.compress(JS, mtime=0)),
    ("zstd, gzip", "zstd", b"ZSTD-BYTES!"),
    ("br;q=0, gzip", "gzip", gzip.compress(JS, mtime=0)),
    ("gzip;q=1.0, br;q=0.5", "gzip", gzip.compress(JS, mtime=0)),
    ("gzip;q=0.5, br;q=0.9", "br", b"BROTLI-BYTES"),
    ("*", "br", b"BROTLI-BYTES"),
    ("*;q=0", None, JS),
    ("deflate", None, JS),
    ("gzip;q=0.5, identity", None, JS),
    ("gzip;q=0.5", "gzip", gzip.compress(JS, mtime=0)),
])
def test_precompressed_variants(server: Server, accept: str | None, coding: str | None, body: bytes) -> None:
    headers = {} if accept is None else {"Accept-Encoding": accept}
    reply = fetch(server, "/comp/app.js", headers=headers)
    assert reply.status == 200
    assert reply.header("content-encoding") == coding
    assert reply.header("vary") == "accept-encoding"
    assert reply.header("content-type") == "text/javascript; charset=utf-8"
    if coding != "gzip":
        assert reply.body == body
    else:
        assert gzip.decompress(reply.body) == JS


def test_variants_have_their_own_validators(server: Server) -> None:
    etags = {coding: get(server, "/comp/app.js", Accept_Encoding=coding).header("etag")
             for coding in ("identity", "br", "zstd", "gzip")}
    assert len(set(etags.values())) == 4
    not_modified = get(server, "/comp/app.js", Accept_Encoding="br", If_None_Match=etags["br"] or "")
    assert not_modified.status == 304 and not_modified.header("vary") == "accept-encoding"
    assert not_modified.header("etag") == etags["br"]
    # The identity tag does not match the brotli variant: it is sent in full.
    reply = get(server, "/comp/app.js", Accept_Encoding="br", If_None_Match=etags["identity"] or "")
    assert reply.status == 200 and reply.header("content-encoding") == "br"


def test_ranges_apply_to_the_variant(server: Server) -> None:
    reply = get(server, "/comp/app.js", Accept_Encoding="br", Range="bytes=0-5")
    assert reply.status == 206
    assert reply.body == b"BROTLI"
    assert reply.header("content-range") == f"bytes 0-5/{len(b'BROTLI-BYTES')}"
    assert reply.header("content-encoding") == "br" and reply.header("vary") == "accept-encoding"
    unsatisfiable = get(server, "/comp/app.js", Accept_Encoding="br", Range="bytes=100-")
    assert unsatisfiable.status == 416 and unsatisfiable.header("vary") == "accept-encoding"
    assert unsatisfiable.header("content-range") == f"bytes */{len(b'BROTLI-BYTES')}"


def test_sibling_served_as_itself_when_named(server: Server) -> None:
    reply = get(server, "/comp/app.js.gz", Accept_Encoding="gzip")
    assert reply.header("content-type") == "application/gzip"
    assert "content-encoding" not in reply.headers


def test_no_vary_without_siblings(server: Server) -> None:
    assert "vary" not in get(server, "/comp/plain.txt", Accept_Encoding="gzip").headers


def test_sibling_symlink_outside_the_root_is_not_served(server: Server) -> None:
    reply = get(server, "/gzonly/escape.txt", Accept_Encoding="gzip")
    assert reply.status == 200 and reply.body == b"identity\n"
    assert "content-encoding" not in reply.headers


def test_curl_compressed_decodes_the_gzip_sibling(server: Server) -> None:
    result = subprocess.run(["curl", "-s", "--compressed", "-D", "-", server.url + "/gzonly/text.txt"],
                            capture_output=True, timeout=20)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower()
    assert body == b"gzip me " * 100


# ---------------------------------------------------------------- Cache-Control


def test_cache_control(root: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["--cache-control", "public, max-age=60", str(root)])
    value = "public, max-age=60"
    ok = get(server, "/hello.txt")
    assert ok.header("cache-control") == value
    assert get(server, "/data.bin", Range="bytes=0-1").header("cache-control") == value
    assert get(server, "/hello.txt", If_None_Match=ok.header("etag") or "").header("cache-control") == value
    assert get(server, "/site/").header("cache-control") == value
    assert get(server, "/docs/").header("cache-control") == "no-cache"  # listings change
    assert "cache-control" not in get(server, "/missing").headers


# ---------------------------------------------------------------- keep-alive framing


def test_empty_bodies_keep_the_connection_in_sync(server: Server, validators: tuple[str, str]) -> None:
    etag, _ = validators
    sequence = [
        ("HEAD", "/data.bin", {}, 200),
        ("GET", "/data.bin", {"If-None-Match": etag}, 304),
        ("GET", "/data.bin", {"If-Match": '"x"'}, 412),
        ("GET", "/data.bin", {"Range": "bytes=20000-"}, 416),
        ("GET", "/data.bin", {"Range": "bytes=0-0,-1"}, 206),
        ("OPTIONS", "/", {}, 204),
        ("DELETE", "/data.bin", {}, 405),
        ("GET", "/missing", {}, 404),
        ("GET", "/site", {}, 301),
        ("GET", "/docs/", {}, 200),
        ("GET", "/data.bin", {"Range": "bytes=-500"}, 206),
        ("GET", "/data.bin", {}, 200),
    ]
    with server.connect() as sock:
        # Pipelined: all requests at once, then the responses in order.
        sock.sendall(b"".join(build_request(method, target, headers, close=False)
                              for method, target, headers, _ in sequence))
        buffer = bytearray()
        for method, target, _, status in sequence:
            reply = read_reply(sock, method, buffer)
            assert reply.status == status, (method, target, reply.raw[:300])
        assert reply.body == DATA
        sock.sendall(build_request("GET", "/hello.txt"))
        assert read_reply(sock, "GET", buffer).body == b"hello\n"
