"""Folders (IMAP mailboxes) of an account: list with attributes, create, delete, rename,
subscribe, status.

Names are Unicode paths with '/' as the hierarchy delimiter (the IMAP server converts from and to
modified UTF-7 or UTF-8); ``INBOX`` is matched case-insensitively and stored as ``INBOX``
(RFC 9051 §5.1). UIDVALIDITY comes from a per-account counter that starts at the current time and
only grows, so a re-created or renamed folder never reuses a value (RFC 9051 §2.3.1.1).

Semantics follow RFC 9051: CREATE makes missing parents (§6.3.4); DELETE of a folder with
children keeps it as \\Noselect and removes its messages (§6.3.5); RENAME moves the children
along, and RENAME INBOX moves its messages to the new folder and leaves INBOX empty (§6.3.6).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from .errors import AlreadyExists, InvalidRequest, NotFound
from .feed import EventKind, FeedEvent
from .flags import DELETED, SEEN
from .models import FOLDER_NAME_LENGTH, AccountRow, FolderRow, LostSubscriptionRow, MessageRow
from .records import Folder, FolderStatus, SpecialUse

if TYPE_CHECKING:
    from .service import Store, Transaction

DELIMITER = "/"
INBOX = "INBOX"
#: The folders every account gets, with their RFC 6154 roles.
DEFAULT_FOLDERS: tuple[tuple[str, SpecialUse | None], ...] = (
    (INBOX, None),
    ("Sent", SpecialUse.SENT),
    ("Drafts", SpecialUse.DRAFTS),
    ("Trash", SpecialUse.TRASH),
    ("Archive", SpecialUse.ARCHIVE),
)
#: Hierarchy levels in a folder name (deep trees are a denial-of-service vector; Dovecot's
#: mailbox_list_visible_escape limits are similar).
MAX_FOLDER_DEPTH = 32
#: Folders per account.
MAX_FOLDERS = 10000


def normalise_name(name: str) -> str:
    """The stored form of a folder name; :class:`InvalidRequest` if it cannot be one."""
    if not name or len(name) > FOLDER_NAME_LENGTH:
        raise InvalidRequest("invalid folder name length")
    if name.startswith(DELIMITER) or name.endswith(DELIMITER) or "//" in name:
        raise InvalidRequest("invalid folder name: empty hierarchy level")
    if any(ord(char) < 0x20 or char in "*%\x7f" for char in name):
        raise InvalidRequest("invalid folder name: wildcard or control character")
    parts = name.split(DELIMITER)
    if len(parts) > MAX_FOLDER_DEPTH:
        raise InvalidRequest(f"folder hierarchy deeper than {MAX_FOLDER_DEPTH} levels")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def _parents(name: str) -> list[str]:
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:index]) for index in range(1, len(parts))]


def _children_filter(account_id: int, name: str) -> Any:
    prefix = name + DELIMITER
    return and_(
        FolderRow.account_id == account_id,
        func.substr(FolderRow.name, 1, len(prefix)) == prefix,
    )


def folder_from_row(row: Any, has_children: bool = False) -> Folder:
    return Folder(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        uidvalidity=row.uidvalidity,
        uidnext=row.uidnext,
        highestmodseq=row.highestmodseq,
        special_use=row.special_use,
        subscribed=row.subscribed,
        noselect=row.noselect,
        has_children=has_children,
        first_recent_uid=row.first_recent_uid,
    )


class Folders:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def all(self, account_id: int) -> list[Folder]:
        """Every folder of the account, sorted by name, with ``has_children`` set."""
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(FolderRow)
                    .where(FolderRow.account_id == account_id)
                    .order_by(FolderRow.name)
                )
            ).all()
        names = {row.name for row in rows}
        with_children = {parent for name in names for parent in _parents(name)}
        return [folder_from_row(row, row.name in with_children) for row in rows]

    async def get(self, account_id: int, name: str) -> Folder:
        name = normalise_name(name)
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(
                    select(FolderRow).where(
                        FolderRow.account_id == account_id, FolderRow.name == name
                    )
                )
            ).first()
            if row is None:
                raise NotFound("no such folder")
            child = (
                await conn.execute(select(FolderRow.id).where(_children_filter(account_id, name)))
            ).first()
        return folder_from_row(row, child is not None)

    async def by_id(self, folder_id: int) -> Folder:
        async with self.store.db.read() as conn:
            return await self.row(conn, folder_id)

    async def row(self, conn: Any, folder_id: int) -> Folder:
        row = (await conn.execute(select(FolderRow).where(FolderRow.id == folder_id))).first()
        if row is None:
            raise NotFound("no such folder")
        return folder_from_row(row)

    async def create(
        self,
        account_id: int,
        name: str,
        *,
        special_use: SpecialUse | None = None,
        subscribed: bool = True,
        tx: Transaction | None = None,
    ) -> Folder:
        """Create a folder and its missing parents; :class:`AlreadyExists` if it exists.
        ``subscribed``: whether they start subscribed (IMAP CREATE: not, RFC 3501 §6.3.3); a
        name whose subscription outlived an earlier folder is subscribed again."""
        name = normalise_name(name)
        async with self.store.writing(tx) as tx:
            existing = {
                row.name: row
                for row in (
                    await tx.conn.execute(
                        select(FolderRow.name, FolderRow.noselect).where(
                            FolderRow.account_id == account_id,
                            FolderRow.name.in_([*_parents(name), name]),
                        )
                    )
                ).all()
            }
            if name in existing and not existing[name].noselect:
                raise AlreadyExists("folder exists already")
            count = await tx.conn.scalar(
                select(func.count())
                .select_from(FolderRow)
                .where(FolderRow.account_id == account_id)
            )
            if (count or 0) >= MAX_FOLDERS:
                raise InvalidRequest(f"too many folders (at most {MAX_FOLDERS})")
            lost = set(
                (
                    await tx.conn.scalars(
                        delete(LostSubscriptionRow)
                        .where(
                            LostSubscriptionRow.account_id == account_id,
                            LostSubscriptionRow.name.in_([*_parents(name), name]),
                        )
                        .returning(LostSubscriptionRow.name)
                    )
                ).all()
            )
            for parent in _parents(name):
                if parent not in existing:
                    await self._insert(
                        tx, account_id, parent, None, subscribed=subscribed or parent in lost
                    )
            if name in existing:  # a \Noselect placeholder becomes a real folder again
                uidvalidity = await self._next_uidvalidity(tx, account_id)
                await tx.conn.execute(
                    update(FolderRow)
                    .where(FolderRow.account_id == account_id, FolderRow.name == name)
                    .values(noselect=False, uidvalidity=uidvalidity, uidnext=1, first_recent_uid=1)
                )
                folder_id = await tx.conn.scalar(
                    select(FolderRow.id).where(
                        FolderRow.account_id == account_id, FolderRow.name == name
                    )
                )
                assert folder_id is not None
            else:
                folder_id = await self._insert(
                    tx, account_id, name, special_use, subscribed=subscribed or name in lost
                )
            folder = await self.row(tx.conn, folder_id)
        return folder

    async def create_defaults(self, account_id: int, tx: Transaction) -> None:
        for name, role in DEFAULT_FOLDERS:
            await self._insert(tx, account_id, name, role)

    async def _insert(
        self,
        tx: Transaction,
        account_id: int,
        name: str,
        special_use: SpecialUse | None,
        *,
        subscribed: bool = True,
    ) -> int:
        uidvalidity = await self._next_uidvalidity(tx, account_id)
        folder_id = await tx.conn.scalar(
            insert(FolderRow)
            .values(
                account_id=account_id,
                name=name,
                uidvalidity=uidvalidity,
                uidnext=1,
                highestmodseq=1,
                special_use=special_use.value if special_use else None,
                subscribed=subscribed,
                noselect=False,
                created_at=datetime.now(UTC),
            )
            .returning(FolderRow.id)
        )
        assert folder_id is not None
        tx.events.append(FeedEvent(EventKind.FOLDER_CREATED, account_id, folder_id, name))
        return int(folder_id)

    async def _next_uidvalidity(self, tx: Transaction, account_id: int) -> int:
        """RFC 9051 §2.3.1.1: strictly increasing per account, from the current time."""
        now = int(time.time()) & 0xFFFFFFFF
        value = await tx.conn.scalar(
            update(AccountRow)
            .where(AccountRow.id == account_id)
            .values(
                last_uidvalidity=func.max(AccountRow.last_uidvalidity + 1, now)
                if self.store.db.is_sqlite
                else func.greatest(AccountRow.last_uidvalidity + 1, now)
            )
            .returning(AccountRow.last_uidvalidity)
        )
        if value is None:
            raise NotFound("no such account")
        return int(value)

    async def delete(self, account_id: int, name: str, *, tx: Transaction | None = None) -> None:
        """RFC 9051 §6.3.5: INBOX cannot be deleted; a folder with children becomes \\Noselect."""
        name = normalise_name(name)
        if name == INBOX:
            raise InvalidRequest("INBOX cannot be deleted")
        async with self.store.writing(tx) as tx:
            row = (
                await tx.conn.execute(
                    select(FolderRow.id, FolderRow.noselect, FolderRow.subscribed).where(
                        FolderRow.account_id == account_id, FolderRow.name == name
                    )
                )
            ).first()
            if row is None:
                raise NotFound("no such folder")
            child = (
                await tx.conn.execute(
                    select(FolderRow.id).where(_children_filter(account_id, name)).limit(1)
                )
            ).first()
            if child is not None and row.noselect:
                raise InvalidRequest("folder has children and no messages of its own")
            await tx.conn.execute(delete(MessageRow).where(MessageRow.folder_id == row.id))
            if child is not None:
                await tx.conn.execute(
                    update(FolderRow).where(FolderRow.id == row.id).values(noselect=True)
                )
            else:
                await tx.conn.execute(delete(FolderRow).where(FolderRow.id == row.id))
                if row.subscribed:  # RFC 3501 §6.3.6: the subscription stays
                    await tx.conn.execute(
                        insert(LostSubscriptionRow).values(account_id=account_id, name=name)
                    )
            tx.events.append(FeedEvent(EventKind.FOLDER_DELETED, account_id, row.id, name))

    async def rename(
        self, account_id: int, old: str, new: str, *, tx: Transaction | None = None
    ) -> Folder:
        """RFC 9051 §6.3.6: children move along; renaming INBOX moves its messages."""
        old, new = normalise_name(old), normalise_name(new)
        if new == old:
            raise AlreadyExists("folder exists already")
        if new.startswith(old + DELIMITER):
            raise InvalidRequest("a folder cannot be moved under itself")
        async with self.store.writing(tx) as tx:
            source = (
                await tx.conn.execute(
                    select(FolderRow).where(
                        FolderRow.account_id == account_id, FolderRow.name == old
                    )
                )
            ).first()
            if source is None:
                raise NotFound("no such folder")
            clash = await tx.conn.scalar(
                select(FolderRow.id).where(
                    FolderRow.account_id == account_id,
                    or_(FolderRow.name == new, _children_filter(account_id, new)),
                )
            )
            if clash is not None:
                raise AlreadyExists("target folder exists already")
            if old == INBOX:
                target = await self.create(account_id, new, tx=tx)
                await self.store.messages.move_in(tx, source.id, None, target.id)
                return await self.row(tx.conn, target.id)
            for parent in _parents(new):
                exists = await tx.conn.scalar(
                    select(FolderRow.id).where(
                        FolderRow.account_id == account_id, FolderRow.name == parent
                    )
                )
                if exists is None:
                    await self._insert(tx, account_id, parent, None)
            children = (
                await tx.conn.execute(
                    select(FolderRow.id, FolderRow.name).where(_children_filter(account_id, old))
                )
            ).all()
            await tx.conn.execute(
                update(FolderRow).where(FolderRow.id == source.id).values(name=new)
            )
            for child in children:
                renamed = new + child.name[len(old) :]
                await tx.conn.execute(
                    update(FolderRow).where(FolderRow.id == child.id).values(name=renamed)
                )
                tx.events.append(FeedEvent(EventKind.FOLDER_RENAMED, account_id, child.id, renamed))
            tx.events.append(FeedEvent(EventKind.FOLDER_RENAMED, account_id, source.id, new))
            return await self.row(tx.conn, source.id)

    async def subscribe(
        self, account_id: int, name: str, subscribed: bool = True, *, tx: Transaction | None = None
    ) -> None:
        """Subscribe to an existing folder, or unsubscribe from a folder or from a name whose
        subscription outlived its folder (:meth:`lost_subscriptions`)."""
        name = normalise_name(name)
        async with self.store.writing(tx) as tx:
            result = await tx.conn.execute(
                update(FolderRow)
                .where(FolderRow.account_id == account_id, FolderRow.name == name)
                .values(subscribed=subscribed)
            )
            forgotten = 0
            if not subscribed:
                forgotten = (
                    await tx.conn.execute(
                        delete(LostSubscriptionRow).where(
                            LostSubscriptionRow.account_id == account_id,
                            LostSubscriptionRow.name == name,
                        )
                    )
                ).rowcount
            if result.rowcount == 0 and not forgotten:
                raise NotFound("no such folder")

    async def lost_subscriptions(self, account_id: int) -> list[str]:
        """Subscribed names whose folder no longer exists (LSUB and LIST (SUBSCRIBED) still
        show them, RFC 3501 §6.3.6, RFC 5258 ``\\NonExistent``)."""
        async with self.store.db.read() as conn:
            names = await conn.scalars(
                select(LostSubscriptionRow.name)
                .where(LostSubscriptionRow.account_id == account_id)
                .order_by(LostSubscriptionRow.name)
            )
            return list(names)

    async def status(self, folder_id: int) -> FolderStatus:
        """SELECT/STATUS figures in one read transaction (a consistent view)."""
        async with self.store.db.read() as conn:
            folder = await self.row(conn, folder_id)
            exists, size = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(MessageRow.size), 0)).where(
                        MessageRow.folder_id == folder_id
                    )
                )
            ).one()
            unseen_filter = and_(
                MessageRow.folder_id == folder_id, MessageRow.flags.op("&")(SEEN) == 0
            )
            unseen, first_unseen = (
                await conn.execute(
                    select(func.count(), func.min(MessageRow.uid)).where(unseen_filter)
                )
            ).one()
            deleted = await conn.scalar(
                select(func.count()).where(
                    MessageRow.folder_id == folder_id, MessageRow.flags.op("&")(DELETED) != 0
                )
            )
            recent = await conn.scalar(
                select(func.count()).where(
                    MessageRow.folder_id == folder_id, MessageRow.uid >= folder.first_recent_uid
                )
            )
        return FolderStatus(
            folder=folder,
            exists=int(exists),
            unseen=int(unseen),
            first_unseen_uid=first_unseen,
            deleted=int(deleted or 0),
            size=int(size),
            recent=int(recent or 0),
        )

    async def claim_recent(self, folder_id: int, up_to_uid: int) -> int:
        r"""IMAP \Recent (RFC 3501 §2.3.2): claim for the calling session the messages below
        ``up_to_uid`` that no session has seen; returns the first UID claimed (the messages from
        it up to ``up_to_uid`` are \Recent to the caller alone, ``up_to_uid`` when none)."""
        async with self.store.db.read() as conn:
            first = await conn.scalar(
                select(FolderRow.first_recent_uid).where(FolderRow.id == folder_id)
            )
        if first is None:
            raise NotFound("no such folder")
        if first >= up_to_uid:
            return up_to_uid  # nothing to claim: no write transaction
        async with self.store.transaction() as tx:
            first = await tx.conn.scalar(
                select(FolderRow.first_recent_uid)
                .where(FolderRow.id == folder_id)
                .with_for_update()
            )
            if first is None:
                raise NotFound("no such folder")
            if first < up_to_uid:
                await tx.conn.execute(
                    update(FolderRow)
                    .where(FolderRow.id == folder_id)
                    .values(first_recent_uid=up_to_uid)
                )
        return min(int(first), up_to_uid)

    async def ids(self, account_id: int, names: Sequence[str]) -> dict[str, int]:
        """Folder name → id for the names that exist."""
        normalised = [normalise_name(name) for name in names]
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(FolderRow.name, FolderRow.id).where(
                        FolderRow.account_id == account_id, FolderRow.name.in_(normalised)
                    )
                )
            ).all()
        return {row.name: row.id for row in rows}
