"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; RFC 7162 CHANGEDSINCE and MODSEQ).

The metadata path is built for whole mailboxes (``UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE
ENVELOPE)`` on 10,000 messages): one query of plain rows without the cache's JSON, the formatted
ENVELOPE/BODYSTRUCTURE from the process-wide :class:`~.rendering.RenderCache` (a second query
fetches the JSON of the messages missing from it), one formatter per asked item, each response
line built with one ``%``-format and written in batches.

Body sections read the message file once per message (only its first octets when every section
lies in the header) and are streamed: the session waits for the client past a high-water mark.
``BODY[…]`` without ``.PEEK`` sets ``\\Seen`` (one STORE for every message of the command) and
the response then carries FLAGS. Messages expunged by another session and not yet announced are
skipped, and the command ends ``NO [EXPUNGEISSUED]`` as Dovecot answers.

Must not: send EXPUNGE (RFC 3501 §7.4.1; the dispatcher knows when updates may go out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from pli.mailbox.store import MessageRowData
from pli.mailbox.store.uidset import ranges_of

from .. import commands as c
from .. import response
from ..fetch import FetchAttribute, FetchBinarySize, FetchBody, FetchItem
from ..sequence import SequenceSet
from .rendering import Rendered, internaldate_item
from .sections import (
    UnknownEncoding,
    decoded,
    extract,
    header_only,
    needs_structure,
    root_header_end,
)
from .state import Reply, SessionState, bad, no
from .view import SelectedView

#: First octets read when every asked section lies in the message's header (most headers are
#: a few KB); a longer header is read whole.
HEADER_READ: Final = 64 * 1024
#: Response lines of a metadata FETCH joined into one write.
LINES_PER_WRITE: Final = 256
_SEEN: Final = "\\Seen"
_RENDERED: Final = {
    FetchItem.ENVELOPE: Rendered.ENVELOPE,
    FetchItem.BODY: Rendered.BODY,
    FetchItem.BODYSTRUCTURE: Rendered.BODYSTRUCTURE,
}

Formatter = Callable[[int, MessageRowData], bytes]  # (row index, row) → item


def resolve_uids(view: SelectedView, sequence_set: SequenceSet, uid: bool) -> list[int]:
    """The view's UIDs a command's set names; a sequence number beyond the mailbox is BAD
    (RFC 3501 §9: "a sequence number ... greater than the number of messages")."""
    if uid:
        return view.uids_of_uid_set(sequence_set)
    if view.exists == 0 or sequence_set.highest(view.exists) > view.exists:
        raise bad("Invalid sequence number (the mailbox has fewer messages)")
    return view.uids_of_sequence_set(sequence_set)


class _Plan:
    """What a FETCH needs, decided once from its attributes."""

    def __init__(self, attributes: tuple[FetchAttribute, ...]) -> None:
        self.attributes = attributes
        self.bodies = [a for a in attributes if isinstance(a, FetchBody | FetchBinarySize)]
        self.rendered = [
            _RENDERED[a] for a in attributes if isinstance(a, FetchItem) and a in _RENDERED
        ]
        self.sets_seen = any(isinstance(a, FetchBody) and a.sets_seen for a in self.bodies)
        self.section_structure = any(needs_structure(body.section) for body in self.bodies)
        self.header_only = bool(self.bodies) and all(
            isinstance(body, FetchBody) and not body.binary and header_only(body.section)
            for body in self.bodies
        )
        self.flags = FetchItem.FLAGS in attributes


async def fetch(state: SessionState, command: c.Fetch) -> Reply:
    view = state.selected
    if command.changed_since is not None or FetchItem.MODSEQ in command.attributes:
        state.enable_condstore()  # RFC 7162 §3.1: CONDSTORE-enabling
    uids = resolve_uids(view, command.sequence_set, command.uid)
    live = view.live_uids(uids)
    plan = _Plan(command.attributes)
    rows: list[MessageRowData] = []
    if live:
        rows = await state.store.messages.fetch_rows(
            view.folder_id,
            ranges_of(live),
            structure=plan.section_structure,
            changed_since=command.changed_since,
        )
    flags_changed: set[int] = set()
    if plan.sets_seen and not view.read_only:
        rows, flags_changed = await _mark_seen(state, view, rows)
    rendered = await _rendered(state, view, plan, rows)
    if any(b"" in items for items in rendered.values()):
        keep = [all(items[i] for items in rendered.values()) for i in range(len(rows))]
        rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
        rendered = {
            kind: [item for item, kept in zip(items, keep, strict=True) if kept]
            for kind, items in rendered.items()
        }
    formatters = _formatters(plan, view, rendered)
    if plan.bodies:
        await _write_with_bodies(state, view, plan, rows, formatters, flags_changed)
    else:
        await _write_metadata(state, view, rows, formatters)
    expunged = len(live) < len(uids) or (command.changed_since is None and len(rows) < len(live))
    if expunged:
        raise no("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    return Reply("OK", "FETCH completed")


async def _rendered(
    state: SessionState, view: SelectedView, plan: _Plan, rows: list[MessageRowData]
) -> dict[Rendered, list[bytes]]:
    """ENVELOPE / BODY / BODYSTRUCTURE items aligned with ``rows``: from the render cache, the
    missing ones formatted from the JSON of a second query."""
    cache = state.services.render_cache
    found: dict[Rendered, list[bytes]] = {}
    missing: dict[Rendered, list[int]] = {}
    for kind in plan.rendered:
        items: list[Any] = [cache.get(kind, row.blob_id) for row in rows]
        found[kind] = items
        missing[kind] = [index for index, item in enumerate(items) if item is None]
    absent = sorted({index for indexes in missing.values() for index in indexes})
    if not absent:
        return found
    by_uid = {
        extra.uid: extra
        for extra in await state.store.messages.fetch_rows(
            view.folder_id,
            ranges_of([rows[index].uid for index in absent]),
            envelope=Rendered.ENVELOPE in missing,
            structure=Rendered.BODY in missing or Rendered.BODYSTRUCTURE in missing,
        )
    }
    for kind, indexes in missing.items():
        for index in indexes:
            row = rows[index]
            extra = by_uid.get(row.uid)
            if extra is None:  # expunged between the two queries: the message is left out
                found[kind][index] = b""
                continue
            source = extra.envelope if kind is Rendered.ENVELOPE else extra.structure
            assert source is not None
            found[kind][index] = cache.rendered(kind, row.blob_id, source)
    return found


Section = FetchBody | FetchBinarySize


def _formatters(
    plan: _Plan, view: SelectedView, rendered: dict[Rendered, list[bytes]]
) -> list[Formatter | Section]:
    """One formatter per asked item, in the asked order; body sections stay as they are."""
    recent = view.recent
    found: list[Formatter | Section] = []
    for attribute in plan.attributes:
        if isinstance(attribute, FetchBody | FetchBinarySize):
            found.append(attribute)
        elif attribute is FetchItem.UID:
            found.append(lambda _, row: b"UID %d" % row.uid)
        elif attribute is FetchItem.FLAGS:
            found.append(
                lambda _, row: response.fetch_flags(
                    ("\\Recent", *row.flags) if row.uid in recent else row.flags
                )
            )
        elif attribute is FetchItem.INTERNALDATE:
            found.append(lambda _, row: internaldate_item(row.internal_date))
        elif attribute is FetchItem.RFC822_SIZE:
            found.append(lambda _, row: b"RFC822.SIZE %d" % row.size)
        elif attribute is FetchItem.MODSEQ:
            found.append(lambda _, row: b"MODSEQ (%d)" % row.modseq)
        else:
            items = rendered[_RENDERED[attribute]]
            found.append(lambda index, _, items=items: items[index])  # type: ignore[misc]
    return found


async def _write_metadata(
    state: SessionState,
    view: SelectedView,
    rows: list[MessageRowData],
    formatters: list[Formatter | Section],
) -> None:
    simple = [f for f in formatters if not isinstance(f, FetchBody | FetchBinarySize)]
    sequence_of = view.sequence_of
    batch: list[bytes] = []
    for index, row in enumerate(rows):
        sequence = sequence_of(row.uid)
        if sequence is None:
            continue
        items = b" ".join([f(index, row) for f in simple])
        batch.append(b"* %d FETCH (%b)\r\n" % (sequence, items))
        if len(batch) >= LINES_PER_WRITE:
            await state.write(b"".join(batch))
            batch.clear()
    if batch:
        await state.write(b"".join(batch))


async def _write_with_bodies(
    state: SessionState,
    view: SelectedView,
    plan: _Plan,
    rows: list[MessageRowData],
    formatters: list[Formatter | Section],
    flags_changed: set[int],
) -> None:
    for index, row in enumerate(rows):
        sequence = view.sequence_of(row.uid)
        if sequence is None:
            continue
        raw = await _read(state, plan, row)
        structure = json.loads(row.structure) if row.structure else None
        items: list[bytes] = []
        for formatter in formatters:
            if isinstance(formatter, FetchBody | FetchBinarySize):
                items.append(_section_item(formatter, raw, structure))
            else:
                items.append(formatter(index, row))
        if row.uid in flags_changed and not plan.flags:
            items.append(response.fetch_flags(view.flags_with_recent(row.uid, row.flags)))
        await state.write(b"* %d FETCH (%b)\r\n" % (sequence, b" ".join(items)))


def _section_item(attribute: Section, raw: bytes, structure: Any) -> bytes:
    """``BODY[…]``, ``BINARY[…]`` (RFC 3516) or ``BINARY.SIZE[…]`` of one message."""
    if isinstance(attribute, FetchBody) and not attribute.binary:
        return response.fetch_section(attribute, extract(raw, structure, attribute.section))
    try:
        data = decoded(raw, structure, attribute.section)
    except UnknownEncoding:
        raise no("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None
    if isinstance(attribute, FetchBinarySize):
        return attribute.label() + (b" %d" % len(data) if data is not None else b" NIL")
    return response.fetch_section(attribute, data)


async def _mark_seen(
    state: SessionState, view: SelectedView, rows: list[MessageRowData]
) -> tuple[list[MessageRowData], set[int]]:
    """RFC 3501 §6.4.5: BODY[…] sets \\Seen; the new flags replace the rows' and are reported."""
    unseen = [row.uid for row in rows if _SEEN not in row.flags]
    if not unseen:
        return rows, set()
    result = await state.store.messages.store_flags(view.folder_id, ranges_of(unseen), "+", [_SEEN])
    changed = {change.uid: change for change in result.changed}
    view.own_change(result.changed, result.highestmodseq)
    updated = [
        row._replace(flags=changed[row.uid].flags, modseq=changed[row.uid].modseq)
        if row.uid in changed
        else row
        for row in rows
    ]
    return updated, set(changed)


async def _read(state: SessionState, plan: _Plan, row: MessageRowData) -> bytes:
    blobs = state.store.blobs
    if plan.header_only and row.size > HEADER_READ:
        head = await blobs.read_range(row.blob_id, 0, HEADER_READ)
        if root_header_end(head) < len(head):
            return head
    return await blobs.get(row.blob_id)
