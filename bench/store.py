"""Mail store benchmark: deliveries per second and the IMAP metadata fetch.

    .venv/bin/python bench/store.py                       # SQLite (a temporary directory)
    .venv/bin/python bench/store.py --url postgresql://postgres@127.0.0.1:5432/test

For 1 KB and 100 KB messages, single deliveries (one recipient) and batched ones (one message to
``--recipients`` mailboxes in one transaction), with fsync on (the durable default). Each case is
bounded by ``--messages`` deliveries and ``--seconds``. Then ``fetch`` of FLAGS, INTERNALDATE,
RFC822.SIZE and ENVELOPE for ``--fetch`` messages in one folder (the `UID FETCH 1:*` case).
On PostgreSQL a temporary schema is used and dropped. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.store import drop_schema, is_postgresql, sized_message

from pli.mailbox.store import AccountKind, DeliveryTarget, Store
from pli.mailbox.store.blobs import FileBlobStore
from pli.mailbox.store.service import StoreOptions


async def deliveries(
    store: Store, accounts: list[int], size: int, recipients: int, limit: int, seconds: float
) -> tuple[int, float]:
    raw = sized_message(size)
    targets = [DeliveryTarget(account) for account in accounts[:recipients]]
    done = 0
    start = time.perf_counter()
    while done < limit and time.perf_counter() - start < seconds:
        await store.messages.deliver(raw, targets)
        done += 1
    return done, time.perf_counter() - start


async def fetch_time(store: Store, account: int, count: int) -> tuple[int, float]:
    """Fill a folder (files without fsync: filling is not what is measured), then time the
    metadata fetch of the whole folder."""
    folder = await store.folders.get(account, "INBOX")
    raw = sized_message(2000)
    batch = 200
    filler = Store(store.db, FileBlobStore(store.blobs.directory, fsync=False), store.feed)  # type: ignore[attr-defined]
    for _ in range(count // batch):
        async with filler.transaction() as tx:
            for _ in range(batch):
                await filler.messages.deliver(raw, [DeliveryTarget(account)], tx=tx)
    timings = []
    rows = []
    for _ in range(5):
        start = time.perf_counter()
        rows = await store.messages.fetch(folder.id, None, envelope=True)
        timings.append(time.perf_counter() - start)
    return len(rows), statistics.median(timings)


async def main(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="pli-bench-"))
    url = args.url or f"sqlite:///{directory / 'bench.sqlite3'}"
    schema = f"bench_{secrets.token_hex(4)}" if is_postgresql(url) else None
    store = await Store.open_url(
        url,
        directory / "messages",
        schema=schema,
        options=StoreOptions(message_size_limit=50 * 1024 * 1024),
    )
    try:
        accounts = [
            (await store.accounts.create(f"bench{i}@bench.mssante.fr", AccountKind.PER)).id
            for i in range(max(args.recipients, 2))
        ]
        backend = "PostgreSQL" if schema else "SQLite"
        print(
            f"mail store benchmark: {backend}, fsync on, {args.messages} deliveries or "
            f"{args.seconds:.0f} s per case"
        )
        print(
            f"{'message':>8} {'recipients':>10} {'deliveries':>10} {'seconds':>8} "
            f"{'deliveries/s':>13} {'copies/s':>9}"
        )
        for size in (1024, 100 * 1024):
            for recipients in (1, args.recipients):
                done, elapsed = await deliveries(
                    store, accounts, size, recipients, args.messages, args.seconds
                )
                rate = done / elapsed
                print(
                    f"{size // 1024:>6}KB {recipients:>10} {done:>10} {elapsed:>8.2f} "
                    f"{rate:>13.1f} {rate * recipients:>9.1f}"
                )
        fetch_account = (await store.accounts.create("fetch@bench.mssante.fr", AccountKind.PER)).id
        count, median = await fetch_time(store, fetch_account, args.fetch)
        print(
            f"fetch FLAGS INTERNALDATE RFC822.SIZE ENVELOPE of {count} messages: "
            f"{median * 1000:.0f} ms (median of 5)"
        )
    finally:
        await store.close()
        if schema:
            await drop_schema(url, schema)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--messages", type=int, default=2000, help="deliveries per case (bound)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per case (bound)")
    parser.add_argument("--recipients", type=int, default=10, help="recipients when batched")
    parser.add_argument("--fetch", type=int, default=10000, help="messages in the fetch case")
    asyncio.run(main(parser.parse_args()))
