"""`pli queue …`, `pli dkim …` and `pli smtp worker`: the SMTP gateway's commands.

- ``pli queue list [--json]``: every queued message with each recipient's state, attempts, next
  attempt and last reply; ``pli queue retry [ID]`` makes recipients due now (all, or one
  message's); ``pli queue delete ID`` drops a message without delivering or reporting it.
- ``pli dkim dns``: the TXT record to publish for each domain we sign for;
  ``pli dkim generate [--algorithm …]`` writes ``dkim.key`` if missing.
- ``pli smtp worker --listener NAME``: one SMTP listener process sharing the port (started by
  `pli serve` for ``processes > 1``; not for people).

Exit codes: 0 done, 1 refused or not found, 2 bad configuration.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click

from pli.config.command import config_option, fail, load_or_exit
from pli.config.schema import Settings
from pli.mailbox.policyfacts import FactsUnavailable, facts_from_store
from pli.mailbox.store import Store
from pli.mailbox.store.commands import run_with_store
from pli.policy.facts import Actor, Facts, MessageTraits

from .dkim import DkimError, dns_record, generate_key, load_key
from .logs import configure_logging
from .queue.entries import OutboundQueue, QueuedMessage
from .smtp.workers import run_worker


def _queue(store: Store, settings: Settings) -> OutboundQueue:
    return OutboundQueue(
        store,
        settings.server.data_dir / settings.queue.directory,
        max_lifetime=settings.queue.max_lifetime,
    )


def _age(moment: datetime) -> str:
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _describe(message: QueuedMessage) -> list[str]:
    lines = [
        f"{message.id}  {message.origin:<10} {_age(message.created_at):>8}  {message.size:>9} B  "
        f"from <{message.sender}>  expires {message.expires_at:%Y-%m-%d %H:%M}"
    ]
    for recipient in message.recipients:
        last = f"  last: {recipient.last_reply}" if recipient.last_reply else ""
        lines.append(
            f"    {recipient.status:<6} <{recipient.address}>  attempts {recipient.attempts}  "
            f"next {recipient.next_attempt_at:%Y-%m-%d %H:%M:%S}{last}"
        )
    return lines


def _as_json(message: QueuedMessage) -> dict[str, object]:
    return {
        "id": message.id,
        "origin": message.origin,
        "sender": message.sender,
        "size": message.size,
        "created_at": message.created_at.isoformat(),
        "expires_at": message.expires_at.isoformat(),
        "recipients": [
            {
                "address": r.address,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "last_reply": r.last_reply,
            }
            for r in message.recipients
        ],
    }


@click.group("queue")
def queue_group() -> None:
    """The outbound queue: mail waiting for other operators, and reports."""


@queue_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def queue_list(config: Path | None, as_json: bool) -> None:
    """Every queued message, each recipient with its state and last reply."""

    async def work(store: Store, settings: Settings) -> list[QueuedMessage]:
        return await _queue(store, settings).all()

    messages = run_with_store(config, work)
    if as_json:
        click.echo(json.dumps([_as_json(m) for m in messages], indent=2, ensure_ascii=False))
        return
    if not messages:
        click.echo("queue empty")
    for message in messages:
        for line in _describe(message):
            click.echo(line)


@queue_group.command("retry")
@config_option
@click.argument("message_id", type=int, required=False)
def queue_retry(config: Path | None, message_id: int | None) -> None:
    """Try now: every queued recipient, or those of MESSAGE_ID."""

    async def work(store: Store, settings: Settings) -> int:
        return await _queue(store, settings).retry(message_id)

    count = run_with_store(config, work)
    if message_id is not None and count == 0:
        fail(f"no queued recipient for message {message_id}")
    click.echo(f"{count} recipient(s) due now (the running server tries them at its next poll)")


@queue_group.command("delete")
@config_option
@click.argument("message_id", type=int)
def queue_delete(config: Path | None, message_id: int) -> None:
    """Remove MESSAGE_ID from the queue, without delivering it or reporting to the sender."""

    async def work(store: Store, settings: Settings) -> bool:
        return await _queue(store, settings).delete(message_id)

    if not run_with_store(config, work):
        fail(f"no queued message {message_id}")
    click.echo(f"deleted {message_id}")


@click.group("dkim")
def dkim_group() -> None:
    """Our DKIM signing key."""


def signing_domains(settings: Settings) -> list[str]:
    domains = list(settings.domains.professional)
    if settings.domains.citizen_enabled:
        domains.append(settings.domains.citizen)
    return domains


def dns_lines(settings: Settings) -> list[str]:
    """Zone-file lines publishing our key for each domain we sign for (RFC 6376 §3.6.2.2: long
    values split into 255-octet strings)."""
    value = dns_record(load_key(settings.dkim.key))
    strings = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return [
        f"{settings.dkim.selector}._domainkey.{domain}. IN TXT ( {strings} )"
        for domain in signing_domains(settings)
    ]


@dkim_group.command("dns")
@config_option
def dkim_dns(config: Path | None) -> None:
    """Print the TXT records to publish (one per domain we sign for)."""
    settings = load_or_exit(config)
    try:
        for line in dns_lines(settings):
            click.echo(line)
    except DkimError as error:
        fail(str(error))


@dkim_group.command("generate")
@config_option
def dkim_generate(config: Path | None) -> None:
    """Write dkim.key (dkim.algorithm) if it does not exist."""
    settings = load_or_exit(config)
    if settings.dkim.key.exists():
        fail(f"{settings.dkim.key} exists: keep it, or move it away and use a new dkim.selector")
    generate_key(settings.dkim.key, settings.dkim.algorithm)
    click.echo(f"wrote {settings.dkim.key}; publish: pli dkim dns")


@click.group("smtp", hidden=True)
def smtp_group() -> None:
    """SMTP worker processes (started by pli serve)."""


@smtp_group.command("worker")
@config_option
@click.option("--listener", "name", required=True, help="The listener to serve.")
def smtp_worker(config: Path | None, name: str) -> None:
    """Serve the connections pli serve hands over for one SMTP listener, until SIGTERM."""
    settings = load_or_exit(config)
    if name not in settings.listeners:
        fail(f"no listener {name!r}")
    configure_logging(settings.server.log_format, settings.server.log_level)
    asyncio.run(run_worker(settings, name))


def store_facts(
    settings: Settings,
    sender: str,
    recipient: str,
    message: MessageTraits | None,
    actor: Actor | None,
    now: float,
) -> Facts:
    """``pli policy explain``'s facts from the mail store (registered with
    ``pli.policy.command.use_store_facts``)."""
    try:
        return asyncio.run(
            facts_from_store(settings, sender, recipient, message=message, actor=actor, now=now)
        )
    except FactsUnavailable as error:
        raise ValueError(f"the facts cannot be gathered from the store: {error}") from None


GROUPS = (queue_group, dkim_group, smtp_group)
