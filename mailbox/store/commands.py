"""Admin commands of the mail store: ``pli mailbox``, ``pli citizen``, ``pli directory``,
``pli audit`` and ``pli db`` (registered by ``mailgateway/cli.py``).

Each command loads the configuration (``-c FILE``, else ``$PLI_CONFIG``, else ``./pli.toml``),
opens the store (migrating it), does one thing and prints one line per result. A user error
prints ``pli: …`` and exits 1; a refused configuration exits 2. Passwords are read from the
terminal (twice) or, with ``--password-stdin``, from the first line of standard input; with
``--generate-password`` a random one is printed once.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pli.config.command import config_option, fail, load_or_exit
from pli.config.schema import Settings

from .errors import StoreUserError
from .records import AccountKind, ProfileStatus
from .service import Store

T = TypeVar("T")
GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


def run_with_store(config: Path | None, work: Callable[[Store, Settings], Awaitable[T]]) -> T:
    """Open the store of the configuration, run ``work``, close it; user errors exit 1."""
    settings = load_or_exit(config)

    async def main() -> T:
        store = await Store.open(settings)
        try:
            return await work(store, settings)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUserError as error:
        fail(str(error))


def password_options(function: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
    @click.option("--generate-password", is_flag=True, help="Generate and print a password.")
    @functools.wraps(function)
    def wrapper(*args: Any, password_stdin: bool, generate_password: bool, **kwargs: Any) -> Any:
        return function(*args, password=_password(password_stdin, generate_password), **kwargs)

    return wrapper


def _password(from_stdin: bool, generate: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if generate:
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        click.echo(f"password: {password}")
        return password
    return None


# -- pli mailbox --------------------------------------------------------------------------------


@click.group("mailbox")
def mailbox_group() -> None:
    """Professional mailboxes (BAL PER, ORG, APP)."""


@mailbox_group.command("add")
@config_option
@click.argument("address")
@click.option(
    "--type", "kind", type=click.Choice(["PER", "ORG", "APP"]), required=True, help="BAL type."
)
@click.option("--name", default="", help="Display name.")
@click.option("--rpps", default=None, help="RPPS of the professional (PER).")
@click.option("--structure", default=None, help="Structure id, FINESS or SIRET (ORG, APP).")
@click.option("--profession", default=None, help="Profession (PER).")
@click.option("--no-reply", is_flag=True, help="APP mailbox that never receives citizen mail.")
@click.option("--member", "members", multiple=True, help="ORG: address of a PER member.")
@password_options
def mailbox_add(
    config: Path | None,
    address: str,
    kind: str,
    name: str,
    rpps: str | None,
    structure: str | None,
    profession: str | None,
    no_reply: bool,
    members: tuple[str, ...],
    password: str | None,
) -> None:
    """Create a professional mailbox and its folders."""

    async def work(store: Store, _settings: Settings) -> None:
        account = await store.accounts.create(
            address,
            AccountKind(kind),
            display_name=name,
            rpps=rpps,
            structure_id=structure,
            profession=profession,
            no_reply=no_reply,
            password=password,
        )
        for member in members:
            await store.accounts.add_member(
                account.id, (await store.accounts.by_address(member)).id
            )
        click.echo(f"created {account.address} ({account.kind.value})")

    run_with_store(config, work)


@mailbox_group.command("list")
@config_option
@click.option("--type", "kind", type=click.Choice(["PER", "ORG", "APP", "CIT"]), default=None)
def mailbox_list(config: Path | None, kind: str | None) -> None:
    """List accounts: address, type, display name."""

    async def work(store: Store, _settings: Settings) -> None:
        for account in await store.accounts.all(AccountKind(kind) if kind else None):
            flags = " no-reply" if account.no_reply else ""
            flags += " disabled" if account.disabled else ""
            status = f" {account.profile_status.value}" if account.profile_status else ""
            click.echo(
                f"{account.address}\t{account.kind.value}{status}{flags}\t{account.display_name}"
            )

    run_with_store(config, work)


@mailbox_group.command("remove")
@config_option
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def mailbox_remove(config: Path | None, address: str, yes: bool) -> None:
    """Delete an account with all its folders and messages."""
    if not yes:
        click.confirm(f"delete {address} and all its messages?", abort=True)

    async def work(store: Store, _settings: Settings) -> None:
        await store.accounts.remove(address)
        click.echo(f"removed {address.lower()}")

    run_with_store(config, work)


@mailbox_group.command("passwd")
@config_option
@click.argument("address")
@password_options
@click.option("--totp", is_flag=True, help="Also (re)generate a TOTP secret and print it.")
def mailbox_passwd(config: Path | None, address: str, password: str | None, totp: bool) -> None:
    """Set an account's password (prompted unless given), optionally a new TOTP secret."""
    if password is None:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    assert password is not None

    async def work(store: Store, _settings: Settings) -> None:
        account = await store.accounts.by_address(address)
        await store.accounts.set_password(account.id, password)
        click.echo(f"password set for {account.address}")
        if totp:
            secret = await store.accounts.enable_totp(account.id)
            click.echo(f"totp secret: {secret}")

    run_with_store(config, work)


@mailbox_group.command("unlock")
@config_option
@click.argument("address")
def mailbox_unlock(config: Path | None, address: str) -> None:
    """Forget an account's failed logins: a lockout ends now (any account, citizens too)."""

    async def work(store: Store, _settings: Settings) -> None:
        account = await store.accounts.by_address(address)
        async with store.transaction() as tx:
            forgotten = await store.login_failures.clear(account.address, tx=tx)
            await store.audit.record(
                "cli:pli mailbox unlock",
                "unlock",
                mailbox=account.address,
                result=f"{forgotten} failed logins forgotten",
                tx=tx,
            )
        click.echo(f"unlocked {account.address} ({forgotten} failed logins forgotten)")

    run_with_store(config, work)


# -- pli citizen --------------------------------------------------------------------------------


@click.group("citizen")
def citizen_group() -> None:
    """Citizen mailboxes (<INS>@citizen domain), profile status and guardians."""


@citizen_group.command("add")
@config_option
@click.argument("ins")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ProfileStatus]),
    default="open",
    help="Profile status (policy P1: only open receives).",
)
@click.option("--notify", default=None, help="Personal address for new-mail notifications.")
@password_options
def citizen_add(
    config: Path | None, ins: str, name: str, status: str, notify: str | None, password: str | None
) -> None:
    """Create a citizen mailbox from an INS (15 characters: NIR + key)."""

    async def work(store: Store, settings: Settings) -> None:
        account = await store.accounts.create_citizen(
            ins,
            settings.domains.citizen,
            display_name=name,
            status=ProfileStatus(status),
            notification_address=notify,
            password=password,
        )
        click.echo(f"created {account.address} ({status})")

    run_with_store(config, work)


@citizen_group.command("status")
@config_option
@click.argument("ins")
@click.argument("status", required=False, type=click.Choice([s.value for s in ProfileStatus]))
def citizen_status(config: Path | None, ins: str, status: str | None) -> None:
    """Print a citizen's profile status, or set it."""

    async def work(store: Store, _settings: Settings) -> None:
        if status is None:
            account = await store.accounts.by_ins(ins)
        else:
            account = await store.accounts.set_profile_status(ins, ProfileStatus(status))
        assert account.profile_status is not None
        click.echo(f"{account.address}\t{account.profile_status.value}")

    run_with_store(config, work)


@citizen_group.command("guardian")
@config_option
@click.argument("ward_ins")
@click.argument("guardian_ins", required=False)
@click.option(
    "--relationship",
    type=click.Choice(["parent", "caregiver"]),
    default="parent",
)
@click.option("--remove", is_flag=True, help="End the guardianship.")
def citizen_guardian(
    config: Path | None, ward_ins: str, guardian_ins: str | None, relationship: str, remove: bool
) -> None:
    """Let GUARDIAN_INS act in WARD_INS's profile (policy P9); without it, list guardians."""

    async def work(store: Store, _settings: Settings) -> None:
        ward = await store.accounts.by_ins(ward_ins)
        if guardian_ins is not None:
            guardian = await store.accounts.by_ins(guardian_ins)
            if remove:
                await store.accounts.remove_guardian(ward.id, guardian.id)
                click.echo(f"{guardian.address} no longer acts for {ward.address}")
            else:
                await store.accounts.add_guardian(ward.id, guardian.id, relationship)
                click.echo(f"{guardian.address} acts for {ward.address} ({relationship})")
        for item in await store.accounts.guardians(ward.id):
            click.echo(f"{item.account.address}\t{item.relationship}")

    run_with_store(config, work)


# -- pli directory ------------------------------------------------------------------------------


@click.group("directory")
def directory_group() -> None:
    """The directory of professional mailboxes and the dispensations (policy P3)."""


@directory_group.command("import")
@config_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def directory_import(config: Path | None, file: Path) -> None:
    """Import a national extract (pipe-delimited) or a simple CSV; bad rows are reported with
    their line number and skipped (columns: docs/store.md)."""

    data = file.read_bytes()

    async def work(store: Store, _settings: Settings) -> None:
        report = await store.directory.import_bytes(data, source=file.name)
        for problem in report.problems:
            click.echo(f"{file}:{problem.line}: {problem.message}", err=True)
        click.echo(
            f"imported {file} ({report.shape}): {report.added} added, {report.updated} updated, "
            f"{len(report.problems)} refused"
        )

    run_with_store(config, work)


@directory_group.command("show")
@config_option
@click.argument("address")
def directory_show(config: Path | None, address: str) -> None:
    """Print what the directory says about an address."""

    async def work(store: Store, _settings: Settings) -> None:
        entry = await store.directory.lookup(address)
        if entry is None:
            fail(f"{address}: not in the directory")
            return
        marks = [("pharmacy", entry.pharmacy), ("no-reply", entry.no_reply), ("local", entry.local)]
        extra = "".join(f"\t{name}" for name, present in marks if present)
        click.echo(f"{entry.address}\t{entry.bal_type}\t{entry.display_name}{extra}")

    run_with_store(config, work)


@directory_group.command("dispensations")
@config_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def directory_dispensations(config: Path | None, file: Path) -> None:
    """Import dispensations from a CSV ``ins,pharmacy,date`` (pharmacy: mailbox address or
    structure id; date: YYYY-MM-DD)."""
    rows: list[tuple[int, str, str, datetime]] = []
    refused = 0
    text = file.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            fields = next(csv.reader(io.StringIO(line)), [])
            ins, pharmacy, day = (field.strip() for field in fields)
            when = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
        except (ValueError, csv.Error):
            if number > 1:  # the first line may be a header
                click.echo(f"{file}:{number}: expected ins,pharmacy,YYYY-MM-DD", err=True)
                refused += 1
            continue
        rows.append((number, ins, pharmacy, when))

    async def work(store: Store, _settings: Settings) -> None:
        added = 0
        for _number, ins, pharmacy, when in rows:
            added += await store.directory.add_dispensation(ins, pharmacy, when)
        click.echo(f"imported {file}: {added} added, {len(rows) - added} known, {refused} refused")

    run_with_store(config, work)


# -- pli audit ----------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@config_option
def audit_verify(config: Path | None) -> None:
    """Check every link of the hash chain; exit 1 naming the first broken record."""

    async def work(store: Store, _settings: Settings) -> Any:
        return await store.audit.verify()

    result = run_with_store(config, work)
    if not result.ok:
        fail(f"audit chain broken at record {result.broken_at}: {result.reason}")
    click.echo(f"OK: {result.checked} records verified")


@audit_group.command("purge")
@config_option
def audit_purge(config: Path | None) -> None:
    """Remove records older than audit.retention (the chain stays verifiable)."""

    async def work(store: Store, _settings: Settings) -> int:
        return await store.audit.purge()

    click.echo(f"purged {run_with_store(config, work)} records")


@audit_group.command("show")
@config_option
@click.argument("mailbox")
@click.option("--limit", default=50, show_default=True)
def audit_show(config: Path | None, mailbox: str, limit: int) -> None:
    """A mailbox's activity history, newest first."""

    async def work(store: Store, _settings: Settings) -> None:
        for record in await store.audit.history(mailbox, limit=limit):
            actor = record.actor + (f" for {record.acting_for}" if record.acting_for else "")
            click.echo(
                f"{record.at.isoformat(timespec='seconds')}\t{actor}\t{record.action}\t"
                f"{record.request}\t{record.result}"
            )

    run_with_store(config, work)


# -- pli db -------------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """The mail store's database."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config: Path | None) -> None:
    """Apply pending schema migrations (pli init and pli serve do it too)."""
    from .migrate import current_revisions

    settings = load_or_exit(config)

    async def work(store: Store, _settings: Settings) -> set[str]:
        return await current_revisions(settings.database_url)

    revisions = run_with_store(config, work)
    click.echo(f"database at revision {', '.join(sorted(revisions))}")


@db_group.command("sweep")
@config_option
def db_sweep(config: Path | None) -> None:
    """Remove unreferenced message files (older than storage.orphan_grace) and purge the audit
    log past its retention."""
    from .sweep import sweep

    async def work(store: Store, _settings: Settings) -> Any:
        return await sweep(store)

    report = run_with_store(config, work)
    click.echo(
        f"removed {report.removed_files} files, {report.removed_temporary} temporary files; "
        f"purged {report.purged_audit_records} audit records"
    )


GROUPS = (mailbox_group, citizen_group, directory_group, audit_group, db_group)
