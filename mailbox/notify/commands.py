"""``pli outbox show``: what the dev outbox holds (login codes and notifications sent to
citizens' personal addresses when ``notifications.relay = "dev-outbox"``): the demo's way to read
the one-time code. Reads files only; sends nothing.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import click

from pli.config.command import config_option, fail, load_or_exit

from .relay import DEV_OUTBOX, DevOutbox


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    if body is None:
        return ""
    content = body.get_content()
    return content if isinstance(content, str) else ""


@click.group("outbox")
def outbox_group() -> None:
    """The dev outbox: e-mails pli sent to citizens' personal addresses."""


@outbox_group.command("show")
@config_option
@click.option(
    "--last",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many of the newest e-mails to print.",
)
def outbox_show(config: Path | None, last: int) -> None:
    """Print the newest e-mails of the dev outbox (recipient, subject, text)."""
    settings = load_or_exit(config)
    if settings.notifications.relay != DEV_OUTBOX:
        fail(f"notifications.relay is {settings.notifications.relay!r}, not the dev outbox")
    outbox = DevOutbox(settings.server.data_dir / settings.notifications.outbox_dir)
    files = outbox.files()[-last:]
    if not files:
        click.echo(f"the dev outbox is empty ({outbox.directory})")
        return
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        click.echo(f"── {path.name}")
        click.echo(f"À : {message['To']}")
        click.echo(f"Objet : {message['Subject']}")
        click.echo(f"Date : {message['Date']}")
        click.echo("")
        click.echo(_text(message).rstrip())
        click.echo("")
