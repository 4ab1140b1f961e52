"""Replay every corpus file whole, line by line, byte by byte and at seeded random split
points; each way must give the expected result, and all ways the same result."""

from __future__ import annotations

import importlib.util

import pytest

from synack.h1 import (
    PAUSED,
    Data,
    EndOfMessage,
    Request,
    RequestState,
    ServerConnection,
    error_response,
)

from .corpus_files import CORPUS, INVALID, METADATA, PARSED_FIELDS, VALID, Case
from .helpers import feed, splits, summarize


def ids(cases: list[Case]) -> list[str]:
    return [case.name for case in cases]


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 30
    assert len(INVALID) >= 50


def test_files_on_disk_match_build_script() -> None:
    spec = importlib.util.spec_from_file_location("build_corpus", CORPUS / "build_corpus.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    for kind, cases, built in (("valid", VALID, builder.VALID), ("invalid", INVALID, builder.INVALID)):
        assert sorted(case.name for case in cases) == sorted(built), kind
        for case in cases:
            raw, expected = built[case.name]
            assert case.raw == raw, f"{kind}/{case.name}.http is stale: rerun build_corpus.py"
            on_disk = (CORPUS / kind / f"{case.name}.json").read_text()
            assert on_disk == builder.render(expected), f"{kind}/{case.name}.json is stale"


def test_corpus_http_files_use_crlf() -> None:
    # Guard against an editor or git turning the raw files into LF-only text.
    assert all(b"\r\n" in case.raw for case in VALID if "bare_lf" not in case.name)


@pytest.mark.parametrize("case", VALID, ids=ids(VALID))
def test_valid_request(case: Case) -> None:
    expected = {field: case.expected[field] for field in PARSED_FIELDS}
    for way, pieces in splits(case.raw).items():
        events, error, connection = feed(pieces, case.limits)
        assert error is None, f"{way}: {error!r}"
        assert summarize(events, None) == expected, way
        # Shape: exactly one Request, then body Data, then one EndOfMessage; nothing left over.
        kinds = [type(event) for event in events]
        assert kinds[0] is Request and kinds[-1] is EndOfMessage, way
        assert set(kinds[1:-1]) <= {Data}, way
        assert all(len(event.data) for event in events[1:-1]), f"{way}: empty Data event"
        assert connection.request_state is RequestState.DONE
        assert connection.buffered == 0
        assert connection.next_event() is PAUSED


@pytest.mark.parametrize("case", INVALID, ids=ids(INVALID))
def test_invalid_request(case: Case) -> None:
    results = {}
    for way, pieces in splits(case.raw).items():
        events, error, connection = feed(pieces, case.limits)
        assert error is not None, f"{way}: accepted; events {events!r}"
        assert error.status == case.expected["status"], f"{way}: {error!r}"
        # Events delivered before the error are the same for every split, too.
        results[way] = summarize(events, error)
        assert connection.request_state is RequestState.ERROR
        assert not connection.keep_alive
        assert all(type(event) is not EndOfMessage for event in events), way
        response = error_response(connection, error.status, error.message)
        assert response.startswith(b"HTTP/1.1 %d " % error.status)
        assert b"\r\nconnection: close\r\n" in response
    assert all(result == results["whole"] for result in results.values()), results


@pytest.mark.parametrize(
    "case", [case for case in VALID if case.expected["keep_alive"]], ids=lambda case: case.name
)
def test_valid_request_pipelined_twice(case: Case) -> None:
    connection = ServerConnection(case.limits)
    connection.receive_data(case.raw + case.raw)
    summaries = []
    for _ in range(2):
        events = []
        while True:
            event = connection.next_event()
            assert event is not PAUSED or events, "paused before the request"
            if event is PAUSED:
                break
            if type(event) is Request and connection.continue_owed:
                assert connection.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
            events.append(event)
        summaries.append(summarize(events, None))
        connection.send_response(200, [], b"ok")
        if len(summaries) == 1:
            assert connection.next_cycle() is True
    assert summaries[0] == summaries[1]
    assert summaries[0]["target"] == case.expected["target"]
    assert connection.buffered == 0


def test_corpus_json_is_plain() -> None:
    # Every expected file carries only known keys (typos would silently be ignored), and its
    # data keys are exactly what a parse reports: the whole-input parse equals them all.
    for case in VALID:
        data = {key: value for key, value in case.expected.items() if key not in METADATA}
        assert set(data) == set(PARSED_FIELDS), case.name
        events, error, _ = feed([case.raw], case.limits)
        assert error is None, f"{case.name}: {error!r}"
        assert summarize(events, None) == data, case.name
    for case in INVALID:
        data = {key: value for key, value in case.expected.items() if key not in METADATA}
        assert set(data) == {"status"}, case.name
        status = data["status"]
        assert type(status) is int and 400 <= status <= 599, case.name
        events, error, _ = feed([case.raw], case.limits)
        assert error is not None, f"{case.name}: accepted"
        assert error.status == status, case.name
    assert len(VALID) >= 40 and len(INVALID) >= 40  # (an empty corpus would pass every replay)
    # Every request file has its expectations and every expectation file its request.
    for kind in ("valid", "invalid"):
        requests = {path.stem for path in (CORPUS / kind).glob("*.http")}
        expectations = {path.stem for path in (CORPUS / kind).glob("*.json")}
        assert requests == expectations, kind
