"""Sequence sets (RFC 3501 §9 ``sequence-set``): ``1:*``, ``5,3:4``, ``*:3``.

A :class:`SequenceSet` keeps the ranges as written (``*`` is :data:`STAR`); resolution against a
mailbox happens in the session with the helpers here, which never iterate over more than the
values they return:

- :meth:`SequenceSet.resolve` — sorted, merged, inclusive ranges once ``*`` is known (RFC 3501
  §6.4.8: ``*`` is the largest number in use, ``n:m`` is the same as ``m:n``, so ``559:*``
  includes the last UID even when 559 is beyond it).
- :meth:`SequenceSet.select_indices` — positions of the members in a sorted list of UIDs, by
  bisection: O(ranges × log n + matches).
- :meth:`SequenceSet.contains`, :meth:`SequenceSet.highest` (for RFC 3501 §9's "a sequence
  number greater than the number of messages is BAD").
- :func:`format_numbers` — the compact wire form of numbers in a given order (COPYUID, APPENDUID,
  SEARCH results for ESEARCH-like output).

Must not: know about messages or the store.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from .errors import ParseError
from .limits import MAX_NUMBER, MAX_SEQUENCE_SET_RANGES

#: ``*`` in a range: the largest number in use (0 is never a valid sequence number or UID).
STAR: Final = 0

_NUMBER = r"(?:[1-9][0-9]{0,9}|\*)"
_SET = re.compile(rf"{_NUMBER}(?::{_NUMBER})?(?:,{_NUMBER}(?::{_NUMBER})?)*")


def _number(text: str) -> int:
    if text == "*":
        return STAR
    value = int(text)
    if value > MAX_NUMBER:
        raise ParseError("number out of range in sequence set")
    return value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges as written, each ``(first, last)`` with :data:`STAR` for ``*`` (``5`` is (5, 5))."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        if not _SET.fullmatch(text):
            raise ParseError("invalid sequence set")
        items = text.split(",")
        if len(items) > MAX_SEQUENCE_SET_RANGES:
            raise ParseError(f"sequence set has more than {MAX_SEQUENCE_SET_RANGES} ranges")
        ranges = []
        for item in items:
            first, _, last = item.partition(":")
            start = _number(first)
            ranges.append((start, _number(last) if last else start))
        return cls(tuple(ranges))

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        return cls(tuple((number, number) for number in numbers))

    def __str__(self) -> str:
        return ",".join(
            _text(first) if first == last else f"{_text(first)}:{_text(last)}"
            for first, last in self.ranges
        )

    @property
    def uses_star(self) -> bool:
        return any(STAR in pair for pair in self.ranges)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, disjoint, inclusive ranges within 1..largest (empty when largest is 0)."""
        if largest < 1:
            return []
        bounded = []
        for first, last in self.ranges:
            low = largest if first == STAR else first
            high = largest if last == STAR else last
            if low > high:
                low, high = high, low
            if low > largest:
                continue
            bounded.append((low, min(high, largest)))
        bounded.sort()
        merged: list[tuple[int, int]] = []
        for low, high in bounded:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def highest(self, largest: int) -> int:
        """The largest number the set names once ``*`` is ``largest`` (0 for ``*`` when empty)."""
        return max(largest if value == STAR else value for pair in self.ranges for value in pair)

    def contains(self, number: int, largest: int) -> bool:
        """Whether ``number`` (within 1..largest) is a member once ``*`` is ``largest``."""
        if not 1 <= number <= largest:
            return False
        for first, last in self.ranges:
            low = largest if first == STAR else first
            high = largest if last == STAR else last
            if low > high:
                low, high = high, low
            if low <= number <= high:
                return True
        return False

    def select_indices(self, sorted_values: Sequence[int]) -> list[int]:
        """0-based positions of the members in ``sorted_values`` (ascending UIDs), ``*`` being
        the last value; ascending, each once."""
        if not sorted_values:
            return []
        found: list[int] = []
        for low, high in self.resolve(sorted_values[-1]):
            start = bisect_left(sorted_values, low)
            stop = bisect_right(sorted_values, high, lo=start)
            found.extend(range(start, stop))
        return found

    def iter_values(self, largest: int) -> Iterator[int]:
        """Every member within 1..largest, ascending (bounded by ``largest``)."""
        for low, high in self.resolve(largest):
            yield from range(low, high + 1)


def _text(value: int) -> str:
    return "*" if value == STAR else str(value)


def format_numbers(values: Iterable[int]) -> str:
    """``1:3,7,9:10`` from 1 2 3 7 9 10, keeping the given order (runs of +1 become ranges), as
    COPYUID needs for its source and destination sets to correspond (RFC 4315 §3)."""
    parts: list[str] = []
    start = previous = -2
    for value in values:
        if value == previous + 1:
            previous = value
            continue
        if start >= 0:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = value
    if start >= 0:
        parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)
