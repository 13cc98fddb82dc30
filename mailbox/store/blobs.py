"""Message bytes: written once to a file, never rewritten, behind a small interface.

:class:`BlobStore` is what the rest of the store uses (``put``, ``get``, ``open_range``,
``delete``, ``list``); :class:`FileBlobStore` keeps each blob in a file under the messages
directory. A shared backend (PostgreSQL large objects, object storage) can implement the same
protocol without touching IMAP or SMTP code.

Durability (architecture.md § Store): ``put`` creates the file under its final name (never an
existing one), writes and fsyncs it and fsyncs its directory before it returns; only then is the
index row committed that refers to it, so a file is only ever read once complete. A crash before
the commit (even mid-write) leaves an unreferenced file that :mod:`.sweep` removes after a grace
period. (Writing in ``tmp/`` and renaming cost a second directory update per message and a
filesystem-wide lock per rename, for nothing the index does not already give.)

Blob ids are 32 hex digits: the first three name the minute of writing (modulo 2**12 minutes,
about three days), the other 116 bits are random. Nothing about the content or the recipient
can be read from a file name, and the messages of one minute share 16 directories: new
directories are made 16 times a minute, not for nearly every message as with fully random names
on a young store (making a directory is the costliest metadata operation for ext4; the 16 spread
the parallel writers, which a single directory would serialise; bench/smtp.py).

A group commit makes its batch's files durable at once: ``put(…, durable=False)`` creates and
writes the file (its writeback is not waited for), and the caller runs :meth:`make_durable` on the
batch's ids before the COMMIT that refers to them. That runs in one worker thread: it starts the
writeback of every file, then fsyncs each (on ext4 the fsyncs then share journal commits: 20 files
in 3 ms where 20 fsyncs in turn took 6-7 ms, and 4-13 ms in 20 threads), then each directory
once (the messages of one minute share 16 directories). One hand-over to a thread per batch, not
one per message: each cost the event loop a wake-up of a worker and, under load, a wait for the
interpreter lock (bench/smtp.py). A file whose directory ``put`` had to make is synced at once
with its directories, as a durable ``put`` does (16 times a minute).

File work is blocking: it runs in a worker thread (``asyncio.to_thread``), except the creation
and write of a small blob, which take microseconds in the page cache.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from .errors import NotFound

BLOB_ID_BYTES = 16  # 32 hex digits: 3 of them the minute of writing, 116 random bits
#: Blobs up to this size are created and written in the event loop's thread (module docstring).
WRITE_INLINE_UP_TO = 256 * 1024
_TMP = "tmp"  # leftovers of older versions (and the writability probe)


class BlobStore(Protocol):
    async def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` and return its new id: durably, or with ``durable=False`` only once
        :meth:`make_durable` has run on it (a batch makes its files durable at once)."""

    async def make_durable(self, blob_ids: Sequence[str]) -> None:
        """Make the contents and names of blobs put with ``durable=False`` durable."""

    async def get(self, blob_id: str) -> bytes:
        """The whole blob; :class:`NotFound` if it does not exist."""

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the blob (BODY[section] and partial fetches)."""

    async def delete(self, blob_id: str) -> None:
        """Remove the blob if present (idempotent)."""

    def list(self) -> Iterator[tuple[str, float]]:
        """Every stored blob id with its creation time (seconds since the epoch)."""


def new_blob_id(now: float | None = None) -> str:
    """The minute of writing (modulo 2**12) in three hex digits, then 116 random bits."""
    minute = int((time.time() if now is None else now) // 60) % 0x1000
    return f"{minute:03x}{secrets.token_hex(BLOB_ID_BYTES)[3:]}"


_HEX_DIGITS = frozenset("0123456789abcdef")


def _valid(blob_id: str) -> bool:
    return len(blob_id) == 2 * BLOB_ID_BYTES and _HEX_DIGITS.issuperset(blob_id)


class FileBlobStore:
    """Blobs as files ``DIR/ab/cd/abcd…`` (two levels of 256 directories)."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self._root = str(directory)
        self.fsync = fsync
        (directory / _TMP).mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        return Path(self._location(blob_id)[1])

    def _location(self, blob_id: str) -> tuple[str, str]:
        """(directory, file) of :meth:`path` as strings: what a message's writing uses
        (pathlib's operators cost microseconds each)."""
        if not _valid(blob_id):
            raise NotFound("no such message file")
        directory = f"{self._root}/{blob_id[:2]}/{blob_id[2:4]}"
        return directory, f"{directory}/{blob_id}"

    async def put(self, data: bytes, *, durable: bool = True) -> str:
        blob_id = new_blob_id()
        if len(data) > WRITE_INLINE_UP_TO:
            descriptor, created = await asyncio.to_thread(self._create, blob_id, data)
        else:
            descriptor, created = self._create(blob_id, data)
        if durable or created:
            await asyncio.to_thread(self._sync_and_close, blob_id, descriptor, created)
        else:
            os.close(descriptor)
        return blob_id

    async def make_durable(self, blob_ids: Sequence[str]) -> None:
        if self.fsync and blob_ids:
            files = [self._location(blob_id) for blob_id in blob_ids]
            await asyncio.to_thread(_make_durable, files)

    def _create(self, blob_id: str, data: bytes) -> tuple[int, bool]:
        """The blob's file created under its final name and written: (descriptor, whether its
        directory was made). A failed write closes the file (the sweep removes it)."""
        directory, final = self._location(blob_id)
        created = False
        try:
            descriptor = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:  # the minute's first message: make its directory
            created = True
            Path(directory).mkdir(parents=True, exist_ok=True)
            descriptor = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor, created

    def _sync_and_close(self, blob_id: str, descriptor: int, created: bool) -> None:
        try:
            if self.fsync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if self.fsync:
            _fsync_directory(self._location(blob_id)[0])
            if created:  # the new directory's own name, and its parent's
                _fsync_directory(f"{self._root}/{blob_id[:2]}")
                _fsync_directory(self._root)

    async def get(self, blob_id: str) -> bytes:
        path = self.path(blob_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound("no such message file") from None

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        path = self.path(blob_id)

        def read() -> bytes:
            with open(path, "rb") as file:
                file.seek(max(start, 0))
                return file.read(max(end - start, 0))

        try:
            return await asyncio.to_thread(read)
        except FileNotFoundError:
            raise NotFound("no such message file") from None

    async def delete(self, blob_id: str) -> None:
        path = self.path(blob_id)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    def list(self) -> Iterator[tuple[str, float]]:
        for first in sorted(self.directory.iterdir()):
            if first.name == _TMP or not first.is_dir():
                continue
            for second in first.iterdir():
                for entry in second.iterdir():
                    if _valid(entry.name):
                        try:
                            yield entry.name, entry.stat().st_mtime
                        except FileNotFoundError:
                            continue

    def list_temporary(self) -> Iterator[tuple[Path, float]]:
        """Files left in ``tmp/`` by a writer killed before its rename."""
        for entry in (self.directory / _TMP).iterdir():
            try:
                yield entry, entry.stat().st_mtime
            except FileNotFoundError:
                continue


def _make_durable(files: Sequence[tuple[str, str]]) -> None:
    """fsync each file, its writeback started for all of them first, then each (directory,
    file) pair's directory once."""
    _sync_files([file for _, file in files])
    for directory in dict.fromkeys(directory for directory, _ in files):
        _fsync_directory(directory)


def _sync_files(paths: Sequence[str]) -> None:
    descriptors: list[int] = []
    try:
        for path in paths:
            descriptors.append(os.open(path, os.O_RDONLY))
            _start_writeback(descriptors[-1])
        for descriptor in descriptors:
            os.fsync(descriptor)
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _writeback_starter() -> Callable[[int], object]:
    """Linux's sync_file_range(2) with SYNC_FILE_RANGE_WRITE: the file's dirty pages are sent
    to the disk without waiting. Only a head start for the fsync that follows, which alone
    makes the file durable (its result is not looked at); elsewhere, nothing."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda descriptor: None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return lambda descriptor: function(descriptor, 0, 0, SYNC_FILE_RANGE_WRITE)


SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>
_start_writeback = _writeback_starter()


def _fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
