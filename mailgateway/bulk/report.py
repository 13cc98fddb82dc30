"""What became of a campaign: its progress (with an ETA) and its final report, per row, as CSV
and JSON.

Per row: the CSV line, the row key, the recipient, the Message-ID, and the status:

- ``accepted``: the submission pipeline took it (queued for another operator, no news yet);
- ``delivered``: in the citizen's mailbox here, or accepted by the next operator;
- ``deferred``: the queue is still trying; ``bounced``: the queue gave up (a DSN was sent);
- ``refused``: with the reason (the policy's: ``profile-closed``, ``ins-unknown`` …; the
  file's: ``ins-key``, ``duplicate-key`` …; the row's: ``attachment-missing`` …) and the
  French text;
- ``pending`` (not sent yet) or ``cancelled``.

Queue outcomes reach the rows through :func:`~pli.mailgateway.bulk.ledger.record_queue_outcomes`,
an observer of the outbound queue registered in ``pli serve`` (``service.py``).

Public entry points (stable; the HTTP API builds on them): :func:`campaign_status`,
:func:`campaign_report`, :class:`CampaignStatus`, :class:`CampaignReport` (``as_json``),
:func:`report_csv`, :func:`report_json`.

What this module must not do: change any state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .check import write_csv
from .ledger import CampaignRecord, Ledger, Progress, ReportRow

#: The window over which the sending rate (and so the ETA) is measured.
ETA_WINDOW = timedelta(minutes=2)
REPORT_COLUMNS = (
    "line",
    "key",
    "recipient",
    "message_id",
    "status",
    "reason",
    "text",
    "detail",
    "submitted_at",
)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def campaign_json(record: CampaignRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "mailbox": record.mailbox,
        "structure_id": record.structure_id,
        "origin": record.origin,
        "state": record.state,
        "rows_total": record.rows_total,
        "content_hash": record.content_hash,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "running": record.lease_owner is not None,
    }


@dataclass(frozen=True)
class CampaignStatus:
    record: CampaignRecord
    progress: Progress
    rate: float  # rows settled per second over the last ETA_WINDOW
    eta_seconds: float | None  # None: nothing to estimate from (not running, or finished)

    def as_json(self) -> dict[str, Any]:
        return {
            **campaign_json(self.record),
            "total": self.progress.total,
            "done": self.progress.done,
            "remaining": self.progress.remaining,
            "by_state": self.progress.by_state,
            "by_delivery": self.progress.by_delivery,
            "rate_per_second": round(self.rate, 3),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


async def campaign_status(
    ledger: Ledger, campaign_id: str, now: datetime | None = None
) -> CampaignStatus | None:
    """The campaign's state, counts per row state and delivery, and the ETA from the rate of
    the last :data:`ETA_WINDOW` (None when the campaign does not exist)."""
    record = await ledger.get(campaign_id)
    if record is None:
        return None
    now = now or datetime.now(UTC)
    progress = await ledger.progress(campaign_id)
    recent = await ledger.submitted_since(campaign_id, now - ETA_WINDOW)
    rate = recent / ETA_WINDOW.total_seconds()
    eta = progress.remaining / rate if rate > 0 and progress.remaining else None
    return CampaignStatus(record, progress, rate, eta)


def row_json(row: ReportRow) -> dict[str, Any]:
    return {
        "line": row.line,
        "key": row.key,
        "recipient": row.recipient,
        "message_id": row.message_id,
        "status": row.status,
        "reason": row.reason if row.status in ("refused", "cancelled") else "",
        "text": row.text if row.status in ("refused", "cancelled") else "",
        "detail": row.delivery_detail,
        "submitted_at": _iso(row.submitted_at),
    }


@dataclass(frozen=True)
class CampaignReport:
    record: CampaignRecord
    rows: tuple[ReportRow, ...]

    def counts(self) -> dict[str, int]:
        """Rows per report status."""
        return dict(Counter(row.status for row in self.rows).most_common())

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": campaign_json(self.record),
            "counts": self.counts(),
            "rows": [row_json(row) for row in self.rows],
        }


async def campaign_report(ledger: Ledger, campaign_id: str) -> CampaignReport | None:
    """Every row of the campaign in file order (None when the campaign does not exist)."""
    record = await ledger.get(campaign_id)
    if record is None:
        return None
    return CampaignReport(record, tuple(await ledger.report(campaign_id)))


def report_csv(report: CampaignReport) -> str:
    """The report as CSV (``;``, CRLF, a header line; cells a spreadsheet could run are
    quoted with ``'``: :func:`~pli.mailgateway.bulk.check.safe_cell`)."""
    rows = [row_json(row) for row in report.rows]
    return write_csv(
        REPORT_COLUMNS, [tuple(row[column] or "" for column in REPORT_COLUMNS) for row in rows]
    )


def report_json(report: CampaignReport) -> dict[str, Any]:
    """The report as a JSON-ready document (campaign, counts, rows)."""
    return report.as_json()
