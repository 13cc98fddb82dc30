"""LIST patterns (RFC 3501 §6.3.8): wildcards, hierarchy, INBOX, and linear time for hostile
patterns; checked against a brute-force reference with Hypothesis."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailbox.imap.patterns import ListPattern


@pytest.mark.parametrize(
    ("reference", "pattern", "name", "expected"),
    [
        ("", "*", "a/b", True),
        ("", "%", "a/b", False),
        ("", "%", "ab", True),
        ("", "a/%", "a/b", True),
        ("", "a/%", "a/b/c", False),
        ("", "a/*", "a/b/c", True),
        ("", "%/%", "a/b", True),
        ("", "a*b%c", "ab/bc", True),  # greedy matching would miss this one
        ("", "*test4", "box/test3/test4", True),  # imaptest list
        ("", "*test4", "box/test3/test4/test5", False),
        ("", "box/%3/%", "box/test3/test4", True),
        ("", "box/%t*4", "box/test3/test4", True),
        ("box/", "*", "box/test", True),  # imaptest list: LIST box/ *
        ("box/", "%", "box/a/b", False),
        ("", "", "", True),
        ("", "a", "", False),
        ("", "%*%", "x/y", True),
        ("", "p&AOQA5A-", "p&AOQA5A-", True),  # imaptest mutf7
        ("", "inbox", "INBOX", True),  # RFC 3501 §5.1: INBOX is case-insensitive
        ("", "inb*", "INBOX", True),
        ("", "Inbox/%", "INBOX/Drafts", True),
        ("", "inbox/%", "INBOXES/x", False),
        ("", "iNbOx*", "INBOX/Sent", True),
        ("", "x*", "INBOX", False),
    ],
)
def test_list_pattern(reference: str, pattern: str, name: str, expected: bool) -> None:
    assert ListPattern(reference, pattern, "/").matches(name) is expected


def test_without_delimiter_percent_is_star() -> None:
    assert ListPattern("", "a%", None).matches("a/b/c")


def test_hostile_pattern_is_linear() -> None:
    """A backtracking matcher would take exponential time here; shift-and takes one pass."""
    pattern = "*a" * 2000 + "b"
    name = "a" * 4000
    assert not ListPattern("", pattern, "/").matches(name)
    assert ListPattern("", pattern[:-1], "/").matches(name)


def _reference(pattern: str, name: str, delimiter: str) -> bool:
    regex = "".join(
        ".*" if ch == "*" else f"[^{re.escape(delimiter)}]*" if ch == "%" else re.escape(ch)
        for ch in pattern
    )
    return re.fullmatch(regex, name, re.DOTALL) is not None


@given(st.text(alphabet="ab/*%", max_size=8), st.text(alphabet="ab/", max_size=10))
def test_agrees_with_a_regex(pattern: str, name: str) -> None:
    assert ListPattern("", pattern, "/").matches(name) == _reference(pattern, name, "/")
