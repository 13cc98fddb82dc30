"""SQLite quick transactions (``inline.py``) and the writers' file lock (``writelock.py``): what
they must keep of the plain path (reads see commits, writes are atomic and durable) and what
they change (no thread per statement; writers of several processes queue instead of polling;
another program holding SQLite's lock is waited for off the event loop, then refused)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, event, select, table, text
from sqlalchemy.exc import OperationalError

from pli.mailbox.store.database import _SNAPSHOT, Database
from pli.mailbox.store.inline import INLINE_COMMIT_BELOW, CommitTiming
from pli.mailbox.store.prepared import Prepared


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'store.sqlite3'}", busy_timeout=5.0)
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    yield db
    await db.close()


def _thread_function(db: Database) -> None:
    """Every new connection of either engine gets ``thread_id()``: the thread running it."""
    for engine in (db.engine, db.quick_engine):

        @event.listens_for(engine.sync_engine, "connect")
        def _register(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("thread_id", 0, threading.get_ident)


async def test_quick_statements_run_in_the_event_loops_thread(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    _thread_function(db)
    try:
        async with db.read(quick=True) as conn:
            quick = await conn.scalar(text("SELECT thread_id()"))
        async with db.read() as conn:
            threaded = await conn.scalar(text("SELECT thread_id()"))
        async with db.write(quick=True) as conn:
            writing = await conn.scalar(text("SELECT thread_id()"))
    finally:
        await db.close()
    assert quick == writing == threading.get_ident()
    assert threaded != threading.get_ident()  # aiosqlite's own thread


async def test_quick_writes_commit_roll_back_and_are_seen_by_every_reader(
    database: Database,
) -> None:
    async with database.write(quick=True) as conn:
        await conn.execute(text("INSERT INTO items (name) VALUES ('kept')"))
    with pytest.raises(RuntimeError):
        async with database.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('undone')"))
            raise RuntimeError("fails before the commit")
    for quick in (True, False):
        async with database.read(quick=quick) as conn:
            names = (await conn.scalars(text("SELECT name FROM items"))).all()
        assert names == ["kept"]
    # and on disk, for another program
    path = database.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT name FROM items").fetchall() == [("kept",)]


_NAMES = Prepared(select(column("name")).select_from(table("items")).order_by(column("id")))


async def test_a_quick_snapshot_is_one_read_transaction_for_its_prepared_lookups(
    database: Database,
) -> None:
    async with database.write() as conn:
        await conn.execute(text("INSERT INTO items (name) VALUES ('before')"))
    async with database.snapshot(quick=True):
        first = await database.all(_NAMES)
        async with database.write() as conn:  # another connection commits meanwhile
            await conn.execute(text("INSERT INTO items (name) VALUES ('during')"))
        second = await database.all(_NAMES)
        async with database.read() as conn:  # a plain read is a transaction of its own
            plain = (await conn.scalars(text("SELECT name FROM items ORDER BY id"))).all()
    assert [row.name for row in first] == [row.name for row in second] == ["before"]
    assert plain == ["before", "during"]
    assert [row.name for row in await database.all(_NAMES)] == ["before", "during"]


async def test_quick_readers_cannot_write_and_report_errors_as_sqlalchemy_does(
    database: Database,
) -> None:
    async with database.snapshot(quick=True):
        shared = _SNAPSHOT.get()
        assert shared is not None and isinstance(shared[1], sqlite3.Connection)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            shared[1].execute("INSERT INTO items (name) VALUES ('sneaked')")
        with pytest.raises(OperationalError, match="no such table"):
            await database.first(Prepared(select(column("x")).select_from(table("missing"))))
    async with database.read() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM items"))) == 0


async def test_another_program_holding_the_lock_is_waited_for_off_the_loop(
    database: Database,
) -> None:
    path = database.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with database.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('after')"))

    ticker = asyncio.create_task(ticking())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()  # waiting for the other program's transaction...
    assert ticks >= 10  # ...while the event loop goes on serving
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 5)
    ticker.cancel()
    other.close()
    async with database.read(quick=True) as conn:
        assert (await conn.scalars(text("SELECT name FROM items"))).all() == ["after"]


@pytest.mark.parametrize("quick", [True, False])
async def test_another_programs_lock_past_the_busy_timeout_is_database_locked(
    tmp_path: Path, quick: bool
) -> None:
    path = tmp_path / "store.sqlite3"
    db = Database.open(f"sqlite:///{path}", busy_timeout=0.3)
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY)"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.write(quick=quick) as conn:
                await conn.execute(text("INSERT INTO items DEFAULT VALUES"))
    finally:
        other.execute("ROLLBACK")
        other.close()
        await db.close()


async def test_writers_of_two_processes_queue_on_the_file_lock(tmp_path: Path) -> None:
    """Two Database objects on one file stand for two processes (each opens its own lock
    file description). SQLite's busy timeout is far shorter than the first transaction: the
    second writer still succeeds, because it waits on the file lock, not in SQLite."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    first, second = Database.open(url, busy_timeout=5.0), Database.open(url, busy_timeout=5.0)
    async with first.write() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    holding = asyncio.Event()

    async def long_transaction() -> None:
        async with first.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('first')"))
            holding.set()
            await asyncio.sleep(0.5)

    async def waiting_writer() -> float:
        await holding.wait()
        started = time.monotonic()
        async with second.write() as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('second')"))
        return time.monotonic() - started

    try:
        _, waited = await asyncio.gather(long_transaction(), waiting_writer())
        assert waited >= 0.4
        async with second.read() as conn:
            names = (await conn.scalars(text("SELECT name FROM items ORDER BY id"))).all()
        assert names == ["first", "second"]
    finally:
        await first.close()
        await second.close()


async def test_a_writer_given_up_while_waiting_does_not_keep_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    first, second = Database.open(url, busy_timeout=5.0), Database.open(url, busy_timeout=5.0)
    async with first.write() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY)"))
    try:
        release = asyncio.Event()

        async def holder() -> None:
            async with first.write() as conn:
                await conn.execute(text("INSERT INTO items DEFAULT VALUES"))
                await release.wait()

        holding = asyncio.create_task(holder())
        await asyncio.sleep(0.1)

        async def impatient() -> None:
            async with second.write() as conn:
                await conn.execute(text("INSERT INTO items DEFAULT VALUES"))

        waiting = asyncio.create_task(impatient())
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        await holding
        await asyncio.sleep(0.1)  # the abandoned wait gets the lock and lets it go
        async with asyncio.timeout(2):  # neither process is left waiting for a lost lock
            for db in (first, second, first):
                async with db.write() as conn:
                    await conn.execute(text("INSERT INTO items DEFAULT VALUES"))
        async with first.read() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM items")) == 4
    finally:
        await first.close()
        await second.close()


async def test_a_writer_waiting_past_the_busy_timeout_for_another_process_is_refused(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    first, second = Database.open(url, busy_timeout=5.0), Database.open(url, busy_timeout=0.2)
    async with first.write() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY)"))
    try:
        async with first.write():
            with pytest.raises(OperationalError, match="database is locked"):
                async with second.write(quick=True) as conn:
                    await conn.execute(text("INSERT INTO items DEFAULT VALUES"))
        async with second.write(quick=True) as conn:  # free again: the lock was not kept
            await conn.execute(text("INSERT INTO items DEFAULT VALUES"))
    finally:
        await first.close()
        await second.close()


async def test_a_quick_write_cancelled_during_its_commit_ends_committed_and_unlocked(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT runs in a worker thread: a cancellation then must neither touch the
    connection under the thread (a rollback racing the commit) nor leave the lock held."""
    from pli.mailbox.store import inline

    entered = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = inline.in_thread

    async def slow(function: Any) -> None:
        def committing() -> None:
            loop.call_soon_threadsafe(entered.set)
            time.sleep(0.3)
            function()

        await original(committing)

    monkeypatch.setattr(inline, "in_thread", slow)

    async def write() -> None:
        async with database.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('cancelled late')"))

    writer = asyncio.create_task(write())
    await entered.wait()
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    monkeypatch.setattr(inline, "in_thread", original)
    async with asyncio.timeout(2):  # the write lock is free again
        async with database.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('next')"))
    async with database.read() as conn:
        names = (await conn.scalars(text("SELECT name FROM items ORDER BY id"))).all()
    assert names == ["cancelled late", "next"]  # the COMMIT under way was not undone


def test_commit_timing_keeps_quick_commits_inline_and_sends_slow_ones_to_a_thread() -> None:
    timing = CommitTiming()
    assert not timing.inline  # nothing timed yet: a thread
    timing.timed(lambda: None)
    assert timing.inline
    timing.timed(lambda: time.sleep(INLINE_COMMIT_BELOW * 10))  # a checkpoint, a slow disk
    assert not timing.inline
    for _ in range(20):
        timing.timed(lambda: None)
    assert timing.inline  # the disk is quick again


async def test_a_quick_commit_runs_in_the_loops_thread_once_commits_are_known_quick(
    database: Database,
) -> None:
    committed_in: list[int] = []

    @event.listens_for(database.quick_engine.sync_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        def traced(statement: str) -> None:
            if statement == "COMMIT":
                committed_in.append(threading.get_ident())

        dbapi_connection.driver_connection.raw.set_trace_callback(traced)

    for name in ("first", "second", "third"):
        async with database.write(quick=True) as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES (:name)"), {"name": name})
    loop_thread = threading.get_ident()
    assert len(committed_in) == 3
    assert committed_in[0] != loop_thread  # the first, not timed yet: in a worker thread
    assert committed_in[1:] == [loop_thread, loop_thread]
