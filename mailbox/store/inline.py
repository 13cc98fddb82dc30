"""SQLite connections that run in the event loop's own thread, for short statements.

aiosqlite gives every connection a thread and hands each statement over to it and back: two
thread switches and a wake-up of the event loop per statement. For a lookup by primary key or
unique index, which SQLite answers in tens of microseconds from the page cache, the hand-offs
cost more than the query, and under load the threads fight over the GIL (bench/smtp.py: half
of the process's CPU was the kernel's futex calls). The policy's facts of one recipient are
five such lookups; :meth:`Database.snapshot` with ``quick=True`` runs them here instead, on a
:class:`QuickReaders` connection used without SQLAlchemy (``prepared.py`` runs the lookups).

Quick write transactions (``Database.write(quick=True)``: the group commit of deliveries) run
their statements here too, but what may wait goes to a worker thread: ``BEGIN IMMEDIATE`` when
another program holds SQLite's write lock, and ``COMMIT`` (fsync, and the WAL checkpoint SQLite
may run then) once commits have been slow (:class:`CommitTiming`). A transaction then holds the
write lock for its own work only: with aiosqlite, each of its statements also waited for the
event loop to come back to it, and the other processes waited as long for the lock.

:func:`connector` makes objects with the part of aiosqlite's ``Connection`` interface that
SQLAlchemy's ``sqlite+aiosqlite`` dialect uses (coroutines), so the same engine, statements and
result objects serve; it is the engine's ``async_creator``.

Only for statements that stay small: one here holds the event loop while it runs. In WAL mode
a reader does not wait for the writer; the busy timeout is kept short for the rare cases where
it could (recovery of the WAL index), and the caller sees the ``OperationalError`` as a store
that did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

#: How long a quick read may wait on a lock before failing (seconds): it holds the loop.
QUICK_BUSY_TIMEOUT = 0.1
#: Connections kept open for quick reads (and as many more under a burst).
QUICK_POOL_SIZE = 32
#: How a write transaction begins (the write lock taken at once: ``database.py``).
BEGIN_WRITE = "BEGIN IMMEDIATE"


class _Cursor:
    """aiosqlite's ``Cursor`` coroutines over a sqlite3 cursor, completed synchronously."""

    __slots__ = ("_cursor", "_write_wait")

    def __init__(self, cursor: sqlite3.Cursor, write_wait: float) -> None:
        self._cursor = cursor
        self._write_wait = write_wait

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        if sql == BEGIN_WRITE:
            await _begin_write(self._cursor, self._write_wait)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


async def _begin_write(cursor: sqlite3.Cursor, wait: float) -> None:
    """``BEGIN IMMEDIATE`` here when the write lock is free (pli's writers queue on a file lock
    first, so it normally is); else the lock is waited for in a worker thread (another program
    holds it), at most ``wait`` seconds."""
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        cursor.execute(BEGIN_WRITE)
        return
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
            raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={_ms(QUICK_BUSY_TIMEOUT)}")

    def waiting() -> None:
        cursor.execute(f"PRAGMA busy_timeout={_ms(wait)}")
        try:
            cursor.execute(BEGIN_WRITE)
        finally:
            cursor.execute(f"PRAGMA busy_timeout={_ms(QUICK_BUSY_TIMEOUT)}")

    await in_thread(waiting)


async def in_thread(function: Callable[[], None]) -> None:
    """``function`` in a worker thread; cancelled, this still waits for it to end before
    raising: the connection must not be rolled back or closed by the loop's thread while the
    worker uses it (a COMMIT half done, a BEGIN that may still take the lock)."""
    running = asyncio.ensure_future(asyncio.to_thread(function))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(running)
        raise


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


#: A COMMIT that takes less than this on average runs in the event loop's thread (seconds): the
#: interpreter's switch interval, what a worker thread may wait for the GIL to hand it back.
INLINE_COMMIT_BELOW = sys.getswitchinterval()
#: Weight of the newest COMMIT in the running average of their durations.
COMMIT_AVERAGE_WEIGHT = 0.2


class CommitTiming:
    """Where COMMIT runs, from what it costs. Handed to a worker thread, a COMMIT also waits
    for the GIL to come back (up to the interpreter's 5 ms switch interval while the event loop
    runs Python), and the write lock, which the other processes queue for, is held all that
    time: with an fsync of 0.2 ms (an SSD; a COMMIT of a group of deliveries takes 1-2 ms) the
    lock was held 6-8 ms per COMMIT. So COMMIT runs in the loop's thread while its running
    average stays under :data:`INLINE_COMMIT_BELOW`, what the thread could have cost (a slow
    disk, or a checkpoint, moves it back to a thread after a few slow ones; it starts there,
    until a first one was timed)."""

    def __init__(self) -> None:
        self.average: float | None = None

    @property
    def inline(self) -> bool:
        return self.average is not None and self.average < INLINE_COMMIT_BELOW

    def timed(self, commit: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            commit()
        finally:
            took = time.perf_counter() - started
            previous = took if self.average is None else self.average
            self.average = previous + COMMIT_AVERAGE_WEIGHT * (took - previous)


class _RunNow:
    """Stands for aiosqlite's request queue, which SQLAlchemy's dialect uses directly to set
    ``isolation_level``: the request runs at once."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(error)


class InlineConnection:
    """aiosqlite's ``Connection`` coroutines over a sqlite3 connection, completed synchronously
    in the calling (event loop) thread."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        write_wait: float,
        timing: CommitTiming | None = None,
    ) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._write_wait = write_wait
        self._timing = timing or CommitTiming()
        self._changes = connection.total_changes  # rows changed as of the last COMMIT
        self._tx = _RunNow()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def raw(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (``prepared.py`` runs its statements on it)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor(), self._write_wait)

    async def commit(self) -> None:
        """COMMIT: fsync, and maybe a checkpoint. Here when commits have been quick, else in a
        worker thread (:class:`CommitTiming`). The connection is not used by anything else
        meanwhile: the transaction's task waits for this."""
        connection = self._conn
        if connection.total_changes == self._changes:  # nothing written: nothing to sync
            connection.commit()
        elif self._timing.inline:
            self._timing.timed(connection.commit)
        else:
            await in_thread(lambda: self._timing.timed(connection.commit))
        self._changes = connection.total_changes

    async def rollback(self) -> None:
        self._conn.rollback()
        self._changes = self._conn.total_changes

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


class QuickReaders:
    """sqlite3 connections for quick read transactions, used without SQLAlchemy: the policy's
    facts of a recipient are a handful of prepared lookups (``prepared.py``), and checking a
    connection out of SQLAlchemy's pool, its BEGIN through an event and its return to the pool
    cost more than the lookups. Opened on demand, ``idle`` kept; ``query_only`` (a statement
    that would write fails instead)."""

    def __init__(self, path: str, idle: int = QUICK_POOL_SIZE) -> None:
        self._path = path
        self._idle: list[sqlite3.Connection] = []
        self._keep = idle

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A read transaction (BEGIN … ROLLBACK) on an idle connection or a new one."""
        connection = self._idle.pop() if self._idle else self._open()
        try:
            connection.execute("BEGIN")
        except BaseException:
            connection.close()
            raise
        reusable = False
        try:
            yield connection
        finally:
            try:
                connection.execute("ROLLBACK")
                reusable = len(self._idle) < self._keep
            finally:
                if reusable:
                    self._idle.append(connection)
                else:
                    connection.close()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout={_ms(QUICK_BUSY_TIMEOUT)}")
        connection.execute("PRAGMA query_only=ON")
        return connection

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def connector(path: str, write_wait: float) -> Callable[[], Any]:
    """The engine's ``async_creator`` for the database file at ``path``; a write transaction
    waits at most ``write_wait`` seconds for another program's (the busy timeout)."""
    timing = CommitTiming()  # one disk: its connections share what their commits cost

    async def connect() -> InlineConnection:
        # check_same_thread off: COMMIT (and a waited-for BEGIN) run in a worker thread while
        # the loop's thread waits for them; SQLAlchemy may close it from the garbage collector.
        connection = sqlite3.connect(path, check_same_thread=False)
        return InlineConnection(connection, write_wait, timing)

    return connect
