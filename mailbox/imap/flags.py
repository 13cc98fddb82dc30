"""Message flags (RFC 3501 §2.3.2): the system flags, their canonical spelling, the grammar.

System flags are case-insensitive on the wire (``\\SEEN`` is ``\\Seen``) and spelled canonically
here; keywords (``$Forwarded``, ``NIL``) are atoms kept as written. ``\\Recent`` is session state
and may not be stored (RFC 3501 §6.4.6 ``flag`` excludes it); other ``\\words`` are refused
rather than stored as unknown system flags.

Must not: know which flags a mailbox accepts (PERMANENTFLAGS is the session's answer).
"""

from __future__ import annotations

from typing import Final

from .errors import ParseError
from .reader import Reader

SEEN: Final = "\\Seen"
ANSWERED: Final = "\\Answered"
FLAGGED: Final = "\\Flagged"
DELETED: Final = "\\Deleted"
DRAFT: Final = "\\Draft"
RECENT: Final = "\\Recent"

#: The flags a client may set (RFC 3501 §9 ``flag``).
STORABLE_SYSTEM_FLAGS: Final = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)
_CANONICAL: Final = {flag.upper(): flag for flag in (*STORABLE_SYSTEM_FLAGS, RECENT)}


def canonical(flag: str) -> str:
    """``\\SEEN`` → ``\\Seen``; keywords and unknown words unchanged."""
    return _CANONICAL.get(flag.upper(), flag) if flag.startswith("\\") else flag


def parse_flag(reader: Reader) -> str:
    """One storable flag: a system flag (any case) or a keyword atom."""
    if reader.maybe(b"\\"):
        name = "\\" + reader.atom()
        flag = _CANONICAL.get(name.upper())
        if flag is None or flag == RECENT:
            raise ParseError(f"{name} cannot be stored (RFC 3501 §2.3.2)")
        return flag
    return reader.atom()


def parse_flag_list(reader: Reader) -> tuple[str, ...]:
    """``"(" [flag *(SP flag)] ")"``, duplicates removed, order kept."""
    flags = reader.list_of(lambda: parse_flag(reader), "flags")
    return tuple(dict.fromkeys(flags))
