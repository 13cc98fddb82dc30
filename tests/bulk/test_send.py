"""A real campaign through the submission pipeline: the policy per row, DKIM signed, delivered
into the citizens' mailboxes; run again, nothing more is sent; the report per row."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from plitest.bulk import (
    SENDER,
    Patient,
    add_citizens,
    csv_lines,
    inbox_message_ids,
    inbox_messages,
    write_campaign,
)
from plitest.smtp import SmtpStack

from pli.mailbox.store.records import ProfileStatus
from pli.mailgateway.bulk.check import BulkContext, check_campaign, open_campaign
from pli.mailgateway.bulk.ledger import Ledger
from pli.mailgateway.bulk.report import campaign_report, campaign_status, report_csv
from pli.mailgateway.bulk.runner import run_campaign
from pli.mailgateway.dkim import DkimVerifier


async def test_a_campaign_is_delivered_signed_once_and_reported(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 20)
    closed = (await add_citizens(stack.store, 1, status=ProfileStatus.CLOSED, start=50))[0]
    directory = write_campaign(tmp_path / "c", csv_lines([*patients, closed]))
    campaign = open_campaign(stack.settings, directory)

    result = await run_campaign(context, campaign)

    assert (result.submitted, result.refused, result.finished) == (20, 1, True)
    for patient in patients:
        ids = await inbox_message_ids(stack.store, patient.address)
        assert (
            len(ids) == 1
            and ids[0].startswith("<bulk.")
            and ids[0].endswith("@hopital-demo.mssante.fr>")
        )
    assert await inbox_message_ids(stack.store, closed.address) == []
    message = (await inbox_messages(stack.store, patients[0].address))[0]
    assert b"Subject: Votre convocation du 12/03/2025" in message
    assert b"Precedence: bulk" in message and b"X-MSS-MES: FIN" not in message
    assert b"Bonjour Marie DUPONT" in message
    dkim = DkimVerifier(stack.dkim_dns).verify_blocking(message)
    assert [r.result for r in dkim] == ["pass"]

    again = await run_campaign(context, open_campaign(stack.settings, directory))
    assert (again.submitted, again.refused, again.finished) == (0, 0, True)
    for patient in patients:
        assert len(await inbox_message_ids(stack.store, patient.address)) == 1

    ledger = Ledger(stack.store)
    status = await campaign_status(ledger, campaign.id)
    assert status is not None and status.record.state == "finished"
    assert status.progress.by_state == {"submitted": 20, "refused": 1}
    report = await campaign_report(ledger, campaign.id)
    assert report is not None and report.counts() == {"delivered": 20, "refused": 1}
    table = list(csv.DictReader(io.StringIO(report_csv(report)), delimiter=";"))
    assert [row["line"] for row in table] == [str(n) for n in range(2, 23)]
    refused = table[-1]
    assert refused["status"] == "refused" and refused["reason"] == "profile-closed"
    assert refused["recipient"] == closed.address and refused["text"]
    first = table[0]
    assert first["status"] == "delivered" and first["key"] == f"rdv-{patients[0].ins}"
    assert (
        f"<{first['message_id']}>" == (await inbox_message_ids(stack.store, patients[0].address))[0]
    )
    document = report.as_json()
    assert document["campaign"]["id"] == "convocations-test"
    assert document["rows"][-1]["reason"] == "profile-closed"
    assert document["campaign"]["mailbox"] == SENDER


async def test_the_dry_run_sends_nothing_and_reports_refusals(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    open_ones = await add_citizens(stack.store, 2)
    closed = (await add_citizens(stack.store, 1, status=ProfileStatus.CLOSED, start=10))[0]
    opposed = (await add_citizens(stack.store, 1, status=ProfileStatus.OPPOSED, start=11))[0]
    missing = replace(open_ones[1], attachments="absent.pdf")
    bad_ins = open_ones[0].ins[:-2] + ("00" if open_ones[0].ins[-2:] != "00" else "01")
    text = csv_lines([open_ones[0], missing, closed, opposed, Patient(bad_ins)])
    directory = write_campaign(tmp_path / "c", text)
    campaign = open_campaign(stack.settings, directory)

    report = await check_campaign(context, campaign)

    by_line = {row.line: row for row in report.rows}
    assert (
        by_line[2].status == "accepted" and by_line[2].subject == "Votre convocation du 12/03/2025"
    )
    assert (by_line[3].status, by_line[3].reason) == ("refused", "attachment-missing")
    assert by_line[4].reason == "profile-closed"
    assert by_line[5].reason == "profile-opposed"
    assert (by_line[6].reason, by_line[6].line) == ("ins-key", 6)
    assert report.accepted == 1 and report.by_reason() == {
        "attachment-missing": 1,
        "profile-closed": 1,
        "profile-opposed": 1,
        "ins-key": 1,
    }
    for patient in (*open_ones, closed, opposed):
        assert await inbox_message_ids(stack.store, patient.address) == []
    assert await stack.gateway.queue.all() == []
    assert await Ledger(stack.store).get(campaign.id) is None
