"""The queue runner: a `pli serve` service that delivers what is due, per message and domain,
retries with backoff, gives up after ``queue.max_lifetime``, and reports by DSN.

For each leased message: local recipients (reports to our own senders) are delivered into the
store through the same checks as any mail (:class:`~pli.mailgateway.recipients.LocalRecipients`);
remote ones are grouped by domain and sent to the domain's hosts in turn
(:mod:`pli.mailgateway.routing`, :mod:`.client`), with the peer's certificate verified and
whitelisted for that domain. Then, in one transaction, every recipient's outcome and the reports
it calls for (failure; delay once, after ``queue.delay_warning``; success when NOTIFY=SUCCESS and
we delivered, "delivered", or the next hop does not offer DSN, "relayed", RFC 3461 §5.2.2).

Retries: the n-th temporary failure waits ``queue.retry_schedule[n-1]`` (the last value
repeats). A recipient still failing at ``expires_at`` fails for good (``4.4.7``).

Fairness: the runner leases only what its free slots (``queue.concurrency``) can attempt at
once, interactive mail first, and campaign messages (``Precedence: bulk``) never take more than
:func:`bulk_slots` of them: a campaign of thousands queued for a slow operator never makes an
interactive message wait for a free slot. A finished attempt wakes the loop to fill its slot.
Leasing no more than it attempts also keeps a leased recipient from outliving its lease while
it waits in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from pli.certs.refusals import CertificateRefused
from pli.certs.verify import TrustStore
from pli.certs.whitelist import Whitelist, require_listed
from pli.config.schema import QueueSection
from pli.mailbox.policyfacts import read_traits
from pli.mailbox.store import Transaction

from ..delivery import DeliveryJob, LocalDelivery
from ..dsn import (
    DELAYED,
    DELIVERED,
    FAILED,
    RELAYED,
    OriginalEnvelope,
    RecipientReport,
    wants_report,
)
from ..recipients import LocalRecipients
from ..reports import PreparedReport, Reporter
from ..routing import RouteError, Router
from .client import Attempt, Outgoing, OutgoingRecipient, Reply, Security, transfer
from .entries import OutboundQueue, Outcome, QueuedMessage, QueuedRecipient
from .models import FAILED as STATUS_FAILED
from .models import PRIORITY_BULK, QUEUED, SENT

log = structlog.get_logger(__name__)

#: How often queue files no row refers to are looked for, and how old they must be to go (a
#: crash between writing a file and committing its rows leaves one; seconds).
ORPHAN_SWEEP_INTERVAL = 3600.0
ORPHAN_GRACE = 3600.0
#: RFC 3463 X.4.7: delivery time expired.
EXPIRED_STATUS = "4.4.7"


def bulk_slots(concurrency: int) -> int:
    """How many of ``concurrency`` slots campaign messages may hold at once: all but a quarter
    (at least one) kept for interactive mail; one when there is a single slot."""
    return max(1, concurrency - max(1, concurrency // 4))


def retry_delay(schedule: Sequence[float], attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure (1-based); the last value repeats."""
    if not schedule:
        return 300.0
    return float(schedule[min(max(attempts, 1), len(schedule)) - 1])


class QueueRunner:
    name = "queue"

    def __init__(
        self,
        queue: OutboundQueue,
        section: QueueSection,
        *,
        hostname: str,
        router: Router,
        trust: TrustStore,
        whitelist: Callable[[], Whitelist | None],
        tls_context: ssl.SSLContext,
        local: LocalRecipients,
        delivery: LocalDelivery,
        reporter: Reporter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.queue = queue
        self.section = section
        self.hostname = hostname
        self.router = router
        self.trust = trust
        self.whitelist = whitelist
        self.tls_context = tls_context
        self.local = local
        self.delivery = delivery
        self.reporter = reporter
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._limit = asyncio.Semaphore(section.concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._bulk: dict[asyncio.Task[None], bool] = {}  # running attempt → campaign message

    # -- service ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="queue-runner")

    def addresses(self) -> list[tuple[str, int]]:
        return []

    async def stop(self, grace: float) -> None:
        """The loop ends after its round (a round cancelled in the middle of a transaction could
        leave SQLite's write lock with a connection nobody closes: every writer of the process
        would then wait for it, the deliveries the grace lets finish included); attempts in
        progress finish within ``grace``, else are cut."""
        started = asyncio.get_running_loop().time()
        if self._task is not None:
            self._stopping.set()
            self.queue.added.set()
            done, _ = await asyncio.wait({self._task}, timeout=max(grace, 0.0))
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        grace -= asyncio.get_running_loop().time() - started
        if self._running:  # attempts in progress finish within the grace, else are cut
            _, pending = await asyncio.wait(self._running, timeout=max(grace, 0.0))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)

    async def _loop(self) -> None:
        swept = time.monotonic()
        while not self._stopping.is_set():
            self.queue.added.clear()  # before the round: what is queued during it wakes us
            try:
                await self.run_once()
                if time.monotonic() - swept >= ORPHAN_SWEEP_INTERVAL:
                    swept = time.monotonic()
                    await self.queue.sweep_files(grace=ORPHAN_GRACE, now=time.time())
            except Exception:
                log.exception("queue-run-failed")
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.added.wait(), self.section.poll_interval)

    async def run_once(self) -> int:
        """Start an attempt for due messages, as many as there are free slots (interactive
        first, campaigns within :func:`bulk_slots`); returns how many (tests await
        :meth:`drain` afterwards)."""
        concurrency = self.section.concurrency
        free = concurrency - len(self._running)
        if free <= 0:
            return 0
        bulk_running = sum(1 for task in self._running if self._bulk.get(task, False))
        bulk_free = max(0, bulk_slots(concurrency) - bulk_running)
        messages = await self.queue.lease_due(self.clock(), limit=free, bulk_limit=bulk_free)
        for message in messages:
            task = asyncio.create_task(self._guarded(message))
            self._running.add(task)
            self._bulk[task] = message.priority >= PRIORITY_BULK
            task.add_done_callback(self._finished)
        return len(messages)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A slot is free: wake the loop to fill it."""
        self._running.discard(task)
        self._bulk.pop(task, None)
        self.queue.added.set()

    async def drain(self) -> None:
        """Wait for the attempts in progress (tests)."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def _guarded(self, message: QueuedMessage) -> None:
        async with self._limit:
            try:
                await self.attempt(message)
            except Exception:
                log.exception("queue-attempt-failed", queued=message.id)

    # -- one message --------------------------------------------------------------------------

    async def attempt(self, message: QueuedMessage) -> None:
        raw = await self.queue.read(message)
        now = self.clock()
        local = [r for r in message.recipients if self.local.is_local(r.address)]
        remote = [r for r in message.recipients if not self.local.is_local(r.address)]
        replies: dict[int, Reply] = {}
        hosts: dict[int, str] = {}
        relayed: set[int] = set()
        if local:
            replies |= await self._deliver_locally(message, raw, local)
        by_domain: dict[str, list[QueuedRecipient]] = {}
        for recipient in remote:
            by_domain.setdefault(recipient.domain, []).append(recipient)
        for domain, recipients in by_domain.items():
            attempt = await self._send(message, raw, domain, recipients)
            for recipient in recipients:
                reply = (
                    attempt.failure
                    or attempt.replies.get(recipient.id)
                    or Reply(451, "4.4.0 no reply")
                )
                replies[recipient.id] = reply
                hosts[recipient.id] = attempt.host
                if reply.positive and not attempt.dsn_offered:
                    relayed.add(recipient.id)
        await self._record(message, raw, now, replies, hosts, relayed, {r.id for r in local})

    async def _deliver_locally(
        self, message: QueuedMessage, raw: bytes, recipients: list[QueuedRecipient]
    ) -> dict[int, Reply]:
        traits = await read_traits(raw)
        verdicts = {
            r.id: await self.local.check(message.sender, r.address, message=traits)
            for r in recipients
        }
        accepted = [v for v in verdicts.values() if v.accepted]
        if accepted:
            try:
                await self.delivery.deliver(
                    DeliveryJob(
                        raw,
                        [v.copy() for v in accepted],
                        actor=f"queue:{message.id}",
                        action="deliver-queued",
                        sender=message.sender,
                        request=f"from <{message.sender}> origin {message.origin}",
                    )
                )
            except Exception as error:
                log.error(
                    "queue-local-delivery-failed", queued=message.id, error=type(error).__name__
                )
                failed = Reply(451, "4.3.0 local delivery failed")
                return {
                    rid: failed if v.accepted else _reply(v.reply) for rid, v in verdicts.items()
                }
        return {rid: _reply(v.reply) for rid, v in verdicts.items()}

    async def _send(
        self, message: QueuedMessage, raw: bytes, domain: str, recipients: list[QueuedRecipient]
    ) -> Attempt:
        try:
            hops = await self.router.hops(domain)
        except RouteError as error:
            code = 550 if error.permanent else 451
            return Attempt(domain, failure=Reply(code, f"{error.status} {error.text}"))
        attempt = Attempt(domain, failure=Reply(451, "4.4.1 no host tried"))
        outgoing = Outgoing(
            message.sender,
            [OutgoingRecipient(r.id, r.address, r.notify, r.orcpt) for r in recipients],
            raw,
            message.envid,
            message.ret,
            message.eight_bit,
            message.smtputf8,
        )
        security = Security(
            self.tls_context,
            functools.partial(self._check_peer, domain=domain),
            self.section.require_tls,
        )
        for hop in hops:
            attempt = await transfer(
                hop,
                outgoing,
                security,
                local_hostname=self.hostname,
                command_timeout=self.section.command_timeout,
                connect_timeout=self.section.connect_timeout,
            )
            if attempt.failure is None or attempt.failure.permanent:
                break
            log.info(
                "queue-hop-failed", queued=message.id, host=hop.host, reply=attempt.failure.line
            )
        return attempt

    async def _check_peer(self, ssl_object: ssl.SSLObject | None, *, domain: str) -> str | None:
        """The next hop's server certificate: verified, and listed for ``domain``."""
        try:
            peer = await self.trust.verify_tls_peer(ssl_object, "server")
            whitelist = self.whitelist()
            if whitelist is None:
                return "no whitelist: cannot check the server's certificate"
            require_listed(whitelist, peer.identity, domain)
        except CertificateRefused as refused:
            log.warning(
                "queue-peer-refused", domain=domain, reason=refused.reason, detail=refused.text
            )
            return f"server certificate refused: {refused.public_text}"
        return None

    # -- outcomes -----------------------------------------------------------------------------

    async def _record(
        self,
        message: QueuedMessage,
        raw: bytes,
        now: datetime,
        replies: dict[int, Reply],
        hosts: dict[int, str],
        relayed: set[int],
        local_ids: set[int],
    ) -> None:
        outcomes: list[Outcome] = []
        reports: dict[str, list[RecipientReport]] = {}
        expired = now >= message.expires_at
        for recipient in message.recipients:
            reply = replies[recipient.id]
            host = hosts.get(recipient.id, "")
            if reply.positive:
                outcome = Outcome(recipient.id, SENT, reply.line, reply.enhanced, host)
                action = (
                    DELIVERED
                    if recipient.id in local_ids
                    else RELAYED
                    if recipient.id in relayed
                    else None
                )
            elif reply.permanent or expired:
                status = reply.enhanced if reply.permanent else EXPIRED_STATUS
                text = reply.line if reply.permanent else f"{reply.line} (delivery time expired)"
                outcome = Outcome(recipient.id, STATUS_FAILED, text, status, host)
                action = FAILED
            else:
                delay = retry_delay(self.section.retry_schedule, recipient.attempts + 1)
                outcome = Outcome(
                    recipient.id,
                    QUEUED,
                    reply.line,
                    reply.enhanced,
                    host,
                    now + timedelta(seconds=delay),
                )
                action = None
            outcomes.append(outcome)
            if action is not None and wants_report(action, recipient.notify):
                reports.setdefault(action, []).append(_report(recipient, outcome, action, now))
        delay_due = (
            self.section.delay_warning > 0
            and not message.delay_reported
            and now - message.created_at >= timedelta(seconds=self.section.delay_warning)
        )
        if delay_due:
            for recipient, outcome in zip(message.recipients, outcomes, strict=True):
                if outcome.status == QUEUED and wants_report(DELAYED, recipient.notify):
                    report = _report(recipient, outcome, DELAYED, now, until=message.expires_at)
                    reports.setdefault(DELAYED, []).append(report)
        original = OriginalEnvelope(
            message.sender, message.envid, message.ret, message.received_from, message.created_at
        )
        prepared: list[PreparedReport | None] = [
            await self.reporter.prepare(original, items, raw) for items in reports.values()
        ]
        finished = await self._commit(message, outcomes, prepared, delay_due)
        if finished:
            await self.queue.forget_file(message)
        if any(p is not None for p in prepared):
            self.queue.wake()
        for outcome in outcomes:
            log.info(
                "queue-outcome",
                queued=message.id,
                status=outcome.status,
                reply=outcome.reply[:200],
                host=outcome.remote_mta,
            )

    async def _commit(
        self,
        message: QueuedMessage,
        outcomes: list[Outcome],
        prepared: list[PreparedReport | None],
        delay_reported: bool,
    ) -> bool:
        async with self.queue.store.transaction() as tx:
            finished = await self.queue.record(
                message, outcomes, delay_reported=delay_reported, tx=tx
            )
            for report in prepared:
                await self.reporter.add(report, tx)
            await self._audit(message, outcomes, tx)
        return finished

    async def _audit(
        self, message: QueuedMessage, outcomes: list[Outcome], tx: Transaction
    ) -> None:
        addresses = {r.id: r.address for r in message.recipients}
        for outcome in outcomes:
            if outcome.status == QUEUED:
                continue
            await self.queue.store.audit.record(
                f"queue:{message.id}",
                "relay" if outcome.status == SENT else "bounce",
                mailbox=message.sender or None,
                request=f"to <{addresses[outcome.recipient_id]}> via {outcome.remote_mta or '-'}",
                result=outcome.reply[:500],
                tx=tx,
            )


def _reply(reply: object) -> Reply:
    """A session reply (code, enhanced, text) as a client reply."""
    code = getattr(reply, "code", 451)
    enhanced = getattr(reply, "enhanced", "")
    text = getattr(reply, "text", "")
    return Reply(code, f"{enhanced} {text}".strip())


def _report(
    recipient: QueuedRecipient,
    outcome: Outcome,
    action: str,
    now: datetime,
    *,
    until: datetime | None = None,
) -> RecipientReport:
    return RecipientReport(
        address=recipient.address,
        action=action,
        status=outcome.enhanced or ("2.0.0" if action in (DELIVERED, RELAYED) else "4.0.0"),
        diagnostic=outcome.reply if action != DELIVERED else "",
        orcpt=recipient.orcpt,
        remote_mta=outcome.remote_mta,
        last_attempt=now,
        will_retry_until=until,
    )
