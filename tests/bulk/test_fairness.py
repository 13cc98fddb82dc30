"""Fairness: a big campaign queued for another operator does not starve interactive mail.

Campaign messages carry ``Precedence: bulk`` (compose.py), so the queue records them at
``PRIORITY_BULK``; due recipients are leased interactive first, and campaign messages never
hold more than ``bulk_slots(concurrency)`` of the runner's slots. Counted here with the real
queue tables (SQLite, PostgreSQL), no timing."""

from __future__ import annotations

from pathlib import Path

from plitest.bulk import add_citizens, csv_lines, write_campaign
from plitest.smtp import PEER_DOMAIN, SmtpStack
from plitest.store import build_message

from pli.mailgateway.bulk.check import BulkContext, open_campaign, sender_of
from pli.mailgateway.queue.entries import NewRecipient, priority_of
from pli.mailgateway.queue.models import PRIORITY_BULK, PRIORITY_INTERACTIVE
from pli.mailgateway.queue.runner import bulk_slots

CAMPAIGN_MESSAGES = 60
CONCURRENCY = 8


async def test_campaign_messages_are_bulk_priority(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    (patient,) = await add_citizens(stack.store, 1)
    campaign = open_campaign(stack.settings, write_campaign(tmp_path / "c", csv_lines([patient])))
    _, sender = await sender_of(stack.store, campaign.definition.mailbox)
    composed = context.composer(campaign, sender).compose(campaign.recipients.rows[0])
    assert priority_of(composed.raw) == PRIORITY_BULK
    assert priority_of(build_message()) == PRIORITY_INTERACTIVE


async def test_interactive_mail_queued_after_a_campaign_goes_first(stack: SmtpStack) -> None:
    queue = stack.gateway.queue
    doctor = stack.accounts.doctor.address
    remote = [NewRecipient(f"dr.bernard@{PEER_DOMAIN}")]
    for number in range(CAMPAIGN_MESSAGES):
        raw = build_message(sender=doctor, subject=f"c{number}", headers={"Precedence": "bulk"})
        await queue.enqueue(raw, doctor, remote, origin="submission")
    urgent = build_message(sender=doctor, subject="urgent", message_id="<urgent@test.pli>")
    await queue.enqueue(urgent, doctor, remote, origin="submission")

    slots = bulk_slots(CONCURRENCY)
    first = await queue.lease_due(limit=CONCURRENCY, bulk_limit=slots)
    assert first[0].message_id == "urgent@test.pli"  # the newest, yet first
    assert sum(1 for m in first if m.priority == PRIORITY_BULK) == slots
    assert len(first) == slots + 1  # the slots kept for interactive mail stay free

    # While the campaign holds all its slots, it gets no more; interactive mail still does.
    another = build_message(sender=doctor, subject="second", message_id="<second@test.pli>")
    await queue.enqueue(another, doctor, remote, origin="submission")
    second = await queue.lease_due(limit=CONCURRENCY - len(first), bulk_limit=0)
    assert [m.message_id for m in second] == ["second@test.pli"]
    assert slots < CONCURRENCY
