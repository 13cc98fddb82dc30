"""Message bytes: written once to a file, never rewritten, behind a small interface.

:class:`BlobStore` is what the rest of the store uses (``put``, ``get``, ``open_range``,
``delete``, ``list``); :class:`FileBlobStore` keeps each blob in a file under the messages
directory. A shared backend (PostgreSQL large objects, object storage) can implement the same
protocol without touching IMAP or SMTP code.

Durability (architecture.md § Store): ``put`` writes to ``tmp/``, fsyncs the file, renames it
into place and fsyncs the directory before it returns; only then is the index row committed that
refers to it. A crash between the rename and the commit leaves an unreferenced file that
:mod:`.sweep` removes after a grace period. Blob ids are random (128 bits, hex): nothing about
the content or the recipient can be read from a file name.

File work is blocking: it runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .errors import NotFound

BLOB_ID_BYTES = 16  # 128 random bits: collisions are not a concern
_TMP = "tmp"


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its new id."""

    async def get(self, blob_id: str) -> bytes:
        """The whole blob; :class:`NotFound` if it does not exist."""

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the blob (BODY[section] and partial fetches)."""

    async def delete(self, blob_id: str) -> None:
        """Remove the blob if present (idempotent)."""

    def list(self) -> Iterator[tuple[str, float]]:
        """Every stored blob id with its creation time (seconds since the epoch)."""


def new_blob_id() -> str:
    return secrets.token_hex(BLOB_ID_BYTES)


def _valid(blob_id: str) -> bool:
    return len(blob_id) == 2 * BLOB_ID_BYTES and all(c in "0123456789abcdef" for c in blob_id)


class FileBlobStore:
    """Blobs as files ``DIR/ab/cd/abcd…`` (two levels of 256 directories)."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        (directory / _TMP).mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        if not _valid(blob_id):
            raise NotFound("no such message file")
        return self.directory / blob_id[:2] / blob_id[2:4] / blob_id

    async def put(self, data: bytes) -> str:
        blob_id = new_blob_id()
        await asyncio.to_thread(self._write, blob_id, data)
        return blob_id

    def _write(self, blob_id: str, data: bytes) -> None:
        final = self.path(blob_id)
        temporary = self.directory / _TMP / blob_id
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            if self.fsync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        created = not final.parent.exists()
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary.rename(final)
        if self.fsync:
            _fsync_directory(final.parent)
            if created:
                _fsync_directory(final.parent.parent)
                _fsync_directory(self.directory)

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


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
