"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ): the core's key tree
translated into the store's criteria, run as one query on the cached columns (BODY/TEXT and
header fields the cache does not keep read message files, bounded by the store).

Sequence numbers are resolved against the session's view; ``\\Recent`` (RECENT, NEW, OLD) is the
session's own set. Results are the view's messages only (a message another session added and
this one was not told of yet is left out; ghosts cannot match, their rows are gone).

Must not: send EXPUNGE (RFC 3501 §7.4.1).
"""

from __future__ import annotations

from typing import Any

from pli.mailbox.store import search as criteria
from pli.mailbox.store.uidset import ranges_of

from .. import commands as c
from .. import response
from ..flags import RECENT
from ..search import (
    SearchAddress,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)
from .state import Reply, SessionState
from .view import SelectedView


def _uids(uids: list[int]) -> Any:
    return criteria.Uids(ranges_of(uids))


def translate(key: SearchKey, view: SelectedView) -> Any:
    """The store criterion of a search key, for this view."""
    if isinstance(key, SearchAll):
        return criteria.All()
    if isinstance(key, SearchFlag):
        if key.flag == RECENT:
            recent = _uids(sorted(view.recent))
            return recent if key.present else criteria.Not(recent)
        return criteria.Flag(key.flag, key.present)
    if isinstance(key, SearchAddress):
        return criteria.Header(key.field, key.value)
    if isinstance(key, SearchHeader):
        return criteria.Header(key.field, key.value)
    if isinstance(key, SearchText):
        return criteria.Body(key.value, text_too=not key.body_only)
    if isinstance(key, SearchDate):
        if key.sent:
            return criteria.SentDate(key.relation, key.when)
        return criteria.InternalDate(key.relation, key.when)
    if isinstance(key, SearchSize):
        return criteria.Size(key.relation, key.size)
    if isinstance(key, SearchSequence):
        if key.uid:
            return criteria.Uids(key.sequence_set.resolve(view.last_uid))
        return _uids(view.uids_of_sequence_set(key.sequence_set))
    if isinstance(key, SearchModSeq):
        return criteria.ModSeq(key.modseq)
    if isinstance(key, SearchNot):
        return criteria.Not(translate(key.key, view))
    if isinstance(key, SearchOr):
        return criteria.Or(translate(key.left, view), translate(key.right, view))
    if isinstance(key, SearchAnd):
        return criteria.And([translate(item, view) for item in key.keys])
    raise TypeError(f"not a search key: {key!r}")


def _uses_modseq(key: SearchKey) -> bool:
    if isinstance(key, SearchModSeq):
        return True
    if isinstance(key, SearchNot):
        return _uses_modseq(key.key)
    if isinstance(key, SearchOr):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, SearchAnd):
        return any(_uses_modseq(item) for item in key.keys)
    return False


async def matching_uids(state: SessionState, key: SearchKey) -> list[int]:
    """The UIDs of the view's live messages matching ``key``, ascending."""
    view = state.selected
    found = await state.store.messages.search(view.folder_id, translate(key, view))
    return [uid for uid in found if view.live(uid)]


async def search(state: SessionState, command: c.Search) -> Reply:
    view = state.selected
    store = state.store
    matched = await matching_uids(state, command.key)
    modseqs: dict[int, int] | None = None
    if _uses_modseq(command.key):
        state.enable_condstore()  # RFC 7162 §3.1.5
        rows = (
            await store.messages.fetch_rows(view.folder_id, ranges_of(matched)) if matched else []
        )
        modseqs = {row.uid: row.modseq for row in rows}
    pairs = [(uid, view.sequence_of(uid)) for uid in matched]
    numbers = [uid if command.uid else number for uid, number in pairs if number is not None]
    uids = [uid for uid, number in pairs if number is not None]
    if command.return_options is None:
        modseq = max(modseqs.values(), default=None) if modseqs is not None else None
        await state.write(response.search_response(numbers, modseq))
    else:
        await state.write(_esearch(command, numbers, uids, modseqs))
    return Reply("OK", "SEARCH completed")


def _esearch(
    command: c.Search, numbers: list[int], uids: list[int], modseqs: dict[int, int] | None
) -> bytes:
    """RFC 4731 §3.1; with a MODSEQ key, the highest MODSEQ of the messages returned (RFC 7162
    §3.1.5: with MIN and/or MAX alone, only those messages are returned)."""
    options = set(command.return_options or ())
    returned = uids if options & {"ALL", "COUNT"} else []
    if numbers and "MIN" in options:
        returned = [*returned, uids[0]]
    if numbers and "MAX" in options:
        returned = [*returned, uids[-1]]
    modseq = None
    if modseqs is not None and returned:
        modseq = max(modseqs.get(uid, 0) for uid in returned)
    return response.esearch_response(
        command.tag,
        uid=command.uid,
        minimum=numbers[0] if numbers and "MIN" in options else None,
        maximum=numbers[-1] if numbers and "MAX" in options else None,
        count=len(numbers) if "COUNT" in options else None,
        numbers=numbers if "ALL" in options else None,
        modseq=modseq,
    )
