"""The rules P1-P9 of product.md, one group of tests per rule, with plain data (architecture.md
§ Policy: table-test the rules). Every decision is checked for its reason, rule and codes."""

from __future__ import annotations

import pytest
from plitest.policy import (
    DAY,
    ENDED,
    INS_ALICE,
    INS_BRUNO,
    INS_CHILD,
    NOW,
    OPEN,
    app,
    citizen,
    citizen_address,
    exchange,
    external,
    facts,
    guardian,
    message,
    org,
    per,
    pharmacy,
)

from pli.config.schema import PolicySection
from pli.policy.engine import ROUTES, evaluate
from pli.policy.facts import (
    EXCHANGE_UNAVAILABLE,
    NO_EXCHANGE,
    UNAVAILABLE,
    Actor,
    ActorRole,
    ExchangeStatus,
    Facts,
    Party,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
    exchange_pair,
)
from pli.policy.reasons import Action, Decision, Reason, Rule

LISTED = PolicyConfig(pharmacy_rule="listed")
DISPENSATION = PolicyConfig(pharmacy_rule="dispensation", dispensation_window=365 * DAY)


def decide(f: Facts, config: PolicyConfig = DISPENSATION) -> Decision:
    return evaluate(f, config)


def assert_decision(decision: Decision, reason: Reason, code: int, enhanced: str) -> None:
    assert (decision.reason, decision.smtp_code, decision.enhanced_code) == (
        reason,
        code,
        enhanced,
    )


# -- P1: professionals write to citizens whose profile is open ------------------------------


@pytest.mark.parametrize(
    "sender", [per(), org(), app(), Party.professional("x@y.mssante.fr", PartyKind.PRO)]
)
def test_p1_every_professional_kind_writes_to_an_open_profile(sender: Party) -> None:
    decision = decide(facts(sender, citizen()))
    assert_decision(decision, Reason.PROFESSIONAL_TO_CITIZEN, 250, "2.1.5")
    assert decision.accepted and decision.rule is Rule.P1


@pytest.mark.parametrize(
    ("recipient", "reason", "code", "enhanced"),
    [
        (citizen(profile=ProfileStatus.CLOSED), Reason.PROFILE_CLOSED, 550, "5.2.1"),
        (citizen(profile=ProfileStatus.OPPOSED), Reason.PROFILE_OPPOSED, 550, "5.2.1"),
        (citizen(profile=ProfileStatus.UNKNOWN), Reason.INS_UNKNOWN, 550, "5.1.1"),
        (
            Party.citizen(citizen_address("146026322000197"), ProfileStatus.UNKNOWN),
            Reason.INS_MALFORMED,
            553,
            "5.1.3",
        ),
        (
            Party.citizen("dupont@patient.mssante.fr", ProfileStatus.UNKNOWN),
            Reason.INS_MALFORMED,
            553,
            "5.1.3",
        ),
    ],
)
def test_p1_closed_opposed_unknown_and_malformed_are_distinct_permanent_refusals(
    recipient: Party, reason: Reason, code: int, enhanced: str
) -> None:
    decision = decide(facts(per(), recipient))
    assert_decision(decision, reason, code, enhanced)
    assert decision.action is Action.REJECT and decision.rule is Rule.P1


def test_p1_a_professional_message_to_an_opposed_profile_is_refused_even_in_an_open_exchange() -> (
    None
):
    decision = decide(facts(org(), citizen(profile=ProfileStatus.OPPOSED), exchange=OPEN))
    assert decision.reason is Reason.PROFILE_OPPOSED
    assert "opposé" in decision.text


def test_p1_a_malformed_ins_is_reported_before_the_profile_lookup() -> None:
    # a malformed INS cannot have a profile: whatever the store said, the address is the problem
    bad = Party.citizen(citizen_address("14602632200019"), ProfileStatus.OPEN)
    assert decide(facts(per(), bad)).reason is Reason.INS_MALFORMED


def test_p1_a_profile_lookup_failure_defers() -> None:
    decision = decide(facts(per(), citizen(profile=ProfileStatus.UNAVAILABLE)))
    assert_decision(decision, Reason.FACTS_UNAVAILABLE, 451, "4.4.3")
    assert decision.action is Action.DEFER


def test_p1_a_citizen_hosted_by_another_operator_is_relayed_for_it_to_check() -> None:
    assert decide(facts(per(), citizen(profile=ProfileStatus.REMOTE))).accepted


def test_p1_lower_case_corsican_ins_is_the_same_citizen() -> None:
    lower = Party.citizen(citizen_address(INS_BRUNO.lower()), ProfileStatus.OPEN)
    assert lower.ins == INS_BRUNO
    assert decide(facts(per(), lower)).accepted


def test_p1_a_citizen_party_needs_its_profile_status() -> None:
    with pytest.raises(ValueError, match="profile"):
        Party(citizen_address(INS_ALICE), PartyKind.CITIZEN)


# -- P2: a citizen writes only to the mailbox that wrote, and did not end -----------------


def test_p2_a_citizen_replies_to_a_mailbox_that_wrote_to_them() -> None:
    decision = decide(facts(citizen(), per(), exchange=OPEN))
    assert_decision(decision, Reason.CITIZEN_REPLY, 250, "2.1.5")
    assert decision.rule is Rule.P2


def test_p2_a_citizen_cannot_write_first() -> None:
    decision = decide(facts(citizen(), per(), exchange=NO_EXCHANGE))
    assert_decision(decision, Reason.CITIZEN_NOT_CONTACTED, 550, "5.7.1")
    assert decision.rule is Rule.P2


def test_p2_when_the_org_mailbox_wrote_a_member_s_personal_address_is_refused() -> None:
    """The ORG mailbox cardiologie@ wrote; the citizen writes to dr.martin@, a member of it.
    The exchange looked up for dr.martin@ is not the ORG's: refused, and the text tells the
    citizen to reply to the mailbox that wrote."""
    member, service = per("dr.martin"), org("cardiologie")
    assert exchange_pair(citizen(), member) != exchange_pair(citizen(), service)
    assert decide(facts(citizen(), service, exchange=OPEN)).accepted
    refused = decide(facts(citizen(), member, exchange=NO_EXCHANGE))
    assert refused.reason is Reason.CITIZEN_NOT_CONTACTED
    assert "service" in refused.text


def test_p2_an_exchange_lookup_failure_defers() -> None:
    decision = decide(facts(citizen(), per(), exchange=EXCHANGE_UNAVAILABLE))
    assert decision.action is Action.DEFER and decision.reason is Reason.FACTS_UNAVAILABLE


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        (ProfileStatus.CLOSED, Reason.SENDER_PROFILE_INACTIVE),
        (ProfileStatus.OPPOSED, Reason.SENDER_PROFILE_INACTIVE),
        (ProfileStatus.UNKNOWN, Reason.SENDER_PROFILE_INACTIVE),
        (ProfileStatus.UNAVAILABLE, Reason.FACTS_UNAVAILABLE),
    ],
)
def test_p1_a_citizen_whose_profile_is_not_open_sends_nothing(
    profile: ProfileStatus, reason: Reason
) -> None:
    assert decide(facts(citizen(profile=profile), per(), exchange=OPEN)).reason is reason


def test_p1_a_citizen_sender_with_a_malformed_ins_is_refused_with_5_1_7() -> None:
    sender = Party.citizen("not-an-ins@patient.mssante.fr", ProfileStatus.REMOTE)
    assert_decision(
        decide(facts(sender, per(), exchange=OPEN)), Reason.SENDER_INS_MALFORMED, 553, "5.1.7"
    )


# -- P3: the pharmacy exception ---------------------------------------------------------------


def test_p3_listed_rule_a_citizen_writes_first_to_a_listed_pharmacy() -> None:
    decision = decide(facts(citizen(), pharmacy()), LISTED)
    assert_decision(decision, Reason.CITIZEN_TO_PHARMACY, 250, "2.1.5")
    assert decision.rule is Rule.P3


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (NOW - 30 * DAY, Reason.CITIZEN_TO_PHARMACY),
        (NOW - 365 * DAY, Reason.CITIZEN_TO_PHARMACY),  # the window's last second counts
        (NOW - 365 * DAY - 1, Reason.PHARMACY_NO_DISPENSATION),
        (None, Reason.PHARMACY_NO_DISPENSATION),
        (UNAVAILABLE, Reason.FACTS_UNAVAILABLE),
    ],
)
def test_p3_dispensation_rule_needs_a_dispensation_within_the_window(
    last: object, reason: Reason
) -> None:
    assert decide(facts(citizen(), pharmacy(), last_dispensation=last)).reason is reason


def test_p3_the_window_is_the_configured_one() -> None:
    short = PolicyConfig(pharmacy_rule="dispensation", dispensation_window=30 * DAY)
    f = facts(citizen(), pharmacy(), last_dispensation=NOW - 31 * DAY)
    assert decide(f, short).reason is Reason.PHARMACY_NO_DISPENSATION
    assert decide(f, DISPENSATION).reason is Reason.CITIZEN_TO_PHARMACY


def test_p3_only_an_org_mailbox_flagged_pharmacy_benefits() -> None:
    pharmacist = Party.professional("m.durand@pharmacie.mssante.fr", PartyKind.PER, pharmacy=True)
    f = facts(citizen(), pharmacist, last_dispensation=NOW - DAY)
    assert decide(f, LISTED).reason is Reason.CITIZEN_NOT_CONTACTED
    assert decide(facts(citizen(), org(), last_dispensation=NOW - DAY), LISTED).reason is (
        Reason.CITIZEN_NOT_CONTACTED
    )


def test_p2_p3_a_citizen_writing_to_a_pharmacy_and_a_professional_gets_a_decision_for_each() -> (
    None
):
    """One message, two recipients: the pharmacy accepts (P3), the doctor who never wrote
    refuses (P2). Decisions are per recipient."""
    sender = citizen()
    to_pharmacy = decide(facts(sender, pharmacy(), last_dispensation=NOW - 40 * DAY))
    to_doctor = decide(facts(sender, per(), exchange=NO_EXCHANGE))
    assert to_pharmacy.reason is Reason.CITIZEN_TO_PHARMACY
    assert to_doctor.reason is Reason.CITIZEN_NOT_CONTACTED


# -- P4: the end of an exchange ---------------------------------------------------------------


def test_p4_an_ended_exchange_refuses_the_citizen() -> None:
    decision = decide(facts(citizen(), per(), exchange=ENDED))
    assert_decision(decision, Reason.THREAD_CLOSED, 550, "5.7.1")
    assert decision.rule is Rule.P4
    assert "mis fin" in decision.text


def test_p4_an_ended_pharmacy_exchange_holds_under_the_listed_rule() -> None:
    f = facts(citizen(), pharmacy(), exchange=ENDED, last_dispensation=NOW - DAY)
    assert decide(f, LISTED).reason is Reason.THREAD_CLOSED


def test_p3_p4_a_dispensation_after_a_pharmacy_ended_the_exchange_lets_the_citizen_write() -> None:
    after = facts(citizen(), pharmacy(), exchange=ENDED, last_dispensation=ENDED.since + DAY)
    before = facts(citizen(), pharmacy(), exchange=ENDED, last_dispensation=ENDED.since - DAY)
    unknown = facts(citizen(), pharmacy(), exchange=ENDED, last_dispensation=UNAVAILABLE)
    assert decide(after).reason is Reason.CITIZEN_TO_PHARMACY
    assert decide(before).reason is Reason.THREAD_CLOSED
    assert decide(unknown).reason is Reason.FACTS_UNAVAILABLE


def test_p4_a_professional_may_still_write_after_ending() -> None:
    assert decide(facts(per(), citizen(), exchange=ENDED, message=message())).accepted


# -- P5: citizens write neither to citizens nor outside ------------------------------------


@pytest.mark.parametrize("ex", [NO_EXCHANGE, OPEN])
def test_p5_a_citizen_never_writes_to_another_citizen(ex: object) -> None:
    decision = decide(facts(citizen(INS_ALICE), citizen(INS_BRUNO), exchange=ex))
    assert_decision(decision, Reason.CITIZEN_TO_CITIZEN, 550, "5.7.1")
    assert decision.rule is Rule.P5


def test_p5_a_citizen_never_writes_to_an_outside_address() -> None:
    decision = decide(facts(citizen(), external()))
    assert_decision(decision, Reason.CITIZEN_TO_EXTERNAL, 550, "5.7.1")
    assert decision.rule is Rule.P5


def test_p5_not_even_to_themself() -> None:
    assert decide(facts(citizen(), citizen())).reason is Reason.CITIZEN_TO_CITIZEN


# -- P6: no-reply APP mailboxes --------------------------------------------------------------


def test_p6_a_no_reply_app_mailbox_never_receives_citizen_mail_even_in_an_open_exchange() -> None:
    decision = decide(facts(citizen(), app(), exchange=OPEN))
    assert_decision(decision, Reason.NO_REPLY_MAILBOX, 550, "5.7.1")
    assert decision.rule is Rule.P6


def test_p6_an_app_mailbox_that_accepts_replies_is_a_professional_like_another() -> None:
    assert decide(facts(citizen(), app(no_reply=False), exchange=OPEN)).accepted


def test_p6_a_no_reply_mailbox_still_writes_to_citizens_and_receives_from_professionals() -> None:
    assert decide(facts(app(), citizen(), message=message())).accepted
    assert decide(facts(per(), app())).accepted


# -- P7: documents invisible to the patient --------------------------------------------------


def test_p7_a_document_invisible_to_the_patient_is_never_delivered_to_them() -> None:
    hidden = message("Compte rendu", invisible_to_patient=True)
    decision = decide(facts(per(), citizen(), message=hidden))
    assert_decision(decision, Reason.INVISIBLE_TO_PATIENT, 550, "5.7.1")
    assert decision.rule is Rule.P7


def test_p7_the_same_message_still_goes_to_the_professionals() -> None:
    hidden = message("Compte rendu", invisible_to_patient=True)
    assert decide(facts(per(), org(), message=hidden)).accepted


def test_p7_it_is_decided_at_data_not_at_rcpt() -> None:
    assert decide(facts(per(), citizen())).accepted  # RCPT: the message is not known yet


def test_p7_invisible_to_legal_representatives_withholds_it_from_a_represented_mailbox() -> None:
    hidden = message("Résultats", invisible_to_representatives=True)
    child = citizen(INS_CHILD, represented=True)
    adult = citizen(INS_ALICE, represented=False)
    assert decide(facts(per(), child, message=hidden)).reason is (
        Reason.INVISIBLE_TO_REPRESENTATIVES
    )
    assert decide(facts(per(), adult, message=hidden)).accepted


def test_p7_applies_to_delivery_reports_too() -> None:
    hidden = message("Undelivered", invisible_to_patient=True)
    assert decide(facts(Party.null(), citizen(), message=hidden)).reason is (
        Reason.INVISIBLE_TO_PATIENT
    )


# -- P9: guardians act with the citizen's rights --------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "ex"),
    [(per(), OPEN), (per(), NO_EXCHANGE), (per(), ENDED), (pharmacy(), NO_EXCHANGE)],
)
@pytest.mark.parametrize("role", [ActorRole.LEGAL_REPRESENTATIVE, ActorRole.CAREGIVER])
def test_p9_a_guardian_acting_for_a_child_gets_the_child_s_decision(
    recipient: Party, ex: object, role: ActorRole
) -> None:
    child = citizen(INS_CHILD, represented=True)
    as_child = decide(facts(child, recipient, exchange=ex, last_dispensation=NOW - DAY))
    acting = Actor("parent-1", role)
    as_guardian = decide(
        facts(child, recipient, exchange=ex, last_dispensation=NOW - DAY, actor=acting)
    )
    assert as_guardian is as_child


def test_p9_a_guardian_whose_mandate_ended_is_refused() -> None:
    child = citizen(INS_CHILD, represented=True)
    decision = decide(facts(child, per(), exchange=OPEN, actor=guardian(active=False)))
    assert_decision(decision, Reason.MANDATE_INACTIVE, 550, "5.7.1")
    assert decision.rule is Rule.P9


def test_p9_the_holder_acts_for_themself_whatever_the_flag_says() -> None:
    holder = Actor("alice", ActorRole.HOLDER, mandate_active=False)
    assert decide(facts(citizen(), per(), exchange=OPEN, actor=holder)).accepted


# -- the trust space ---------------------------------------------------------------------------


def test_professionals_write_to_each_other() -> None:
    decision = decide(facts(per(), org()))
    assert decision.reason is Reason.PROFESSIONAL_TO_PROFESSIONAL and decision.accepted


def test_a_professional_never_writes_outside_the_trust_space() -> None:
    assert_decision(decide(facts(per(), external())), Reason.OUTSIDE_TRUST_SPACE, 550, "5.7.1")


@pytest.mark.parametrize("recipient", [per(), citizen(), external("a@b.example")])
def test_an_outside_sender_is_refused_whoever_it_writes_to(recipient: Party) -> None:
    decision = decide(facts(external(), recipient))
    assert decision.reason is Reason.SENDER_OUTSIDE_TRUST_SPACE


def test_delivery_reports_reach_professionals_and_open_citizen_profiles_only() -> None:
    report = Party.null()
    assert decide(facts(report, per())).reason is Reason.DELIVERY_REPORT
    assert decide(facts(report, citizen())).reason is Reason.DELIVERY_REPORT
    assert decide(facts(report, citizen(profile=ProfileStatus.CLOSED))).reason is (
        Reason.PROFILE_CLOSED
    )
    assert decide(facts(report, external())).reason is Reason.OUTSIDE_TRUST_SPACE


def test_the_null_reverse_path_is_never_a_recipient() -> None:
    with pytest.raises(ValueError, match="never a recipient"):
        decide(facts(per(), Party.null()))
    with pytest.raises(ValueError, match="no address"):
        Party("x@y", PartyKind.NULL)


def test_every_pair_of_kinds_has_a_route() -> None:
    recipients = [kind for kind in PartyKind if kind is not PartyKind.NULL]
    assert set(ROUTES) == {(s, r) for s in PartyKind for r in recipients}


def test_exchange_pair_names_the_professional_and_the_citizen_whichever_writes() -> None:
    key = ("dr.martin@ch-exemple.mssante.fr", INS_ALICE)
    assert exchange_pair(per(), citizen()) == key
    assert exchange_pair(citizen(), per()) == key
    shouted = Party.professional("Dr.Martin@CH-Exemple.mssante.fr", PartyKind.PER)
    assert exchange_pair(citizen(), shouted) == key
    assert exchange_pair(per(), org()) is None
    assert exchange_pair(citizen(), citizen(INS_BRUNO)) is None


def test_exchange_status_is_read_only_for_the_citizen_s_side() -> None:
    # the professional writes whatever the exchange says
    for status in ExchangeStatus:
        assert decide(facts(per(), citizen(), exchange=exchange(status))).accepted


def test_p3_the_configuration_section_gives_the_policy_settings() -> None:
    section = PolicySection(pharmacy_rule="listed", dispensation_window="30d")
    assert PolicyConfig.from_section(section) == PolicyConfig("listed", 30 * DAY)
    assert PolicyConfig.from_section(PolicySection()) == PolicyConfig("dispensation", 365 * DAY)
    with pytest.raises(ValueError, match="pharmacy_rule"):
        PolicyConfig("sometimes")
