"""Who the citizen writes with: the professional's name (never a raw address, mssante.md §3:
"the patient sees the professional's name, not the address"), and whether the citizen may write
to that mailbox now, asked of the policy before the citizen writes.

The permission comes from the policy engine through the store facts (``PolicyFacts.decide``) for
the acting profile, with the acting guardian as actor (policy P9): the same decision the
submission pipeline takes when the message is sent, so the page never offers a reply the
pipeline would refuse (thread ended: P4; no-reply mailbox: P6; never contacted: P2; pharmacy
exception: P3). A refusal carries the policy's French text.

What this module must not do: send anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from pli.mailbox.policyfacts import PolicyFacts
from pli.mailbox.store import Store

from .sessions import WebSession

#: Shown when nothing better is known about a sender (French).
UNKNOWN_SENDER = "Correspondant de santé"


def fallback_name(address: str) -> str:
    """A name for a mailbox the directory does not know: the kind and the establishment's
    domain, not the mailbox itself."""
    domain = address.rpartition("@")[2]
    return f"{UNKNOWN_SENDER} ({domain})" if domain else UNKNOWN_SENDER


def presentable(name: str, address: str) -> str:
    """``name`` unless it is empty or an address in disguise."""
    cleaned = " ".join(name.split())
    if not cleaned or "@" in cleaned:
        return fallback_name(address)
    return cleaned


async def display_names(store: Store, addresses: list[str]) -> dict[str, str]:
    """Address → the name to show (directory and accounts first, then the fallback)."""
    known = await store.directory.display_names(addresses)
    return {address: presentable(known.get(address.lower(), ""), address) for address in addresses}


@dataclass(frozen=True, slots=True)
class Permission:
    allowed: bool
    reason: str  # the policy's reason code
    text: str  # French, for the citizen


async def may_write(facts: PolicyFacts, session: WebSession, professional: str) -> Permission:
    """Whether the acting profile may write to ``professional`` now (a reply, or a first
    message to a pharmacy)."""
    actor = await facts.actor(session.account, session.acting_as)
    decided = await facts.decide(session.acting_as.address, professional, actor=actor)
    decision = decided.decision
    return Permission(decision.accepted, decision.reason.value, decision.text)
