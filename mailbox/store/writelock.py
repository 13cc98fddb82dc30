"""SQLite's single writer across processes: a file lock taken before ``BEGIN IMMEDIATE``.

Several pli processes share one SQLite database (SMTP listeners with ``processes > 1``, the CLI
beside ``pli serve``). Left to SQLite, a writer that finds the write lock taken polls through its
busy handler, which sleeps between tries (up to 100 ms at a time): with two busy processes the
lock changes hands late, p99 latency reaches seconds and neither process gains (bench/smtp.py).
An exclusive ``flock(2)`` on ``<database>.lock`` held for the whole write transaction makes the
processes queue in the kernel instead, which wakes the next waiter the moment the holder lets go.

Uncontended, the lock is taken at once in the event loop's thread; contended, a worker thread
waits for it, at most ``timeout`` seconds (then SQLAlchemy's ``OperationalError`` "database is
locked", as SQLite's own busy timeout would say). A waiter given up (timeout, cancellation)
releases the lock as soon as its thread obtains it, so an abandoned wait never keeps the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable

from sqlalchemy.exc import OperationalError


class WriteLock:
    """The inter-process write lock of one SQLite database file (one per process: within a
    process, writers already queue on an asyncio lock)."""

    def __init__(self, database_path: str, timeout: float) -> None:
        self.path = f"{database_path}.lock"
        self.timeout = timeout
        self._descriptor: int | None = None

    def _fd(self) -> int:
        if self._descriptor is None:
            self._descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._descriptor

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        descriptor = self._fd()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await self._wait(descriptor)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)

    async def _wait(self, descriptor: int) -> None:
        waiting = _in_daemon_thread(lambda: fcntl.flock(descriptor, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as error:
            # Given up: the descriptor stays with the waiting thread and is closed when that
            # returns (which releases the lock if it got it); the next writer opens another.
            self._descriptor = None
            waiting.add_done_callback(lambda _done: os.close(descriptor))
            if isinstance(error, TimeoutError):  # as SQLite's busy timeout says it
                raise OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
                ) from None
            raise

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def _in_daemon_thread(function: Callable[[], None]) -> asyncio.Future[None]:
    """``function`` in a thread of its own that never delays the process's exit: a lock held
    forever by a hung process must not keep this one from stopping (the event loop's default
    executor joins its threads at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            function()
        except BaseException as raised:  # handed to the waiting coroutine
            error = raised
        with contextlib.suppress(RuntimeError):  # the loop closed: the process is ending
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name="pli-write-lock", daemon=True).start()
    return future
