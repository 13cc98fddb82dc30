"""UID sets as the store takes them: inclusive ``(first, last)`` ranges, None meaning all.

The IMAP server resolves ``*`` and sequence numbers before calling the store (it knows the
session's view); the store only sees UIDs. Long sets (``1,3,5,…``) are filtered in Python after a
single range query rather than sent as thousands of SQL conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import false, or_, true

#: Ranges sent to SQL as conditions; more are fetched as one span and filtered in Python
#: (SQLite's expression depth limit is 1000).
MAX_SQL_RANGES = 32

UidSet = Sequence[tuple[int, int]]


def ranges_of(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Compact ranges of a collection of UIDs: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def contains(uids: UidSet | None, uid: int) -> bool:
    return uids is None or any(first <= uid <= last for first, last in uids)


def sql_filter(column: Any, uids: UidSet | None) -> tuple[Any, bool]:
    """(SQL condition, whether rows must still be filtered with :func:`contains`)."""
    if uids is None:
        return true(), False
    normalised = [(min(a, b), max(a, b)) for a, b in uids]
    if not normalised:
        return false(), False
    if len(normalised) <= MAX_SQL_RANGES:
        return or_(*[column.between(a, b) for a, b in normalised]), False
    low = min(a for a, _ in normalised)
    high = max(b for _, b in normalised)
    return column.between(low, high), True
