"""Fixtures of the usage indicators' tests: ``activity``, a store (SQLite file, or PostgreSQL
schema) holding the activity of ``plitest.usage``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.store import open_test_store
from plitest.usage import Activity, write_activity


@pytest.fixture
async def activity(database_url: str, tmp_path: Path) -> AsyncIterator[Activity]:
    async with open_test_store(database_url, tmp_path) as store:
        yield await write_activity(store)
