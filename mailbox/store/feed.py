"""The change feed: who learns at once that a folder changed (IMAP IDLE, NOTIFY, the webmail).

Events are published after the transaction that caused them commits. In one process a
:class:`ChangeFeed` fans them out to every matching :class:`Subscription` (an async iterator with
a bounded queue). Across processes on PostgreSQL, the committing transaction also runs
``pg_notify`` (delivered by PostgreSQL at commit, never for a rolled-back transaction) and each
process's listener republishes what other processes sent. On SQLite a single process is assumed
(events of other processes are not seen).

Events are hints: the database holds the truth. A subscriber that falls behind (its queue full)
receives one ``overflow`` event and must resynchronise (e.g. ``changes_since``); a cross-process
event with many UIDs arrives with ``truncated=True`` and its UIDs cut, with the same meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Events waiting per subscriber before it is told to resynchronise.
SUBSCRIPTION_QUEUE = 1000
#: PostgreSQL NOTIFY payloads must be shorter than 8000 bytes (PostgreSQL docs, NOTIFY).
NOTIFY_PAYLOAD_LIMIT = 7900
#: UIDs carried per event across processes (the rest: ``truncated``).
NOTIFY_MAX_UIDS = 200
_RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class EventKind(StrEnum):
    ADDED = "added"  # new messages (delivery, APPEND, COPY, MOVE): uids
    FLAGS = "flags"  # flags changed: uids
    EXPUNGED = "expunged"  # uids removed
    FOLDER_CREATED = "folder-created"
    FOLDER_DELETED = "folder-deleted"
    FOLDER_RENAMED = "folder-renamed"  # folder = the new name
    OVERFLOW = "overflow"  # this subscriber missed events: resynchronise


@dataclass(frozen=True, slots=True)
class FeedEvent:
    kind: EventKind
    account_id: int
    folder_id: int | None = None
    folder: str | None = None
    uids: tuple[int, ...] = ()
    modseq: int = 0
    truncated: bool = False

    def to_wire(self) -> list[Any]:
        uids = self.uids[:NOTIFY_MAX_UIDS]
        truncated = self.truncated or len(uids) < len(self.uids)
        return [
            self.kind.value,
            self.account_id,
            self.folder_id,
            self.folder,
            list(uids),
            self.modseq,
            truncated,
        ]

    @staticmethod
    def from_wire(item: list[Any]) -> FeedEvent:
        kind, account_id, folder_id, folder, uids, modseq, truncated = item
        return FeedEvent(
            EventKind(kind), int(account_id), folder_id, folder, tuple(uids), modseq, truncated
        )


class Subscription:
    """Events of one account (optionally one folder), in commit order, as an async iterator."""

    def __init__(self, feed: ChangeFeed, account_id: int, folder_id: int | None) -> None:
        self.account_id = account_id
        self.folder_id = folder_id
        self._feed = feed
        self._queue: asyncio.Queue[FeedEvent] = asyncio.Queue(SUBSCRIPTION_QUEUE)
        self._overflowed = False

    def matches(self, event: FeedEvent) -> bool:
        if event.account_id != self.account_id:
            return False
        return self.folder_id is None or event.folder_id in (None, self.folder_id)

    def offer(self, event: FeedEvent) -> None:
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._overflowed = True
            self._queue.put_nowait(FeedEvent(EventKind.OVERFLOW, self.account_id, self.folder_id))

    async def get(self) -> FeedEvent:
        event = await self._queue.get()
        if event.kind is EventKind.OVERFLOW:
            self._overflowed = False
        return event

    def get_nowait(self) -> FeedEvent | None:
        """The next event if one is waiting (for a session that polls between commands)."""
        try:
            event = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if event.kind is EventKind.OVERFLOW:
            self._overflowed = False
        return event

    def close(self) -> None:
        self._feed._subscriptions.discard(self)

    def __aiter__(self) -> AsyncIterator[FeedEvent]:
        return self

    async def __anext__(self) -> FeedEvent:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class ChangeFeed:
    """In-process fan-out, plus PostgreSQL LISTEN/NOTIFY between processes."""

    def __init__(self, channel: str = "pli_store") -> None:
        self.channel = channel
        self.origin = secrets.token_hex(8)
        self._subscriptions: set[Subscription] = set()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def subscribe(self, account_id: int, folder_id: int | None = None) -> Subscription:
        subscription = Subscription(self, account_id, folder_id)
        self._subscriptions.add(subscription)
        return subscription

    def publish(self, events: Iterable[FeedEvent]) -> None:
        for event in events:
            for subscription in list(self._subscriptions):
                if subscription.matches(event):
                    subscription.offer(event)

    def payloads(self, events: list[FeedEvent]) -> list[str]:
        """NOTIFY payloads (each under the limit) carrying ``events`` for other processes."""
        payloads: list[str] = []
        batch: list[list[Any]] = []
        for event in events:
            candidate = [*batch, event.to_wire()]
            if len(self._encode(candidate)) > NOTIFY_PAYLOAD_LIMIT and batch:
                payloads.append(self._encode(batch))
                candidate = [event.to_wire()]
            batch = candidate
        if batch:
            payloads.append(self._encode(batch))
        return payloads

    def _encode(self, batch: list[list[Any]]) -> str:
        return json.dumps({"o": self.origin, "e": batch}, separators=(",", ":"))

    def receive(self, payload: str) -> None:
        """A NOTIFY payload from PostgreSQL: republish unless this process sent it."""
        try:
            message = json.loads(payload)
            if message.get("o") == self.origin:
                return
            events = [FeedEvent.from_wire(item) for item in message["e"]]
        except (ValueError, KeyError, TypeError):
            log.warning("feed-bad-payload", size=len(payload))
            return
        self.publish(events)

    def start_listener(self, dsn: str) -> None:
        """Listen for other processes' events (PostgreSQL only); reconnects on failure."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(dsn), name="store-feed-listener")

    async def _listen(self, dsn: str) -> None:
        import asyncpg  # type: ignore[import-untyped]

        attempt = 0
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(dsn)
                await connection.add_listener(self.channel, self._on_notify)
                attempt = 0
                self.listening.set()
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _c, event=closed: event.set())
                await closed.wait()
                log.warning("feed-listener-lost")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is down: retry, never crash the server
                log.warning("feed-listener-failed", error=type(error).__name__)
            finally:
                self.listening.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
            attempt += 1

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.receive(payload)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
