"""Message lists for people (the citizen webmail): decoded subject and sender, the sender's
display name from the directory, unread state, attachments from the MIME tree, and grouping by
professional (one group per sender mailbox, newest first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from pli.mailbox.mime.cache import attachments
from pli.mailbox.mime.text import decode_header_text

from .flags import SEEN, flag_names
from .models import MessageRow
from .records import MessageSummary

if TYPE_CHECKING:
    from .service import Store

#: Messages listed per page.
MAX_LIST = 500


@dataclass(frozen=True, slots=True)
class SenderGroup:
    """The messages of one sender mailbox (a professional or an establishment)."""

    sender_address: str
    sender_name: str
    unread: int
    messages: tuple[MessageSummary, ...]


def _sender(envelope: list[object]) -> tuple[str, str]:
    addresses = envelope[2] or []
    assert isinstance(addresses, list)
    for address in addresses:
        name, _adl, mailbox, host = address
        if host is not None:
            decoded = decode_header_text(name) if isinstance(name, str) else None
            return f"{mailbox}@{host}".lower(), decoded or ""
    return "", ""


async def summaries(store: Store, folder_id: int, *, limit: int = 100) -> list[MessageSummary]:
    """The folder's newest messages (up to ``limit``, at most :data:`MAX_LIST`), newest first."""
    limit = max(1, min(limit, MAX_LIST))
    async with store.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    MessageRow.id,
                    MessageRow.uid,
                    MessageRow.subject,
                    MessageRow.envelope,
                    MessageRow.structure,
                    MessageRow.flags,
                    MessageRow.keywords,
                    MessageRow.internal_date,
                    MessageRow.size,
                )
                .where(MessageRow.folder_id == folder_id)
                .order_by(MessageRow.uid.desc())
                .limit(limit)
            )
        ).all()
    parsed = []
    for row in rows:
        envelope = json.loads(row.envelope)
        address, header_name = _sender(envelope)
        parsed.append((row, envelope, address, header_name))
    names = await store.directory.display_names([address for _, _, address, _ in parsed if address])
    result = []
    for row, envelope, address, header_name in parsed:
        subject = decode_header_text(envelope[1]) or ""
        result.append(
            MessageSummary(
                folder_id=folder_id,
                uid=row.uid,
                message_row_id=row.id,
                subject=subject,
                sender_address=address,
                sender_name=names.get(address) or header_name or address,
                internal_date=datetime.fromtimestamp(row.internal_date, UTC),
                seen=bool(row.flags & SEEN),
                flags=flag_names(row.flags, row.keywords),
                size=row.size,
                attachments=tuple(attachments(json.loads(row.structure))),
            )
        )
    return result


def group_by_sender(messages: list[MessageSummary]) -> list[SenderGroup]:
    """Groups in order of each sender's newest message."""
    groups: dict[str, list[MessageSummary]] = {}
    for message in messages:
        groups.setdefault(message.sender_address, []).append(message)
    return [
        SenderGroup(
            sender_address=address,
            sender_name=items[0].sender_name,
            unread=sum(1 for item in items if not item.seen),
            messages=tuple(items),
        )
        for address, items in groups.items()
    ]
