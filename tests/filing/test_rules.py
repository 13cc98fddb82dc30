"""Automatic filing rules: which attachments they match (table), and the rules applied to
citizen INBOXes by the scanner (only messages delivered after the rules first ran, only citizen
INBOXes, each attachment once however many scanners run), and end to end through the worker
woken by the change feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from plitest.docstore import CITIZEN, OTHER_CITIZEN
from plitest.filing import (
    PDF,
    SENDER,
    all_settled,
    citizen,
    deliver,
    eventually,
    filing_settings,
    xdm_message,
)
from plitest.store import build_message, open_test_store

from pli.config.schema import FilingRule
from pli.mailbox.filing import (
    FilingStatus,
    FilingWorker,
    RuleScanner,
    list_filings,
    request_filing,
)
from pli.mailbox.filing import scanner as scanner_module
from pli.mailbox.filing.outbox import ENQUEUE_CHUNK
from pli.mailbox.filing.rules import matching_parts
from pli.mailbox.mime.cache import parse_message
from pli.mailbox.store import AccountKind, DeliveryTarget, EventKind, FeedEvent, Store
from pli.mailbox.store.feed import SUBSCRIPTION_QUEUE

XDM_RULE = FilingRule(name="xdm-to-patient", match="ihe-xdm")
PDF_RULE = FilingRule(
    name="pdf-from-hospital",
    match="content-type",
    types=["application/pdf"],
    from_domains=["hopital-demo.mssante.fr"],
)
IMAGES = FilingRule(name="images", match="content-type", types=["image/*"])


def parts(rules: list[FilingRule], raw: bytes) -> list[tuple[str, str, bool]]:
    cache = parse_message(raw)
    found = matching_parts(rules, list(cache.envelope), cache.structure)
    return [(m.part, m.rule, m.xdm) for m in found]


@pytest.mark.parametrize(
    ("rules", "sender", "attachments", "expected"),
    [
        ([XDM_RULE], SENDER, [("IHE_XDM.zip", "application/zip")], [("2", "xdm-to-patient", True)]),
        (
            [XDM_RULE],
            SENDER,
            [("ihe_xdm.ZIP", "application/octet-stream")],
            [("2", "xdm-to-patient", True)],
        ),
        ([XDM_RULE], SENDER, [("other.zip", "application/zip")], []),
        ([PDF_RULE], SENDER, [("a.pdf", "application/pdf")], [("2", "pdf-from-hospital", False)]),
        ([PDF_RULE], "x@ailleurs.mssante.fr", [("a.pdf", "application/pdf")], []),
        ([PDF_RULE], SENDER, [("a.jpg", "image/jpeg")], []),
        (
            [IMAGES],
            SENDER,
            [("a.jpg", "image/jpeg"), ("b.png", "image/png")],
            [("2", "images", False), ("3", "images", False)],
        ),
        (
            [PDF_RULE, IMAGES],
            SENDER,
            [("a.pdf", "application/pdf"), ("b.jpg", "image/jpeg")],
            [("2", "pdf-from-hospital", False), ("3", "images", False)],
        ),
        (
            [IMAGES, FilingRule(name="all-jpeg", match="content-type", types=["image/jpeg"])],
            SENDER,
            [("a.jpg", "image/jpeg")],
            [("2", "images", False)],
        ),
        (
            [FilingRule(name="off", match="ihe-xdm", enabled=False)],
            SENDER,
            [("IHE_XDM.zip", "application/zip")],
            [],
        ),
        ([XDM_RULE, PDF_RULE], SENDER, [], []),
    ],
)
def test_rules_match_attachments_by_kind_type_and_sender_domain(
    rules: list[FilingRule],
    sender: str,
    attachments: list[tuple[str, str]],
    expected: list[tuple[str, str, bool]],
) -> None:
    raw = build_message(
        sender=sender, attachments=[(name, kind, b"data") for name, kind in attachments]
    )
    assert parts(rules, raw) == expected


def test_a_message_without_from_matches_only_rules_for_any_domain() -> None:
    raw = build_message(attachments=[("a.pdf", "application/pdf", PDF)])
    raw = raw.replace(b"From: ", b"X-Old-From: ", 1)
    assert parts([PDF_RULE], raw) == []
    assert parts([FilingRule(name="any", match="content-type", types=["application/pdf"])], raw)


async def test_rules_apply_to_messages_delivered_after_they_first_ran(store: Store) -> None:
    account = await citizen(store)
    await deliver(store, account, xdm_message())  # before the rules ever ran
    scanner = RuleScanner(store, [XDM_RULE])
    assert await scanner.scan_all() == 0
    await deliver(store, account, xdm_message())
    assert await scanner.scan_all() == 1
    [state] = await list_filings(store)
    assert (state.kind, state.part, state.requested_by, state.requester) == (
        "ihe-xdm",
        "2",
        "automatic-rule",
        "xdm-to-patient",
    )
    assert await scanner.scan_all() == 0  # the mark moved past it


async def test_a_citizen_created_after_the_rules_ran_gets_even_their_first_message(
    store: Store,
) -> None:
    scanner = RuleScanner(store, [XDM_RULE])
    await scanner.since()
    account = await citizen(store)
    folder, _uid = await deliver(store, account, xdm_message())
    assert await scanner.scan_folder(folder) == 1


async def test_only_citizen_inboxes_are_examined(store: Store) -> None:
    scanner = RuleScanner(store, [XDM_RULE])
    await scanner.since()
    doctor = await store.accounts.create("dr.y@hopital-demo.mssante.fr", AccountKind.PER)
    account = await citizen(store)
    await store.folders.create(account.id, "Archives")
    raw = xdm_message()
    delivered = await store.messages.deliver(
        raw, [DeliveryTarget(doctor.id), DeliveryTarget(account.id, folder="Archives")]
    )
    for copy in delivered:
        assert await scanner.scan_folder(copy.folder_id) == 0
    assert await scanner.scan_all() == 0
    assert await list_filings(store) == []


async def test_a_rule_and_a_click_on_the_same_attachment_make_one_filing(store: Store) -> None:
    scanner = RuleScanner(store, [PDF_RULE])
    await scanner.since()
    account = await citizen(store)
    raw = build_message(to=[account.address], attachments=[("a.pdf", "application/pdf", PDF)])
    folder, uid = await deliver(store, account, raw)
    clicked = await request_filing(store, account, folder, uid, "2")
    assert await scanner.scan_folder(folder) == 0
    [state] = await list_filings(store)
    assert (state.id, state.requested_by) == (clicked.id, "citizen-request")


async def test_scanners_of_several_processes_enqueue_each_attachment_once(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    schema = store.feed.channel.removeprefix("pli_store").lstrip("_") or None
    first = RuleScanner(store, [XDM_RULE, PDF_RULE])
    await first.since()
    accounts = [await citizen(store), await citizen(store, OTHER_CITIZEN)]
    for number in range(12):
        account = accounts[number % 2]
        raw = xdm_message(account.ins or "")
        if number % 3 == 0:
            raw = build_message(
                to=[account.address],
                attachments=[("a.pdf", "application/pdf", PDF), ("b.pdf", "application/pdf", PDF)],
            )
        await deliver(store, account, raw)
    async with open_test_store(database_url, tmp_path, schema=schema, keep_schema=True) as other:
        second = RuleScanner(other, [XDM_RULE, PDF_RULE])
        counts = await asyncio.gather(
            first.scan_all(), second.scan_all(), first.scan_all(), second.scan_all()
        )
    assert sum(counts) == 4 * 2 + 8  # four messages with two PDFs, eight with a package
    filings = await list_filings(store)
    assert len(filings) == 16
    assert len({(f.account_id, f.source_id, f.part) for f in filings}) == 16


async def test_a_delivery_is_filed_automatically_through_the_feed(
    store: Store, base_url: str, documents: httpx.AsyncClient
) -> None:
    settings = filing_settings(base_url, rules=[XDM_RULE], poll_interval=3600, scan_interval=3600)
    worker = FilingWorker(store, settings)
    await worker.start()
    try:
        await worker.scanner.since()  # the rules run: a citizen created now gets every message
        account = await citizen(store)
        await deliver(store, account, xdm_message())
        await eventually(lambda: _filed(store), [worker], within=20)
    finally:
        await worker.stop(5)
    [filed] = (await documents.get(f"/v1/citizens/{CITIZEN}/documents")).json()["documents"]
    assert filed["filed_by"] == {"kind": "automatic-rule", "id": "xdm-to-patient"}
    assert filed["source_part"] == "2/IHE_XDM/SUBSET01/DOC0001.XML"


async def _filed(store: Store) -> bool:
    filings = await list_filings(store)
    return bool(filings) and await all_settled(store) and filings[0].status is FilingStatus.FILED


async def test_events_lost_to_an_overflow_make_the_rules_look_everywhere(
    store: Store, base_url: str
) -> None:
    settings = filing_settings(base_url, rules=[XDM_RULE], poll_interval=3600, scan_interval=3600)
    worker = FilingWorker(store, settings)
    await worker.start()
    try:
        await worker.scanner.since()
        account = await citizen(store)
        flood = [FeedEvent(EventKind.ADDED, 10**9, 10**9, uids=(1,))] * (SUBSCRIPTION_QUEUE + 1)
        async with store.transaction() as tx:  # the delivery's event drowns in the flood
            await store.messages.deliver(xdm_message(), [DeliveryTarget(account.id)], tx=tx)
            tx.events.extend(flood)
        await eventually(lambda: _filed(store), [worker], within=20)
    finally:
        await worker.stop(5)


async def test_a_folder_is_examined_in_batches_each_moving_the_mark(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanner_module, "SCAN_BATCH", 3)
    scanner = RuleScanner(store, [PDF_RULE])
    await scanner.since()
    account = await citizen(store)
    for number in range(8):
        raw = build_message(
            to=[account.address], attachments=[(f"{number}.pdf", "application/pdf", PDF)]
        )
        folder, _uid = await deliver(store, account, raw)
    assert await scanner.scan_folder(folder) == 8  # batches of 3, 3 and 2
    assert await scanner.scan_folder(folder) == 0


async def test_a_message_with_more_attachments_than_one_insert_takes_is_enqueued_whole(
    store: Store,
) -> None:
    scanner = RuleScanner(store, [PDF_RULE])
    await scanner.since()
    account = await citizen(store)
    count = 2 * ENQUEUE_CHUNK + 7
    raw = build_message(
        to=[account.address],
        attachments=[(f"{n}.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n") for n in range(count)],
    )
    folder, _uid = await deliver(store, account, raw)
    assert await scanner.scan_folder(folder) == count
    assert len(await list_filings(store, limit=count + 1)) == count
