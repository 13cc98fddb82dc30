"""The durable outbox of filings: asking for one, reading their states, and the worker's side
(claiming due requests under a lease, settling them).

A request is a row of ``filing_requests`` committed in the caller's store transaction, with its
audit record: once :func:`request_filing` returns (or the caller's transaction commits), the
filing survives a restart and a document store that is down. Asking again for the same
attachment returns the same row (the unique source key, ``keys.py``); a failed one is tried
again; ``again=True`` re-files a filed one (the store answers with the same document unless the
citizen deleted it).

Workers share the outbox through leases: :func:`claim` takes due rows and stamps them
``locked_until``/``locked_by`` in one transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock on SQLite), so two workers never send one row at the same time; :func:`settle`
writes the outcome only if the lease is still ours. A worker that dies leaves its rows to be
claimed again when the lease runs out; the document store's idempotency keys make that resend
harmless.

This module holds the SQL of the outbox; what is sent is decided in ``documents.py``, how answers
are read in ``client.py``, when to retry in ``worker.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pli.mailbox.mime.structure import Part
from pli.mailbox.store import (
    Account,
    InvalidRequest,
    NotFound,
    Store,
    StoreUserError,
    Transaction,
)
from pli.mailbox.store.models import AccountRow, MessageRow, UtcDateTime

from .keys import actor_id, digest, source_key, source_of
from .limits import ERROR_TEXT_LENGTH, PART_PATH_LENGTH
from .models import FilingRequestRow
from .reasons import FilingStatus
from .records import DocumentResult, FilingState, results_json
from .source import is_xdm, leaf_at
from .wake import filing_hint

#: The outbox table (Core: rows with named columns, read by ``FilingState.from_row``).
REQUESTS = FilingRequestRow.__table__

#: Store actor kinds (docs/docstore.md "Who may do what").
CITIZEN_REQUEST, GUARDIAN, AUTOMATIC_RULE = "citizen-request", "guardian", "automatic-rule"
KIND_ATTACHMENT, KIND_XDM = "attachment", "ihe-xdm"
#: Rows per INSERT: 20 parameters a row stay far below SQLite's 32,766 bound on one statement
#: (SQLITE_MAX_VARIABLE_NUMBER), whatever a message holds (up to 10,000 MIME parts).
ENQUEUE_CHUNK = 500
#: The audit log's name for the worker when it records an outcome.
WORKER_ACTOR = "pli-filing"


class FilingForbidden(StoreUserError):
    """The acting account may not act in this citizen's mailbox (policy P9)."""


@dataclass(frozen=True, slots=True)
class NewFiling:
    """A filing to enqueue: which attachment of which message, for whom, asked by whom."""

    account_id: int
    ins: str
    message_id: str
    blob_id: str
    part: str
    kind: str
    actor_kind: str
    actor_id: str

    @property
    def source_id(self) -> str:
        return source_of(self.message_id, self.blob_id)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request a worker holds under a lease."""

    id: int
    account_id: int
    address: str  # the citizen's mailbox address (for the audit)
    ins: str
    source_id: str
    message_id: str
    blob_id: str
    part: str
    kind: str
    actor_kind: str
    actor_id: str
    attempts: int  # this attempt included
    key_generation: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an attempt ended: filed or failed (final), or pending with the next attempt's time."""

    status: FilingStatus
    results: tuple[DocumentResult, ...] = ()
    reason: str | None = None
    detail: str = ""
    error: str = ""
    next_attempt_at: datetime | None = None
    key_generation: int | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def dialect_insert(conn: AsyncConnection) -> Callable[[Any], Any]:
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing`` on SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def insert_ignoring_conflicts(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING``: a unique key already there is not an error
    (someone enqueued it first)."""
    return dialect_insert(conn)(table).values(rows).on_conflict_do_nothing()


def _row_values(filing: NewFiling, now: datetime) -> dict[str, Any]:
    source = filing.source_id
    return {
        "account_id": filing.account_id,
        "ins": filing.ins,
        "source_key": source_key(source, filing.part),
        "source_id": source,
        "source_hash": digest(source),
        "message_id": filing.message_id,
        "blob_id": filing.blob_id,
        "part": filing.part,
        "kind": filing.kind,
        "actor_kind": filing.actor_kind,
        "actor_id": filing.actor_id,
        "state": FilingStatus.PENDING.value,
        "attempts": 0,
        "key_generation": 0,
        "next_attempt_at": now,
        "results": "[]",
        "detail": "",
        "last_error": "",
        "created_at": now,
        "updated_at": now,
    }


async def enqueue(tx: Transaction, filings: Sequence[NewFiling], now: datetime) -> int:
    """Add the filings not already in the outbox (in ``tx``); returns how many were new. The
    workers are woken after COMMIT."""
    added = 0
    for start in range(0, len(filings), ENQUEUE_CHUNK):
        rows = [_row_values(filing, now) for filing in filings[start : start + ENQUEUE_CHUNK]]
        statement = insert_ignoring_conflicts(tx.conn, FilingRequestRow, rows)
        added += (await tx.conn.execute(statement)).rowcount or 0
    if added:
        tx.events.append(filing_hint())
    return added


# -- the citizen's side ------------------------------------------------------------------------


async def _message_row(conn: AsyncConnection, folder_id: int, uid: int) -> Any:
    row = (
        await conn.execute(
            select(MessageRow.message_id, MessageRow.blob_id, MessageRow.structure).where(
                MessageRow.folder_id == folder_id, MessageRow.uid == uid
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such message")
    return row


async def _acting(store: Store, citizen: Account, actor: Account | None) -> tuple[str, str, str]:
    """(store actor kind, store actor id, audit actor) of who asks, checked (policy P9)."""
    if not citizen.is_citizen or not citizen.ins:
        raise InvalidRequest("only a citizen's attachments are filed into a document store")
    if actor is None or actor.id == citizen.id:
        return CITIZEN_REQUEST, citizen.ins, citizen.address
    if not await store.accounts.may_act_for(actor.id, citizen.id):
        raise FilingForbidden("this account may not act for this citizen")
    return GUARDIAN, actor_id(actor.ins or actor.address, f"account-{actor.id}"), actor.address


async def request_filing(
    store: Store,
    citizen: Account,
    folder_id: int,
    uid: int,
    part: str,
    *,
    actor: Account | None = None,
    again: bool = False,
    now: datetime | None = None,
    tx: Transaction | None = None,
) -> FilingState:
    """File attachment ``part`` (its IMAP section number, as the webmail lists attachments) of
    message ``uid`` of the citizen's folder ``folder_id`` into the citizen's document store.

    ``actor``: who clicks (None: the citizen; else a guardian who may act for them, policy P9,
    or :class:`FilingForbidden`). Returns the filing's state: new (pending), or the existing
    filing of that attachment (pending or filed; a failed one is tried again, and a filed one
    too with ``again``). The request and its audit record commit together (in ``tx`` when
    given). Unknown folder, message or part: :class:`NotFound`."""
    now = now or utc_now()
    kind, store_actor, audit_actor = await _acting(store, citizen, actor)
    if not part or len(part) > PART_PATH_LENGTH:
        raise InvalidRequest("bad part number")
    folder = await store.folders.by_id(folder_id)
    if folder.account_id != citizen.id:
        raise NotFound("no such message")
    async with store.writing(tx) as tx:
        row = await _message_row(tx.conn, folder_id, uid)
        found = leaf_at(_structure(row.structure), part)
        if found is None:
            raise NotFound("no such attachment")
        filing = NewFiling(
            account_id=citizen.id,
            ins=citizen.ins or "",
            message_id=row.message_id,
            blob_id=row.blob_id,
            part=part,
            kind=KIND_XDM if is_xdm(found) else KIND_ATTACHMENT,
            actor_kind=kind,
            actor_id=store_actor,
        )
        created = await enqueue(tx, [filing], now) == 1
        current = await _by_source(tx.conn, citizen.id, filing.source_id, part)
        outcome = "created" if created else current.state
        if not created and (
            current.state == FilingStatus.FAILED or (again and current.state == FilingStatus.FILED)
        ):
            await _reset(tx, [current.id], now, actor_kind=kind, actor_id=store_actor)
            current = await _by_source(tx.conn, citizen.id, filing.source_id, part)
            outcome = "asked-again"
        await store.audit.record(
            audit_actor,
            "filing-request",
            mailbox=citizen.address,
            acting_for=citizen.address if kind == GUARDIAN else None,
            request=f"folder={folder.name} uid={uid} part={part}",
            result=f"{outcome} filing={current.id}",
            tx=tx,
        )
        return FilingState.from_row(current)


def _structure(text: str) -> Part:
    decoded: Part = json.loads(text)
    return decoded


async def _by_source(conn: AsyncConnection, account_id: int, source: str, part: str) -> Any:
    return (
        await conn.execute(
            select(REQUESTS).where(
                FilingRequestRow.account_id == account_id,
                FilingRequestRow.source_key == source_key(source, part),
            )
        )
    ).one()


async def _reset(
    tx: Transaction,
    ids: Sequence[int],
    now: datetime,
    *,
    actor_kind: str | None = None,
    actor_id: str | None = None,
) -> int:
    values: dict[str, Any] = {
        "state": FilingStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "reason": None,
        "detail": "",
        "last_error": "",
        "results": "[]",
        "filed_at": None,
        "updated_at": now,
    }
    if actor_kind is not None and actor_id is not None:
        values |= {"actor_kind": actor_kind, "actor_id": actor_id}
    result = await tx.conn.execute(
        update(FilingRequestRow)
        .where(FilingRequestRow.id.in_(ids), FilingRequestRow.state != FilingStatus.PENDING.value)
        .values(**values)
    )
    changed = result.rowcount or 0
    if changed:
        tx.events.append(filing_hint())
    return changed


async def filings_for(
    store: Store, citizen: Account, folder_id: int, uid: int
) -> list[FilingState]:
    """The filings of the attachments of one of the citizen's messages, by part."""
    folder = await store.folders.by_id(folder_id)
    if folder.account_id != citizen.id:
        raise NotFound("no such message")
    async with store.db.read() as conn:
        row = await _message_row(conn, folder_id, uid)
        rows = (
            await conn.execute(
                select(REQUESTS)
                .where(
                    FilingRequestRow.account_id == citizen.id,
                    FilingRequestRow.source_hash == digest(source_of(row.message_id, row.blob_id)),
                )
                .order_by(FilingRequestRow.part)
            )
        ).all()
    return [FilingState.from_row(found) for found in rows]


# -- operators ---------------------------------------------------------------------------------


async def get_filing(store: Store, filing_id: int) -> FilingState:
    async with store.db.read() as conn:
        row = (await conn.execute(select(REQUESTS).where(FilingRequestRow.id == filing_id))).first()
    if row is None:
        raise NotFound("no such filing")
    return FilingState.from_row(row)


async def list_filings(
    store: Store,
    *,
    status: FilingStatus | None = None,
    ins: str | None = None,
    limit: int = 100,
) -> list[FilingState]:
    """Filings, newest first (``status``, ``ins``: only those)."""
    query = select(REQUESTS).order_by(FilingRequestRow.id.desc()).limit(max(1, limit))
    if status is not None:
        query = query.where(FilingRequestRow.state == status.value)
    if ins is not None:
        query = query.where(FilingRequestRow.ins == ins.upper())
    async with store.db.read() as conn:
        return [FilingState.from_row(row) for row in (await conn.execute(query)).all()]


async def retry_filings(
    store: Store, ids: Sequence[int] | None, *, operator: str, now: datetime | None = None
) -> int:
    """Put failed filings (``ids``, or every failed one when None) back to pending; returns how
    many. Recorded in the audit log."""
    now = now or utc_now()
    async with store.transaction() as tx:
        if ids is None:
            ids = list(
                await tx.conn.scalars(
                    select(FilingRequestRow.id).where(
                        FilingRequestRow.state == FilingStatus.FAILED.value
                    )
                )
            )
        changed = 0
        for start in range(0, len(ids), 500):
            changed += await _reset(tx, ids[start : start + 500], now)
        await store.audit.record(
            operator,
            "filing-retry",
            request=f"filings={len(ids)}",
            result=f"reset={changed}",
            tx=tx,
        )
    return changed


async def pending_count(store: Store) -> int:
    async with store.db.read() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(FilingRequestRow)
            .where(FilingRequestRow.state == FilingStatus.PENDING.value)
        )
    return int(count or 0)


# -- the worker's side ---------------------------------------------------------------------------


async def claim(
    store: Store, worker: str, limit: int, now: datetime, lease: float
) -> list[Claimed]:
    """Take up to ``limit`` due requests under a lease until ``now + lease``."""
    due = (
        select(FilingRequestRow.id)
        .where(
            FilingRequestRow.state == FilingStatus.PENDING.value,
            FilingRequestRow.next_attempt_at <= now,
            or_(FilingRequestRow.locked_until.is_(None), FilingRequestRow.locked_until <= now),
        )
        .order_by(FilingRequestRow.next_attempt_at, FilingRequestRow.id)
        .limit(limit)
    )
    if store.db.is_postgresql:
        due = due.with_for_update(skip_locked=True)
    async with store.transaction() as tx:
        ids = list(await tx.conn.scalars(due))
        if not ids:
            return []
        await tx.conn.execute(
            update(FilingRequestRow)
            .where(FilingRequestRow.id.in_(ids))
            .values(
                locked_until=now + timedelta(seconds=lease),
                locked_by=worker,
                attempts=FilingRequestRow.attempts + 1,
            )
        )
        rows = (
            await tx.conn.execute(
                select(REQUESTS, AccountRow.address)
                .join(AccountRow, AccountRow.id == FilingRequestRow.account_id)
                .where(FilingRequestRow.id.in_(ids))
                .order_by(FilingRequestRow.next_attempt_at, FilingRequestRow.id)
            )
        ).all()
    return [_claimed(row) for row in rows]


def _claimed(row: Any) -> Claimed:
    return Claimed(
        id=row.id,
        account_id=row.account_id,
        address=row.address,
        ins=row.ins,
        source_id=row.source_id,
        message_id=row.message_id,
        blob_id=row.blob_id,
        part=row.part,
        kind=row.kind,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        attempts=row.attempts,
        key_generation=row.key_generation,
    )


async def renew(store: Store, filing_id: int, worker: str, until: datetime) -> bool:
    """Extend our lease; False if another worker took the request over."""
    async with store.transaction() as tx:
        result = await tx.conn.execute(
            update(FilingRequestRow)
            .where(FilingRequestRow.id == filing_id, FilingRequestRow.locked_by == worker)
            .values(locked_until=until)
        )
    return bool(result.rowcount)


async def settle(
    store: Store, claimed: Claimed, worker: str, outcome: Settlement, now: datetime
) -> bool:
    """Record how the attempt ended, if the lease is still ours (False: another worker took the
    request over, and records its own outcome). A final outcome gets an audit record."""
    values: dict[str, Any] = {
        "state": outcome.status.value,
        "locked_until": None,
        "locked_by": None,
        "updated_at": now,
        "results": results_json(outcome.results),
        "reason": outcome.reason,
        "detail": outcome.detail[:ERROR_TEXT_LENGTH],
        "last_error": outcome.error[:ERROR_TEXT_LENGTH],
    }
    if outcome.status is FilingStatus.PENDING:
        values["next_attempt_at"] = outcome.next_attempt_at or now
    if outcome.status is FilingStatus.FILED:
        values["filed_at"] = now
    if outcome.key_generation is not None:
        values["key_generation"] = outcome.key_generation
    async with store.transaction() as tx:
        result = await tx.conn.execute(
            update(FilingRequestRow)
            .where(FilingRequestRow.id == claimed.id, FilingRequestRow.locked_by == worker)
            .values(**values)
        )
        if not result.rowcount:
            return False
        if outcome.status is not FilingStatus.PENDING:
            filed = [r.document_id for r in outcome.results if r.document_id is not None]
            await store.audit.record(
                WORKER_ACTOR,
                "filing-filed" if outcome.status is FilingStatus.FILED else "filing-failed",
                mailbox=claimed.address,
                request=f"filing={claimed.id} part={claimed.part} by={claimed.actor_kind}",
                result=" ".join(filter(None, [outcome.reason, *filed])),
                tx=tx,
            )
    return True


async def release_dead_leases(
    store: Store, host: str, alive: Callable[[int], bool], now: datetime
) -> int:
    """Free the leases held by workers of this host (``<host>:<pid>:<nonce>``) whose process is
    gone, so that a restarted pli resumes at once instead of waiting for them to run out. A
    live process (or a reused pid) keeps its lease: only a dead holder is overruled."""
    async with store.transaction() as tx:
        holders = list(
            await tx.conn.scalars(
                select(FilingRequestRow.locked_by)
                .where(
                    FilingRequestRow.state == FilingStatus.PENDING.value,
                    FilingRequestRow.locked_until > now,
                    FilingRequestRow.locked_by.like(f"{_like_escape(host)}:%", escape="\\"),
                )
                .distinct()
            )
        )
        dead = []
        for holder in holders:
            pid = _pid_of(holder or "")
            if pid is not None and not alive(pid):
                dead.append(holder)
        if not dead:
            return 0
        result = await tx.conn.execute(
            update(FilingRequestRow)
            .where(FilingRequestRow.locked_by.in_(dead))
            .values(locked_until=None, locked_by=None)
        )
    return result.rowcount or 0


def _pid_of(holder: str) -> int | None:
    parts = holder.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def next_due(store: Store) -> datetime | None:
    """When the earliest pending request can be claimed: its next attempt's time, or the end
    of the lease a worker holds on it (None: nothing pending). A request in flight is not
    "due now": waiting on it would spin."""
    claimable = case(
        (
            and_(
                FilingRequestRow.locked_until.is_not(None),
                FilingRequestRow.locked_until > FilingRequestRow.next_attempt_at,
            ),
            FilingRequestRow.locked_until,
        ),
        else_=FilingRequestRow.next_attempt_at,
    )
    async with store.db.read() as conn:
        found: datetime | None = await conn.scalar(
            select(type_coerce(func.min(claimable), UtcDateTime)).where(
                FilingRequestRow.state == FilingStatus.PENDING.value
            )
        )
    return found
