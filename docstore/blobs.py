"""Document bytes in files: received into a temporary file, then placed under the document's id.

Durability: an upload is copied into ``tmp/`` while its SHA-256 and size are computed. Once the
store knows it files a new document (a retried filing or a refused type costs no fsync), the
upload is fsync'd (``make_durable``, outside the database's write lock), then placed: renamed to
``files/<2 hex>/<id>`` and its directory fsync'd, inside the database transaction that records
the document (the caller commits after placing, and removes the file if the commit fails). A
file is never rewritten. Deleting removes the file after the database says it is deleted.

Blocking file work: callers run these methods in a thread (``asyncio.to_thread``). This module
knows nothing of the database or HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .limits import ABANDONED_UPLOAD_AGE, COPY_CHUNK, PDF_TAIL, SNIFF_HEAD


class TooLarge(Exception):
    """The document is larger than the store accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the document is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Upload:
    """A received document, fsync'd in the temporary directory, not yet placed."""

    path: Path
    size: int
    sha256: str
    head: bytes
    tail: bytes


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (POSIX: the entry lives in the dir)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class BlobFiles:
    """The files of one store under ``root``: ``tmp/`` for uploads, ``files/`` for documents."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.files = root / "files"

    def prepare(self) -> int:
        """Create the directories; remove abandoned uploads (a process killed while receiving
        leaves one). Returns how many were removed."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.files.mkdir(parents=True, exist_ok=True)
        removed = 0
        cutoff = time.time() - ABANDONED_UPLOAD_AGE
        for path in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def receive(self, source: BinaryIO, limit: int) -> Upload:
        """Copy ``source`` to a temporary file (at most ``limit`` bytes, else TooLarge) and return
        its size, SHA-256, head and tail. Not yet durable: ``place`` makes it so."""
        descriptor, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        head = b""
        tail = b""
        try:
            with os.fdopen(descriptor, "wb") as target:
                while chunk := source.read(COPY_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(limit)
                    digest.update(chunk)
                    if len(head) < SNIFF_HEAD:
                        head += chunk[: SNIFF_HEAD - len(head)]
                    tail = (tail + chunk)[-PDF_TAIL:]
                    target.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Upload(path, size, digest.hexdigest(), head, tail)

    def path_of(self, blob_id: str) -> Path:
        return self.files / blob_id[:2] / blob_id

    def make_durable(self, upload: Upload) -> None:
        """Flush a received upload's bytes to disk (before it is placed)."""
        with open(upload.path, "rb") as received:
            os.fsync(received.fileno())

    def place(self, upload: Upload, blob_id: str) -> Path:
        """Give a durable upload its final name, durably (the rename is journalled with the
        destination directory: fsync'ing it is enough)."""
        final = self.path_of(blob_id)
        final.parent.mkdir(exist_ok=True)
        upload.path.rename(final)
        fsync_directory(final.parent)
        return final

    def discard(self, upload: Upload) -> None:
        upload.path.unlink(missing_ok=True)

    def remove(self, blob_id: str) -> None:
        final = self.path_of(blob_id)
        with contextlib.suppress(FileNotFoundError):
            final.unlink()
            fsync_directory(final.parent)

    def stored_ids(self, older_than: float) -> Iterator[str]:
        """Ids of the placed files last modified before ``older_than`` (a time.time() value)."""
        for shard in self.files.iterdir():
            if not shard.is_dir():
                continue
            for path in shard.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < older_than:
                        yield path.name
