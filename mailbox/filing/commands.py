"""``pli filing``: the outbox for operators (registered by ``mailgateway/cli.py``).

- ``pli filing list [--status S] [--ins INS] [--limit N]``: one line per filing, newest first;
- ``pli filing show ID``: one filing with its documents and its last error;
- ``pli filing retry ID… | --failed``: put failed filings back to pending (audited).

Each command loads the configuration, opens the mail store, does one thing and prints one line
per result; a user error prints ``pli: …`` and exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from pli.config.command import config_option, fail
from pli.config.schema import Settings
from pli.mailbox.store import Store
from pli.mailbox.store.commands import run_with_store

from .outbox import get_filing, list_filings, retry_filings
from .reasons import FilingStatus
from .records import FilingState

MAX_LISTED = 10_000


@click.group("filing")
def filing_group() -> None:
    """Filings of attachments into citizens' document stores (the outbox)."""


def _line(state: FilingState) -> str:
    when = ""
    if state.next_attempt_at is not None:
        when = f" next={state.next_attempt_at.isoformat(timespec='seconds')}"
    reason = f" reason={state.reason}" if state.reason else ""
    documents = f" documents={','.join(state.document_ids)}" if state.document_ids else ""
    return (
        f"{state.id} {state.status.value} ins={state.ins} part={state.part} kind={state.kind} "
        f"by={state.requested_by}:{state.requester} attempts={state.attempts}"
        f"{when}{reason}{documents}"
    )


@filing_group.command("list")
@config_option
@click.option(
    "--status", type=click.Choice([status.value for status in FilingStatus]), default=None
)
@click.option("--ins", default=None, help="Only this citizen's filings.")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=100, show_default=True)
def list_command(config: Path | None, status: str | None, ins: str | None, limit: int) -> None:
    """Filings, newest first."""

    async def work(store: Store, _settings: Settings) -> list[FilingState]:
        wanted = FilingStatus(status) if status else None
        return await list_filings(store, status=wanted, ins=ins, limit=limit)

    for state in run_with_store(config, work):
        click.echo(_line(state))


@filing_group.command("show")
@config_option
@click.argument("filing_id", type=int)
def show_command(config: Path | None, filing_id: int) -> None:
    """One filing: its state, what the citizen reads, its documents, its last error."""

    async def work(store: Store, _settings: Settings) -> FilingState:
        return await get_filing(store, filing_id)

    state = run_with_store(config, work)
    click.echo(_line(state))
    click.echo(f"source: {state.source_id}")
    click.echo(f"citizen reads: {state.text}")
    for document in state.documents:
        found = document.document_id or document.reason or ""
        click.echo(f"document {document.source_part}: {document.status} {found}".rstrip())
    if state.detail:
        click.echo(f"detail: {state.detail}")
    if state.last_error:
        click.echo(f"last error: {state.last_error}")


@filing_group.command("retry")
@config_option
@click.argument("filing_ids", type=int, nargs=-1)
@click.option("--failed", "every_failed", is_flag=True, help="Every failed filing.")
def retry_command(config: Path | None, filing_ids: tuple[int, ...], every_failed: bool) -> None:
    """Put failed filings back to pending: the worker tries them again at once."""
    if bool(filing_ids) == every_failed:
        fail("give filing ids or --failed (not both)")

    async def work(store: Store, _settings: Settings) -> int:
        operator = f"operator:{os.environ.get('USER', 'cli')}"
        return await retry_filings(
            store, None if every_failed else list(filing_ids), operator=operator
        )

    click.echo(f"retried: {run_with_store(config, work)}")
