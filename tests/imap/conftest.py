"""IMAP fixtures: ``store`` is a fresh migrated store (SQLite file, or a PostgreSQL schema);
``account`` a professional with the test password; ``imap`` a session logged in as it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.imap import InMemoryImap, imap_services, professional
from plitest.store import open_test_store

from pli.mailbox.store import Account, Store


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def account(store: Store) -> Account:
    return await professional(store)


@pytest.fixture
async def imap(store: Store, account: Account) -> AsyncIterator[InMemoryImap]:
    async with InMemoryImap.start(imap_services(store)) as session:
        await session.login(account.address)
        yield session
