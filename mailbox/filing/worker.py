"""The filing worker: a background service of ``pli serve`` that sends the outbox's requests to
the document store over HTTP, and applies the automatic rules to new messages.

- **Sending.** The dispatcher claims due requests (``outbox.claim``: a lease, so that workers of
  several processes share the outbox) up to ``filing.concurrency`` at once; each attempt reads
  the message's file, builds its documents (``documents.prepare``, in a thread), files them one
  by one (``client.DocstoreClient``) and settles the request: filed (the store's document ids),
  failed (a permanent refusal, with its reason), or pending until the next attempt
  (``filing.retry_schedule``, the last delay repeating, or the store's Retry-After). A request is
  never given up for a passing failure. Nothing here raises into ``pli serve``: an unexpected
  error is logged and the request retried.
- **Waking.** At once on a filing hint or a new message (the store's change feed,
  ``wake.py``), else every ``filing.poll_interval`` (requests of other processes) and when the
  next retry falls due; the rules scan every citizen INBOX every ``filing.scan_interval``.
- **Stopping.** Claiming stops at once; attempts in flight get the grace period, then are
  cancelled: their leases run out and another attempt resends them (the store's idempotency
  keys make that harmless).

The worker's clock is injected (``clock``): leases and retry times are computed from it, never
from the database's clock, so that tests can move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import structlog
from prometheus_client import Counter

from pli.config.schema import Settings
from pli.mailbox.store import EventKind, NotFound, Store

from .client import Actor, DocstoreClient, Filed, Outcome, Refused, TryLater
from .documents import OutgoingDocument, Refusal, Sender, prepare
from .keys import idempotency_key
from .outbox import (
    AUTOMATIC_RULE,
    Claimed,
    Settlement,
    claim,
    next_due,
    release_dead_leases,
    renew,
    settle,
    utc_now,
)
from .reasons import DOCUMENT_DELETED, SOURCE_GONE, FilingStatus
from .records import DOCUMENT_FILED, DOCUMENT_REFUSED, DOCUMENT_SKIPPED, DocumentResult
from .scanner import RuleScanner
from .source import MessageFacts, message_facts
from .wake import DeliveryWatch, is_filing_hint, watch_deliveries

log = structlog.get_logger(__name__)

ATTEMPTS = Counter(
    "pli_filing_attempts", "Filing attempts by how they ended.", ["outcome"]
)  # outcome: filed, failed, retry
DOCUMENTS = Counter(
    "pli_filing_documents", "Documents sent to the document store by answer.", ["answer"]
)  # answer: filed, refused, later


def process_alive(pid: int) -> bool:
    """Whether a process of this host exists (signal 0 checks without sending anything)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class FilingUnavailable(Exception):
    """The worker cannot run with this configuration; the text says what to change."""


class FilingWorker:
    """The Service (``mailgateway/services.py``) that files documents."""

    name = "filing"

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """Filing is on and this process serves citizens."""
        return settings.filing.enabled and settings.domains.citizen_enabled

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
        worker_id: str | None = None,
    ) -> None:
        if not settings.docstore.token:
            raise FilingUnavailable(
                "docstore.token is empty: the worker could not authenticate to the document "
                "store (docstore.url); set the token, or filing.enabled = false"
            )
        self.store = store
        self.config = settings.filing
        self.clock = clock
        self.host = socket.gethostname()[:32].replace(":", "-")
        self.id = worker_id or f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.client = DocstoreClient(
            settings.docstore.url,
            settings.docstore.token,
            timeout=self.config.timeout,
            transport=transport,
        )
        self.scanner = RuleScanner(store, self.config.rules, clock=clock)
        self._wake = asyncio.Event()
        self._scan_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._dirty: set[int] = set()
        self._scan_everything = True
        self._inflight: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None  # reads the change feed only
        self._watch: DeliveryWatch | None = None
        self._progress = asyncio.Condition()
        self.settled = 0  # attempts settled by this worker (tests wait on it)
        self._misconfigured: str | None = None  # the last answer saying our config is wrong

    # -- the Service life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:  # a previous process of this host was killed: its requests need not wait
            released = await release_dead_leases(self.store, self.host, process_alive, self.clock())
            if released:
                log.info("filing-leases-released", requests=released)
        except Exception as error:  # the database is down: the leases will run out
            log.warning("filing-lease-release-failed", error=type(error).__name__)
        self._watch = watch_deliveries(self.store.feed)
        self._listener = asyncio.create_task(self._listen(self._watch), name="filing-watch")
        self._loops = [asyncio.create_task(self._dispatch(), name="filing-dispatch")]
        if self.scanner.rules:
            self._loops.append(asyncio.create_task(self._scan(), name="filing-rules"))

    def addresses(self) -> list[tuple[str, int]]:
        return []

    async def stop(self, grace: float) -> None:
        """The loops end after their round (a round cut inside a store transaction could leave
        SQLite's write lock held by a connection nobody closes), attempts in progress finish;
        all within ``grace``, else they are cut."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(grace, 0.0)
        self._stopping.set()
        self._wake.set()
        self._scan_wake.set()
        if self._listener is not None:  # no transaction there: cut at once
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._loops:
            _done, late = await asyncio.wait(self._loops, timeout=max(grace, 0.0))
            for task in late:
                task.cancel()
            for task in self._loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loops = []
        if self._inflight:
            remaining = max(deadline - loop.time(), 0.0)
            _done, pending = await asyncio.wait(self._inflight, timeout=remaining)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        await self.client.close()

    async def health(self) -> str | None:
        """None when the worker runs and the store accepts us; else what is wrong (a store
        that is merely down or busy is not reported: filings wait for it)."""
        for task in [*self._loops, *([self._listener] if self._listener else [])]:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"{task.get_name()} stopped: {type(task.exception()).__name__}"
        if self._misconfigured is not None:
            return (
                f"the document store answers {self._misconfigured}: check docstore.url and "
                "docstore.token"
            )
        return None

    def wake(self) -> None:
        """Look for due requests now (requests of this process wake it by themselves)."""
        self._wake.set()

    async def wait_progress(self, seconds: float) -> None:
        """Return when an attempt settles (or after ``seconds``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds), self._progress:
                await self._progress.wait()

    # -- loops -----------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.config.concurrency - len(self._inflight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = await claim(
                        self.store, self.id, free, self.clock(), self.config.lease
                    )
                except Exception as error:  # the database is down: poll again later
                    log.warning("filing-claim-failed", error=type(error).__name__)
                for request in claimed:
                    task = asyncio.create_task(self._process(request), name=f"filing-{request.id}")
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
                if claimed and len(claimed) == free:
                    continue
            await self._sleep(self._wake, await self._until_due())

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _until_due(self) -> float:
        wait = self.config.poll_interval
        try:
            due = await next_due(self.store)
        except Exception:  # the database is down: poll
            return wait
        if due is not None:
            wait = min(wait, max((due - self.clock()).total_seconds(), 0.0))
        return wait

    @staticmethod
    async def _sleep(event: asyncio.Event, seconds: float) -> None:
        """Until ``event`` is set or ``seconds`` pass. ``asyncio.timeout``, not ``wait_for``:
        on Python 3.11 ``wait_for`` swallows a cancellation that arrives as the event is set
        (the task then slept on through ``stop``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await event.wait()

    async def _listen(self, watch: DeliveryWatch) -> None:
        async for event in watch:
            if event.kind is EventKind.OVERFLOW:  # events were lost: look everywhere
                self._scan_everything = True
                self._scan_wake.set()
                self._wake.set()
            elif is_filing_hint(event):
                self._wake.set()
            elif event.folder_id is not None:
                self._dirty.add(event.folder_id)
                self._scan_wake.set()

    async def _scan(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while not self._stopping.is_set():
            if self._scan_everything or loop.time() >= next_full:
                self._scan_everything = False
                next_full = loop.time() + self.config.scan_interval
                await self._guarded(self.scanner.scan_all())
            while self._dirty:
                await self._guarded(self.scanner.scan_folder(self._dirty.pop()))
            self._scan_wake.clear()
            if self._stopping.is_set():
                return
            if not self._dirty and not self._scan_everything:
                await self._sleep(self._scan_wake, next_full - loop.time())

    @staticmethod
    async def _guarded(work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except Exception as error:  # logged; the next scan tries again
            log.error("filing-rules-failed", error=type(error).__name__)

    # -- one attempt -------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Claim what is due now and attempt it, waiting for the outcome (tests, tools);
        returns how many were attempted."""
        claimed = await claim(
            self.store, self.id, self.config.concurrency, self.clock(), self.config.lease
        )
        await asyncio.gather(*(self._process(request) for request in claimed))
        return len(claimed)

    async def _process(self, request: Claimed) -> None:
        try:
            outcome = await self._attempt(request)
        except Exception as error:
            log.exception("filing-attempt-error", filing=request.id)
            outcome = self._later(request, f"internal: {type(error).__name__}", None, None)
        if outcome is None:
            log.warning("filing-lease-lost", filing=request.id)
            return
        try:
            kept = await settle(self.store, request, self.id, outcome, self.clock())
        except Exception as error:  # the lease runs out; another attempt will settle it
            log.error("filing-settle-failed", filing=request.id, error=type(error).__name__)
            return
        if kept:
            self._count(request, outcome)
        async with self._progress:
            self.settled += 1
            self._progress.notify_all()

    def _count(self, request: Claimed, outcome: Settlement) -> None:
        label = {FilingStatus.FILED: "filed", FilingStatus.FAILED: "failed"}.get(
            outcome.status, "retry"
        )
        ATTEMPTS.labels(label).inc()
        log.info(
            "filing-" + label,
            filing=request.id,
            attempt=request.attempts,
            reason=outcome.reason,
            error=outcome.error or None,
            documents=[r.document_id for r in outcome.results if r.document_id],
        )

    def _later(
        self,
        request: Claimed,
        error: str,
        retry_after: float | None,
        generation: int | None,
        results: tuple[DocumentResult, ...] = (),
    ) -> Settlement:
        schedule = self.config.retry_schedule
        delay = (
            schedule[min(request.attempts, len(schedule)) - 1]
            if retry_after is None
            else retry_after
        )
        return Settlement(
            FilingStatus.PENDING,
            results=results,
            error=error,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
            key_generation=generation,
        )

    async def _attempt(self, request: Claimed) -> Settlement | None:
        """File the request's documents; None when the lease was lost meanwhile."""
        try:
            raw = await self.store.blobs.get(request.blob_id)
        except NotFound:
            return Settlement(FilingStatus.FAILED, reason=SOURCE_GONE, detail="message file gone")
        facts = message_facts(raw)
        prepared = await asyncio.to_thread(
            prepare,
            raw,
            request.part,
            ins=request.ins,
            message_id=request.message_id,
            facts=facts,
            sender=await self._sender(facts),
        )
        del raw
        for mismatch in prepared.header_mismatches:  # reported, not fatal (docs/docstore.md)
            log.warning("filing-xdm-header-mismatch", filing=request.id, reason=mismatch.reason)
        results = [
            DocumentResult(s.source_part, DOCUMENT_SKIPPED, reason=s.reason)
            for s in prepared.skipped
        ]
        refusal = prepared.refusal
        generation = request.key_generation
        actor = Actor(request.actor_kind, request.actor_id)
        for position, document in enumerate(prepared.documents):
            if position and not await renew(
                self.store, request.id, self.id, self.clock() + timedelta(seconds=self.config.lease)
            ):
                return None
            outcome, used = await self._file(request, document, actor, generation)
            generation = max(generation, used)
            self._note_answer(outcome)
            if isinstance(outcome, TryLater):
                DOCUMENTS.labels("later").inc()
                return self._later(request, outcome.error, outcome.retry_after, generation)
            if isinstance(outcome, Filed):
                DOCUMENTS.labels("filed").inc()
                results.append(
                    DocumentResult(
                        document.source_part, DOCUMENT_FILED, document.title, outcome.document_id
                    )
                )
                continue
            DOCUMENTS.labels("refused").inc()
            results.append(
                DocumentResult(
                    document.source_part, DOCUMENT_REFUSED, document.title, reason=outcome.reason
                )
            )
            if refusal is None:
                refusal = Refusal(outcome.reason, outcome.detail)
        if refusal is not None:
            return Settlement(
                FilingStatus.FAILED,
                tuple(results),
                reason=refusal.reason,
                detail=refusal.detail,
                key_generation=generation,
            )
        noted = ", ".join(f"{m.header} {m.reason}" for m in prepared.header_mismatches)
        return Settlement(
            FilingStatus.FILED,
            tuple(results),
            detail=f"X-MSS headers disagree with the package: {noted}" if noted else "",
            key_generation=generation,
        )

    async def _file(
        self, request: Claimed, document: OutgoingDocument, actor: Actor, generation: int
    ) -> tuple[Outcome, int]:
        """POST one document. A citizen who asks again for a document they deleted from the
        store (410 for its key) gets it filed under the next key generation."""
        used = 0
        while True:
            key = idempotency_key(
                request.source_id, document.source_part, document.fields["sha256"], used
            )
            outcome = await self.client.file(request.ins, document, actor, key, self.clock())
            deleted = isinstance(outcome, Refused) and outcome.reason == DOCUMENT_DELETED
            if not deleted or request.actor_kind == AUTOMATIC_RULE or used > generation:
                return outcome, used
            used += 1

    def _note_answer(self, outcome: Outcome) -> None:
        """Remember an answer saying our configuration is wrong, until the store files or
        refuses a document (it then accepted our token at that URL)."""
        if isinstance(outcome, TryLater):
            if outcome.misconfigured:
                if self._misconfigured is None:
                    log.error("filing-store-misconfigured", answer=outcome.error)
                self._misconfigured = outcome.error
        else:
            self._misconfigured = None

    async def _sender(self, facts: MessageFacts) -> Sender:
        if not facts.sender:
            return Sender("")
        try:
            entry = await self.store.directory.lookup(facts.sender)
        except Exception:  # a directory lookup failing never stops a filing
            entry = None
        if entry is None:
            return Sender(facts.sender, facts.sender_name)
        return Sender(facts.sender, entry.display_name or facts.sender_name, entry.rpps)
