"""How fast the webmail answers and the notifier counts new mail (prints figures; never a test).

    .venv/bin/python bench/webmail.py [--messages 500] [--requests 200] [--citizens 1000]

- pages: the message list (100 newest of ``--messages``, grouped by professional) and one message
  view (text body, an attachment, the reply permission from the policy), through the ASGI app in
  process (httpx, no sockets: the application's own cost), on SQLite in a temporary directory;
- notifier: one pass over ``--citizens`` citizens who each received 5 new messages (scan, decide,
  write the e-mails to a dev outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import structlog

from pli.config.schema import Settings
from pli.mailbox.notify.relay import DevOutbox
from pli.mailbox.notify.service import Notifier, NotifierConfig
from pli.mailbox.policyfacts import FactsConfig, PolicyFacts
from pli.mailbox.store import DeliveryTarget, Store
from pli.mailbox.store.demo import CITIZEN_DOMAIN, DEMO_DOMAIN, create_demo
from pli.mailbox.submit import SubmissionResult
from pli.mailbox.web.app import create_webmail_app, webmail_of
from pli.mailbox.web.context import WebmailConfig, WebmailDeps
from pli.mailbox.web.sessions import ACTIVE
from pli.policy.ins import make_ins

PDF = b"%PDF-1.4\n" + b"0" * 20_000


def message(number: int, to: str) -> bytes:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = f"Dr Claire Martin <dr.martin@{DEMO_DOMAIN}>"
    mail["To"] = to
    mail["Subject"] = f"Compte rendu n°{number}"
    mail["Message-ID"] = f"<bench-{number}-{to}>"
    mail["Date"] = "Mon, 02 Mar 2026 09:00:00 +0100"
    mail.set_content("Bonjour,\n\nVeuillez trouver ci-joint votre compte rendu.\n" * 5)
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="cr.pdf")
    return mail.as_bytes()


async def no_submit(*_args: object) -> SubmissionResult:
    raise RuntimeError("the benchmark sends nothing")


async def timed(client: httpx.AsyncClient, path: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        answer = await client.get(path)
        assert answer.status_code == 200, answer.status_code
    return (time.perf_counter() - started) / count


async def pages(directory: Path, messages: int, requests: int) -> None:
    settings = Settings(
        server={"data_dir": directory},
        domains={"professional": [DEMO_DOMAIN]},
        webmail={"secure_cookies": False},
    )
    store = await Store.open(settings)
    try:
        accounts = await create_demo(store)
        parent = accounts.parent
        for number in range(messages):
            await store.messages.deliver(
                message(number, parent.address), [DeliveryTarget(parent.id)]
            )
        facts = PolicyFacts(store, FactsConfig.from_settings(settings))
        deps = WebmailDeps(
            store, WebmailConfig.from_settings(settings), facts, no_submit, DevOutbox(directory)
        )
        app = create_webmail_app(deps)
        token = await webmail_of(app).sessions.create(parent, ACTIVE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", cookies={"pli-session": token}
        ) as client:
            await timed(client, "/messages", 5)  # warm up
            listing = await timed(client, "/messages", requests)
            view = await timed(client, f"/messages/reception/{messages}", requests)
        print(
            f"message list (100 of {messages} messages): {listing * 1000:.1f} ms/page, "
            f"{1 / listing:.0f} pages/s"
        )
        print(
            f"message view (text + PDF + policy):    {view * 1000:.1f} ms/page, "
            f"{1 / view:.0f} pages/s"
        )
    finally:
        await store.close()


async def notifier(directory: Path, citizens: int) -> None:
    settings = Settings(server={"data_dir": directory}, database={"sqlite_synchronous": "normal"})
    store = await Store.open(settings)
    try:
        accounts = []
        for number in range(citizens):
            accounts.append(
                await store.accounts.create_citizen(
                    make_ins(f"1800175{number:06d}"),
                    CITIZEN_DOMAIN,
                    notification_address=f"c{number}@example.org",
                )
            )
        config = NotifierConfig(3600, True, "n@bench", "https://bench", "bench", 5)
        service = Notifier(store, config, DevOutbox(directory / "outbox"))
        await service.run_once()  # the watermark
        raw = message(0, "x@patient.mssante.fr")
        for round_ in range(5):
            for start in range(0, citizens, 200):
                targets = [DeliveryTarget(a.id) for a in accounts[start : start + 200]]
                await store.messages.deliver(
                    raw.replace(b"bench-0", f"b{round_}".encode()), targets
                )
        started = time.perf_counter()
        report = await service.run_once()
        elapsed = time.perf_counter() - started
        print(
            f"notifier pass: {report.new_messages} new messages for {citizens} citizens, "
            f"{report.sent} e-mails in {elapsed:.2f} s "
            f"({report.new_messages / elapsed:.0f} messages/s counted)"
        )
    finally:
        await store.close()


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--citizens", type=int, default=1000)
    arguments = parser.parse_args()
    print(f"pli webmail benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, SQLite")
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        await pages(Path(first), arguments.messages, arguments.requests)
        await notifier(Path(second), arguments.citizens)


if __name__ == "__main__":
    asyncio.run(main())
