"""Fixtures for the app suites."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    """An httpx client for the test module's own (module-scoped) ``server`` fixture."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
