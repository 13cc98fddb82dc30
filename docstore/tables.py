"""The document store's own tables (never the mail store's: their histories are separate).

The schema is created by ``create_all`` on first start and versioned by one row in
``docstore_schema``: a store refuses a database written by a newer version. A change of schema
adds a numbered step to ``upgrade`` in ``database.py``.

- ``docstore_documents``: one row per filing, unique per (citizen, idempotency key hash); a
  deleted document keeps its row as a tombstone (state ``deleted``, descriptive fields erased) so
  that a late retry of its filing is answered "gone" instead of filing it again.
- ``docstore_events``: who did what to which document, when (filed, hidden, unhidden, deleted):
  policy P9, every action records who acted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from .limits import (
    MAX_CODE_LENGTH,
    MAX_MEDIA_TYPE_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
)

SCHEMA_VERSION = 1


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, always UTC and aware in Python; SQLite (no time zones) stores it naive UTC,
    PostgreSQL as ``timestamptz``. Naive values are refused: their meaning is ambiguous."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "docstore_schema",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

documents = Table(
    "docstore_documents",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("citizen_ins", String(15), nullable=False),
    Column("idempotency_hash", String(64), nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("state", String(8), nullable=False),  # active | deleted
    Column("title", String(MAX_TITLE_LENGTH), nullable=False),
    Column("category", String(32), nullable=False),
    Column("document_date", UtcDateTime(), nullable=False),
    Column("type_code", String(MAX_CODE_LENGTH)),
    Column("type_code_scheme", String(MAX_CODE_LENGTH)),
    Column("author_name", String(MAX_NAME_LENGTH)),
    Column("author_id", String(MAX_NAME_LENGTH)),
    Column("source_message_id", String(MAX_MESSAGE_ID_LENGTH)),
    Column("source_part", String(MAX_NAME_LENGTH)),
    Column("mime_type", String(MAX_MEDIA_TYPE_LENGTH), nullable=False),
    Column("declared_mime_type", String(MAX_MEDIA_TYPE_LENGTH)),
    Column("type_note", String(MAX_NAME_LENGTH * 2)),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("hidden", Boolean, nullable=False),
    Column("filed_by_kind", String(16), nullable=False),
    Column("filed_by_id", String(MAX_NAME_LENGTH), nullable=False),
    Column("filed_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("citizen_ins", "idempotency_hash", name="uq_docstore_documents_key"),
    Index("ix_docstore_documents_listing", "citizen_ins", "state", "document_date", "seq"),
)

events = Table(
    "docstore_events",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("document_id", String(36), nullable=False, index=True),
    Column("action", String(16), nullable=False),  # filed | hidden | unhidden | deleted
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(MAX_NAME_LENGTH), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)
