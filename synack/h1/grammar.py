"""RFC 9110/9112 ABNF as compiled regexes and byte tables.

Every pattern quotes the rule it implements. Must not import asyncio, socket, ssl, os, time
or logging.
"""

from __future__ import annotations

import re

__all__ = [
    "FIELD_NAME",
    "FIELD_VALUE",
    "REQUEST_LINE",
    "REQUEST_LINE_PREFIX",
    "HTTP_VERSION_LIKE",
    "CHUNK_SIZE_LINE",
    "ABSOLUTE_FORM",
    "HOST",
    "REG_NAME_CHARS",
    "valid_host",
    "CONTENT_LENGTH",
    "TRANSFER_CODING",
    "TARGET_TABLE",
]

# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#       / DIGIT / ALPHA                                                  (RFC 9110 §5.6.2)
_TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
# field-name = token; token = 1*tchar                                    (RFC 9110 §5.1, §5.6.2)
FIELD_NAME = re.compile(_TCHAR + rb"+")

# field-value = *field-content; field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
#   field-vchar ]; field-vchar = VCHAR / obs-text                        (RFC 9110 §5.5)
# After OWS is stripped, a value is any run of VCHAR, obs-text, SP and HTAB. NUL, CR, LF and the
# other CTLs are refused (§5.5: "MUST either reject the message or replace ... with SP").
FIELD_VALUE = re.compile(rb"[\x20-\x7e\x80-\xff\t]*")

# request-target characters: visible ASCII except "#". RFC 3986 characters are a subset of
# VCHAR; a target with spaces, controls or raw non-ASCII bytes is refused as h11 does. "#"
# starts a fragment, which no request-target form has (RFC 9112 §3.2; a client strips it,
# RFC 9110 §4.2.5): a server that dropped it and a proxy that kept it would see different
# paths, so a request-line holding one is invalid (400, RFC 9112 §3).
_TARGET_CHAR = rb"[\x21\x22\x24-\x7e]"

# A ``bytes.translate`` table that keeps every byte _TARGET_CHAR admits and changes every other
# one (to NUL, and NUL to 0x01): a target is made of admitted bytes exactly when translating
# leaves it equal. (A table alone, with no bytes to delete, takes translate's fast loop.)
TARGET_TABLE = bytes(
    byte if byte in (0x21, 0x22) or 0x24 <= byte <= 0x7E else (1 if byte == 0 else 0) for byte in range(256)
)

# request-line = method SP request-target SP HTTP-version                (RFC 9112 §3)
# method = token; HTTP-version = HTTP-name "/" DIGIT "." DIGIT           (RFC 9112 §2.3)
REQUEST_LINE = re.compile(
    rb"(" + _TCHAR + rb"+) (" + _TARGET_CHAR + rb"+) HTTP/([0-9])\.([0-9])"
)
# Something that claims to be HTTP but with a version we can't speak → 505, not 400.
# Method and target must be well-formed too: only the version may be what is wrong (a request
# line with a bad method or target is a 400, RFC 9112 §3).
HTTP_VERSION_LIKE = re.compile(_TCHAR + rb"+ " + _TARGET_CHAR + rb"+ HTTP/[0-9]+(\.[0-9]+)?")
# What the start of a request-line may look like before its end has arrived: a prefix of
# REQUEST_LINE or of HTTP_VERSION_LIKE. Bytes that match no such prefix (a TLS ClientHello, a
# lowercase "http/1.1", a second space) can never become a request-line, so the head is
# refused at once instead of waiting for the rest (RFC 9112 §3: an invalid request-line gets
# 400). Prefix-closed: when a prefix fails, every longer input fails too.
REQUEST_LINE_PREFIX = re.compile(
    _TCHAR + rb"*|" + _TCHAR + rb"+ (?:" + _TARGET_CHAR + rb"+(?: (?:H(?:T(?:T(?:P(?:/(?:"
    rb"[0-9]+(?:\.[0-9]*)?)?)?)?)?)?)?)?)?"
)

# absolute-form = absolute-URI  (scheme ":" hier-part [ "?" query ])     (RFC 9112 §3.2.2)
# Only the hier-part shape "//" authority path-abempty is accepted: an origin server needs an
# authority to stand for Host. Groups: the authority (everything up to the first "/", "?"
# or "#"), then the path and query.
ABSOLUTE_FORM = re.compile(
    rb"[A-Za-z][A-Za-z0-9+.-]*://([\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e]*)(" + _TARGET_CHAR
    + rb"*)"
)

# Host = uri-host [ ":" port ]                          (RFC 9110 §7.2, RFC 9112 §3.2)
# uri-host = IP-literal / IPv4address / reg-name; port = *DIGIT          (RFC 3986 §3.2.2-3)
# reg-name = *( unreserved / pct-encoded / sub-delims )
# unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
# sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
# Deliberate narrowings, each a value no client sends for one host:
# - "," is left out of reg-name although it is a sub-delim: a comma in Host is two Host values
#   joined into a list (RFC 9110 §5.3), and more than one Host is a 400 (RFC 9112 §3.2).
# - userinfo ("user@host") has no place in Host (uri-host has no "@"; RFC 9110 §4.2.4 calls
#   userinfo in an http URI an error).
# - a port is at most five digits and at most 65535 (port = *DIGIT allows more, but no TCP
#   port is larger, so such a value cannot name this server; nginx refuses them too).
# - an empty port ("example.com:") is accepted, as RFC 3986 §3.2.3 allows, h11 and nginx do;
#   an empty host with a port (":80") is refused (RFC 9110 §4.2.1: an empty host is invalid).
# - the empty value is valid: it is what a client sends when the target URI has no
#   authority (RFC 9112 §3.2).
# - an IPv6 literal must be a well-formed IPv6address (or IPvFuture) in brackets; zone IDs
#   (RFC 6874) are not part of RFC 3986's IP-literal and are refused.
#: The reg-name bytes without "%" (whose escapes must be checked): a value made only of these
#: is a valid Host with no port, which one ``bytes.strip`` can tell.
REG_NAME_CHARS = b"-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~!$&'()*+;="
_REG_NAME = rb"(?:[-.0-9A-Za-z_~!$&'()*+;=]|%[0-9A-Fa-f]{2})+"
# h16 = 1*4HEXDIG; ls32 = ( h16 ":" h16 ) / IPv4address
# IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet
_H16 = rb"[0-9A-Fa-f]{1,4}"
_DEC_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = _DEC_OCTET + rb"\." + _DEC_OCTET + rb"\." + _DEC_OCTET + rb"\." + _DEC_OCTET
_LS32 = rb"(?:" + _H16 + rb":" + _H16 + rb"|" + _IPV4 + rb")"


def _h16_colons(count: int) -> bytes:
    """``count( h16 ":" )``"""
    return rb"(?:" + _H16 + rb":){%d}" % count if count else b""


def _before_double_colon(most: int) -> bytes:
    """``[ *most( h16 ":" ) h16 ]``"""
    return rb"(?:(?:" + _H16 + rb":){0,%d}" % most + _H16 + rb")?"


# IPv6address =                            6( h16 ":" ) ls32
#             /                       "::" 5( h16 ":" ) ls32
#             / [               h16 ] "::" 4( h16 ":" ) ls32
#             / [ *1( h16 ":" ) h16 ] "::" 3( h16 ":" ) ls32
#             / [ *2( h16 ":" ) h16 ] "::" 2( h16 ":" ) ls32
#             / [ *3( h16 ":" ) h16 ] "::"    h16 ":"   ls32
#             / [ *4( h16 ":" ) h16 ] "::"              ls32
#             / [ *5( h16 ":" ) h16 ] "::"              h16
#             / [ *6( h16 ":" ) h16 ] "::"                                (RFC 3986 §3.2.2)
_IPV6 = rb"|".join([
    _h16_colons(6) + _LS32,
    rb"::" + _h16_colons(5) + _LS32,
    *(_before_double_colon(most) + rb"::" + _h16_colons(3 - most) + _LS32 for most in range(4)),
    _before_double_colon(4) + rb"::" + _LS32,
    _before_double_colon(5) + rb"::" + _H16,
    _before_double_colon(6) + rb"::",
])
# IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
_IPV_FUTURE = rb"[vV][0-9A-Fa-f]+\.[-.0-9A-Za-z_~!$&'()*+,;=:]+"
#: A non-empty Host value; group 1 is the port (None without a ":"). With a non-empty port it
#: is also the authority-form of a CONNECT target (RFC 9112 §3.2.3).
HOST = re.compile(
    rb"(?:\[(?:" + _IPV6 + rb"|" + _IPV_FUTURE + rb")\]|" + _REG_NAME + rb")(?::([0-9]{0,5}))?"
)


def valid_host(value: bytes) -> bool:
    """Whether ``value`` is a Host field value (or an absolute-form authority) we accept."""
    if not value.strip(REG_NAME_CHARS):
        return True  # a plain reg-name (or nothing): the common case, one C call
    match = HOST.fullmatch(value)
    if match is None:
        return False
    port = match.group(1)
    return port is None or len(port) < 5 or int(port) <= 65535


# Content-Length = 1*DIGIT                                               (RFC 9110 §8.6)
# Bounded to 18 digits so int() never sees a huge number (< 2**63).
CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")

# transfer-coding = token *( OWS ";" OWS transfer-parameter )
# transfer-parameter = token BWS "=" BWS ( token / quoted-string )       (RFC 9112 §7)
# One element of a Transfer-Encoding list, after the list is split on "," and OWS stripped.
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
TRANSFER_CODING = re.compile(
    _TCHAR + rb"+(?:[ \t]*;[ \t]*" + _TCHAR + rb"+[ \t]*=[ \t]*(?:" + _TCHAR + rb"+|"
    + _QUOTED_STRING + rb"))*"
)

# chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF                   (RFC 9112 §7.1)
# chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# Size bounded to 16 hex digits (2**64) against overflow; extensions validated loosely as
# tokens / quoted strings and otherwise ignored.
CHUNK_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:"
    + _TCHAR + rb"+|" + _QUOTED_STRING + rb"))?)*)[ \t]*"
)
