"""Fixtures of the document store tests: a configuration, an opened store, the store served over
real HTTP, and a client (see ``plitest.docstore``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from plitest.docstore import docstore_client, docstore_config, opened_store, running_docstore

from pli.docstore.config import DocstoreConfig
from pli.docstore.store import DocumentStore


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[DocstoreConfig]:
    async with docstore_config(tmp_path, max_document_size=256 * 1024, page_size=3) as made:
        yield made


@pytest.fixture
async def store(config: DocstoreConfig) -> AsyncIterator[DocumentStore]:
    async with opened_store(config) as opened:
        yield opened


@pytest.fixture
async def base_url(config: DocstoreConfig, store: DocumentStore) -> AsyncIterator[str]:
    async with running_docstore(config, store) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with docstore_client(base_url) as made:
        yield made
