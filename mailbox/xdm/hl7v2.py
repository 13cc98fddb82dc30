"""The HL7 v2 data types XDS metadata carries in its slots (IHE ITI TF-3 §4.2.3.1.7).

- CX, a patient identifier: ``248039263001064^^^&1.2.250.1.213.1.4.8&ISO^NH``
- XCN, a person: ``801234567890^MARTIN^Jeanne^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS``
- XON, an organisation: ``CH Exemple^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750000001``
- DTM, an instant in UTC: ``20250301093000`` (YYYY[MM[DD[hh[mm[ss]]]]])

Components are separated by ``^``, sub-components by ``&``; ``\\S\\ \\T\\ \\F\\ \\R\\ \\E\\``
escape the delimiters (HL7 v2.5 §2.7). Pure functions; a malformed value gives None or
ValueError, never anything else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from .model import Author, PatientId

_ESCAPES = {"S": "^", "T": "&", "F": "|", "R": "~", "E": "\\"}
_ESCAPE = re.compile(r"\\([STFRE])\\")
_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.\d{1,4})?(?P<zone>[+-]\d{4})?$"
)


def unescape(value: str) -> str:
    return _ESCAPE.sub(lambda match: _ESCAPES[match.group(1)], value)


def components(value: str) -> list[str]:
    """The ``^``-separated components (escapes still in place, so sub-components split right)."""
    return value.split("^")


def _at(parts: list[str], position: int) -> str | None:
    """Component ``position`` (1-based), unescaped, or None when empty or absent."""
    if position > len(parts):
        return None
    text = unescape(parts[position - 1]).strip()
    return text or None


def _authority(hd: str | None) -> str | None:
    """The universal id (an OID) of an HD ``namespace&universalId&type``, else the namespace."""
    if hd is None:
        return None
    pieces = hd.split("&")
    if len(pieces) >= 2 and pieces[1].strip():
        return unescape(pieces[1]).strip()
    return unescape(pieces[0]).strip() or None


def parse_cx(value: str) -> PatientId | None:
    parts = components(value)
    identifier = _at(parts, 1)
    if identifier is None:
        return None
    raw_authority = parts[3] if len(parts) > 3 else None
    return PatientId(value=identifier, authority=_authority(raw_authority), id_type=_at(parts, 5))


def parse_xcn(value: str) -> Author:
    parts = components(value)
    return Author(
        identifier=_at(parts, 1),
        family=_at(parts, 2),
        given=_at(parts, 3),
        prefix=_at(parts, 6),
        identifier_authority=_authority(parts[8]) if len(parts) > 8 else None,
        identifier_type=_at(parts, 13),
    )


def parse_xon_name(value: str) -> str | None:
    return _at(components(value), 1)


def parse_dtm(value: str) -> datetime:
    """An XDS DTM as an aware UTC datetime; ValueError when malformed."""
    match = _DTM.match(value.strip())
    if match is None:
        raise ValueError("not an HL7 DTM (YYYY[MM[DD[hh[mm[ss]]]]])")
    fields = match.groupdict()
    zone = UTC
    if fields["zone"]:
        sign = 1 if fields["zone"][0] == "+" else -1
        hours, minutes = int(fields["zone"][1:3]), int(fields["zone"][3:5])
        if hours > 14 or minutes > 59:
            raise ValueError("time zone offset out of range")
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        instant = datetime(
            int(fields["year"]),
            int(fields["month"] or 1),
            int(fields["day"] or 1),
            int(fields["hour"] or 0),
            int(fields["minute"] or 0),
            int(fields["second"] or 0),
            tzinfo=zone,
        )
        return instant.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset: before datetime.min in UTC
        raise ValueError("date out of range") from None
