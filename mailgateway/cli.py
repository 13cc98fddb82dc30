"""The `pli` command: one entry point, one subcommand group per concern.

Each subsystem contributes its group (``pli pki``, ``pli whitelist``, ``pli mailbox``, …); they are
registered at the bottom of this module.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import click

from pli import __version__
from pli.certs.commands import pki_group, whitelist_group
from pli.config.command import EXIT_CONFIG, config_option, fail, load_or_exit
from pli.config.loading import ConfigError
from pli.config.reference import render_reference
from pli.config.schema import Settings
from pli.docstore.config import docstore_only
from pli.docstore.openapi import openapi_document
from pli.mailbox.filing.commands import filing_group
from pli.mailbox.notify.commands import outbox_group
from pli.mailbox.store.commands import GROUPS as STORE_GROUPS
from pli.policy.command import policy_group, use_store_facts

from .bulk.commands import bulk_group
from .bulk.stats_command import stats_command
from .commands import GROUPS as SMTP_GROUPS
from .commands import store_facts
from .init import initialise
from .logs import configure_logging
from .serve import StartupError, serve

EXIT_STARTUP = 1
DEV_DIR = "pli-dev"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pli")
def main() -> None:
    """pli: MSSanté secure mail gateway and citizen mailbox server."""


@main.group("config")
def config_group() -> None:
    """Check the configuration and print its reference."""


@config_group.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
def config_check(config: Path | None, as_json: bool) -> None:
    """Validate a configuration file and the PLI_… environment; exit 2 if it is refused."""
    settings = load_or_exit(config)
    if as_json:
        click.echo(json.dumps(settings.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    click.echo(f"OK: {settings.source or 'defaults (no file)'}")
    click.echo(f"  data_dir  {settings.server.data_dir}")
    click.echo(f"  database  {settings.database_url}")
    for name, listener in settings.enabled_listeners().items():
        click.echo(
            f"  listener  {name}: {listener.protocol} on {listener.address}:{listener.port}"
            f" (TLS {listener.tls})"
        )


@config_group.command("reference")
def config_reference() -> None:
    """Print every configuration key with its type, default and meaning (Markdown)."""
    click.echo(render_reference(), nl=False)


@main.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Data directory to create.",
)
@click.option("--demo", is_flag=True, help="Add demo domains, accounts and messages.")
def init_command(directory: Path, demo: bool) -> None:
    """Create a working data directory: configuration, database, dev certificates."""
    try:
        settings, done = initialise(directory, demo=demo)
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
        return
    for line in done:
        click.echo(line)
    click.echo(f"ready: pli serve -c {settings.source}")


@main.command("serve")
@config_option
@click.option(
    "--dev",
    is_flag=True,
    help=f"Development: create ./{DEV_DIR} (or $PLI_DEV_DIR) with demo data, then serve it.",
)
def serve_command(config: Path | None, dev: bool) -> None:
    """Run every enabled listener until SIGTERM or SIGINT."""
    if dev:
        directory = Path(os.environ.get("PLI_DEV_DIR", DEV_DIR))
        try:
            settings, done = initialise(directory, demo=True)
        except ConfigError as error:
            fail(str(error), EXIT_CONFIG)
            return
        for line in done:
            click.echo(line)
    else:
        settings = load_or_exit(config)
    serve_until_stopped(settings)


def serve_until_stopped(settings: Settings) -> None:
    """Run the enabled listeners of ``settings`` until SIGTERM/SIGINT; exit 1 if one cannot
    start."""
    configure_logging(settings.server.log_format, settings.server.log_level)
    try:
        asyncio.run(serve(settings))
    except StartupError as error:
        fail(str(error), EXIT_STARTUP)


@main.group("docstore")
def docstore_group() -> None:
    """The reference health document store service (its own database and files)."""


@docstore_group.command("serve")
@config_option
def docstore_serve(config: Path | None) -> None:
    """Run only the document store: every listener with protocol = "docstore"."""
    try:
        settings = docstore_only(load_or_exit(config))
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
        return
    serve_until_stopped(settings)


@docstore_group.command("openapi")
def docstore_openapi() -> None:
    """Print the store API's OpenAPI description (docs/docstore-openapi.json)."""
    click.echo(openapi_document(), nl=False)


# The trust space (certs/): `pli pki …` (test PKI) and `pli whitelist …` (ANS's list).
main.add_command(pki_group)
main.add_command(whitelist_group)

# The mail store (mailbox/store): `pli mailbox|citizen|directory|audit|db …`.
for _store_group in STORE_GROUPS:
    main.add_command(_store_group)

# The policy engine (policy/): `pli policy explain`.
main.add_command(policy_group)

# The SMTP gateway (mailgateway/): `pli queue|dkim …` and the hidden `pli smtp worker`;
# `pli policy explain` gathers its facts from the store as the server does.
for _smtp_group in SMTP_GROUPS:
    main.add_command(_smtp_group)
use_store_facts(store_facts)

# Citizens' e-mails (mailbox/notify): `pli outbox show` (login codes and notifications).
main.add_command(outbox_group)

# Filing into citizens' document stores (mailbox/filing): `pli filing list|show|retry`.
main.add_command(filing_group)

# Campaigns (mailgateway/bulk): `pli bulk check|send|status|report|cancel|list`.
main.add_command(bulk_group)

# Usage indicators per establishment and week (mailgateway/bulk/stats.py): `pli stats`.
main.add_command(stats_command)
