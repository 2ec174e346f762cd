"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_harness import Server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts and appends here; each is killed when the test ends."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()
