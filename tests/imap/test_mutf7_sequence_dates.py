"""Modified UTF-7 (RFC 3501 §5.1.3), sequence sets (RFC 3501 §9, §6.4.8) and IMAP dates: exact
values, refusals, and properties checked by Hypothesis against brute force."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailbox.imap import mutf7
from pli.mailbox.imap.dates import format_date_time, parse_date, parse_date_time
from pli.mailbox.imap.errors import MailboxNameError, ParseError
from pli.mailbox.imap.limits import MAX_SEQUENCE_SET_RANGES
from pli.mailbox.imap.sequence import STAR, SequenceSet, format_numbers

# --- modified UTF-7 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("a&b", "a&-b"),
        ("&", "&-"),
        ("pää", "p&AOQA5A-"),  # imaptest mutf7
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3
        ("Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"),
        ("😀", "&2D3eAA-"),  # outside the BMP: a surrogate pair
        ("tab\there", "tab&AAk-here"),
    ],
)
def test_mutf7_examples(name: str, wire: str) -> None:
    assert mutf7.encode(name) == wire
    assert mutf7.decode(wire) == name
    assert mutf7.is_valid(wire)


@pytest.mark.parametrize(
    "wire",
    [
        "&Jjo",  # unterminated
        "&Jjo!-",  # not base64
        "&AGE-",  # "a" encoded: must be written directly
        "&AOQ-&AOQ-",  # two adjacent shifts: must be one
        "&AOQ",
        "&A-",  # one base64 char
        "&AOR-",  # non-zero padding bits
        "&2D0-",  # a lone high surrogate
        "&AAAA-",  # three octets: odd UTF-16
        "caf\xe9",  # 8-bit
        "a\x01b",  # control
        "!#$&'+,-.0123456789:;<=>?@^_`|[}",  # imaptest atoms
    ],
)
def test_mutf7_invalid(wire: str) -> None:
    with pytest.raises(MailboxNameError):
        mutf7.decode(wire)
    assert not mutf7.is_valid(wire)


def test_mutf7_unpaired_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(MailboxNameError):
        mutf7.encode("bad\udcff")


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",))))
def test_mutf7_round_trip(name: str) -> None:
    wire = mutf7.encode(name)
    assert wire.isascii() and all(" " <= ch <= "~" for ch in wire)
    assert mutf7.decode(wire) == name


@given(st.text(alphabet="&-+,AZaz09!é\x00", max_size=30))
def test_mutf7_decode_raises_only_mailbox_name_error(wire: str) -> None:
    try:
        name = mutf7.decode(wire)
    except MailboxNameError:
        return
    assert mutf7.encode(name) == wire  # what is accepted is canonical


# --- sequence sets ---------------------------------------------------------------------------


def test_sequence_set_parse_and_text() -> None:
    assert SequenceSet.parse("1:*") == SequenceSet(((1, STAR),))
    assert SequenceSet.parse("5,3:4") == SequenceSet(((5, 5), (3, 4)))
    assert SequenceSet.parse("*:3") == SequenceSet(((STAR, 3),))
    assert str(SequenceSet.parse("*:3,7,1:*")) == "*:3,7,1:*"
    assert SequenceSet.parse("1:*").uses_star and not SequenceSet.parse("1:2").uses_star
    for invalid in ("", "0", "1:", ":2", "1,,2", "a", "1:2:3", "-1", "01", "4294967296", "1 2"):
        with pytest.raises(ParseError):
            SequenceSet.parse(invalid)
    SequenceSet.parse(",".join(["1"] * MAX_SEQUENCE_SET_RANGES))
    with pytest.raises(ParseError, match="more than"):
        SequenceSet.parse(",".join(["1"] * (MAX_SEQUENCE_SET_RANGES + 1)))


def test_resolve_follows_rfc_3501() -> None:
    assert SequenceSet.parse("4:2").resolve(10) == [(2, 4)]  # imaptest: search 4:2
    assert SequenceSet.parse("*:3").resolve(5) == [(3, 5)]
    assert SequenceSet.parse("1,4,*").resolve(5) == [(1, 1), (4, 5)]
    assert SequenceSet.parse("559:*").resolve(500) == [(500, 500)]  # §6.4.8: includes the last
    assert SequenceSet.parse("600:700").resolve(500) == []
    assert SequenceSet.parse("1:*").resolve(0) == []
    assert SequenceSet.parse("3:5,1,2,9:7").resolve(20) == [(1, 5), (7, 9)]
    assert SequenceSet.parse("6:*").highest(5) == 6  # beyond the mailbox: the caller says BAD
    assert SequenceSet.parse("*").highest(0) == 0


def test_select_indices() -> None:
    uids = [3, 7, 8, 20, 21, 40]
    assert SequenceSet.parse("1:*").select_indices(uids) == [0, 1, 2, 3, 4, 5]
    assert SequenceSet.parse("8:21,*").select_indices(uids) == [2, 3, 4, 5]
    assert SequenceSet.parse("41:*").select_indices(uids) == [5]
    assert SequenceSet.parse("9:19").select_indices(uids) == []
    assert SequenceSet.parse("1:*").select_indices([]) == []


def test_format_numbers() -> None:
    assert format_numbers([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert format_numbers([5, 4]) == "5,4"
    assert format_numbers([]) == ""
    assert format_numbers([42]) == "42"


ranges = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 40)),  # 0 is STAR
    min_size=1,
    max_size=8,
)


@given(ranges, st.integers(0, 45))
def test_resolution_agrees_with_brute_force(pairs: list[tuple[int, int]], largest: int) -> None:
    sequence_set = SequenceSet(tuple(pairs))
    expected = set()
    for first, last in pairs:
        low = largest if first == STAR else first
        high = largest if last == STAR else last
        low, high = min(low, high), max(low, high)
        expected |= {n for n in range(low, high + 1) if 1 <= n <= largest}
    assert list(sequence_set.iter_values(largest)) == sorted(expected)
    for number in range(0, largest + 2):
        assert sequence_set.contains(number, largest) == (number in expected)
    resolved = sequence_set.resolve(largest)
    assert all(a <= b for a, b in resolved)
    assert all(resolved[i][1] + 1 < resolved[i + 1][0] for i in range(len(resolved) - 1))


@given(st.lists(st.integers(1, 60), unique=True).map(sorted), ranges)
def test_select_indices_agrees_with_brute_force(
    uids: list[int], pairs: list[tuple[int, int]]
) -> None:
    sequence_set = SequenceSet(tuple(pairs))
    largest = uids[-1] if uids else 0
    expected = [i for i, uid in enumerate(uids) if sequence_set.contains(uid, largest)]
    assert sequence_set.select_indices(uids) == expected


@given(st.lists(st.integers(1, 100), min_size=1, unique=True))
def test_format_numbers_round_trips(numbers: list[int]) -> None:
    parsed = SequenceSet.parse(format_numbers(numbers))
    assert [n for first, last in parsed.ranges for n in range(first, last + 1)] == numbers


# --- dates -----------------------------------------------------------------------------------


def test_dates() -> None:
    assert parse_date("1-Feb-2024") == date(2024, 2, 1)
    assert parse_date("01-FEB-2024") == date(2024, 2, 1)
    moment = parse_date_time(" 7-Jul-1996 02:44:25 -0700")
    assert moment == datetime(1996, 7, 7, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    assert format_date_time(moment) == b'"07-Jul-1996 02:44:25 -0700"'
    for invalid in (
        "7-Jul-1996 02:44:25 -0700",
        "07-Jul-1996 02:44:25",
        "07-Jul-1996 25:00:00 +0000",
    ):
        with pytest.raises(ParseError):
            parse_date_time(invalid)


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 1),
        max_value=datetime(9999, 12, 31),
        timezones=st.sampled_from(
            [timezone(timedelta(minutes=m)) for m in (-720, -90, 0, 60, 345, 840)]
        ),
    )
)
def test_date_time_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    assert parse_date_time(format_date_time(moment).decode()[1:-1]) == moment
