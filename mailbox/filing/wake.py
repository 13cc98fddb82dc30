"""How the filing worker learns at once that there is work: the store's change feed.

- **New messages** (automatic rules): every ``added`` event of every account. The feed's public
  ``subscribe`` is per account; :class:`DeliveryWatch` is a subscription that matches every
  account's ``added`` events (the feed fans events out by asking each subscription
  :meth:`~pli.mailbox.store.feed.Subscription.matches`).
- **New filing requests**: a committing transaction that enqueues a request also carries
  :func:`filing_hint`, an ``added`` event addressed to account 0, which no account has (ids start
  at 1): no mail client subscribes to it, and like every feed event it is published only after
  COMMIT, in this process and, on PostgreSQL, through NOTIFY in every other process.

Events are hints: the worker also polls (``filing.poll_interval``, ``filing.scan_interval``), so
a missed event (a subscriber's queue overflowing, a lost LISTEN connection) only delays work.
"""

from __future__ import annotations

from pli.mailbox.store.feed import ChangeFeed, EventKind, FeedEvent, Subscription

#: The account no one has: feed events addressed to it wake filing workers.
HINT_ACCOUNT = 0


def filing_hint() -> FeedEvent:
    """The event a transaction that enqueues filings publishes after COMMIT."""
    return FeedEvent(EventKind.ADDED, HINT_ACCOUNT)


def is_filing_hint(event: FeedEvent) -> bool:
    return event.account_id == HINT_ACCOUNT


class DeliveryWatch(Subscription):
    """Every ``added`` event of every account (and filing hints), in commit order."""

    def __init__(self, feed: ChangeFeed) -> None:
        super().__init__(feed, HINT_ACCOUNT, None)

    def matches(self, event: FeedEvent) -> bool:
        return event.kind is EventKind.ADDED


def watch_deliveries(feed: ChangeFeed) -> DeliveryWatch:
    """Subscribe to every account's new messages; ``close()`` the result to stop."""
    watch = DeliveryWatch(feed)
    # The feed keeps its subscriptions in a set it fans out to; subscribe() only builds
    # per-account ones, so this one is added the same way subscribe() adds them.
    feed._subscriptions.add(watch)
    return watch
