"""Open findings of the h1 fuzz target in ``synack/h1`` (owned by the h1 engineer), each as a
strict xfail: the test passes once the parser is fixed, which fails the xfail and says to
drop the marker, the matching ``_known_h1_issue`` line in targets.py, and to rename the
regression file (``regressions/h1/open-*`` → without ``open-``)."""

from __future__ import annotations

import pytest

from synack.h1 import Limits
from tests.h1.helpers import feed

LENIENT = Limits(allow_bare_lf=True)
REQUEST = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def _verdict(pieces: list[bytes], eof: bool) -> tuple[list[str], int | None]:
    events, error, _ = feed(pieces, LENIENT, eof)
    return [type(event).__name__ for event in events], None if error is None else error.status


@pytest.mark.xfail(strict=True, reason=(
    "h1 finding 1 (synack/h1/connection.py ServerConnection._next_head): with allow_bare_lf, the "
    "empty lines allowed before a request-line (RFC 9112 §2.2) are skipped as CRLFs first, then as "
    "LFs, once each, so an LF followed by a CRLF is left in the buffer and read as an empty head: "
    "b'\\n\\r\\n' + a request, whole, is 400 'malformed request line', while the same bytes one at "
    "a time parse the request. Fix: skip CRLF and LF alternately until neither starts the buffer."
))
@pytest.mark.parametrize("prefix", [b"\n\r\n", b"\n\r\n\r\n", b"\n\n\r\n\n"])
@pytest.mark.parametrize("eof", [False, True])
def test_empty_lines_before_the_request_line_are_skipped_whole_as_in_pieces(prefix: bytes, eof: bool) -> None:
    data = prefix + REQUEST
    pieces = [data[index:index + 1] for index in range(len(data))]
    assert _verdict(pieces, eof) == (["Request", "EndOfMessage"], None)
    assert _verdict([data], eof) == _verdict(pieces, eof)


@pytest.mark.xfail(strict=True, reason="h1 finding 1, with nothing after the empty lines yet (see above)")
def test_only_empty_lines_wait_for_a_request_line() -> None:
    assert _verdict([b"\n\r\n\n"], eof=False) == ([], None)
