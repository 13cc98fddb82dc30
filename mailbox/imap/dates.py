"""IMAP dates (RFC 3501 §9): ``date`` for SEARCH, ``date-time`` for APPEND and INTERNALDATE.

- ``date-text = date-day "-" date-month "-" date-year`` (``1-Feb-2024`` or ``01-Feb-2024``);
- ``date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE``
  (``" 1-Feb-2024 08:05:00 +0100"``), month names case-insensitive on input, English on output.

Must not: read the clock or the local time zone (the caller gives aware datetimes).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Final

from .errors import ParseError

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): index for index, name in enumerate(MONTHS, start=1)}
_DATE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    r"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)
#: RFC 3501 zone = ("+" / "-") 4DIGIT; real offsets stay within ±14:00 (UTC+14, Kiribati).
_MAX_ZONE_MINUTES = 14 * 60 + 59


def _month(name: str) -> int:
    month = _MONTH_NUMBER.get(name.lower())
    if month is None:
        raise ParseError(f"invalid month {name!r} in date")
    return month


def parse_date(text: str) -> date:
    """A SEARCH ``date`` (quotes already removed)."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ParseError("invalid date (expected d-Mon-yyyy)")
    try:
        return date(int(match.group(3)), _month(match.group(2)), int(match.group(1)))
    except ValueError:
        raise ParseError("invalid date (no such day)") from None


def parse_date_time(text: str) -> datetime:
    """An APPEND ``date-time`` (quotes already removed) as an aware datetime."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ParseError("invalid date-time (expected dd-Mon-yyyy hh:mm:ss +zzzz)")
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = int(zone_hours) * 60 + int(zone_minutes)
    if int(zone_minutes) > 59 or offset > _MAX_ZONE_MINUTES:
        raise ParseError("invalid time zone in date-time")
    zone = timezone(timedelta(minutes=-offset if sign == "-" else offset))
    try:
        return datetime(
            int(year),
            _month(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=zone,
        )
    except ValueError:
        raise ParseError("invalid date-time (no such day or time)") from None


_MONTH_BYTES: Final = tuple(name.encode("ascii") for name in MONTHS)
_ZONES: dict[timedelta | None, bytes] = {}


def _zone(offset: timedelta | None) -> bytes:
    zone = _ZONES.get(offset)
    if zone is None:
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        sign = b"-" if minutes < 0 else b"+"
        zone = b"%b%02d%02d" % (sign, abs(minutes) // 60, abs(minutes) % 60)
        if len(_ZONES) < 1024:  # real offsets are a few dozen
            _ZONES[offset] = zone
    return zone


def format_date_time(moment: datetime) -> bytes:
    """The quoted INTERNALDATE form, ``"17-Jul-1996 02:44:25 -0700"``, in the datetime's own
    offset (UTC for a naive datetime)."""
    return b'"%02d-%b-%04d %02d:%02d:%02d %b"' % (
        moment.day,
        _MONTH_BYTES[moment.month - 1],
        moment.year,
        moment.hour,
        moment.minute,
        moment.second,
        _zone(moment.utcoffset()),
    )
