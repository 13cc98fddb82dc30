"""Policy P8: every decision has a stable reason, SMTP and enhanced codes, understandable text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pli.policy.reasons import (
    DECISIONS,
    SMTP_REPLY_LINE_MAX,
    Action,
    Decision,
    Reason,
    ascii_text,
    decision_for,
)

# RFC 3463 §2: class.subject.detail; class 2 success, 4 persistent transient, 5 permanent.
ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
FIRST_DIGIT = {Action.ACCEPT: "2", Action.DEFER: "4", Action.REJECT: "5"}


@pytest.mark.parametrize("reason", list(Reason))
def test_p8_every_reason_has_one_consistent_decision(reason: Reason) -> None:
    decision = decision_for(reason)
    assert decision.reason is reason
    digit = FIRST_DIGIT[decision.action]
    assert str(decision.smtp_code)[0] == digit
    assert ENHANCED.match(decision.enhanced_code)
    assert decision.enhanced_code[0] == digit
    assert decision.text and decision.log_text and decision.text != decision.log_text


@pytest.mark.parametrize("decision", list(DECISIONS.values()), ids=lambda d: d.reason.value)
def test_p8_the_smtp_reply_is_one_ascii_line_within_rfc_5321_limits(decision: Decision) -> None:
    reply = decision.smtp_reply
    assert reply.isascii() and "\r" not in reply and "\n" not in reply
    assert len(reply) + 2 <= SMTP_REPLY_LINE_MAX
    assert reply.startswith(f"{decision.smtp_code} {decision.enhanced_code} ")


def test_p8_refusals_say_distinct_things() -> None:
    refusals = [d for d in DECISIONS.values() if d.action is not Action.ACCEPT]
    assert len({d.text for d in refusals}) == len(refusals)
    assert len({d.log_text for d in refusals}) == len(refusals)


def test_reason_codes_are_stable_kebab_case_strings() -> None:
    for reason in Reason:
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", reason.value)
    # the names other parts and the audit trail already use
    assert Reason.CITIZEN_NOT_CONTACTED == "citizen-not-contacted"
    assert Reason.THREAD_CLOSED == "thread-closed"
    assert Reason.PROFILE_CLOSED == "profile-closed"


def test_ascii_text_keeps_the_french_readable() -> None:
    assert ascii_text("Ce professionnel a mis fin à l’échange : « réessayez »") == (
        'Ce professionnel a mis fin a l\'echange : " reessayez "'
    )
    with pytest.raises(UnicodeEncodeError):
        ascii_text("emoji ✉")


def test_decisions_are_shared_constants() -> None:
    assert decision_for(Reason.THREAD_CLOSED) is decision_for(Reason.THREAD_CLOSED)


def test_docs_policy_md_lists_every_reason_with_its_codes() -> None:
    """docs/policy.md carries the reason table for the store, SMTP and webmail engineers."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()
    for d in DECISIONS.values():
        row = (
            f"| `{d.reason.value}` | {d.rule.value} | {d.action.value} | "
            f"{d.smtp_code} {d.enhanced_code} | {d.log_text} |"
        )
        assert row in doc, row
