"""Schema migrations with Alembic, run from code (``pli init``, ``pli serve``, ``pli db
upgrade``) without an alembic.ini.

Revisions live in ``mailbox/migrations/versions``; another subsystem may keep its own folder and
pass it in ``extra_version_locations`` (see docs/store.md, "Adding a table"). The upgrade runs in
one transaction holding the write lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so two processes starting at once do not both migrate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database, async_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
#: pg_advisory_xact_lock key serialising migrations ("pli" in ASCII).
MIGRATION_LOCK_KEY = 0x706C69


def alembic_config(extra_version_locations: Sequence[Path] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(VERSIONS_DIR), *(str(path) for path in extra_version_locations)]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    return config


def head_revisions(extra_version_locations: Sequence[Path] = ()) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(extra_version_locations)).get_heads())


async def upgrade(
    url: str,
    *,
    schema: str | None = None,
    revision: str = "heads",
    extra_version_locations: Sequence[Path] = (),
) -> None:
    """Bring the database at ``url`` to ``revision`` (default: the latest)."""
    config = alembic_config(extra_version_locations)
    await _run(url, schema, lambda connection: _command(config, connection, schema, revision))


async def current_revisions(url: str, *, schema: str | None = None) -> set[str]:
    found: set[str] = set()

    def read(connection: Any) -> None:
        context = MigrationContext.configure(
            connection, opts={"version_table_schema": schema} if schema else {}
        )
        found.update(context.get_current_heads())

    await _run(url, schema, read)
    return found


def _command(config: Config, connection: Any, schema: str | None, revision: str) -> None:
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, revision)


async def _run(url: str, schema: str | None, work: Any) -> None:
    db = Database.open(async_url(url), schema=schema)
    try:
        async with db.engine.connect() as connection:
            if db.is_sqlite:
                await connection.execution_options(pli_write=True)
            async with connection.begin():
                if db.is_postgresql:
                    await _prepare_postgresql(connection, schema)
                await connection.run_sync(work)
    finally:
        await db.close()


async def _prepare_postgresql(connection: AsyncConnection, schema: str | None) -> None:
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
    )
    if schema:
        await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
