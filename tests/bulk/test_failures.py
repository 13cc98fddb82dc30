"""The pipeline raising in the middle of a row (the store failed): a row whose message was
committed before the error is found and never sent again; one that was not is tried again
later, once; a row that keeps failing is refused after the deferral delays."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from plitest.bulk import add_citizens, csv_lines, inbox_message_ids, write_campaign
from plitest.smtp import SmtpStack

from pli.mailgateway.bulk.check import BulkContext, open_campaign
from pli.mailgateway.bulk.ledger import SUBMISSION_FAILED, Ledger
from pli.mailgateway.bulk.limits import DEFERRAL_DELAYS
from pli.mailgateway.bulk.runner import CampaignRunner, register_campaign


async def test_errors_around_the_commit_are_settled_by_looking_up(
    stack: SmtpStack, context: BulkContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    after, before, always, fine = await add_citizens(stack.store, 4)
    campaign = open_campaign(
        stack.settings, write_campaign(tmp_path / "c", csv_lines([after, before, always, fine]))
    )
    await register_campaign(context, campaign)
    pipeline = context.pipeline
    real = pipeline.submit

    async def flaky(principal: Any, sender: str, recipients: Any, raw: bytes, **kw: Any) -> Any:
        address = recipients[0].address
        if address == after.address:
            await real(principal, sender, recipients, raw, **kw)
            raise ConnectionError("lost after the commit")
        # `before` fails on its own first attempt only, whatever order the rows run in.
        if address == always.address or (address == before.address and address not in calls):
            calls.append(address)
            raise ConnectionError("lost before the commit")
        return await real(principal, sender, recipients, raw, **kw)

    calls: list[str] = []
    monkeypatch.setattr(pipeline, "submit", flaky)
    ledger = Ledger(stack.store)
    start = datetime.now(UTC)

    first = await CampaignRunner(context, campaign, wait_deferred=False).run()
    assert (first.submitted, first.failed, first.recovered, first.finished) == (1, 3, 1, False)
    assert (await ledger.progress(campaign.id)).by_state == {"submitted": 2, "pending": 2}

    for step in range(1, len(DEFERRAL_DELAYS) + 1):  # later, each retry due in turn
        moment = start + timedelta(seconds=sum(DEFERRAL_DELAYS[:step]) + 1)
        later = dataclasses.replace(context, clock=lambda moment=moment: moment)
        await CampaignRunner(later, campaign, wait_deferred=False).run()

    final = {row.recipient: row for row in await ledger.report(campaign.id)}
    assert final[always.address].reason == SUBMISSION_FAILED
    assert final[always.address].status == "refused"
    for patient in (after, before, fine):
        assert final[patient.address].status == "delivered"
        assert len(await inbox_message_ids(stack.store, patient.address)) == 1
    assert await inbox_message_ids(stack.store, always.address) == []
