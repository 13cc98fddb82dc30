"""The selected mailbox as one session knows it: sequence numbers, \\Recent, what the client was
told, and the untagged updates it is owed (RFC 3501 §5.2, §7.4.1; RFC 9051 §7.5).

A :class:`SelectedView` holds the UIDs in sequence order as the client last heard them. Messages
expunged by another session stay in that list as *ghosts* until an EXPUNGE response may be sent
(never while answering FETCH, STORE or SEARCH: sequence numbers would shift under the client);
ghosts answer nothing (FETCH skips them, SEARCH cannot match them). New messages are appended and
announced with EXISTS (and RECENT) at the next point where updates are sent.

Changes are found with the store's ``changes_since(highest MODSEQ seen)``: new messages,
flag changes and expunged UIDs since then, whoever made them (this session, another one, another
process). :meth:`SelectedView.apply` turns them into untagged responses. Flag changes this
session already reported (its own STORE) are not reported twice: :attr:`SelectedView.reported`
remembers the MODSEQ of each flag state the client was given until the next synchronisation.

Must not: query the store (the session passes the changes in) nor write to the client.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from pli.mailbox.store import Changes, FlagChange, Folder

from .. import response
from ..sequence import SequenceSet
from .namespaces import MailboxRef


@dataclass
class SelectedView:
    folder: Folder
    ref: MailboxRef  # whose folder this is (audited when not the session's own)
    wire_name: str
    read_only: bool
    uids: list[int]
    modseq: int
    recent: set[int] = field(default_factory=set)
    ghosts: set[int] = field(default_factory=set)
    reported: dict[int, int] = field(default_factory=dict)

    @property
    def folder_id(self) -> int:
        return self.folder.id

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def sequence_of(self, uid: int) -> int | None:
        """The sequence number of a UID in the view (ghosts included), or None."""
        index = bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def live(self, uid: int) -> bool:
        return uid not in self.ghosts and self.sequence_of(uid) is not None

    def uids_of_sequence_set(self, numbers: SequenceSet) -> list[int]:
        """UIDs of the messages a sequence-number set names (``*`` is the last one)."""
        count = len(self.uids)
        return [self.uids[n - 1] for n in numbers.iter_values(count)]

    def uids_of_uid_set(self, uids: SequenceSet) -> list[int]:
        """The view's UIDs within a UID set (``*`` is the highest UID in the view)."""
        return [self.uids[index] for index in uids.select_indices(self.uids)]

    def live_uids(self, uids: list[int]) -> list[int]:
        if not self.ghosts:
            return uids
        return [uid for uid in uids if uid not in self.ghosts]

    def own_change(self, changes: Sequence[FlagChange], modseq: int) -> None:
        """This session's STORE of MODSEQ ``modseq`` changed ``changes``, and the client knows.
        When nothing else happened since the last synchronisation (MODSEQs are allocated one
        at a time per folder, so ``modseq - 1`` is the view's), the view moves to ``modseq``
        at once; otherwise each change is remembered so that the next synchronisation does not
        report it again."""
        if not changes:  # nothing changed: ``modseq`` is not this session's
            return
        if self.modseq == modseq - 1:
            self.modseq = modseq
            return
        for change in changes:
            self.reported[change.uid] = change.modseq

    def apply(
        self,
        changes: Changes,
        *,
        allow_expunge: bool,
        condstore: bool,
        first_recent: int | None,
    ) -> bytes:
        """Merge changes since :attr:`modseq` and return the untagged responses owed.

        ``first_recent``: the first UID of the new messages this session claimed as \\Recent
        (None: it claims nothing, as in EXAMINE)."""
        out: list[bytes] = []
        for uid in changes.vanished:
            if self.sequence_of(uid) is not None:
                self.ghosts.add(uid)
        if allow_expunge:
            out.extend(self.flush_expunges())
        last = self.last_uid
        vanished = set(changes.vanished)
        new = [c.uid for c in changes.changed if c.uid > last and c.uid not in vanished]
        for change in changes.changed:
            if change.uid > last or change.uid in self.ghosts:
                continue
            if self.reported.get(change.uid) == change.modseq:
                continue
            sequence = self.sequence_of(change.uid)
            if sequence is None:
                continue
            items = [response.fetch_flags(self.flags_with_recent(change.uid, change.flags))]
            if condstore:
                items.append(response.fetch_uid(change.uid))
                items.append(response.fetch_modseq(change.modseq))
            out.append(response.fetch_response(sequence, items))
        self.reported.clear()
        self.modseq = max(self.modseq, changes.highestmodseq)
        if new:
            self.uids.extend(new)
            if first_recent is not None:
                self.recent.update(uid for uid in new if uid >= first_recent)
        if new:
            out.append(response.exists(len(self.uids)))
            out.append(response.recent(self.recent_count()))
        return b"".join(out)

    def flush_expunges(self) -> list[bytes]:
        """EXPUNGE responses for the ghosts, highest sequence number first (so that each number
        is valid when its response is read), and the ghosts removed from the view."""
        if not self.ghosts:
            return []
        out = []
        for uid in sorted(self.ghosts, reverse=True):
            sequence = self.sequence_of(uid)
            if sequence is None:
                continue
            out.append(response.expunge(sequence))
            del self.uids[sequence - 1]
            self.recent.discard(uid)
        self.ghosts.clear()
        return out

    def remove_expunged(self, uids: list[int]) -> list[bytes]:
        """This session's own EXPUNGE/MOVE removed ``uids``: their EXPUNGE responses, along with
        any ghosts waiting (the command may send them: RFC 3501 §7.4.1)."""
        for uid in uids:
            if self.sequence_of(uid) is not None:
                self.ghosts.add(uid)
        return self.flush_expunges()

    def recent_count(self) -> int:
        return sum(1 for uid in self.recent if uid not in self.ghosts)

    def flags_with_recent(self, uid: int, flags: tuple[str, ...]) -> tuple[str, ...]:
        """The flags as this session shows them: with \\Recent for its recent messages."""
        if uid in self.recent:
            return ("\\Recent", *flags)
        return flags
