"""The document store's database: engine, transactions, schema creation and version check.

SQLite (the default, a file in the store's data directory) runs in WAL mode with
``synchronous=FULL`` (a commit is on disk before the store answers) and write transactions that
start with ``BEGIN IMMEDIATE`` (they take the write lock first, so they wait on ``busy_timeout``
instead of failing on a lock upgrade). PostgreSQL runs through asyncpg, optionally in a schema of
the store's own (created if missing; tests use one per test).

Imports nothing of pli but the configuration helpers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .limits import SQLITE_BUSY_TIMEOUT
from .tables import SCHEMA_VERSION, metadata, schema_version

_WRITE = "docstore_write"
#: PostgreSQL advisory lock key serialising schema creation between processes ("docs" in ASCII).
_SCHEMA_LOCK = 0x646F6373


class NewerSchema(Exception):
    """The database was written by a newer version of the store."""


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, schema: str = "") -> AsyncEngine:
    """An async engine for the store's SQLAlchemy URL (``sqlite+aiosqlite://`` or
    ``postgresql+asyncpg://``); ``schema`` is the PostgreSQL schema to use ('' = search_path)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that will write: committed on normal exit, rolled back on an exception."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(**{_WRITE: True})
        async with connection.begin():
            yield connection


@contextlib.asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection, connection.begin():
        yield connection


async def prepare_schema(engine: AsyncEngine, schema: str = "") -> None:
    """Create the schema and tables if missing; refuse a database of a newer version."""
    async with write_transaction(engine) as connection:
        if not is_sqlite(engine):
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
            )
            if schema:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.run_sync(metadata.create_all)
        found = (await connection.execute(select(schema_version.c.version))).scalars().all()
        if not found:
            await connection.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif max(found) > SCHEMA_VERSION:
            raise NewerSchema(
                f"the document store database has schema version {max(found)}; this build "
                f"knows up to {SCHEMA_VERSION}"
            )
