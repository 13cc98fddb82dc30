"""Sending delivery status notifications: a DSN (built by :mod:`pli.mailgateway.dsn`) is queued
like any message, from the null reverse-path, to the original sender (local or remote: the queue
delivers both), with NOTIFY=NEVER. So a report is as durable as mail, is committed with the
result it reports, and never causes another report (RFC 3461 §6.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pli.mailbox.store import Transaction

from .dsn import OriginalEnvelope, RecipientReport, build_dsn
from .queue.entries import NewRecipient, OutboundQueue

NEVER = ("NEVER",)


@dataclass(frozen=True, slots=True)
class PreparedReport:
    """A DSN whose file is written; :meth:`Reporter.add` queues it inside a transaction."""

    blob_id: str
    raw: bytes
    to: str


class Reporter:
    def __init__(self, queue: OutboundQueue, reporting_mta: str) -> None:
        self.queue = queue
        self.reporting_mta = reporting_mta

    async def prepare(
        self,
        original: OriginalEnvelope,
        reports: Sequence[RecipientReport],
        message: bytes,
    ) -> PreparedReport | None:
        """The report's file (None: nothing to send: no report, or the null sender)."""
        if not reports or not original.sender:
            return None
        raw = build_dsn(
            reporting_mta=self.reporting_mta, original=original, recipients=reports, message=message
        )
        return PreparedReport(await self.queue.write_file(raw), raw, original.sender)

    async def add(self, report: PreparedReport | None, tx: Transaction) -> None:
        if report is not None:
            await self.queue.add(
                report.blob_id,
                report.raw,
                "",
                [NewRecipient(report.to, NEVER)],
                origin="dsn",
                tx=tx,
            )

    async def send(
        self, original: OriginalEnvelope, reports: Sequence[RecipientReport], message: bytes
    ) -> None:
        """Queue the report in a transaction of its own."""
        report = await self.prepare(original, reports, message)
        if report is not None:
            async with self.queue.store.transaction() as tx:
                await self.add(report, tx)
            self.queue.wake()
