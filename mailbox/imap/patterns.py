"""LIST/LSUB mailbox patterns (RFC 3501 §6.3.8): ``*`` matches anything, ``%`` anything but the
hierarchy delimiter, INBOX is case-insensitive (§5.1).

:class:`ListPattern` matches wire names (modified UTF-7) in time linear in the name, whatever
the pattern: it runs the pattern as a bit-parallel automaton (shift-and) instead of a
backtracking regex, so a hostile pattern such as ``*a*a*a…b`` costs no more than an ordinary
one. Consecutive wildcards are merged first (``%*`` is ``*``).

Must not: list mailboxes or apply LIST-EXTENDED selection (the session does).
"""

from __future__ import annotations

from typing import Final

_INBOX: Final = "INBOX"


def _tokens(pattern: str) -> list[str]:
    """Characters, with runs of wildcards merged into one (``*`` if the run has one)."""
    tokens: list[str] = []
    for char in pattern:
        if char in "*%" and tokens and tokens[-1] in "*%":
            if char == "*":
                tokens[-1] = "*"
            continue
        tokens.append(char)
    return tokens


class ListPattern:
    """``reference`` + ``pattern`` (both wire strings), as RFC 3501 §6.3.8 concatenates them."""

    __slots__ = ("_accept", "_delimiter", "_literal", "_percent", "_prefix", "_star", "_wild")

    def __init__(self, reference: str, pattern: str, delimiter: str | None) -> None:
        tokens = _tokens(reference + pattern)
        self._delimiter = delimiter
        self._literal: dict[str, int] = {}
        self._star = self._percent = 0
        for index, item in enumerate(tokens):
            bit = 1 << index
            if item == "*":
                self._star |= bit
            elif item == "%":
                self._percent |= bit
            else:
                self._literal[item] = self._literal.get(item, 0) | bit
        self._wild = self._star | self._percent
        self._accept = 1 << len(tokens)
        # the pattern's own spelling of a leading "INBOX" (for the case-insensitive match)
        prefix = ""
        for item in tokens[: len(_INBOX)]:
            if item in "*%" or item.upper() != _INBOX[len(prefix)]:
                break
            prefix += item
        self._prefix = prefix

    def _run(self, name: str) -> bool:
        """Shift-and: bit i of ``state`` says the first i tokens match the name so far."""
        literal, star, percent = self._literal, self._star, self._percent
        wild, delimiter = self._wild, self._delimiter
        state = 1 | ((1 & wild) << 1)
        for char in name:
            previous = state
            state = ((previous & literal.get(char, 0)) << 1) | (previous & star)
            if char != delimiter:
                state |= previous & percent
            if not state:
                return False
            state |= (state & wild) << 1
        return bool(state & self._accept)

    def matches(self, name: str) -> bool:
        """Whether the wire ``name`` matches."""
        if self._run(name):
            return True
        upper = name[: len(_INBOX)].upper()
        if upper == _INBOX and (len(name) == len(_INBOX) or name[len(_INBOX)] == self._delimiter):
            respelled = self._prefix + name[len(self._prefix) :]
            return respelled != name and self._run(respelled)
        return False
