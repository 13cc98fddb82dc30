"""The document store's operations: file, list, get, change confidentiality, delete.

Filing is idempotent: a filing names a key (the client's ``Idempotency-Key``, or its source
message and part); the same key filed again returns the document filed the first time, never a
second one; the same key with other content is a conflict; the key of a deleted document is
answered "gone", so that a late retry never brings back what the citizen deleted.

Durability: the document's file is fsync'd and placed before the transaction that records it
commits, and the answer is sent after the commit. A store killed before answering has either
nothing (the retry files it) or the document (the retry finds it by its key).

This module knows nothing of HTTP: errors are ``DocstoreError`` with a status, a reason code and a
text; ``api.py`` turns them into answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, text
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .blobs import BlobFiles, Upload
from .categories import Category, category_for_type_code
from .config import DocstoreConfig
from .database import create_engine, prepare_schema, read_transaction, write_transaction
from .documents import (
    Actor,
    ActorKind,
    Confidentiality,
    Document,
    DocumentPage,
    Event,
    FilingFields,
    may_delete,
)
from .limits import ABANDONED_UPLOAD_AGE, MAX_PAGE_SIZE
from .sniffing import ContentRefused, classify, normalise_declared
from .tables import documents, events

log = structlog.get_logger(__name__)

ACTIVE = "active"
DELETED = "deleted"
_SWEEP_BATCH = 500


class DocstoreError(Exception):
    """A request the store refuses: HTTP ``status``, stable ``reason``, ``text`` for people."""

    def __init__(self, status: int, reason: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text


def _not_found(document_id: str) -> DocstoreError:
    return DocstoreError(404, "document-not-found", f"no document {document_id} for this citizen")


def _gone(document_id: str) -> DocstoreError:
    return DocstoreError(410, "document-deleted", f"document {document_id} was deleted")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DocumentStore:
    """One store: its database and its files. ``open()`` before use, ``close()`` after."""

    def __init__(self, config: DocstoreConfig, clock: Callable[[], datetime] = _utcnow) -> None:
        self.config = config
        self.blobs = BlobFiles(config.data_dir)
        self._clock = clock
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the document store is not open")
        return self._engine

    async def open(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        abandoned = await asyncio.to_thread(self.blobs.prepare)
        engine = create_engine(self.config.database_url, self.config.database_schema)
        try:
            await prepare_schema(engine, self.config.database_schema)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        orphans = await self.sweep_orphans(time.time() - ABANDONED_UPLOAD_AGE)
        if abandoned or orphans:
            log.info("docstore-swept", abandoned_uploads=abandoned, orphan_files=orphans)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def health(self) -> str | None:
        """None when the database answers, else a short reason (for /health)."""
        try:
            async with read_transaction(self.engine) as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            return f"database: {type(error).__name__}"
        return None

    # -- filing --------------------------------------------------------------------------------

    async def file(
        self, ins: str, key: str, fields: FilingFields, upload: Upload, actor: Actor
    ) -> tuple[Document, bool]:
        """File a received upload; returns the document and whether it was created now (False:
        the key was filed before with the same content). The upload's file is consumed."""
        try:
            return await self._file(ins, key, fields, upload, actor)
        finally:
            await asyncio.to_thread(self.blobs.discard, upload)  # placed: already moved

    async def _file(
        self, ins: str, key: str, fields: FilingFields, upload: Upload, actor: Actor
    ) -> tuple[Document, bool]:
        if fields.sha256 and fields.sha256.lower() != upload.sha256:
            raise DocstoreError(
                422,
                "content-hash-mismatch",
                f"the content received has SHA-256 {upload.sha256}, not {fields.sha256.lower()}",
            )
        existing = await self._filed_before(ins, key, upload)
        if existing is not None:
            return existing, False
        try:
            classification = classify(upload.head, upload.tail, fields.mime_type)
        except ContentRefused as refusal:
            status = 415 if refusal.reason != "empty-document" else 422
            raise DocstoreError(status, refusal.reason, refusal.text) from None
        await asyncio.to_thread(self.blobs.make_durable, upload)  # outside the write lock
        now = self._clock()
        document_id = str(uuid.uuid4())
        category = fields.category or category_for_type_code(
            fields.type_code, fields.type_code_scheme
        )
        row = {
            "id": document_id,
            "citizen_ins": ins,
            "idempotency_hash": key_hash(key),
            "idempotency_key": key,
            "state": ACTIVE,
            "title": fields.title,
            "category": category.value,
            "document_date": fields.document_date or now,
            "type_code": fields.type_code,
            "type_code_scheme": fields.type_code_scheme,
            "author_name": fields.author_name,
            "author_id": fields.author_id,
            "source_message_id": fields.source_message_id,
            "source_part": fields.source_part,
            "mime_type": classification.mime_type,
            "declared_mime_type": normalise_declared(fields.mime_type) or None,
            "type_note": classification.note,
            "size": upload.size,
            "sha256": upload.sha256,
            "hidden": fields.confidentiality is Confidentiality.HIDDEN,
            "filed_by_kind": actor.kind.value,
            "filed_by_id": actor.id,
            "filed_at": now,
            "updated_at": now,
        }
        placed = False
        try:
            async with write_transaction(self.engine) as connection:
                found = await self._by_key(connection, ins, key)
                if found is not None:  # filed meanwhile by a concurrent request
                    return self._same_content(found, upload), False
                await connection.execute(documents.insert().values(**row))
                await self._record(connection, document_id, "filed", actor, now)
                await asyncio.to_thread(self.blobs.place, upload, document_id)
                placed = True
        except IntegrityError:
            # PostgreSQL: a concurrent filing of the same key committed first
            if placed:
                await asyncio.to_thread(self.blobs.remove, document_id)
            existing = await self._filed_before(ins, key, upload)
            if existing is None:
                raise
            return existing, False
        except BaseException:
            if placed:
                await asyncio.to_thread(self.blobs.remove, document_id)
            raise
        log.info("docstore-filed", document=document_id, size=upload.size, actor=actor.kind.value)
        return _document(row), True

    async def _filed_before(self, ins: str, key: str, upload: Upload) -> Document | None:
        async with read_transaction(self.engine) as connection:
            found = await self._by_key(connection, ins, key)
        return None if found is None else self._same_content(found, upload)

    async def _by_key(self, connection: AsyncConnection, ins: str, key: str) -> Row[Any] | None:
        query = select(documents).where(
            documents.c.citizen_ins == ins, documents.c.idempotency_hash == key_hash(key)
        )
        return (await connection.execute(query)).first()

    @staticmethod
    def _same_content(found: Row[Any], upload: Upload) -> Document:
        if found.state == DELETED:
            raise DocstoreError(
                410,
                "document-deleted",
                f"this idempotency key filed document {found.id}, since deleted; "
                "a new filing needs a new key",
            )
        if found.sha256 != upload.sha256:
            raise DocstoreError(
                409,
                "idempotency-key-reused",
                f"this idempotency key filed document {found.id} with other content "
                f"(SHA-256 {found.sha256})",
            )
        return _document(found._mapping)

    # -- reading -------------------------------------------------------------------------------

    async def list_documents(
        self,
        ins: str,
        *,
        category: Category | None = None,
        include_hidden: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocumentPage:
        """A citizen's documents, newest document date first, a page at a time."""
        size = min(limit or self.config.page_size, MAX_PAGE_SIZE)
        query = select(documents).where(documents.c.citizen_ins == ins, documents.c.state == ACTIVE)
        if category is not None:
            query = query.where(documents.c.category == category.value)
        if not include_hidden:
            query = query.where(documents.c.hidden.is_(False))
        if cursor is not None:
            after_date, after_seq = decode_cursor(cursor)
            query = query.where(
                or_(
                    documents.c.document_date < after_date,
                    and_(documents.c.document_date == after_date, documents.c.seq < after_seq),
                )
            )
        query = query.order_by(documents.c.document_date.desc(), documents.c.seq.desc())
        async with read_transaction(self.engine) as connection:
            rows = (await connection.execute(query.limit(size + 1))).all()
        page = [_document(row._mapping) for row in rows[:size]]
        last = rows[size - 1] if len(rows) > size else None
        next_cursor = encode_cursor(last.document_date, last.seq) if last is not None else None
        return DocumentPage(documents=page, next_cursor=next_cursor)

    async def get(self, ins: str, document_id: str) -> Document:
        """One document with its history; 404 if unknown, 410 if deleted."""
        async with read_transaction(self.engine) as connection:
            row = await self._active(connection, ins, document_id)
            history = await self._history(connection, document_id)
        return _document(row._mapping).model_copy(update={"history": history})

    async def content(self, ins: str, document_id: str) -> tuple[Document, str]:
        """A document and the path of its bytes."""
        async with read_transaction(self.engine) as connection:
            row = await self._active(connection, ins, document_id)
        return _document(row._mapping), str(self.blobs.path_of(document_id))

    async def _row(self, connection: AsyncConnection, ins: str, document_id: str) -> Row[Any]:
        """A citizen's document, deleted or not; 404 if unknown."""
        query = select(documents).where(
            documents.c.citizen_ins == ins, documents.c.id == document_id
        )
        row = (await connection.execute(query)).first()
        if row is None:
            raise _not_found(document_id)
        return row

    async def _active(self, connection: AsyncConnection, ins: str, document_id: str) -> Row[Any]:
        """A citizen's document; 404 if unknown, 410 if deleted."""
        row = await self._row(connection, ins, document_id)
        if row.state == DELETED:
            raise _gone(document_id)
        return row

    async def _history(self, connection: AsyncConnection, document_id: str) -> list[Event]:
        query = select(events).where(events.c.document_id == document_id).order_by(events.c.seq)
        return [
            Event(
                action=row.action,
                actor=Actor(kind=ActorKind(row.actor_kind), id=row.actor_id),
                at=row.at,
            )
            for row in (await connection.execute(query)).all()
        ]

    # -- changes -------------------------------------------------------------------------------

    async def set_confidentiality(
        self, ins: str, document_id: str, confidentiality: Confidentiality, actor: Actor
    ) -> Document:
        """Hide a document from professionals, or show it again; idempotent (a change that
        changes nothing records nothing)."""
        hidden = confidentiality is Confidentiality.HIDDEN
        async with write_transaction(self.engine) as connection:
            row = await self._active(connection, ins, document_id)
            if row.hidden != hidden:
                now = self._clock()
                await connection.execute(
                    documents.update()
                    .where(documents.c.seq == row.seq)
                    .values(hidden=hidden, updated_at=now)
                )
                await self._record(
                    connection, document_id, "hidden" if hidden else "unhidden", actor, now
                )
            row = await self._active(connection, ins, document_id)
            history = await self._history(connection, document_id)
        return _document(row._mapping).model_copy(update={"history": history})

    async def delete(self, ins: str, document_id: str, actor: Actor) -> None:
        """Delete a document: its bytes are removed, its row kept as a tombstone without its
        description. Deleting a deleted document succeeds (retries are safe)."""
        async with write_transaction(self.engine) as connection:
            row = await self._row(connection, ins, document_id)
            if row.state == DELETED:
                return
            filed_by = ActorKind(row.filed_by_kind)
            if not may_delete(actor.kind, filed_by):
                raise DocstoreError(
                    403,
                    "not-filed-by-citizen",
                    f"a {actor.kind.value} may not delete a document filed by "
                    f"{filed_by.value}: hide it from professionals instead",
                )
            now = self._clock()
            await connection.execute(
                documents.update()
                .where(documents.c.seq == row.seq)
                .values(
                    state=DELETED,
                    title="",
                    idempotency_key="",
                    type_code=None,
                    type_code_scheme=None,
                    author_name=None,
                    author_id=None,
                    source_message_id=None,
                    source_part=None,
                    updated_at=now,
                )
            )
            await self._record(connection, document_id, "deleted", actor, now)
        await asyncio.to_thread(self.blobs.remove, document_id)
        log.info("docstore-deleted", document=document_id, actor=actor.kind.value)

    async def _record(
        self,
        connection: AsyncConnection,
        document_id: str,
        action: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        await connection.execute(
            events.insert().values(
                document_id=document_id,
                action=action,
                actor_kind=actor.kind.value,
                actor_id=actor.id,
                at=at,
            )
        )

    # -- maintenance ---------------------------------------------------------------------------

    async def sweep_orphans(self, older_than: float) -> int:
        """Remove placed files that no active document owns (a store killed between placing a
        file and committing its row, or between deleting a row and its file)."""
        candidates = await asyncio.to_thread(lambda: list(self.blobs.stored_ids(older_than)))
        removed = 0
        for start in range(0, len(candidates), _SWEEP_BATCH):
            batch = candidates[start : start + _SWEEP_BATCH]
            owned = await self._active_ids(batch)
            for blob_id in set(batch) - owned:
                await asyncio.to_thread(self.blobs.remove, blob_id)
                removed += 1
        return removed

    async def _active_ids(self, ids: Sequence[str]) -> set[str]:
        query = select(documents.c.id).where(documents.c.id.in_(ids), documents.c.state == ACTIVE)
        async with read_transaction(self.engine) as connection:
            return set((await connection.execute(query)).scalars().all())

    async def count_documents(self, ins: str) -> int:
        """Active documents of a citizen (tests and tools)."""
        query = select(documents.c.seq).where(
            documents.c.citizen_ins == ins, documents.c.state == ACTIVE
        )
        async with read_transaction(self.engine) as connection:
            return len((await connection.execute(query)).all())


def _document(row: Any) -> Document:
    category = Category(row["category"])
    return Document(
        id=row["id"],
        citizen_ins=row["citizen_ins"],
        title=row["title"],
        category=category,
        category_label=category.label,
        document_date=row["document_date"],
        type_code=row["type_code"],
        type_code_scheme=row["type_code_scheme"],
        author_name=row["author_name"],
        author_id=row["author_id"],
        source_message_id=row["source_message_id"],
        source_part=row["source_part"],
        mime_type=row["mime_type"],
        declared_mime_type=row["declared_mime_type"],
        type_note=row["type_note"],
        size=row["size"],
        sha256=row["sha256"],
        confidentiality=Confidentiality.HIDDEN if row["hidden"] else Confidentiality.VISIBLE,
        filed_by=Actor(kind=ActorKind(row["filed_by_kind"]), id=row["filed_by_id"]),
        filed_at=row["filed_at"],
        updated_at=row["updated_at"],
        idempotency_key=row["idempotency_key"],
    )


def encode_cursor(after_date: datetime, after_seq: int) -> str:
    raw = f"{after_date.astimezone(UTC).isoformat()}|{after_seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor names; DocstoreError 400 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, seq = raw.split("|")
        after = datetime.fromisoformat(when)
        if after.tzinfo is None:
            raise ValueError("naive")
        return after, int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DocstoreError(
            400, "invalid-cursor", "the cursor is not one this store gave"
        ) from None
