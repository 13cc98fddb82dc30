"""``pli bulk …``: campaigns from the command line (docs/bulk.md).

- ``pli bulk check CAMPAIGN [--json] [--csv FILE]``: the dry run; nothing is sent.
- ``pli bulk send CAMPAIGN [--no-progress]``: registers the campaign, then sends it in the
  foreground through the submission pipeline, with a progress bar and an ETA on stderr. Run it
  again on the same campaign (interrupted, killed, finished) and it continues: rows already
  submitted are never sent again. Ctrl-C stops after the rows in flight are recorded.
- ``pli bulk status ID [--json]``, ``pli bulk report ID [--format csv|json] [-o FILE]``,
  ``pli bulk cancel ID``, ``pli bulk list [--json]``.
- ``pli bulk token NAME --mailbox ADDRESS…``: a new bearer token for the HTTP API, printed once
  with the ``[[bulk.clients]]`` table to add to the configuration (which keeps only its digest).

Exit codes: 0 done; 1 the campaign cannot be used, is unknown, or is being sent by another
process; 2 bad configuration; 3 ``send`` ended with rows still waiting (deferred: run it again,
or let ``pli serve`` finish it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from pli.config.command import config_option, fail, load_or_exit
from pli.config.schema import BulkClient, Settings
from pli.mailbox.store import Store
from pli.mailbox.store.commands import run_with_store

from ..gateway import Gateway, GatewayUnavailable
from .api import token_digest
from .campaign import CampaignError
from .check import BulkContext, check_campaign, check_csv, open_campaign
from .ledger import REFUSED, SUBMITTED, CampaignConflict, Ledger
from .report import campaign_json, campaign_report, campaign_status, report_csv
from .runner import CampaignBusy, CampaignRunner, RunResult, register_campaign

EXIT_UNFINISHED = 3
#: Row outcomes that move the progress bar (a deferred row comes back).
FINAL = frozenset({SUBMITTED, REFUSED})


@contextlib.asynccontextmanager
async def _context(settings: Settings) -> AsyncIterator[BulkContext]:
    """The store and the gateway (its pipeline, its group-commit writer) of this process."""
    store = await Store.open(settings)
    try:
        try:
            gateway = Gateway.build(settings, store)
        except GatewayUnavailable as error:
            fail(f"the submission pipeline cannot start: {error}")
        gateway.start()
        try:
            yield BulkContext.from_gateway(gateway)
        finally:
            await gateway.close()
    finally:
        await store.close()


def _open(settings: Settings, path: Path) -> Any:
    try:
        return open_campaign(settings, path)
    except CampaignError as error:
        fail(error.text)


@click.group("bulk")
def bulk_group() -> None:
    """Campaigns: one message per row of a CSV of patients, exactly once."""


@bulk_group.command("check")
@config_option
@click.argument("campaign", type=click.Path(path_type=Path, exists=True))
@click.option("--json", "as_json", is_flag=True, help="The whole dry run as one JSON document.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write one CSV line per row to this file.",
)
def bulk_check(config: Path | None, campaign: Path, as_json: bool, csv_file: Path | None) -> None:
    """Dry run: check every row (INS, profile, policy, attachments, templates); send nothing."""
    settings = load_or_exit(config)
    loaded = _open(settings, campaign)

    async def work() -> Any:
        async with _context(settings) as context:
            return await check_campaign(context, loaded)

    try:
        report = asyncio.run(work())
    except CampaignError as error:
        fail(error.text)
    if csv_file is not None:
        csv_file.write_text(check_csv(report), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
        return
    click.echo(
        f"campaign {report.campaign_id}: {report.total} row(s), {report.accepted} would be "
        f"sent, {len(report.refused)} would not (file {report.encoding}, "
        f"delimiter {report.delimiter!r})"
    )
    for reason, count in report.by_reason().items():
        click.echo(f"  {count:>6}  {reason}")
    for row in report.refused:
        click.echo(f"line {row.line}: {row.key or '-'} {row.status} {row.reason}: {row.text}")


@bulk_group.command("send")
@config_option
@click.argument("campaign", type=click.Path(path_type=Path, exists=True))
@click.option("--no-progress", is_flag=True, help="No progress bar (logs and scripts).")
def bulk_send(config: Path | None, campaign: Path, no_progress: bool) -> None:
    """Send a campaign (or continue it): each row once, throttled, through the pipeline."""
    settings = load_or_exit(config)
    loaded = _open(settings, campaign)

    async def work() -> tuple[RunResult, int]:
        async with _context(settings) as context:
            try:
                record, created = await register_campaign(context, loaded)
            except CampaignConflict as error:
                fail(error.text)
            progress = await Ledger(context.store).progress(record.id)
            click.echo(
                f"campaign {record.id} {'registered' if created else 'resumed'}: "
                f"{progress.total} row(s), {progress.remaining} to send",
                err=True,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            bar = click.progressbar(
                length=progress.total,
                label=record.id,
                file=sys.stderr,
                show_eta=True,
                show_pos=True,
                hidden=no_progress,
            )
            with bar:
                bar.update(progress.done)
                runner = CampaignRunner(
                    context,
                    loaded,
                    on_row=lambda state: bar.update(1) if state in FINAL else None,
                )
                result = await runner.run(stop)
            final = await Ledger(context.store).progress(record.id)
            return result, final.remaining

    try:
        result, remaining = asyncio.run(work())
    except CampaignBusy as error:
        fail(error.text)
    except CampaignError as error:
        fail(error.text)
    click.echo(
        f"campaign {result.campaign_id}: {result.submitted} submitted, {result.refused} "
        f"refused, {result.deferred} deferred, {result.recovered} recovered after a crash; "
        f"{remaining} row(s) left",
        err=True,
    )
    if remaining:
        sys.exit(EXIT_UNFINISHED)


@bulk_group.command("status")
@config_option
@click.argument("campaign_id")
@click.option("--json", "as_json", is_flag=True)
def bulk_status(config: Path | None, campaign_id: str, as_json: bool) -> None:
    """A campaign's state, rows per state and delivery, ETA."""

    async def work(store: Store, settings: Settings) -> Any:
        return await campaign_status(Ledger(store), campaign_id)

    status = run_with_store(config, work)
    if status is None:
        fail(f"no campaign {campaign_id}")
    if as_json:
        click.echo(json.dumps(status.as_json(), indent=2, ensure_ascii=False))
        return
    record, progress = status.record, status.progress
    click.echo(f"{record.id}  {record.state}  {record.kind}  from {record.mailbox}")
    click.echo(f"  rows {progress.total}, done {progress.done}, remaining {progress.remaining}")
    for state, count in sorted(progress.by_state.items()):
        click.echo(f"  {state:<11} {count}")
    for delivery, count in sorted(progress.by_delivery.items()):
        click.echo(f"    {delivery:<9} {count}")
    if status.eta_seconds is not None:
        click.echo(f"  rate {status.rate:.1f}/s, about {int(status.eta_seconds)} s left")


@bulk_group.command("report")
@config_option
@click.argument("campaign_id")
@click.option("--format", "form", type=click.Choice(["csv", "json"]), default="csv")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
def bulk_report(config: Path | None, campaign_id: str, form: str, output: Path | None) -> None:
    """The final report, one line per row: recipient, Message-ID, status, reason."""

    async def work(store: Store, settings: Settings) -> Any:
        return await campaign_report(Ledger(store), campaign_id)

    report = run_with_store(config, work)
    if report is None:
        fail(f"no campaign {campaign_id}")
    text = (
        report_csv(report)
        if form == "csv"
        else json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"
    )
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@bulk_group.command("cancel")
@config_option
@click.argument("campaign_id")
def bulk_cancel(config: Path | None, campaign_id: str) -> None:
    """Cancel the rows not yet sent (those already submitted stay submitted)."""

    async def work(store: Store, settings: Settings) -> int | None:
        ledger = Ledger(store)
        if await ledger.get(campaign_id) is None:
            return None
        return await ledger.cancel(campaign_id)

    count = run_with_store(config, work)
    if count is None:
        fail(f"no campaign {campaign_id}")
    click.echo(f"{campaign_id}: {count} row(s) cancelled")


@bulk_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True)
def bulk_list(config: Path | None, as_json: bool) -> None:
    """The latest campaigns, newest first."""

    async def work(store: Store, settings: Settings) -> Any:
        return await Ledger(store).campaigns()

    records = run_with_store(config, work)
    if as_json:
        click.echo(json.dumps([campaign_json(r) for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("no campaign")
    for record in records:
        click.echo(
            f"{record.id}  {record.state:<9} {record.rows_total:>7} rows  {record.kind:<12} "
            f"{record.mailbox}  {record.created_at:%Y-%m-%d %H:%M}"
        )


@bulk_group.command("token")
@click.argument("name")
@click.option(
    "--mailbox",
    "mailboxes",
    multiple=True,
    required=True,
    help="An APP or ORG mailbox the client may send from (repeat for several).",
)
def bulk_token(name: str, mailboxes: tuple[str, ...]) -> None:
    """A new bearer token for the HTTP API client NAME: the token on stderr (give it to the
    client; it is shown once), the [[bulk.clients]] table with its SHA-256 on stdout."""
    try:
        client = BulkClient(name=name, token_sha256="0" * 64, mailboxes=list(mailboxes))
    except ValidationError as error:
        fail("; ".join(str(item["msg"]) for item in error.errors()))
    token = secrets.token_urlsafe(32)  # 256 bits
    click.echo(f"token for {client.name}: {token}", err=True)
    listed = ", ".join(json.dumps(address) for address in client.mailboxes)
    click.echo(
        f'[[bulk.clients]]\nname = "{client.name}"\n'
        f'token_sha256 = "{token_digest(token)}"\n'
        f"mailboxes = [{listed}]"
    )
