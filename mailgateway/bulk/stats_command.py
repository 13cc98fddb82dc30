"""``pli stats``: the usage indicators of ``stats.py`` as a table, CSV (RFC 4180) or JSON.

::

    pli stats [--from 2025-01-06] [--to 2025-03-30] [--format table|csv|json]
              [--zone Europe/Paris] [--establishment 750100001]

Without ``--from``/``--to``: the last 12 weeks, this one included. Exit codes: 0 done (an
empty report included), 1 the period cannot be reported, 2 bad configuration.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from pli.config.command import config_option, fail
from pli.config.schema import Settings
from pli.mailbox.store import Store
from pli.mailbox.store.commands import run_with_store

from .check import safe_cell
from .stats import CUMULATIVE, DEFAULT_ZONE, INDICATORS, Period, StatsError, UsageReport, UsageStats

#: Weeks shown when no period is given (a quarter).
DEFAULT_WEEKS = 12
COLUMNS = ("establishment", "name", "week", "monday", *INDICATORS, *CUMULATIVE)
#: Shorter headers for the table (CSV and JSON use the field names).
TABLE_HEADERS = {
    "establishment": "establishment",
    "name": "name",
    "week": "week",
    "sent": "sent",
    "received": "received",
    "convocations": "convoc.",
    "campaign_messages": "campaign",
    "documents_filed": "filed",
    "sent_total": "sent(cum)",
    "received_total": "recv(cum)",
}
NAME_WIDTH = 30


def render_csv(report: UsageReport) -> str:
    """CSV with a header line. The name is free text (the directory's structure name, an ORG
    mailbox's display name): a spreadsheet must show it, never run it (``safe_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 §2: CRLF line breaks
    writer.writerow(COLUMNS)
    for row in report.rows:
        values = row.as_dict()
        values["name"] = safe_cell(values["name"])
        writer.writerow([values[column] for column in COLUMNS])
    return out.getvalue()


def render_json(report: UsageReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


def render_table(report: UsageReport) -> str:
    period = report.period
    title = (
        f"{period.first.isoformat()} – {period.last.isoformat()} ({len(period.mondays)} weeks, "
        f"{period.zone})"
    )
    if not report.rows:
        return f"{title}\nno activity\n"
    keys = list(TABLE_HEADERS)
    cells = [[TABLE_HEADERS[key] for key in keys]]
    for row in report.rows:
        values = row.as_dict()
        values["name"] = str(values["name"])[:NAME_WIDTH]
        cells.append([str(values[key]) for key in keys])
    widths = [max(len(line[i]) for line in cells) for i in range(len(keys))]
    text = [title]
    for line in cells:
        left = [line[i].ljust(widths[i]) for i in range(3)]
        right = [line[i].rjust(widths[i]) for i in range(3, len(keys))]
        text.append("  ".join(left + right).rstrip())
    return "\n".join(text) + "\n"


RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json}


def default_period(today: date, zone: str) -> Period:
    return Period.covering(today - timedelta(weeks=DEFAULT_WEEKS - 1), today, zone)


@click.command("stats")
@config_option
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day (ISO date).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (ISO date).")
@click.option(
    "--format", "form", type=click.Choice(sorted(RENDERERS)), default="table", show_default=True
)
@click.option("--zone", default=DEFAULT_ZONE, show_default=True, help="Time zone of the weeks.")
@click.option("--establishment", help="Only this structure id (or @domain, or -).")
def stats_command(
    config: Path | None,
    first: datetime | None,
    last: datetime | None,
    form: str,
    zone: str,
    establishment: str | None,
) -> None:
    """Usage indicators per establishment and ISO week: messages sent to citizens and
    received from them, convocations and campaign messages, documents filed."""
    try:
        today = datetime.now(ZoneInfo(zone)).date()
    except (ValueError, KeyError):
        fail(f"unknown time zone: {zone}")
    try:
        if first is None and last is None:
            period = default_period(today, zone)
        else:
            end = last.date() if last else today
            start = first.date() if first else end - timedelta(weeks=DEFAULT_WEEKS - 1)
            period = Period.covering(start, end, zone)
    except StatsError as error:
        fail(error.text)

    async def work(store: Store, settings: Settings) -> UsageReport:
        return await UsageStats(store).report(period, establishment)

    click.echo(RENDERERS[form](run_with_store(config, work)), nl=False)
