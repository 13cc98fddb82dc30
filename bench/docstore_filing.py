"""Document store throughput over real HTTP: filings per second and MB/s, listing and reading.

    .venv/bin/python bench/docstore_filing.py [--documents 200] [--size 262144]
        [--concurrency 4] [--database-url postgresql://postgres@127.0.0.1:5432/test]

Serves a fresh store (SQLite in a temporary directory, or a fresh PostgreSQL schema, dropped
after) with uvicorn on 127.0.0.1, in this process, and drives it with httpx from the same event
loop: --documents filings of --size bytes (distinct PDFs) by --concurrency clients, then the
same filings again (idempotent retries: answered 200 from the key), then every listing page and
every document's bytes. Every commit is fsync'd (SQLite synchronous=FULL; files fsync'd before
the answer), so the disk's fsync latency bounds the filing rate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
from plitest.docstore import (
    CITIZEN,
    TEST_TOKEN,
    actor_headers,
    docstore_client,
    drop_schema,
    opened_store,
    running_docstore,
)

from pli.config.schema import async_database_url
from pli.docstore.config import DocstoreConfig

DOCS = f"/v1/citizens/{CITIZEN}/documents"


def pdf(number: int, size: int) -> bytes:
    head = b"%PDF-1.4\n%" + b"%08d" % number
    tail = b"\n%%EOF\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def file_all(
    client: httpx.AsyncClient, documents: int, size: int, concurrency: int
) -> tuple[float, list[int]]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(documents):
        queue.put_nowait(number)
    statuses: list[int] = []

    async def worker() -> None:
        while not queue.empty():
            number = queue.get_nowait()
            response = await client.post(
                DOCS,
                headers=actor_headers(**{"Idempotency-Key": f"bench-{number}"}),
                data={"title": f"Document {number}", "type_code": "11502-2"},
                files={"content": ("d.pdf", pdf(number, size), "application/pdf")},
            )
            statuses.append(response.status_code)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, statuses


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        schema = f"docstore_bench_{int(time.time())}" if args.database_url else ""
        url = async_database_url(args.database_url, Path(directory) / "docstore.sqlite3")
        config = DocstoreConfig(
            data_dir=Path(directory),
            token=TEST_TOKEN,
            database_url=url,
            database_schema=schema,
            max_document_size=max(args.size * 2, 1024 * 1024),
            page_size=100,
        )
        try:
            async with (
                opened_store(config) as store,
                running_docstore(config, store) as base,
                docstore_client(base) as client,
            ):
                megabytes = args.documents * args.size / 1e6
                elapsed, statuses = await file_all(
                    client, args.documents, args.size, args.concurrency
                )
                assert statuses.count(201) == args.documents, statuses
                print(
                    f"file     {args.documents} x {args.size} B, {args.concurrency} clients: "
                    f"{args.documents / elapsed:8.1f} docs/s {megabytes / elapsed:7.1f} MB/s"
                )
                elapsed, statuses = await file_all(
                    client, args.documents, args.size, args.concurrency
                )
                assert statuses.count(200) == args.documents, statuses
                print(f"re-file  (idempotent, 200):        {args.documents / elapsed:8.1f} docs/s")
                started = time.perf_counter()
                cursor, listed = None, 0
                while True:
                    page = (
                        await client.get(DOCS, params={"cursor": cursor} if cursor else {})
                    ).json()
                    listed += len(page["documents"])
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                elapsed = time.perf_counter() - started
                print(f"list     {listed} documents, pages of 100: {elapsed * 1000:8.1f} ms")
                ids = [
                    d["id"]
                    for d in (await client.get(DOCS, params={"limit": 500})).json()["documents"]
                ]
                started = time.perf_counter()
                for document_id in ids:
                    (await client.get(f"{DOCS}/{document_id}/content")).raise_for_status()
                elapsed = time.perf_counter() - started
                print(
                    f"read     {len(ids)} documents:          {len(ids) / elapsed:8.1f} docs/s "
                    f"{len(ids) * args.size / 1e6 / elapsed:7.1f} MB/s"
                )
        finally:
            if schema:
                await drop_schema(url, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; empty: SQLite")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
