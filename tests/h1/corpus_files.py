"""Loading the request corpus under tests/h1/corpus (see build_corpus.py for the format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from synack.h1 import Limits

CORPUS = Path(__file__).resolve().parent / "corpus"

#: The fields of a valid case that synack's parse is compared against.
PARSED_FIELDS = (
    "method",
    "target",
    "version",
    "headers",
    "body",
    "trailers",
    "keep_alive",
    "framing",
    "content_length",
    "expect_continue",
    "upgrade",
    "path",
    "query",
    "host",
)
#: The keys of a case's json that are not parse results.
METADATA = ("limits", "h11", "httptools", "note")
#: The fields the differential test compares with h11 and httptools.
ORACLE_FIELDS = ("method", "target", "headers", "body", "trailers")


class Case(NamedTuple):
    name: str
    raw: bytes
    expected: dict[str, Any]

    @property
    def limits(self) -> Limits:
        return Limits(**self.expected.get("limits", {}))


def load(kind: str) -> list[Case]:
    cases = []
    for path in sorted((CORPUS / kind).glob("*.http")):
        expected = json.loads(path.with_suffix(".json").read_text())
        cases.append(Case(path.stem, path.read_bytes(), expected))
    return cases


VALID = load("valid")
INVALID = load("invalid")
