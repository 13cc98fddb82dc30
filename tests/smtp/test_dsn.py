"""DSN messages (RFC 3464) and when they are due (RFC 3461 §4.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from pli.mailgateway.dsn import (
    DELAYED,
    DELIVERED,
    FAILED,
    RELAYED,
    OriginalEnvelope,
    RecipientReport,
    build_dsn,
    wants_report,
)

ORIGINAL = b"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: consultation\r\n\r\nconfidentiel\r\n"
WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def dsn(action: str = FAILED, ret: str | None = None, **recipient: object) -> bytes:
    report = RecipientReport(
        **{"address": "c@d.fr", "action": action, "status": "5.7.1", **recipient}
    )  # type: ignore[arg-type]
    return build_dsn(
        reporting_mta="mx.hopital-demo.mssante.fr",
        original=OriginalEnvelope(
            "a@b.fr", envid="ID+1", ret=ret, received_from="client.b.fr", arrival=WHEN
        ),
        recipients=[report],
        message=ORIGINAL,
        now=WHEN,
    )


def test_the_report_structure() -> None:
    raw = dsn(
        diagnostic="550 5.7.1 refusé",
        orcpt="rfc822;C@d.fr",
        remote_mta="mx.d.fr",
        last_attempt=WHEN,
    )
    report = message_from_bytes(raw, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"] == "a@b.fr" and report["Auto-Submitted"] == "auto-replied"
    assert raw.isascii()  # 7-bit: deliverable to any server
    human, status, returned = report.iter_parts()
    assert "n'a pas pu être remis" in human.get_content()
    per_message, per_recipient = status.get_payload()
    assert dict(per_message.items()) == {
        "Reporting-MTA": "dns; mx.hopital-demo.mssante.fr",
        "Original-Envelope-Id": "ID+2B1",
        "Received-From-MTA": "dns; client.b.fr",
        "Arrival-Date": "Sun, 01 Mar 2026 10:00:00 +0000",
    }
    assert dict(per_recipient.items()) == {
        "Original-Recipient": "rfc822;C@d.fr",
        "Final-Recipient": "rfc822;c@d.fr",
        "Action": "failed",
        "Status": "5.7.1",
        "Remote-MTA": "dns; mx.d.fr",
        "Diagnostic-Code": "smtp; 550 5.7.1 refus?",
        "Last-Attempt-Date": "Sun, 01 Mar 2026 10:00:00 +0000",
    }
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"confidentiel" not in raw  # headers only without RET=FULL


@pytest.mark.parametrize(
    ("action", "ret", "full"),
    [
        (FAILED, "FULL", True),
        (DELAYED, "FULL", True),
        (FAILED, "HDRS", False),
        (DELIVERED, "FULL", False),
        (RELAYED, "FULL", False),
    ],
)
def test_ret_full_returns_the_message_for_failures_and_delays_only(
    action: str, ret: str, full: bool
) -> None:
    raw = dsn(action, ret)
    assert (b"confidentiel" in raw) is full
    assert (b"Content-Type: message/rfc822" in raw) is full


def test_never_to_the_null_reverse_path() -> None:
    with pytest.raises(ValueError, match="null reverse-path"):
        build_dsn(
            reporting_mta="mx",
            original=OriginalEnvelope(""),
            recipients=[RecipientReport("c@d.fr", FAILED, "5.0.0")],
            message=ORIGINAL,
        )


@pytest.mark.parametrize(
    ("action", "notify", "wanted"),
    [
        (FAILED, None, True),
        (DELAYED, None, True),
        (DELIVERED, None, False),
        (DELIVERED, ("SUCCESS",), True),
        (RELAYED, ("SUCCESS", "FAILURE"), True),
        (FAILED, ("SUCCESS",), False),
        (FAILED, ("NEVER",), False),
        (DELAYED, ("FAILURE",), False),
    ],
)
def test_which_reports_notify_asks_for(
    action: str, notify: tuple[str, ...] | None, wanted: bool
) -> None:
    assert wants_report(action, notify) is wanted
