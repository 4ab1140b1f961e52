"""Static files, the HTTP rules: validators, preconditions, ranges, content negotiation, types.

Pure functions over header bytes and file metadata; no I/O. The request-side rules follow
RFC 9110: §8.8 (validators), §13 (conditional requests), §14 (range requests) and §12.5.3
(Accept-Encoding). HTTP-dates are parsed by ``synack.httpdate``.

Every parser here takes whatever bytes a client sent and answers "invalid" (None) for what
it cannot use, which the caller ignores as RFC 9110 §13.1 and §14.2 require; none raises.
Numbers are never converted past a fixed number of digits, so Python's int-string limit (and
the cost of huge conversions) cannot be reached from a request.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

from ..httpdate import parse_http_date

__all__ = [
    "Variant",
    "ENCODINGS",
    "make_etag",
    "check_preconditions",
    "if_range_allows",
    "parse_range",
    "plan_ranges",
    "choose_encoding",
    "content_type",
]


@dataclass(frozen=True, slots=True)
class Variant:
    """What the validators of one served file (or precompressed sibling) are made of."""

    etag: bytes  # with its quotes, e.g. b'"1a2b-400-17e3..."'
    mtime: int  # whole seconds since the epoch: Last-Modified


#: Precompressed sibling suffixes, most preferred first: (content-coding, file suffix).
ENCODINGS: tuple[tuple[bytes, str], ...] = ((b"br", ".br"), (b"zstd", ".zst"), (b"gzip", ".gz"))


# ---------------------------------------------------------------------------- validators


def make_etag(inode: int, size: int, mtime_ns: int) -> bytes:
    """A strong entity tag (RFC 9110 §8.8.3) from the metadata of the opened file.

    Inode, size and nanosecond mtime change whenever the bytes are replaced (a new file
    renamed over the old one gets a new inode), and each precompressed sibling is its own
    file, so every variant has a distinct tag.
    """
    return b'"%x-%x-%x"' % (inode, size, mtime_ns)


# entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE (RFC 9110 §8.8.3).
# etagc allows commas, so a list is tokenised, not split.
_ENTITY_TAG = re.compile(rb'[ \t]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')
_LIST_FILLER = re.compile(rb"[ \t]*,")
_LIST_END = re.compile(rb"[ \t]*\Z")


def _entity_tags(value: bytes) -> list[tuple[bool, bytes]] | None:
    """The (weak, opaque-tag) pairs of an If-Match / If-None-Match list, or None if invalid."""
    tags: list[tuple[bool, bytes]] = []
    position, end = 0, len(value)
    while position < end:
        filler = _LIST_FILLER.match(value, position)  # empty list elements are allowed
        if filler:
            position = filler.end()
            continue
        if _LIST_END.match(value, position):  # no slice: a long list stays linear
            break
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


def _etag_list(values: list[bytes]) -> list[tuple[bool, bytes]] | str:
    """Combine header lines; ``"*"`` when the field is the wildcard, ``"invalid"`` when bad."""
    joined = b", ".join(values).strip(b" \t")
    if joined == b"*":
        return "*"
    tags = _entity_tags(joined)
    return "invalid" if tags is None else tags


def _strong_match(tags: list[tuple[bool, bytes]], etag: bytes) -> bool:
    # §8.8.3.2 strong comparison: both tags strong and the opaque tags equal.
    return any(not weak and opaque == etag for weak, opaque in tags)


def _weak_match(tags: list[tuple[bool, bytes]], etag: bytes) -> bool:
    # §8.8.3.2 weak comparison: the opaque tags equal, either or both may be weak.
    return any(opaque == etag for _, opaque in tags)


# ---------------------------------------------------------------------------- preconditions


def check_preconditions(method: bytes, headers: dict[bytes, list[bytes]], variant: Variant) -> int | None:
    """Evaluate the preconditions in the order of RFC 9110 §13.2.2.

    Args:
        method: the request method (only GET and HEAD reach here).
        headers: lowercased field name → the field lines, for the conditional fields.
        variant: the validators of the selected representation.

    Returns:
        412 or 304 when a precondition decides the response, else None (continue with
        Range, then the normal 200).
    """
    if_match = headers.get(b"if-match")
    if if_match:
        # Step 1: If-Match, strong comparison; "*" matches any current representation.
        tags = _etag_list(if_match)
        if tags != "*" and (isinstance(tags, str) or not _strong_match(tags, variant.etag)):
            return 412
    else:
        # Step 2: If-Unmodified-Since, only without If-Match; an invalid date is ignored.
        since = _single_date(headers.get(b"if-unmodified-since"))
        if since is not None and variant.mtime > since:
            return 412
    if_none_match = headers.get(b"if-none-match")
    if if_none_match:
        # Step 3: If-None-Match, weak comparison; a match is 304 for GET/HEAD, else 412.
        tags = _etag_list(if_none_match)
        if tags == "*" or (not isinstance(tags, str) and _weak_match(tags, variant.etag)):
            return 304 if method in (b"GET", b"HEAD") else 412
    elif method in (b"GET", b"HEAD"):
        # Step 4: If-Modified-Since, only without If-None-Match and only for GET/HEAD.
        since = _single_date(headers.get(b"if-modified-since"))
        if since is not None and variant.mtime <= since:
            return 304
    return None


def _single_date(values: list[bytes] | None) -> int | None:
    # A date field sent twice is not a valid HTTP-date: ignore it (§13.1.3, §13.1.4).
    if not values or len(values) != 1:
        return None
    return parse_http_date(values[0])


def if_range_allows(value: bytes, variant: Variant) -> bool:
    """Whether an If-Range field lets the Range apply (RFC 9110 §13.1.5).

    An entity tag must match strongly (a weak tag never does); a date must equal
    Last-Modified exactly. Anything else means "send the whole representation".
    """
    value = value.strip(b" \t")
    if value.startswith(b'"'):
        return value == variant.etag
    if value.startswith(b"W/"):
        return False
    date = parse_http_date(value)
    return date is not None and date == variant.mtime


# ---------------------------------------------------------------------------- ranges

#: More ranges than this in one request and the whole representation is sent instead
#: (RFC 9110 §14.2: a server may ignore or reject a Range with many small ranges).
MAX_RANGES = 16
#: Ranges closer than this are merged into one part: a part's header costs about as much.
RANGE_MERGE_GAP = 80

_RANGE_SPEC = re.compile(rb"[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*")
#: A position with more significant digits than this is past the end of any file (an off_t
#: has at most 19 digits); it is kept as ``_BEYOND_ANY_FILE`` rather than converted, which
#: would hit Python's int-string limit at 4,300 digits (and cost quadratic time before it).
_POSITION_DIGITS = 19
_BEYOND_ANY_FILE = 1 << 64


def parse_range(value: bytes) -> list[tuple[int | None, int | None]] | None:
    """The range-specs of a ``bytes=`` Range field, or None when it is not valid syntax.

    Each spec is ``(first, last)`` (``last`` None for ``first-``) or ``(None, suffix)`` for
    ``-suffix``. A syntactically invalid field is ignored by the caller (RFC 9110 §14.2).
    ``1*DIGIT`` has no upper bound, so a position of any length is valid syntax: one past
    every file size saturates (a suffix that long selects the whole file, a first-pos that
    far is unsatisfiable), and first-pos > last-pos is compared on the digits themselves.
    """
    unit, equals, ranges = value.partition(b"=")
    if not equals or unit.strip(b" \t").lower() != b"bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for element in ranges.split(b","):
        if not element.strip(b" \t"):
            continue  # #rule: empty list elements are allowed
        match = _RANGE_SPEC.fullmatch(element)
        if match is None:
            return None
        first, last, suffix = match.groups()
        if suffix is not None:
            specs.append((None, _position(suffix)))
        elif last:
            if _digits_greater(first, last):
                return None  # §14.1.1: first-pos > last-pos makes the range-set invalid
            specs.append((_position(first), _position(last)))
        else:
            specs.append((_position(first), None))
    return specs or None


def _position(digits: bytes) -> int:
    significant = digits.lstrip(b"0")
    return int(significant or b"0") if len(significant) <= _POSITION_DIGITS else _BEYOND_ANY_FILE


def _digits_greater(left: bytes, right: bytes) -> bool:
    # Decimal strings without leading zeros compare as numbers by (length, text).
    left, right = left.lstrip(b"0"), right.lstrip(b"0")
    return (len(left), left) > (len(right), right)


def plan_ranges(specs: list[tuple[int | None, int | None]], size: int) -> list[tuple[int, int]] | None:
    """Turn parsed range-specs into the byte ranges to send, ``[(start, end_inclusive)]``.

    Returns:
        None to ignore the Range and send the whole file (200): too many ranges, or ranges
        that overlap so much they add up to more than the file; an empty list when nothing
        is satisfiable (416); otherwise the sorted, coalesced ranges (206).
    """
    if len(specs) > MAX_RANGES or size == 0:
        # A zero-length representation has no byte to point at: §14.1.1 leaves only a
        # suffix range satisfiable, and it would select nothing; send the (empty) whole.
        return None
    ranges: list[tuple[int, int]] = []
    requested = 0
    for first, last in specs:
        if first is None:
            assert last is not None
            if last == 0:
                continue  # a zero suffix-length is unsatisfiable
            start, end = max(size - last, 0), size - 1
        else:
            if first >= size:
                continue  # §14.1.1: first-pos at or beyond the length is unsatisfiable
            start, end = first, size - 1 if last is None else min(last, size - 1)
        ranges.append((start, end))
        requested += end - start + 1
    if not ranges:
        return []
    if len(ranges) > 1 and requested > size:
        return None  # §14.3: overlapping ranges asking for more than the whole file
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1 + RANGE_MERGE_GAP:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


# ---------------------------------------------------------------------------- negotiation


def choose_encoding(accept_encoding: list[bytes] | None, available: list[bytes]) -> bytes | None:
    """The content-coding to serve among ``available`` precompressed ones, or None (identity).

    Follows RFC 9110 §12.5.3: q-values rank the codings, ``q=0`` excludes one, ``*`` covers
    the codings not named. Identity is always the fallback; it outranks a coding only when
    the client names it with a higher q (``gzip;q=0.5, identity``), since a client that
    lists a coding at all wants it. Ties go to the order of ``available`` (br, zstd, gzip)
    ahead of identity. No Accept-Encoding means identity: "any coding" in the RFC, but
    every server sends identity then, and so do we.
    """
    if accept_encoding is None or not available:
        return None
    weights: dict[bytes, float] = {}
    for element in accept_encoding:
        name, _, parameters = element.partition(b";")
        name = name.strip(b" \t")
        if name == b"x-gzip":
            name = b"gzip"
        weights[name] = _quality(parameters)
    wildcard = weights.get(b"*")
    best, best_weight = None, weights.get(b"identity", 0.0)
    for coding in available:
        weight = weights.get(coding, wildcard if wildcard is not None else 0.0)
        if weight > 0.0 and (weight > best_weight or (weight == best_weight and best is None)):
            best, best_weight = coding, weight
    return best


_QUALITY = re.compile(rb"[ \t]*q[ \t]*=[ \t]*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)[ \t]*", re.IGNORECASE)


def _quality(parameters: bytes) -> float:
    for parameter in parameters.split(b";"):
        if not parameter.strip(b" \t"):
            continue
        match = _QUALITY.fullmatch(parameter)
        if match:
            return float(match.group(1))
        if parameter.strip(b" \t").lower().startswith(b"q"):
            return 0.0  # a malformed qvalue: treat the coding as not acceptable
    return 1.0


# ---------------------------------------------------------------------------- media types

# mimetypes' built-in table only (not /etc/mime.types), so answers do not vary by host,
# corrected and extended for the web: RFC 9239 text/javascript, fonts, modern images.
_MIME = mimetypes.MimeTypes()
_OVERRIDES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".br": "application/octet-stream",
    ".zst": "application/zstd",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".7z": "application/x-7z-compressed",
}
_UTF8_TYPES = frozenset(("application/javascript", "application/json", "application/xml",
                         "application/xhtml+xml", "application/manifest+json", "image/svg+xml"))
_type_cache: dict[str, bytes] = {}


def content_type(name: str) -> bytes:
    """The Content-Type for a file name: from its last suffix, ``;charset=utf-8`` for text.

    Unknown suffixes are ``application/octet-stream``. Only the last suffix counts:
    ``a.tar.gz`` is ``application/gzip`` with no Content-Encoding, so browsers save the
    archive rather than silently decompressing it.
    """
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > 0 else ""
    cached = _type_cache.get(suffix)
    if cached is not None:
        return cached
    media = _OVERRIDES.get(suffix) or (_MIME.types_map[True].get(suffix) if suffix else None) \
        or (_MIME.types_map[False].get(suffix) if suffix else None) or "application/octet-stream"
    if media.startswith("text/") or media in _UTF8_TYPES or media.endswith(("+json", "+xml")):
        media += "; charset=utf-8"
    value = media.encode("ascii")
    if len(_type_cache) < 1024:
        _type_cache[suffix] = value
    return value
