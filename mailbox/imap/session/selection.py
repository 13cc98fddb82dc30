"""Selecting a mailbox and keeping the client's view of it current: SELECT/EXAMINE (RFC 3501
§6.3.1-2, RFC 7162 §3.1.8 CONDSTORE parameter), CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID
EXPUNGE (RFC 4315 §2.1), CHECK, and :func:`synchronise`, which brings the untagged updates other
sessions caused (new messages, flag changes, expunges) where RFC 3501 §7.4.1 allows them.

The selected folder is watched through the store's change feed (in-process, and across
processes on PostgreSQL): a command's end synchronises only when the feed said something
changed, NOOP/CHECK/IDLE always do (the feed is a hint, the store is the truth).

Must not: format FETCH data (that is :mod:`.fetching`).
"""

from __future__ import annotations

from typing import Final

from pli.mailbox.store import NotFound
from pli.mailbox.store.uidset import ranges_of

from .. import commands as c
from .. import response
from ..flags import STORABLE_SYSTEM_FLAGS
from .mailboxes import folder_of, resolve
from .state import Reply, SessionState, no
from .view import SelectedView

#: SELECT's FLAGS and PERMANENTFLAGS: the system flags; keywords may be created (``\\*``).
MAILBOX_FLAGS: Final = STORABLE_SYSTEM_FLAGS


class MailboxGone(Exception):
    """The selected mailbox was deleted by another session: the session must end (``* BYE``,
    as Dovecot does)."""


async def select(state: SessionState, command: c.Select) -> Reply:
    deselect(state)
    ref = await resolve(state, command.mailbox)
    folder = await folder_of(state, ref, missing_code="NONEXISTENT")
    store = state.store
    if command.condstore:
        state.condstore = True
    subscription = store.feed.subscribe(ref.owner.id, folder.id)
    try:  # one read: HIGHESTMODSEQ and the UIDs agree, nothing is missed
        selection = await store.messages.selection(folder.id)
    except NotFound:
        subscription.close()
        raise no("Mailbox does not exist", "NONEXISTENT") from None
    folder = selection.folder
    uids = selection.uids
    recent_from = folder.first_recent_uid
    if not command.read_only and uids:
        recent_from = await store.folders.claim_recent(folder.id, uids[-1] + 1)
    view = SelectedView(
        folder=folder,
        ref=ref,
        wire_name=command.mailbox,
        read_only=command.read_only,
        uids=uids,
        modseq=folder.highestmodseq,
        recent={uid for uid in uids if uid >= recent_from},
    )
    out = [
        response.flags_response(MAILBOX_FLAGS),
        response.untagged(
            "OK",
            "Flags permitted",
            response.permanentflags_code(
                () if command.read_only else MAILBOX_FLAGS, keywords_allowed=not command.read_only
            ),
        ),
        response.exists(view.exists),
        response.recent(view.recent_count()),
    ]
    if selection.first_unseen_uid is not None:
        first = view.sequence_of(selection.first_unseen_uid)
        if first is not None:
            out.append(response.untagged("OK", "First unseen", f"UNSEEN {first}"))
    out += [
        response.untagged("OK", "UIDs valid", f"UIDVALIDITY {folder.uidvalidity}"),
        response.untagged("OK", "Predicted next UID", f"UIDNEXT {folder.uidnext}"),
        response.untagged("OK", "Highest", f"HIGHESTMODSEQ {folder.highestmodseq}"),
    ]
    state.out.write(b"".join(out))
    state.view = view
    state.subscription = subscription
    verb = "EXAMINE" if command.read_only else "SELECT"
    await state.audit(ref, f"imap-{verb.lower()}", f"{verb} {ref.folder}")
    code = "READ-ONLY" if command.read_only else "READ-WRITE"
    return Reply("OK", f"{verb} completed", code)


def deselect(state: SessionState) -> None:
    if state.subscription is not None:
        state.subscription.close()
    state.subscription = None
    state.view = None


async def close(state: SessionState, command: c.Close) -> Reply:
    """RFC 3501 §6.4.2: expunge silently (read-write only), then leave the mailbox."""
    view = state.selected
    if not view.read_only:
        await state.store.messages.expunge(view.folder_id)
    deselect(state)
    return Reply("OK", "CLOSE completed")


async def unselect(state: SessionState, command: c.Unselect) -> Reply:
    deselect(state)
    return Reply("OK", "UNSELECT completed")


async def expunge(state: SessionState, command: c.Expunge) -> Reply:
    view = state.selected
    if view.read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    uids = None
    if command.uids is not None:
        uids = ranges_of(view.live_uids(view.uids_of_uid_set(command.uids)))
        if not uids:
            await state.write(b"".join(view.flush_expunges()))
            return Reply("OK", "EXPUNGE completed")
    removed = await state.store.messages.expunge(view.folder_id, uids)
    await state.write(b"".join(view.remove_expunged(removed)))
    return Reply("OK", "EXPUNGE completed")


async def check(state: SessionState, command: c.Check | c.Noop) -> Reply:
    return Reply("OK", f"{command.name} completed")


def _drain_feed(state: SessionState) -> bool:
    """Whether the feed announced a change since the last synchronisation (events consumed)."""
    subscription = state.subscription
    if subscription is None:
        return False
    changed = False
    while subscription.get_nowait() is not None:
        changed = True
    return changed


async def synchronise(state: SessionState, *, allow_expunge: bool, force: bool = False) -> None:
    """Send the untagged updates the client is owed (RFC 3501 §5.2, §7.4.1)."""
    view = state.view
    if view is None:
        return
    if not _drain_feed(state) and not force:
        if allow_expunge and view.ghosts:
            await state.write(b"".join(view.flush_expunges()))
        return
    store = state.store
    try:
        changes = await store.messages.changes_since(view.folder_id, view.modseq)
    except NotFound:
        raise MailboxGone from None
    first_recent = None
    if not view.read_only:
        newest = max((change.uid for change in changes.changed), default=0)
        if newest > view.last_uid:
            first_recent = await store.folders.claim_recent(view.folder_id, newest + 1)
    data = view.apply(
        changes, allow_expunge=allow_expunge, condstore=state.condstore, first_recent=first_recent
    )
    if data:
        await state.write(data)
