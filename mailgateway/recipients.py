"""Local recipients: is this address ours, which mailbox is it, and may this sender write to it
(the policy, per recipient). Shared by the inbound MTA (at RCPT and again at DATA), submission
(local recipients) and the queue (reports to local senders), so that every way in decides the
same way (product.md: "the rules apply at one place").

Routing answers first (no policy question for a mailbox that does not exist): an unknown
professional mailbox is ``550 5.1.1``, a disabled one ``550 5.2.1``; an unknown citizen is the
policy's ``ins-unknown`` (P1). A store that does not answer is ``451 4.3.0`` (temporary).

What this module must not do: write anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from pli.mailbox.policyfacts import LOOKUP_FAILURES, Decided, PolicyFacts
from pli.mailbox.store import Account, Store
from pli.policy.facts import Actor, MessageTraits, domain_of
from pli.policy.reasons import Decision

from .delivery import LocalCopy
from .smtp import replies as R
from .smtp.params import POSTMASTER
from .smtp.replies import Reply

log = structlog.get_logger(__name__)


#: Reason codes of routing refusals (the policy's are in policy/reasons.py).
MAILBOX_UNKNOWN = "mailbox-unknown"
MAILBOX_DISABLED = "mailbox-disabled"
STORE_UNAVAILABLE = "store-unavailable"
RELAY_DENIED = "relay-denied"
#: French texts of routing refusals, for people (webmail, DSN).
ROUTING_TEXTS = {
    MAILBOX_UNKNOWN: "Cette adresse ne correspond à aucune boîte aux lettres.",
    MAILBOX_DISABLED: "Cette boîte aux lettres est désactivée.",
    STORE_UNAVAILABLE: "Le service est momentanément indisponible ; réessayez plus tard.",
    RELAY_DENIED: "Ce serveur ne reçoit du courrier que pour ses propres domaines.",
}


def decision_reply(decision: Decision) -> Reply:
    return Reply(decision.smtp_code, decision.enhanced_code, decision.smtp_text)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one local recipient: the reply for it, and when accepted the mailbox and
    the decision (with its facts) to record at delivery."""

    address: str
    reply: Reply
    reason: str  # the policy's reason code, or routing's (mailbox-unknown, …)
    account: Account | None = None  # the mailbox, when accepted
    decided: Decided | None = None
    checked_account: Account | None = None  # the mailbox looked up (for a later recheck)

    @property
    def accepted(self) -> bool:
        return self.reply.positive and self.account is not None

    @property
    def text(self) -> str:
        """For people: the policy's French text, or routing's."""
        if self.decided is not None:
            return self.decided.decision.text
        return ROUTING_TEXTS.get(self.reason, self.reply.text)

    def copy(self) -> LocalCopy:
        assert self.account is not None
        decided = self.decided
        return LocalCopy(
            self.account.id,
            self.account.address,
            decided.facts if decided else None,
            decided.decision if decided else None,
        )


class LocalRecipients:
    def __init__(self, store: Store, facts: PolicyFacts, *, postmaster_domain: str = "") -> None:
        self.store = store
        self.facts = facts
        self.postmaster_domain = postmaster_domain

    def is_local(self, address: str) -> bool:
        return address == POSTMASTER or self.facts.config.is_local(address)

    def resolve(self, address: str) -> str:
        """``<Postmaster>`` (RFC 5321 §4.5.1) → postmaster of our first domain."""
        if address == POSTMASTER and self.postmaster_domain:
            return f"postmaster@{self.postmaster_domain}"
        return address

    async def check(
        self,
        sender: str,
        address: str,
        *,
        actor: Actor | None = None,
        message: MessageTraits | None = None,
    ) -> Verdict:
        """The verdict for one local recipient (RCPT moment without ``message``, DATA with),
        from one read transaction."""
        address = self.resolve(address)
        try:
            async with self.store.db.snapshot(quick=True):
                account = await self.store.accounts.find(address)
                refusal = self._routing(address, account)
                if refusal is not None:
                    return refusal
                decided = await self.facts.decide(
                    sender, address, actor=actor, message=message, recipient_account=account
                )
        except LOOKUP_FAILURES as error:
            log.warning("recipient-lookup-failed", error=type(error).__name__)
            return Verdict(address, R.SERVER_ERROR, STORE_UNAVAILABLE)
        return self._verdict(address, account, decided)

    def recheck(self, verdict: Verdict, message: MessageTraits) -> Verdict:
        """The DATA moment of a recipient checked at RCPT: its facts again with the message's
        traits (no lookup)."""
        if verdict.decided is None:
            return verdict  # refused by routing, or the store did not answer
        decided = self.facts.with_message(verdict.decided, message)
        account = verdict.account if verdict.account is not None else verdict.checked_account
        return self._verdict(verdict.address, account, decided)

    def _routing(self, address: str, account: Account | None) -> Verdict | None:
        """A refusal before the policy: unknown or disabled professional mailbox."""
        if domain_of(address) == self.facts.config.citizen_domain:
            return None  # an unknown citizen is the policy's answer (ins-unknown, P1)
        if account is None or account.is_citizen:
            return Verdict(address, R.MAILBOX_UNKNOWN, MAILBOX_UNKNOWN)
        if account.disabled:
            return Verdict(address, R.MAILBOX_DISABLED, MAILBOX_DISABLED)
        return None

    def _verdict(self, address: str, account: Account | None, decided: Decided) -> Verdict:
        decision = decided.decision
        if decision.accepted and (account is None or account.disabled):
            if account is None:
                return Verdict(address, R.MAILBOX_UNKNOWN, MAILBOX_UNKNOWN)
            return Verdict(address, R.MAILBOX_DISABLED, MAILBOX_DISABLED)
        return Verdict(
            address,
            decision_reply(decision),
            decision.reason.value,
            account if decision.accepted else None,
            decided,
            checked_account=account,
        )
