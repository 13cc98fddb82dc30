"""The mail store's entry point: :class:`Store` opens the database, the message files and the
change feed, and groups the API every front end calls.

::

    store = await Store.open(settings)            # migrates the schema, starts the feed
    inbox = await store.folders.get(account.id, "INBOX")
    delivered = await store.messages.deliver(raw, [DeliveryTarget(account.id)])
    async with store.transaction() as tx:         # several steps, one commit
        await store.messages.deliver(raw, targets, tx=tx)
        await store.conversations.record_professional_message(..., tx=tx)
        await store.audit.record("smtp:peer", "deliver", ..., tx=tx)
    await store.close()

Every writing method takes an optional ``tx``: without it the method runs in its own
transaction; with it, it joins the caller's and nothing is visible (nor published on the change
feed) before that transaction commits. A method returns only once its transaction is committed.
Parts: :attr:`Store.accounts` (accounts, credentials, members, guardians),
:attr:`Store.folders`, :attr:`Store.messages`, :attr:`Store.directory`,
:attr:`Store.conversations`, :attr:`Store.audit`, :attr:`Store.login_failures`,
:attr:`Store.feed`.

This module wires the parts; it holds no SQL of its own beyond the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from .blobs import BlobStore, FileBlobStore
from .database import Database, async_url
from .feed import ChangeFeed, FeedEvent

if TYPE_CHECKING:
    from pli.config.schema import Settings

    from .accounts import Accounts
    from .audit import AuditLog
    from .conversations import Conversations
    from .directory import Directory
    from .folders import Folders
    from .logins import LoginFailures
    from .messages import Messages

log = structlog.get_logger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class Transaction:
    """A write transaction shared by several store calls.

    ``events`` are published on the change feed after commit; ``blobs`` were written for this
    transaction and are deleted if it fails before committing."""

    conn: AsyncConnection
    events: list[FeedEvent] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoreOptions:
    message_size_limit: int = 25 * 1024 * 1024
    audit_retention: float = 183 * 86400.0
    orphan_grace: float = 3600.0


class Store:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        feed: ChangeFeed,
        options: StoreOptions | None = None,
        *,
        listen_dsn: str | None = None,
    ) -> None:
        from .accounts import Accounts
        from .audit import AuditLog
        from .conversations import Conversations
        from .directory import Directory
        from .folders import Folders
        from .logins import LoginFailures
        from .messages import Messages

        self.db = db
        self.blobs = blobs
        self.feed = feed
        self.options = options or StoreOptions()
        self._listen_dsn = listen_dsn
        self.accounts: Accounts = Accounts(self)
        self.folders: Folders = Folders(self)
        self.messages: Messages = Messages(self)
        self.directory: Directory = Directory(self)
        self.conversations: Conversations = Conversations(self)
        self.audit: AuditLog = AuditLog(self)
        self.login_failures: LoginFailures = LoginFailures(self)

    @classmethod
    async def open(cls, settings: Settings, *, migrate: bool = True) -> Store:
        """The store of a configuration: database (migrated to the latest schema unless told
        otherwise), message files under ``storage.messages_dir``, change feed."""
        return await cls.open_url(
            settings.database_url,
            settings.server.data_dir / settings.storage.messages_dir,
            busy_timeout=settings.database.busy_timeout,
            synchronous=settings.database.sqlite_synchronous,
            pool_size=settings.database.pool_size,
            options=StoreOptions(
                message_size_limit=settings.limits.message_size,
                audit_retention=settings.audit.retention,
                orphan_grace=settings.storage.orphan_grace,
            ),
            migrate=migrate,
        )

    @classmethod
    async def open_url(
        cls,
        url: str,
        messages_dir: Path,
        *,
        schema: str | None = None,
        busy_timeout: float = 10.0,
        synchronous: str = "full",
        pool_size: int = 20,
        options: StoreOptions | None = None,
        migrate: bool = True,
        fsync: bool = True,
    ) -> Store:
        """A store on a database URL and a messages directory. ``schema`` (PostgreSQL) keeps every
        table in that schema (created if missing): tests use one per test."""
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError("schema names are lowercase letters, digits and underscores")
        url = async_url(url)
        if url.startswith("sqlite"):
            database_path = make_url(url).database
            if database_path and database_path != ":memory:":
                Path(database_path).parent.mkdir(parents=True, exist_ok=True)
        if migrate:
            from .migrate import upgrade

            await upgrade(url, schema=schema)
        db = Database.open(
            url,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            pool_size=pool_size,
            schema=schema,
        )
        channel = f"pli_store_{schema}" if schema else "pli_store"
        store = cls(
            db,
            FileBlobStore(messages_dir, fsync=fsync),
            ChangeFeed(channel),
            options,
            listen_dsn=_asyncpg_dsn(url) if db.is_postgresql else None,
        )
        if store._listen_dsn is not None:
            store.feed.start_listener(store._listen_dsn)
        return store

    async def close(self) -> None:
        await self.feed.stop()
        await self.db.close()

    async def health(self) -> str | None:
        """None when the database answers and the message directory is writable."""
        try:
            await asyncio.wait_for(self.db.ping(), timeout=5)
        except Exception as error:
            return f"database: {type(error).__name__}"
        if isinstance(self.blobs, FileBlobStore):
            probe = self.blobs.directory / "tmp"
            if not probe.is_dir() or not _writable(probe):
                return "message directory not writable"
        return None

    @contextlib.asynccontextmanager
    async def transaction(self, *, quick: bool = False) -> AsyncIterator[Transaction]:
        """One write transaction; commits when the block ends, then publishes its events.
        ``quick``: a few small statements (``Database.write``)."""
        tx: Transaction | None = None
        committing = False
        try:
            async with self.db.write(quick=quick) as conn:
                tx = Transaction(conn)
                yield tx
                if self.db.is_postgresql and tx.events:
                    for payload in self.feed.payloads(tx.events):
                        await conn.execute(
                            text("SELECT pg_notify(:channel, :payload)"),
                            {"channel": self.feed.channel, "payload": payload},
                        )
                committing = True
        except BaseException:
            # Files written for a transaction that never reached COMMIT are removed; after a
            # failed COMMIT the outcome may be unknown (connection lost), so they are left to the
            # sweep, which removes them only if no row refers to them.
            if tx is not None and not committing:
                await self._discard_blobs(tx.blobs)
            raise
        self.feed.publish(tx.events)

    async def _discard_blobs(self, blob_ids: list[str]) -> None:
        for blob_id in blob_ids:
            try:
                await asyncio.shield(self.blobs.delete(blob_id))
            except Exception as error:  # the sweep will get it
                log.warning("blob-discard-failed", blob=blob_id, error=type(error).__name__)

    @contextlib.asynccontextmanager
    async def writing(self, tx: Transaction | None) -> AsyncIterator[Transaction]:
        """``tx`` itself when given, else a new transaction for this call."""
        if tx is not None:
            yield tx
            return
        async with self.transaction() as own:
            yield own


def _asyncpg_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)
