"""The notifier: tells citizens (and their guardians) by e-mail that new mail is waiting.

One pass (:meth:`Notifier.run_once`) does three things, each in its own transactions:

1. **Look** at message rows added to citizens' INBOXes since the watermark. A message counts once
   per INBOX (``notify_folders.seen_uid``: UIDs grow in commit order within a folder), and marks
   its recipients pending: the citizen when a notification address is registered, and with
   ``notifications.guardians`` each guardian with one (policy P9: parents read a child's mail).
2. **Decide**: a pending recipient whose last e-mail is older than ``notifications.interval``
   gets one outbox row, and the throttle clock restarts (``last_sent_at``). Mail arriving within
   the interval is announced by the next e-mail, once the interval has passed.
3. **Send** due outbox rows through the relay, claimed with a lease so that two processes never
   send the same row; a temporary failure is retried with backoff, a permanent one is recorded.

Durability: each decision commits before the e-mail is sent, so a crash never loses one (it is
sent after restart); the dev outbox names its file after the outbox row, so a resend replaces the
same file. Through an SMTP relay, a crash between the relay's acceptance and the commit of
``sent_at`` sends that one e-mail twice: nothing else can be repeated.

Ids and commit order: on SQLite, row ids are allocated in commit order (one writer). On
PostgreSQL a transaction may commit after one holding a higher id, so the watermark trails the
newest id seen by :data:`SETTLE_POSTGRESQL` seconds and rows past it are looked at again (counted
once thanks to ``seen_uid``).

The text is fixed (:mod:`.texts`): no health data, no sender. This module reads the index only,
never a message file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Row, Select, bindparam, func, insert, select, update

from pli.config.schema import Settings
from pli.mailbox.filing.wake import DeliveryWatch, is_filing_hint, watch_deliveries
from pli.mailbox.store import Store, Transaction
from pli.mailbox.store.models import AccountRow, FolderRow, GuardianshipRow, MessageRow

from .relay import OutgoingMail, Relay, RelayError, outbox_key, relay_from_settings
from .tables import (
    ERROR_LENGTH,
    NotifyFolderRow,
    NotifyOutboxRow,
    NotifyRecipientRow,
    NotifyWatermarkRow,
)
from .texts import notification_mail

log = structlog.get_logger(__name__)

#: Message rows looked at per transaction.
SCAN_BATCH = 1000
#: Recipients decided, and outbox rows claimed, per transaction.
SEND_BATCH = 100
#: E-mails handed to the relay at once (a relay's round trips, the dev outbox's fsyncs).
SEND_CONCURRENCY = 10
#: How long a claimed outbox row stays reserved for the process sending it (seconds); another
#: process retries it after that (the first one died).
SEND_LEASE = 300.0
#: Delays between attempts to hand one e-mail to the relay (seconds); the last one repeats.
RETRY_SCHEDULE = (60.0, 300.0, 900.0, 3600.0)
#: Attempts before an e-mail is given up (about a day with the schedule above).
MAX_ATTEMPTS = 24
#: Passes start at least this far apart (seconds): new mail is announced within that much more.
PASS_SPACING = 0.5
#: PostgreSQL: how long a row id may wait for its transaction to commit before the watermark
#: passes it (pli's transactions last milliseconds).
SETTLE_POSTGRESQL = 10.0
_WATERMARK_ID = 1
_CITIZEN = "CIT"
_INBOX = "INBOX"


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did: messages newly counted, e-mails decided, sent, failed."""

    new_messages: int = 0
    decided: int = 0
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    interval: float
    guardians: bool
    sender: str
    webmail_url: str
    domain: str
    poll_interval: float

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifierConfig:
        section = settings.notifications
        return cls(
            interval=section.interval,
            guardians=section.guardians,
            sender=section.sender,
            webmail_url=settings.webmail.public_url,
            domain=settings.server.hostname,
            poll_interval=section.poll_interval,
        )


def _now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """A background service (``start``/``addresses``/``stop``) and its one pass."""

    name = "notifier"

    def __init__(
        self,
        store: Store,
        config: NotifierConfig,
        relay: Relay,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.config = config
        self.relay = relay
        self._clock = clock
        self._settle = SETTLE_POSTGRESQL if store.db.is_postgresql else 0.0
        self._scans: deque[tuple[float, int]] = deque()  # (monotonic time, highest id seen)
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._watch: DeliveryWatch | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._progress = asyncio.Condition()
        self.passes = 0
        self.last_report = PassReport()

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> Notifier:
        return cls(store, NotifierConfig.from_settings(settings), relay_from_settings(settings))

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """Notifications are on and this process serves citizens."""
        return settings.notifications.enabled and settings.domains.citizen_enabled

    # -- service life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._watch = watch_deliveries(self.store.feed)
        self._task = asyncio.create_task(self._run(), name="notifier")
        self._listener = asyncio.create_task(self._listen(self._watch), name="notifier-watch")
        log.info("notifier-started", relay=self.relay.describe())

    async def _listen(self, watch: DeliveryWatch) -> None:
        """New messages anywhere (this process, or others through PostgreSQL NOTIFY) wake the
        notifier at once; the poll catches what a lost event would miss."""
        async for event in watch:
            if not is_filing_hint(event):
                self._wake.set()

    def addresses(self) -> list[tuple[str, int]]:
        return []

    def wake(self) -> None:
        """Run a pass now (new mail was committed in this process)."""
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """The loop ends after its pass, within ``grace``, else it is cut: a pass cancelled in
        the middle of a store transaction could leave SQLite's write lock held by a connection
        nobody closes, and the deliveries the grace lets finish would wait for it (the queue
        runner stops the same way)."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=max(grace, 0.0))
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:  # only waits on the change feed: no transaction
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self._task = self._listener = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: mail committed during it wakes the next one
            started = time.monotonic()
            try:
                report = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is down: try again next time
                log.warning("notifier-pass-failed", error=type(error).__name__)
            else:
                async with self._progress:
                    self.passes += 1
                    self.last_report = report
                    self._progress.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
            # Under a stream of deliveries every commit wakes the notifier: one pass per
            # PASS_SPACING does the same work (a pass counts all new rows) in fewer transactions.
            spacing = PASS_SPACING - (time.monotonic() - started)
            if spacing > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), spacing)

    async def wait_pass(self) -> PassReport:
        """The report of the next pass the service completes (tests)."""
        async with self._progress:
            await self._progress.wait()
            return self.last_report

    # -- one pass ----------------------------------------------------------------------------

    async def run_once(self) -> PassReport:
        new = await self.scan()
        decided = await self.decide()
        sent, failed = await self.send_due()
        return PassReport(new, decided, sent, failed)

    async def scan(self) -> int:
        """Count new INBOX messages of citizens; returns how many were new."""
        counted = 0
        watermark = await self._read_watermark()
        if watermark is None:
            async with self.store.transaction(quick=True) as tx:
                watermark = await self._watermark(tx)
        if watermark is None:  # first pass ever: announce mail from now on, not the past
            return 0
        cursor = watermark
        highest_seen = watermark
        while True:
            async with self.store.transaction(quick=True) as tx:
                await self._watermark(tx)  # serialises scanners of several processes
                rows = (
                    await tx.conn.execute(
                        select(
                            MessageRow.id,
                            MessageRow.folder_id,
                            MessageRow.uid,
                            FolderRow.account_id,
                        )
                        .join(FolderRow, FolderRow.id == MessageRow.folder_id)
                        .join(AccountRow, AccountRow.id == FolderRow.account_id)
                        .where(
                            MessageRow.id > cursor,
                            FolderRow.name == _INBOX,
                            AccountRow.kind == _CITIZEN,
                        )
                        .order_by(MessageRow.id)
                        .limit(SCAN_BATCH)
                    )
                ).all()
                if not rows:
                    break
                cursor = rows[-1].id
                highest_seen = max(highest_seen, cursor)
                counted += await self._count(tx, rows)
            if len(rows) < SCAN_BATCH:
                break
        highest_seen = max(highest_seen, await self._highest_id())
        await self._advance(highest_seen)
        return counted

    async def _watermark(self, tx: Transaction) -> int | None:
        """The watermark row, locked; created at the current highest id (→ None) if missing."""
        row = (
            await tx.conn.execute(
                select(NotifyWatermarkRow)
                .where(NotifyWatermarkRow.id == _WATERMARK_ID)
                .with_for_update()
            )
        ).first()
        if row is not None:
            return int(row.last_message_id)
        highest = await tx.conn.scalar(select(func.max(MessageRow.id)))
        await tx.conn.execute(
            insert(NotifyWatermarkRow).values(id=_WATERMARK_ID, last_message_id=highest or 0)
        )
        return None

    async def _read_watermark(self) -> int | None:
        """The watermark without locking it (None when missing): most passes need no more."""
        async with self.store.db.read(quick=True) as conn:
            found = await conn.scalar(
                select(NotifyWatermarkRow.last_message_id).where(
                    NotifyWatermarkRow.id == _WATERMARK_ID
                )
            )
        return int(found) if found is not None else None

    async def _any(self, query: Select[*tuple[Any, ...]]) -> bool:
        """Whether ``query`` finds a row, in a read transaction: a pass with nothing to decide
        or send takes no write lock (SQLite's single writer is the deliveries' too)."""
        async with self.store.db.read(quick=True) as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def _highest_id(self) -> int:
        async with self.store.db.read(quick=True) as conn:
            return int(await conn.scalar(select(func.max(MessageRow.id))) or 0)

    async def _advance(self, highest_seen: int) -> None:
        """Move the watermark to the highest id seen at least ``settle`` seconds ago."""
        now = time.monotonic()
        self._scans.append((now, highest_seen))
        settled = None
        while self._scans and now - self._scans[0][0] >= self._settle:
            settled = self._scans.popleft()[1]
        if settled is None:
            return
        async with self.store.transaction(quick=True) as tx:
            await tx.conn.execute(
                update(NotifyWatermarkRow)
                .where(
                    NotifyWatermarkRow.id == _WATERMARK_ID,
                    NotifyWatermarkRow.last_message_id < settled,
                )
                .values(last_message_id=settled)
            )

    async def _count(self, tx: Transaction, rows: Sequence[Row[int, int, int, int]]) -> int:
        """Count the rows not counted before (UID above the folder's ``seen_uid``) and mark
        their recipients pending; returns how many were new."""
        folders = {row.folder_id for row in rows}
        seen = {
            row.folder_id: row.seen_uid
            for row in (
                await tx.conn.execute(
                    select(NotifyFolderRow).where(NotifyFolderRow.folder_id.in_(folders))
                )
            ).all()
        }
        new = [row for row in rows if row.uid > seen.get(row.folder_id, 0)]
        highest: dict[int, int] = {}
        for row in new:
            highest[row.folder_id] = max(highest.get(row.folder_id, 0), row.uid)
        updates = [{"key": f, "uid": u} for f, u in highest.items() if f in seen]
        inserts = [{"folder_id": f, "seen_uid": u} for f, u in highest.items() if f not in seen]
        if updates:  # one statement for many rows (executemany)
            await tx.conn.execute(
                update(NotifyFolderRow)
                .where(NotifyFolderRow.folder_id == bindparam("key"))
                .values(seen_uid=bindparam("uid")),
                updates,
            )
        if inserts:
            await tx.conn.execute(insert(NotifyFolderRow), inserts)
        if new:
            mailboxes = {row.account_id for row in new}
            await self._mark_pending(tx, await self._recipients(tx, mailboxes))
        return len(new)

    async def _recipients(self, tx: Transaction, mailboxes: set[int]) -> set[str]:
        """The notification addresses told of new mail in these citizen mailboxes (a family
        sharing one address gets one e-mail)."""
        candidates = set(mailboxes)
        if self.config.guardians:
            guardians = await tx.conn.execute(
                select(GuardianshipRow.guardian_id).where(GuardianshipRow.ward_id.in_(mailboxes))
            )
            candidates |= {row.guardian_id for row in guardians}
        addresses = await tx.conn.execute(
            select(AccountRow.notification_address).where(
                AccountRow.id.in_(candidates),
                AccountRow.notification_address.is_not(None),
                AccountRow.disabled.is_(False),
            )
        )
        return {row.notification_address for row in addresses if row.notification_address}

    async def _mark_pending(self, tx: Transaction, addresses: set[str]) -> None:
        if not addresses:
            return
        now = self._clock()
        known = set(
            (
                await tx.conn.scalars(
                    select(NotifyRecipientRow.address).where(
                        NotifyRecipientRow.address.in_(addresses)
                    )
                )
            ).all()
        )
        if known:
            await tx.conn.execute(
                update(NotifyRecipientRow)
                .where(
                    NotifyRecipientRow.address.in_(known),
                    NotifyRecipientRow.pending_since.is_(None),
                )
                .values(pending_since=now)
            )
        fresh = sorted(addresses - known)
        if fresh:
            await tx.conn.execute(
                insert(NotifyRecipientRow),
                [{"address": address, "pending_since": now} for address in fresh],
            )

    async def decide(self) -> int:
        """Outbox rows for pending addresses whose throttle interval has passed."""
        now = self._clock()
        cutoff = now - timedelta(seconds=self.config.interval)
        decided = 0
        due = select(NotifyRecipientRow.address).where(
            NotifyRecipientRow.pending_since.is_not(None),
            (NotifyRecipientRow.last_sent_at.is_(None))
            | (NotifyRecipientRow.last_sent_at <= cutoff),
        )
        if not await self._any(due):
            return 0
        while True:
            async with self.store.transaction(quick=True) as tx:
                addresses = (
                    await tx.conn.scalars(
                        due.order_by(NotifyRecipientRow.address).limit(SEND_BATCH).with_for_update()
                    )
                ).all()
                if addresses:
                    await tx.conn.execute(
                        update(NotifyRecipientRow)
                        .where(NotifyRecipientRow.address.in_(addresses))
                        .values(pending_since=None, last_sent_at=now)
                    )
                    await tx.conn.execute(
                        insert(NotifyOutboxRow),
                        [
                            {
                                "address": address,
                                "created_at": now,
                                "next_attempt_at": now,
                                "attempts": 0,
                                "last_error": "",
                            }
                            for address in addresses
                        ],
                    )
                decided += len(addresses)
            if len(addresses) < SEND_BATCH:
                return decided

    async def send_due(self) -> tuple[int, int]:
        """Hand due outbox rows to the relay, :data:`SEND_CONCURRENCY` at once; returns (sent,
        given up). Each e-mail's outcome commits on its own: a crash repeats none."""
        sent = failed = 0
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(outbox_id: int, address: str) -> str:
            async with gate:
                return await self._send(outbox_id, address)

        while True:
            claimed = await self._claim()
            outcomes = await asyncio.gather(*(one(*item) for item in claimed))
            sent += outcomes.count("sent")
            failed += outcomes.count("failed")
            if len(claimed) < SEND_BATCH:
                return sent, failed

    async def _claim(self) -> list[tuple[int, str]]:
        now = self._clock()
        due = select(NotifyOutboxRow.id, NotifyOutboxRow.address).where(
            NotifyOutboxRow.sent_at.is_(None),
            NotifyOutboxRow.failed_at.is_(None),
            NotifyOutboxRow.next_attempt_at <= now,
            (NotifyOutboxRow.locked_until.is_(None)) | (NotifyOutboxRow.locked_until < now),
        )
        if not await self._any(due):
            return []
        async with self.store.transaction(quick=True) as tx:
            query = (
                due.order_by(NotifyOutboxRow.id).limit(SEND_BATCH).with_for_update(skip_locked=True)
            )
            rows = (await tx.conn.execute(query)).all()
            if rows:
                await tx.conn.execute(
                    update(NotifyOutboxRow)
                    .where(NotifyOutboxRow.id.in_([row.id for row in rows]))
                    .values(locked_until=now + timedelta(seconds=SEND_LEASE))
                )
        return [(row.id, row.address) for row in rows]

    async def _send(self, outbox_id: int, address: str) -> str:
        raw = notification_mail(
            self.config.sender, address, url=self.config.webmail_url, domain=self.config.domain
        )
        mail = OutgoingMail(outbox_key("notification", outbox_id), self.config.sender, address, raw)
        try:
            await self.relay.send(mail)
        except RelayError as error:
            return await self._failed_attempt(outbox_id, error)
        async with self.store.transaction(quick=True) as tx:
            await tx.conn.execute(
                update(NotifyOutboxRow)
                .where(NotifyOutboxRow.id == outbox_id)
                .values(sent_at=self._clock(), locked_until=None)
            )
        log.info("notification-sent", outbox=outbox_id)
        return "sent"

    async def _failed_attempt(self, outbox_id: int, error: RelayError) -> str:
        now = self._clock()
        async with self.store.transaction(quick=True) as tx:
            attempts = (
                int(
                    await tx.conn.scalar(
                        select(NotifyOutboxRow.attempts).where(NotifyOutboxRow.id == outbox_id)
                    )
                    or 0
                )
                + 1
            )
            give_up = not error.temporary or attempts >= MAX_ATTEMPTS
            delay = RETRY_SCHEDULE[min(attempts - 1, len(RETRY_SCHEDULE) - 1)]
            await tx.conn.execute(
                update(NotifyOutboxRow)
                .where(NotifyOutboxRow.id == outbox_id)
                .values(
                    attempts=attempts,
                    locked_until=None,
                    next_attempt_at=now + timedelta(seconds=delay),
                    failed_at=now if give_up else None,
                    last_error=str(error)[:ERROR_LENGTH],
                )
            )
        log.warning(
            "notification-not-sent",
            outbox=outbox_id,
            attempts=attempts,
            temporary=error.temporary,
            error=str(error),
        )
        return "failed" if give_up else "retry"


async def pending_outbox(store: Store) -> int:
    """E-mails decided and not yet sent nor given up (for health and tests)."""
    async with store.db.read() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(NotifyOutboxRow)
                .where(NotifyOutboxRow.sent_at.is_(None), NotifyOutboxRow.failed_at.is_(None))
            )
            or 0
        )
