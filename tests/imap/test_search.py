"""SEARCH: the whole key grammar of RFC 3501 §6.4.4 (and RFC 7162 MODSEQ) to exact key trees,
including every search line of imaptest's search-* scripts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.parser import parse_command
from pli.mailbox.imap.search import (
    SearchAddress,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)
from pli.mailbox.imap.sequence import STAR, SequenceSet

IMAPTEST = Path("/work/shared/imaptest/tests")


def key(text: str) -> SearchKey:
    command = parse_command([b"t SEARCH " + text.encode()])
    assert isinstance(command, c.Search)
    return command.key


SEEN = SearchFlag("\\Seen")
RECENT = SearchFlag("\\Recent")

KEYS = [
    ("ALL", SearchAll()),
    ("answered", SearchFlag("\\Answered")),
    ("UNANSWERED", SearchFlag("\\Answered", False)),
    ("DELETED", SearchFlag("\\Deleted")),
    ("UNDELETED", SearchFlag("\\Deleted", False)),
    ("DRAFT", SearchFlag("\\Draft")),
    ("UNDRAFT", SearchFlag("\\Draft", False)),
    ("FLAGGED", SearchFlag("\\Flagged")),
    ("UNFLAGGED", SearchFlag("\\Flagged", False)),
    ("SEEN", SEEN),
    ("UNSEEN", SearchFlag("\\Seen", False)),
    ("RECENT", RECENT),
    ("NEW", SearchAnd((RECENT, SearchFlag("\\Seen", False)))),
    ("OLD", SearchFlag("\\Recent", False)),
    ("KEYWORD $hello", SearchFlag("$hello")),
    ("UNKEYWORD $Forwarded", SearchFlag("$Forwarded", False)),
    ("FROM joe", SearchAddress("from", "joe")),
    ('TO "John Doe"', SearchAddress("to", "John Doe")),
    ("CC x@y.fr", SearchAddress("cc", "x@y.fr")),
    ("BCC ser-bc", SearchAddress("bcc", "ser-bc")),
    ("SUBJECT NIL", SearchHeader("subject", "NIL")),
    ('SUBJECT ""', SearchHeader("subject", "")),
    ('HEADER X-Extra "hello beautiful"', SearchHeader("x-extra", "hello beautiful")),
    ("BODY asdf", SearchText("asdf", body_only=True)),
    ("TEXT asdf", SearchText("asdf", body_only=False)),
    ("BEFORE 1-Feb-2024", SearchDate("before", date(2024, 2, 1))),
    ('ON "01-feb-2024"', SearchDate("on", date(2024, 2, 1))),
    ("SINCE 29-Feb-2024", SearchDate("since", date(2024, 2, 29))),
    ("SENTBEFORE 24-mar-2007", SearchDate("before", date(2007, 3, 24), sent=True)),
    ("SENTON 24-Mar-2007", SearchDate("on", date(2007, 3, 24), sent=True)),
    ("SENTSINCE 24-Mar-2007", SearchDate("since", date(2007, 3, 24), sent=True)),
    ("LARGER 1000", SearchSize("larger", 1000)),
    ("SMALLER 0", SearchSize("smaller", 0)),
    ("1:3,5", SearchSequence(SequenceSet(((1, 3), (5, 5))))),
    ("*:3", SearchSequence(SequenceSet(((STAR, 3),)))),
    ("UID 1:4294967295", SearchSequence(SequenceSet(((1, 4294967295),)), uid=True)),
    ("MODSEQ 5", SearchModSeq(5)),
    ('MODSEQ "/flags/\\\\draft" all 620162338', SearchModSeq(620162338, ("/flags/\\draft", "all"))),
    ("NOT SEEN", SearchNot(SEEN)),
    ("OR SEEN RECENT", SearchOr(SEEN, RECENT)),
    (
        "OR (SEEN RECENT) NOT 2",
        SearchOr(SearchAnd((SEEN, RECENT)), SearchNot(SearchSequence(SequenceSet.of(2)))),
    ),
    (
        "(3) UID 4",
        SearchAnd((SearchSequence(SequenceSet.of(3)), SearchSequence(SequenceSet.of(4), True))),
    ),
    ("((SEEN))", SEEN),
    ("SEEN NOT FLAGGED", SearchAnd((SEEN, SearchNot(SearchFlag("\\Flagged"))))),
    ("SUBJECT {5+}\r\nhé", SearchHeader("subject", "hé")),
]


@pytest.mark.parametrize(("text", "expected"), KEYS, ids=[k[0] for k in KEYS])
def test_search_key(text: str, expected: SearchKey) -> None:
    if "\r\n" in text:
        head, literal = text.split("\r\n")
        command = parse_command([b"t SEARCH " + head.encode(), literal.encode(), b""])
        assert isinstance(command, c.Search) and command.key == expected
        return
    assert key(text) == expected


def test_charset() -> None:
    command = parse_command([b"t SEARCH CHARSET US-ASCII ALL"])
    assert isinstance(command, c.Search) and command.charset == "US-ASCII"
    command = parse_command([b"t UID SEARCH ALL"])
    assert isinstance(command, c.Search) and command.uid and command.charset is None


def _imaptest_search_lines() -> list[str]:
    lines = []
    for path in sorted(IMAPTEST.glob("search-*")):
        if path.suffix == ".mbox":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split(" ", 2)
            if len(words) == 3 and words[0] == "ok" and words[1] == "search":
                lines.append(words[2])
            elif len(words) == 3 and words[:2] == ["ok", "uid"] and words[2].startswith("search"):
                lines.append(words[2][len("search ") :])
    return lines


@pytest.mark.skipif(not IMAPTEST.is_dir(), reason="imaptest scripts not present")
def test_every_imaptest_search_line_parses() -> None:
    """imaptest's scripts use $variables for UIDs and sizes; they are given plausible values."""
    lines = _imaptest_search_lines()
    assert len(lines) > 100
    for line in lines:
        concrete = line.replace("$$", "$").replace("$uidnext", "7").replace("$size", "1000")
        for name in ("$uid1", "$uid2", "$uid3", "$uid4", "$uid5"):
            concrete = concrete.replace(name, "3")
        if "return" in concrete.split(" ")[:1]:
            continue  # ESEARCH's RETURN: not offered (the brief leaves ESEARCH out)
        key(concrete)
