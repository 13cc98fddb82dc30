"""Automatic rules applied to messages delivered to citizens, without touching the delivery
code: a durable mark per citizen INBOX.

Each citizen INBOX has a mark, the next UID the rules have not examined (``filing_marks``).
Examining a folder reads the messages from its mark on (a batch at a time), applies the rules
(``rules.py``), and in one transaction moves the mark past them and enqueues the filings they
found: a crash before COMMIT examines them again, after it never (and enqueueing twice is
harmless anyway, the outbox's key is unique).

Why a mark per folder rather than one message-id watermark: message row ids are not allocated
in commit order on PostgreSQL (a delivery that commits late has a smaller id than one already
seen) and SQLite reuses the highest id after it is deleted; a folder's UIDs grow strictly in
commit order (the store allocates them under the folder row's lock) and are never reused, so a
mark misses nothing. Several workers may examine one folder at once: the mark moves by
compare-and-set, the loser rolls back and reads again.

What is examined when: a folder named by a change-feed ``added`` event at once
(:meth:`RuleScanner.scan_folder`); every citizen INBOX whose UIDNEXT passed its mark every
``filing.scan_interval`` (:meth:`RuleScanner.scan_all`: events may be missed). Rules apply to
messages delivered after they first ran (``filing_scan_state``): a folder that existed then
starts at its UIDNEXT of that moment, a newer one at UID 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import case, select, update

from pli.config.schema import FilingRule
from pli.mailbox.store import Store, Transaction
from pli.mailbox.store.models import AccountRow, FolderRow, MessageRow
from pli.mailbox.store.records import AccountKind

from .limits import NON_CITIZEN_FOLDER_CACHE, SCAN_BATCH
from .models import FilingMarkRow, FilingScanStateRow
from .outbox import (
    AUTOMATIC_RULE,
    KIND_ATTACHMENT,
    KIND_XDM,
    NewFiling,
    dialect_insert,
    enqueue,
    insert_ignoring_conflicts,
    utc_now,
)
from .rules import matching_parts

log = structlog.get_logger(__name__)

INBOX = "INBOX"
_STATE_ROW = 1


class _MarkMoved(Exception):
    """Another worker examined these messages first."""


class RuleScanner:
    def __init__(
        self,
        store: Store,
        rules: Sequence[FilingRule],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.rules = [rule for rule in rules if rule.enabled]
        self.clock = clock
        self._since: datetime | None = None
        self._not_citizen: set[int] = set()

    async def since(self) -> datetime:
        """When the rules first ran. The first worker to run them records it, and in the same
        transaction marks every citizen INBOX at its UIDNEXT: what was delivered before is not
        filed retroactively, what is delivered after is."""
        if self._since is None:
            async with self.store.transaction() as tx:
                now = self.clock()
                added = await tx.conn.execute(
                    insert_ignoring_conflicts(
                        tx.conn, FilingScanStateRow, [{"id": _STATE_ROW, "started_at": now}]
                    )
                )
                if added.rowcount:
                    await self._add_marks(tx, now)
                self._since = await tx.conn.scalar(
                    select(FilingScanStateRow.started_at).where(FilingScanStateRow.id == _STATE_ROW)
                )
            assert self._since is not None
            log.info(
                "filing-rules-running", since=self._since.isoformat(), first=bool(added.rowcount)
            )
        assert self._since is not None
        return self._since

    async def add_marks(self, folder_id: int | None = None) -> int:
        """Give a mark to every citizen INBOX without one (or to ``folder_id`` only): UID 1 for
        a folder created since the rules first ran, its UIDNEXT for an older one."""
        since = await self.since()
        async with self.store.transaction() as tx:
            return await self._add_marks(tx, since, folder_id)

    @staticmethod
    async def _add_marks(tx: Transaction, since: datetime, folder_id: int | None = None) -> int:
        unmarked = (
            select(FolderRow.id, case((FolderRow.created_at >= since, 1), else_=FolderRow.uidnext))
            .join(AccountRow, AccountRow.id == FolderRow.account_id)
            .outerjoin(FilingMarkRow, FilingMarkRow.folder_id == FolderRow.id)
            .where(
                AccountRow.kind == AccountKind.CITIZEN.value,
                FolderRow.name == INBOX,
                FilingMarkRow.folder_id.is_(None),
            )
        )
        if folder_id is not None:
            unmarked = unmarked.where(FolderRow.id == folder_id)
        statement = (
            dialect_insert(tx.conn)(FilingMarkRow)
            .from_select(["folder_id", "next_uid"], unmarked)
            .on_conflict_do_nothing()
        )
        return (await tx.conn.execute(statement)).rowcount or 0

    async def scan_all(self) -> int:
        """Examine every citizen INBOX with messages past its mark; returns filings enqueued."""
        if not self.rules:
            return 0
        await self.add_marks()
        async with self.store.db.read() as conn:
            folders = list(
                await conn.scalars(
                    select(FilingMarkRow.folder_id)
                    .join(FolderRow, FolderRow.id == FilingMarkRow.folder_id)
                    .where(FolderRow.uidnext > FilingMarkRow.next_uid)
                    .order_by(FilingMarkRow.folder_id)
                )
            )
        enqueued = 0
        for folder_id in folders:
            enqueued += await self.scan_folder(folder_id)
        return enqueued

    async def scan_folder(self, folder_id: int) -> int:
        """Examine one folder's messages past its mark, if it is a citizen INBOX."""
        if not self.rules or folder_id in self._not_citizen:
            return 0
        target = await self._target(folder_id)
        if target is None:
            return 0
        account_id, ins, mark = target
        enqueued = 0
        while True:
            rows = await self._messages(folder_id, mark)
            if not rows:
                return enqueued
            filings = [
                NewFiling(
                    account_id=account_id,
                    ins=ins,
                    message_id=row.message_id,
                    blob_id=row.blob_id,
                    part=match.part,
                    kind=KIND_XDM if match.xdm else KIND_ATTACHMENT,
                    actor_kind=AUTOMATIC_RULE,
                    actor_id=match.rule,
                )
                for row in rows
                for match in matching_parts(
                    self.rules, json.loads(row.envelope), json.loads(row.structure)
                )
            ]
            following = rows[-1].uid + 1
            try:
                async with self.store.transaction() as tx:
                    moved = await tx.conn.execute(
                        update(FilingMarkRow)
                        .where(FilingMarkRow.folder_id == folder_id, FilingMarkRow.next_uid == mark)
                        .values(next_uid=following)
                    )
                    if not moved.rowcount:
                        raise _MarkMoved
                    enqueued += await enqueue(tx, filings, self.clock())
            except _MarkMoved:
                target = await self._target(folder_id)
                if target is None:
                    return enqueued
                mark = target[2]
                continue
            if filings:
                log.info("filing-rules-matched", folder=folder_id, filings=len(filings))
            mark = following
            if len(rows) < SCAN_BATCH:
                return enqueued

    async def _target(self, folder_id: int) -> tuple[int, str, int] | None:
        """(account id, INS, mark) of a citizen INBOX (its mark created if missing), else
        None (remembered)."""
        for _ in range(2):
            async with self.store.db.read() as conn:
                row = (
                    await conn.execute(
                        select(
                            AccountRow.id,
                            AccountRow.ins,
                            AccountRow.kind,
                            FolderRow.name,
                            FilingMarkRow.next_uid,
                        )
                        .join(AccountRow, AccountRow.id == FolderRow.account_id)
                        .outerjoin(FilingMarkRow, FilingMarkRow.folder_id == FolderRow.id)
                        .where(FolderRow.id == folder_id)
                    )
                ).first()
            if row is None:
                return None  # deleted
            if row.kind != AccountKind.CITIZEN.value or row.name != INBOX or not row.ins:
                if len(self._not_citizen) >= NON_CITIZEN_FOLDER_CACHE:
                    self._not_citizen.clear()
                self._not_citizen.add(folder_id)
                return None
            if row.next_uid is not None:
                return row.id, row.ins, int(row.next_uid)
            await self.add_marks(folder_id)
        return None

    async def _messages(self, folder_id: int, mark: int) -> list[Any]:
        async with self.store.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(
                            MessageRow.uid,
                            MessageRow.message_id,
                            MessageRow.blob_id,
                            MessageRow.envelope,
                            MessageRow.structure,
                        )
                        .where(MessageRow.folder_id == folder_id, MessageRow.uid >= mark)
                        .order_by(MessageRow.uid)
                        .limit(SCAN_BATCH)
                    )
                ).all()
            )
