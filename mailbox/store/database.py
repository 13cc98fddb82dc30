"""The database connection: one async engine, read and write transactions, SQLite tuned for a
mail store.

SQLite (default): WAL journal (readers never block the writer), ``BEGIN IMMEDIATE`` for every
write transaction (the write lock is taken at BEGIN, so two writers never deadlock upgrading a
read lock), a busy timeout, foreign keys on, and ``synchronous`` FULL by default (every commit
fsyncs the WAL: an acknowledged message survives power loss) or NORMAL (survives a killed process,
may lose the last commits on power loss). pysqlite's own transaction handling is switched off and
BEGIN emitted by us, as SQLAlchemy documents for SERIALIZABLE/savepoint correctness. Writers of one
process queue on an asyncio lock, and processes on a file lock (``writelock.py``), instead of
polling in SQLite's busy handler. Quick transactions (point lookups such as the policy's facts,
the group commit) run on connections in the event loop's own thread (``inline.py``: no thread
hand-off per statement).

PostgreSQL: asyncpg, READ COMMITTED; writers serialise on the rows they update (a folder's
UIDNEXT row, the audit chain row).

This module knows connections and transactions only; queries live in the service modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from pli.config.schema import async_database_url

from .errors import InvalidRequest
from .inline import BEGIN_WRITE, QUICK_BUSY_TIMEOUT, QUICK_POOL_SIZE, QuickReaders, connector
from .prepared import Prepared, driver_error
from .writelock import WriteLock

#: The read transaction of the current :meth:`Database.snapshot`, per task (with its database):
#: a SQLAlchemy connection, or a quick reader's sqlite3 connection (for prepared lookups only).
_SNAPSHOT: ContextVar[tuple[Database, AsyncConnection | sqlite3.Connection] | None] = ContextVar(
    "pli_store_snapshot", default=None
)


def async_url(url: str) -> str:
    """The SQLAlchemy async URL of a configured one (``sqlite://…`` → aiosqlite,
    ``postgresql://…`` → asyncpg); an already async URL is returned as it is."""
    if not url:
        raise InvalidRequest("empty database URL")
    return async_database_url(url, Path("pli.sqlite3"))


class Database:
    """An async engine with ``read()`` and ``write()`` transactions."""

    def __init__(
        self,
        engine: AsyncEngine,
        quick: AsyncEngine | None = None,
        processes_lock: WriteLock | None = None,
        readers: QuickReaders | None = None,
    ) -> None:
        self.engine = engine
        #: The engine of quick snapshots (SQLite: in the loop's thread; else the same engine).
        self.quick_engine = quick or engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._processes_lock = processes_lock
        self._readers = readers

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @classmethod
    def open(
        cls,
        url: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: str = "full",
        pool_size: int = 20,
        schema: str | None = None,
    ) -> Database:
        """Create the engine (no connection is made yet). ``schema`` (PostgreSQL) puts every
        table in that schema through the search path (tests isolate themselves this way)."""
        url = async_url(url)
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if synchronous not in ("full", "normal"):
                raise InvalidRequest("sqlite synchronous must be full or normal")
            memory = _memory(url)
            engine = create_async_engine(url, poolclass=NullPool if memory else None)
            _tune_sqlite(engine, busy_timeout, synchronous)
            if memory:
                return cls(engine)
            quick = create_async_engine(
                url,
                async_creator=connector(parsed.database or "", busy_timeout),
                # Returning a connection to the pool takes a turn of the event loop (SQLAlchemy
                # closes it in a shielded task): concurrent sessions hold more connections than
                # they use at once. Connections here are cheap (no thread); keep enough that
                # they are not closed and reopened under load.
                pool_size=QUICK_POOL_SIZE,
                max_overflow=QUICK_POOL_SIZE,
            )
            _tune_sqlite(quick, QUICK_BUSY_TIMEOUT, synchronous)
            path = parsed.database or ""
            return cls(engine, quick, WriteLock(path, busy_timeout), QuickReaders(path))
        elif parsed.get_backend_name() == "postgresql":
            connect_args: dict[str, Any] = {}
            if schema:
                connect_args["server_settings"] = {"search_path": schema}
            # Past pool_size, a connection is opened for one checkout and closed after it: a
            # new PostgreSQL backend, its TLS attempt and statement preparations each time.
            # With 20 SMTP sessions a pool of 10 opened 15-30 connections a second
            # (bench/smtp.py: 142 msg/s against 171 with 20, docs/smtp.md).
            engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
        else:
            raise InvalidRequest(f"unsupported database {parsed.get_backend_name()!r}")
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.quick_engine is not self.engine:
            await self.quick_engine.dispose()
        if self._processes_lock is not None:
            self._processes_lock.close()
        if self._readers is not None:
            self._readers.close()

    @contextlib.asynccontextmanager
    async def read(self, *, quick: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction (rolled back at the end); inside :meth:`snapshot`, the snapshot's.
        ``quick``: point lookups only, run in the event loop's thread on SQLite (``inline.py``)."""
        shared = _SNAPSHOT.get()
        if shared is not None and shared[0] is self and isinstance(shared[1], AsyncConnection):
            yield shared[1]
            return
        engine = self.quick_engine if quick else self.engine
        async with engine.connect() as connection, connection.begin():
            yield connection

    async def first(self, prepared: Prepared, **values: Any) -> Any:
        """The first row of a prepared lookup, or None: in the current snapshot, else in a
        quick one of its own."""
        shared = self._shared()
        if shared is not None:  # the common case, without entering a context manager
            return await prepared.first(shared, **values)
        async with self.snapshot(quick=True):
            return await prepared.first(self._in_snapshot(), **values)

    async def all(self, prepared: Prepared, **values: Any) -> list[Any]:
        """Every row of a prepared lookup (as :meth:`first`)."""
        shared = self._shared()
        if shared is not None:
            return await prepared.all(shared, **values)
        async with self.snapshot(quick=True):
            return await prepared.all(self._in_snapshot(), **values)

    def _shared(self) -> AsyncConnection | sqlite3.Connection | None:
        """The connection of this task's snapshot of this database, if it is in one."""
        shared = _SNAPSHOT.get()
        return shared[1] if shared is not None and shared[0] is self else None

    def _in_snapshot(self) -> AsyncConnection | sqlite3.Connection:
        shared = self._shared()
        assert shared is not None
        return shared

    @contextlib.asynccontextmanager
    async def snapshot(self, *, quick: bool = False) -> AsyncIterator[None]:
        """Every :meth:`read` of this task inside the block shares one read transaction: one
        connection checkout, BEGIN and ROLLBACK for many small queries (the policy's facts of a
        recipient: five lookups). Nested snapshots are the outer one. Only for sequential reads
        of one task: tasks started inside inherit the context, so never gather reads in it.
        ``quick``: for blocks of point lookups. On a SQLite file it is a quick reader's
        transaction (``inline.py``, no SQLAlchemy) that only :meth:`first` and :meth:`all` share;
        another :meth:`read` inside has its own."""
        shared = _SNAPSHOT.get()
        if shared is not None and shared[0] is self:
            yield
            return
        if quick and self._readers is not None:
            try:
                with self._readers.transaction() as raw:
                    token = _SNAPSHOT.set((self, raw))
                    try:
                        yield
                    finally:
                        _SNAPSHOT.reset(token)
            except sqlite3.Error as error:  # BEGIN or ROLLBACK: raised as SQLAlchemy would
                raise driver_error("BEGIN", (), error) from error
            return
        async with self.read(quick=quick) as connection:
            token = _SNAPSHOT.set((self, connection))
            try:
                yield
            finally:
                _SNAPSHOT.reset(token)

    @contextlib.asynccontextmanager
    async def write(self, *, quick: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception. ``quick``:
        small statements only (SQLite: run in the loop's thread, ``inline.py``)."""
        if self._write_lock is None:
            async with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        engine = self.quick_engine if quick else self.engine
        # The locks span BEGIN … COMMIT only: checking the connection out before, and giving it
        # back after (SQLAlchemy does that in a task of its own: other tasks run meanwhile,
        # which held the lock the other processes wait for 8-11 ms per transaction).
        async with engine.connect() as connection:
            await connection.execution_options(pli_write=True)
            async with self._write_lock, self._held(), connection.begin():
                yield connection

    def _held(self) -> contextlib.AbstractAsyncContextManager[None]:
        if self._processes_lock is None:
            return contextlib.nullcontext()
        return self._processes_lock.held()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def _memory(url: str) -> bool:
    return url.endswith(":memory:") or url.endswith("://")


def _tune_sqlite(engine: AsyncEngine, busy_timeout: float, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's documented recipe: let us emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # On the driver's cursor: exec_driver_sql built an execution context and a result for
        # every BEGIN (1-2 % of the event loop's time under load). Errors as SQLAlchemy's.
        write = connection.get_execution_options().get("pli_write", False)
        sql = BEGIN_WRITE if write else "BEGIN"
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
        except sqlite3.Error as error:
            raise driver_error(sql, (), error) from error
        finally:
            cursor.close()
