"""The append-only, tamper-evident audit log (Ségur SC.MSS/CONF.17-18; policy P8, P9).

Each record says who acted (``actor``: the authenticated identity; ``acting_for``: the citizen a
guardian acted for), when, on which mailbox, what (``action``), a summary of the request and the
result: never message content. Records are kept ``audit.retention`` (6 months by default).

Tamper evidence: each record stores ``prev_hash`` and ``hash = sha256(prev_hash || canonical)``
where ``canonical`` is the JSON list ``[at, actor, acting_for, mailbox, action, request,
result]`` (UTF-8, no spaces; ``at`` in ISO 8601 UTC with microseconds). The single row of
``audit_chain`` holds the last hash; every writer locks it (``SELECT … FOR UPDATE`` on PostgreSQL,
the database write lock on SQLite), so two writers, even in two processes, never fork the chain.
A purge deletes the oldest records and moves the chain's anchor to the hash of the last one
removed, then records an ``audit-purge`` record: what remains still verifies from the anchor.
:meth:`AuditLog.verify` reports the first broken link. Whoever can write the database can rewrite
the whole chain: export :meth:`AuditLog.head` regularly to make that detectable too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from pli.mailbox.mime.text import clean

from .models import AuditChainRow, AuditRecordRow
from .prepared import Prepared
from .records import AuditRecord, AuditVerification

if TYPE_CHECKING:
    from .service import Store, Transaction

GENESIS_HASH = "0" * 64
CHAIN_ROW_ID = 1
#: Characters kept of a request or result summary (summaries, not content).
MAX_AUDIT_TEXT = 2000
#: Characters of actor, mailbox and action fields (the columns' sizes).
MAX_AUDIT_NAME = 320
_VERIFY_BATCH = 1000
#: The group commit's statements (``prepared.py``: on the SQLite driver).
_INSERT_RECORD = Prepared(
    insert(AuditRecordRow).returning(AuditRecordRow.id, sort_by_parameter_order=True)
)
_LOCK_CHAIN = Prepared(
    select(AuditChainRow).where(AuditChainRow.id == CHAIN_ROW_ID).with_for_update()
)
_MOVE_CHAIN = Prepared(
    update(AuditChainRow)
    .where(AuditChainRow.id == CHAIN_ROW_ID)
    .values(last_id=bindparam("new_last_id"), last_hash=bindparam("new_last_hash"))
)


def canonical(
    at: datetime,
    actor: str,
    acting_for: str | None,
    mailbox: str | None,
    action: str,
    request: str,
    result: str,
) -> bytes:
    stamp = at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [stamp, actor, acting_for, mailbox, action, request, result]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def chain_hash(prev_hash: str, record: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + record).hexdigest()


def row_hash(row: Any) -> str:
    """The hash a stored record must carry, recomputed from its fields."""
    fields = (row.at, row.actor, row.acting_for, row.mailbox, row.action, row.request, row.result)
    return chain_hash(row.prev_hash, canonical(*fields))


def _text(value: str | None, limit: int) -> str | None:
    return clean(value)[:limit] if value is not None else None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record for :meth:`AuditLog.record_many` (the fields of :meth:`AuditLog.record`)."""

    actor: str
    action: str
    mailbox: str | None = None
    acting_for: str | None = None
    request: str = ""
    result: str = ""
    at: datetime | None = None


_CANONICAL_FIELDS = ("at", "actor", "acting_for", "mailbox", "action", "request", "result")


def _values(
    actor: str,
    action: str,
    mailbox: str | None,
    acting_for: str | None,
    request: str,
    result: str,
    at: datetime | None,
) -> dict[str, Any]:
    """A record's column values, cleaned and bounded as stored."""
    return {
        "at": (at or datetime.now(UTC)).astimezone(UTC),
        "actor": _text(actor, MAX_AUDIT_NAME) or "",
        "acting_for": _text(acting_for, MAX_AUDIT_NAME),
        "mailbox": _text(mailbox.lower() if mailbox else None, MAX_AUDIT_NAME),
        "action": _text(action, 64) or "",
        "request": _text(request, MAX_AUDIT_TEXT) or "",
        "result": _text(result, MAX_AUDIT_TEXT) or "",
    }


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in _CANONICAL_FIELDS}


def record_from_row(row: Any) -> AuditRecord:
    return AuditRecord(
        row.id,
        row.at,
        row.actor,
        row.acting_for,
        row.mailbox,
        row.action,
        row.request,
        row.result,
        row.prev_hash,
        row.hash,
    )


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(
        self,
        actor: str,
        action: str,
        *,
        mailbox: str | None = None,
        acting_for: str | None = None,
        request: str = "",
        result: str = "",
        at: datetime | None = None,
        tx: Transaction | None = None,
    ) -> AuditRecord:
        """Append a record (inside the caller's transaction when ``tx`` is given, so that it
        commits or rolls back with what it describes)."""
        values = _values(actor, action, mailbox, acting_for, request, result, at)
        async with self.store.writing(tx) as tx:
            chain = await self._lock_chain(tx)
            digest = chain_hash(chain.last_hash, canonical(**values))
            record_id = await tx.conn.scalar(
                insert(AuditRecordRow)
                .values(**values, prev_hash=chain.last_hash, hash=digest)
                .returning(AuditRecordRow.id)
            )
            assert record_id is not None
            await tx.conn.execute(
                update(AuditChainRow)
                .where(AuditChainRow.id == CHAIN_ROW_ID)
                .values(last_id=record_id, last_hash=digest)
            )
        return AuditRecord(id=record_id, prev_hash=chain.last_hash, hash=digest, **values)

    async def record_many(self, entries: Sequence[AuditEntry], *, tx: Transaction) -> None:
        """Append several records in the caller's transaction, chained in order, with one lock
        of the chain and one INSERT (a batch of deliveries writes its records this way)."""
        if not entries:
            return
        rows = [
            _values(e.actor, e.action, e.mailbox, e.acting_for, e.request, e.result, e.at)
            for e in entries
        ]
        chain = await self._lock_chain(tx)
        previous = chain.last_hash
        for values in rows:
            values["prev_hash"] = previous
            values["hash"] = previous = chain_hash(previous, canonical(**_fields(values)))
        last_id = (await _INSERT_RECORD.each(tx.conn, rows))[-1].id
        await _MOVE_CHAIN.many(tx.conn, [{"new_last_id": last_id, "new_last_hash": previous}])

    async def _lock_chain(self, tx: Transaction) -> Any:
        chain = await _LOCK_CHAIN.first(tx.conn)
        if chain is None:  # normally seeded by the migration
            await tx.conn.execute(
                insert(AuditChainRow).values(
                    id=CHAIN_ROW_ID,
                    last_id=0,
                    last_hash=GENESIS_HASH,
                    anchor_id=0,
                    anchor_hash=GENESIS_HASH,
                    purged=0,
                )
            )
            chain = await _LOCK_CHAIN.first(tx.conn)
        return chain

    async def head(self) -> tuple[int, str]:
        """(last record id, last hash): keep a copy elsewhere to detect a rewritten chain."""
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(select(AuditChainRow).where(AuditChainRow.id == CHAIN_ROW_ID))
            ).first()
        return (row.last_id, row.last_hash) if row is not None else (0, GENESIS_HASH)

    async def verify(self) -> AuditVerification:
        """Walk the chain from its anchor; the first record whose link or hash is wrong is
        reported, as is a chain head that does not match the last record (a removed tail)."""
        async with self.store.db.read() as conn:
            chain = (
                await conn.execute(select(AuditChainRow).where(AuditChainRow.id == CHAIN_ROW_ID))
            ).first()
            expected = chain.anchor_hash if chain is not None else GENESIS_HASH
            last_id = 0
            checked = 0
            while True:
                rows = (
                    await conn.execute(
                        select(AuditRecordRow)
                        .where(AuditRecordRow.id > last_id)
                        .order_by(AuditRecordRow.id)
                        .limit(_VERIFY_BATCH)
                    )
                ).all()
                if not rows:
                    break
                for row in rows:
                    if row.prev_hash != expected:
                        return AuditVerification(
                            False, checked, row.id, "link to the previous record is broken"
                        )
                    if row_hash(row) != row.hash:
                        return AuditVerification(
                            False, checked, row.id, "record content does not match its hash"
                        )
                    expected = row.hash
                    last_id = row.id
                    checked += 1
        if chain is not None and (chain.last_hash != expected or chain.last_id != last_id):
            return AuditVerification(
                False, checked, last_id or None, "chain head does not match the last record"
            )
        return AuditVerification(True, checked)

    async def purge(self, retention: float | None = None, *, now: datetime | None = None) -> int:
        """Remove records older than ``retention`` seconds (default: the configured one) and
        move the anchor; returns how many were removed."""
        retention = self.store.options.audit_retention if retention is None else retention
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=retention)
        async with self.store.transaction() as tx:
            chain = await self._lock_chain(tx)
            last = (
                await tx.conn.execute(
                    select(AuditRecordRow.id, AuditRecordRow.hash)
                    .where(AuditRecordRow.at < cutoff)
                    .order_by(AuditRecordRow.id.desc())
                    .limit(1)
                )
            ).first()
            if last is None:
                return 0
            removed = await tx.conn.scalar(select(func.count()).where(AuditRecordRow.id <= last.id))
            await tx.conn.execute(delete(AuditRecordRow).where(AuditRecordRow.id <= last.id))
            await tx.conn.execute(
                update(AuditChainRow)
                .where(AuditChainRow.id == CHAIN_ROW_ID)
                .values(
                    anchor_id=last.id,
                    anchor_hash=last.hash,
                    purged=chain.purged + int(removed or 0),
                )
            )
            await self.record(
                "pli",
                "audit-purge",
                request=f"before={cutoff.isoformat(timespec='seconds')}",
                result=f"removed={removed}",
                tx=tx,
            )
        return int(removed or 0)

    async def history(
        self, mailbox: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[AuditRecord]:
        """A mailbox's records, newest first (the citizen's activity history)."""
        query = select(AuditRecordRow).where(AuditRecordRow.mailbox == mailbox.lower())
        if before_id is not None:
            query = query.where(AuditRecordRow.id < before_id)
        async with self.store.db.read() as conn:
            rows = (await conn.execute(query.order_by(AuditRecordRow.id.desc()).limit(limit))).all()
        return [record_from_row(row) for row in rows]
