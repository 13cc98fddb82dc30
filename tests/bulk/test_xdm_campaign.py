"""A campaign of CDA documents with IHE_XDM packaging: each patient's document travels in an
IHE_XDM.zip that our own reader (``pli.mailbox.xdm``, what filing uses) reads back for that
patient, with X-MSS-CODECDA and X-MSS-INS; a CDA about another patient is refused by the dry
run and never sent."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from pathlib import Path

from plitest.bulk import (
    add_citizens,
    csv_lines,
    inbox_message_ids,
    inbox_messages,
    write_campaign,
)
from plitest.smtp import SmtpStack
from plitest.xdm import cda_document

from pli.mailbox.xdm import MssHeaders, XdmRefusal, read_xdm
from pli.mailgateway.bulk.check import BulkContext, check_campaign, open_campaign
from pli.mailgateway.bulk.runner import run_campaign

XDM = """
[xdm]
enabled = true
class_code = "11"
author_id = "810001234567"
author_family = "MARTIN"
author_given = "Jeanne"
"""


async def test_cda_documents_travel_in_an_xdm_package_read_back_by_our_reader(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    first, second, third = await add_citizens(stack.store, 3)
    files = {
        "cr-1.xml": cda_document(first.ins),
        "cr-2.xml": cda_document(second.ins, code="34133-9", title="Synthèse"),
        "autre.xml": cda_document(first.ins),  # about the first patient, sent to the third
    }
    rows = [
        replace(first, attachments="cr-1.xml"),
        replace(second, attachments="cr-2.xml"),
        replace(third, attachments="autre.xml"),
    ]
    directory = write_campaign(tmp_path / "c", csv_lines(rows), extra=XDM, files=files)
    campaign = open_campaign(stack.settings, directory)

    dry = await check_campaign(context, campaign)
    assert [(r.line, r.status) for r in dry.rows] == [
        (2, "accepted"),
        (3, "accepted"),
        (4, "refused"),
    ]
    assert dry.rows[2].reason == "xdm-cda-unusable" and "autre patient" in dry.rows[2].text

    result = await run_campaign(context, campaign)
    assert (result.submitted, result.refused) == (2, 1)
    assert await inbox_message_ids(stack.store, third.address) == []
    for patient, code in ((first, "11490-0"), (second, "34133-9")):
        (raw,) = await inbox_messages(stack.store, patient.address)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert (message["X-MSS-CODECDA"], message["X-MSS-INS"]) == (code, "O")
        (package,) = [
            part.get_content()
            for part in message.iter_attachments()
            if part.get_filename() == "IHE_XDM.zip"
        ]
        read = read_xdm(
            package,
            headers=MssHeaders(message["X-MSS-CODECDA"], message["X-MSS-INS"]),
            expected_ins=patient.ins,
        )
        assert not isinstance(read, XdmRefusal), read
        (document,) = read.documents
        assert document.content == files[f"cr-{1 if patient is first else 2}.xml"]
        assert read.header_mismatches == ()
