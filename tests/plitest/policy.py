"""Builders of policy facts for tests (policy, store, SMTP and webmail tiers).

Addresses look like the real ones: professional mailboxes under ``*.mssante.fr`` domains and
citizens as ``<INS>@patient.mssante.fr`` with valid INS keys.
"""

from __future__ import annotations

from pli.policy.facts import (
    Actor,
    ActorRole,
    Exchange,
    ExchangeStatus,
    Facts,
    MessageTraits,
    Party,
    PartyKind,
    ProfileStatus,
)
from pli.policy.ins import make_ins

CITIZEN_DOMAIN = "patient.mssante.fr"
NOW = 1_750_000_000.0  # a fixed clock (2025-06-15)
DAY = 86400.0

#: Valid INS matricules (the first is ANS's example).
INS_ALICE = "146026322000196"
INS_BRUNO = make_ins("185022A123456")  # Corsican department
INS_CHILD = make_ins("2120575123456")


def citizen_address(ins: str) -> str:
    return f"{ins}@{CITIZEN_DOMAIN}"


def citizen(
    ins: str = INS_ALICE, profile: ProfileStatus = ProfileStatus.OPEN, *, represented: bool = False
) -> Party:
    return Party.citizen(citizen_address(ins), profile, represented=represented)


def per(name: str = "dr.martin", domain: str = "ch-exemple.mssante.fr") -> Party:
    return Party.professional(f"{name}@{domain}", PartyKind.PER)


def org(name: str = "cardiologie", domain: str = "ch-exemple.mssante.fr") -> Party:
    return Party.professional(f"{name}@{domain}", PartyKind.ORG)


def pharmacy(name: str = "officine", domain: str = "pharmacie-du-port.mssante.fr") -> Party:
    return Party.professional(f"{name}@{domain}", PartyKind.ORG, pharmacy=True)


def app(
    name: str = "cr-patient-noreply",
    domain: str = "ch-exemple.mssante.fr",
    *,
    no_reply: bool = True,
) -> Party:
    return Party.professional(f"{name}@{domain}", PartyKind.APP, no_reply=no_reply)


def external(address: str = "someone@gmail.com") -> Party:
    return Party.external(address)


def guardian(identity: str = "parent-1", *, active: bool = True) -> Actor:
    return Actor(identity, ActorRole.LEGAL_REPRESENTATIVE, mandate_active=active)


def exchange(status: ExchangeStatus, since: float | None = None, message_id: str = "") -> Exchange:
    return Exchange(status, NOW - 10 * DAY if since is None else since, message_id)


OPEN = Exchange(ExchangeStatus.OPEN, NOW - 10 * DAY, "<opening@ch-exemple.mssante.fr>")
ENDED = Exchange(ExchangeStatus.ENDED, NOW - 5 * DAY, "<fin@ch-exemple.mssante.fr>")


def message(subject: str = "Résultats", **traits: object) -> MessageTraits:
    return MessageTraits(subject=subject, **traits)  # type: ignore[arg-type]


def facts(sender: Party, recipient: Party, **more: object) -> Facts:
    return Facts(sender, recipient, now=more.pop("now", NOW), **more)  # type: ignore[arg-type]
