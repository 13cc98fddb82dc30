"""Demo data for ``pli init --demo`` and ``pli serve --dev``: a few accounts of every kind, the
directory entries the policy needs, and a few messages. Idempotent (skips what exists).

Development passwords are fixed and documented (never use them elsewhere): every demo account's
password is :data:`DEMO_PASSWORD`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy.engine import make_url

from pli.config.schema import Settings
from pli.policy.ins import make_ins

from .accounts import hash_password
from .errors import AlreadyExists
from .messages import DeliveryTarget
from .records import Account, AccountKind, DirectoryEntry
from .service import Store

DEMO_DOMAIN = "hopital-demo.mssante.fr"
CITIZEN_DOMAIN = "patient.mssante.fr"
DEMO_PASSWORD = "demo-password-1234"  # noqa: S105 (documented development password)
PHARMACY_ADDRESS = "officine.centrale@pharmacie-demo.mssante.fr"
PHARMACY_STRUCTURE = "750000001"
# NIRs of fictitious people (sex, year, month, department, commune, order); keys computed.
PARENT_INS = make_ins("1800175123456")
CHILD_INS = make_ins("2150375123457")
CORSICAN_INS = make_ins("270062A004012")


@dataclass(frozen=True)
class DemoAccounts:
    doctor: Account
    secretariat: Account
    secretary: Account
    reports: Account
    parent: Account
    child: Account


async def _ensure(store: Store, address: str, create: object) -> Account:
    existing = await store.accounts.find(address)
    if existing is not None:
        return existing
    assert callable(create)
    account: Account = await create()
    return account


async def create_demo(store: Store, domain: str = DEMO_DOMAIN) -> DemoAccounts:
    accounts = store.accounts
    # One argon2 hash for every demo account (same password): hashing is deliberately slow.
    password_hash = await hash_password(DEMO_PASSWORD)

    async def professional(local: str, kind: AccountKind, **kwargs: object) -> Account:
        address = f"{local}@{domain}"

        async def create() -> Account:
            return await accounts.create(address, kind, password_hash=password_hash, **kwargs)  # type: ignore[arg-type]

        return await _ensure(store, address, create)

    async def citizen(ins: str, name: str, notify: str) -> Account:
        async def create() -> Account:
            return await accounts.create_citizen(
                ins,
                CITIZEN_DOMAIN,
                display_name=name,
                password_hash=password_hash,
                notification_address=notify,
            )

        return await _ensure(store, f"{ins}@{CITIZEN_DOMAIN}".lower(), create)

    doctor = await professional(
        "dr.martin",
        AccountKind.PER,
        display_name="Dr Claire Martin",
        rpps="10101010101",
        profession="Médecin",
    )
    secretary = await professional(
        "j.durand",
        AccountKind.PER,
        display_name="Julie Durand",
        rpps="10202020202",
        profession="Secrétaire médicale",
    )
    secretariat = await professional(
        "secretariat.cardiologie",
        AccountKind.ORG,
        display_name="Secrétariat de cardiologie",
        structure_id="750100001",
    )
    reports = await professional(
        "cr-patient-noreply",
        AccountKind.APP,
        display_name="Comptes rendus (ne pas répondre)",
        structure_id="750100001",
        no_reply=True,
    )
    with contextlib.suppress(AlreadyExists):
        await accounts.add_member(secretariat.id, secretary.id)
    parent = await citizen(PARENT_INS, "Paul Lefebvre", "paul.lefebvre@example.org")
    child = await citizen(CHILD_INS, "Léa Lefebvre", "paul.lefebvre@example.org")
    with contextlib.suppress(AlreadyExists):
        await accounts.add_guardian(child.id, parent.id, "parent")
    await store.directory.upsert(
        [
            DirectoryEntry(
                address=PHARMACY_ADDRESS,
                bal_type="ORG",
                display_name="Pharmacie Centrale",
                structure_id=PHARMACY_STRUCTURE,
                structure_name="Pharmacie Centrale",
                pharmacy=True,
            ),
            DirectoryEntry(
                address="dr.bernard@clinique-demo.mssante.fr",
                bal_type="PER",
                display_name="Dr Marc Bernard",
                profession="Cardiologue",
                rpps="10303030303",
            ),
        ],
        source="demo",
    )
    await store.directory.add_dispensation(
        parent.ins or "", PHARMACY_STRUCTURE, datetime.now(UTC) - timedelta(days=30)
    )
    inbox = await store.folders.get(parent.id, "INBOX")
    if (await store.folders.status(inbox.id)).exists == 0:
        await _demo_messages(store, doctor, reports, parent)
    return DemoAccounts(doctor, secretariat, secretary, reports, parent, child)


async def _demo_messages(store: Store, doctor: Account, reports: Account, parent: Account) -> None:
    first = EmailMessage()
    first["From"] = f"{doctor.display_name} <{doctor.address}>"
    first["To"] = parent.address
    first["Subject"] = "Votre rendez-vous de contrôle"
    first["Date"] = format_datetime(datetime.now(UTC))
    first["Message-ID"] = make_msgid(domain=DEMO_DOMAIN)
    first.set_content("Bonjour,\n\nVotre rendez-vous de contrôle est fixé au 12 mars à 10 h.\n")
    second = EmailMessage()
    second["From"] = f"{reports.display_name} <{reports.address}>"
    second["To"] = parent.address
    second["Subject"] = "Compte rendu de consultation"
    second["Date"] = format_datetime(datetime.now(UTC))
    second["Message-ID"] = make_msgid(domain=DEMO_DOMAIN)
    second["X-MSS-MES"] = "FIN"
    second.set_content("Veuillez trouver ci-joint votre compte rendu.\n")
    second.add_attachment(
        b"%PDF-1.4\n% demo\n", maintype="application", subtype="pdf", filename="compte-rendu.pdf"
    )
    for message, sender, ends in ((first, doctor, False), (second, reports, True)):
        raw = bytes(message)
        async with store.transaction() as tx:
            await store.messages.deliver(
                raw,
                [DeliveryTarget(parent.id), DeliveryTarget(sender.id, "Sent", ("\\Seen",))],
                tx=tx,
            )
            await store.conversations.record_professional_message(
                sender.address,
                parent.ins or "",
                str(message["Message-ID"]).strip("<>"),
                ends=ends,
                tx=tx,
            )
            await store.audit.record(
                sender.address,
                "deliver",
                mailbox=parent.address,
                request="demo message",
                result="delivered",
                tx=tx,
            )


def prepare_store(settings: Settings, *, demo: bool) -> list[str]:
    """The ``pli init`` step: migrate the database, and with ``demo`` add the demo data.
    Synchronous (``pli init`` runs outside an event loop); returns what was done."""

    async def run() -> list[str]:
        store = await Store.open(settings)
        try:
            done = [f"database ready: {_redacted(settings.database_url)}"]
            if demo:
                accounts = await create_demo(store, _demo_domain(settings))
                listed = ", ".join(
                    account.address
                    for account in (
                        accounts.doctor,
                        accounts.secretariat,
                        accounts.secretary,
                        accounts.reports,
                        accounts.parent,
                        accounts.child,
                    )
                )
                done.append(f"demo accounts (password {DEMO_PASSWORD!r}): {listed}")
            return done
        finally:
            await store.close()

    return asyncio.run(run())


def _demo_domain(settings: Settings) -> str:
    return settings.domains.professional[0] if settings.domains.professional else DEMO_DOMAIN


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
