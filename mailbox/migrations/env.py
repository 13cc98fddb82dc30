"""Alembic environment: runs on the connection given by :mod:`pli.mailbox.store.migrate`
(``config.attributes["connection"]``); batch mode on SQLite (ALTER TABLE is limited there)."""

from __future__ import annotations

from alembic import context

from pli.mailbox.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through pli.mailbox.store.migrate (pli db upgrade)")
schema = config.attributes.get("schema")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table_schema=schema,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
