"""The sweep: remove message files no row refers to, once older than a grace period, and
temporary files left by a writer killed mid-write; purge audit records past their retention.

A file is written before the transaction that refers to it commits, so a young unreferenced file
may belong to a delivery in progress: only files older than ``storage.orphan_grace`` are removed.
References are read in a write transaction (SQLite: under the write lock; PostgreSQL: COPY holds
a share lock on its source rows, so an expunge cannot commit between its read and its insert),
so a file shared by COPY is never removed while a copy refers to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from .blobs import FileBlobStore
from .models import MessageRow

if TYPE_CHECKING:
    from .service import Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    removed_files: int
    removed_temporary: int
    purged_audit_records: int


async def sweep(
    store: Store, *, grace: float | None = None, now: float | None = None
) -> SweepReport:
    grace = store.options.orphan_grace if grace is None else grace
    now = time.time() if now is None else now
    removed = temporary = 0
    blobs = store.blobs
    candidates = [blob_id for blob_id, created in blobs.list() if now - created >= grace]
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        async with store.transaction() as tx:
            referenced = set(
                await tx.conn.scalars(
                    select(MessageRow.blob_id).where(MessageRow.blob_id.in_(chunk)).distinct()
                )
            )
            for blob_id in chunk:
                if blob_id not in referenced:
                    await blobs.delete(blob_id)
                    removed += 1
    if isinstance(blobs, FileBlobStore):
        for path, created in list(blobs.list_temporary()):
            if now - created >= grace:
                path.unlink(missing_ok=True)
                temporary += 1
    purged = await store.audit.purge()
    if removed or temporary or purged:
        log.info("store-swept", files=removed, temporary=temporary, audit_records=purged)
    return SweepReport(removed, temporary, purged)


class StoreSweeper:
    """A background job of ``pli serve`` (the Service protocol of mailgateway/services.py):
    runs :func:`sweep` every ``storage.sweep_interval`` seconds."""

    name = "store-sweep"

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def addresses(self) -> list[tuple[str, int]]:
        return []

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await sweep(self.store)
            except Exception as error:  # logged; the next round tries again
                log.error("store-sweep-failed", error=type(error).__name__)

    async def stop(self, grace: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
