"""The policy engine: ``evaluate(facts) -> Decision`` for one recipient of one message.

The rules P1-P9 of product.md are data: for each pair of party kinds (sender, recipient) a
:class:`Route` lists the checks to run in order, each tied to the rule it applies; the first check
that answers gives the decision, and when none does the route's ``otherwise`` reason applies.
:func:`evaluate` runs a route fast (no allocation: decisions are shared constants);
:func:`trace` runs the very same route and records every check, for ``pli policy explain``.

Routes (sender → recipient):

- professional → citizen: the INS is well formed, the profile is open (P1); at DATA, no document
  invisible to the patient, or to their legal representatives when these read the mailbox (P7).
- delivery report (null sender) → citizen: the same checks; such reports never open an exchange.
- citizen → professional: the acting guardian's mandate is active (P9), the sender's INS and
  profile are valid (P1), the mailbox is not no-reply (P6), then the exchange: open → accepted
  (P2), ended → refused (P4), none → the pharmacy exception (P3), else refused (P2).
- citizen → citizen, citizen → external: refused (P5).
- professional → professional, report → professional: accepted (MSSanté is pro-to-pro mail too).
- professional → external: refused: MSSanté mail stays in the trust space.
- external → anything: refused (the trust layer refuses such peers earlier; the policy agrees).

The exchange and its end are described in :mod:`pli.policy.effects` and docs/policy.md.

What this module must not do: look anything up, read the clock, or hold state. Facts in,
decision out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .facts import (
    DEFAULT_CONFIG,
    ActorRole,
    ExchangeStatus,
    Facts,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
    Unavailable,
)
from .reasons import DECISIONS, Decision, Reason, Rule

Check = Callable[[Facts, PolicyConfig], Reason | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One check of a route: the rule it applies, the question it answers (English, for
    explanations) and the function answering it (None: no objection, go on)."""

    rule: Rule
    question: str
    check: Check


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    steps: tuple[Step, ...]
    otherwise: Reason


# -- checks on a citizen recipient -----------------------------------------------------------

_PROFILE_REFUSALS = {
    ProfileStatus.UNKNOWN: Reason.INS_UNKNOWN,
    ProfileStatus.CLOSED: Reason.PROFILE_CLOSED,
    ProfileStatus.OPPOSED: Reason.PROFILE_OPPOSED,
    ProfileStatus.UNAVAILABLE: Reason.FACTS_UNAVAILABLE,
}


def _recipient_ins(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P1: a malformed INS address is refused, and says so
    return Reason.INS_MALFORMED if facts.recipient.ins_problem is not None else None


def _recipient_profile(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P1: closed, opposed, unknown: each its own permanent refusal
    profile = facts.recipient.profile
    return _PROFILE_REFUSALS.get(profile) if profile is not None else Reason.FACTS_UNAVAILABLE


def _visible_to_patient(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P7; mssante.md §4: documents flagged invisible are never sent to the patient
    message = facts.message
    if message is not None and message.invisible_to_patient:
        return Reason.INVISIBLE_TO_PATIENT
    return None


def _visible_to_representatives(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P7 with P9: the legal representatives read this mailbox
    message = facts.message
    if message is not None and message.invisible_to_representatives and facts.recipient.represented:
        return Reason.INVISIBLE_TO_REPRESENTATIVES
    return None


# -- checks on a citizen sender ----------------------------------------------------------------


def _mandate(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P9: a guardian has the citizen's rights while the mandate holds, and no more
    actor = facts.actor
    if actor is not None and not actor.mandate_active and actor.role is not ActorRole.HOLDER:
        return Reason.MANDATE_INACTIVE
    return None


def _sender_ins(facts: Facts, config: PolicyConfig) -> Reason | None:
    return Reason.SENDER_INS_MALFORMED if facts.sender.ins_problem is not None else None


def _sender_profile(facts: Facts, config: PolicyConfig) -> Reason | None:
    profile = facts.sender.profile
    if profile is ProfileStatus.OPEN or profile is ProfileStatus.REMOTE:
        return None
    if profile is ProfileStatus.UNAVAILABLE:
        return Reason.FACTS_UNAVAILABLE
    return Reason.SENDER_PROFILE_INACTIVE


def _not_no_reply(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P6: a no-reply mailbox never receives citizen mail, open exchange or not
    return Reason.NO_REPLY_MAILBOX if facts.recipient.no_reply else None


def _exchange(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P2: open → the citizen may write; policy P4: ended → refused
    exchange = facts.exchange
    status = exchange.status
    if status is ExchangeStatus.OPEN:
        return Reason.CITIZEN_REPLY
    if status is ExchangeStatus.UNAVAILABLE:
        return Reason.FACTS_UNAVAILABLE
    if status is ExchangeStatus.ENDED:
        if facts.recipient.is_pharmacy and config.pharmacy_rule == "dispensation":
            # A dispensation after the end is a new contact in the pharmacy: P3 decides again.
            last = facts.last_dispensation
            if isinstance(last, Unavailable):
                return Reason.FACTS_UNAVAILABLE
            if last is not None and exchange.since is not None and last > exchange.since:
                return None
        return Reason.THREAD_CLOSED
    return None


def _pharmacy(facts: Facts, config: PolicyConfig) -> Reason | None:
    # policy P3: a pharmacy's ORG mailbox listed in the directory, with a recent dispensation
    # when pharmacy_rule = "dispensation" (mssante.md §4: in the past year)
    if not facts.recipient.is_pharmacy:
        return None
    if config.pharmacy_rule == "listed":
        return Reason.CITIZEN_TO_PHARMACY
    last = facts.last_dispensation
    if isinstance(last, Unavailable):
        return Reason.FACTS_UNAVAILABLE
    if last is not None and facts.now - last <= config.dispensation_window:
        return Reason.CITIZEN_TO_PHARMACY
    return Reason.PHARMACY_NO_DISPENSATION


# -- routes ----------------------------------------------------------------------------------

_TO_CITIZEN = (
    Step(Rule.P1, "is the recipient's INS well formed?", _recipient_ins),
    Step(Rule.P1, "is the recipient's profile open?", _recipient_profile),
    Step(Rule.P7, "is every document visible to the patient?", _visible_to_patient),
    Step(
        Rule.P7,
        "is every document visible to the legal representatives reading this mailbox?",
        _visible_to_representatives,
    ),
)
_FROM_CITIZEN = (
    Step(Rule.P9, "does the acting guardian's mandate hold?", _mandate),
    Step(Rule.P1, "is the sender's INS well formed?", _sender_ins),
    Step(Rule.P1, "is the sender's profile open?", _sender_profile),
    Step(Rule.P6, "does the recipient mailbox accept replies?", _not_no_reply),
    Step(
        Rule.P2,
        "did this mailbox write to the citizen (P2), and not end the exchange since (P4)?",
        _exchange,
    ),
    Step(Rule.P3, "is the recipient a pharmacy the citizen may write to first?", _pharmacy),
)

_PROFESSIONAL = "professional"
_CATEGORY = {
    PartyKind.PER: _PROFESSIONAL,
    PartyKind.ORG: _PROFESSIONAL,
    PartyKind.APP: _PROFESSIONAL,
    PartyKind.PRO: _PROFESSIONAL,
    PartyKind.CITIZEN: "citizen",
    PartyKind.EXTERNAL: "external",
    PartyKind.NULL: "report",
}
_ROUTES_BY_CATEGORY = {
    (_PROFESSIONAL, "citizen"): (_TO_CITIZEN, Reason.PROFESSIONAL_TO_CITIZEN),
    ("report", "citizen"): (_TO_CITIZEN, Reason.DELIVERY_REPORT),
    (_PROFESSIONAL, _PROFESSIONAL): ((), Reason.PROFESSIONAL_TO_PROFESSIONAL),
    ("report", _PROFESSIONAL): ((), Reason.DELIVERY_REPORT),
    (_PROFESSIONAL, "external"): ((), Reason.OUTSIDE_TRUST_SPACE),
    ("report", "external"): ((), Reason.OUTSIDE_TRUST_SPACE),
    ("citizen", _PROFESSIONAL): (_FROM_CITIZEN, Reason.CITIZEN_NOT_CONTACTED),
    ("citizen", "citizen"): ((), Reason.CITIZEN_TO_CITIZEN),
    ("citizen", "external"): ((), Reason.CITIZEN_TO_EXTERNAL),
    ("external", _PROFESSIONAL): ((), Reason.SENDER_OUTSIDE_TRUST_SPACE),
    ("external", "citizen"): ((), Reason.SENDER_OUTSIDE_TRUST_SPACE),
    ("external", "external"): ((), Reason.SENDER_OUTSIDE_TRUST_SPACE),
}
#: Every (sender kind, recipient kind) pair a message can have; the null reverse-path is never
#: a recipient.
ROUTES: dict[tuple[PartyKind, PartyKind], Route] = {
    (sender, recipient): Route(
        f"{_CATEGORY[sender]} → {_CATEGORY[recipient]}",
        *_ROUTES_BY_CATEGORY[_CATEGORY[sender], _CATEGORY[recipient]],
    )
    for sender in PartyKind
    for recipient in PartyKind
    if recipient is not PartyKind.NULL
}


def route_for(facts: Facts) -> Route:
    route = ROUTES.get((facts.sender.kind, facts.recipient.kind))
    if route is None:
        raise ValueError("the null reverse-path is never a recipient")
    return route


def evaluate(facts: Facts, config: PolicyConfig = DEFAULT_CONFIG) -> Decision:
    """The decision for one recipient. At RCPT leave ``facts.message`` None; at DATA give it."""
    route = route_for(facts)
    for step in route.steps:
        reason = step.check(facts, config)
        if reason is not None:
            return DECISIONS[reason]
    return DECISIONS[route.otherwise]


@dataclass(frozen=True, slots=True)
class Checked:
    """A step of a trace: what was asked, and the reason it gave (None: no objection)."""

    step: Step
    answer: Reason | None


def trace(
    facts: Facts, config: PolicyConfig = DEFAULT_CONFIG
) -> tuple[Route, tuple[Checked, ...], Decision]:
    """What :func:`evaluate` does, step by step: the route, the checks run (the last one answered
    unless the route's ``otherwise`` applied) and the decision, which is always evaluate's."""
    route = route_for(facts)
    checked = []
    for step in route.steps:
        reason = step.check(facts, config)
        checked.append(Checked(step, reason))
        if reason is not None:
            return route, tuple(checked), DECISIONS[reason]
    return route, tuple(checked), DECISIONS[route.otherwise]
