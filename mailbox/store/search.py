"""SEARCH at database level (RFC 9051 §6.4.4): criteria as a small tree of dataclasses, turned
into one SQL query over the cached columns; only BODY/TEXT and header criteria the cache cannot
answer (a field it does not keep, or the existence test of an empty string) read message files.

The IMAP server parses the SEARCH syntax, resolves sequence sets to UID sets, and builds these
criteria; :meth:`Searcher.search` returns the matching UIDs in order. Header criteria are
case-insensitive substring matches on the decoded header text (RFC 2047 decoded; RFC 9051 §6.4.4
"case-insensitive substring"); dates compare calendar days in UTC (§6.4.4 disregards time and
time zone: internal dates use UTC days, a documented approximation; SENT* compare the calendar
day written in the Date: header, as Dovecot does).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, not_, or_, select, true

from pli.mailbox.mime.headers import parse_header
from pli.mailbox.mime.text import clean, decode_header_text, text_codec

from .flags import SYSTEM_FLAGS
from .models import MessageRow
from .uidset import MAX_SQL_RANGES, UidSet, contains, sql_filter

if TYPE_CHECKING:
    from .service import Store

#: Messages whose bytes a BODY/TEXT search reads (beyond this, the search stops and reports the
#: messages it could not check as non-matching: a bounded cost per command).
MAX_BODY_SEARCH_MESSAGES = 5000
#: Bytes of one message a BODY/TEXT search decodes.
MAX_BODY_SEARCH_BYTES = 10 * 1024 * 1024

HEADER_COLUMNS = {
    "subject": MessageRow.subject,
    "from": MessageRow.from_text,
    "to": MessageRow.to_text,
    "cc": MessageRow.cc_text,
    "bcc": MessageRow.bcc_text,
    "message-id": MessageRow.message_id,
    "in-reply-to": MessageRow.in_reply_to,
}


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class Uids:
    uids: UidSet


@dataclass(frozen=True, slots=True)
class Flag:
    """A system flag (``\\Seen``…) or keyword is set (``present``) or not."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Header:
    """A case-insensitive substring of a header field's decoded value. ``field`` in
    :data:`HEADER_COLUMNS` with a non-empty ``text`` is answered from the cache; any other field,
    and an empty ``text`` (RFC 3501 §6.4.4: "messages that have a header with the specified
    field-name"), reads the message's header."""

    field: str
    text: str


@dataclass(frozen=True, slots=True)
class InternalDate:
    """BEFORE / ON / SINCE (``op`` "before", "on", "since")."""

    op: str
    day: date


@dataclass(frozen=True, slots=True)
class SentDate:
    """SENTBEFORE / SENTON / SENTSINCE on the Date: header."""

    op: str
    day: date


@dataclass(frozen=True, slots=True)
class Size:
    """LARGER (``op`` "larger") / SMALLER ("smaller")."""

    op: str
    octets: int


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ n (RFC 7162 §3.1.5): MODSEQ ≥ n."""

    at_least: int


@dataclass(frozen=True, slots=True)
class Body:
    """BODY (``text_too=False``) or TEXT (headers and body)."""

    text: str
    text_too: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Or:
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Not:
    item: Any


Criterion = (
    All | Uids | Flag | Header | InternalDate | SentDate | Size | ModSeq | Body | And | Or | Not
)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def calendar_day(date_header: str | None) -> int | None:
    """The calendar date a Date: header value writes, in its own zone, as days since 1970-01-01
    (None when absent or unreadable): what SENTON compares (RFC 3501 §6.4.4)."""
    if not date_header:
        return None
    parsed = email.utils.parsedate_tz(clean(date_header))
    if parsed is None:
        return None
    year, month, day = parsed[0], parsed[1], parsed[2]
    if year < 100:  # RFC 5322 §4.3 obsolete two-digit years
        year += 2000 if year < 50 else 1900
    try:
        return date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_bounds(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return start, start + 86400


def _date_condition(column: Any, op: str, day: date) -> Any:
    start, end = _day_bounds(day)
    if op == "before":
        return column < start
    if op == "on":
        return and_(column >= start, column < end)
    if op == "since":
        return column >= start
    raise ValueError(f"unknown date comparison {op!r}")


def _walk(criterion: Any) -> list[Any]:
    items = [criterion]
    if isinstance(criterion, And):
        for item in criterion.items:
            items += _walk(item)
    elif isinstance(criterion, Or):
        items += _walk(criterion.left) + _walk(criterion.right)
    elif isinstance(criterion, Not):
        items += _walk(criterion.item)
    return items


def _header_from_file(item: Any) -> bool:
    return isinstance(item, Header) and (not item.text or item.field.lower() not in HEADER_COLUMNS)


def _inexact(item: Any) -> bool:
    """A leaf SQL cannot decide exactly: BODY/TEXT, a header the cache cannot answer, or a UID
    set too long for SQL."""
    if isinstance(item, Body) or _header_from_file(item):
        return True
    return isinstance(item, Uids) and len(item.uids) > MAX_SQL_RANGES


def _exact(criterion: Any) -> bool:
    return not any(_inexact(item) for item in _walk(criterion))


def to_sql(criterion: Any) -> Any:
    """The SQL condition of a criterion. Exact when :func:`_exact`; otherwise it may
    over-match (BODY/TEXT become TRUE, a long UID set its span) and rows are checked in Python."""
    if isinstance(criterion, All):
        return true()
    if isinstance(criterion, Uids):
        return sql_filter(MessageRow.uid, criterion.uids)[0]
    if isinstance(criterion, Flag):
        lowered = criterion.flag.lower()
        if lowered in SYSTEM_FLAGS:
            bit = SYSTEM_FLAGS[lowered][0]
            test = MessageRow.flags.op("&")(bit) != 0
        else:
            test = MessageRow.keywords.ilike(f"% {_escape_like(criterion.flag)} %", escape="\\")
        return test if criterion.present else not_(test)
    if isinstance(criterion, Header):
        if _header_from_file(criterion):
            return true()  # over-matches; decided in Python from the message's header
        column = HEADER_COLUMNS[criterion.field.lower()]
        needle = clean(criterion.text).lower()
        if criterion.field.lower() in ("message-id", "in-reply-to"):
            needle = needle.strip("<> ")
        return column.like(f"%{_escape_like(needle)}%", escape="\\")
    if isinstance(criterion, InternalDate):
        return _date_condition(MessageRow.internal_date, criterion.op, criterion.day)
    if isinstance(criterion, SentDate):
        day = _day_number(criterion.day)
        sent = MessageRow.sent_day
        condition = {"before": sent < day, "on": sent == day, "since": sent >= day}
        if criterion.op not in condition:
            raise ValueError(f"unknown date comparison {criterion.op!r}")
        return and_(sent.is_not(None), condition[criterion.op])
    if isinstance(criterion, Size):
        if criterion.op == "larger":
            return MessageRow.size > criterion.octets
        return MessageRow.size < criterion.octets
    if isinstance(criterion, ModSeq):
        return MessageRow.modseq >= criterion.at_least
    if isinstance(criterion, Body):
        return true()
    if isinstance(criterion, And):
        return and_(true(), *[to_sql(item) for item in criterion.items])
    if isinstance(criterion, Or):
        if not _exact(criterion):
            return true()  # over-matches; decided in Python
        return or_(to_sql(criterion.left), to_sql(criterion.right))
    if isinstance(criterion, Not):
        if not _exact(criterion.item):
            return true()
        return not_(to_sql(criterion.item))
    raise TypeError(f"not a search criterion: {criterion!r}")


def _body_text(raw: bytes, text_too: bool) -> str:
    """The decoded text of a message for BODY/TEXT: every text/* part decoded by its charset,
    plus the header when ``text_too``."""
    message = email.message_from_bytes(raw[:MAX_BODY_SEARCH_BYTES], policy=email.policy.compat32)
    pieces = []
    if text_too:
        pieces.append(clean(raw.split(b"\n\n", 1)[0].decode("utf-8", "surrogateescape")))
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        pieces.append(payload.decode(text_codec(part.get_content_charset()), "replace"))
    return "\n".join(pieces).casefold()


def _matches(criterion: Any, row: Any, texts: _Texts) -> bool:
    """Evaluate a criterion on a row in Python (rows over-matched by SQL)."""
    if isinstance(criterion, Body):
        return criterion.text.casefold() in texts.get(criterion.text_too)
    if _header_from_file(criterion):
        return texts.header_matches(criterion.field, criterion.text)
    if isinstance(criterion, Uids):
        return contains(criterion.uids, row.uid)
    if isinstance(criterion, And):
        return all(_matches(item, row, texts) for item in criterion.items)
    if isinstance(criterion, Or):
        return _matches(criterion.left, row, texts) or _matches(criterion.right, row, texts)
    if isinstance(criterion, Not):
        return not _matches(criterion.item, row, texts)
    return bool(row._mapping[f"c{id(criterion)}"])


class _Texts:
    """A message's decoded text, read from its file at most once and only if needed."""

    def __init__(self, raw: bytes | None) -> None:
        self.raw = raw
        self._cache: dict[bool, str] = {}

    def get(self, text_too: bool) -> str:
        if text_too not in self._cache:
            self._cache[text_too] = _body_text(self.raw or b"", text_too)
        return self._cache[text_too]

    def header_matches(self, field: str, text: str) -> bool:
        """Whether a ``field`` occurrence's decoded value contains ``text`` (any case); an
        empty ``text`` asks only that the field be present."""
        values = parse_header(self.raw or b"").fields.get(field.lower(), [])
        needle = text.casefold()
        return any(needle in (decode_header_text(value) or "").casefold() for value in values)


class Searcher:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def search(self, folder_id: int, criterion: Any) -> list[int]:
        """UIDs of the folder's messages matching ``criterion``, in order."""
        condition = to_sql(criterion)
        base = select(MessageRow.uid).where(MessageRow.folder_id == folder_id, condition)
        if _exact(criterion):
            async with self.store.db.read() as conn:
                return list(await conn.scalars(base.order_by(MessageRow.uid)))
        leaves = [item for item in _walk(criterion) if not isinstance(item, And | Or | Not)]
        columns: list[Any] = [MessageRow.uid, MessageRow.blob_id]
        columns += [
            to_sql(leaf).label(f"c{id(leaf)}")
            for leaf in leaves
            if not isinstance(leaf, Body | Uids) and not _header_from_file(leaf)
        ]
        needs_body = any(isinstance(leaf, Body) or _header_from_file(leaf) for leaf in leaves)
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(*columns)
                    .where(MessageRow.folder_id == folder_id, condition)
                    .order_by(MessageRow.uid)
                )
            ).all()
        found = []
        read = 0
        for row in rows:
            raw = None
            if needs_body:
                read += 1
                if read > MAX_BODY_SEARCH_MESSAGES:
                    break
                raw = await self.store.blobs.get(row.blob_id)
            if _matches(criterion, row, _Texts(raw)):
                found.append(row.uid)
        return found
