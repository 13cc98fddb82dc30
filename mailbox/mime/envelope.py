"""The ENVELOPE of RFC 3501 §7.4.2 (RFC 9051 §7.5.2) from a parsed header section.

Format (a JSON list, in protocol order, so that the IMAP server renders it without lookups)::

    [date, subject, from, sender, reply_to, to, cc, bcc, in_reply_to, message_id]

``date``, ``subject``, ``in_reply_to`` and ``message_id`` are the raw unfolded header values
(see :mod:`.headers`: encoded words left as they are, 8-bit bytes as surrogate escapes) or None
when the header is absent. The six address members are lists of ``[name, adl, mailbox, host]``
(see :mod:`.addresses`) or None (NIL) when the header is absent or empty. As RFC 3501 requires,
``sender`` and ``reply_to`` default to ``from`` when absent or empty.
"""

from __future__ import annotations

from typing import Any

from .addresses import parse_address_list
from .headers import HeaderSection

Envelope = list[Any]

ENVELOPE_FIELDS = (
    "date",
    "subject",
    "from",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "in_reply_to",
    "message_id",
)


def build_envelope(header: HeaderSection) -> Envelope:
    sender_from = parse_address_list(header.first("from"))
    sender = parse_address_list(header.first("sender")) or sender_from
    reply_to = parse_address_list(header.first("reply-to")) or sender_from
    return [
        header.first("date"),
        header.first("subject"),
        sender_from,
        sender,
        reply_to,
        parse_address_list(header.first("to")),
        parse_address_list(header.first("cc")),
        parse_address_list(header.first("bcc")),
        header.first("in-reply-to"),
        header.first("message-id"),
    ]


def envelope_field(envelope: Envelope, name: str) -> Any:
    """One member of an envelope by its name in :data:`ENVELOPE_FIELDS`."""
    return envelope[ENVELOPE_FIELDS.index(name)]
