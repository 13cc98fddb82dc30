"""INS matricule validation (mssante.md §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.policy.ins import InsProblem, ins_key, ins_problem, is_valid_ins, make_ins


def test_the_ans_example_is_valid() -> None:
    assert is_valid_ins("146026322000196")  # 146026322000196@patient.mssante.fr (ANS)


def test_corsican_departments_use_19_and_18_for_the_key() -> None:
    nir = "185022A123456"
    assert ins_key(nir) == 97 - int("1850219123456") % 97
    assert is_valid_ins(make_ins(nir))
    assert is_valid_ins(make_ins("285022B123456").lower())


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("14602632200019", InsProblem.LENGTH),
        ("1460263220001966", InsProblem.LENGTH),
        ("", InsProblem.LENGTH),
        ("946026322000196", InsProblem.SHAPE),
        ("14602632200019X", InsProblem.SHAPE),
        ("1460263220001 6", InsProblem.SHAPE),
        ("146026322000197", InsProblem.KEY),
        ("146026322000100", InsProblem.KEY),
    ],
)
def test_bad_ins_says_what_is_wrong(value: str, problem: InsProblem) -> None:
    assert ins_problem(value) is problem


@given(st.from_regex(r"\A[12]\d{4}(\d{2}|2A|2B)\d{6}\Z"))
def test_every_made_ins_is_valid_and_any_other_key_is_not(nir: str) -> None:
    ins = make_ins(nir)
    assert is_valid_ins(ins)
    wrong = f"{(int(ins[13:]) % 97) + 1:02d}"
    assert ins_problem(nir + wrong) is InsProblem.KEY


@given(st.text(max_size=20))
def test_any_text_gives_an_answer_never_an_exception(text: str) -> None:
    assert ins_problem(text) in (None, *InsProblem)
