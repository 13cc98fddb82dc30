"""Policy P4: which subjects and X-MSS-MES values end an exchange (decisions in ending.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.policy.ending import ends_exchange, is_end_header, is_end_subject
from pli.policy.facts import MessageTraits


@pytest.mark.parametrize(
    "subject",
    ["[FIN]", "[fin]", "[Fin]", "[FIN] ", " [FIN]", "\t[FIN]\r\n", "  [fIN]  "],
)
def test_p4_these_subjects_end_the_exchange(subject: str) -> None:
    assert is_end_subject(subject)


@pytest.mark.parametrize(
    "subject",
    [
        "Re: [FIN]",
        "RE : [FIN]",
        "TR: [FIN]",
        "Fwd: [FIN]",
        "[FIN] merci",
        "[FIN] - compte rendu",
        "Merci [FIN]",
        "[ FIN ]",
        "FIN",
        "[FIN",
        "[FINI]",
        "",
        "[fın]",  # dotless i: upper() would give [FIN]
        "[ＦＩＮ]",  # full-width letters
        "［FIN］",  # full-width brackets
        "\u00a0[FIN]",  # only ASCII whitespace is trimmed
        "[FIN]\u200b",
        "=?utf-8?q?=5BFIN=5D?=",  # still encoded: the caller decodes RFC 2047 first
    ],
)
def test_p4_these_subjects_do_not(subject: str) -> None:
    assert not is_end_subject(subject)


@pytest.mark.parametrize(
    ("values", "ends"),
    [
        (("FIN",), True),
        (("fin",), True),
        ((" Fin \t",), True),
        (("OK", "FIN"), True),  # any of several headers
        (("",), False),
        (("FINI",), False),
        (("NON",), False),
        (("FIN; reason=x",), False),
        ((), False),
    ],
)
def test_p4_x_mss_mes_fin_whatever_its_case_and_spacing(
    values: tuple[str, ...], ends: bool
) -> None:
    assert is_end_header(values) is ends


def test_p4_x_mss_mes_fin_ends_whatever_the_subject() -> None:
    assert ends_exchange(MessageTraits(subject="Votre compte rendu", mss_mes=("FIN",)))
    assert ends_exchange(MessageTraits(subject="Re: [FIN]", mss_mes=("fin",)))
    assert ends_exchange(MessageTraits(subject="[FIN]"))
    assert not ends_exchange(MessageTraits(subject="Votre compte rendu", mss_mes=("OK",)))


@given(st.text(max_size=40))
def test_p4_a_subject_ends_the_exchange_only_if_it_is_fin_once_trimmed(subject: str) -> None:
    assert is_end_subject(subject) == (subject.strip(" \t\r\n").lower() == "[fin]")
