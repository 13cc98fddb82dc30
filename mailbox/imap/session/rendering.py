"""The store's parse cache as IMAP bytes: ENVELOPE and BODY/BODYSTRUCTURE, formatted once and
kept in a bounded process-wide LRU; INTERNALDATE formatted with a per-day cache.

The store keeps each message's ENVELOPE and MIME tree as JSON (``mailbox/mime``), shaped like
the core's :class:`~pli.mailbox.imap.bodystructure.Envelope` and
:class:`~pli.mailbox.imap.bodystructure.BodyPart` field by field; this module converts one into
the other (lists to tuples) and formats it. A message's bytes never change and one file may be
shared by many rows (a delivery to many mailboxes, COPY), so the formatted value is cached by the
message file's id: a 10,000-message metadata FETCH decodes and formats each ENVELOPE once per
process, then costs a dictionary lookup (bench/imap.py measures both).

Must not: read message files or the database (the caller passes the cache's JSON text).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Final

from ..bodystructure import Address, AddressList, BodyPart, Envelope, format_body, format_envelope
from ..dates import MONTHS

#: Formatted ENVELOPE and BODYSTRUCTURE octets kept in memory per process (an ENVELOPE is ~300
#: octets: 64 MiB holds about 200,000 messages' worth). Beyond it the least recently used go.
RENDER_CACHE_BYTES: Final = 64 * 1024 * 1024
#: What each cached entry costs beyond its octets (key, dict slot, bytes header), for the budget.
_ENTRY_OVERHEAD: Final = 120
#: Days whose INTERNALDATE prefix is kept (a mailbox spans a few thousand days at most).
_DAY_CACHE: Final = 20000


class Rendered(IntEnum):
    ENVELOPE = 0
    BODY = 1  # non-extensible BODY
    BODYSTRUCTURE = 2


def _address_list(value: Any) -> AddressList:
    if not value:
        return None
    addresses: list[Address] = []
    for item in value:
        name, adl, mailbox, host = item
        addresses.append((name, adl, mailbox, host))
    return tuple(addresses)


def envelope_from_cache(data: list[Any]) -> Envelope:
    """The core's Envelope from the store's JSON list (``mailbox/mime/envelope.py``)."""
    date, subject, sender_from, sender, reply_to, to, cc, bcc, in_reply_to, message_id = data
    return Envelope(
        date=date,
        subject=subject,
        from_=_address_list(sender_from),
        sender=_address_list(sender),
        reply_to=_address_list(reply_to),
        to=_address_list(to),
        cc=_address_list(cc),
        bcc=_address_list(bcc),
        in_reply_to=in_reply_to,
        message_id=message_id,
    )


def _params(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(item)) for name, item in value or ())


def body_from_cache(part: dict[str, Any]) -> BodyPart:
    """The core's BodyPart from a node of the store's MIME tree (``mailbox/mime/structure.py``)."""
    disposition = part.get("disposition")
    language = part.get("language")
    inner = part.get("message")
    envelope = part.get("envelope")
    return BodyPart(
        type=part["type"],
        subtype=part["subtype"],
        params=_params(part.get("params")),
        id=part.get("id"),
        description=part.get("description"),
        encoding=part.get("encoding") or "7BIT",
        size=int(part.get("size") or 0),
        lines=part.get("lines"),
        md5=part.get("md5"),
        disposition=(disposition[0], _params(disposition[1])) if disposition else None,
        language=tuple(language) if language else None,
        location=part.get("location"),
        parts=tuple(body_from_cache(child) for child in part.get("parts") or ()),
        envelope=envelope_from_cache(envelope) if envelope is not None else None,
        message=body_from_cache(inner) if inner is not None else None,
    )


def render(kind: Rendered, cached_json: str) -> bytes:
    """The FETCH item (``ENVELOPE (…)``, ``BODY (…)``, ``BODYSTRUCTURE (…)``) of the JSON."""
    data = json.loads(cached_json)
    if kind is Rendered.ENVELOPE:
        return b"ENVELOPE " + format_envelope(envelope_from_cache(data))
    extensible = kind is Rendered.BODYSTRUCTURE
    prefix = b"BODYSTRUCTURE " if extensible else b"BODY "
    return prefix + format_body(body_from_cache(data), extensible)


class RenderCache:
    """Formatted ENVELOPE / BODY / BODYSTRUCTURE items by message file id, least recently used
    dropped beyond ``budget`` octets."""

    def __init__(self, budget: int = RENDER_CACHE_BYTES) -> None:
        self._budget = budget
        self._used = 0
        self._kinds: tuple[OrderedDict[str, bytes], ...] = tuple(OrderedDict() for _ in Rendered)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._kinds)

    def get(self, kind: Rendered, blob_id: str) -> bytes | None:
        entries = self._kinds[kind]
        found = entries.get(blob_id)
        if found is not None:
            entries.move_to_end(blob_id)
        return found

    def put(self, kind: Rendered, blob_id: str, value: bytes) -> bytes:
        cost = len(value) + _ENTRY_OVERHEAD
        if cost > self._budget:
            return value
        entries = self._kinds[kind]
        previous = entries.pop(blob_id, None)
        if previous is not None:
            self._used -= len(previous) + _ENTRY_OVERHEAD
        entries[blob_id] = value
        self._used += cost
        while self._used > self._budget:
            largest = max(self._kinds, key=len)
            _, dropped = largest.popitem(last=False)
            self._used -= len(dropped) + _ENTRY_OVERHEAD
        return value

    def rendered(self, kind: Rendered, blob_id: str, cached_json: str) -> bytes:
        """The item, formatted from ``cached_json`` unless cached."""
        found = self.get(kind, blob_id)
        if found is None:
            found = self.put(kind, blob_id, render(kind, cached_json))
        return found


_DAY_PREFIX: dict[int, bytes] = {}


def internaldate_item(epoch: int) -> bytes:
    """``INTERNALDATE "05-Feb-2024 10:11:12 +0000"`` of an epoch second (the store keeps UTC),
    the date part formatted once per day."""
    day, seconds = divmod(epoch, 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        moment = datetime.fromtimestamp(day * 86400, UTC)
        prefix = b'INTERNALDATE "%02d-%b-%04d ' % (
            moment.day,
            MONTHS[moment.month - 1].encode("ascii"),
            moment.year,
        )
        if len(_DAY_PREFIX) >= _DAY_CACHE:
            _DAY_PREFIX.clear()
        _DAY_PREFIX[day] = prefix
    return b'%b%02d:%02d:%02d +0000"' % (prefix, seconds // 3600, seconds // 60 % 60, seconds % 60)
