"""The campaign runner inside ``pli serve``: every ``bulk.poll_interval`` it looks for campaigns
that are ready and not claimed (:meth:`Ledger.runnable`: those submitted over the HTTP API, and
those a stopped or killed ``pli bulk send`` left unfinished once their claim expired) and runs
them one after the other through :class:`~pli.mailgateway.bulk.runner.CampaignRunner`.

A campaign is run only with the content it was registered with: its files are read again from
its ``source`` and their content hash compared; a campaign whose files changed or vanished is
logged once and left alone (``pli bulk cancel`` ends it). Rows deferred for later do not hold
the runner: it returns, and the next poll finds them due.

:func:`bulk_services` also follows campaign messages queued for other operators: it adds
:func:`~pli.mailgateway.bulk.ledger.record_queue_outcomes` to the queue's observers, so that the
report says delivered or bounced.

What this module must not do: send by any path other than the runner (the pipeline).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from ..services import Runtime, Service
from .campaign import CampaignError
from .check import BulkContext, open_campaign
from .ledger import CampaignRecord, Ledger, record_queue_outcomes
from .runner import CampaignBusy, CampaignRunner, RunResult

log = structlog.get_logger(__name__)


def is_confined(origin: str) -> bool:
    """Campaigns uploaded over the HTTP API may name files only inside their directory."""
    return origin.startswith("api:")


class BulkService:
    name = "bulk"

    def __init__(self, context: BulkContext) -> None:
        self.context = context
        self.ledger = Ledger(context.store)
        self.poll_interval = context.settings.bulk.poll_interval
        self.wake = asyncio.Event()  # set by the HTTP API after registering a campaign
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unusable: set[tuple[str, str]] = set()  # (campaign, problem) already logged

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="bulk-runner")

    def addresses(self) -> list[tuple[str, int]]:
        return []

    async def stop(self, grace: float) -> None:
        """Stop taking rows; the batch in flight is recorded within ``grace``."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=max(grace, 0.0))
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("bulk-poll-failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(), self.poll_interval)

    async def _wait(self) -> None:
        stop = asyncio.create_task(self._stop.wait())
        wake = asyncio.create_task(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def run_once(self) -> list[RunResult]:
        """Run every runnable campaign once (tests call this directly)."""
        results = []
        for record in await self.ledger.runnable(self.context.clock()):
            if self._stop.is_set():
                break
            result = await self.run_campaign(record)
            if result is not None:
                results.append(result)
        return results

    async def run_campaign(self, record: CampaignRecord) -> RunResult | None:
        try:
            campaign = open_campaign(
                self.context.settings, Path(record.source), confined=is_confined(record.origin)
            )
        except CampaignError as error:
            self._unusable_once(record, error.text)
            return None
        if campaign.content_hash != record.content_hash or campaign.id != record.id:
            self._unusable_once(record, "files changed since the campaign was registered")
            return None
        runner = CampaignRunner(self.context, campaign, origin=record.origin, wait_deferred=False)
        try:
            return await runner.run(self._stop)
        except CampaignBusy:
            return None  # another process took it between runnable() and claim()
        except CampaignError as error:  # the mailbox was disabled or removed since
            self._unusable_once(record, error.text)
            return None

    def _unusable_once(self, record: CampaignRecord, problem: str) -> None:
        if (record.id, problem) not in self._unusable:
            self._unusable.add((record.id, problem))
            log.error("bulk-campaign-unusable", campaign=record.id, problem=problem)


def bulk_services(runtime: Runtime) -> list[Service]:
    """What ``pli serve`` runs for bulk sending (with the SMTP gateway): the queue's outcomes
    followed into the campaigns' rows, and the runner when ``bulk.enabled``."""
    gateway = runtime.gateway
    if gateway is None:
        return []
    if record_queue_outcomes not in gateway.queue.observers:
        gateway.queue.observers.append(record_queue_outcomes)
    if not runtime.settings.bulk.enabled:
        return []
    service = BulkService(BulkContext.from_gateway(gateway))
    runtime.bulk = service
    return [service]
