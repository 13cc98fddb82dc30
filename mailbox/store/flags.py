"""IMAP flags in the database: system flags as a bit mask, keywords as a space-separated string.

System flags (RFC 9051 §2.3.2) are matched case-insensitively and stored as bits so that SEARCH
SEEN/UNSEEN/DELETED is an index-friendly integer test. Keywords are atoms (RFC 9051 §9
``flag-keyword``), stored with their case, compared case-insensitively, and kept as
``" kw1 kw2 "`` (leading and trailing space) so that a keyword search is a LIKE on ``" kw "``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .errors import InvalidRequest

SEEN = 1
ANSWERED = 2
FLAGGED = 4
DELETED = 8
DRAFT = 16

SYSTEM_FLAGS = {
    "\\seen": (SEEN, "\\Seen"),
    "\\answered": (ANSWERED, "\\Answered"),
    "\\flagged": (FLAGGED, "\\Flagged"),
    "\\deleted": (DELETED, "\\Deleted"),
    "\\draft": (DRAFT, "\\Draft"),
}
_BY_BIT = [(bit, name) for bit, name in SYSTEM_FLAGS.values()]

#: Keywords per message (Dovecot and Gmail cap them too; a client cannot grow a row unbounded).
MAX_KEYWORDS = 64
#: Characters in one keyword.
MAX_KEYWORD_LENGTH = 128
# RFC 9051 §9: atom-char is any CHAR except atom-specials ( ) { SP CTL % * " \ ]
_KEYWORD = re.compile(r'^[^(){ \x00-\x1f\x7f%*"\\\]]+$')


def normalise(flags: Iterable[str]) -> tuple[int, list[str]]:
    """(system bits, keywords in first-seen case, deduplicated case-insensitively).

    Raises :class:`InvalidRequest` for ``\\Recent`` or an unknown ``\\flag`` (RFC 9051 §6.4.6:
    clients cannot set them) and for a keyword that is not an atom or is too long."""
    bits = 0
    keywords: dict[str, str] = {}
    for flag in flags:
        lowered = flag.lower()
        if lowered in SYSTEM_FLAGS:
            bits |= SYSTEM_FLAGS[lowered][0]
            continue
        if flag.startswith("\\"):
            raise InvalidRequest(f"flag {flag} cannot be set")
        if len(flag) > MAX_KEYWORD_LENGTH or not _KEYWORD.match(flag):
            raise InvalidRequest("invalid keyword")
        keywords.setdefault(lowered, flag)
    if len(keywords) > MAX_KEYWORDS:
        raise InvalidRequest(f"too many keywords (at most {MAX_KEYWORDS})")
    return bits, list(keywords.values())


def encode_keywords(keywords: Iterable[str]) -> str:
    listed = list(keywords)
    return f" {' '.join(listed)} " if listed else ""


def decode_keywords(stored: str) -> list[str]:
    return stored.split()


@functools.lru_cache(maxsize=4096)
def flag_names(bits: int, keywords: str) -> tuple[str, ...]:
    """Flags as IMAP names: system flags first (canonical case), then keywords."""
    names = [name for bit, name in _BY_BIT if bits & bit]
    names.extend(keywords.split())
    return tuple(names)


def merge_keywords(current: list[str], change: list[str], mode: str) -> list[str]:
    """Keywords after a STORE of ``mode`` '+', '-' or '=' (case-insensitive)."""
    if mode == "=":
        return change
    lowered = {keyword.lower() for keyword in change}
    if mode == "-":
        return [keyword for keyword in current if keyword.lower() not in lowered]
    known = {keyword.lower() for keyword in current}
    merged = current + [keyword for keyword in change if keyword.lower() not in known]
    if len(merged) > MAX_KEYWORDS:
        raise InvalidRequest(f"too many keywords (at most {MAX_KEYWORDS})")
    return merged


def merge_bits(current: int, change: int, mode: str) -> int:
    if mode == "=":
        return change
    if mode == "-":
        return current & ~change
    return current | change
