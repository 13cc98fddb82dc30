"""The durable state of campaigns and rows: the exactly-once state machine, in the store's
database.

A row goes ``pending`` → ``submitting`` → ``submitted`` (the pipeline accepted it: delivered
here, or queued for another operator) or ``refused`` (with the reason and the French text);
a line the CSV check rejected is ``invalid`` from the start; ``cancelled`` when the campaign
is. A temporary refusal puts the row back to ``pending`` with ``not_before`` (a few times, then
``refused``).

**Exactly once.** The Message-ID of every row is chosen at registration. Rows are marked
``submitting`` (committed) before they are handed to the pipeline; after a crash, a row still
``submitting`` is looked up (:meth:`Ledger.recover`): its Message-ID in the recipient's folders,
in the conversation it opened (kept even if the citizen deleted the message), in the queue, or
a delivery outcome the queue reported; found, it is ``submitted``; not found, the pipeline never
committed it and it is ``pending`` again. So a row is never sent twice and never skipped.

**Claims.** One process runs a campaign at a time: :meth:`Ledger.claim` takes the campaign's
lease (free, expired, or held by a dead process of this host), :meth:`Ledger.renew` extends it.

What this module must not do: compose or send messages (``runner.py``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, update

from pli.mailbox.store import Store, Transaction
from pli.mailbox.store.models import (
    AccountRow,
    ConversationRow,
    FolderRow,
    MessageRow,
    ThreadMessageRow,
)

from ..queue.entries import Outcome, QueuedMessage
from ..queue.models import FAILED as QUEUE_FAILED
from ..queue.models import QUEUED as QUEUE_QUEUED
from ..queue.models import QueuedMessageRow
from .limits import INSERT_CHUNK, RECOVERY_CHUNK
from .models import CampaignRecipientRow, CampaignRow

PENDING, SUBMITTING, SUBMITTED = "pending", "submitting", "submitted"
REFUSED, INVALID, CANCELLED = "refused", "invalid", "cancelled"
FINAL_STATES = frozenset({SUBMITTED, REFUSED, INVALID, CANCELLED})
#: What became of a submitted message: delivered here or relayed to the next operator,
#: deferred by the queue (still trying), bounced (given up).
DELIVERED, DEFERRED, BOUNCED = "delivered", "deferred", "bounced"
#: Campaign states.
READY, FINISHED = "ready", "finished"
#: Why a row whose submission kept failing (not a refusal: the store did) was given up.
SUBMISSION_FAILED = "submission-failed"

ROWS = cast(Table, CampaignRecipientRow.__table__)
CAMPAIGNS = cast(Table, CampaignRow.__table__)
#: The Message-IDs of campaign messages start so (compose.py): the queue observer's filter.
BULK_MESSAGE_ID_PREFIX = "bulk."


class CampaignConflict(Exception):
    """A campaign id registered with other content; ``text`` French."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class NewRow:
    key: str
    line: int
    recipient: str
    message_id: str
    state: str = PENDING
    reason: str = ""
    text: str = ""


@dataclass(frozen=True)
class CampaignRecord:
    id: str
    kind: str
    mailbox: str
    structure_id: str | None
    source: str
    content_hash: str
    origin: str
    state: str
    rows_total: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None


@dataclass(frozen=True)
class RowRef:
    id: int
    key: str
    recipient: str
    message_id: str
    attempts: int


@dataclass(frozen=True)
class RowOutcome:
    """What the runner learnt of a row: a final or pending state, the reason and text, and
    the delivery when the pipeline delivered it here."""

    id: int
    state: str
    reason: str = ""
    text: str = ""
    delivery: str = ""
    attempts: int = 0
    not_before: datetime | None = None


@dataclass(frozen=True)
class Progress:
    total: int
    by_state: dict[str, int]
    by_delivery: dict[str, int]

    @property
    def done(self) -> int:
        return sum(count for state, count in self.by_state.items() if state in FINAL_STATES)

    @property
    def remaining(self) -> int:
        return self.total - self.done


@dataclass(frozen=True)
class ReportRow:
    line: int
    key: str
    recipient: str
    message_id: str
    state: str
    reason: str
    text: str
    delivery: str
    delivery_detail: str
    submitted_at: datetime | None

    @property
    def status(self) -> str:
        """The report's word: accepted, delivered, deferred, bounced, refused, pending,
        cancelled."""
        if self.state == SUBMITTED:
            return self.delivery or "accepted"
        if self.state in (REFUSED, INVALID):
            return "refused"
        if self.state == CANCELLED:
            return CANCELLED
        return PENDING


def process_owner() -> str:
    """This process's name in leases: host, pid and a random token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str | None) -> bool:
    """The owner is a process of this host that no longer runs (it was killed)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _lease_free(owner: str | None, until: datetime | None, now: datetime) -> bool:
    """No live process holds the campaign: never claimed, released, expired, or its holder is
    a dead process of this host."""
    return owner is None or until is None or until <= now or _dead_here(owner)


def _record(row: Any) -> CampaignRecord:
    return CampaignRecord(
        id=row.id,
        kind=row.kind,
        mailbox=row.mailbox,
        structure_id=row.structure_id,
        source=row.source,
        content_hash=row.content_hash,
        origin=row.origin,
        state=row.state,
        rows_total=row.rows_total,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- campaigns ----------------------------------------------------------------------------

    async def get(self, campaign_id: str) -> CampaignRecord | None:
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id))
            ).first()
        return _record(row) if row is not None else None

    async def campaigns(self, limit: int = 100) -> list[CampaignRecord]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(CAMPAIGNS).order_by(CAMPAIGNS.c.created_at.desc()).limit(limit)
                )
            ).all()
        return [_record(row) for row in rows]

    async def register(
        self,
        *,
        campaign_id: str,
        kind: str,
        mailbox: str,
        structure_id: str | None,
        source: str,
        content_hash: str,
        origin: str,
        rows: Sequence[NewRow],
        now: datetime | None = None,
    ) -> tuple[CampaignRecord, bool]:
        """The campaign's record, and whether it was created now. Registering the same content
        again returns the existing record; other content under the same id is refused."""
        existing = await self.get(campaign_id)
        if existing is not None:
            if existing.content_hash != content_hash:
                raise CampaignConflict(
                    f"la campagne {campaign_id} existe avec un autre contenu (fichiers modifiés "
                    "depuis son enregistrement) : donnez-lui un autre id"
                )
            return existing, False
        now = now or datetime.now(UTC)
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                insert(CAMPAIGNS).values(
                    id=campaign_id,
                    kind=kind,
                    mailbox=mailbox,
                    structure_id=structure_id,
                    source=source,
                    content_hash=content_hash,
                    origin=origin,
                    state=READY,
                    rows_total=len(rows),
                    created_at=now,
                )
            )
            for chunk in _chunks(rows, INSERT_CHUNK):
                await tx.conn.execute(
                    insert(ROWS),
                    [
                        {
                            "campaign_id": campaign_id,
                            "row_key": row.key,
                            "line": row.line,
                            "recipient": row.recipient,
                            "message_id": row.message_id,
                            "state": row.state,
                            "reason": row.reason,
                            "text": row.text,
                            "attempts": 0,
                            "delivery": "",
                            "delivery_detail": "",
                            "updated_at": now,
                        }
                        for row in chunk
                    ],
                )
        created = await self.get(campaign_id)
        assert created is not None
        return created, True

    async def claim(
        self, campaign_id: str, owner: str, lease: float, now: datetime | None = None
    ) -> CampaignRecord | None:
        """Take the campaign for ``lease`` seconds: free, expired, ours already, or held by a
        dead process of this host. None: another live process holds it (see its record)."""
        now = now or datetime.now(UTC)
        record = await self.get(campaign_id)
        if record is None:
            return None
        held = record.lease_owner != owner
        if held and not _lease_free(record.lease_owner, record.lease_until, now):
            return None
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                update(CAMPAIGNS)
                .where(
                    CAMPAIGNS.c.id == campaign_id,
                    or_(
                        CAMPAIGNS.c.lease_owner.is_(None),
                        CAMPAIGNS.c.lease_owner == record.lease_owner,
                    ),
                )
                .values(
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease),
                    started_at=func.coalesce(CAMPAIGNS.c.started_at, now),
                )
            )
        if not result.rowcount:
            return None  # taken by another process between the read and the update
        return await self.get(campaign_id)

    async def renew(
        self, campaign_id: str, owner: str, lease: float, now: datetime | None = None
    ) -> bool:
        now = now or datetime.now(UTC)
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                update(CAMPAIGNS)
                .where(CAMPAIGNS.c.id == campaign_id, CAMPAIGNS.c.lease_owner == owner)
                .values(lease_until=now + timedelta(seconds=lease))
            )
        return bool(result.rowcount)

    async def release(self, campaign_id: str, owner: str) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(CAMPAIGNS)
                .where(CAMPAIGNS.c.id == campaign_id, CAMPAIGNS.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    async def finish_if_done(self, campaign_id: str, now: datetime | None = None) -> bool:
        """Mark the campaign finished when no row is left to send; True if it is finished."""
        progress = await self.progress(campaign_id)
        if progress.remaining:
            return False
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(CAMPAIGNS)
                .where(CAMPAIGNS.c.id == campaign_id, CAMPAIGNS.c.finished_at.is_(None))
                .values(state=FINISHED, finished_at=now or datetime.now(UTC))
            )
        return True

    async def cancel(self, campaign_id: str, now: datetime | None = None) -> int:
        """Rows not yet handed to the pipeline are cancelled, and the campaign with them (a
        runner stops at its next batch); returns how many rows.

        When no live process holds the campaign, the rows a crashed run left ``submitting``
        are settled first as :meth:`recover` does (found: submitted; not found: cancelled), so
        that a cancelled campaign's report has no row left in between."""
        now = now or datetime.now(UTC)
        cancelled = await self._cancel_pending(campaign_id, now)
        record = await self.get(campaign_id)
        if record is not None and _lease_free(record.lease_owner, record.lease_until, now):
            await self.recover(campaign_id, record.mailbox, now)
            cancelled += await self._cancel_pending(campaign_id, now)
        return cancelled

    async def _cancel_pending(self, campaign_id: str, now: datetime) -> int:
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                update(ROWS)
                .where(ROWS.c.campaign_id == campaign_id, ROWS.c.state == PENDING)
                .values(state=CANCELLED, reason="cancelled", updated_at=now)
            )
            await tx.conn.execute(
                update(CAMPAIGNS)
                .where(CAMPAIGNS.c.id == campaign_id, CAMPAIGNS.c.state == READY)
                .values(state=CANCELLED, finished_at=now)
            )
        return int(result.rowcount or 0)

    async def runnable(self, now: datetime | None = None) -> list[CampaignRecord]:
        """Unfinished campaigns whose lease is free (expired, never taken, or held by a dead
        process of this host, as :meth:`claim` judges it): those submitted over the HTTP API,
        and those a stopped or killed ``pli bulk send`` left (``bulk.enabled``)."""
        now = now or datetime.now(UTC)
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(CAMPAIGNS)
                    .where(CAMPAIGNS.c.state == READY)
                    .order_by(CAMPAIGNS.c.created_at)
                )
            ).all()
        return [_record(row) for row in rows if _lease_free(row.lease_owner, row.lease_until, now)]

    # -- rows ---------------------------------------------------------------------------------

    async def due_rows(
        self, campaign_id: str, limit: int, now: datetime | None = None
    ) -> list[RowRef]:
        now = now or datetime.now(UTC)
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        ROWS.c.id,
                        ROWS.c.row_key,
                        ROWS.c.recipient,
                        ROWS.c.message_id,
                        ROWS.c.attempts,
                    )
                    .where(
                        ROWS.c.campaign_id == campaign_id,
                        ROWS.c.state == PENDING,
                        or_(ROWS.c.not_before.is_(None), ROWS.c.not_before <= now),
                    )
                    .order_by(ROWS.c.id)
                    .limit(limit)
                )
            ).all()
        return [RowRef(r.id, r.row_key, r.recipient, r.message_id, r.attempts) for r in rows]

    async def next_deferred(self, campaign_id: str) -> datetime | None:
        """When the earliest deferred row becomes due (None: no row waits)."""
        async with self.store.db.read() as conn:
            return await conn.scalar(
                select(func.min(ROWS.c.not_before)).where(
                    ROWS.c.campaign_id == campaign_id, ROWS.c.state == PENDING
                )
            )

    async def mark_submitting(self, ids: Sequence[int], now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        async with self.store.transaction() as tx:
            for chunk in _chunks(ids, INSERT_CHUNK):
                await tx.conn.execute(
                    update(ROWS)
                    .where(ROWS.c.id.in_(chunk), ROWS.c.state == PENDING)
                    .values(state=SUBMITTING, updated_at=now)
                )

    async def record(self, outcomes: Sequence[RowOutcome], now: datetime | None = None) -> None:
        """The outcomes of a batch, in one transaction."""
        now = now or datetime.now(UTC)
        async with self.store.transaction() as tx:
            for outcome in outcomes:
                values: dict[str, Any] = {
                    "state": outcome.state,
                    "reason": outcome.reason[:64],
                    "text": outcome.text,
                    "attempts": outcome.attempts,
                    "not_before": outcome.not_before,
                    "updated_at": now,
                }
                if outcome.state == SUBMITTED:
                    values["submitted_at"] = now
                    # the queue may have reported already (another process delivers fast)
                    values["delivery"] = case(
                        (ROWS.c.delivery == "", outcome.delivery), else_=ROWS.c.delivery
                    )
                await tx.conn.execute(
                    update(ROWS)
                    .where(ROWS.c.id == outcome.id, ROWS.c.state == SUBMITTING)
                    .values(**values)
                )

    async def recover(self, campaign_id: str, mailbox: str, now: datetime | None = None) -> int:
        """Settle the rows a crashed run left ``submitting`` (see the module docstring);
        returns how many were found accepted."""
        now = now or datetime.now(UTC)
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(ROWS.c.id, ROWS.c.recipient, ROWS.c.message_id, ROWS.c.delivery).where(
                        ROWS.c.campaign_id == campaign_id, ROWS.c.state == SUBMITTING
                    )
                )
            ).all()
        found = await self._found(rows, mailbox)
        here = [row_id for row_id, delivery in found.items() if delivery == DELIVERED]
        ids = list(found)
        async with self.store.transaction() as tx:
            for chunk in _chunks([row.id for row in rows], INSERT_CHUNK):
                await tx.conn.execute(
                    update(ROWS)
                    .where(ROWS.c.id.in_(chunk), ROWS.c.state == SUBMITTING)
                    .values(
                        state=case((ROWS.c.id.in_(ids), SUBMITTED), else_=PENDING),
                        submitted_at=case((ROWS.c.id.in_(ids), now), else_=None),
                        reason=case((ROWS.c.id.in_(ids), "recovered"), else_=""),
                        delivery=case((ROWS.c.id.in_(here), DELIVERED), else_=ROWS.c.delivery),
                        updated_at=now,
                    )
                )
        return len(found)

    async def settle_failed(
        self,
        ids: Sequence[int],
        mailbox: str,
        *,
        retry_at: datetime,
        max_attempts: int,
        now: datetime | None = None,
    ) -> int:
        """Rows whose submission raised (the store failed mid-way): like :meth:`recover`, those
        the pipeline committed are ``submitted``; the others are ``pending`` again from
        ``retry_at`` (one more attempt), or ``refused`` (``submission-failed``) once they
        reach ``max_attempts``. Returns how many were found accepted."""
        now = now or datetime.now(UTC)
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        ROWS.c.id,
                        ROWS.c.recipient,
                        ROWS.c.message_id,
                        ROWS.c.delivery,
                        ROWS.c.attempts,
                    ).where(ROWS.c.id.in_(list(ids)), ROWS.c.state == SUBMITTING)
                )
            ).all()
        found = await self._found(rows, mailbox)
        async with self.store.transaction() as tx:
            for row in rows:
                values: dict[str, Any]
                if row.id in found:
                    values = {
                        "state": SUBMITTED,
                        "submitted_at": now,
                        "reason": "recovered",
                        "delivery": found[row.id] or row.delivery,
                    }
                elif row.attempts + 1 >= max_attempts:
                    values = {
                        "state": REFUSED,
                        "reason": SUBMISSION_FAILED,
                        "text": "l'envoi a échoué plusieurs fois (erreur du serveur)",
                        "attempts": row.attempts + 1,
                    }
                else:
                    values = {
                        "state": PENDING,
                        "attempts": row.attempts + 1,
                        "not_before": retry_at,
                    }
                await tx.conn.execute(
                    update(ROWS)
                    .where(ROWS.c.id == row.id, ROWS.c.state == SUBMITTING)
                    .values(updated_at=now, **values)
                )
        return len(found)

    async def _found(self, rows: Sequence[Any], mailbox: str) -> dict[int, str]:
        """The ids among ``rows`` (id, recipient, message_id, delivery) that the pipeline
        committed, with their delivery: one the queue reported, or their Message-ID found."""
        found: dict[int, str] = {row.id: row.delivery for row in rows if row.delivery}
        for chunk in _chunks([row for row in rows if not row.delivery], RECOVERY_CHUNK):
            accepted = await self._accepted(chunk, mailbox)
            found |= {
                row.id: accepted[row.message_id] for row in chunk if row.message_id in accepted
            }
        return found

    async def _accepted(self, rows: Sequence[Any], mailbox: str) -> dict[str, str]:
        """The Message-IDs among ``rows`` the pipeline committed, with their delivery:
        ``delivered`` in the recipient's folders or the conversation the message opened, ""
        in the queue (sent by ``mailbox``)."""
        ids = [row.message_id for row in rows]
        recipients = {row.message_id: row.recipient for row in rows}
        async with self.store.db.read() as conn:
            stored = await conn.execute(
                select(MessageRow.message_id, AccountRow.address)
                .join(FolderRow, FolderRow.id == MessageRow.folder_id)
                .join(AccountRow, AccountRow.id == FolderRow.account_id)
                .where(MessageRow.message_id.in_(ids))
            )
            found = {mid for mid, owner in stored if recipients.get(mid) == owner}
            threaded = await conn.execute(
                select(ThreadMessageRow.message_id, ConversationRow.ins)
                .join(ConversationRow, ConversationRow.id == ThreadMessageRow.conversation_id)
                .where(
                    ThreadMessageRow.message_id.in_(ids),
                    ConversationRow.professional == mailbox,
                )
            )
            found |= {
                mid
                for mid, ins in threaded
                if recipients.get(mid, "").partition("@")[0].upper() == ins
            }
            queued = await conn.scalars(
                select(QueuedMessageRow.message_id).where(
                    QueuedMessageRow.message_id.in_(ids), QueuedMessageRow.sender == mailbox
                )
            )
            accepted = dict.fromkeys(queued, "")
        return accepted | dict.fromkeys(found, DELIVERED)

    # -- reading ------------------------------------------------------------------------------

    async def progress(self, campaign_id: str) -> Progress:
        async with self.store.db.read() as conn:
            states = (
                await conn.execute(
                    select(ROWS.c.state, func.count())
                    .where(ROWS.c.campaign_id == campaign_id)
                    .group_by(ROWS.c.state)
                )
            ).all()
            deliveries = (
                await conn.execute(
                    select(ROWS.c.delivery, func.count())
                    .where(ROWS.c.campaign_id == campaign_id, ROWS.c.state == SUBMITTED)
                    .group_by(ROWS.c.delivery)
                )
            ).all()
        by_state = {state: int(count) for state, count in states}
        return Progress(
            total=sum(by_state.values()),
            by_state=by_state,
            by_delivery={delivery or "accepted": int(count) for delivery, count in deliveries},
        )

    async def report(self, campaign_id: str) -> list[ReportRow]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(ROWS).where(ROWS.c.campaign_id == campaign_id).order_by(ROWS.c.line)
                )
            ).all()
        return [
            ReportRow(
                line=row.line,
                key=row.row_key,
                recipient=row.recipient,
                message_id=row.message_id,
                state=row.state,
                reason=row.reason,
                text=row.text,
                delivery=row.delivery,
                delivery_detail=row.delivery_detail,
                submitted_at=row.submitted_at,
            )
            for row in rows
        ]

    async def submitted_since(self, campaign_id: str, since: datetime) -> int:
        """Rows submitted since ``since`` (the rate of the last minutes, for the ETA)."""
        async with self.store.db.read() as conn:
            count = await conn.scalar(
                select(func.count()).where(
                    ROWS.c.campaign_id == campaign_id,
                    ROWS.c.state.in_([SUBMITTED, REFUSED]),
                    ROWS.c.updated_at >= since,
                )
            )
        return int(count or 0)

    async def delete(self, campaign_id: str) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(delete(ROWS).where(ROWS.c.campaign_id == campaign_id))
            await tx.conn.execute(delete(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id))


async def record_queue_outcomes(
    message: QueuedMessage, outcomes: Sequence[Outcome], tx: Transaction
) -> None:
    """The queue's observer (``OutboundQueue.observers``): what became of a campaign message
    sent to another operator, in the transaction that records it (its queue rows go once
    finished; the campaign row keeps the outcome)."""
    if not message.message_id.startswith(BULK_MESSAGE_ID_PREFIX) or not outcomes:
        return
    outcome = outcomes[-1]
    delivery = (
        DEFERRED
        if outcome.status == QUEUE_QUEUED
        else BOUNCED
        if outcome.status == QUEUE_FAILED
        else DELIVERED
    )
    detail = " ".join(part for part in (outcome.reply, outcome.remote_mta) if part)[:2000]
    await tx.conn.execute(
        update(ROWS)
        .where(and_(ROWS.c.message_id == message.message_id, ROWS.c.delivery.in_(["", DEFERRED])))
        .values(delivery=delivery, delivery_detail=detail)
    )
