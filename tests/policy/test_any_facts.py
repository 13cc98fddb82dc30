"""Any facts at all: the engine answers with a consistent decision and never raises (except for
the impossible null recipient), and the explanation always agrees with it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from plitest.policy import NOW

from pli.policy.engine import evaluate
from pli.policy.explain import audit_fields, explain, render
from pli.policy.facts import (
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
    exchange_pair,
    party_kind,
)
from pli.policy.reasons import Action, Reason

addresses = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A[0-9A-Za-z]{0,16}@patient\.mssante\.fr\Z"),
    st.from_regex(r"\A[a-z.]{1,12}@[a-z-]{1,10}\.mssante\.fr\Z"),
)


@st.composite
def parties(draw: st.DrawFn, *, recipient: bool = False) -> Party:
    kinds = [k for k in PartyKind if not (recipient and k is PartyKind.NULL)]
    kind = draw(st.sampled_from(kinds))
    if kind is PartyKind.NULL:
        return Party.null()
    if kind is PartyKind.CITIZEN:
        return Party.citizen(
            draw(addresses), draw(st.sampled_from(ProfileStatus)), represented=draw(st.booleans())
        )
    if kind is PartyKind.EXTERNAL:
        return Party.external(draw(addresses))
    return Party.professional(
        draw(addresses), kind, pharmacy=draw(st.booleans()), no_reply=draw(st.booleans())
    )


messages = st.builds(
    MessageTraits,
    subject=st.text(max_size=20),
    mss_mes=st.lists(st.text(max_size=6), max_size=2).map(tuple),
    invisible_to_patient=st.booleans(),
    invisible_to_representatives=st.booleans(),
)
any_facts = st.builds(
    Facts,
    sender=parties(),
    recipient=parties(recipient=True),
    now=st.just(NOW),
    exchange=st.builds(
        Exchange,
        st.sampled_from(ExchangeStatus),
        st.one_of(st.none(), st.floats(NOW - 1e8, NOW + 1e3)),
    ),
    last_dispensation=st.one_of(st.none(), st.just(UNAVAILABLE), st.floats(NOW - 1e8, NOW + 1e3)),
    actor=st.one_of(
        st.none(), st.builds(Actor, st.text(max_size=8), st.sampled_from(ActorRole), st.booleans())
    ),
    message=st.one_of(st.none(), messages),
)
configs = st.builds(PolicyConfig, st.sampled_from(["listed", "dispensation"]), st.floats(0, 1e8))
FIRST_DIGIT = {Action.ACCEPT: "2", Action.DEFER: "4", Action.REJECT: "5"}


@settings(max_examples=500)
@given(any_facts, configs)
def test_any_facts_get_a_consistent_decision_and_the_same_explanation(
    facts: Facts, config: PolicyConfig
) -> None:
    decision = evaluate(facts, config)
    assert str(decision.smtp_code)[0] == decision.enhanced_code[0] == FIRST_DIGIT[decision.action]
    explanation = explain(facts, config)
    assert explanation.decision is decision
    assert decision.reason.value in render(explanation)
    assert audit_fields(facts, decision)["reason"] == decision.reason.value
    # the invariants of P5 and P1 hold for any facts
    if facts.sender.kind is PartyKind.CITIZEN and not facts.recipient.kind.is_professional:
        assert decision.action is Action.REJECT
    if facts.recipient.kind is PartyKind.CITIZEN and decision.accepted:
        assert facts.recipient.ins_problem is None
        assert facts.recipient.profile in (ProfileStatus.OPEN, ProfileStatus.REMOTE)
    if decision.reason is Reason.CITIZEN_REPLY:
        assert facts.exchange.status is ExchangeStatus.OPEN and not facts.recipient.no_reply


@given(addresses, st.text(max_size=20), st.one_of(st.none(), st.text(max_size=4)), st.booleans())
def test_any_address_is_classified(
    address: str, citizen_domain: str, directory_type: str | None, trusted: bool
) -> None:
    kind = party_kind(
        address,
        citizen_domain=citizen_domain or "patient.mssante.fr",
        directory_type=directory_type,
        in_trust_space=trusted,
    )
    assert isinstance(kind, PartyKind)
    if kind.is_professional:
        assert trusted


@given(parties(), parties())
def test_exchange_pair_is_the_same_whichever_writes(a: Party, b: Party) -> None:
    assert exchange_pair(a, b) == exchange_pair(b, a)
