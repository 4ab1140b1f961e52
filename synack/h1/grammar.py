"""RFC 9110/9112 ABNF as compiled regexes and byte tables.

Every pattern quotes the rule it implements. Must not import asyncio, socket, ssl, os, time
or logging.
"""

from __future__ import annotations

import re

__all__ = [
    "TOKEN",
    "FIELD_NAME",
    "FIELD_VALUE",
    "REQUEST_LINE",
    "HTTP_VERSION_LIKE",
    "CHUNK_SIZE_LINE",
    "REQUEST_TARGET",
    "ABSOLUTE_FORM",
    "AUTHORITY_FORM",
    "CONTENT_LENGTH",
    "STRICT_HEAD",
    "STRICT_FIELD",
]

# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#       / DIGIT / ALPHA                                                  (RFC 9110 §5.6.2)
_TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
# token = 1*tchar
TOKEN = re.compile(_TCHAR + rb"+")
# field-name = token                                                     (RFC 9110 §5.1)
FIELD_NAME = TOKEN

# field-value = *field-content; field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
#   field-vchar ]; field-vchar = VCHAR / obs-text                        (RFC 9110 §5.5)
# After OWS is stripped, a value is any run of VCHAR, obs-text, SP and HTAB. NUL, CR, LF and the
# other CTLs are refused (§5.5: "MUST either reject the message or replace ... with SP").
FIELD_VALUE = re.compile(rb"[\x20-\x7e\x80-\xff\t]*")

# The fast path for a whole head in the strictest shape: request-line with an origin-form
# target and HTTP/1.x, then zero or more CRLF field-name ":" field-value lines (RFC 9112 §2.1,
# §3, §5). Groups: method, target, minor version, and the field block (starting with CRLF).
# Linear: the value class excludes CR, so each line ends exactly where the next CRLF starts.
# What does not match (obs-fold, bare LF, controls, other forms) takes the careful path.
STRICT_HEAD = re.compile(
    rb"(" + _TCHAR + rb"+) (/[\x21-\x7e]*) HTTP/1\.([0-9])((?:\r\n" + _TCHAR
    + rb"+:[\t\x20-\x7e\x80-\xff]*)*)"
)
# The (name, value-with-OWS) pairs of a field block that STRICT_HEAD accepted.
STRICT_FIELD = re.compile(rb"\r\n([^:]+):([^\r]*)")

# request-line = method SP request-target SP HTTP-version                (RFC 9112 §3)
# method = token; HTTP-version = HTTP-name "/" DIGIT "." DIGIT           (RFC 9112 §2.3)
# request-target: we accept only visible ASCII (RFC 3986 characters are a subset); a target
# with spaces, controls or raw non-ASCII bytes is refused like h11 does.
REQUEST_LINE = re.compile(
    rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])"
)
# Something that claims to be HTTP but with a version we can't speak → 505, not 400.
# Method and target must be well-formed too: only the version may be what is wrong (a request
# line with a bad method or target is a 400, RFC 9112 §3).
HTTP_VERSION_LIKE = re.compile(_TCHAR + rb"+ [\x21-\x7e]+ HTTP/[0-9]+(\.[0-9]+)?")

# origin-form = absolute-path [ "?" query ]                              (RFC 9112 §3.2.1)
REQUEST_TARGET = re.compile(rb"/[\x21-\x7e]*")
# absolute-form = absolute-URI  (scheme ":" hier-part [ "?" query ])     (RFC 9112 §3.2.2)
ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://[\x21-\x7e]*")
# authority-form = uri-host ":" port                                     (RFC 9112 §3.2.3)
AUTHORITY_FORM = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]+):[0-9]+")

# Content-Length = 1*DIGIT                                               (RFC 9110 §8.6)
# Bounded to 18 digits so int() never sees a huge number (< 2**63).
CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")

# chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF                   (RFC 9112 §7.1)
# chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# Size bounded to 16 hex digits (2**64) against overflow; extensions validated loosely as
# tokens / quoted strings and otherwise ignored.
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:"
    + _TCHAR + rb"+|" + _QUOTED + rb"))?)*)[ \t]*"
)
