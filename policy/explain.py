"""Why a message was accepted or refused, for operators (``pli policy explain``) and auditors.

:func:`explain` runs the engine's own trace (:func:`pli.policy.engine.trace`, the same route and
checks as :func:`~pli.policy.engine.evaluate`) and keeps the facts it used; :func:`render` prints
it as plain text an operator reads when answering "why was this refused?". :func:`audit_fields`
is the record every front end writes with a decision (policy P8, P9): who, for whom, what was
decided and why; never message content.

What this module must not do: decide anything itself, or gather facts (the caller does).
"""

from __future__ import annotations

from dataclasses import dataclass

from .effects import ExchangeEffect, conversation_effects
from .engine import Checked, Route, trace
from .facts import DEFAULT_CONFIG, Facts, Party, PolicyConfig, Unavailable
from .reasons import Decision


@dataclass(frozen=True, slots=True)
class Explanation:
    facts: Facts
    config: PolicyConfig
    route: Route
    checked: tuple[Checked, ...]
    decision: Decision
    effects: tuple[ExchangeEffect, ...]

    @property
    def deciding_step(self) -> Checked | None:
        """The check that gave the decision; None when the route's default applied."""
        if self.checked and self.checked[-1].answer is not None:
            return self.checked[-1]
        return None


def explain(facts: Facts, config: PolicyConfig = DEFAULT_CONFIG) -> Explanation:
    route, checked, decision = trace(facts, config)
    return Explanation(
        facts, config, route, checked, decision, conversation_effects(facts, decision)
    )


def _party(party: Party) -> str:
    parts = [f"{party.address or '<>'} ({party.kind.value}"]
    if party.is_pharmacy:
        parts.append(", pharmacy")
    if party.no_reply:
        parts.append(", no-reply")
    if party.profile is not None:
        parts.append(f", profile {party.profile.value}")
        problem = party.ins_problem
        parts.append(f", INS {'ok' if problem is None else problem.value}")
    if party.represented:
        parts.append(", read by legal representatives")
    parts.append(")")
    return "".join(parts)


def _facts_lines(facts: Facts, config: PolicyConfig) -> list[str]:
    exchange = facts.exchange
    lines = [
        f"  from        {_party(facts.sender)}",
        f"  to          {_party(facts.recipient)}",
        f"  exchange    {exchange.status.value}"
        + (f" since {exchange.since:.0f}" if exchange.since is not None else "")
        + (f" by {exchange.message_id}" if exchange.message_id else ""),
    ]
    if facts.actor is not None:
        actor = facts.actor
        mandate = "" if actor.mandate_active else ", mandate inactive"
        lines.append(f"  acting      {actor.identity} ({actor.role.value}{mandate})")
    if facts.recipient.is_pharmacy:
        last = facts.last_dispensation
        if isinstance(last, Unavailable):
            shown = "unavailable"
        elif last is None:
            shown = "none"
        else:
            shown = f"{(facts.now - last) / 86400:.0f} days ago"
        lines.append(
            f"  pharmacy    rule {config.pharmacy_rule}, window "
            f"{config.dispensation_window / 86400:.0f} days, last dispensation {shown}"
        )
    message = facts.message
    if message is None:
        lines.append("  message     not given (envelope only: RCPT moment)")
    else:
        lines.append(f"  subject     {message.subject!r}")
        if message.mss_mes:
            lines.append(f"  X-MSS-MES   {', '.join(repr(v) for v in message.mss_mes)}")
        if message.message_id:
            lines.append(f"  message-id  {message.message_id}")
        if message.in_reply_to or message.references:
            lines.append(
                f"  replies to  {' '.join((*message.in_reply_to, *message.references))}"
                " (recorded, not decisive)"
            )
        flags = [
            name
            for name, flag in (
                ("invisible to patient", message.invisible_to_patient),
                ("invisible to legal representatives", message.invisible_to_representatives),
            )
            if flag
        ]
        if flags:
            lines.append(f"  documents   {', '.join(flags)}")
    return lines


def render(explanation: Explanation) -> str:
    """The explanation as text for an operator (English, with the French text the sender got)."""
    decision = explanation.decision
    lines = [
        f"decision    {decision.action.value}: {decision.smtp_code} {decision.enhanced_code}"
        f" {decision.reason.value} (rule {decision.rule.value})",
        f"why         {decision.log_text}",
        f"sender sees {decision.text}",
        "facts",
        *_facts_lines(explanation.facts, explanation.config),
        f"rules       route {explanation.route.name}",
    ]
    for checked in explanation.checked:
        step = checked.step
        outcome = "ok" if checked.answer is None else f"→ {checked.answer.value}"
        lines.append(f"  {step.rule.value:<5} {step.question} {outcome}")
    not_reached = explanation.route.steps[len(explanation.checked) :]
    for step in not_reached:
        lines.append(f"  {step.rule.value:<5} {step.question} (not reached)")
    if explanation.deciding_step is None:
        lines.append(f"  then  {decision.reason.value} (the route's default)")
    for effect in explanation.effects:
        lines.append(
            f"effect      {effect.kind.value}: exchange {effect.professional} / "
            f"{effect.citizen_ins}"
        )
    return "\n".join(lines) + "\n"


def audit_fields(facts: Facts, decision: Decision) -> dict[str, str]:
    """What every front end records with a decision (policy P8; P9: who acted). No content."""
    actor = facts.actor
    return {
        "sender": facts.sender.address,
        "sender_kind": facts.sender.kind.value,
        "recipient": facts.recipient.address,
        "recipient_kind": facts.recipient.kind.value,
        "actor": actor.identity if actor is not None else "",
        "actor_role": actor.role.value if actor is not None else "",
        "action": decision.action.value,
        "reason": decision.reason.value,
        "rule": decision.rule.value,
        "smtp": f"{decision.smtp_code} {decision.enhanced_code}",
        "message_id": facts.message.message_id if facts.message is not None else "",
    }
