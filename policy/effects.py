"""How an accepted message changes the exchange between a professional and a citizen (policy P2,
P4), as pure data the store records.

The exchange, in full (also in docs/policy.md):

- **Scope.** An exchange is one professional *mailbox* (its exact address: an ORG mailbox is not
  the people behind it) and one citizen (their INS; a guardian acting for them acts in the same
  exchange). It is not a thread: In-Reply-To and References are written by the sender's client,
  can be dropped or forged, and product.md P2/P4 speak of the mailbox. Key: :func:`exchange_key`.
- **Opening.** A professional mailbox's message *delivered* to the citizen (accepted for that
  recipient) opens the exchange: effect ``wrote``. Refused messages change nothing (the citizen
  never saw them); delivery reports and read receipts (null sender) change nothing.
- **Ending.** A delivered professional message whose subject is ``[FIN]`` or that carries
  ``X-MSS-MES: FIN`` (see :mod:`pli.policy.ending`) ends it: effect ``ended``. Ending an exchange
  that was never open records it ended (the citizen may not reply to that message either).
- **Reopening.** A later ordinary message from the same mailbox reopens it (``wrote`` after
  ``ended``). Nothing the citizen does reopens it, except, for a pharmacy under
  ``pharmacy_rule = "dispensation"``, a dispensation recorded after the end (a new contact in the
  pharmacy; the engine checks it, no effect is needed).
- Citizens' messages never change the exchange.

The store applies an effect with :func:`apply_effect` and keeps the resulting :class:`Exchange`;
the next decision reads it back as ``Facts.exchange``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .ending import ends_exchange
from .facts import Exchange, ExchangeStatus, Facts, PartyKind, exchange_key
from .reasons import Decision


class EffectKind(StrEnum):
    WROTE = "wrote"  # the professional mailbox wrote: the exchange is open (or reopened)
    ENDED = "ended"  # the professional mailbox ended the exchange (policy P4)


@dataclass(frozen=True, slots=True)
class ExchangeEffect:
    """One change to one exchange, caused by one delivered message."""

    kind: EffectKind
    professional: str  # the professional mailbox, lower case (exchange_key)
    citizen_ins: str  # the citizen's INS, capitals (exchange_key)
    at: float  # the decision's time (Facts.now), seconds since the epoch
    message_id: str  # the causing message's Message-ID ("" if it had none)

    @property
    def key(self) -> tuple[str, str]:
        return self.professional, self.citizen_ins


def conversation_effects(facts: Facts, decision: Decision) -> tuple[ExchangeEffect, ...]:
    """The effects of delivering a message to ``facts.recipient`` under ``decision``: none unless
    the decision accepts a professional's message (with its traits: DATA moment) to a citizen."""
    message = facts.message
    if (
        message is None
        or not decision.accepted
        or facts.recipient.kind is not PartyKind.CITIZEN
        or not facts.sender.kind.is_professional
    ):
        return ()
    kind = EffectKind.ENDED if ends_exchange(message) else EffectKind.WROTE
    professional, ins = exchange_key(facts.sender.address, facts.recipient.address)
    return (ExchangeEffect(kind, professional, ins, facts.now, message.message_id),)


def apply_effect(current: Exchange, effect: ExchangeEffect) -> Exchange:
    """The exchange after ``effect``. An open exchange stays the same open exchange (its
    ``since`` is its opening); an ended one records the ending message."""
    if effect.kind is EffectKind.ENDED:
        return Exchange(ExchangeStatus.ENDED, effect.at, effect.message_id)
    if current.status is ExchangeStatus.OPEN:
        return current
    return Exchange(ExchangeStatus.OPEN, effect.at, effect.message_id)
