"""Test helpers for bulk campaigns: citizens to write to, recipients files, campaign
directories on disk, and the Message-IDs a mailbox holds (to count deliveries)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pli.config.schema import Settings
from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN
from pli.mailbox.store.records import ProfileStatus
from pli.mailgateway.dkim import generate_key
from pli.policy.ins import make_ins
from plitest.pki import session_pki
from plitest.smtp import CITIZEN_DOMAIN, write_settings
from plitest.store import is_postgresql

SENDER = f"cr-patient-noreply@{DEMO_DOMAIN}"  # the demo APP mailbox (structure 750100001)
HEADER = "ins;nom;prenoms;date_naissance;date_rdv;cle;pieces_jointes"


def citizen_ins(number: int) -> str:
    """A valid INS per number (women born in 1975, Paris, order ``number``)."""
    return make_ins(f"2750175{number:06d}")


@dataclass(frozen=True)
class Patient:
    ins: str
    family: str = "DUPONT"
    given: str = "Marie Anne"
    birth: str = "01/01/1975"
    date_rdv: str = "12/03/2025"
    attachments: str = ""

    @property
    def address(self) -> str:
        return f"{self.ins.lower()}@{CITIZEN_DOMAIN}"


async def add_citizens(
    store: Store, count: int, *, status: ProfileStatus = ProfileStatus.OPEN, start: int = 1
) -> list[Patient]:
    patients = []
    for number in range(start, start + count):
        ins = citizen_ins(number)
        await store.accounts.create_citizen(ins, CITIZEN_DOMAIN, status=status)
        patients.append(Patient(ins))
    return patients


def csv_lines(patients: Sequence[Patient], *, header: str = HEADER, delimiter: str = ";") -> str:
    lines = [header.replace(";", delimiter)]
    for patient in patients:
        cells = [
            patient.ins,
            patient.family,
            patient.given,
            patient.birth,
            patient.date_rdv,
            f"rdv-{patient.ins}",
            patient.attachments,
        ]
        lines.append(delimiter.join(cells))
    return "\r\n".join(lines) + "\r\n"


def write_campaign(
    directory: Path,
    recipients: str | bytes,
    *,
    campaign_id: str = "convocations-test",
    mailbox: str = SENDER,
    subject: str = "Votre convocation du {{ date_rdv }}",
    body: str = "Bonjour {{ prenom }} {{ nom }},\nvous êtes attendu(e) le {{ date_rdv }}.\n",
    extra: str = "",
    files: dict[str, bytes] | None = None,
) -> Path:
    """A campaign directory (campaign.toml, patients.csv, the files named); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = recipients.encode() if isinstance(recipients, str) else recipients
    (directory / "patients.csv").write_bytes(data)
    for name, content in (files or {}).items():
        (directory / name).write_bytes(content)
    identifier = f'id = "{campaign_id}"\n' if campaign_id else ""
    (directory / "campaign.toml").write_text(
        f'{identifier}kind = "convocation"\nmailbox = "{mailbox}"\n'
        f'recipients = "patients.csv"\nsubject = {subject!r}\n'
        f'body = """{body}"""\n{extra}',
        encoding="utf-8",
    )
    return directory


async def inbox_messages(store: Store, address: str) -> list[bytes]:
    """The messages in a mailbox's INBOX, in UID order."""
    account = await store.accounts.by_address(address)
    folder = await store.folders.get(account.id, "INBOX")
    return [
        await store.messages.read(folder.id, uid) for uid in await store.messages.uids(folder.id)
    ]


async def inbox_message_ids(store: Store, address: str) -> list[str]:
    """The Message-IDs in a mailbox's INBOX (one per stored message)."""
    found = []
    for raw in await inbox_messages(store, address):
        for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                found.append(line.split(b":", 1)[1].strip().decode())
    return found


@contextlib.asynccontextmanager
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A database URL for `pli` processes (the mail store has no schema setting): "" on SQLite
    (the file in data_dir), else a fresh PostgreSQL database, dropped at the end."""
    if not is_postgresql(database_url):
        yield ""
        return
    import asyncpg

    plain = database_url.replace("postgresql+asyncpg", "postgresql")
    name = f"bulk_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(plain)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = plain.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(plain)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def write_process_config(
    directory: Path, database: str, *, bulk: dict[str, Any] | None = None
) -> Settings:
    """A pli.toml for `pli bulk …` processes: the test PKI, the demo domains, a DKIM key, the
    whitelist, ``database`` ("" for the SQLite file of ``directory``)."""
    pki = session_pki()
    sections: dict[str, dict[str, Any]] = {"bulk": dict(bulk or {})}
    if database:
        sections["database"] = {"url": database}
    settings = write_settings(directory, pki, sections=sections)
    settings.whitelist.path.parent.mkdir(parents=True, exist_ok=True)
    settings.whitelist.path.write_bytes(
        pki.whitelist_xml({DEMO_DOMAIN: [pki.operator], CITIZEN_DOMAIN: [pki.operator]})
    )
    generate_key(settings.dkim.key, settings.dkim.algorithm)
    return settings
