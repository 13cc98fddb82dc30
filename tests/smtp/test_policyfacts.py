"""The glue from the store to the policy's facts (mailbox/policyfacts.py): parties, exchanges,
dispensations, actors, message traits, effects; lookups that fail give unavailable facts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from plitest.pki import session_pki
from plitest.store import build_message, demo, open_test_store
from plitest.xdm import CITIZEN, XdmDoc, build_xdm, cda_document
from sqlalchemy.exc import OperationalError

from pli.certs.whitelist import Whitelist, parse_whitelist
from pli.mailbox.mime.cache import parse_message
from pli.mailbox.policyfacts import FactsConfig, PolicyFacts, message_traits
from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN, PHARMACY_ADDRESS, DemoAccounts
from pli.mailbox.store.records import ProfileStatus as Stored
from pli.policy.facts import (
    ActorRole,
    ExchangeStatus,
    MessageTraits,
    Party,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
)
from pli.policy.ins import make_ins
from pli.policy.reasons import Reason

CITIZENS = "patient.mssante.fr"
LISTED = "clinique-demo.mssante.fr"


def config(**overrides: object) -> FactsConfig:
    values: dict[str, object] = {
        "citizen_domain": CITIZENS,
        "citizen_enabled": True,
        "professional_domains": frozenset({DEMO_DOMAIN}),
        "policy": PolicyConfig(),
    }
    return FactsConfig(**{**values, **overrides})  # type: ignore[arg-type]


def whitelist() -> Whitelist:
    pki = session_pki()
    return parse_whitelist(
        pki.whitelist_xml({LISTED: [pki.operator], "pharmacie-demo.mssante.fr": [pki.operator]})
    )


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Store, DemoAccounts, PolicyFacts]]:
    async with open_test_store(database_url, tmp_path) as store:
        accounts = await demo(store)
        listed = whitelist()
        yield store, accounts, PolicyFacts(store, config(), lambda: listed)


async def test_parties(world: tuple[Store, DemoAccounts, PolicyFacts]) -> None:
    store, accounts, facts = world
    assert await facts.party("") == Party.null()
    paul = await facts.party(accounts.parent.address)
    assert (paul.kind, paul.profile, paul.represented) == (
        PartyKind.CITIZEN,
        ProfileStatus.OPEN,
        False,
    )
    lea = await facts.party(accounts.child.address)
    assert lea.represented  # a parent is her guardian: legal representatives read her mail
    unknown = await facts.party(f"{make_ins('1991075123456')}@{CITIZENS}")
    assert unknown.profile is ProfileStatus.UNKNOWN
    await store.accounts.set_profile_status(accounts.parent.ins or "", Stored.CLOSED)
    assert (await facts.party(accounts.parent.address)).profile is ProfileStatus.CLOSED
    assert (await facts.party(accounts.doctor.address)).kind is PartyKind.PER
    assert (await facts.party(accounts.secretariat.address)).kind is PartyKind.ORG
    reports = await facts.party(accounts.reports.address)
    assert (reports.kind, reports.no_reply) == (PartyKind.APP, True)
    pharmacy = await facts.party(PHARMACY_ADDRESS)
    assert pharmacy.is_pharmacy
    assert (
        await facts.party(f"someone@{LISTED}")
    ).kind is PartyKind.PRO  # listed, not in the directory
    assert (await facts.party("someone@gmail.com")).kind is PartyKind.EXTERNAL


async def test_a_citizen_domain_served_elsewhere_is_remote(
    world: tuple[Store, DemoAccounts, PolicyFacts],
) -> None:
    store, accounts, _ = world
    facts = PolicyFacts(store, config(citizen_enabled=False), whitelist)
    assert (await facts.party(accounts.parent.address)).profile is ProfileStatus.REMOTE


async def test_without_a_whitelist_the_trust_space_is_unknown_and_the_policy_defers(
    world: tuple[Store, DemoAccounts, PolicyFacts],
) -> None:
    store, accounts, _ = world
    facts = PolicyFacts(store, config(), lambda: None)
    decided = await facts.decide(f"someone@{LISTED}", accounts.parent.address)
    assert decided.facts is None
    assert (decided.decision.reason, decided.decision.smtp_code) == (Reason.FACTS_UNAVAILABLE, 451)
    local = await facts.decide(accounts.doctor.address, accounts.parent.address)
    assert local.decision.accepted  # our own domains need no whitelist


async def test_exchanges_from_conversations(world: tuple[Store, DemoAccounts, PolicyFacts]) -> None:
    store, accounts, facts = world
    lea, doctor = (
        await facts.party(accounts.child.address),
        await facts.party(accounts.doctor.address),
    )
    assert (await facts.gather(lea, doctor)).exchange.status is ExchangeStatus.NONE
    opened = datetime(2026, 1, 5, tzinfo=UTC)
    await store.conversations.record_professional_message(
        doctor.address, lea.ins, "m1", ends=False, at=opened
    )
    exchange = (await facts.gather(lea, doctor)).exchange
    assert (exchange.status, exchange.since) == (ExchangeStatus.OPEN, opened.timestamp())
    ended = opened + timedelta(days=1)
    await store.conversations.record_professional_message(
        doctor.address, lea.ins, "fin", ends=True, at=ended
    )
    exchange = (await facts.gather(doctor, lea)).exchange
    assert (exchange.status, exchange.message_id) == (ExchangeStatus.ENDED, "fin")


async def test_a_conversation_only_the_citizen_wrote_in_is_no_exchange(
    world: tuple[Store, DemoAccounts, PolicyFacts],
) -> None:
    store, accounts, facts = world
    paul, pharmacy = await facts.party(accounts.parent.address), await facts.party(PHARMACY_ADDRESS)
    await store.conversations.record_citizen_message(PHARMACY_ADDRESS, paul.ins, "q1")
    assert (await facts.gather(paul, pharmacy)).exchange.status is ExchangeStatus.NONE


async def test_the_last_dispensation(world: tuple[Store, DemoAccounts, PolicyFacts]) -> None:
    _, accounts, facts = world
    paul, lea = (
        await facts.party(accounts.parent.address),
        await facts.party(accounts.child.address),
    )
    pharmacy = await facts.party(PHARMACY_ADDRESS)
    last = (await facts.gather(paul, pharmacy)).last_dispensation
    assert isinstance(last, float)
    assert (
        timedelta(days=29)
        < datetime.now(UTC) - datetime.fromtimestamp(last, UTC)
        < timedelta(days=31)
    )
    assert (await facts.gather(lea, pharmacy)).last_dispensation is None
    assert (
        await facts.decide(paul.address, PHARMACY_ADDRESS)
    ).decision.reason is Reason.CITIZEN_TO_PHARMACY


async def test_a_failed_lookup_gives_unavailable_facts(
    world: tuple[Store, DemoAccounts, PolicyFacts], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, accounts, facts = world

    async def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(store.conversations, "get", broken)
    monkeypatch.setattr(store.directory, "last_dispensation", broken)
    paul = await facts.party(accounts.parent.address)
    assert (
        await facts.gather(paul, await facts.party(accounts.doctor.address))
    ).exchange.status is ExchangeStatus.UNAVAILABLE
    decided = await facts.decide(paul.address, accounts.doctor.address)
    assert decided.decision.reason is Reason.FACTS_UNAVAILABLE
    monkeypatch.setattr(store.accounts, "find", broken)
    assert (await facts.party(accounts.parent.address)).profile is ProfileStatus.UNAVAILABLE


async def test_actors(world: tuple[Store, DemoAccounts, PolicyFacts]) -> None:
    _, accounts, facts = world
    holder = await facts.actor(accounts.parent, accounts.parent)
    assert holder.role is ActorRole.HOLDER
    parent = await facts.actor(accounts.parent, accounts.child)
    assert (parent.role, parent.mandate_active) == (ActorRole.LEGAL_REPRESENTATIVE, True)
    stranger = await facts.actor(accounts.doctor, accounts.child)
    assert not stranger.mandate_active


async def test_recording_effects(world: tuple[Store, DemoAccounts, PolicyFacts]) -> None:
    store, accounts, facts = world
    ins = accounts.child.ins or ""
    ending = MessageTraits(subject="[FIN]", message_id="end@x")
    decided = await facts.decide(accounts.doctor.address, accounts.child.address, message=ending)
    assert decided.facts is not None
    async with store.transaction() as tx:
        await facts.record(decided.facts, decided.decision, tx=tx)
    conversation = await store.conversations.get(accounts.doctor.address, ins)
    assert conversation is not None and not conversation.is_open
    reply = await facts.decide(accounts.child.address, accounts.doctor.address)
    assert reply.decision.reason is Reason.THREAD_CLOSED
    reopen = await facts.decide(
        accounts.doctor.address, accounts.child.address, message=MessageTraits(subject="Suite")
    )
    assert reopen.facts is not None
    async with store.transaction() as tx:
        await facts.record(reopen.facts, reopen.decision, tx=tx)
    assert (await facts.decide(accounts.child.address, accounts.doctor.address)).decision.accepted


def test_message_traits_of_a_raw_message() -> None:
    raw = build_message(
        subject="placeholder",
        message_id="<m1@x.fr>",
        in_reply_to="<m0@x.fr>",
        headers={"References": "<a@x> <m0@x.fr>", "X-MSS-MES": "autre"},
    )
    raw = raw.replace(b"Subject: placeholder", b"Subject: =?utf-8?q?=5BFIN=5D?=")
    raw = raw.replace(b"X-MSS-MES: autre", b"X-MSS-MES: autre\r\nX-MSS-MES:  fin ")
    traits = message_traits(raw)
    assert traits.subject == "[FIN]"
    assert traits.mss_mes == ("autre", "fin")
    assert (traits.message_id, traits.in_reply_to, traits.references) == (
        "m1@x.fr",
        ("m0@x.fr",),
        ("a@x", "m0@x.fr"),
    )
    assert not traits.invisible_to_patient
    assert message_traits(raw, parse_message(raw)) == traits  # the delivery's parse serves


@pytest.mark.parametrize(
    ("code", "patient", "representatives"),
    [
        ("N", False, False),
        ("INVISIBLE_PATIENT", True, False),
        ("INVISIBLE_REPRESENTANTS_LEGAUX", False, True),
    ],
)
def test_visibility_codes_of_an_ihe_xdm_attachment(
    code: str, patient: bool, representatives: bool
) -> None:
    package = build_xdm(
        [XdmDoc(cda_document(CITIZEN), confidentiality=((code, "1.2.250.1.213.1.1.4.13"),))]
    )
    message = EmailMessage()
    message["From"] = f"dr.martin@{DEMO_DOMAIN}"
    message["To"] = f"{CITIZEN}@{CITIZENS}"
    message["Subject"] = "Compte rendu"
    message.set_content("Ci-joint.")
    message.add_attachment(package, maintype="application", subtype="zip", filename="IHE_XDM.zip")
    raw = message.as_bytes()
    traits = message_traits(raw)
    assert (traits.invisible_to_patient, traits.invisible_to_representatives) == (
        patient,
        representatives,
    )
    assert message_traits(raw, parse_message(raw)) == traits  # the delivery's parse serves
