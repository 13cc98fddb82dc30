"""Commands that change messages: STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE), COPY
(§6.4.7) and MOVE (RFC 6851) with COPYUID, APPEND (§6.3.11) with APPENDUID (RFC 4315 §3).

Every change is one store transaction; the untagged FETCH of a STORE is this session's report of
its own change, remembered in the view so that the next synchronisation does not repeat it.
Actions in another's mailbox are audited with ``acting_for``.

Must not: announce changes of other sessions (the synchronisation does).
"""

from __future__ import annotations

import base64
import email
import email.policy

from pli.mailbox.store import TooLarge
from pli.mailbox.store.uidset import ranges_of

from .. import commands as c
from .. import response
from ..sequence import format_numbers
from .fetching import resolve_uids
from .mailboxes import folder_of, resolve
from .state import Reply, SessionState, no

_STORE_MODES = {"replace": "=", "add": "+", "remove": "-"}


async def store(state: SessionState, command: c.Store) -> Reply:
    view = state.selected
    if view.read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    if command.unchanged_since is not None:
        state.enable_condstore()  # RFC 7162 §3.1: CONDSTORE-enabling
    uids = view.live_uids(resolve_uids(view, command.sequence_set, command.uid))
    if not uids:
        return Reply("OK", "STORE completed")
    result = await state.store.messages.store_flags(
        view.folder_id,
        ranges_of(uids),
        _STORE_MODES[command.mode],
        command.flags,
        unchanged_since=command.unchanged_since,
    )
    condstore = state.condstore
    view.own_change(result.changed, result.highestmodseq)
    out = []
    for change in result.changed:
        if command.silent and not condstore:
            break  # RFC 7162 §3.1.3: with CONDSTORE, FETCH (MODSEQ) is sent even for .SILENT
        sequence = view.sequence_of(change.uid)
        if sequence is None:
            continue
        items = []
        if not command.silent:
            items.append(response.fetch_flags(view.flags_with_recent(change.uid, change.flags)))
        if command.uid or condstore:
            items.insert(0, response.fetch_uid(change.uid))
        if condstore:
            items.append(response.fetch_modseq(change.modseq))
        out.append(response.fetch_response(sequence, items))
    await state.write(b"".join(out))
    await state.audit(view.ref, "imap-store", f"STORE {command.mode} {len(uids)} messages")
    if result.failed:
        failed = list(result.failed)
        if not command.uid:
            failed = [n for uid in failed if (n := view.sequence_of(uid)) is not None]
        modified = f"MODIFIED {format_numbers(failed)}"
        return Reply("OK", "Conditional STORE failed for some messages", modified)
    return Reply("OK", "STORE completed")


async def copy(state: SessionState, command: c.Copy | c.Move) -> Reply:
    view = state.selected
    moving = isinstance(command, c.Move)
    if moving and view.read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    target_ref = await resolve(state, command.mailbox)
    target = await folder_of(state, target_ref, missing_code="TRYCREATE")
    uids = view.live_uids(resolve_uids(view, command.sequence_set, command.uid))
    verb = "MOVE" if moving else "COPY"
    if not uids:
        return Reply("OK", f"{verb} completed")
    messages = state.store.messages
    if moving:  # to the same mailbox too: new UIDs, the old ones expunged (as Dovecot does)
        async with state.store.transaction() as tx:
            result = await messages.move_in(tx, view.folder_id, ranges_of(uids), target.id)
    else:
        result = await messages.copy(view.folder_id, ranges_of(uids), target.id)
    source_uids = [source for source, _ in result.pairs]
    code = None
    if result.pairs:
        code = response.copyuid_code(
            result.uidvalidity, source_uids, [destination for _, destination in result.pairs]
        )
    action = f"imap-{verb.lower()}"
    await state.audit(view.ref, action, f"{verb} {len(uids)} messages to {target_ref.folder}")
    await state.audit(target_ref, f"{action}-in", f"{verb} {len(uids)} messages")
    if moving:  # RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs
        if code is not None:
            state.out.write(response.untagged("OK", "Moved", code))
        await state.write(b"".join(view.remove_expunged(list(result.expunged))))
        return Reply("OK", "MOVE completed")
    if len(result.pairs) < len(uids):
        raise no("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    return Reply("OK", "COPY completed", code)


def seven_bit_safe(raw: bytes) -> bytes:
    """A message APPENDed as a literal8 (RFC 3516 §4.4) with parts in the ``binary`` transfer
    encoding: those parts re-encoded in base64, so that BODY[…] never returns NUL octets
    (as Dovecot stores them). Other messages are kept octet for octet."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    changed = False
    for part in message.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if part.is_multipart() or encoding != "binary":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(payload).decode("ascii"))
        changed = True
    if not changed:
        return raw
    return message.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


async def append(state: SessionState, command: c.Append) -> Reply:
    """APPEND, and MULTIAPPEND (RFC 3502): every message in one transaction, or none."""
    ref = await resolve(state, command.mailbox)
    folder = await folder_of(state, ref, missing_code="TRYCREATE")
    messages = command.messages
    if any(not message.message for message in messages):
        raise no("Cannot append an empty message")
    store = state.store
    try:
        async with store.transaction() as tx:
            delivered = [
                await store.messages.append(
                    folder.id,
                    seven_bit_safe(message.message) if message.binary else message.message,
                    flags=message.flags,
                    internal_date=message.date_time,
                    tx=tx,
                )
                for message in messages
            ]
    except TooLarge as error:
        raise no(str(error), "TOOBIG") from None
    size = sum(len(message.message) for message in messages)
    await state.audit(ref, "imap-append", f"APPEND {ref.folder} {len(messages)} ({size} octets)")
    uids = format_numbers(item.uid for item in delivered)
    return Reply("OK", "APPEND completed", f"APPENDUID {delivered[0].uidvalidity} {uids}")
