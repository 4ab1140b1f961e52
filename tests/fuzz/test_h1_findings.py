"""Findings of the h1 fuzz target, kept as tests once fixed.

Finding 1 (fixed): with ``allow_bare_lf``, the empty lines allowed before a request-line
(RFC 9112 §2.2) were skipped as CRLFs first and then as LFs, once each, so an LF followed by a
CRLF stayed in the buffer: ``b"\\n\\r\\n"`` + a request, sent whole, was a 400 while the same
bytes one at a time parsed. Empty lines are now skipped in any mix of CRLF and LF."""

from __future__ import annotations

import pytest

from synack.h1 import Limits
from tests.h1.helpers import feed

LENIENT = Limits(allow_bare_lf=True)
REQUEST = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def _verdict(pieces: list[bytes], eof: bool) -> tuple[list[str], int | None]:
    events, error, _ = feed(pieces, LENIENT, eof)
    return [type(event).__name__ for event in events], None if error is None else error.status


@pytest.mark.parametrize("prefix", [b"\n\r\n", b"\n\r\n\r\n", b"\n\n\r\n\n"])
@pytest.mark.parametrize("eof", [False, True])
def test_empty_lines_before_the_request_line_are_skipped_whole_as_in_pieces(prefix: bytes, eof: bool) -> None:
    data = prefix + REQUEST
    pieces = [data[index:index + 1] for index in range(len(data))]
    assert _verdict(pieces, eof) == (["Request", "EndOfMessage"], None)
    assert _verdict([data], eof) == _verdict(pieces, eof)


def test_only_empty_lines_wait_for_a_request_line() -> None:
    assert _verdict([b"\n\r\n\n"], eof=False) == ([], None)
