"""The reference document store for tests: a real store (SQLite file, or a PostgreSQL schema of
its own when ``PLI_TEST_DATABASE_URL`` names a server) served by a real uvicorn on 127.0.0.1
port 0, and an httpx client that speaks to it with the bearer token.

    async with docstore_config(tmp_path) as config, running_docstore(config) as base_url:
        async with docstore_client(base_url, config.token) as client: ...
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pli.config.schema import Listener, async_database_url
from pli.docstore.api import create_docstore_app
from pli.docstore.config import DocstoreConfig
from pli.docstore.store import DocumentStore
from pli.mailgateway.asgi import AsgiService

TEST_TOKEN = "test-docstore-token-" + "x" * 24
#: An INS with a correct key (ANS example, mssante.md §3).
CITIZEN = "146026322000196"
OTHER_CITIZEN = "277117512345626"
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def postgres_test_url() -> str | None:
    """The PostgreSQL server the suite runs on, as a plain URL, or None (SQLite)."""
    return os.environ.get("PLI_TEST_DATABASE_URL") or None


@contextlib.asynccontextmanager
async def docstore_config(tmp_path: Path, **overrides: Any) -> AsyncIterator[DocstoreConfig]:
    """A store configuration of its own: files under ``tmp_path/docstore``, and a fresh SQLite
    file or a fresh PostgreSQL schema (dropped afterwards)."""
    data_dir = tmp_path / "docstore"
    server = postgres_test_url()
    schema = f"docstore_test_{secrets.token_hex(6)}" if server else ""
    url = async_database_url(server or "", data_dir / "docstore.sqlite3")
    config = DocstoreConfig(
        data_dir=data_dir, token=TEST_TOKEN, database_url=url, database_schema=schema
    )
    if overrides:
        config = DocstoreConfig(**{**config.__dict__, **overrides})
    try:
        yield config
    finally:
        if schema:
            await drop_schema(url, schema)


async def drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def opened_store(config: DocstoreConfig) -> AsyncIterator[DocumentStore]:
    store = DocumentStore(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def running_docstore(
    config: DocstoreConfig, store: DocumentStore | None = None
) -> AsyncIterator[str]:
    """Serve a store over real HTTP on 127.0.0.1 (a free port); yields its base URL."""
    async with contextlib.AsyncExitStack() as stack:
        if store is None:
            store = await stack.enter_async_context(opened_store(config))
        service = AsgiService(
            "docstore",
            Listener(protocol="docstore", address="127.0.0.1", port=0),
            create_docstore_app(store),
        )
        await service.start()
        stack.push_async_callback(service.stop, 5.0)
        host, port = service.addresses()[0]
        yield f"http://{host}:{port}"


def docstore_client(base_url: str, token: str = TEST_TOKEN, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
        **kwargs,
    )


def actor_headers(kind: str = "citizen", actor_id: str = CITIZEN, **extra: str) -> dict[str, str]:
    return {"Pli-Actor": kind, "Pli-Actor-Id": actor_id, **extra}


async def file_document(
    client: httpx.AsyncClient,
    *,
    ins: str = CITIZEN,
    key: str | None = "key-1",
    content: bytes = PDF_BYTES,
    content_type: str = "application/pdf",
    actor: str = "citizen",
    actor_id: str = CITIZEN,
    **fields: str,
) -> httpx.Response:
    """POST a filing; ``fields`` are the form fields (title defaults to "Compte rendu")."""
    headers = actor_headers(actor, actor_id)
    if key is not None:
        headers["Idempotency-Key"] = key
    data = {"title": "Compte rendu", **fields}
    return await client.post(
        f"/v1/citizens/{ins}/documents",
        headers=headers,
        data=data,
        files={"content": ("document", content, content_type)},
    )
