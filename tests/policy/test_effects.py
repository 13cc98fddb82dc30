"""Effects of accepted messages on the exchange (policy P2, P4): what the store records."""

from __future__ import annotations

import pytest
from plitest.policy import ENDED, INS_ALICE, NOW, OPEN, citizen, facts, message, org, per

from pli.policy.effects import EffectKind, ExchangeEffect, apply_effect, conversation_effects
from pli.policy.engine import evaluate
from pli.policy.facts import NO_EXCHANGE, Exchange, ExchangeStatus, Facts, Party, ProfileStatus

PRO_KEY = ("dr.martin@ch-exemple.mssante.fr", INS_ALICE)


def effects_of(f: Facts) -> tuple[ExchangeEffect, ...]:
    return conversation_effects(f, evaluate(f))


def test_p2_an_ordinary_professional_message_opens_the_exchange() -> None:
    (effect,) = effects_of(facts(per(), citizen(), message=message(message_id="<m1@x>")))
    assert effect == ExchangeEffect(EffectKind.WROTE, *PRO_KEY, NOW, "<m1@x>")
    assert effect.key == PRO_KEY
    assert apply_effect(NO_EXCHANGE, effect) == Exchange(ExchangeStatus.OPEN, NOW, "<m1@x>")


@pytest.mark.parametrize(
    "traits",
    [message("[FIN]"), message("[fin] "), message("Votre dossier", mss_mes=("FIN",))],
)
def test_p4_fin_subject_or_header_ends_the_exchange(traits: object) -> None:
    (effect,) = effects_of(facts(per(), citizen(), message=traits))
    assert effect.kind is EffectKind.ENDED
    assert apply_effect(OPEN, effect).status is ExchangeStatus.ENDED


def test_p4_re_fin_is_an_ordinary_message() -> None:
    (effect,) = effects_of(facts(per(), citizen(), message=message("Re: [FIN]")))
    assert effect.kind is EffectKind.WROTE


def test_p4_a_closed_exchange_is_reopened_by_a_new_ordinary_message() -> None:
    state = ENDED
    assert evaluate(facts(citizen(), per(), exchange=state)).accepted is False
    (effect,) = effects_of(facts(per(), citizen(), message=message("Nouveau rendez-vous")))
    state = apply_effect(state, effect)
    assert state.status is ExchangeStatus.OPEN and state.since == NOW
    assert evaluate(facts(citizen(), per(), exchange=state)).accepted


def test_p4_fin_without_a_previous_message_records_the_exchange_ended() -> None:
    (effect,) = effects_of(facts(org(), citizen(), message=message("[FIN]")))
    assert apply_effect(NO_EXCHANGE, effect).status is ExchangeStatus.ENDED


def test_an_open_exchange_keeps_its_opening_when_the_professional_writes_again() -> None:
    (effect,) = effects_of(facts(per(), citizen(), message=message()))
    assert apply_effect(OPEN, effect) is OPEN


@pytest.mark.parametrize(
    "f",
    [
        facts(per(), citizen()),  # RCPT moment: no message yet
        facts(per(), citizen(profile=ProfileStatus.CLOSED), message=message()),  # refused
        facts(per(), citizen(), message=message("[FIN]", invisible_to_patient=True)),  # P7
        facts(citizen(), per(), exchange=OPEN, message=message()),  # citizens change nothing
        facts(Party.null(), citizen(), message=message("[FIN]")),  # delivery reports neither
        facts(per(), org(), message=message("[FIN]")),  # pro to pro: no exchange
    ],
)
def test_nothing_changes_unless_a_professional_message_is_delivered_to_a_citizen(f: Facts) -> None:
    assert effects_of(f) == ()


def test_the_effect_names_the_exchange_in_canonical_form() -> None:
    sender = Party.professional("Cardiologie@CH-Exemple.mssante.fr", per().kind)
    recipient = Party.citizen(f"{INS_ALICE}@Patient.MSSante.fr", ProfileStatus.OPEN)
    (effect,) = effects_of(facts(sender, recipient, message=message()))
    assert effect.key == ("cardiologie@ch-exemple.mssante.fr", INS_ALICE)
