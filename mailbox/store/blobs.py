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

A group commit makes a directory durable once for its whole batch: ``put(…,
sync_directory=False)`` fsyncs the file only, and the caller runs :meth:`sync_directories` on the
batch's ids before the COMMIT that refers to them (the messages of one minute share 16
directories: one fsync where each message had its own).

File work is blocking: it runs in a worker thread (``asyncio.to_thread``), except the creation
and write of a small blob, which take microseconds in the page cache: each return to the event
loop's thread from a worker costs a hand-over of the interpreter lock, which under load waits up
to its switch interval (5 ms), so the worker does the fsync alone.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from .errors import NotFound

BLOB_ID_BYTES = 16  # 32 hex digits: 3 of them the minute of writing, 116 random bits
#: Blobs up to this size are created and written in the event loop's thread (module docstring).
WRITE_INLINE_UP_TO = 256 * 1024
_TMP = "tmp"  # leftovers of older versions (and the writability probe)


class BlobStore(Protocol):
    async def put(self, data: bytes, *, sync_directory: bool = True) -> str:
        """Store ``data`` durably and return its new id; with ``sync_directory=False`` the
        name is durable only after :meth:`sync_directories` (a batch syncs its directories
        once)."""

    async def sync_directories(self, blob_ids: Iterable[str]) -> None:
        """Make the names of blobs put with ``sync_directory=False`` durable."""

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

    async def put(self, data: bytes, *, sync_directory: bool = True) -> str:
        blob_id = new_blob_id()
        if len(data) > WRITE_INLINE_UP_TO:
            await asyncio.to_thread(self._write, blob_id, data, sync_directory)
            return blob_id
        descriptor, created = self._create(blob_id, data)
        await asyncio.to_thread(self._sync_and_close, blob_id, descriptor, created, sync_directory)
        return blob_id

    async def sync_directories(self, blob_ids: Iterable[str]) -> None:
        if self.fsync:
            directories = {self._location(blob_id)[0] for blob_id in blob_ids}
            if directories:
                await asyncio.to_thread(_fsync_directories, directories)

    def _write(self, blob_id: str, data: bytes, sync_directory: bool) -> None:
        self._sync_and_close(blob_id, *self._create(blob_id, data), sync_directory)

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

    def _sync_and_close(
        self, blob_id: str, descriptor: int, created: bool, sync_directory: bool
    ) -> None:
        try:
            if self.fsync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if self.fsync:
            directory, _ = self._location(blob_id)
            if sync_directory:
                _fsync_directory(directory)
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


def _fsync_directories(paths: Iterable[str]) -> None:
    for path in paths:
        _fsync_directory(path)


def _fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
