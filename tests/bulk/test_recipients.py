"""The recipients file as hospital exports write it, and as they break it: BOM, ';' and ','
delimiters, quoted fields over several lines, Windows-1252, bad INS keys and duplicate rows
reported with their line numbers, oversized files and hostile bytes refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plitest.bulk import citizen_ins, write_campaign

from pli.mailgateway.bulk.campaign import CampaignError, CampaignLimits, load_campaign
from pli.mailgateway.bulk.recipients import (
    DUPLICATE_KEY,
    MALFORMED_LINE,
    RecipientFileError,
    parse_recipients,
)

TODAY = date(2025, 3, 1)
A, B, C = citizen_ins(1), citizen_ins(2), citizen_ins(3)


def parse(data: bytes | str, max_rows: int = 1000):  # type: ignore[no-untyped-def]
    raw = data.encode() if isinstance(data, str) else data
    return parse_recipients(raw, max_rows=max_rows, today=TODAY)


def test_utf8_bom_and_semicolons() -> None:
    text = f"INS;Nom;Prénoms;Date de naissance;Date RDV\r\n{A};DUPONT;Marie;01/01/1975;12/03\r\n"
    parsed = parse(b"\xef\xbb\xbf" + text.encode())
    assert (parsed.encoding, parsed.delimiter) == ("utf-8", ";")
    assert parsed.columns[0] == "ins"  # the BOM is not part of the first name
    (row,) = parsed.rows
    assert (row.line, row.key, row.given_names) == (2, A, "Marie")
    assert row.template_context()["date_rdv"] == "12/03"


def test_commas_and_quoted_fields_spanning_lines_keep_line_numbers() -> None:
    text = (
        "ins,nom,prenoms,date_naissance,adresse\n"
        f'{A},"DUPONT, épouse MARTIN","Marie ""Mimi""",1975-01-01,"1 rue X\nbât. B"\n'
        f"{B},DURAND,Luc,19800202,ici\n"
    )
    parsed = parse(text)
    assert parsed.delimiter == ","
    first, second = parsed.rows
    assert first.family_name == "DUPONT, épouse MARTIN" and first.given_names == 'Marie "Mimi"'
    assert first.fields["adresse"] == "1 rue X\nbât. B"
    assert (first.line, second.line) == (2, 4)  # the quoted line break counts
    assert second.birth_date == date(1980, 2, 2)


def test_bad_ins_key_is_reported_with_its_line_and_others_go_on() -> None:
    wrong = A[:-2] + f"{(int(A[-2:]) + 1) % 98:02d}"
    text = (
        "ins;nom;prenoms;date_naissance\n"
        f"{A};DUPONT;Marie;01/01/1975\n"
        f"{wrong};MARTIN;Paul;01/01/1975\n"
        f"12345;MARTIN;Paul;01/01/1975\n"
        f"{C};DURAND;Luc;01/01/1975\n"
    )
    parsed = parse(text)
    assert [row.line for row in parsed.rows] == [2, 5]
    assert [(e.line, e.reason) for e in parsed.errors] == [(3, "ins-key"), (4, "ins-length")]
    assert "clé" in parsed.errors[0].text


def test_a_duplicated_line_is_an_error_naming_the_first() -> None:
    text = (
        "ins;nom;prenoms;date_naissance\n"
        f"{A};DUPONT;Marie;01/01/1975\n"
        f"{B};DURAND;Luc;01/01/1975\n"
        f"{A};DUPONT;Marie;01/01/1975\n"
    )
    parsed = parse(text)
    assert [row.line for row in parsed.rows] == [2, 3]
    (error,) = parsed.errors
    assert (error.line, error.reason, error.key) == (4, DUPLICATE_KEY, A)
    assert "ligne 2" in error.text


def test_a_key_column_allows_two_messages_to_one_patient() -> None:
    text = (
        "ins;nom;prenoms;date_naissance;cle\n"
        f"{A};DUPONT;Marie;01/01/1975;rdv-1\n{A};DUPONT;Marie;01/01/1975;rdv-2\n"
    )
    assert [row.key for row in parse(text).rows] == ["rdv-1", "rdv-2"]


def test_windows_1252_export_is_read_and_said() -> None:
    text = f"ins;nom;prénoms;date_naissance\n{A};LEFÈVRE;Hélène;01/01/1975\n"
    parsed = parse(text.encode("cp1252"))
    assert parsed.encoding == "windows-1252" and parsed.rows[0].family_name == "LEFÈVRE"


def test_unclosed_quote_is_a_malformed_line() -> None:
    text = f'ins;nom;prenoms;date_naissance\n{A};"DUPONT;Marie;01/01/1975\n'
    parsed = parse(text)
    assert [e.reason for e in parsed.errors] == [MALFORMED_LINE]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "vide"),
        (b"nom;prenoms\nA;B\n", "ins"),
        (b"ins;nom;prenoms;date_naissance\x00\n", "nuls"),
        (b"ins;ins;nom;prenoms;date_naissance\n", "deux colonnes"),
        (";".join(f"c{i}" for i in range(300)).encode() + b"\n", "colonnes"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(RecipientFileError) as raised:
        parse(data)
    assert words in raised.value.text


def test_more_rows_than_allowed_is_refused() -> None:
    lines = ["ins;nom;prenoms;date_naissance"]
    lines += [f"{citizen_ins(n)};X;Y;01/01/1975" for n in range(1, 12)]
    with pytest.raises(RecipientFileError, match="plus de 10"):
        parse("\n".join(lines), max_rows=10)


def test_an_oversized_recipients_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    directory = write_campaign(tmp_path / "c", "ins;nom;prenoms;date_naissance\n" + "x" * 5000)
    limits = CampaignLimits(max_rows=100, max_csv_size=4096, max_attachment_size=1024)
    with pytest.raises(CampaignError, match="plus que 4096"):
        load_campaign(directory, limits=limits, today=TODAY)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_rows_errors_or_the_file_error(data: bytes) -> None:
    header = b"ins;nom;prenoms;date_naissance\n"
    try:
        parsed = parse(header + data)
    except RecipientFileError:
        return
    assert len(parsed.rows) + len(parsed.errors) <= data.count(b"\n") + data.count(b"\r") + 1
