"""The filing client end to end: requests per second from the outbox to the document store.

    .venv/bin/python bench/filing.py [--filings 200] [--size 262144] [--concurrency 4]
        [--xdm 0] [--scan 2000] [--database-url postgresql://postgres@127.0.0.1:5432/test]

A fresh mail store (SQLite file in a temporary directory, or a fresh PostgreSQL schema) and a
fresh reference document store (SQLite, uvicorn on 127.0.0.1 in this process). Figures:

1. enqueue: --filings citizen requests (``request_filing``: the outbox row and its audit
   record, one committed transaction each);
2. send: one FilingWorker (``filing.concurrency`` = --concurrency) drains them over HTTP: each
   request reads its message file, decodes the attachment (--size bytes of PDF, base64 in the
   message), files it (fsync'd by the store) and settles the row;
3. xdm: --xdm requests for an IHE_XDM.zip of two documents (read_xdm + two filings each);
4. scan: the automatic rules examining --scan messages delivered to citizen INBOXes.

Every commit is durable (SQLite synchronous=FULL), so fsync latency bounds the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.docstore import CITIZEN, docstore_config, running_docstore
from plitest.filing import citizen, deliver, filing_settings, xdm_message
from plitest.store import build_message, open_test_store
from plitest.xdm import XdmDoc, cda_document

from pli.config.schema import FilingRule
from pli.mailbox.filing import FilingStatus, FilingWorker, RuleScanner, list_filings, request_filing
from pli.mailbox.store import DeliveryTarget, Store

PDF_HEAD, PDF_TAIL = b"%PDF-1.4\n%", b"\n%%EOF\n"


def pdf(number: int, size: int) -> bytes:
    head = PDF_HEAD + b"%08d" % number
    return head + b"x" * max(0, size - len(head) - len(PDF_TAIL)) + PDF_TAIL


async def drain(store: Store, worker: FilingWorker, count: int) -> float:
    started = time.perf_counter()
    await worker.start()
    try:
        while len(await list_filings(store, status=FilingStatus.PENDING, limit=1)):
            await worker.wait_progress(0.5)
    finally:
        await worker.stop(5)
    elapsed = time.perf_counter() - started
    failed = await list_filings(store, status=FilingStatus.FAILED, limit=count)
    if failed:
        raise SystemExit(f"{len(failed)} filings failed: {failed[0].reason} {failed[0].detail}")
    return elapsed


async def run(args: argparse.Namespace, tmp: Path) -> None:
    url = args.database_url or f"sqlite:///{tmp / 'pli.sqlite3'}"
    async with (
        open_test_store(url, tmp, fsync=True) as store,
        docstore_config(tmp) as config,
        running_docstore(config) as base_url,
    ):
        account = await citizen(store)
        targets: list[tuple[int, int]] = []
        for number in range(args.filings):
            raw = build_message(
                to=[account.address],
                attachments=[(f"cr-{number}.pdf", "application/pdf", pdf(number, args.size))],
            )
            targets.append(await deliver(store, account, raw))
        started = time.perf_counter()
        for folder, uid in targets:
            await request_filing(store, account, folder, uid, "2")
        enqueue = time.perf_counter() - started
        settings = filing_settings(base_url, concurrency=args.concurrency, poll_interval=0.05)
        worker = FilingWorker(store, settings)
        send = await drain(store, worker, args.filings)
        megabytes = args.filings * args.size / 1e6
        print(
            f"enqueue  {args.filings} requests in {enqueue:.2f} s: {args.filings / enqueue:.0f}/s"
        )
        print(
            f"send     {args.filings} filings of {args.size} B in {send:.2f} s: "
            f"{args.filings / send:.1f} filings/s, {megabytes / send:.1f} MB/s "
            f"(concurrency {args.concurrency})"
        )
        if args.xdm:
            docs = [
                XdmDoc(cda_document(CITIZEN)),
                XdmDoc(
                    pdf(0, args.size),
                    name="CR.PDF",
                    mime_type="application/pdf",
                    entry_id="Document02",
                    type_code="11502-2",
                ),
            ]
            for _ in range(args.xdm):
                raw = xdm_message(docs=docs, message_id=f"<{secrets.token_hex(8)}@bench>")
                folder, uid = await deliver(store, account, raw)
                await request_filing(store, account, folder, uid, "2")
            worker = FilingWorker(store, settings)
            elapsed = await drain(store, worker, args.xdm)
            print(
                f"xdm      {args.xdm} packages (2 documents each) in {elapsed:.2f} s: "
                f"{args.xdm / elapsed:.1f} packages/s"
            )
        if args.scan:
            await scan(store, args.scan)


async def scan(store: Store, count: int) -> None:
    scanner = RuleScanner(
        store, [FilingRule(name="pdf", match="content-type", types=["application/pdf"])]
    )
    await scanner.since()
    accounts = [await citizen(store, ins) for ins in ("277117512345626", "180017512345660")]
    for number in range(count):
        account = accounts[number % len(accounts)]
        raw = build_message(
            to=[account.address], attachments=[("a.pdf", "application/pdf", pdf(number, 1000))]
        )
        await store.messages.deliver(raw, [DeliveryTarget(account.id)])
    started = time.perf_counter()
    enqueued = await scanner.scan_all()
    elapsed = time.perf_counter() - started
    print(
        f"scan     {count} messages examined, {enqueued} filings enqueued in {elapsed:.2f} s: "
        f"{count / elapsed:.0f} messages/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filings", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--xdm", type=int, default=50)
    parser.add_argument("--scan", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-bench-filing-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
