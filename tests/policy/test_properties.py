"""Property tests of the policy over sequences of messages (issue 5).

Hypothesis generates sequences of messages between professionals and citizens: professional to
citizen (ordinary, ``[FIN]`` in its spellings, ``X-MSS-MES: FIN``, look-alikes that do not end),
citizen to professional, to pharmacy, to citizen, to an outside address, some sent by a guardian.
The store's part is modelled by applying the ``conversation_effects`` of accepted messages with
``apply_effect``; an independent oracle keeps the raw history (which professional message reached
which citizen, and whether the generator meant it to end the exchange). Invariants:

- a citizen reaches a non-pharmacy professional if and only if that mailbox wrote to them, did
  not end the exchange since, and is not no-reply (P2, P4, P6);
- no citizen ever reaches another citizen or an outside address (P5);
- a guardian with an active mandate gets exactly the citizen's decision (P9);
- the decision at RCPT and at DATA agree for citizen senders (no message-dependent rule);
- a professional reaches a citizen exactly when the profile is open and no document is hidden
  from them (P1, P7).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from plitest.policy import (
    DAY,
    INS_ALICE,
    INS_BRUNO,
    INS_CHILD,
    NOW,
    app,
    citizen,
    org,
    per,
    pharmacy,
)

from pli.policy.effects import apply_effect, conversation_effects
from pli.policy.engine import evaluate
from pli.policy.facts import (
    NO_EXCHANGE,
    Actor,
    ActorRole,
    Exchange,
    Facts,
    MessageTraits,
    Party,
    PolicyConfig,
    ProfileStatus,
    exchange_pair,
)
from pli.policy.reasons import Action

PROFESSIONALS = [
    per("dr.martin"),
    per("dr.member"),  # a member of the cardiologie ORG mailbox: writes separately
    org("cardiologie"),
    app("cr-noreply", no_reply=True),
    app("rdv", no_reply=False),
    pharmacy("officine"),
]
EXTERNAL = Party.external("someone@gmail.com")
INS = [INS_ALICE, INS_BRUNO, INS_CHILD]

# The generator's own statement of which subjects and headers end an exchange (ending.py).
ENDING_SUBJECTS = ["[FIN]", "[fin]", " [FIN] ", "[Fin]\t"]
ORDINARY_SUBJECTS = ["Résultats", "Re: [FIN]", "TR: [FIN]", "[FIN] merci", "FIN", ""]
ENDING_HEADERS = [("FIN",), (" fin ",), ("OK", "FIN")]
ORDINARY_HEADERS = [(), ("OK",), ("FINI",)]


@dataclass(frozen=True)
class ProMessage:
    sender: int
    citizen: int
    subject: str
    mss_mes: tuple[str, ...]
    ends: bool  # what the generator meant
    invisible: bool
    invisible_to_representatives: bool


@dataclass(frozen=True)
class CitizenMessage:
    citizen: int
    to: str  # "reply" (to the last professional message's sender), "pro", "citizen", "external"
    index: int
    by_guardian: bool


@dataclass(frozen=True)
class Dispensation:
    citizen: int


@st.composite
def pro_messages(draw: st.DrawFn) -> ProMessage:
    ends = draw(st.booleans())
    if ends and draw(st.booleans()):
        subject, headers = (
            draw(st.sampled_from(ENDING_SUBJECTS)),
            draw(st.sampled_from(ORDINARY_HEADERS)),
        )
    elif ends:
        subject = draw(st.sampled_from(ORDINARY_SUBJECTS + ENDING_SUBJECTS))
        headers = draw(st.sampled_from(ENDING_HEADERS))
    else:
        subject = draw(st.sampled_from(ORDINARY_SUBJECTS))
        headers = draw(st.sampled_from(ORDINARY_HEADERS))
    return ProMessage(
        draw(st.integers(0, len(PROFESSIONALS) - 1)),
        draw(st.integers(0, len(INS) - 1)),
        subject,
        headers,
        ends,
        draw(st.integers(0, 9)) == 0,
        draw(st.integers(0, 9)) == 0,
    )


citizen_messages = st.builds(
    CitizenMessage,
    citizen=st.integers(0, len(INS) - 1),
    to=st.sampled_from(["reply", "reply", "reply", "pro", "pro", "citizen", "external"]),
    index=st.integers(0, max(len(PROFESSIONALS), len(INS)) - 1),
    by_guardian=st.booleans(),
)
events = st.lists(
    st.one_of(
        pro_messages(),
        citizen_messages,
        citizen_messages,
        st.builds(Dispensation, st.integers(0, len(INS) - 1)),
    ),
    max_size=40,
)
profiles = st.lists(
    st.sampled_from([ProfileStatus.OPEN] * 4 + [ProfileStatus.CLOSED, ProfileStatus.OPPOSED]),
    min_size=len(INS),
    max_size=len(INS),
)


class World:
    """The store's side (exchanges from effects) and the oracle's (raw history)."""

    def __init__(self, profile: list[ProfileStatus], config: PolicyConfig) -> None:
        self.citizens = [
            citizen(ins, status, represented=ins == INS_CHILD)
            for ins, status in zip(INS, profile, strict=True)
        ]
        self.config = config
        self.now = NOW
        self.exchanges: dict[tuple[str, str], Exchange] = {}
        self.last_pro_message_ended: dict[tuple[str, str], bool] = {}  # oracle
        self.dispensations: dict[int, float] = {}
        self.sequence = 0
        self.last_pair = (0, 0)  # (professional, citizen) of the last professional message

    def pro_writes(self, event: ProMessage) -> None:
        sender, recipient = PROFESSIONALS[event.sender], self.citizens[event.citizen]
        self.last_pair = (event.sender, event.citizen)
        self.sequence += 1
        traits = MessageTraits(
            subject=event.subject,
            mss_mes=event.mss_mes,
            message_id=f"<{self.sequence}@test>",
            invisible_to_patient=event.invisible,
            invisible_to_representatives=event.invisible_to_representatives,
        )
        key = exchange_pair(sender, recipient)
        assert key is not None
        at_data = Facts(
            sender, recipient, self.now, self.exchanges.get(key, NO_EXCHANGE), message=traits
        )
        decision = evaluate(at_data, self.config)
        delivered = (
            recipient.profile is ProfileStatus.OPEN
            and not event.invisible
            and not (event.invisible_to_representatives and recipient.represented)
        )
        assert decision.accepted is delivered, (event, decision.reason)  # P1, P7
        for effect in conversation_effects(at_data, decision):
            self.exchanges[key] = apply_effect(self.exchanges.get(key, NO_EXCHANGE), effect)
        if delivered:
            self.last_pro_message_ended[key] = event.ends

    def citizen_writes(self, event: CitizenMessage) -> None:
        sender = self.citizens[event.citizen]
        if event.to == "reply":
            sender = self.citizens[self.last_pair[1]]
            recipient = PROFESSIONALS[self.last_pair[0]]
        elif event.to == "pro":
            recipient = PROFESSIONALS[event.index % len(PROFESSIONALS)]
        elif event.to == "citizen":
            recipient = self.citizens[event.index % len(INS)]
        else:
            recipient = EXTERNAL
        key = exchange_pair(sender, recipient)
        exchange = self.exchanges.get(key, NO_EXCHANGE) if key else NO_EXCHANGE
        last = self.dispensations.get(self.citizens.index(sender))
        as_holder = Facts(sender, recipient, self.now, exchange, last_dispensation=last)
        decision = evaluate(as_holder, self.config)
        if event.by_guardian:
            acting = Actor("guardian", ActorRole.LEGAL_REPRESENTATIVE)
            with_guardian = Facts(
                sender, recipient, self.now, exchange, last_dispensation=last, actor=acting
            )
            assert evaluate(with_guardian, self.config) is decision  # P9
        at_data = Facts(
            sender, recipient, self.now, exchange, last, message=MessageTraits(subject="Question")
        )
        assert evaluate(at_data, self.config) is decision  # RCPT and DATA agree
        assert conversation_effects(at_data, decision) == ()  # citizens change nothing

        if event.to in ("citizen", "external"):
            assert decision.action is Action.REJECT  # P5
            return
        if sender.profile is not ProfileStatus.OPEN:
            assert not decision.accepted  # P1
            return
        if recipient.is_pharmacy:
            return  # P3 has its own table tests
        wrote_and_did_not_end = (
            key in self.last_pro_message_ended and not (self.last_pro_message_ended[key])
        )
        assert decision.accepted is (wrote_and_did_not_end and not recipient.no_reply), (
            event,
            decision.reason,
        )  # P2, P4, P6

    def play(self, event: object) -> None:
        self.now += DAY / 3
        if isinstance(event, ProMessage):
            self.pro_writes(event)
        elif isinstance(event, CitizenMessage):
            self.citizen_writes(event)
        elif isinstance(event, Dispensation):
            self.dispensations[event.citizen] = self.now


@settings(max_examples=300, deadline=None)
@given(events, profiles, st.sampled_from(["listed", "dispensation"]))
def test_citizens_reach_only_professionals_who_wrote_and_did_not_end(
    sequence: list[object], profile: list[ProfileStatus], rule: str
) -> None:
    world = World(profile, PolicyConfig(pharmacy_rule=rule, dispensation_window=30 * DAY))
    for event in sequence:
        world.play(event)


@settings(max_examples=200, deadline=None)
@given(events, profiles)
def test_pharmacy_mail_is_accepted_only_on_the_pharmacy_s_terms(
    sequence: list[object], profile: list[ProfileStatus]
) -> None:
    """P3 with P4: a citizen reaches the pharmacy when it wrote and did not end the exchange, or
    (no exchange, or ended before a new dispensation) when a dispensation is within the window."""
    config = PolicyConfig(pharmacy_rule="dispensation", dispensation_window=30 * DAY)
    world = World(profile, config)
    shop = PROFESSIONALS.index(pharmacy("officine"))
    for event in sequence:
        world.play(event)
        for index, who in enumerate(world.citizens):
            key = exchange_pair(who, PROFESSIONALS[shop])
            exchange = world.exchanges.get(key, NO_EXCHANGE)  # type: ignore[arg-type]
            last = world.dispensations.get(index)
            f = Facts(who, PROFESSIONALS[shop], world.now, exchange, last_dispensation=last)
            decision = evaluate(f, config)
            if not decision.accepted or who.profile is not ProfileStatus.OPEN:
                continue
            if world.last_pro_message_ended.get(key) is False:  # type: ignore[arg-type]
                continue  # the pharmacy wrote and did not end: P2
            assert last is not None and world.now - last <= config.dispensation_window
            if world.last_pro_message_ended.get(key):  # type: ignore[arg-type]
                assert exchange.since is not None and last > exchange.since
