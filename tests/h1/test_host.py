"""The Host field's grammar (RFC 9110 §7.2, RFC 9112 §3.2, RFC 3986 §3.2.2-3), on both head
paths: a value that is not ``uri-host [ ":" port ]`` gets 400.

Decisions beyond the ABNF (see grammar.py): an empty value and an empty port are valid, a port
has at most five digits and is at most 65535, a comma (two Host values joined) and userinfo
are refused, IPv6 literals must be well-formed and bracketed.
"""

from __future__ import annotations

import pytest

from synack.h1 import grammar

from .helpers import first_request, status_of

VALID = [
    b"",
    b"example.com",
    b"EXAMPLE.com",
    b"localhost:8000",
    b"example.com:",  # port = *DIGIT (RFC 3986 §3.2.3); h11 and nginx accept it too
    b"example.com:0",
    b"example.com:65535",
    b"example.com:00080",
    b"127.0.0.1",
    b"127.0.0.1:80",
    b"999.999.999.999",  # not an IPv4address, but a valid reg-name
    b"[::1]",
    b"[::1]:80",
    b"[::1]:",  # the same rule as for a name: an empty port
    b"[::]",
    b"[1:2:3:4:5:6:7:8]:443",
    b"[::ffff:192.0.2.1]",
    b"[2001:DB8::1]",
    b"[v1.fe80::a+en1]",  # IPvFuture
    b"xn--caf-dma.example",
    b"a%2Db",
    b"my_host~1!$&'()*+;=",
]

INVALID = [
    b"a:bc",
    b"a,b",
    b"a, b",
    b"::::",
    b"][",
    b"a:80:90",
    b"user@host",
    b"user:pw@host:80",
    b"@host",
    b"a:123456",
    b"a:65536",
    b"a:99999",
    b":80",
    b":",
    b"[::1",
    b"::1",
    b"::1]",
    b"[::1]x",
    b"[]",
    b"[1.2.3.4]",
    b"[::1::2]",
    b"[1:2:3:4:5:6:7:8:9]",
    b"[fe80::1%25eth0]",  # RFC 6874 zone IDs are not part of RFC 3986's IP-literal
    b"[::256.0.0.1]",
    b"a b",
    b"a\tb",
    b"a/b",
    b"a?b",
    b"a#b",
    b"a\\b",
    b"a%zz",
    b"a%2",
    b'a"b',
    b"a<b>",
    b"caf\xc3\xa9.example",  # IDNs travel as A-labels (xn--...)
    b"\xff",
]


def with_host(value: bytes, extra: bytes = b"") -> bytes:
    return b"GET / HTTP/1.1\r\nHost: " + value + b"\r\n" + extra + b"\r\n"


# Each value on the fast head path (Host alone, or with a Content-Length) and the general one.
PATHS = [b"", b"Content-Length: 0\r\n", b"Connection: keep-alive\r\n"]


@pytest.mark.parametrize("value", VALID)
@pytest.mark.parametrize("extra", PATHS)
def test_valid_host(value: bytes, extra: bytes) -> None:
    request = first_request(with_host(value, extra))
    assert request.host == value
    assert request.headers.get(b"host") == value
    assert grammar.valid_host(value)


@pytest.mark.parametrize("value", INVALID)
@pytest.mark.parametrize("extra", PATHS)
def test_invalid_host(value: bytes, extra: bytes) -> None:
    assert status_of(with_host(value, extra)) == 400
    assert not grammar.valid_host(value)


@pytest.mark.parametrize("value", INVALID)
def test_invalid_host_in_http10(value: bytes) -> None:
    # RFC 9112 §3.2: "any request message ... with an invalid field value", not only 1.1.
    assert status_of(b"GET / HTTP/1.0\r\nHost: " + value + b"\r\n\r\n") == 400


@pytest.mark.parametrize("value", [b"a:bc", b"user@h", b"a,b"])
def test_invalid_host_with_absolute_form(value: bytes) -> None:
    # The Host field is ignored for the target's authority, but it is still a Host field
    # with an invalid value (RFC 9112 §3.2: 400).
    data = b"GET http://ok.example/ HTTP/1.1\r\nHost: " + value + b"\r\n\r\n"
    assert status_of(data) == 400


def test_missing_host_and_two_hosts() -> None:
    assert status_of(b"GET / HTTP/1.1\r\nX: y\r\n\r\n") == 400
    assert status_of(b"GET / HTTP/1.1\r\n\r\n") == 400
    assert status_of(with_host(b"a", b"Host: a\r\n")) == 400
    assert status_of(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n") == 400


def test_ipv6_grammar_matches_the_standard_library() -> None:
    # grammar._IPV6 is written from RFC 3986's ABNF; ipaddress is an independent reading.
    import ipaddress
    import random

    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("0123456789abcdefABCDEF:.") for _ in range(rng.randint(1, 24)))
        try:
            ipaddress.IPv6Address(text)
            expected = True
        except ValueError:
            expected = False
        assert grammar.valid_host(b"[" + text.encode() + b"]") is expected, text
    for _ in range(300):
        address = ipaddress.IPv6Address(rng.getrandbits(128))
        for text in (address.compressed, address.exploded):
            assert grammar.valid_host(b"[" + text.encode() + b"]:1"), text


def test_remembered_hosts_stay_bounded_and_change_no_verdict() -> None:
    from synack.h1 import reader

    for number in range(reader._KNOWN_HOSTS_SIZE * 2 + 1):
        assert first_request(with_host(b"h%d.example:80" % number)).host == b"h%d.example:80" % number
        assert status_of(with_host(b"h%d.example:8o" % number)) == 400
    assert 0 < len(reader._KNOWN_HOSTS) <= reader._KNOWN_HOSTS_SIZE
    long_name = b"a" * 300 + b":1"
    assert first_request(with_host(long_name)).host == long_name
    assert long_name not in reader._KNOWN_HOSTS
