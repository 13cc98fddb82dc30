"""Messages in folders: deliver, append, fetch, flags, copy, move, expunge, changes since.

Delivery writes the message file once (shared by every recipient's copy: one blob per delivery,
each copy a row pointing at it), then in one transaction allocates each folder's UIDs, inserts the
rows with the parse cache and bumps MODSEQ. It returns only after COMMIT: an acknowledged message
is on disk and indexed.

UIDs and MODSEQs are allocated by updating the folder row, which also locks it until commit: two
transactions never interleave on one folder, so UIDs are strictly increasing in commit order and
a client that has seen HIGHESTMODSEQ n never later finds a change with a lower MODSEQ (RFC 7162
§3.1.1). Several folders are locked in id order (no deadlock).

Message files are never deleted here: an expunged message's file is removed by the sweep once no
row refers to it (COPY shares files, so a row count decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, null, or_, select, update

from pli.mailbox.mime.cache import MessageCache, parse_message

from .errors import InvalidRequest, NotFound, TooLarge
from .feed import EventKind, FeedEvent
from .flags import (
    DELETED,
    SEEN,
    encode_keywords,
    flag_names,
    merge_bits,
    merge_keywords,
    normalise,
)
from .folders import INBOX, normalise_name
from .models import ExpungedRow, FolderRow, MessageRow
from .prepared import Prepared
from .records import (
    Changes,
    CopyResult,
    Delivered,
    FlagChange,
    MessageMeta,
    MessageRowData,
    Selection,
    StoreResult,
)
from .search import calendar_day
from .uidset import UidSet, contains, sql_filter

if TYPE_CHECKING:
    from .service import Store, Transaction

#: Messages above this size are parsed in a worker thread (the event loop keeps serving).
PARSE_IN_THREAD_ABOVE = 1024 * 1024
_META_COLUMNS = (
    MessageRow.id,
    MessageRow.uid,
    MessageRow.modseq,
    MessageRow.flags,
    MessageRow.keywords,
    MessageRow.internal_date,
    MessageRow.size,
    MessageRow.blob_id,
)
#: Every delivery's rows (group commit): on SQLite run on the driver (``prepared.py``).
_INSERT_MESSAGE = Prepared(
    insert(MessageRow).returning(MessageRow.id, sort_by_parameter_order=True)
)
#: The folders of some accounts (the group commit resolves its targets with it).
_FOLDERS_OF = Prepared(
    select(FolderRow.id, FolderRow.account_id, FolderRow.name, FolderRow.noselect).where(
        FolderRow.account_id.in_(bindparam("accounts", expanding=True))
    )
)
#: ``count`` new UIDs and one new MODSEQ in a folder (the values after the change).
_ALLOCATE = Prepared(
    update(FolderRow)
    .where(FolderRow.id == bindparam("folder"), FolderRow.noselect.is_(False))
    .values(
        uidnext=FolderRow.uidnext + bindparam("count"),
        highestmodseq=FolderRow.highestmodseq + 1,
    )
    .returning(
        FolderRow.id,
        FolderRow.uidnext,
        FolderRow.highestmodseq,
        FolderRow.uidvalidity,
        FolderRow.account_id,
    )
)
# Columns copied as they are by COPY/MOVE (the parse cache is not recomputed).
_COPIED = (
    "blob_id",
    "size",
    "internal_date",
    "flags",
    "keywords",
    "envelope",
    "structure",
    "subject",
    "from_text",
    "to_text",
    "cc_text",
    "bcc_text",
    "message_id",
    "in_reply_to",
    "sent_at",
    "sent_day",
)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding many JSON documents at once: the
    objects built are acyclic, and collections triggered by their sheer number made a 10,000-row
    FETCH ENVELOPE three to four times slower (measured with bench/store.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message whose file is written and whose parse cache is computed (:meth:`prepare`):
    ``values``, the cache's columns (:func:`cache_values`, computed before the transaction, whose
    write lock the other writers wait for); ``settled``: its file is durable, contents and name
    (:meth:`Messages.settle`)."""

    blob_id: str
    values: dict[str, Any]
    settled: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """One recipient of a delivery: an account and the folder to file into (INBOX when the named
    folder does not exist), with initial flags."""

    account_id: int
    folder: str = INBOX
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message of :meth:`Messages.deliver_many`: its bytes, its targets, and when its file
    is written already, the result of :meth:`Messages.prepare`."""

    raw: bytes
    targets: Sequence[DeliveryTarget]
    prepared: PreparedMessage | None = None
    internal_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Filed:
    """A message about to get its rows: file, size, internal date, the cache's columns,
    folder → targets."""

    blob_id: str
    size: int
    internal_date: int
    values: dict[str, Any]
    folders: dict[int, list[DeliveryTarget]]


def _epoch(moment: datetime | None) -> int:
    if moment is None:
        return int(datetime.now(UTC).timestamp())
    if moment.tzinfo is None:
        raise InvalidRequest("internal date must carry a time zone")
    return int(moment.timestamp())


def cache_values(cache: MessageCache) -> dict[str, Any]:
    search = cache.search
    return {
        "envelope": cache.envelope_json(),
        "structure": cache.structure_json(),
        "subject": search.subject,
        "from_text": search.from_,
        "to_text": search.to,
        "cc_text": search.cc,
        "bcc_text": search.bcc,
        "message_id": search.message_id,
        "in_reply_to": search.in_reply_to,
        "sent_at": int(search.sent_at.timestamp()) if search.sent_at else None,
        "sent_day": calendar_day(cache.envelope[0]),
    }


class Messages:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing new messages -------------------------------------------------------------

    async def parse(self, raw: bytes) -> MessageCache:
        if len(raw) > self.store.options.message_size_limit:
            raise TooLarge(f"message larger than {self.store.options.message_size_limit} octets")
        if len(raw) > PARSE_IN_THREAD_ABOVE:
            return await asyncio.to_thread(parse_message, raw)
        return parse_message(raw)

    async def prepare(self, raw: bytes, parsed: MessageCache | None = None) -> PreparedMessage:
        """Write the message's file and parse it, outside any transaction, for a later
        :meth:`deliver` (group commit: the batch's files made durable at once by
        :meth:`settle`, then one COMMIT). A prepared message never delivered leaves a file the
        sweep removes. ``parsed``: :meth:`parse` of ``raw`` when the caller made it."""
        values = cache_values(parsed if parsed is not None else await self.parse(raw))
        return PreparedMessage(await self.store.blobs.put(raw, durable=False), values)

    async def settle(self, prepared: Sequence[PreparedMessage]) -> list[PreparedMessage]:
        """The prepared messages with their files made durable, contents and names (one worker
        thread for them all, one fsync per directory): before the transaction that files them,
        whose COMMIT must not refer to a file a crash could lose. :meth:`deliver_many` settles
        what is not yet."""
        await self.store.blobs.make_durable([p.blob_id for p in prepared if not p.settled])
        return [p if p.settled else replace(p, settled=True) for p in prepared]

    async def deliver(
        self,
        raw: bytes,
        targets: Sequence[DeliveryTarget],
        *,
        internal_date: datetime | None = None,
        prepared: PreparedMessage | None = None,
        tx: Transaction | None = None,
    ) -> list[Delivered]:
        """File one message into every target in one transaction (all or none); returns one
        :class:`Delivered` per distinct (account, folder), after commit. ``prepared``: the
        result of :meth:`prepare` for these bytes (its file is then not written again)."""
        new = NewMessage(raw, targets, prepared=prepared, internal_date=internal_date)
        return (await self.deliver_many([new], tx=tx))[0]

    async def deliver_many(
        self, messages: Sequence[NewMessage], *, tx: Transaction | None = None
    ) -> list[list[Delivered]]:
        """:meth:`deliver` for several messages in one transaction (group commit), with a fixed
        number of statements whatever their count: one lookup of the folders, one UID and
        MODSEQ allocation per folder (one statement for all folders on SQLite), one INSERT of
        every row. Returns each message's :class:`Delivered` list, in order. All or none."""
        for message in messages:
            if not message.targets:
                raise InvalidRequest("no recipient")
            for target in message.targets:
                normalise(target.flags)
        values = [
            message.prepared.values
            if message.prepared is not None
            else cache_values(await self.parse(message.raw))
            for message in messages
        ]
        unsettled = [m.prepared for m in messages if m.prepared and not m.prepared.settled]
        await self.settle(unsettled)
        blob_ids: list[str] = []
        registered = False
        try:
            for message in messages:
                prepared = message.prepared
                blob_ids.append(
                    prepared.blob_id
                    if prepared is not None
                    else await self.store.blobs.put(message.raw)
                )
            async with self.store.writing(tx) as tx:
                tx.blobs.extend(blob_ids)
                registered = True
                folders = await self._resolve_many(tx, [m.targets for m in messages])
                filed = [
                    _Filed(blob_id, len(m.raw), _epoch(m.internal_date), columns, by_folder)
                    for m, blob_id, columns, by_folder in zip(
                        messages, blob_ids, values, folders, strict=True
                    )
                ]
                return await self._file(tx, filed)
        except BaseException:
            if not registered:
                await self.store._discard_blobs(blob_ids)
            raise

    async def append(
        self,
        folder_id: int,
        raw: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        tx: Transaction | None = None,
    ) -> Delivered:
        """IMAP APPEND (RFC 9051 §6.3.12); the result gives APPENDUID (RFC 4315 §3)."""
        normalise(flags)  # refuse bad flags before writing anything
        values = cache_values(await self.parse(raw))
        target = DeliveryTarget(0, flags=tuple(flags))
        blob_id = await self.store.blobs.put(raw)
        registered = False
        try:
            async with self.store.writing(tx) as tx:
                tx.blobs.append(blob_id)
                registered = True
                filed = _Filed(
                    blob_id, len(raw), _epoch(internal_date), values, {folder_id: [target]}
                )
                return (await self._file(tx, [filed]))[0][0]
        except BaseException:
            if not registered:
                await self.store._discard_blobs([blob_id])
            raise

    async def _file(self, tx: Transaction, messages: Sequence[_Filed]) -> list[list[Delivered]]:
        """The rows of every message in every folder of it, in one :meth:`_insert_rows`; each
        message's :class:`Delivered` list, in order."""
        rows: list[dict[str, Any]] = []
        for message in messages:
            common = {
                "blob_id": message.blob_id,
                "size": message.size,
                "internal_date": message.internal_date,
                **message.values,
            }
            for folder_id in sorted(message.folders):
                flags: list[str] = []
                for target in message.folders[folder_id]:
                    flags.extend(target.flags)
                bits, keywords = normalise(flags)
                rows.append(
                    {
                        **common,
                        "flags": bits,
                        "keywords": encode_keywords(keywords),
                        "folder_id": folder_id,
                    }
                )
        inserted = iter(await self._insert_rows(tx, rows))
        return [[next(inserted) for _ in message.folders] for message in messages]

    async def _insert_rows(self, tx: Transaction, rows: list[dict[str, Any]]) -> list[Delivered]:
        """Insert ``rows`` (each naming its ``folder_id``) in one statement: the UIDs of every
        folder allocated at once (in row order within a folder), one MODSEQ and one ADDED event
        per folder. One :class:`Delivered` per row, in order."""
        counts: dict[int, int] = {}
        for row in rows:
            counts[row["folder_id"]] = counts.get(row["folder_id"], 0) + 1
        allocated = await self._allocate_many(tx, counts)
        next_uid = {folder_id: found[0] for folder_id, found in allocated.items()}
        for row in rows:
            folder_id = row["folder_id"]
            row["uid"] = next_uid[folder_id]
            row["modseq"] = allocated[folder_id][1]
            next_uid[folder_id] += 1
        delivered = []
        uids: dict[int, list[int]] = {}
        for row, found in zip(rows, await _INSERT_MESSAGE.each(tx.conn, rows), strict=True):
            folder_id = row["folder_id"]
            _, _, uidvalidity, account_id = allocated[folder_id]
            uids.setdefault(folder_id, []).append(row["uid"])
            delivered.append(
                Delivered(account_id, folder_id, uidvalidity, row["uid"], found.id, row["blob_id"])
            )
        for folder_id, added in uids.items():
            _, modseq, _, account_id = allocated[folder_id]
            tx.events.append(
                FeedEvent(EventKind.ADDED, account_id, folder_id, uids=tuple(added), modseq=modseq)
            )
        return delivered

    async def _resolve_many(
        self, tx: Transaction, messages: Sequence[Sequence[DeliveryTarget]]
    ) -> list[dict[int, list[DeliveryTarget]]]:
        """Folder id → targets for each message's targets, in one query; an unknown folder
        falls back to the account's INBOX."""
        accounts = sorted({target.account_id for targets in messages for target in targets})
        rows = await _FOLDERS_OF.all(tx.conn, accounts=accounts) if accounts else []
        by_name = {(row.account_id, row.name): row.id for row in rows if not row.noselect}
        resolved = []
        for targets in messages:
            folders: dict[int, list[DeliveryTarget]] = {}
            for target in targets:
                name = normalise_name(target.folder)
                folder_id = by_name.get((target.account_id, name)) or by_name.get(
                    (target.account_id, INBOX)
                )
                if folder_id is None:
                    raise NotFound("no such account")
                folders.setdefault(folder_id, []).append(target)
            resolved.append(folders)
        return resolved

    async def _allocate_many(
        self, tx: Transaction, counts: dict[int, int]
    ) -> dict[int, tuple[int, int, int, int]]:
        """For each folder, ``counts[folder]`` new UIDs and one new MODSEQ (locking the folder
        rows until commit, in id order: no deadlock on PostgreSQL): folder id → (first UID,
        MODSEQ, UIDVALIDITY, account id). One UPDATE … RETURNING per folder (on SQLite run on
        the driver: microseconds each)."""
        allocated: dict[int, tuple[int, int, int, int]] = {}
        for folder_id in sorted(counts):
            count = counts[folder_id]
            row = await _ALLOCATE.first(tx.conn, folder=folder_id, count=count)
            if row is None:
                raise NotFound("no such folder")
            allocated[folder_id] = (
                row.uidnext - count,
                row.highestmodseq,
                row.uidvalidity,
                row.account_id,
            )
        return allocated

    async def _bump(self, tx: Transaction, folder_id: int) -> tuple[int, int]:
        """A new MODSEQ for a change in the folder (locks the row): (modseq, account id)."""
        row = (
            await tx.conn.execute(
                update(FolderRow)
                .where(FolderRow.id == folder_id)
                .values(highestmodseq=FolderRow.highestmodseq + 1)
                .returning(FolderRow.highestmodseq, FolderRow.account_id)
            )
        ).first()
        if row is None:
            raise NotFound("no such folder")
        return row.highestmodseq, row.account_id

    async def _insert(
        self, tx: Transaction, folder_id: int, rows: list[dict[str, Any]]
    ) -> list[Delivered]:
        return await self._insert_rows(tx, [{**row, "folder_id": folder_id} for row in rows])

    # -- reading ----------------------------------------------------------------------------

    async def fetch(
        self,
        folder_id: int,
        uids: UidSet | None = None,
        *,
        envelope: bool = False,
        structure: bool = False,
        changed_since: int | None = None,
    ) -> list[MessageMeta]:
        """Metadata of the messages of ``uids`` (all when None) in UID order, in one query
        (``UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)``); ``changed_since``:
        only MODSEQ above it (RFC 7162 §3.1.4.1 CHANGEDSINCE)."""
        rows = await self._meta_rows(folder_id, uids, envelope, structure, changed_since)
        with gc_paused():
            return [
                MessageMeta.from_row(row, envelope=envelope, structure=structure) for row in rows
            ]

    async def fetch_rows(
        self,
        folder_id: int,
        uids: UidSet | None = None,
        *,
        envelope: bool = False,
        structure: bool = False,
        changed_since: int | None = None,
    ) -> list[MessageRowData]:
        """:meth:`fetch` for bulk readers (the IMAP server's FETCH of thousands of messages):
        plain tuples, the internal date as epoch seconds, the cache as its JSON text (None when
        not asked for), so that the caller decodes only what it has not cached itself."""
        rows = await self._meta_rows(folder_id, uids, envelope, structure, changed_since)
        make = MessageRowData._make
        return [
            make((r[0], r[1], r[2], flag_names(r[3], r[4]), r[5], r[6], r[7], r[8], r[9]))
            for r in rows
        ]

    async def _meta_rows(
        self,
        folder_id: int,
        uids: UidSet | None,
        envelope: bool,
        structure: bool,
        changed_since: int | None,
    ) -> list[Any]:
        """The metadata rows of ``uids`` in UID order, in one query (the cache's JSON columns
        NULL unless asked for; a UID set too long for SQL refined here)."""
        condition, refine = sql_filter(MessageRow.uid, uids)
        query = select(
            *_META_COLUMNS,
            MessageRow.envelope if envelope else null().label("envelope"),
            MessageRow.structure if structure else null().label("structure"),
        ).where(MessageRow.folder_id == folder_id, condition)
        if changed_since is not None:
            query = query.where(MessageRow.modseq > changed_since)
        async with self.store.db.read() as conn:
            rows = (await conn.execute(query.order_by(MessageRow.uid))).all()
        return [row for row in rows if not refine or contains(uids, row.uid)]

    async def uids(self, folder_id: int) -> list[int]:
        """Every UID of the folder in order (the IMAP session's sequence-number map)."""
        async with self.store.db.read() as conn:
            found = await conn.scalars(
                select(MessageRow.uid)
                .where(MessageRow.folder_id == folder_id)
                .order_by(MessageRow.uid)
            )
            return list(found)

    async def selection(self, folder_id: int) -> Selection:
        """What IMAP SELECT needs, in one read transaction: the folder (UIDVALIDITY, UIDNEXT,
        HIGHESTMODSEQ, the first not yet \\Recent UID), every UID in order and the first unseen
        one, from one scan of the folder's rows (RFC 3501 §6.3.1)."""
        async with self.store.db.read() as conn:
            folder = await self.store.folders.row(conn, folder_id)
            rows = await conn.execute(
                select(MessageRow.uid, MessageRow.flags.op("&")(SEEN))
                .where(MessageRow.folder_id == folder_id)
                .order_by(MessageRow.uid)
            )
            uids: list[int] = []
            first_unseen = None
            for uid, seen in rows:
                uids.append(uid)
                if first_unseen is None and not seen:
                    first_unseen = uid
        return Selection(folder, uids, first_unseen)

    async def get(self, folder_id: int, uid: int, *, structure: bool = True) -> MessageMeta:
        found = await self.fetch(folder_id, [(uid, uid)], envelope=True, structure=structure)
        if not found:
            raise NotFound("no such message")
        return found[0]

    async def read(self, folder_id: int, uid: int) -> bytes:
        """The message's bytes as received."""
        meta = await self.get(folder_id, uid, structure=False)
        return await self.store.blobs.get(meta.blob_id)

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a message file (BODY[section] from the structure offsets)."""
        return await self.store.blobs.read_range(blob_id, start, end)

    async def changes_since(self, folder_id: int, modseq: int) -> Changes:
        """Flag changes and new messages (``changed``) and expunged UIDs (``vanished``) with a
        MODSEQ above ``modseq`` (RFC 7162 §3.1.4.1, §3.2.5.2)."""
        async with self.store.db.read() as conn:
            highest = await conn.scalar(
                select(FolderRow.highestmodseq).where(FolderRow.id == folder_id)
            )
            if highest is None:
                raise NotFound("no such folder")
            rows = (
                await conn.execute(
                    select(MessageRow.uid, MessageRow.flags, MessageRow.keywords, MessageRow.modseq)
                    .where(MessageRow.folder_id == folder_id, MessageRow.modseq > modseq)
                    .order_by(MessageRow.uid)
                )
            ).all()
            vanished = await conn.scalars(
                select(ExpungedRow.uid)
                .where(ExpungedRow.folder_id == folder_id, ExpungedRow.modseq > modseq)
                .order_by(ExpungedRow.uid)
            )
            gone = tuple(vanished)
        changed = tuple(
            FlagChange(row.uid, flag_names(row.flags, row.keywords), row.modseq) for row in rows
        )
        return Changes(int(highest), changed, gone)

    # -- changing flags ----------------------------------------------------------------------

    async def store_flags(
        self,
        folder_id: int,
        uids: UidSet | None,
        mode: str,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
        tx: Transaction | None = None,
    ) -> StoreResult:
        """STORE: ``mode`` '+' adds, '-' removes, '=' replaces (RFC 9051 §6.4.6), keywords
        included. With ``unchanged_since`` (RFC 7162 §3.1.3), messages whose MODSEQ is above it
        are left alone and listed in ``failed``. Changed messages get one new MODSEQ."""
        if mode not in ("+", "-", "="):
            raise InvalidRequest("flag mode must be +, - or =")
        bits, keywords = normalise(flags)
        condition, refine = sql_filter(MessageRow.uid, uids)
        if not keywords and not refine:  # system flags only: the rows change in SQL
            async with self.store.writing(tx) as tx:
                return await self._store_system_flags(
                    tx, folder_id, condition, mode, bits, unchanged_since
                )
        async with self.store.writing(tx) as tx:
            locked = await tx.conn.scalar(
                select(FolderRow.account_id).where(FolderRow.id == folder_id).with_for_update()
            )
            if locked is None:
                raise NotFound("no such folder")
            rows = (
                await tx.conn.execute(
                    select(
                        MessageRow.id,
                        MessageRow.uid,
                        MessageRow.flags,
                        MessageRow.keywords,
                        MessageRow.modseq,
                    )
                    .where(MessageRow.folder_id == folder_id, condition)
                    .order_by(MessageRow.uid)
                )
            ).all()
            failed: list[int] = []
            updates: list[dict[str, Any]] = []
            for row in rows:
                if refine and not contains(uids, row.uid):
                    continue
                if unchanged_since is not None and row.modseq > unchanged_since:
                    failed.append(row.uid)
                    continue
                new_bits = merge_bits(row.flags, bits, mode)
                current = row.keywords.split()
                new_keywords = merge_keywords(current, keywords, mode)
                if new_bits == row.flags and new_keywords == current:
                    continue
                updates.append(
                    {
                        "row_id": row.id,
                        "uid": row.uid,
                        "new_flags": new_bits,
                        "new_keywords": encode_keywords(new_keywords),
                    }
                )
            if not updates:
                highest = await tx.conn.scalar(
                    select(FolderRow.highestmodseq).where(FolderRow.id == folder_id)
                )
                return StoreResult((), tuple(failed), int(highest or 0))
            modseq, account_id = await self._bump(tx, folder_id)
            await tx.conn.execute(
                update(MessageRow)
                .where(MessageRow.id == bindparam("row_id"))
                .values(
                    flags=bindparam("new_flags"),
                    keywords=bindparam("new_keywords"),
                    modseq=modseq,
                ),
                [{k: v for k, v in item.items() if k != "uid"} for item in updates],
            )
            changed = tuple(
                FlagChange(item["uid"], flag_names(item["new_flags"], item["new_keywords"]), modseq)
                for item in updates
            )
            tx.events.append(
                FeedEvent(
                    EventKind.FLAGS,
                    account_id,
                    folder_id,
                    uids=tuple(item["uid"] for item in updates),
                    modseq=modseq,
                )
            )
        return StoreResult(changed, tuple(failed), modseq)

    async def _store_system_flags(
        self,
        tx: Transaction,
        folder_id: int,
        condition: Any,
        mode: str,
        bits: int,
        unchanged_since: int | None,
    ) -> StoreResult:
        """STORE of system flags alone as one UPDATE … RETURNING (``STORE 1:* +FLAGS (\\Seen)``
        on 10,000 messages: one statement instead of 10,000 row updates); same result as the
        general path."""
        locked = await tx.conn.scalar(
            select(FolderRow.account_id).where(FolderRow.id == folder_id).with_for_update()
        )
        if locked is None:
            raise NotFound("no such folder")
        flags = MessageRow.flags
        if mode == "+":
            new_flags: Any = flags.op("|")(bits)
            changes: Any = flags.op("&")(bits) != bits
        elif mode == "-":
            new_flags = flags.op("&")(~bits)
            changes = flags.op("&")(bits) != 0
        else:
            new_flags = bits
            changes = or_(flags != bits, MessageRow.keywords != "")
        where = [MessageRow.folder_id == folder_id, condition]
        failed: list[int] = []
        if unchanged_since is not None:
            failed = list(
                await tx.conn.scalars(
                    select(MessageRow.uid)
                    .where(*where, MessageRow.modseq > unchanged_since)
                    .order_by(MessageRow.uid)
                )
            )
            where.append(MessageRow.modseq <= unchanged_since)
        pending = await tx.conn.scalar(select(MessageRow.id).where(*where, changes).limit(1))
        if pending is None:
            highest = await tx.conn.scalar(
                select(FolderRow.highestmodseq).where(FolderRow.id == folder_id)
            )
            return StoreResult((), tuple(failed), int(highest or 0))
        modseq, account_id = await self._bump(tx, folder_id)
        values: dict[str, Any] = {"flags": new_flags, "modseq": modseq}
        if mode == "=":
            values["keywords"] = ""
        rows = (
            await tx.conn.execute(
                update(MessageRow)
                .where(*where, changes)
                .values(**values)
                .returning(MessageRow.uid, MessageRow.flags, MessageRow.keywords)
            )
        ).all()
        changed = tuple(
            FlagChange(row.uid, flag_names(row.flags, row.keywords), modseq)
            for row in sorted(rows, key=lambda row: row.uid)
        )
        tx.events.append(
            FeedEvent(
                EventKind.FLAGS,
                account_id,
                folder_id,
                uids=tuple(c.uid for c in changed),
                modseq=modseq,
            )
        )
        return StoreResult(changed, tuple(failed), modseq)

    # -- copy, move, expunge -----------------------------------------------------------------

    async def copy(
        self,
        source_id: int,
        uids: UidSet | None,
        target_id: int,
        *,
        tx: Transaction | None = None,
    ) -> CopyResult:
        """COPY (RFC 9051 §6.4.7) with the COPYUID mapping (RFC 4315 §3). The copies share the
        source's message file and parse cache."""
        async with self.store.writing(tx) as tx:
            return await self._copy(tx, source_id, uids, target_id)

    async def _copy(
        self, tx: Transaction, source_id: int, uids: UidSet | None, target_id: int
    ) -> CopyResult:
        condition, refine = sql_filter(MessageRow.uid, uids)
        query = (
            select(MessageRow.uid, *[getattr(MessageRow, name) for name in _COPIED])
            .where(MessageRow.folder_id == source_id, condition)
            .order_by(MessageRow.uid)
        )
        if self.store.db.is_postgresql:
            # Hold the source rows until commit: a concurrent EXPUNGE waits, so the sweep
            # never sees the shared file unreferenced in between (see module docstring).
            query = query.with_for_update(read=True)
        rows = [row for row in (await tx.conn.execute(query)).all()]
        rows = [row for row in rows if not refine or contains(uids, row.uid)]
        target = await self.store.folders.row(tx.conn, target_id)
        if not rows:
            return CopyResult(target.uidvalidity, ())
        values = [{name: getattr(row, name) for name in _COPIED} for row in rows]
        inserted = await self._insert(tx, target_id, values)
        pairs = tuple((row.uid, new.uid) for row, new in zip(rows, inserted, strict=True))
        return CopyResult(inserted[0].uidvalidity, pairs)

    async def move(
        self,
        source_id: int,
        uids: UidSet | None,
        target_id: int,
        *,
        tx: Transaction | None = None,
    ) -> CopyResult:
        """MOVE (RFC 6851): copy then expunge from the source, atomically."""
        if source_id == target_id:
            raise InvalidRequest("source and target folders are the same")
        async with self.store.writing(tx) as tx:
            return await self.move_in(tx, source_id, uids, target_id)

    async def move_in(
        self, tx: Transaction, source_id: int, uids: UidSet | None, target_id: int
    ) -> CopyResult:
        # Lock both folder rows in id order before anything else (no deadlock with deliveries).
        for folder_id in sorted({source_id, target_id}):
            await tx.conn.execute(
                select(FolderRow.id).where(FolderRow.id == folder_id).with_for_update()
            )
        copied = await self._copy(tx, source_id, uids, target_id)
        moved = [source_uid for source_uid, _ in copied.pairs]
        if moved:
            await self._remove(tx, source_id, moved)
        return CopyResult(copied.uidvalidity, copied.pairs, tuple(moved))

    async def expunge(
        self, folder_id: int, uids: UidSet | None = None, *, tx: Transaction | None = None
    ) -> list[int]:
        """EXPUNGE (all \\Deleted) or UID EXPUNGE (\\Deleted within ``uids``, RFC 4315 §2.1);
        returns the expunged UIDs and leaves tombstones with the new MODSEQ."""
        condition, refine = sql_filter(MessageRow.uid, uids)
        async with self.store.writing(tx) as tx:
            await tx.conn.execute(
                select(FolderRow.id).where(FolderRow.id == folder_id).with_for_update()
            )
            found = (
                await tx.conn.scalars(
                    select(MessageRow.uid).where(
                        MessageRow.folder_id == folder_id,
                        MessageRow.flags.op("&")(DELETED) != 0,
                        condition,
                    )
                )
            ).all()
            doomed = sorted(uid for uid in found if not refine or contains(uids, uid))
            if doomed:
                await self._remove(tx, folder_id, doomed)
            return doomed

    async def _remove(self, tx: Transaction, folder_id: int, uids: list[int]) -> None:
        modseq, account_id = await self._bump(tx, folder_id)
        for chunk_start in range(0, len(uids), 500):
            chunk = uids[chunk_start : chunk_start + 500]
            await tx.conn.execute(
                delete(MessageRow).where(
                    MessageRow.folder_id == folder_id, MessageRow.uid.in_(chunk)
                )
            )
        await tx.conn.execute(
            insert(ExpungedRow),
            [{"folder_id": folder_id, "uid": uid, "modseq": modseq} for uid in uids],
        )
        tx.events.append(
            FeedEvent(EventKind.EXPUNGED, account_id, folder_id, uids=tuple(uids), modseq=modseq)
        )

    # -- search ------------------------------------------------------------------------------

    async def search(self, folder_id: int, criterion: Any) -> list[int]:
        """UIDs matching a :mod:`.search` criterion (SQL on the cache; BODY/TEXT read files)."""
        from .search import Searcher

        return await Searcher(self.store).search(folder_id, criterion)
