"""Test helpers for bulk campaigns: citizens to write to, recipients files, campaign
directories on disk, and the Message-IDs a mailbox holds (to count deliveries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN
from pli.mailbox.store.records import ProfileStatus
from pli.policy.ins import make_ins
from plitest.smtp import CITIZEN_DOMAIN

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


async def inbox_message_ids(store: Store, address: str) -> list[str]:
    """The Message-IDs in a mailbox's INBOX (one per stored message)."""
    account = await store.accounts.by_address(address)
    folder = await store.folders.get(account.id, "INBOX")
    found = []
    for uid in await store.messages.uids(folder.id):
        raw = await store.messages.read(folder.id, uid)
        for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                found.append(line.split(b":", 1)[1].strip().decode())
    return found
