"""The HL7 v2 values of XDS slots: CX patient ids, XCN persons, XON organisations, DTM instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pli.mailbox.xdm.hl7v2 import parse_cx, parse_dtm, parse_xcn, parse_xon_name, unescape
from pli.mailbox.xdm.model import PatientId


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "146026322000196^^^&1.2.250.1.213.1.4.8&ISO^NH",
            PatientId("146026322000196", "1.2.250.1.213.1.4.8", "NH"),
        ),
        ("12345^^^HOSP&1.2.3.4&ISO", PatientId("12345", "1.2.3.4", None)),
        ("12345^^^HOSP", PatientId("12345", "HOSP", None)),
        ("12345", PatientId("12345", None, None)),
        ("A\\S\\B^^^&1.2&ISO", PatientId("A^B", "1.2", None)),
        ("^^^&1.2&ISO", None),
        ("", None),
    ],
)
def test_cx(value: str, expected: PatientId | None) -> None:
    assert parse_cx(value) == expected


def test_ins_kinds_and_qualification() -> None:
    assert PatientId("146026322000196", "1.2.250.1.213.1.4.8").kind == "INS-NIR"
    assert PatientId("146026322000196", "1.2.250.1.213.1.4.9").kind == "INS-NIA"
    assert PatientId("146026322000196", "1.2.250.1.213.1.4.10").kind == "INS-NIR-TEST"
    assert PatientId("146026322000196", "1.2.250.1.213.1.4.8").is_qualified_ins
    assert not PatientId("146026322000197", "1.2.250.1.213.1.4.8").is_qualified_ins  # key
    assert not PatientId("146026322000196", "1.2.3").is_qualified_ins  # not an INS authority


def test_xcn_of_a_french_professional() -> None:
    author = parse_xcn("810001234567^MARTIN^Jeanne^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")
    assert (author.identifier, author.family, author.given, author.prefix) == (
        "810001234567",
        "MARTIN",
        "Jeanne",
        "Dr",
    )
    assert author.identifier_authority == "1.2.250.1.71.4.2.1"
    assert author.identifier_type == "IDNPS"
    assert author.name == "Dr Jeanne MARTIN"
    assert parse_xcn("^DUPONT").name == "DUPONT"
    assert parse_xcn("").name is None


def test_xon_and_escapes() -> None:
    assert parse_xon_name("CH Exemple^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^11750000001") == (
        "CH Exemple"
    )
    assert parse_xon_name("A \\T\\ B") == "A & B"
    assert unescape("\\F\\\\R\\\\E\\") == "|~\\"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20250301093015", datetime(2025, 3, 1, 9, 30, 15, tzinfo=UTC)),
        ("202503010930", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("20250301", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025", datetime(2025, 1, 1, tzinfo=UTC)),
        ("20250301093015+0100", datetime(2025, 3, 1, 8, 30, 15, tzinfo=UTC)),
        ("20250301093015.123-0230", datetime(2025, 3, 1, 12, 0, 15, tzinfo=UTC)),
    ],
)
def test_dtm(value: str, expected: datetime) -> None:
    assert parse_dtm(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2025-03-01",
        "20251301",
        "20250230",
        "2025030125",
        "0000",
        "00010101+1400",
        "20250301+9900",
        "x2025",
    ],
)
def test_malformed_dtm_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError):
        parse_dtm(value)
