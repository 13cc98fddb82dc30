"""The runner inside `pli serve`: it resumes campaigns left unfinished, never runs a campaign
whose files changed, and follows queued campaign messages into the report (delivered,
bounced)."""

from __future__ import annotations

from pathlib import Path

from plitest.bulk import add_citizens, csv_lines, inbox_message_ids, write_campaign
from plitest.smtp import SmtpStack

from pli.mailgateway.bulk.check import BulkContext, open_campaign
from pli.mailgateway.bulk.ledger import Ledger, record_queue_outcomes
from pli.mailgateway.bulk.report import campaign_report
from pli.mailgateway.bulk.runner import register_campaign
from pli.mailgateway.bulk.service import BulkService, bulk_services
from pli.mailgateway.queue.entries import NewRecipient, Outcome
from pli.mailgateway.queue.models import FAILED, SENT
from pli.mailgateway.services import Runtime


async def test_the_service_finishes_a_registered_campaign_once(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 9)
    directory = write_campaign(tmp_path / "c", csv_lines(patients))
    await register_campaign(context, open_campaign(stack.settings, directory))
    service = BulkService(context)

    (result,) = await service.run_once()
    assert (result.submitted, result.finished) == (9, True)
    assert await service.run_once() == []  # finished: not runnable any more
    for patient in patients:
        assert len(await inbox_message_ids(stack.store, patient.address)) == 1


async def test_a_campaign_whose_files_changed_is_left_alone(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 2)
    directory = write_campaign(tmp_path / "c", csv_lines(patients))
    await register_campaign(context, open_campaign(stack.settings, directory))
    write_campaign(directory, csv_lines(patients[:1]))  # edited after registration

    assert await BulkService(context).run_once() == []
    for patient in patients:
        assert await inbox_message_ids(stack.store, patient.address) == []
    progress = await Ledger(stack.store).progress("convocations-test")
    assert progress.by_state == {"pending": 2}


async def test_queue_outcomes_reach_the_report(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    runtime = Runtime(settings=stack.settings, store=stack.store, gateway=stack.gateway)
    services = bulk_services(runtime)
    assert [s.name for s in services] == ["bulk"]
    assert record_queue_outcomes in stack.gateway.queue.observers
    patients = await add_citizens(stack.store, 2)
    campaign = open_campaign(stack.settings, write_campaign(tmp_path / "c", csv_lines(patients)))
    await register_campaign(context, campaign)
    ledger = Ledger(stack.store)
    rows = await ledger.report(campaign.id)
    queue = stack.gateway.queue
    # As if both went to another operator: the queue reports one relayed, one given up.
    statuses = {rows[0].message_id: SENT, rows[1].message_id: FAILED}
    for row in rows:
        raw = f"Message-ID: <{row.message_id}>\r\nPrecedence: bulk\r\n\r\nx\r\n".encode()
        await queue.enqueue(
            raw, campaign.definition.mailbox, [NewRecipient(row.recipient)], origin="submission"
        )
    for message in await queue.all():
        outcome = Outcome(message.recipients[0].id, statuses[message.message_id], reply="250 ok")
        async with stack.store.transaction() as tx:
            await queue.record(message, [outcome], tx=tx)
    # The runner was killed before it recorded them: the queue's outcomes settle both rows.
    await ledger.mark_submitting([r.id for r in await ledger.due_rows(campaign.id, 10)])
    assert await ledger.recover(campaign.id, campaign.definition.mailbox) == 2
    report = await campaign_report(ledger, campaign.id)
    assert report is not None
    assert [row.status for row in report.rows] == ["delivered", "bounced"]


async def test_a_cancelled_campaign_sends_nothing_more(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 3)
    campaign = open_campaign(stack.settings, write_campaign(tmp_path / "c", csv_lines(patients)))
    await register_campaign(context, campaign)
    ledger = Ledger(stack.store)
    assert await ledger.cancel(campaign.id) == 3
    assert await BulkService(context).run_once() == []
    record = await ledger.get(campaign.id)
    assert record is not None and record.state == "cancelled"
    report = await campaign_report(ledger, campaign.id)
    assert report is not None and report.counts() == {"cancelled": 3}
    for patient in patients:
        assert await inbox_message_ids(stack.store, patient.address) == []


async def test_cancelling_after_a_crash_settles_the_rows_left_submitting(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 3)
    campaign = open_campaign(stack.settings, write_campaign(tmp_path / "c", csv_lines(patients)))
    await register_campaign(context, campaign)
    ledger = Ledger(stack.store)
    first, second, _ = await ledger.due_rows(campaign.id, 10)
    # A run killed after marking two rows: the pipeline queued the first, never saw the second.
    await ledger.mark_submitting([first.id, second.id])
    raw = f"Message-ID: <{first.message_id}>\r\nPrecedence: bulk\r\n\r\nx\r\n".encode()
    await stack.gateway.queue.enqueue(
        raw, campaign.definition.mailbox, [NewRecipient(first.recipient)], origin="submission"
    )

    assert await ledger.cancel(campaign.id) == 2  # the third (pending) and the second (lost)
    report = await campaign_report(ledger, campaign.id)
    assert report is not None
    assert [row.status for row in report.rows] == ["accepted", "cancelled", "cancelled"]
