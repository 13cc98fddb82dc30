"""A bulk campaign end to end: from the CSV to the messages in the citizens' mailboxes, through
the real runner and the one submission pipeline (policy, DKIM, delivery), as `pli bulk send`.

    .venv/bin/python bench/bulk.py [--recipients 10000] [--pdf-size 102400] [--seconds 900]
        [--rate 10000] [--concurrency 8] [--batch-size 100] [--dir DIR] [--keep]
        [--tracemalloc]

Set-up (not timed): ``pli init --demo`` in a temporary directory (SQLite, synchronous=FULL:
every commit durable; DKIM RSA-2048), --recipients citizen accounts, a campaign directory whose
CSV names one distinct PDF of --pdf-size bytes per row (``pieces_jointes``) and a convocation
template, sent from the demo APP mailbox.

Timed: reading and registering the campaign (CSV parsed, rows and Message-IDs written to the
ledger), then the runner until every row is settled: each row composed (templates, the PDF read
and base64-encoded), submitted (policy decision, DKIM signature, delivered into the citizen's
INBOX with its conversation and audit records in one transaction). The campaign's rate limit is
raised to --rate (the configured default, 20 per second, is a deliberate throttle, not the
pipeline's speed). --seconds caps the sending: the figures then say how far it got.

Figures: rows per second end to end (CSV to delivered), the registration time, and the peak
memory of this process (the one doing the sending): ``ru_maxrss`` (the high-water mark) before
sending and at the end, and the resident size when sending began and ended; with
--tracemalloc, the peak of Python allocations during the send (slower).

It checks what it claims: every row ``delivered`` in the ledger and one message per citizen in
the store (Message-IDs of the campaign counted in the messages table).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.bulk import SENDER, Patient, add_citizens, csv_lines

from pli.config.schema import Settings
from pli.mailbox.store import Store
from pli.mailbox.store.models import MessageRow
from pli.mailgateway.bulk.check import BulkContext, open_campaign
from pli.mailgateway.bulk.ledger import Ledger
from pli.mailgateway.bulk.runner import CampaignRunner, register_campaign
from pli.mailgateway.gateway import Gateway
from pli.mailgateway.init import initialise
from pli.mailgateway.logs import configure_logging

PDF_HEAD, PDF_TAIL = b"%PDF-1.4\n%", b"\n%%EOF\n"
BODY = (
    "Bonjour {{ prenom }} {{ nom }},\n\nvous êtes attendu(e) le {{ date_rdv }} au service de "
    "cardiologie.\nVous trouverez votre convocation en pièce jointe.\n\nLe secrétariat\n"
)


def pdf(number: int, size: int) -> bytes:
    head = PDF_HEAD + b"%08d" % number
    return head + b"x" * max(0, size - len(head) - len(PDF_TAIL)) + PDF_TAIL


def rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """The process's resident set size now (Linux: VmRSS of /proc/self/status, in KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tuned(settings: Settings, args: argparse.Namespace) -> Settings:
    bulk = settings.bulk.model_copy(
        update={
            "rate": args.rate,
            "burst": max(1, min(10000, int(args.rate))),
            "concurrency": args.concurrency,
            "batch_size": args.batch_size,
            "max_rows": max(settings.bulk.max_rows, args.recipients),
        }
    )
    return settings.model_copy(update={"bulk": bulk})


def write_campaign(directory: Path, patients: list[Patient], pdf_size: int) -> Path:
    (directory / "pdf").mkdir(parents=True)
    rows = []
    for number, patient in enumerate(patients):
        (directory / "pdf" / f"{number}.pdf").write_bytes(pdf(number, pdf_size))
        rows.append(
            Patient(
                patient.ins,
                date_rdv=f"{1 + number % 28:02d}/03/2026",
                attachments=f"pdf/{number}.pdf",
            )
        )
    (directory / "patients.csv").write_text(csv_lines(rows), encoding="utf-8")
    (directory / "campaign.toml").write_text(
        'id = "bench-convocations"\nkind = "convocation"\n'
        f'mailbox = "{SENDER}"\nrecipients = "patients.csv"\n'
        'subject = "Votre convocation du {{ date_rdv }}"\n'
        f'body = """{BODY}"""\n',
        encoding="utf-8",
    )
    return directory


async def stored_campaign_messages(store: Store) -> int:
    async with store.db.read() as conn:
        count = await conn.scalar(
            select(func.count()).where(MessageRow.message_id.like("bulk.%bench-convocations@%"))
        )
    return int(count or 0)


async def run(args: argparse.Namespace, settings: Settings, root: Path) -> None:
    store = await Store.open(settings)
    gateway = Gateway.build(settings, store)
    gateway.start()
    try:
        started = time.perf_counter()
        patients = await add_citizens(store, args.recipients)
        directory = write_campaign(root / "campaign", patients, args.pdf_size)
        print(
            f"set-up: {args.recipients} citizens and their PDFs in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        context = BulkContext.from_gateway(gateway)
        baseline, baseline_now = rss_mb(), current_rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        stop = asyncio.Event()
        settled = 0

        def on_row(state: str) -> None:
            nonlocal settled
            settled += 1
            if settled % 1000 == 0:
                print(f"  {settled} rows, {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        t0 = time.perf_counter()
        campaign = open_campaign(settings, directory)
        await register_campaign(context, campaign)
        registered = time.perf_counter() - t0
        runner = CampaignRunner(context, campaign, on_row=on_row)
        timer = asyncio.get_running_loop().call_later(args.seconds, stop.set)
        result = await runner.run(stop)
        elapsed = time.perf_counter() - t0
        timer.cancel()
        peak_python = tracemalloc.get_traced_memory()[1] if args.tracemalloc else 0
        end_now = current_rss_mb()
        progress = await Ledger(store).progress(campaign.id)
        delivered = progress.by_delivery.get("delivered", 0)
        in_store = await stored_campaign_messages(store)
    finally:
        await gateway.close()
        await store.close()
    size = sum(path.stat().st_size for path in (directory / "pdf").iterdir()) / len(patients)
    print(f"recipients        {args.recipients} (one {size / 1024:.0f} KB PDF each)")
    print(f"finished          {result.finished} (capped at {args.seconds:.0f} s)")
    print(f"submitted         {result.submitted}, refused {result.refused}, failed {result.failed}")
    print(f"delivered         {delivered} in the ledger, {in_store} messages in the store")
    print(f"registration      {registered:.2f} s (CSV read, {progress.total} rows written)")
    print(f"end to end        {elapsed:.1f} s: {delivered / elapsed:.1f} messages/s")
    print(f"peak RSS          {baseline:.0f} MB before sending, {rss_mb():.0f} MB at the end")
    print(f"RSS               {baseline_now:.0f} MB when sending began, {end_now:.0f} MB at end")
    if args.tracemalloc:
        print(f"peak Python heap  {peak_python / 2**20:.1f} MB during the send (tracemalloc)")
    if result.finished and (delivered != args.recipients or in_store != args.recipients):
        raise SystemExit("not every row was delivered exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--pdf-size", type=int, default=100 * 1024)
    parser.add_argument("--seconds", type=float, default=900.0, help="cap on the sending")
    parser.add_argument("--rate", type=float, default=10_000.0, help="bulk.rate for the run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="work here (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the directory")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="pli-bench-bulk-"))
    try:
        settings, _ = initialise(root / "data", demo=True)  # runs its own event loop
        configure_logging("console", "warning")  # not one line per message
        asyncio.run(run(args, tuned(settings, args), root))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
