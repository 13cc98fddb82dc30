"""Local delivery into the store, shared by the inbound MTA, submission and DSNs, with group
commit.

A delivery is one message to one or more local mailboxes, with what it changes (the policy's
conversation effects) and its audit records, all in one transaction: the message is in every
mailbox and the exchange updated, or nothing is. "250 means committed" (architecture.md § Store).

**Group commit.** An fsync per message caps throughput (bench/smtp.py). Deliveries arriving
together are batched: each message's file is written as it arrives (``Messages.prepare``), then
one writer takes up to ``group_commit_size`` deliveries (or whatever arrived within
``group_commit_window``), makes their files durable in one worker thread (``Messages.settle``),
opens one transaction for them all and commits once; every waiter is answered after that
COMMIT. If the shared transaction fails, each delivery of the batch is retried alone, so that
one bad delivery never fails the others.

What this module must not do: decide (the policy did, the caller passes its decisions), or speak
SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from pli.mailbox.mime.cache import MessageCache
from pli.mailbox.policyfacts import PolicyFacts, changes
from pli.mailbox.store import Delivered, DeliveryTarget, Store, Transaction
from pli.mailbox.store.audit import AuditEntry
from pli.mailbox.store.conversations import ConversationChange
from pli.mailbox.store.messages import NewMessage, PreparedMessage
from pli.policy.explain import audit_fields
from pli.policy.facts import Facts
from pli.policy.reasons import Decision

from .smtp.trace import with_return_path

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LocalCopy:
    """One local recipient: its account, and the policy's facts and decision (None for what
    the policy does not judge, e.g. a delivery report to a professional)."""

    account_id: int
    address: str
    facts: Facts | None = None
    decision: Decision | None = None
    folder: str = "INBOX"


@dataclass
class DeliveryJob:
    """One message for local mailboxes. ``sender`` is the envelope's reverse-path ("" for the
    null one): the copies carry it as their ``Return-Path:`` (``stored``, RFC 5321 §4.4: this is
    the final delivery, the one place every way in goes through)."""

    raw: bytes
    copies: Sequence[LocalCopy]
    actor: str  # who delivers, for the audit: the peer's DN, the principal, "dsn"
    action: str  # audit action: "smtp-receive", "submit", "dsn"
    sender: str
    request: str = ""  # audit request summary (envelope, never content)
    acting_for: str | None = None
    #: Work to commit in the same transaction (queueing the remote recipients, a report).
    also: Callable[[Transaction], Awaitable[None]] | None = None
    prepared: PreparedMessage | None = None
    #: ``Messages.parse`` of :attr:`stored`, when the caller made it (to read the message's
    #: traits from the same parse).
    parsed: MessageCache | None = None
    done: asyncio.Future[list[Delivered]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: The bytes filed into the mailboxes: ``raw`` with the Return-Path field first.
    stored: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.stored = with_return_path(self.raw, self.sender)


class LocalDelivery:
    """Deliveries into the store, batched (see the module docstring). Start with
    :meth:`start`, end with :meth:`close` (waits for the deliveries in progress)."""

    def __init__(
        self, store: Store, facts: PolicyFacts, *, window: float = 0.002, batch_size: int = 64
    ) -> None:
        self.store = store
        self.facts = facts
        self.window = window
        self.batch_size = batch_size
        self._queue: asyncio.Queue[DeliveryJob] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="local-delivery")

    async def close(self) -> None:
        if self._task is None:
            return
        await self._queue.join()  # deliver what was accepted already
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def deliver(self, job: DeliveryJob) -> list[Delivered]:
        """Deliver ``job``; returns after COMMIT (raises if the delivery failed)."""
        if self._task is None:  # not started (tools, tests): one transaction of its own
            job.prepared = await self.store.messages.prepare(job.stored, job.parsed)
            plan = _plan([job])
            async with self.store.transaction() as tx:
                return (await self._write(plan, tx))[0]
        job.prepared = await self.store.messages.prepare(job.stored, job.parsed)
        job.done.add_done_callback(_retrieve)
        await self._queue.put(job)
        # The job is committed or failed by the writer even if this waiter is cancelled
        # (the client went away): shield the future from the cancellation.
        return await asyncio.shield(job.done)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.window > 0 and self._queue.qsize() < self.batch_size - 1:
                # One timer for the batch (a wait_for per message made a task and a timer each).
                await asyncio.sleep(self.window)
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[DeliveryJob], *, alone: bool = False) -> None:
        try:
            await self._settle(batch)  # outside the write lock, as the plan
            plan = _plan(batch)
            async with self.store.transaction(quick=True) as tx:
                results = await self._write(plan, tx)
        except Exception as error:
            if alone:
                _fail(batch[0], error)
                return
            log.warning("group-commit-failed", size=len(batch), error=type(error).__name__)
            for job in batch:  # one by one: a bad delivery fails alone
                job.prepared = None  # the failed transaction discarded the files it held
                await self._commit([job], alone=True)
            return
        for job, delivered in zip(batch, results, strict=True):
            if not job.done.done():
                job.done.set_result(delivered)

    async def _settle(self, batch: Sequence[DeliveryJob]) -> None:
        """Make the batch's files durable at once (``Messages.settle``)."""
        pending = [(job, job.prepared) for job in batch if job.prepared is not None]
        settled = await self.store.messages.settle([prepared for _, prepared in pending])
        for (job, _), prepared in zip(pending, settled, strict=True):
            job.prepared = prepared

    async def _write(self, plan: _Plan, tx: Transaction) -> list[list[Delivered]]:
        """Every job of a batch in ``tx``, in a number of statements that does not grow with
        the batch: the rows of all messages (``deliver_many``), the conversation effects of all
        (``record_many``, in order), each job's extra work, the audit records (one lock of the
        chain)."""
        delivered = await self.store.messages.deliver_many(plan.messages, tx=tx)
        await self.store.conversations.record_many(plan.effects, tx=tx)  # in the batch's order
        for also in plan.also:
            await also(tx)
        await self.store.audit.record_many(plan.entries, tx=tx)
        return delivered


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a batch writes, computed before its transaction (whose lock the other writers
    wait for): the messages, the conversation changes and audit records in order, the jobs'
    extra work."""

    messages: list[NewMessage]
    effects: list[ConversationChange]
    entries: list[AuditEntry]
    also: list[Callable[[Transaction], Awaitable[None]]]


def _plan(batch: Sequence[DeliveryJob]) -> _Plan:
    messages = [
        NewMessage(
            job.stored,
            [DeliveryTarget(copy.account_id, copy.folder) for copy in job.copies],
            prepared=job.prepared,
        )
        for job in batch
    ]
    entries: list[AuditEntry] = []
    effects: list[ConversationChange] = []
    for job in batch:
        for copy in job.copies:
            if copy.facts is not None and copy.decision is not None:
                effects += changes(copy.facts, copy.decision)
                result = " ".join(
                    f"{k}={v}" for k, v in audit_fields(copy.facts, copy.decision).items() if v
                )
            else:
                result = "delivered"
            entries.append(
                AuditEntry(
                    job.actor,
                    job.action,
                    mailbox=copy.address,
                    acting_for=job.acting_for,
                    request=job.request,
                    result=result,
                )
            )
    also = [job.also for job in batch if job.also is not None]
    return _Plan(messages, effects, entries, also)


def _fail(job: DeliveryJob, error: Exception) -> None:
    log.error("local-delivery-failed", error=type(error).__name__, detail=str(error)[:200])
    if not job.done.done():
        job.done.set_exception(error)


def _retrieve(future: asyncio.Future[list[Delivered]]) -> None:
    """Mark the outcome as seen: a waiter that went away must not leave an "exception never
    retrieved" behind."""
    if not future.cancelled():
        future.exception()
