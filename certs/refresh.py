"""Keeping the whitelist current while serving: a background service that re-imports ANS's list
every ``whitelist.refresh_interval``, and on demand.

The first refresh comes when the stored list is one interval old (at once if it is older), or
:data:`FIRST_ATTEMPT_DELAY` after start when none was ever imported, so that starting a server
never waits on the network. A failed refresh is logged and retried after
:data:`RETRY_AFTER_FAILURE` (or the interval, if shorter); the stored list stays in force.

It follows ``mailgateway/services.py``'s ``Service`` protocol (start, addresses, stop); the
health check it offers reports a list that is missing or much older than the interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from pli.config.schema import Settings, WhitelistSection

from .whitelist import WhitelistError
from .whitelist_store import ImportResult, WhitelistStore, resolve_source

log = structlog.get_logger(__name__)

#: When no list was ever imported, the first attempt waits this long after start.
FIRST_ATTEMPT_DELAY = 60.0
#: After a failure, the next attempt comes this soon (ANS's server may just be down).
RETRY_AFTER_FAILURE = 900.0
#: The health check complains when the list is older than this many intervals.
STALE_AFTER_INTERVALS = 3


class WhitelistRefresher:
    """The refresh job of `pli serve` (registered when ``whitelist.refresh_interval`` > 0)."""

    name = "whitelist-refresh"

    def __init__(
        self,
        section: WhitelistSection,
        store: WhitelistStore,
        *,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.section = section
        self.store = store
        self.source = resolve_source(section.source, data_dir)
        self.sha256_source = resolve_source(section.sha256_source, data_dir) or None
        self.clock, self.sleep = clock, sleep  # injected by tests (a fake clock)
        self._task: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self.last_error: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, store: WhitelistStore | None = None
    ) -> WhitelistRefresher:
        return cls(
            settings.whitelist,
            store or WhitelistStore.from_settings(settings.whitelist),
            data_dir=settings.server.data_dir,
        )

    def first_delay(self) -> float:
        """Seconds until the first refresh (see the module docstring)."""
        metadata = self.store.metadata()
        if metadata is None:
            return FIRST_ATTEMPT_DELAY
        checked = dt.datetime.fromisoformat(metadata.checked_at).timestamp()
        return max(0.0, checked + self.section.refresh_interval - self.clock())

    async def refresh_now(self) -> ImportResult:
        """Import from the configured source now (one at a time); raises WhitelistError."""
        async with self._refreshing:
            try:
                result = await asyncio.to_thread(
                    self.store.import_from, self.source, sha256_source=self.sha256_source
                )
            except WhitelistError as error:
                self.last_error = str(error)
                log.error("whitelist-refresh-failed", source=self.source, error=str(error))
                raise
            self.last_error = None
            log.info(
                "whitelist-refreshed",
                changed=result.changed,
                entries=result.metadata.entries,
                sha256=result.metadata.sha256,
            )
            return result

    async def _run(self) -> None:
        delay = self.first_delay()
        while True:
            await self.sleep(delay)
            try:
                await self.refresh_now()
            except WhitelistError:
                delay = min(RETRY_AFTER_FAILURE, self.section.refresh_interval)
            else:
                delay = self.section.refresh_interval

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def addresses(self) -> list[tuple[str, int]]:
        return []

    async def stop(self, grace: float) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def health(self) -> str | None:
        """None when a list is in place and not stale; else why not."""
        metadata = self.store.metadata()
        if metadata is None:
            return "no whitelist imported (pli whitelist import)"
        checked = dt.datetime.fromisoformat(metadata.checked_at).timestamp()
        age = self.clock() - checked
        if age > STALE_AFTER_INTERVALS * self.section.refresh_interval:
            detail = f"; last error: {self.last_error}" if self.last_error else ""
            return f"whitelist not refreshed for {age / 3600:.0f} h{detail}"
        return None
