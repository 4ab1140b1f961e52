"""Differential runs against h11 and httptools (llhttp) on the corpus.

Where synack parses a case differently from an oracle, the case's json documents the exact
difference ("reject", "accept", or the fields the oracle reports differently) with a "note"
giving the RFC reason. An undocumented difference fails, and so does a documented one that no
longer happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .corpus_files import INVALID, ORACLE_FIELDS, VALID, Case
from .helpers import feed, h11_summary, httptools_summary, summarize

ORACLES: dict[str, Callable[[bytes], dict[str, Any] | None]] = {
    "h11": h11_summary,
    "httptools": httptools_summary,
}


def synack_fields(case: Case) -> dict[str, Any]:
    events, error, _ = feed([case.raw], case.limits)
    assert error is None, error
    summary = summarize(events, None)
    return {field: summary[field] for field in ORACLE_FIELDS}


@pytest.mark.parametrize("oracle", sorted(ORACLES))
@pytest.mark.parametrize("case", VALID, ids=[case.name for case in VALID])
def test_valid_case_against_oracle(case: Case, oracle: str) -> None:
    ours = synack_fields(case)
    theirs = ORACLES[oracle](case.raw)
    documented = case.expected.get(oracle)
    if documented is None:
        assert theirs == ours, f"undocumented difference from {oracle}"
    elif documented == "reject":
        assert theirs is None, f"{oracle} now accepts; drop the documented difference"
    else:
        assert isinstance(documented, dict) and documented, documented
        assert set(documented) <= set(ORACLE_FIELDS), documented
        for field, value in documented.items():
            assert ours[field] != value, f"documented {field} difference is not a difference"
        assert theirs == {**ours, **documented}, f"{oracle} differs other than documented"


@pytest.mark.parametrize("oracle", sorted(ORACLES))
@pytest.mark.parametrize("case", INVALID, ids=[case.name for case in INVALID])
def test_invalid_case_against_oracle(case: Case, oracle: str) -> None:
    documented = case.expected.get(oracle, "reject")
    assert documented in ("reject", "accept"), documented
    accepted = ORACLES[oracle](case.raw) is not None
    if documented == "reject":
        assert not accepted, f"{oracle} accepts what synack rejects; document why (RFC) or fix"
    else:
        assert accepted, f"{oracle} now rejects too; drop the documented difference"


@pytest.mark.parametrize("case", VALID + INVALID, ids=[c.name for c in VALID + INVALID])
def test_every_documented_difference_has_an_rfc_note(case: Case) -> None:
    has_oracle_entry = any(oracle in case.expected for oracle in ORACLES)
    note = case.expected.get("note", "")
    assert has_oracle_entry == bool(note), "a note goes with an oracle difference, and only then"
    if note:
        assert "RFC" in note and "§" in note, note


def test_oracles_see_a_plain_request() -> None:
    # The oracle drivers themselves must work, or every "reject" above would pass vacuously.
    raw = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
    expected = {
        "method": "POST",
        "target": "/p",
        "headers": [["host", "h"], ["content-length", "2"]],
        "body": "hi",
        "trailers": [],
    }
    for oracle in ORACLES.values():
        assert oracle(raw) == expected
        assert oracle(raw[:-1]) is None  # incomplete body: no complete request
        assert oracle(b"GET / HTTP/1.1\r\nBad Name: x\r\nHost: h\r\n\r\n") is None
