"""The policy's facts, gathered from the store: the glue every way in (SMTP from another
operator, SMTP submission, the webmail, the bulk sender) uses before asking
:func:`pli.policy.engine.evaluate`, and the recording of what an accepted message changes.

- :meth:`PolicyFacts.party` classifies an address (policy/facts.py ``party_kind``): the null
  path; the citizen domain (the profile from the account: open, closed, opposed, unknown; remote
  when the citizen role is not served here; ``represented`` when a parent is the guardian); our
  professional domains and the whitelist's domains as the trust space, with the directory's type,
  pharmacy and no-reply flags; else external.
- :meth:`PolicyFacts.gather` adds the exchange (conversations → ``Exchange``: the store's
  ``datetime`` becomes epoch seconds; a conversation the professional never wrote in, such as a
  citizen's first message to a pharmacy, is no exchange) and, for a citizen writing to a pharmacy
  under ``pharmacy_rule = "dispensation"``, the last dispensation.
- :meth:`PolicyFacts.actor` describes who acts (policy P9: a guardian's relationship → role).
- :func:`message_traits` reads what the DATA moment needs from the raw message (decoded subject,
  X-MSS-MES, Message-IDs, and the visibility codes of IHE_XDM attachments, policy P7).
- :meth:`PolicyFacts.record` writes the effects of a delivered message in the delivering
  transaction.

A lookup that fails gives the "unavailable" facts (the engine defers with 451 4.4.3), never a
guess; when even the kind of a party cannot be told, :meth:`decide` returns that decision itself.

What this module must not do: decide (the engine does) or speak a protocol.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from pli.certs.whitelist import Whitelist
from pli.config.schema import Settings
from pli.mailbox.mime.cache import MessageCache, attachments, message_ids
from pli.mailbox.mime.headers import HeaderSection, parse_header
from pli.mailbox.mime.structure import Part, iter_parts, parse_structure
from pli.mailbox.mime.text import decode_header_text
from pli.mailbox.store import Account, Store
from pli.mailbox.store.conversations import ConversationChange
from pli.mailbox.store.records import ProfileStatus as StoredProfile
from pli.mailbox.xdm import XdmPackage, read_xdm
from pli.policy.documents import restrictions
from pli.policy.effects import EffectKind, conversation_effects
from pli.policy.engine import evaluate
from pli.policy.facts import (
    EXCHANGE_UNAVAILABLE,
    NO_EXCHANGE,
    UNAVAILABLE,
    Actor,
    ActorRole,
    Exchange,
    ExchangeStatus,
    Facts,
    MessageTraits,
    Party,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
    Unavailable,
    domain_of,
    exchange_pair,
    party_kind,
)
from pli.policy.reasons import DECISIONS, Decision, Reason

if TYPE_CHECKING:
    from pli.mailbox.store import Transaction

log = structlog.get_logger(__name__)

#: Failures of a lookup that mean "unavailable" (the database or its files), not a bug.
LOOKUP_FAILURES = (SQLAlchemyError, OSError, TimeoutError)
#: A file name that marks an IHE_XDM package (mssante.md §5).
XDM_FILENAME = "ihe_xdm.zip"
_STORED_PROFILES = {
    StoredProfile.OPEN: ProfileStatus.OPEN,
    StoredProfile.CLOSED: ProfileStatus.CLOSED,
    StoredProfile.OPPOSED: ProfileStatus.OPPOSED,
}
_GUARDIAN_ROLES = {"parent": ActorRole.LEGAL_REPRESENTATIVE, "caregiver": ActorRole.CAREGIVER}
FACTS_UNAVAILABLE: Decision = DECISIONS[Reason.FACTS_UNAVAILABLE]


class _Unknown(Enum):
    UNKNOWN = "unknown"


#: "Not looked up yet" (None means looked up and absent).
UNKNOWN = _Unknown.UNKNOWN


class FactsUnavailable(Exception):
    """A fact needed to classify a party could not be looked up (temporary)."""


@dataclass(frozen=True, slots=True)
class FactsConfig:
    """What the glue reads of the settings."""

    citizen_domain: str
    citizen_enabled: bool
    professional_domains: frozenset[str]
    policy: PolicyConfig

    @classmethod
    def from_settings(cls, settings: Settings) -> FactsConfig:
        domains = settings.domains
        return cls(
            citizen_domain=domains.citizen,
            citizen_enabled=domains.citizen_enabled,
            professional_domains=frozenset(domains.professional)
            if domains.professional_enabled
            else frozenset(),
            policy=PolicyConfig.from_section(settings.policy),
        )

    def is_local(self, address: str) -> bool:
        """The address's domain is served here (mail for it is delivered into the store)."""
        domain = domain_of(address)
        if domain == self.citizen_domain:
            return self.citizen_enabled
        return domain in self.professional_domains


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision and the facts it was taken on (None: the facts could not be gathered)."""

    facts: Facts | None
    decision: Decision


def epoch(moment: datetime | None) -> float | None:
    """Store datetimes (aware UTC) → the policy's seconds since the epoch."""
    return moment.timestamp() if moment is not None else None


class PolicyFacts:
    def __init__(
        self,
        store: Store,
        config: FactsConfig,
        whitelist: Callable[[], Whitelist | None] = lambda: None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self._whitelist = whitelist
        self._clock = clock

    # -- parties -----------------------------------------------------------------------------

    def in_trust_space(self, address: str) -> bool:
        """Our professional domains, and every domain of the whitelist (FactsUnavailable when
        no whitelist was ever imported: the trust space is then unknown)."""
        domain = domain_of(address)
        if domain in self.config.professional_domains:
            return True
        whitelist = self._whitelist()
        if whitelist is None:
            raise FactsUnavailable("no whitelist: the trust space is unknown")
        return whitelist.has_domain(domain)

    async def party(self, address: str, *, account: Account | _Unknown | None = UNKNOWN) -> Party:
        """The policy's view of ``address`` (raises FactsUnavailable); ``account``: its
        account when the caller looked it up already."""
        if not address:
            return Party.null()
        if domain_of(address) == self.config.citizen_domain:
            return await self._citizen(address, account)
        if not self.in_trust_space(address):
            return Party.external(address)
        try:
            entry = await self.store.directory.lookup(address)
        except LOOKUP_FAILURES as error:
            raise FactsUnavailable(f"directory lookup failed: {type(error).__name__}") from None
        kind = party_kind(
            address,
            citizen_domain=self.config.citizen_domain,
            directory_type=entry.bal_type if entry else None,
            in_trust_space=True,
        )
        return Party.professional(
            address,
            kind,
            pharmacy=bool(entry and entry.pharmacy),
            no_reply=bool(entry and entry.no_reply),
        )

    async def _citizen(self, address: str, known: Account | _Unknown | None) -> Party:
        if not self.config.citizen_enabled:
            return Party.citizen(address, ProfileStatus.REMOTE)
        try:
            account = await self.store.accounts.find(address) if known is UNKNOWN else known
            represented = False
            if account is not None:
                guardians = await self.store.accounts.guardians(account.id)
                represented = any(g.relationship == "parent" for g in guardians)
        except LOOKUP_FAILURES as error:
            log.warning("policy-facts-unavailable", what="citizen", error=type(error).__name__)
            return Party.citizen(address, ProfileStatus.UNAVAILABLE)
        if account is None or not account.is_citizen:
            return Party.citizen(address, ProfileStatus.UNKNOWN)
        status = _STORED_PROFILES.get(account.profile_status or StoredProfile.CLOSED)
        return Party.citizen(address, status or ProfileStatus.CLOSED, represented=represented)

    async def actor(self, account: Account, mailbox: Account) -> Actor:
        """Who acts in ``mailbox`` (policy P9): the holder, or a guardian with its role and
        whether the mandate still holds."""
        if account.id == mailbox.id or not mailbox.is_citizen:
            return Actor(account.address, ActorRole.HOLDER)
        for guardian in await self.store.accounts.guardians(mailbox.id):
            if guardian.account.id == account.id:
                role = _GUARDIAN_ROLES.get(guardian.relationship, ActorRole.CAREGIVER)
                return Actor(account.address, role, mandate_active=True)
        return Actor(account.address, ActorRole.CAREGIVER, mandate_active=False)

    # -- facts and decisions -----------------------------------------------------------------

    async def gather(
        self,
        sender: Party,
        recipient: Party,
        *,
        actor: Actor | None = None,
        message: MessageTraits | None = None,
        now: float | None = None,
    ) -> Facts:
        now = self._clock() if now is None else now
        exchange = await self._exchange(sender, recipient)
        last: float | Unavailable | None = None
        if (
            sender.kind is PartyKind.CITIZEN
            and recipient.is_pharmacy
            and self.config.policy.pharmacy_rule == "dispensation"
        ):
            last = await self._last_dispensation(sender, recipient)
        return Facts(sender, recipient, now, exchange, last, actor, message)

    async def _exchange(self, sender: Party, recipient: Party) -> Exchange:
        pair = exchange_pair(sender, recipient)
        if pair is None:
            return NO_EXCHANGE
        try:
            conversation = await self.store.conversations.get(*pair)
        except LOOKUP_FAILURES as error:
            log.warning("policy-facts-unavailable", what="exchange", error=type(error).__name__)
            return EXCHANGE_UNAVAILABLE
        if conversation is None:
            return NO_EXCHANGE
        if not conversation.is_open:
            return Exchange(
                ExchangeStatus.ENDED,
                epoch(conversation.ended_at),
                conversation.ended_message_id or "",
            )
        if not conversation.professional_has_written:
            return NO_EXCHANGE  # e.g. only the citizen wrote (to a pharmacy, policy P3)
        return Exchange(
            ExchangeStatus.OPEN, epoch(conversation.reopened_at or conversation.opened_at)
        )

    async def _last_dispensation(
        self, citizen: Party, pharmacy: Party
    ) -> float | Unavailable | None:
        try:
            last = await self.store.directory.last_dispensation(citizen.ins, pharmacy.address)
        except LOOKUP_FAILURES as error:
            log.warning("policy-facts-unavailable", what="dispensation", error=type(error).__name__)
            return UNAVAILABLE
        return epoch(last)

    async def decide(
        self,
        sender: str,
        recipient: str,
        *,
        actor: Actor | None = None,
        message: MessageTraits | None = None,
        recipient_account: Account | _Unknown | None = UNKNOWN,
    ) -> Decided:
        """Gather the facts for one recipient (one read transaction) and ask the engine;
        ``recipient_account``: the recipient's account when the caller looked it up."""
        try:
            async with self.store.db.snapshot(quick=True):
                facts = await self.gather(
                    await self.party(sender),
                    await self.party(recipient, account=recipient_account),
                    actor=actor,
                    message=message,
                )
        except FactsUnavailable as error:
            log.warning("policy-facts-unavailable", what="party", error=str(error))
            return Decided(None, FACTS_UNAVAILABLE)
        except LOOKUP_FAILURES as error:
            log.warning("policy-facts-unavailable", what="snapshot", error=type(error).__name__)
            return Decided(None, FACTS_UNAVAILABLE)
        return Decided(facts, evaluate(facts, self.config.policy))

    def with_message(
        self, decided: Decided, message: MessageTraits, *, actor: Actor | None = None
    ) -> Decided:
        """The DATA moment from the envelope moment's facts: the same facts (no lookup), the
        message's traits added, decided again now. Unavailable facts stay unavailable."""
        if decided.facts is None:
            return decided
        facts = replace(
            decided.facts,
            message=message,
            now=self._clock(),
            actor=actor if actor is not None else decided.facts.actor,
        )
        return Decided(facts, evaluate(facts, self.config.policy))

    async def record(self, facts: Facts, decision: Decision, *, tx: Transaction) -> None:
        """What a delivered message changes (policy P2, P4), in the delivering transaction:
        a professional's message opens, reopens or ends the exchange; a citizen's accepted
        message is recorded in it."""
        await self.store.conversations.record_many(changes(facts, decision), tx=tx)


def changes(facts: Facts, decision: Decision) -> list[ConversationChange]:
    """The conversation changes of one accepted message (:meth:`PolicyFacts.record`; a group
    commit records those of all its messages at once with ``record_many``, in order)."""
    found = [
        ConversationChange(
            effect.professional,
            effect.citizen_ins,
            effect.message_id,
            ends=effect.kind is EffectKind.ENDED,
            at=datetime.fromtimestamp(effect.at, UTC),
        )
        for effect in conversation_effects(facts, decision)
    ]
    pair = exchange_pair(facts.sender, facts.recipient)
    if decision.accepted and pair is not None and facts.sender.kind is PartyKind.CITIZEN:
        found.append(
            ConversationChange(
                *pair,
                facts.message.message_id if facts.message else "",
                from_citizen=True,
                at=datetime.fromtimestamp(facts.now, UTC),
            )
        )
    return found


# -- message traits (DATA moment) -------------------------------------------------------------


def message_traits(raw: bytes, parsed: MessageCache | None = None) -> MessageTraits:
    """What the policy reads in a message: decoded subject, every X-MSS-MES value, Message-ID,
    In-Reply-To, References, and the IHE_XDM visibility flags (policy P7). Never raises.
    ``parsed``: ``parse_message(raw)`` when made already (its header and MIME tree serve)."""
    header = parsed.header if parsed is not None else parse_header(raw)
    fields = header.fields
    invisible_patient = invisible_representatives = False
    codes = xdm_confidentiality_codes(raw, header, parsed.structure if parsed else None)
    if codes:
        invisible_patient, invisible_representatives = restrictions(codes)
    return MessageTraits(
        subject=decode_header_text(header.first("subject")) or "",
        mss_mes=tuple(fields.get("x-mss-mes", ())),
        message_id=next(iter(message_ids(header.first("message-id"))), ""),
        in_reply_to=tuple(message_ids(header.first("in-reply-to"))),
        references=tuple(message_ids(header.first("references"))),
        invisible_to_patient=invisible_patient,
        invisible_to_representatives=invisible_representatives,
    )


#: Messages above this size have their traits read in a worker thread (an IHE_XDM package is
#: unzipped and its metadata parsed: the event loop keeps serving).
TRAITS_IN_THREAD_ABOVE = 256 * 1024


async def read_traits(raw: bytes, parsed: MessageCache | None = None) -> MessageTraits:
    """:func:`message_traits`, in a worker thread for a large message."""
    if len(raw) > TRAITS_IN_THREAD_ABOVE:
        return await asyncio.to_thread(message_traits, raw, parsed)
    return message_traits(raw, parsed)


def xdm_confidentiality_codes(
    raw: bytes, header: HeaderSection | None = None, structure: Part | None = None
) -> list[str]:
    """Every confidentialityCode of the documents of the message's IHE_XDM.zip attachments
    (an unreadable package gives none: the filing reports it); ``header`` and ``structure``:
    the message's, when parsed already."""
    if structure is None:
        structure = parse_structure(raw, header)
    parts = dict(iter_parts(structure))
    codes: list[str] = []
    for attachment in attachments(structure):
        if (attachment.filename or "").lower() != XDM_FILENAME:
            continue
        part = parts.get(attachment.section)
        if part is None:
            continue
        start, end = part["body"]
        body = raw[start:end]
        if part["encoding"] == "BASE64":
            try:
                body = base64.b64decode(body)
            except (binascii.Error, ValueError):
                continue
        result = read_xdm(body)
        if isinstance(result, XdmPackage):
            codes += [
                code.code for document in result.documents for code in document.confidentiality
            ]
        else:
            log.info("xdm-unreadable", reason=result.reason.value)
    return codes


async def facts_from_store(
    settings: Settings,
    sender: str,
    recipient: str,
    *,
    message: MessageTraits | None,
    actor: Actor | None,
    now: float,
) -> Facts:
    """The facts of one message as the server would gather them, for ``pli policy explain``
    (the configuration's store and whitelist). Raises FactsUnavailable."""
    from pli.certs.whitelist_store import WhitelistStore

    store = await Store.open(settings, migrate=False)
    try:
        facts = PolicyFacts(
            store,
            FactsConfig.from_settings(settings),
            WhitelistStore.from_settings(settings.whitelist).current,
        )
        sender = "" if sender == "<>" else sender
        async with store.db.snapshot():
            return await facts.gather(
                await facts.party(sender),
                await facts.party(recipient),
                actor=actor,
                message=message,
                now=now,
            )
    finally:
        await store.close()
