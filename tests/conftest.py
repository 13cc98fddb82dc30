"""Fixtures shared by every test tier.

- An unhandled exception in any asyncio task of a test fails that test (a server task that dies
  silently is a bug, not noise).
- ``database_url``: a fresh SQLite file per test, or, when ``PLI_TEST_DATABASE_URL`` names a
  PostgreSQL server, that server (the same suite runs on both in CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plitest import loop_guard


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Every asyncio test runs in a loop that records unhandled task exceptions."""
    return {"loop": loop_guard.new_strict_loop}


@pytest.fixture(autouse=True)
def _fail_on_unhandled_task_exception() -> Iterator[None]:
    loop_guard.errors.clear()
    yield
    failure = loop_guard.take_failure()
    if failure:
        pytest.fail(failure)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of an empty database for this test."""
    configured = os.environ.get("PLI_TEST_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path / 'pli.sqlite3'}"
