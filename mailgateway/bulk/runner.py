"""Sending a campaign: every row through the one submission pipeline, exactly once, throttled.

:func:`register_campaign` writes the campaign and its rows into the ledger (each row's
Message-ID chosen there; lines the CSV check refused are ``invalid`` at once). Registering the
same content again is a no-op, so ``pli bulk send`` run twice continues the first run.

:class:`CampaignRunner` then, while it holds the campaign's claim:

1. takes the claim (:meth:`Ledger.claim`) and keeps it renewed in the background every third
   of ``bulk.lease``; it stops submitting the moment a renewal fails;
2. settles what a crashed run left ``submitting`` (:meth:`Ledger.recover`);
3. takes due ``pending`` rows by ``bulk.batch_size``, marks them ``submitting`` **and commits
   that** before any of them reaches the pipeline; then composes and submits each (at most
   ``bulk.concurrency`` at once, each after a token of the :class:`TokenBucket`:
   ``bulk.rate`` per second, ``bulk.burst`` at once), and records the batch's outcomes in one
   transaction:

   - accepted: ``submitted`` (``delivered`` when the recipient is ours: the pipeline delivered
     it in its transaction; a message queued for another operator waits for the queue's
     outcome, ``record_queue_outcomes``);
   - refused for good (policy, a row problem, the message as a whole): ``refused`` with the
     reason and the French text;
   - refused for now (451, facts unavailable): ``pending`` again after
     ``limits.DEFERRAL_DELAYS`` (then ``refused``);
   - the pipeline raised (the store failed): unknown, so looked up like a crash
     (:meth:`Ledger.settle_failed`): found committed, ``submitted``; else tried again later.

**Exactly once.** A row reaches the pipeline only while ``submitting`` is committed, and leaves
``submitting`` only with its outcome, or through the look-up of its Message-ID (the pipeline
commits the message and its Message-ID in one transaction). A ``kill -9`` at any point leaves
each row pending (never handed over: sent by the next run), submitted, or submitting (looked
up: found is never sent again, not found was never committed). The claim keeps two runners off
one campaign; it assumes a live runner renews within ``bulk.lease`` (a process frozen longer
than that on another host could be overtaken; on the same host a dead owner is detected at
once).

What this module must not do: speak SMTP or deliver by another path than the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

import structlog

from pli.mailbox.auth.service import Principal
from pli.mailbox.submit import SubmissionRefused

from ..submission import EnvelopeRecipient
from .campaign import Campaign, RowProblem
from .check import BulkContext, bulk_principal, sender_of
from .compose import Composer, citizen_address
from .ledger import (
    CANCELLED,
    DELIVERED,
    FINISHED,
    INVALID,
    PENDING,
    READY,
    REFUSED,
    SUBMITTED,
    CampaignRecord,
    Ledger,
    NewRow,
    RowOutcome,
    RowRef,
    process_owner,
)
from .limits import DEFERRAL_DELAYS

log = structlog.get_logger(__name__)

#: A row the ledger holds that the campaign's file no longer has (cannot happen with the same
#: content hash; kept as a refusal rather than a crash).
ROW_MISSING = "row-missing"
#: The French text of a deferral given up.
DEFERRED_TOO_LONG = "refusé après plusieurs tentatives : "


class CampaignBusy(Exception):
    """Another live process runs this campaign (``owner`` names it)."""

    def __init__(self, campaign_id: str, owner: str | None) -> None:
        super().__init__(f"la campagne {campaign_id} est en cours d'envoi par {owner}")
        self.text = str(self)
        self.owner = owner


#: Rounding allowance of the bucket's float arithmetic (a wait computed to the token must get it).
TOKEN_EPSILON = 1e-9


class TokenBucket:
    """At most ``rate`` tokens per second on average and ``burst`` at once (the classic token
    bucket: tokens accrue continuously up to ``burst``; each message takes one). ``clock`` and
    ``sleep`` are injectable (tests use a fake clock)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(burst)
        self.updated = clock()
        self.taken = 0
        self._lock = asyncio.Lock()

    def try_take(self) -> float:
        """Take a token: 0.0 when one was taken, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0 - TOKEN_EPSILON:  # the float sum of waits may fall just short
            self.tokens = max(0.0, self.tokens - 1.0)
            self.taken += 1
            return 0.0
        return (1.0 - self.tokens) / self.rate

    async def take(self) -> None:
        """Wait for a token (callers are served in turn)."""
        async with self._lock:
            while (wait := self.try_take()) > 0:
                await self.sleep(wait)


def ledger_rows(campaign: Campaign, composer: Composer) -> list[NewRow]:
    """The rows to register: each usable line ``pending`` with its Message-ID; each line the
    CSV check refused ``invalid`` with its reason, under a key of its own (``#<line>``: a
    duplicate's key is its first line's)."""
    rows = [
        NewRow(
            row.key,
            row.line,
            citizen_address(row.ins, composer.citizen_domain),
            composer.message_id(row.key),
        )
        for row in campaign.recipients.rows
    ]
    for error in campaign.recipients.errors:
        key = f"#{error.line}"
        rows.append(
            NewRow(
                key,
                error.line,
                "",
                composer.message_id(key),
                state=INVALID,
                reason=error.reason,
                text=error.text,
            )
        )
    return rows


async def register_campaign(
    context: BulkContext, campaign: Campaign, *, origin: str = "cli"
) -> tuple[CampaignRecord, bool]:
    """Register ``campaign`` (its definition file is its ``source``): the record, and whether it
    was created now. The same content again returns the existing record; other content under
    the same id raises :class:`~pli.mailgateway.bulk.ledger.CampaignConflict`; a mailbox that
    cannot send campaigns raises :class:`~pli.mailgateway.bulk.check.SenderRefused`."""
    account, sender = await sender_of(context.store, campaign.definition.mailbox)
    composer = context.composer(campaign, sender)
    return await Ledger(context.store).register(
        campaign_id=campaign.id,
        kind=campaign.definition.kind,
        mailbox=sender.address,
        structure_id=account.structure_id,
        source=str(campaign.file),
        content_hash=campaign.content_hash,
        origin=origin,
        rows=ledger_rows(campaign, composer),
        now=context.clock(),
    )


@dataclass
class RunResult:
    campaign_id: str
    submitted: int = 0
    refused: int = 0
    deferred: int = 0
    failed: int = 0  # the pipeline raised (looked up, tried again)
    recovered: int = 0  # found accepted after a crash
    finished: bool = False
    lost_claim: bool = False


class CampaignRunner:
    """Runs one campaign (see the module docstring). ``on_row(state)`` is told each row's
    outcome as it is known (a progress bar); ``wait_deferred``: wait for deferred rows to
    become due instead of returning with the campaign unfinished."""

    def __init__(
        self,
        context: BulkContext,
        campaign: Campaign,
        *,
        origin: str = "cli",
        owner: str | None = None,
        bucket: TokenBucket | None = None,
        on_row: Callable[[str], None] | None = None,
        wait_deferred: bool = True,
    ) -> None:
        settings = context.settings.bulk
        self.context = context
        self.campaign = campaign
        self.origin = origin
        self.owner = owner or process_owner()
        self.bucket = bucket or TokenBucket(settings.rate, settings.burst)
        self.on_row = on_row
        self.wait_deferred = wait_deferred
        self.ledger = Ledger(context.store)
        self.lease = settings.lease
        self.batch_size = settings.batch_size
        self.concurrency = settings.concurrency
        self.rows = {row.key: row for row in campaign.recipients.rows}
        self._lost = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> RunResult:
        """Send what is left of the campaign; returns counts of this run. Raises
        :class:`CampaignBusy` when another live process holds the campaign."""
        stop = stop or asyncio.Event()
        campaign_id = self.campaign.id
        result = RunResult(campaign_id)
        record = await self.ledger.claim(campaign_id, self.owner, self.lease, self.context.clock())
        if record is None:
            current = await self.ledger.get(campaign_id)
            raise CampaignBusy(campaign_id, current.lease_owner if current else None)
        renewing = asyncio.create_task(self._renew(), name=f"bulk-renew-{campaign_id}")
        try:
            account, sender = await sender_of(self.context.store, record.mailbox)
            principal = bulk_principal(account, self.origin)
            composer = self.context.composer(self.campaign, sender)
            result.recovered = await self.ledger.recover(campaign_id, record.mailbox)
            log.info("bulk-run", campaign=campaign_id, recovered=result.recovered)
            while not stop.is_set() and not self._lost.is_set():
                current = await self.ledger.get(campaign_id)
                if current is None or current.state != READY:
                    result.finished = current is not None and current.state == FINISHED
                    break
                due = await self.ledger.due_rows(campaign_id, self.batch_size, self.context.clock())
                if not due:
                    if await self.ledger.finish_if_done(campaign_id, self.context.clock()):
                        result.finished = True
                        break
                    if not self.wait_deferred or not await self._wait_deferred(stop):
                        break
                    continue
                await self._batch(due, principal, sender.address, composer, result)
            result.lost_claim = self._lost.is_set()
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.ledger.release(campaign_id, self.owner)
        log.info(
            "bulk-run-ended",
            campaign=campaign_id,
            submitted=result.submitted,
            refused=result.refused,
            deferred=result.deferred,
            finished=result.finished,
        )
        return result

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                renewed = await self.ledger.renew(
                    self.campaign.id, self.owner, self.lease, self.context.clock()
                )
            except Exception:
                log.exception("bulk-renew-failed", campaign=self.campaign.id)
                renewed = False
            if not renewed:
                log.warning("bulk-claim-lost", campaign=self.campaign.id)
                self._lost.set()
                return

    async def _wait_deferred(self, stop: asyncio.Event) -> bool:
        """Wait until the earliest deferred row is due (False: nothing waits, or stopped)."""
        due_at = await self.ledger.next_deferred(self.campaign.id)
        if due_at is None:
            return False
        if due_at.tzinfo is None:
            due_at = due_at.replace(tzinfo=UTC)
        delay = max(0.0, (due_at - self.context.clock()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(delay, self.lease / 3) + 0.01)
        return not stop.is_set()

    async def _batch(
        self,
        due: Sequence[RowRef],
        principal: Principal,
        sender: str,
        composer: Composer,
        result: RunResult,
    ) -> None:
        await self.ledger.mark_submitting([row.id for row in due], self.context.clock())
        limit = asyncio.Semaphore(self.concurrency)
        outcomes: list[RowOutcome] = []
        failed: list[int] = []
        skipped: list[RowRef] = []

        async def one(row: RowRef) -> None:
            async with limit:
                if self._lost.is_set():
                    skipped.append(row)  # handed to nobody: pending again below
                    return
                await self.bucket.take()
                outcome = await self._submit(row, principal, sender, composer)
            if outcome is None:
                failed.append(row.id)
                result.failed += 1
                self._told("failed")
                return
            outcomes.append(outcome)
            if outcome.state == SUBMITTED:
                result.submitted += 1
            elif outcome.state == REFUSED:
                result.refused += 1
            else:
                result.deferred += 1
            self._told(outcome.state if outcome.state != PENDING else "deferred")

        await asyncio.gather(*(one(row) for row in due))
        outcomes += [RowOutcome(row.id, PENDING, attempts=row.attempts) for row in skipped]
        await self.ledger.record(outcomes, self.context.clock())
        if failed:
            attempts = {row.id: row.attempts for row in due}
            delay = DEFERRAL_DELAYS[min(max(attempts[i] for i in failed), len(DEFERRAL_DELAYS) - 1)]
            result.recovered += await self.ledger.settle_failed(
                failed,
                sender,
                retry_at=self.context.clock() + timedelta(seconds=delay),
                max_attempts=len(DEFERRAL_DELAYS) + 1,
            )

    def _told(self, state: str) -> None:
        if self.on_row is not None:
            self.on_row(state)

    async def _submit(
        self, row: RowRef, principal: Principal, sender: str, composer: Composer
    ) -> RowOutcome | None:
        """The outcome of one row; None when the pipeline raised (unknown: looked up)."""
        recipient = self.rows.get(row.key)
        if recipient is None:
            return RowOutcome(row.id, REFUSED, ROW_MISSING, "ligne absente du fichier")
        try:
            composed = await asyncio.to_thread(composer.compose, recipient)
        except RowProblem as problem:
            return RowOutcome(row.id, REFUSED, problem.reason, problem.text, attempts=row.attempts)
        pipeline = self.context.pipeline
        try:
            submitted = await pipeline.submit(
                principal,
                sender,
                [EnvelopeRecipient(composed.recipient)],
                composed.raw,
                received_from="bulk",
            )
        except SubmissionRefused as error:
            return RowOutcome(row.id, REFUSED, error.reason, error.text, attempts=row.attempts)
        except Exception:
            log.exception("bulk-submit-failed", campaign=self.campaign.id, row=row.key)
            return None
        answer = submitted.recipients[0]
        if answer.accepted:
            delivered = pipeline.local.is_local(composed.recipient)
            return RowOutcome(
                row.id,
                SUBMITTED,
                answer.reason,
                "",
                delivery=DELIVERED if delivered else "",
                attempts=row.attempts,
            )
        if answer.temporary:
            attempts = row.attempts + 1
            if attempts > len(DEFERRAL_DELAYS):
                return RowOutcome(
                    row.id,
                    REFUSED,
                    answer.reason,
                    DEFERRED_TOO_LONG + answer.text,
                    attempts=attempts,
                )
            retry = self.context.clock() + timedelta(seconds=DEFERRAL_DELAYS[attempts - 1])
            return RowOutcome(
                row.id, PENDING, answer.reason, answer.text, attempts=attempts, not_before=retry
            )
        return RowOutcome(row.id, REFUSED, answer.reason, answer.text, attempts=row.attempts)


async def run_campaign(
    context: BulkContext,
    campaign: Campaign,
    *,
    origin: str = "cli",
    on_row: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    wait_deferred: bool = True,
) -> RunResult:
    """Register ``campaign`` (idempotent) and send what is left of it: the one call behind
    ``pli bulk send``, the HTTP API's submission and the service."""
    await register_campaign(context, campaign, origin=origin)
    runner = CampaignRunner(
        context, campaign, origin=origin, on_row=on_row, wait_deferred=wait_deferred
    )
    return await runner.run(stop)


__all__ = [
    "CANCELLED",
    "CampaignBusy",
    "CampaignRunner",
    "RunResult",
    "TokenBucket",
    "ledger_rows",
    "register_campaign",
    "run_campaign",
]
