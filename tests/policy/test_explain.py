"""Explanations for operators (``pli policy explain``) and the audit record (policy P8, P9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from plitest.policy import (
    ENDED,
    INS_ALICE,
    INS_CHILD,
    NOW,
    OPEN,
    citizen,
    citizen_address,
    facts,
    guardian,
    message,
    org,
    per,
    pharmacy,
)

from pli.config.schema import Settings
from pli.policy.command import ExplainOptions, facts_from_options, infer_kind, policy_group
from pli.policy.engine import evaluate
from pli.policy.explain import audit_fields, explain, render
from pli.policy.facts import (
    UNAVAILABLE,
    ExchangeStatus,
    Facts,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
)
from pli.policy.reasons import Reason


@pytest.mark.parametrize(
    "f",
    [
        facts(citizen(), per(), exchange=ENDED),
        facts(citizen(), per(), exchange=OPEN),
        facts(citizen(), pharmacy(), last_dispensation=NOW - 400 * 86400),
        facts(citizen(), pharmacy(), last_dispensation=UNAVAILABLE),
        facts(per(), citizen(profile=ProfileStatus.CLOSED)),
        facts(per(), citizen(), message=message("[FIN]")),
        facts(citizen(), citizen()),
    ],
)
def test_the_explanation_gives_the_engine_s_decision(f: Facts) -> None:
    assert explain(f).decision is evaluate(f)


def test_a_refusal_names_the_rule_that_fired_and_what_was_not_reached() -> None:
    text = render(explain(facts(citizen(), per(), exchange=ENDED)))
    assert text.startswith("decision    reject: 550 5.7.1 thread-closed (rule P4)\n")
    assert "sender sees  " not in text and "Ce professionnel a mis fin" in text
    assert "exchange    ended since" in text and "<fin@ch-exemple.mssante.fr>" in text
    assert "→ thread-closed" in text
    assert "pharmacy the citizen may write to first? (not reached)" in text
    assert "route citizen → professional" in text


def test_a_default_decision_says_no_check_objected() -> None:
    explanation = explain(facts(citizen(), per()))
    assert explanation.deciding_step is None
    assert "then  citizen-not-contacted (the route's default)" in render(explanation)


def test_the_explanation_shows_the_message_traits_and_effects() -> None:
    traits = message(
        "[FIN]",
        mss_mes=("FIN",),
        message_id="<m@x>",
        in_reply_to=("<a@x>",),
        invisible_to_representatives=True,
    )
    text = render(explain(facts(org(), citizen(), message=traits)))
    assert "subject     '[FIN]'" in text
    assert "X-MSS-MES   'FIN'" in text
    assert "replies to  <a@x> (recorded, not decisive)" in text
    assert "documents   invisible to legal representatives" in text
    assert f"effect      ended: exchange cardiologie@ch-exemple.mssante.fr / {INS_ALICE}" in text


def test_the_explanation_shows_pharmacy_and_guardian_facts() -> None:
    child = citizen(INS_CHILD, represented=True)
    f = facts(child, pharmacy(), last_dispensation=NOW - 3 * 86400, actor=guardian("mum"))
    text = render(explain(f, PolicyConfig("dispensation", 30 * 86400)))
    assert "acting      mum (legal-representative)" in text
    assert "rule dispensation, window 30 days, last dispensation 3 days ago" in text
    assert "read by legal representatives" in text
    assert "decision    accept: 250 2.1.5 citizen-to-pharmacy (rule P3)" in text


def test_the_explanation_shows_a_malformed_ins_problem() -> None:
    f = facts(per(), citizen("14602632200019X"))
    assert "INS ins-shape" in render(explain(f))


def test_p8_p9_the_audit_record_says_who_acted_for_whom_and_why() -> None:
    f = facts(citizen(INS_CHILD), per(), exchange=OPEN, actor=guardian("mum"), message=message())
    record = audit_fields(f, evaluate(f))
    assert record == {
        "sender": citizen_address(INS_CHILD),
        "sender_kind": "citizen",
        "recipient": "dr.martin@ch-exemple.mssante.fr",
        "recipient_kind": "PER",
        "actor": "mum",
        "actor_role": "legal-representative",
        "action": "accept",
        "reason": "citizen-reply",
        "rule": "P2",
        "smtp": "250 2.1.5",
        "message_id": "",
    }


# -- the command -------------------------------------------------------------------------------

SETTINGS = Settings.model_validate({"domains": {"professional": ["ch-exemple.mssante.fr"]}})


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("<>", PartyKind.NULL),
        (citizen_address(INS_ALICE), PartyKind.CITIZEN),
        ("dr@ch-exemple.mssante.fr", PartyKind.PRO),
        ("dr@autre-operateur.mssante.fr", PartyKind.PRO),
        ("dr@gmail.com", PartyKind.EXTERNAL),
    ],
)
def test_the_command_infers_kinds_from_addresses(address: str, kind: PartyKind) -> None:
    assert infer_kind(address, SETTINGS) is kind


def test_the_command_builds_facts_from_options() -> None:
    options = ExplainOptions(
        sender=citizen_address(INS_ALICE),
        recipient="officine@pharmacie.mssante.fr",
        recipient_kind=PartyKind.ORG,
        pharmacy=True,
        exchange=ExchangeStatus.ENDED,
        exchange_age_days=10,
        dispensation_age_days=2,
        guardian="mum",
        mandate_inactive=True,
    )
    f = facts_from_options(options, SETTINGS, NOW)
    assert f.recipient.is_pharmacy and f.exchange.since == NOW - 10 * 86400
    assert f.last_dispensation == NOW - 2 * 86400 and f.message is None
    assert f.actor is not None and not f.actor.mandate_active
    assert evaluate(f).reason is Reason.MANDATE_INACTIVE


def run(*args: str, config: Path | None = None) -> tuple[int, str]:
    extra = ["-c", str(config)] if config else []
    result = CliRunner().invoke(policy_group, ["explain", *extra, *args])
    return result.exit_code, result.output


def test_pli_policy_explain_why_a_citizen_was_refused(tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text('[policy]\npharmacy_rule = "listed"\n')
    code, out = run(
        "--from",
        citizen_address(INS_ALICE),
        "--to",
        "officine@pharmacie.mssante.fr",
        "--to-kind",
        "ORG",
        "--pharmacy",
        config=config,
    )
    assert code == 0, out
    assert "citizen-to-pharmacy (rule P3)" in out and "rule listed" in out
    code, out = run(
        "--from", citizen_address(INS_ALICE), "--to", "dr@ch.mssante.fr", "--exchange", "ended"
    )
    assert code == 0 and "thread-closed (rule P4)" in out


def test_pli_policy_explain_at_the_data_moment() -> None:
    code, out = run(
        "--from",
        "dr@ch.mssante.fr",
        "--to",
        citizen_address(INS_ALICE),
        "--subject",
        "Résultats",
        "--invisible-to-patient",
    )
    assert code == 0 and "invisible-to-patient (rule P7)" in out


def test_pli_policy_explain_refuses_impossible_facts_and_bad_configuration(tmp_path: Path) -> None:
    code, out = run("--from", "dr@ch.mssante.fr", "--to", "<>")
    assert code == 2 and "never a recipient" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\npharmacy_rule = "sometimes"\n')
    code, out = run("--from", "a@b.mssante.fr", "--to", "c@d.mssante.fr", config=bad)
    assert code == 2 and "policy.pharmacy_rule" in out
