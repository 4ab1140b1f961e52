"""Writes the h1 request corpus: valid/*.http + *.json and invalid/*.http + *.json.

The expectations below are written by hand from RFC 9110/9112, not produced by running synack.
Run ``python tests/h1/corpus/build_corpus.py`` after editing; ``test_corpus.py`` fails when
the files on disk and this script disagree.

JSON fields (text is the latin-1 decoding of the bytes):
  valid:   method, target, version, headers ([lowercased name, value] pairs), body, trailers,
           keep_alive, framing ("none" | "length" | "chunked"), content_length,
           expect_continue, upgrade, path, query, host (the effective host: an absolute-form
           target's authority, else the Host value, else null; RFC 9112 §3.2.2). path and
           query default to the origin-form reading of target (split at the first "?") and
           host to the Host pair; absolute-form cases give all three.
  invalid: status
  both:    limits (keyword arguments for synack.h1.Limits), and for the differential test
           "h11" / "httptools": how that oracle differs ("reject" / "accept", or a dict of the
           fields it parses differently), with "note" giving the RFC reason. No entry means
           the oracle agrees exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def lines(*parts: bytes) -> bytes:
    """Join with CRLF: lines(b"GET / HTTP/1.1", b"Host: a", b"", b"") is a full head."""
    return b"\r\n".join(parts)


def head(*header_lines: bytes, start: bytes = b"GET / HTTP/1.1") -> bytes:
    return lines(start, *header_lines, b"", b"")


HOST = b"Host: example.com"
HOST_PAIR = ["host", "example.com"]

VALID: dict[str, tuple[bytes, dict[str, Any]]] = {}
INVALID: dict[str, tuple[bytes, dict[str, Any]]] = {}


def valid(name: str, raw: bytes, **expected: Any) -> None:
    fields: dict[str, Any] = {
        "method": "GET",
        "target": "/",
        "version": "1.1",
        "headers": [HOST_PAIR],
        "body": "",
        "trailers": [],
        "keep_alive": True,
        "framing": "none",
        "content_length": None,
        "expect_continue": False,
        "upgrade": None,
    }
    unknown = set(expected) - set(fields) - {"limits", "h11", "httptools", "note", "path",
                                             "query", "host"}
    assert not unknown, unknown
    fields.update(expected)
    target = fields["target"]
    if not {"path", "query", "host"} <= set(expected):
        assert target[:1] == "/" or target == "*", f"{name}: give path, query and host"
        path, _, query = target.partition("?")
        hosts = [value for field, value in fields["headers"] if field == "host"]
        fields = {"path": path, "query": query, "host": hosts[0] if hosts else None, **fields}
    for key in ("path", "query", "host"):  # after the other fields, in this order
        fields[key] = fields.pop(key)
    assert name not in VALID, name
    VALID[name] = (raw, fields)


def invalid(name: str, raw: bytes, status: int, **extra: Any) -> None:
    unknown = set(extra) - {"limits", "h11", "httptools", "note"}
    assert not unknown, unknown
    assert name not in INVALID, name
    INVALID[name] = (raw, {"status": status, **extra})


# ============================================================================ valid

# --- request line: RFC 9112 §3
valid("get_origin_form", head(HOST))
valid("get_query", head(HOST, start=b"GET /search?q=a%20b&x=%2F;p HTTP/1.1"),
      target="/search?q=a%20b&x=%2F;p")
valid("get_absolute_form", head(b"Host: example.com", start=b"GET http://example.com/a?b=c HTTP/1.1"),
      target="http://example.com/a?b=c", path="/a", query="b=c", host="example.com")
# RFC 9112 §3.2.2: the target's authority replaces the Host field's value.
valid("absolute_form_authority_replaces_host",
      head(b"Host: other.example", start=b"GET http://target.example:8080/p?q HTTP/1.1"),
      target="http://target.example:8080/p?q", headers=[["host", "target.example:8080"]],
      path="/p", query="q", host="target.example:8080")
valid("absolute_form_http10_gains_host", head(start=b"GET http://a.example/x HTTP/1.0"),
      target="http://a.example/x", version="1.0", headers=[["host", "a.example"]],
      keep_alive=False, path="/x", query="", host="a.example")
valid("absolute_form_without_path",
      head(HOST, start=b"GET http://example.com?x=1 HTTP/1.1"),
      target="http://example.com?x=1", path="/", query="x=1", host="example.com")
valid("absolute_form_ipv6_authority",
      head(HOST, start=b"GET https://[2001:db8::1]:8443/ HTTP/1.1"),
      target="https://[2001:db8::1]:8443/", headers=[["host", "[2001:db8::1]:8443"]],
      path="/", query="", host="[2001:db8::1]:8443")
valid("options_asterisk", head(HOST, start=b"OPTIONS * HTTP/1.1"), method="OPTIONS", target="*")
valid("head_request", head(HOST, start=b"HEAD /index.html HTTP/1.1"), method="HEAD",
      target="/index.html")
valid("extension_method_token", head(HOST, start=b"M-SEARCH /x HTTP/1.1"), method="M-SEARCH",
      target="/x")
valid("http10_no_host", head(start=b"GET / HTTP/1.0"), version="1.0", headers=[],
      keep_alive=False)
valid("http10_keep_alive", head(b"Connection: keep-alive", start=b"GET / HTTP/1.0"),
      version="1.0", headers=[["connection", "keep-alive"]], keep_alive=True)
valid("http10_keep_alive_and_close",
      head(b"Connection: Keep-Alive, close", start=b"GET / HTTP/1.0"),
      version="1.0", headers=[["connection", "Keep-Alive, close"]], keep_alive=False)
valid("http11_connection_close", head(HOST, b"Connection: close"),
      headers=[HOST_PAIR, ["connection", "close"]], keep_alive=False)
valid("http12_is_served_as_11", head(HOST, start=b"GET / HTTP/1.2"))
valid("leading_empty_lines", b"\r\n\r\n" + head(HOST))

# --- fields: RFC 9110 §5, RFC 9112 §5
valid("field_ows_stripped", head(HOST, b"X-Pad: \t a \t b \t "),
      headers=[HOST_PAIR, ["x-pad", "a \t b"]])
valid("field_empty_value", head(HOST, b"X-Empty:"), headers=[HOST_PAIR, ["x-empty", ""]])
valid("field_name_all_tchars", head(HOST, b"X-!#$%&'*+.^_`|~09az: 1"),
      headers=[HOST_PAIR, ["x-!#$%&'*+.^_`|~09az", "1"]])
valid("field_obs_text_value", head(HOST, b"X-Name: caf\xe9 \xff"),
      headers=[HOST_PAIR, ["x-name", "caf\xe9 \xff"]])
valid("field_names_lowercased_duplicates_kept",
      head(b"HOST: example.com", b"Accept: a", b"ACCEPT: b"),
      headers=[HOST_PAIR, ["accept", "a"], ["accept", "b"]])
valid("host_ipv6_literal_with_port", head(b"Host: [::1]:8080"), headers=[["host", "[::1]:8080"]])
valid("host_empty", head(b"Host:"), headers=[["host", ""]])
# Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2-3); port = *DIGIT.
valid("host_empty_port", head(b"Host: example.com:"), headers=[["host", "example.com:"]])
valid("host_highest_port", head(b"Host: example.com:65535"),
      headers=[["host", "example.com:65535"]])
valid("host_ipv4_with_port", head(b"Host: 127.0.0.1:8000"), headers=[["host", "127.0.0.1:8000"]])
valid("host_ipv6_embedded_ipv4", head(b"Host: [::ffff:192.0.2.1]:80"),
      headers=[["host", "[::ffff:192.0.2.1]:80"]])
valid("host_pct_encoded_and_sub_delims", head(b"Host: a%2Db!$&'()*+;=~_.example"),
      headers=[["host", "a%2Db!$&'()*+;=~_.example"]])
valid("fifty_headers", head(HOST, *[b"X-H%d: %d" % (i, i) for i in range(49)]),
      headers=[HOST_PAIR, *[[f"x-h{i}", str(i)] for i in range(49)]])
valid("obs_fold_allowed", head(HOST, b"X-Fold: a", b" \tb"),
      headers=[HOST_PAIR, ["x-fold", "a b"]], limits={"allow_obs_fold": True})
valid("bare_lf_allowed", b"GET / HTTP/1.1\nHost: example.com\nX: 1\r\n\n",
      headers=[HOST_PAIR, ["x", "1"]], limits={"allow_bare_lf": True})

# --- Content-Length bodies: RFC 9112 §6.2, RFC 9110 §8.6
valid("post_content_length",
      head(HOST, b"Content-Length: 5", start=b"POST /form HTTP/1.1") + b"hello",
      method="POST", target="/form", headers=[HOST_PAIR, ["content-length", "5"]],
      body="hello", framing="length", content_length=5)
valid("post_content_length_zero", head(HOST, b"Content-Length: 0", start=b"POST / HTTP/1.1"),
      method="POST", headers=[HOST_PAIR, ["content-length", "0"]], content_length=0)
valid("post_binary_body",
      head(HOST, b"Content-Length: 8", start=b"PUT /b HTTP/1.1") + b"\x00\r\n\r\n\xff\n\r",
      method="PUT", target="/b", headers=[HOST_PAIR, ["content-length", "8"]],
      body="\x00\r\n\r\n\xff\n\r", framing="length", content_length=8)
valid("content_length_duplicate_identical",
      head(HOST, b"Content-Length: 5", b"Content-Length: 5", start=b"POST / HTTP/1.1") + b"hello",
      method="POST", headers=[HOST_PAIR, ["content-length", "5"], ["content-length", "5"]],
      body="hello", framing="length", content_length=5)
valid("content_length_identical_list",
      head(HOST, b"Content-Length: 5, 5", start=b"POST / HTTP/1.1") + b"hello",
      method="POST", headers=[HOST_PAIR, ["content-length", "5, 5"]],
      body="hello", framing="length", content_length=5)
valid("http10_post_content_length",
      head(b"Content-Length: 3", start=b"POST / HTTP/1.0") + b"abc",
      method="POST", version="1.0", headers=[["content-length", "3"]], body="abc",
      framing="length", content_length=3, keep_alive=False)
valid("body_exactly_at_limit",
      head(HOST, b"Content-Length: 10", start=b"POST / HTTP/1.1") + b"0123456789",
      method="POST", headers=[HOST_PAIR, ["content-length", "10"]], body="0123456789",
      framing="length", content_length=10, limits={"max_body_bytes": 10})

# --- chunked bodies: RFC 9112 §7.1
CHUNKED = b"Transfer-Encoding: chunked"
CHUNKED_PAIR = ["transfer-encoding", "chunked"]
POST = b"POST / HTTP/1.1"
valid("chunked_two_chunks", head(HOST, CHUNKED, start=POST) + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="hello world", framing="chunked")
valid("chunked_empty_body", head(HOST, CHUNKED, start=POST) + b"0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], framing="chunked")
valid("chunked_uppercase_hex_and_coding",
      head(HOST, b"Transfer-Encoding: Chunked", start=POST) + b"A\r\n0123456789\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, ["transfer-encoding", "Chunked"]], body="0123456789",
      framing="chunked")
valid("chunked_size_leading_zeros",
      head(HOST, CHUNKED, start=POST) + b"0000000000000003\r\nabc\r\n000\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="abc", framing="chunked")
valid("chunked_extensions",
      head(HOST, CHUNKED, start=POST)
      + b'3;name=value;flag\r\nabc\r\n2;q="a \\"b\\" c"\r\nde\r\n0;last\r\n\r\n',
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="abcde", framing="chunked")
valid("chunked_extensions_bws",
      head(HOST, CHUNKED, start=POST) + b"3 ;a=b\r\nabc\r\n2; q = v\r\nde\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="abcde", framing="chunked")
valid("chunk_size_trailing_whitespace",
      head(HOST, CHUNKED, start=POST) + b"3 \r\nabc\r\n0\t\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="abc", framing="chunked")
valid("chunked_trailers",
      head(HOST, CHUNKED, start=POST)
      + b"4\r\ndata\r\n0\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="data", framing="chunked",
      trailers=[["x-checksum", "abc"], ["x-other", "two words"]])
valid("chunked_data_contains_crlf",
      head(HOST, CHUNKED, start=POST) + b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="\r\n\r\n", framing="chunked")
valid("chunked_te_list_with_empty_elements",
      head(HOST, b"Transfer-Encoding: ,chunked", start=POST) + b"1\r\nx\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, ["transfer-encoding", ",chunked"]], body="x",
      framing="chunked")
valid("chunked_body_exactly_at_limit",
      head(HOST, CHUNKED, start=POST) + b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="abcdefghij", framing="chunked",
      limits={"max_body_bytes": 10})
valid("chunk_line_exactly_at_limit",
      head(HOST, CHUNKED, start=POST) + b"1;ext=abc\r\nx\r\n0\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], body="x", framing="chunked",
      limits={"max_chunk_ext_bytes": 9})
valid("trailers_exactly_at_limit",
      head(HOST, CHUNKED, start=POST) + b"0\r\nX-T: 12345\r\nX-U: 6\r\n\r\n",
      method="POST", headers=[HOST_PAIR, CHUNKED_PAIR], framing="chunked",
      trailers=[["x-t", "12345"], ["x-u", "6"]], limits={"max_trailer_bytes": 18})

# --- limits at their exact bound are accepted
valid("request_line_exactly_at_limit", head(HOST, start=b"GET /0123456789 HTTP/1.1"),
      target="/0123456789", limits={"max_request_line": 24})
valid("head_exactly_at_limit", head(HOST, b"X: 0123456789"),
      headers=[HOST_PAIR, ["x", "0123456789"]], limits={"max_head_bytes": 48})
valid("field_exactly_at_limit", head(HOST, b"X: 0123456789"),
      headers=[HOST_PAIR, ["x", "0123456789"]], limits={"max_field_bytes": 17})

# --- Expect (RFC 9110 §10.1.1) and Upgrade (RFC 9110 §7.8)
valid("expect_100_continue",
      head(HOST, b"Content-Length: 2", b"Expect: 100-continue", start=POST) + b"hi",
      method="POST", headers=[HOST_PAIR, ["content-length", "2"], ["expect", "100-continue"]],
      body="hi", framing="length", content_length=2, expect_continue=True)
valid("expect_100_continue_without_body", head(HOST, b"Expect: 100-Continue"),
      headers=[HOST_PAIR, ["expect", "100-Continue"]])
valid("expect_100_continue_http10_ignored",
      head(b"Content-Length: 2", b"Expect: 100-continue", start=b"POST / HTTP/1.0") + b"hi",
      method="POST", version="1.0", headers=[["content-length", "2"], ["expect", "100-continue"]],
      body="hi", framing="length", content_length=2, keep_alive=False)
valid("upgrade_websocket", head(HOST, b"Connection: Upgrade", b"Upgrade: websocket"),
      headers=[HOST_PAIR, ["connection", "Upgrade"], ["upgrade", "websocket"]],
      upgrade="websocket")
valid("upgrade_without_connection_token", head(HOST, b"Upgrade: h2c"),
      headers=[HOST_PAIR, ["upgrade", "h2c"]])


# ============================================================================ invalid

# --- request line: RFC 9112 §3, §2.3
invalid("method_not_token", head(HOST, start=b"G@T / HTTP/1.1"), 400)
invalid("method_empty", head(HOST, start=b" / HTTP/1.1"), 400)
invalid("request_line_leading_space", head(HOST, start=b" GET / HTTP/1.1"), 400)
invalid("request_line_double_space", head(HOST, start=b"GET  / HTTP/1.1"), 400)
invalid("request_line_tab_separator", head(HOST, start=b"GET\t/ HTTP/1.1"), 400)
invalid("request_line_trailing_space", head(HOST, start=b"GET / HTTP/1.1 "), 400)
invalid("request_line_bare_cr", head(HOST, start=b"GET /\r HTTP/1.1"), 400)
invalid("request_line_nul", head(HOST, start=b"GET /\x00 HTTP/1.1"), 400)
invalid("target_with_space", head(HOST, start=b"GET /a b HTTP/1.1"), 400)
invalid("target_with_del", head(HOST, start=b"GET /a\x7fb HTTP/1.1"), 400)
invalid("target_non_ascii", head(HOST, start=b"GET /caf\xe9 HTTP/1.1"), 400)
invalid("target_relative", head(HOST, start=b"GET index.html HTTP/1.1"), 400)
invalid("asterisk_form_with_get", head(HOST, start=b"GET * HTTP/1.1"), 400)
invalid("authority_form_with_get", head(HOST, start=b"GET example.com:80 HTTP/1.1"), 400)
invalid("connect_authority_form", head(HOST, start=b"CONNECT example.com:443 HTTP/1.1"), 501)
invalid("connect_origin_form", head(HOST, start=b"CONNECT / HTTP/1.1"), 400)
invalid("version_http2", head(HOST, start=b"GET / HTTP/2.0"), 505)
invalid("version_http09", head(HOST, start=b"GET / HTTP/0.9"), 505)
invalid("version_http10_0", head(HOST, start=b"GET / HTTP/10.0"), 505)
invalid("version_h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
invalid("version_lowercase", head(HOST, start=b"GET / http/1.1"), 400)
invalid("version_missing_http09_simple_request", b"GET /\r\n\r\n", 400)
invalid("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400)
invalid("garbage_truncated_at_eof", b"hello", 400)
invalid("request_line_too_long", head(HOST, start=b"GET /01234567890 HTTP/1.1"), 414,
        limits={"max_request_line": 24})

# --- fields: RFC 9110 §5, RFC 9112 §5
invalid("missing_host_http11", head(start=b"GET / HTTP/1.1"), 400)
invalid("two_host_fields", head(HOST, b"Host: other.example"), 400)
invalid("host_with_space", head(b"Host: exa mple.com"), 400)
invalid("host_with_slash", head(b"Host: example.com/path"), 400)
invalid("host_port_not_numeric", head(b"Host: a:bc"), 400)
invalid("host_comma_list", head(b"Host: a,b"), 400)
invalid("host_colons_only", head(b"Host: ::::"), 400)
invalid("host_brackets_reversed", head(b"Host: ]["), 400)
invalid("host_two_ports", head(b"Host: a:80:90"), 400)
invalid("host_userinfo", head(b"Host: user@example.com"), 400)
invalid("host_port_six_digits", head(b"Host: example.com:123456"), 400)
invalid("host_port_over_65535", head(b"Host: example.com:65536"), 400)
invalid("host_empty_name_with_port", head(b"Host: :80"), 400)
invalid("host_ipv6_unclosed", head(b"Host: [::1"), 400)
invalid("host_ipv6_unbracketed", head(b"Host: ::1"), 400)
invalid("host_ipv6_two_double_colons", head(b"Host: [1::2::3]:80"), 400)
invalid("host_bad_escape", head(b"Host: a%zz"), 400)
invalid("host_non_ascii", head(b"Host: caf\xc3\xa9.example"), 400)
invalid("host_invalid_in_http10", head(b"Host: a:bc", start=b"GET / HTTP/1.0"), 400)
invalid("host_invalid_with_absolute_form",
        head(b"Host: a:bc", start=b"GET http://example.com/ HTTP/1.1"), 400)
invalid("absolute_form_userinfo", head(HOST, start=b"GET http://user@example.com/ HTTP/1.1"), 400)
invalid("absolute_form_empty_host", head(HOST, start=b"GET http:///x HTTP/1.1"), 400)
invalid("absolute_form_port_not_numeric",
        head(HOST, start=b"GET http://example.com:http/ HTTP/1.1"), 400)
invalid("target_with_fragment", head(HOST, start=b"GET /a#b HTTP/1.1"), 400)
invalid("space_before_colon", head(HOST, b"X-Name : v"), 400)
invalid("tab_before_colon", head(HOST, b"X-Name\t: v"), 400)
invalid("field_name_not_token", head(HOST, b"X@Name: v"), 400)
invalid("field_name_empty", head(HOST, b": v"), 400)
invalid("field_name_non_ascii", head(HOST, b"X-N\xe9: v"), 400)
invalid("field_without_colon", head(HOST, b"X-Name v"), 400)
invalid("obs_fold", head(HOST, b"X-Fold: a", b" b"), 400)
invalid("obs_fold_after_request_line", head(b" X-Fold: a", HOST), 400)
invalid("value_nul", head(HOST, b"X-Name: a\x00b"), 400)
invalid("value_bare_cr", head(HOST, b"X-Name: a\rb"), 400)
invalid("value_del", head(HOST, b"X-Name: a\x7fb"), 400)
invalid("value_ctl", head(HOST, b"X-Name: a\x01b"), 400)
invalid("bare_lf_in_headers", b"GET / HTTP/1.1\r\nHost: example.com\nX: 1\r\n\r\n", 400)
invalid("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: example.com\n\n", 400)
invalid("too_many_fields", head(HOST, *[b"X-H%d: %d" % (i, i) for i in range(10)]), 431,
        limits={"max_header_count": 10})
invalid("field_too_large", head(HOST, b"X-Long: 01234567890"), 431,
        limits={"max_field_bytes": 17})
invalid("head_too_large", head(HOST, b"X: 01234567890"), 431, limits={"max_head_bytes": 48})
invalid("expect_unknown", head(HOST, b"Expect: something-else"), 417)

# --- framing and smuggling vectors: RFC 9112 §6
invalid("cl_te", head(HOST, b"Content-Length: 6", CHUNKED, start=POST) + b"0\r\n\r\nX", 400)
invalid("te_cl", head(HOST, CHUNKED, b"Content-Length: 6", start=POST) + b"0\r\n\r\nX", 400)
invalid("te_xchunked", head(HOST, b"Transfer-Encoding: xchunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_chunked_twice_list",
        head(HOST, b"Transfer-Encoding: chunked, chunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_chunked_twice_fields", head(HOST, CHUNKED, CHUNKED, start=POST) + b"0\r\n\r\n", 400)
invalid("te_gzip_chunked",
        head(HOST, b"Transfer-Encoding: gzip, chunked", start=POST) + b"0\r\n\r\n", 501)
invalid("te_chunked_gzip",
        head(HOST, b"Transfer-Encoding: chunked, gzip", start=POST) + b"0\r\n\r\n", 400)
invalid("te_gzip_only", head(HOST, b"Transfer-Encoding: gzip", start=POST) + b"abc", 400)
invalid("te_identity", head(HOST, b"Transfer-Encoding: identity", start=POST), 400)
invalid("te_empty", head(HOST, b"Transfer-Encoding:", start=POST), 400)
invalid("te_quoted", head(HOST, b'Transfer-Encoding: "chunked"', start=POST) + b"0\r\n\r\n", 400)
invalid("te_obs_fold", head(HOST, b"Transfer-Encoding:", b" chunked", start=POST) + b"0\r\n\r\n",
        400)
invalid("te_space_before_colon",
        head(HOST, b"Transfer-Encoding : chunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_coding_not_a_token",
        head(HOST, b"Transfer-Encoding: gz@ip, chunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_coding_with_space",
        head(HOST, b"Transfer-Encoding: g zip, chunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_vertical_tab",
        head(HOST, b"Transfer-Encoding: \x0bchunked", start=POST) + b"0\r\n\r\n", 400)
invalid("te_http10", head(CHUNKED, start=b"POST / HTTP/1.0") + b"0\r\n\r\n", 400)
invalid("cl_plus", head(HOST, b"Content-Length: +5", start=POST) + b"hello", 400)
invalid("cl_negative", head(HOST, b"Content-Length: -1", start=POST), 400)
invalid("cl_space_inside", head(HOST, b"Content-Length: 1 0", start=POST) + b"0123456789", 400)
invalid("cl_hex", head(HOST, b"Content-Length: 0x5", start=POST) + b"hello", 400)
invalid("cl_decimal_point", head(HOST, b"Content-Length: 5.0", start=POST) + b"hello", 400)
invalid("cl_empty", head(HOST, b"Content-Length:", start=POST), 400)
invalid("cl_trailing_comma", head(HOST, b"Content-Length: 5,", start=POST) + b"hello", 400)
invalid("cl_nul", head(HOST, b"Content-Length: 5\x00", start=POST) + b"hello", 400)
invalid("cl_differing_fields",
        head(HOST, b"Content-Length: 5", b"Content-Length: 6", start=POST) + b"hello!", 400)
invalid("cl_differing_list", head(HOST, b"Content-Length: 5, 6", start=POST) + b"hello!", 400)
invalid("cl_nineteen_digits",
        head(HOST, b"Content-Length: 0000000000000000005", start=POST) + b"hello", 400)
invalid("cl_over_body_limit", head(HOST, b"Content-Length: 11", start=POST) + b"01234567890",
        413, limits={"max_body_bytes": 10})
invalid("cl_over_default_body_limit", head(HOST, b"Content-Length: 1073741825", start=POST),
        413)
invalid("cl_body_truncated", head(HOST, b"Content-Length: 10", start=POST) + b"short", 400)

# --- chunked coding: RFC 9112 §7.1
CHUNKED_POST = head(HOST, CHUNKED, start=POST)
invalid("chunk_size_negative", CHUNKED_POST + b"-5\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_size_0x_prefix", CHUNKED_POST + b"0x5\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_size_not_hex", CHUNKED_POST + b"g\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_size_empty", CHUNKED_POST + b"\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_size_leading_space", CHUNKED_POST + b" 5\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_size_nineteen_digits", CHUNKED_POST + b"0000000000000000001\r\nx\r\n0\r\n\r\n", 400)
invalid("chunk_size_overflow", CHUNKED_POST + b"10000000000000000\r\nx\r\n0\r\n\r\n", 400)
invalid("chunk_size_bare_lf", CHUNKED_POST + b"5\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_ext_bare_lf", CHUNKED_POST + b"5;a=b\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_ext_without_name", CHUNKED_POST + b"5;\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk_ext_bad_quoting", CHUNKED_POST + b'5;a="b\r\nhello\r\n0\r\n\r\n', 400)
invalid("chunk_ext_too_long", CHUNKED_POST + b"1;ext=abcd\r\nx\r\n0\r\n\r\n", 400,
        limits={"max_chunk_ext_bytes": 9})
invalid("chunk_data_too_long", CHUNKED_POST + b"5\r\nhelloXX\r\n0\r\n\r\n", 400)
invalid("chunk_data_bare_lf", CHUNKED_POST + b"5\r\nhello\n0\r\n\r\n", 400)
invalid("chunk_data_junk_instead_of_crlf", CHUNKED_POST + b"5\r\nhelloXY0\r\n\r\n", 400)
invalid("chunked_truncated", CHUNKED_POST + b"5\r\nhel", 400)
invalid("chunked_missing_last_chunk", CHUNKED_POST + b"5\r\nhello\r\n", 400)
invalid("chunked_over_body_limit", CHUNKED_POST + b"6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", 413,
        limits={"max_body_bytes": 10})
invalid("chunked_huge_chunk_over_default_limit", CHUNKED_POST + b"ffffffffffffffff\r\nx", 413)
invalid("trailer_space_before_colon", CHUNKED_POST + b"0\r\nX-T : 1\r\n\r\n", 400)
invalid("trailer_bare_lf", CHUNKED_POST + b"0\r\nX-T: 1\n\n", 400)
invalid("trailer_nul", CHUNKED_POST + b"0\r\nX-T: a\x00b\r\n\r\n", 400)
invalid("trailers_too_large", CHUNKED_POST + b"0\r\nX-T: 12345\r\nX-U: 67\r\n\r\n", 431,
        limits={"max_trailer_bytes": 18})
invalid("trailers_too_many", CHUNKED_POST + b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431,
        limits={"max_header_count": 2})


# ============================================================================ oracles
# Where h11 0.16 or httptools 0.9 (llhttp) parse a case differently from synack, and why
# synack's reading is the one RFC 9110/9112 asks for (or is a configured limit).


def differs(name: str, note: str, **oracles: Any) -> None:
    cases = VALID if name in VALID else INVALID
    raw, expected = cases[name]
    assert "note" not in expected, name
    cases[name] = (raw, {**expected, **oracles, "note": note})


LIMIT = ("A synack limit set far below the oracles' own bounds: RFC 9110 §5.4 and RFC 9112 "
         "§3 let a server refuse lines, fields and content larger than it wishes to process.")

# --- valid cases
differs("leading_empty_lines", h11="reject",
        note="RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) received "
        "prior to the request-line; h11 refuses them.")
differs("http12_is_served_as_11", httptools="reject",
        note="RFC 9110 §2.5: a recipient MUST process a higher minor version as the highest "
        "minor version it implements (1.1); llhttp refuses HTTP/1.2.")
differs("field_ows_stripped", httptools={"headers": [HOST_PAIR, ["x-pad", "a \t b \t "]]},
        note="RFC 9110 §5.5: OWS before and after the field value is not part of the value; "
        "llhttp keeps the trailing whitespace.")
differs("chunked_trailers",
        httptools={"trailers": [["x-checksum", "abc"], ["x-other", "two words "]]},
        note="RFC 9110 §5.5 (as for header fields): trailing OWS is not part of a trailer "
        "field's value; llhttp keeps it.")
differs("chunked_uppercase_hex_and_coding",
        h11={"headers": [HOST_PAIR, ["transfer-encoding", "chunked"]]},
        note="RFC 9112 §7: transfer-coding names are case-insensitive, which both honour; h11 "
        "also rewrites the reported value to lower case, synack reports it as received.")
differs("content_length_duplicate_identical",
        h11={"headers": [HOST_PAIR, ["content-length", "5"]]}, httptools="reject",
        note="RFC 9110 §8.6: a recipient MAY accept repeated identical Content-Length values as "
        "one; synack accepts and keeps both fields, h11 keeps one field, llhttp refuses.")
differs("content_length_identical_list",
        h11={"headers": [HOST_PAIR, ["content-length", "5"]]}, httptools="reject",
        note="RFC 9110 §8.6: a list of identical Content-Length values MAY be accepted as one "
        "value; synack keeps the field as received, h11 rewrites it to '5', llhttp refuses.")
differs("chunked_te_list_with_empty_elements", h11="reject",
        note="RFC 9110 §5.6.1: a recipient MUST accept (and ignore) empty list elements, so "
        "',chunked' is the coding list [chunked]; h11 only accepts the exact value 'chunked'.")
differs("chunked_extensions_bws", h11="reject", httptools="reject",
        note="RFC 9112 §7.1.1: chunk-ext = *( BWS ';' BWS chunk-ext-name [ BWS '=' BWS "
        "chunk-ext-val ] ), and RFC 9110 §5.6.3 says recipients MUST parse and remove BWS; "
        "h11 and llhttp refuse whitespace around ';' / '='.")
differs("chunk_size_trailing_whitespace", httptools="reject",
        note="Leniency shared with h11: whitespace after chunk-size (RFC 9112 §7.1.1 allows BWS "
        "only before ';') is ignored; it cannot change the size, so it is no smuggling vector.")
differs("obs_fold_allowed", httptools="reject",
        note="RFC 9112 §5.2: obs-fold is accepted only because this case turns on "
        "Limits(allow_obs_fold=True) (replace with SP); llhttp always refuses it.")
differs("bare_lf_allowed", httptools="reject",
        note="RFC 9112 §2.2: a recipient MAY accept a bare LF as a line terminator; this case "
        "turns that on with Limits(allow_bare_lf=True), llhttp always refuses it.")

# --- invalid cases
for name in ("request_line_too_long", "field_too_large", "head_too_large", "too_many_fields",
             "chunked_over_body_limit", "cl_over_body_limit", "trailers_too_large",
             "trailers_too_many", "chunk_ext_too_long"):
    differs(name, LIMIT, h11="accept", httptools="accept")
differs("asterisk_form_with_get", h11="accept", httptools="accept",
        note="RFC 9112 §3.2.4: the asterisk-form is only used for a server-wide OPTIONS request.")
differs("authority_form_with_get", h11="accept",
        note="RFC 9112 §3.2.3: the authority-form is only used for CONNECT requests.")
differs("target_relative", h11="accept",
        note="RFC 9112 §3.2: 'index.html' is none of origin-, absolute-, authority- or "
        "asterisk-form; an invalid request-line gets 400 (§3).")
differs("connect_origin_form", h11="accept", httptools="accept",
        note="RFC 9112 §3.2.3: a CONNECT request-target is authority-form only.")
differs("connect_authority_form", h11="accept", httptools="accept",
        note="RFC 9110 §9.3.6 / §15.6.2: synack is an origin server, not a tunnel; a method it "
        "does not implement gets 501. The oracles only parse and leave that to the app.")
differs("version_http2", h11="accept", httptools="accept",
        note="RFC 9110 §15.6.6 / RFC 9112 §2.3: HTTP/2.0 is not a version HTTP/1.1 framing "
        "can serve; 505. The oracles parse the line and leave the version to the app.")
differs("version_http09", h11="accept", httptools="accept",
        note="RFC 9110 §15.6.6: synack does not speak HTTP/0.9 (major version 0); 505.")
differs("version_h2_preface", h11="accept",
        note="RFC 9113 §3.4: the HTTP/2 connection preface is not an HTTP/1.1 request; it is "
        "refused with 505 like any HTTP/2.0 request-line (RFC 9110 §15.6.6).")
differs("version_missing_http09_simple_request", httptools="accept",
        note="RFC 9112 §3: request-line = method SP request-target SP HTTP-version; llhttp "
        "accepts a versionless HTTP/0.9 simple request, synack does not speak HTTP/0.9.")
differs("request_line_double_space", httptools="accept",
        note="RFC 9112 §3: components are separated by a single SP; whitespace-tolerant "
        "parsing is allowed but warned against as a smuggling risk, so synack refuses it.")
differs("missing_host_http11", httptools="accept",
        note="RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host; "
        "llhttp does not check Host.")
differs("two_host_fields", httptools="accept",
        note="RFC 9112 §3.2: a server MUST respond 400 to a request with more than one Host "
        "field; llhttp does not check Host.")
differs("host_with_space", h11="accept", httptools="accept",
        note="RFC 9112 §3.2: a server MUST respond 400 to a Host field with an invalid value; "
        "Host = uri-host [ ':' port ] (RFC 9110 §7.2) has no spaces.")
HOST_NOTE = ("RFC 9112 §3.2: a server MUST respond 400 to a Host field with an invalid value; "
             "Host = uri-host [ ':' port ] (RFC 9110 §7.2, RFC 3986 §3.2.2-3). The oracles do "
             "not check Host; see synack/h1/grammar.py for the narrowings (no comma, no "
             "userinfo, port at most 65535).")
for name in ("host_port_not_numeric", "host_comma_list", "host_colons_only",
             "host_brackets_reversed", "host_two_ports", "host_userinfo", "host_port_six_digits",
             "host_port_over_65535", "host_empty_name_with_port", "host_ipv6_unclosed",
             "host_ipv6_unbracketed", "host_ipv6_two_double_colons", "host_bad_escape",
             "host_non_ascii", "host_invalid_in_http10", "host_invalid_with_absolute_form"):
    differs(name, HOST_NOTE, h11="accept", httptools="accept")
differs("absolute_form_userinfo", h11="accept", httptools="accept",
        note="RFC 9110 §4.2.4: a recipient SHOULD treat userinfo in an http(s) URI as an error; "
        "the authority stands for Host (RFC 9112 §3.2.2), which has no userinfo.")
differs("absolute_form_empty_host", h11="accept", httptools="accept",
        note="RFC 9110 §4.2.1: a recipient that processes an http URI with an empty host "
        "identifier MUST reject it as invalid.")
differs("absolute_form_port_not_numeric", h11="accept", httptools="accept",
        note="RFC 3986 §3.2.3: port = *DIGIT; the authority stands for Host (RFC 9112 §3.2.2), "
        "so it obeys the Host grammar.")
differs("target_with_fragment", h11="accept", httptools="accept",
        note="RFC 9112 §3.2: no request-target form has a fragment ('#'); an invalid "
        "request-line gets 400 (RFC 9112 §3), rather than a path a proxy reads differently.")
differs("te_coding_not_a_token", httptools="accept",
        note="RFC 9112 §7: a transfer-coding is a token (with parameters); a malformed list is "
        "faulty framing (400), and llhttp only looks at the last element.")
differs("te_coding_with_space", httptools="accept",
        note="RFC 9112 §7: a transfer-coding is a token (with parameters); a malformed list is "
        "faulty framing (400), and llhttp only looks at the last element.")
AUTHORITY_NOTE = ("RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore the Host "
                  "field and use the target's authority; synack's Host field says so, the "
                  "oracles report the field as received.")
differs("absolute_form_authority_replaces_host", AUTHORITY_NOTE,
        h11={"headers": [["host", "other.example"]]},
        httptools={"headers": [["host", "other.example"]]})
differs("absolute_form_http10_gains_host", AUTHORITY_NOTE, h11={"headers": []},
        httptools={"headers": []})
differs("absolute_form_ipv6_authority", AUTHORITY_NOTE, h11={"headers": [HOST_PAIR]},
        httptools={"headers": [HOST_PAIR]})
differs("host_with_slash", h11="accept", httptools="accept",
        note="RFC 9112 §3.2: a server MUST respond 400 to a Host field with an invalid value; "
        "a path is not part of uri-host [ ':' port ] (RFC 9110 §7.2).")
differs("obs_fold", h11="accept",
        note="RFC 9112 §5.2: a server MUST either reject obs-fold with 400 or replace it with "
        "SP; synack rejects by default, h11 unfolds.")
differs("te_obs_fold", h11="accept",
        note="RFC 9112 §5.2: obs-fold is refused by default (h11 unfolds it); a folded "
        "Transfer-Encoding is a classic smuggling vector.")
differs("bare_lf_in_headers", h11="accept",
        note="RFC 9112 §2.2: accepting a bare LF line ending is only a MAY; synack refuses it "
        "by default because parsers that disagree on it can be smuggled through.")
differs("bare_lf_everywhere", h11="accept",
        note="RFC 9112 §2.2: accepting bare LF line endings is only a MAY; refused by default.")
differs("trailer_bare_lf", h11="accept",
        note="RFC 9112 §2.2 / §7.1.2: trailer lines end in CRLF; bare LF is refused by default.")
differs("value_ctl", h11="accept",
        note="RFC 9110 §5.5: field values with CTL characters other than HTAB are invalid; a "
        "recipient MAY retain them, synack rejects the message instead.")
differs("value_del", h11="accept",
        note="RFC 9110 §5.5: field-vchar = VCHAR / obs-text, and DEL (0x7F) is neither; h11 "
        "allows it, synack rejects the message.")
differs("cl_te", h11="accept",
        note="RFC 9112 §6.3 item 3: Content-Length with Transfer-Encoding ought to be handled "
        "as an error (CL.TE smuggling); synack rejects, h11 lets chunked win.")
differs("te_cl", h11="accept",
        note="RFC 9112 §6.3 item 3: Transfer-Encoding with Content-Length ought to be handled "
        "as an error (TE.CL smuggling); synack rejects, h11 lets chunked win.")
differs("te_http10", h11="accept", httptools="accept",
        note="RFC 9112 §6.1: a server MUST treat an HTTP/1.0 message with Transfer-Encoding "
        "as having faulty framing; synack refuses it with 400.")
differs("te_gzip_chunked", httptools="accept",
        note="RFC 9112 §6.1: a server that receives a transfer coding it does not understand "
        "SHOULD respond 501; llhttp delivers the still-gzipped body.")
differs("cl_nineteen_digits", h11="accept", httptools="accept",
        note="RFC 9110 §8.6: recipients MUST anticipate large Content-Length numerals and "
        "prevent overflow; synack bounds the value to 18 digits (leading zeros included).")
differs("chunk_size_nineteen_digits", h11="accept", httptools="accept",
        note="RFC 9112 §7.1: recipients MUST anticipate large hex numerals and prevent "
        "overflow; synack bounds chunk-size to 16 hex digits (leading zeros included).")
differs("chunk_ext_without_name", h11="accept",
        note="RFC 9112 §7.1.1: chunk-ext-name is a token, so ';' alone is malformed; h11 "
        "skips extensions without looking at them.")
differs("chunk_ext_bad_quoting", h11="accept",
        note="RFC 9112 §7.1.1: chunk-ext-val is a token or a quoted-string; an unterminated "
        "quote is malformed. h11 skips extensions without looking at them.")
differs("expect_unknown", h11="accept", httptools="accept",
        note="RFC 9110 §10.1.1: a server MAY answer an expectation other than 100-continue "
        "with 417; the oracles leave Expect to the application.")


# ============================================================================ writing


def write(directory: Path, cases: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    directory.mkdir(exist_ok=True)
    for stale in directory.glob("*.http"):
        if stale.stem not in cases:
            stale.unlink()
            stale.with_suffix(".json").unlink(missing_ok=True)
    for name, (raw, expected) in cases.items():
        (directory / f"{name}.http").write_bytes(raw)
        (directory / f"{name}.json").write_text(render(expected))


def render(expected: dict[str, Any]) -> str:
    return json.dumps(expected, indent=1, ensure_ascii=True) + "\n"


def main() -> int:
    write(HERE / "valid", VALID)
    write(HERE / "invalid", INVALID)
    print(f"{len(VALID)} valid, {len(INVALID)} invalid cases written to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
