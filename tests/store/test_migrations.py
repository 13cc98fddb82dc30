"""Migrations: the models and the Alembic revisions agree (autogenerate finds nothing), on
SQLite and PostgreSQL; upgrades are idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from plitest.store import open_test_store

from pli.mailbox.filing import models as _filing_models  # noqa: F401 (its tables on Base)
from pli.mailbox.notify import tables as _notify_tables  # noqa: F401 (its tables on Base)
from pli.mailbox.store.migrate import current_revisions, head_revisions, upgrade
from pli.mailbox.store.models import Base
from pli.mailbox.web import tables as _webmail_tables  # noqa: F401 (its tables on Base)
from pli.mailgateway.bulk import models as _bulk_models  # noqa: F401 (its tables on Base)
from pli.mailgateway.queue import models as _queue_models  # noqa: F401 (its tables on Base)


async def test_models_and_migrations_agree(database_url: str, tmp_path: Path) -> None:
    async with open_test_store(database_url, tmp_path) as store:
        schema = store.feed.channel.removeprefix("pli_store").lstrip("_") or None
        await upgrade(database_url, schema=schema)  # a second upgrade is a no-op
        assert await current_revisions(database_url, schema=schema) == head_revisions()

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "target_metadata": Base.metadata}
            )
            return compare_metadata(context, Base.metadata)

        async with store.db.engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
        head = await store.audit.head()
        assert head == (0, "0" * 64)  # the chain row is seeded by the first revision
