"""Policy P7: which confidentiality codes make a document invisible to the patient."""

from __future__ import annotations

import pytest

from pli.policy.documents import restrictions


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], (False, False)),
        (["N"], (False, False)),
        (["N", "MASQUE_PS"], (False, False)),  # hidden from professionals: not the patient's
        (["N", "INVISIBLE_PATIENT"], (True, False)),
        (["invisible_patient "], (True, False)),  # TRE_A07 is case-insensitive
        (["INVISIBLE_REPRESENTANTS_LEGAUX"], (False, True)),
        (["INVISIBLE_REP_LEGAUX"], (False, True)),  # HL7v2 MetaDMPMSS spelling
        (["R", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"], (True, True)),
        (["INVISIBLE"], (False, False)),
    ],
)
def test_p7_confidentiality_codes(codes: list[str], expected: tuple[bool, bool]) -> None:
    assert restrictions(codes) == expected


def test_p7_any_document_of_the_message_counts() -> None:
    per_document = [["N"], ["N", "INVISIBLE_PATIENT"], ["N"]]
    assert restrictions(code for codes in per_document for code in codes) == (True, False)
