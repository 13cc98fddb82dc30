"""The queue's records: adding a message (its file written and fsynced first, then its rows,
possibly inside a caller's transaction), leasing what is due, recording each recipient's result,
and the operator's view (list, retry, delete).

Leases: a runner takes due recipients by moving their ``next_attempt_at`` forward by
:data:`LEASE` in the same transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock on SQLite), so two runners (two `pli serve`, or a crash and a restart) never deliver
the same recipient at once; a runner that dies leaves the lease to expire and the next one tries.

Priority: due recipients are leased interactive first (``Precedence: bulk`` messages, the bulk
sender's campaigns, after them: RFC 2076 §3.9), and the runner caps how many campaign
recipients it leases (``bulk_limit``) so that interactive mail always finds a free slot.
Observers (:attr:`OutboundQueue.observers`) are called in the transaction that records an
attempt's outcomes: the bulk sender follows its messages there (their rows go once finished).

This module reads and writes rows and files; it does not speak SMTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from pli.mailbox.mime.cache import message_ids as header_message_ids
from pli.mailbox.mime.headers import parse_header
from pli.mailbox.store import Store, Transaction
from pli.mailbox.store.blobs import FileBlobStore
from pli.mailbox.store.models import MESSAGE_ID_LENGTH

from .models import (
    PRIORITY_BULK,
    PRIORITY_INTERACTIVE,
    QUEUED,
    QueuedMessageRow,
    QueuedRecipientRow,
)

#: How long a runner holds due recipients it is delivering (seconds); past it, another runner
#: may take them (a delivery attempt is bounded by the command timeouts, well below this).
LEASE = 3600.0
#: ``Precedence`` values that mark mass mail (RFC 2076 §3.9: "bulk", "list", "junk"; the bulk
#: sender writes "bulk"): queued at :data:`PRIORITY_BULK`.
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def priority_of(raw: bytes) -> int:
    """The queue priority of a message: bulk when its ``Precedence`` says so."""
    precedence = (parse_header(raw).first("precedence") or "").strip().lower()
    return PRIORITY_BULK if precedence in BULK_PRECEDENCE else PRIORITY_INTERACTIVE


def message_id_of(raw: bytes) -> str:
    """The Message-ID's identifier (without <>), "" when absent."""
    found = header_message_ids(parse_header(raw).first("message-id"))
    return found[0][:MESSAGE_ID_LENGTH] if found else ""


@dataclass(frozen=True, slots=True)
class NewRecipient:
    address: str
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    domain: str
    notify: tuple[str, ...] | None
    orcpt: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_reply: str
    last_status: str
    priority: int = PRIORITY_INTERACTIVE


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    blob_id: str
    sender: str
    envid: str | None
    ret: str | None
    eight_bit: bool
    smtputf8: bool
    size: int
    origin: str
    received_from: str
    created_at: datetime
    expires_at: datetime
    delay_reported: bool
    message_id: str = ""
    priority: int = PRIORITY_INTERACTIVE
    recipients: tuple[QueuedRecipient, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt for one recipient."""

    recipient_id: int
    status: str  # SENT, FAILED or QUEUED (retry at next_attempt_at)
    reply: str = ""
    enhanced: str = ""
    remote_mta: str = ""
    next_attempt_at: datetime | None = None


OutcomeObserver = Callable[[QueuedMessage, Sequence[Outcome], Transaction], Awaitable[None]]
"""Told the outcomes of an attempt, in the transaction that records them."""


def _notify_text(notify: tuple[str, ...] | None) -> str | None:
    return ",".join(notify) if notify is not None else None


def _recipient(row: Any) -> QueuedRecipient:
    return QueuedRecipient(
        id=row.id,
        address=row.address,
        domain=row.domain,
        notify=tuple(row.notify.split(",")) if row.notify is not None else None,
        orcpt=row.orcpt,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_reply=row.last_reply,
        last_status=row.last_status,
        priority=row.priority,
    )


def _message(row: Any, recipients: Sequence[QueuedRecipient] = ()) -> QueuedMessage:
    return QueuedMessage(
        id=row.id,
        blob_id=row.blob_id,
        sender=row.sender,
        envid=row.envid,
        ret=row.ret,
        eight_bit=row.eight_bit,
        smtputf8=row.smtputf8,
        size=row.size,
        origin=row.origin,
        received_from=row.received_from,
        created_at=row.created_at,
        expires_at=row.expires_at,
        delay_reported=row.delay_reported,
        message_id=row.message_id,
        priority=max((r.priority for r in recipients), default=PRIORITY_INTERACTIVE),
        recipients=tuple(recipients),
    )


class OutboundQueue:
    """The queue in the store's database, its files in ``directory``."""

    def __init__(self, store: Store, directory: Path, *, max_lifetime: float, fsync: bool = True):
        self.store = store
        self.files = FileBlobStore(directory, fsync=fsync)
        self.max_lifetime = max_lifetime
        self.added = asyncio.Event()  # set after a commit that queued something (wakes the runner)
        #: Called with (message, outcomes, tx) when an attempt's outcomes are recorded.
        self.observers: list[OutcomeObserver] = []

    def wake(self) -> None:
        """Tell this process's runner that something was queued (call after the commit)."""
        self.added.set()

    # -- adding -------------------------------------------------------------------------------

    async def write_file(self, raw: bytes) -> str:
        """The message's file, durable (call before :meth:`add`)."""
        return await self.files.put(raw)

    async def add(
        self,
        blob_id: str,
        raw: bytes,
        sender: str,
        recipients: Sequence[NewRecipient],
        *,
        origin: str,
        envid: str | None = None,
        ret: str | None = None,
        smtputf8: bool = False,
        received_from: str = "",
        tx: Transaction | None = None,
        now: datetime | None = None,
    ) -> int:
        """The rows of a queued message whose file :meth:`write_file` wrote; returns its id.
        Inside ``tx`` it commits with the caller's other work (a delivery, a result)."""
        now = now or datetime.now(UTC)
        priority = priority_of(raw)
        async with self.store.writing(tx) as tx:
            message_id = await tx.conn.scalar(
                insert(QueuedMessageRow)
                .values(
                    blob_id=blob_id,
                    sender=sender,
                    envid=envid,
                    ret=ret,
                    eight_bit=not raw.isascii(),
                    smtputf8=smtputf8,
                    size=len(raw),
                    origin=origin,
                    received_from=received_from[:255],
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.max_lifetime),
                    delay_reported=False,
                    message_id=message_id_of(raw),
                )
                .returning(QueuedMessageRow.id)
            )
            await tx.conn.execute(
                insert(QueuedRecipientRow),
                [
                    {
                        "message_id": message_id,
                        "address": recipient.address,
                        "domain": recipient.address.rpartition("@")[2].lower(),
                        "notify": _notify_text(recipient.notify),
                        "orcpt": recipient.orcpt,
                        "status": QUEUED,
                        "priority": priority,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "last_reply": "",
                        "last_status": "",
                        "remote_mta": "",
                    }
                    for recipient in recipients
                ],
            )
        assert message_id is not None
        return int(message_id)

    async def enqueue(
        self, raw: bytes, sender: str, recipients: Sequence[NewRecipient], **options: object
    ) -> int:
        """:meth:`write_file` then :meth:`add` (options as there)."""
        blob_id = await self.write_file(raw)
        try:
            message_id = await self.add(blob_id, raw, sender, recipients, **options)  # type: ignore[arg-type]
        except BaseException:
            await self.files.delete(blob_id)
            raise
        self.wake()
        return message_id

    # -- delivering ---------------------------------------------------------------------------

    async def lease_due(
        self, now: datetime | None = None, limit: int = 100, *, bulk_limit: int | None = None
    ) -> list[QueuedMessage]:
        """Messages with recipients due now (only those recipients), leased for :data:`LEASE`:
        at most ``limit`` recipients, interactive ones first, of which at most ``bulk_limit``
        (default ``limit``) of campaign messages."""
        now = now or datetime.now(UTC)
        bulk_limit = limit if bulk_limit is None else min(bulk_limit, limit)
        async with self.store.transaction() as tx:
            rows = await self._due(tx, now, QueuedRecipientRow.priority < PRIORITY_BULK, limit)
            if len(rows) < limit and bulk_limit > 0:
                room = min(limit - len(rows), bulk_limit)
                rows += await self._due(tx, now, QueuedRecipientRow.priority >= PRIORITY_BULK, room)
            if not rows:
                return []
            ids = [row.id for row in rows]
            await tx.conn.execute(
                update(QueuedRecipientRow)
                .where(QueuedRecipientRow.id.in_(ids))
                .values(next_attempt_at=now + timedelta(seconds=LEASE))
            )
            message_ids = sorted({row.message_id for row in rows})
            messages = (
                await tx.conn.execute(
                    select(QueuedMessageRow).where(QueuedMessageRow.id.in_(message_ids))
                )
            ).all()
        by_message: dict[int, list[QueuedRecipient]] = {}
        for row in rows:
            by_message.setdefault(row.message_id, []).append(_recipient(row))
        found = {row.id: _message(row, by_message[row.id]) for row in messages}
        return sorted(found.values(), key=lambda message: (message.priority, message.id))

    async def _due(self, tx: Transaction, now: datetime, band: Any, limit: int) -> list[Any]:
        query = (
            select(QueuedRecipientRow)
            .where(
                QueuedRecipientRow.status == QUEUED,
                band,
                QueuedRecipientRow.next_attempt_at <= now,
            )
            .order_by(
                QueuedRecipientRow.priority,
                QueuedRecipientRow.next_attempt_at,
                QueuedRecipientRow.id,
            )
            .limit(limit)
        )
        if self.store.db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        return list((await tx.conn.execute(query)).all())

    async def read(self, message: QueuedMessage) -> bytes:
        return await self.files.get(message.blob_id)

    async def record(
        self,
        message: QueuedMessage,
        outcomes: Sequence[Outcome],
        *,
        delay_reported: bool = False,
        tx: Transaction,
        now: datetime | None = None,
    ) -> bool:
        """Write the outcomes of an attempt (in ``tx``); True when the message is finished
        (no recipient left to try): its rows are then deleted, and the caller deletes its
        file after commit (:meth:`forget_file`)."""
        now = now or datetime.now(UTC)
        for outcome in outcomes:
            values: dict[str, object] = {
                "status": outcome.status,
                "attempts": QueuedRecipientRow.attempts + 1,
                "last_attempt_at": now,
                "last_reply": outcome.reply[:2000],
                "last_status": outcome.enhanced[:16],
                "remote_mta": outcome.remote_mta[:255],
            }
            if outcome.status == QUEUED:
                values["next_attempt_at"] = outcome.next_attempt_at or now
            await tx.conn.execute(
                update(QueuedRecipientRow)
                .where(QueuedRecipientRow.id == outcome.recipient_id)
                .values(**values)
            )
        for observer in self.observers:
            await observer(message, outcomes, tx)
        if delay_reported:
            await tx.conn.execute(
                update(QueuedMessageRow)
                .where(QueuedMessageRow.id == message.id)
                .values(delay_reported=True)
            )
        remaining = await tx.conn.scalar(
            select(func.count())
            .select_from(QueuedRecipientRow)
            .where(QueuedRecipientRow.message_id == message.id, QueuedRecipientRow.status == QUEUED)
        )
        if remaining:
            return False
        await tx.conn.execute(
            delete(QueuedRecipientRow).where(QueuedRecipientRow.message_id == message.id)
        )
        await tx.conn.execute(delete(QueuedMessageRow).where(QueuedMessageRow.id == message.id))
        return True

    async def forget_file(self, message: QueuedMessage) -> None:
        await self.files.delete(message.blob_id)

    # -- operators ----------------------------------------------------------------------------

    async def all(self, message_id: int | None = None) -> list[QueuedMessage]:
        """Every queued message with its recipients (or only ``message_id``), oldest first."""
        messages_query = select(QueuedMessageRow).order_by(QueuedMessageRow.id)
        recipients_query = select(QueuedRecipientRow).order_by(QueuedRecipientRow.id)
        if message_id is not None:
            messages_query = messages_query.where(QueuedMessageRow.id == message_id)
            recipients_query = recipients_query.where(QueuedRecipientRow.message_id == message_id)
        async with self.store.db.read() as conn:
            messages = (await conn.execute(messages_query)).all()
            recipients = (await conn.execute(recipients_query)).all()
        by_message: dict[int, list[QueuedRecipient]] = {}
        for row in recipients:
            by_message.setdefault(row.message_id, []).append(_recipient(row))
        return [_message(row, by_message.get(row.id, [])) for row in messages]

    async def get(self, message_id: int) -> QueuedMessage | None:
        found = await self.all(message_id)
        return found[0] if found else None

    async def retry(self, message_id: int | None = None, now: datetime | None = None) -> int:
        """Make queued recipients due now (one message, or all); returns how many."""
        now = now or datetime.now(UTC)
        condition = QueuedRecipientRow.status == QUEUED
        async with self.store.transaction() as tx:
            query = update(QueuedRecipientRow).where(condition).values(next_attempt_at=now)
            if message_id is not None:
                query = query.where(QueuedRecipientRow.message_id == message_id)
            result = await tx.conn.execute(query)
        return int(result.rowcount or 0)

    async def delete(self, message_id: int) -> bool:
        """Remove a message from the queue without delivering or reporting it."""
        async with self.store.transaction() as tx:
            blob_id = await tx.conn.scalar(
                select(QueuedMessageRow.blob_id).where(QueuedMessageRow.id == message_id)
            )
            if blob_id is None:
                return False
            await tx.conn.execute(
                delete(QueuedRecipientRow).where(QueuedRecipientRow.message_id == message_id)
            )
            await tx.conn.execute(delete(QueuedMessageRow).where(QueuedMessageRow.id == message_id))
        await self.files.delete(blob_id)
        return True

    async def referenced_files(self) -> set[str]:
        async with self.store.db.read() as conn:
            return set(await conn.scalars(select(QueuedMessageRow.blob_id)))

    async def sweep_files(self, *, grace: float, now: float) -> int:
        """Remove queue files no row refers to, older than ``grace`` (a crash between writing
        a file and committing its rows leaves one)."""
        referenced = await self.referenced_files()
        removed = 0
        for blob_id, created in list(self.files.list()):
            if blob_id not in referenced and now - created >= grace:
                await self.files.delete(blob_id)
                removed += 1
        return removed
