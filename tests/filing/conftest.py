"""Fixtures of the filing tests: a mail store (SQLite or PostgreSQL), and the reference
document store served over real HTTP on 127.0.0.1 with a client to inspect it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from plitest.docstore import docstore_client, docstore_config, running_docstore
from plitest.store import open_test_store

from pli.mailbox.store import Store


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    async with docstore_config(tmp_path) as config, running_docstore(config) as url:
        yield url


@pytest.fixture
async def documents(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the document store, to check what was filed."""
    async with docstore_client(base_url) as client:
        yield client
