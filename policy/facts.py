"""The facts the policy decides on: who sends, who receives, what is known of them and the message.

Callers (the SMTP front ends, the webmail, the bulk sender, ``pli policy explain``) gather these
facts from the store, the directory and the message, then ask :func:`pli.policy.engine.evaluate`.
Every type here is a small frozen dataclass with slots: cheap to build, safe to share, hashable.

What this module must not do: look anything up. A fact that could not be gathered (the store is
down) is stated as such (``ProfileStatus.UNAVAILABLE``, ``ExchangeStatus.UNAVAILABLE``,
``Unavailable.UNAVAILABLE``) and the engine defers; it never guesses.

Two moments (architecture.md § Policy): at RCPT the caller knows the envelope facts only and
leaves ``Facts.message`` as None; at DATA it adds :class:`MessageTraits`. The same rules run at
both moments; the rules that need the message (P7, the end of an exchange) run only when it is
there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from pli.config.schema import PolicySection

from .ins import InsProblem, ins_problem


class PartyKind(StrEnum):
    """What an address is, for the policy (mssante.md §3)."""

    PER = "PER"  # nominative mailbox of one professional (RPPS)
    ORG = "ORG"  # organisational mailbox: a service, a secretariat, a pharmacy (FINESS/SIRET)
    APP = "APP"  # applicative mailbox: software sending automatically
    # A mailbox of a trust-space domain whose type the directory does not give (unlisted, or a
    # type such as CAB that has no rule of its own): a professional, with PER's rights.
    PRO = "PRO"
    CITIZEN = "citizen"  # <INS>@ the citizen domain (Mon espace santé)
    EXTERNAL = "external"  # anything outside the trust space
    # The null reverse-path MAIL FROM:<> of delivery reports and read receipts (RFC 5321 §4.5.5,
    # RFC 3464, RFC 8098). Only ever a sender.
    NULL = "null"

    @property
    def is_professional(self) -> bool:
        return self in _PROFESSIONAL_KINDS


_PROFESSIONAL_KINDS = frozenset({PartyKind.PER, PartyKind.ORG, PartyKind.APP, PartyKind.PRO})
#: Mailbox types of the national directory with a kind of their own (mssante.md §3).
DIRECTORY_TYPES = {"PER": PartyKind.PER, "ORG": PartyKind.ORG, "APP": PartyKind.APP}


class ProfileStatus(StrEnum):
    """The Mon espace santé profile behind a citizen address (mssante.md §4; policy P1)."""

    OPEN = "open"  # activated, or created without opposition: the mailbox exists
    CLOSED = "closed"  # closed by its holder (or after death): receives nothing
    OPPOSED = "opposed"  # its holder opposed the creation of Mon espace santé: receives nothing
    UNKNOWN = "unknown"  # no profile has this INS
    UNAVAILABLE = "unavailable"  # the lookup failed (temporary: the engine defers)
    # The citizen domain is not served here (domains.citizen_enabled = false): the operator that
    # hosts it checks the profile; mail to it is relayed.
    REMOTE = "remote"


class ExchangeStatus(StrEnum):
    """The exchange between one professional mailbox and one citizen (policy P2, P4)."""

    NONE = "none"  # that mailbox never wrote to that citizen
    OPEN = "open"  # it wrote, and its last message did not end the exchange
    ENDED = "ended"  # its last message ended the exchange ([FIN] or X-MSS-MES: FIN)
    UNAVAILABLE = "unavailable"  # the lookup failed (temporary: the engine defers)


class Unavailable(Enum):
    """A fact whose lookup failed; the engine defers rather than guess."""

    UNAVAILABLE = "unavailable"


UNAVAILABLE = Unavailable.UNAVAILABLE


class ActorRole(StrEnum):
    """Who acts in a citizen's mailbox (policy P9)."""

    HOLDER = "holder"  # the citizen themself
    LEGAL_REPRESENTATIVE = "legal-representative"  # a parent of a minor, a guardian
    CAREGIVER = "caregiver"  # a relative the citizen (or a court) authorised


@dataclass(frozen=True, slots=True)
class Party:
    """One side of a message: its address, its kind, and what the directory or the profile says.

    Build it with :meth:`professional`, :meth:`citizen`, :meth:`external` or :meth:`null`. The
    address is kept as given (for logs); comparisons use :func:`exchange_key`.
    """

    address: str
    kind: PartyKind
    #: Directory: an ORG mailbox of a pharmacy (officine) listed in the directory (policy P3).
    pharmacy: bool = False
    #: Directory: an APP mailbox that declares itself no-reply (policy P6).
    no_reply: bool = False
    #: Citizens: the profile behind the address (policy P1).
    profile: ProfileStatus | None = None
    #: Citizens: legal representatives (parents, guardian) read this mailbox (policy P7, P9).
    represented: bool = False
    #: Citizens: the INS matricule, the address's local part in capitals (set from the address;
    #: "" for other kinds).
    ins: str = field(default="", init=False, compare=False)
    #: Citizens: what is wrong with the INS (None: well formed), checked once, here.
    ins_problem: InsProblem | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind is PartyKind.CITIZEN:
            if self.profile is None:
                raise ValueError("a citizen party needs its profile status")
            ins = citizen_ins(self.address)
            object.__setattr__(self, "ins", ins)
            object.__setattr__(self, "ins_problem", ins_problem(ins))
        elif self.kind is PartyKind.NULL and self.address:
            raise ValueError("the null reverse-path has no address")

    @classmethod
    def professional(
        cls, address: str, kind: PartyKind, *, pharmacy: bool = False, no_reply: bool = False
    ) -> Party:
        if not kind.is_professional:
            raise ValueError(f"{kind} is not a professional mailbox kind")
        return cls(address, kind, pharmacy=pharmacy, no_reply=no_reply)

    @classmethod
    def citizen(cls, address: str, profile: ProfileStatus, *, represented: bool = False) -> Party:
        return cls(address, PartyKind.CITIZEN, profile=profile, represented=represented)

    @classmethod
    def external(cls, address: str) -> Party:
        return cls(address, PartyKind.EXTERNAL)

    @classmethod
    def null(cls) -> Party:
        """The null reverse-path ``<>`` (delivery reports, read receipts)."""
        return cls("", PartyKind.NULL)

    @property
    def is_pharmacy(self) -> bool:
        """Policy P3: a pharmacy's ORG mailbox listed in the directory (a PER pharmacist is not)."""
        return self.pharmacy and self.kind is PartyKind.ORG


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the store knows of the exchange between a professional mailbox and a citizen.

    ``since`` is when the current status began (the opening or ending message's time, seconds
    since the epoch) and ``message_id`` that message's Message-ID, both for explanations.
    """

    status: ExchangeStatus
    since: float | None = None
    message_id: str = ""


NO_EXCHANGE = Exchange(ExchangeStatus.NONE)
EXCHANGE_UNAVAILABLE = Exchange(ExchangeStatus.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class Actor:
    """The identity that acts in a citizen's mailbox (policy P9), recorded with the decision.

    ``mandate_active`` is the caller's finding, at the time of the action, that this identity
    holds its role for this citizen (parental authority, a caregiver's mandate); the holder's own
    mandate is always active. False refuses the action.
    """

    identity: str
    role: ActorRole = ActorRole.HOLDER
    mandate_active: bool = True


@dataclass(frozen=True, slots=True)
class MessageTraits:
    """What the policy reads in a message (DATA moment). The caller decodes headers first:
    ``subject`` is the RFC 2047-decoded Subject, ``mss_mes`` every ``X-MSS-MES`` value."""

    subject: str = ""
    #: Values of the X-MSS-MES header(s) (Référentiel #2 ECO.2.2.8; mssante.md §5).
    mss_mes: tuple[str, ...] = ()
    message_id: str = ""
    #: Message-IDs of In-Reply-To and References: recorded and explained, never decisive (an
    #: exchange is per mailbox pair, and these headers are written by the sender's client).
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    #: A document of the message is flagged invisible to the patient (policy P7; see documents.py).
    invisible_to_patient: bool = False
    #: A document of the message is flagged invisible to the patient's legal representatives.
    invisible_to_representatives: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything one per-recipient decision needs.

    - ``exchange``: the exchange of the professional/citizen pair of this message (see
      :func:`exchange_pair`); irrelevant for other pairs.
    - ``last_dispensation``: when the citizen sender last had a dispensation at the pharmacy
      recipient (seconds since the epoch), None if never; only read under
      ``pharmacy_rule = "dispensation"`` (policy P3).
    - ``actor``: who acted for a citizen sender (policy P9); None when unknown (mail from another
      operator), which counts as the holder.
    - ``now``: the time of the decision, seconds since the epoch (the clock is the caller's).
    """

    sender: Party
    recipient: Party
    now: float
    exchange: Exchange = NO_EXCHANGE
    last_dispensation: float | Unavailable | None = None
    actor: Actor | None = None
    message: MessageTraits | None = None


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The settings the rules read (``[policy]`` of the configuration)."""

    pharmacy_rule: str = "dispensation"  # "listed" or "dispensation" (policy P3)
    dispensation_window: float = 365 * 86400.0  # seconds (policy P3; mssante.md §4: past year)

    def __post_init__(self) -> None:
        if self.pharmacy_rule not in ("listed", "dispensation"):
            raise ValueError("pharmacy_rule is 'listed' or 'dispensation'")

    @classmethod
    def from_section(cls, section: PolicySection) -> PolicyConfig:
        return cls(section.pharmacy_rule, section.dispensation_window)


DEFAULT_CONFIG = PolicyConfig()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def citizen_ins(address: str) -> str:
    """The INS of a citizen address: its local part, in capitals (2a → 2A)."""
    return address.rpartition("@")[0].upper()


def party_kind(
    address: str, *, citizen_domain: str, directory_type: str | None, in_trust_space: bool
) -> PartyKind:
    """Classify an address: the empty reverse-path, then the citizen domain, then the directory's
    mailbox type, then the trust space (our professional domains and the whitelist's), else
    external. ``directory_type`` is the directory's type of the address (PER, ORG, APP, CAB…)."""
    if not address:
        return PartyKind.NULL
    if domain_of(address) == citizen_domain.lower():
        return PartyKind.CITIZEN
    if not in_trust_space:
        return PartyKind.EXTERNAL
    return DIRECTORY_TYPES.get((directory_type or "").upper(), PartyKind.PRO)


def exchange_key(professional: str, citizen: str) -> tuple[str, str]:
    """The identity of an exchange (policy P4): the professional mailbox's address in lower case,
    and the citizen's INS in capitals. The store keys its record by this pair."""
    return professional.lower(), citizen_ins(citizen)


def exchange_pair(sender: Party, recipient: Party) -> tuple[str, str] | None:
    """The exchange a message between these parties belongs to (None: none, e.g. pro to pro).
    Callers look it up and pass it as ``Facts.exchange``."""
    if sender.kind is PartyKind.CITIZEN and recipient.kind.is_professional:
        return exchange_key(recipient.address, sender.address)
    if sender.kind.is_professional and recipient.kind is PartyKind.CITIZEN:
        return exchange_key(sender.address, recipient.address)
    return None
