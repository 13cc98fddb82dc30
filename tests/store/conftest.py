"""Store fixtures: ``store`` is a fresh migrated store (SQLite file, or a PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.store import open_test_store

from pli.mailbox.store import Store


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(database_url, tmp_path) as opened:
        yield opened
