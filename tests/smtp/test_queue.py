"""The outbound queue: delivery to another operator over STARTTLS with our operator certificate,
the peer's server certificate verified and whitelisted, DSN parameters passed on, retries with
backoff, delay and failure reports, "relayed" success reports, MX routing, loops avoided."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from plitest.smtp import (
    PEER_DOMAIN,
    PEER_HOST,
    RecordingHandler,
    SmtpStack,
    recording_listener,
    smtp_stack,
    stock_aiosmtpd,
)
from plitest.store import build_message

from pli.mailgateway.queue.entries import NewRecipient
from pli.mailgateway.queue.models import QUEUED
from pli.mailgateway.queue.runner import retry_delay
from pli.mailgateway.smtp.params import RcptParams

REMOTE = f"dr.bernard@{PEER_DOMAIN}"
OTHER = f"dr.dubois@{PEER_DOMAIN}"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stack(tmp_path: Path, database_url: str, clock: Clock) -> AsyncIterator[SmtpStack]:
    async with smtp_stack(tmp_path, database_url, clock=clock, listeners=("mta",)) as running:
        yield running


def route(stack: SmtpStack, address: tuple[str, int]) -> None:
    stack.gateway.router.routes[PEER_DOMAIN] = (address[0], address[1])


async def queue_from_doctor(stack: SmtpStack, *recipients: NewRecipient, **options: object) -> int:
    doctor = stack.accounts.doctor.address
    raw = build_message(sender=doctor, to=[r.address for r in recipients], subject="Lettre")
    return await stack.gateway.queue.enqueue(
        raw, doctor, list(recipients), origin="submission", **options
    )


async def reports_to(stack: SmtpStack, address: str) -> list[Message]:
    """DSNs delivered to a local mailbox (the queue delivers reports to local senders): the
    runner runs until nothing is due (a report queued in one round is delivered in the next)."""
    for _ in range(5):
        if await stack.run_queue() == 0:
            break
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    found = []
    for uid in await stack.store.messages.uids(folder.id):
        raw = await stack.store.messages.read(folder.id, uid)
        if b"report-type=delivery-status" in raw:
            found.append(message_from_bytes(raw))
    return found


def status_fields(report: Message) -> list[dict[str, str]]:
    """The per-recipient blocks of the message/delivery-status part."""
    part = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    blocks = [dict(block.items()) for block in part.get_payload()]
    return blocks[1:]


async def test_delivery_to_another_operator_with_mutual_tls_and_dsn_parameters(
    stack: SmtpStack,
) -> None:
    server_certificate = stack.pki.issue_server(PEER_HOST)
    async with recording_listener(credential=server_certificate, hostname=PEER_HOST) as (
        remote,
        recorder,
    ):
        route(stack, remote.addresses()[0])
        queued = await queue_from_doctor(
            stack,
            NewRecipient(REMOTE, ("SUCCESS", "FAILURE"), f"rfc822;{REMOTE}"),
            envid="env-1",
            ret="HDRS",
        )
        assert await stack.run_queue() == 1
    assert recorder.recipients == [(REMOTE, RcptParams(("SUCCESS", "FAILURE"), f"rfc822;{REMOTE}"))]
    transaction, message = recorder.messages[0]
    assert transaction.params.envid == "env-1" and transaction.params.ret == "HDRS"
    assert b"Subject: Lettre" in message
    assert recorder.client_certificates == [stack.pki.operator.der]  # our operator certificate
    assert await stack.gateway.queue.get(queued) is None  # done, file removed
    assert list(stack.gateway.queue.files.list()) == []
    assert await reports_to(stack, stack.accounts.doctor.address) == []  # the peer reports


async def test_a_server_certificate_not_listed_for_the_domain_is_retried_then_bounced(
    stack: SmtpStack, clock: Clock
) -> None:
    impostor = stack.pki.issue_server("mx.impostor.mssante.fr")
    async with recording_listener(credential=impostor) as (remote, recorder):
        route(stack, remote.addresses()[0])
        queued = await queue_from_doctor(stack, NewRecipient(REMOTE))
        await stack.run_queue()
        message = await stack.gateway.queue.get(queued)
        assert message is not None
        recipient = message.recipients[0]
        assert recipient.status == QUEUED and recipient.attempts == 1
        assert recipient.last_reply.startswith("454 4.7.5 server certificate refused")
        first_retry = recipient.next_attempt_at - datetime.now(UTC)
        assert timedelta(seconds=50) < first_retry <= timedelta(seconds=60)  # retry_schedule[0]
        assert await stack.run_queue() == 0  # not due yet
        clock.offset = timedelta(days=2)  # past max_lifetime (1 day in the test settings)
        assert await stack.run_queue() == 1
    assert recorder.messages == []
    reports = await reports_to(stack, stack.accounts.doctor.address)
    assert len(reports) == 1
    fields = status_fields(reports[0])
    assert fields[0]["Action"] == "failed" and fields[0]["Status"] == "4.4.7"
    assert "server certificate refused" in fields[0]["Diagnostic-Code"]
    assert await stack.gateway.queue.get(queued) is None


async def test_a_permanent_refusal_bounces_that_recipient_only(stack: SmtpStack) -> None:
    server_certificate = stack.pki.issue_server(PEER_HOST)
    handler = RecordingHandler({OTHER: "550 5.1.1 No such mailbox"})
    async with recording_listener(credential=server_certificate, handler=handler) as (remote, _):
        route(stack, remote.addresses()[0])
        await queue_from_doctor(
            stack, NewRecipient(REMOTE), NewRecipient(OTHER, orcpt=f"rfc822;{OTHER}"), envid="E7"
        )
        await stack.run_queue()
    assert [address for address, _ in handler.recipients] == [REMOTE]
    reports = await reports_to(stack, stack.accounts.doctor.address)
    assert len(reports) == 1
    report = reports[0]
    assert report.get_all("Return-Path") == ["<>"]  # RFC 5321 §4.4: the null reverse-path
    assert report["From"].startswith("Mail Delivery System <MAILER-DAEMON@")
    assert report["Auto-Submitted"] == "auto-replied"
    part = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    envelope = dict(part.get_payload()[0].items())
    assert envelope["Original-Envelope-Id"] == "E7"
    fields = status_fields(report)
    assert [f["Final-Recipient"] for f in fields] == [f"rfc822;{OTHER}"]
    assert fields[0]["Original-Recipient"] == f"rfc822;{OTHER}"
    assert fields[0]["Status"] == "5.1.1"
    assert fields[0]["Diagnostic-Code"] == "smtp; 550 5.1.1 No such mailbox"
    assert fields[0]["Remote-MTA"] == "dns; 127.0.0.1"  # the static route's host
    returned = next(p for p in report.walk() if p.get_content_type() == "text/rfc822-headers")
    assert "Subject: Lettre" in returned.as_string()
    assert "ceci est un test" not in report.as_string()  # RET absent: headers only


async def test_a_delay_report_once_after_the_warning_time(stack: SmtpStack, clock: Clock) -> None:
    route(stack, ("127.0.0.1", 9))  # nothing listens: temporary failures
    await queue_from_doctor(stack, NewRecipient(REMOTE))
    await stack.run_queue()
    assert await reports_to(stack, stack.accounts.doctor.address) == []
    clock.offset = timedelta(hours=2)  # past delay_warning (1 h in the test settings)
    reports = await reports_to(stack, stack.accounts.doctor.address)
    assert len(reports) == 1
    fields = status_fields(reports[0])
    assert fields[0]["Action"] == "delayed" and "Will-Retry-Until" in fields[0]
    clock.offset = timedelta(hours=3)
    assert len(await reports_to(stack, stack.accounts.doctor.address)) == 1  # not twice


async def test_notify_never_gets_no_report(stack: SmtpStack, clock: Clock) -> None:
    route(stack, ("127.0.0.1", 9))
    await queue_from_doctor(stack, NewRecipient(REMOTE, ("NEVER",)))
    clock.offset = timedelta(days=2)
    await stack.run_queue()
    assert await reports_to(stack, stack.accounts.doctor.address) == []


async def test_success_report_relayed_when_the_next_hop_has_no_dsn(stack: SmtpStack) -> None:
    server_certificate = stack.pki.issue_server(PEER_HOST)
    async with stock_aiosmtpd(server_certificate) as (address, handler):
        route(stack, address)
        await queue_from_doctor(stack, NewRecipient(REMOTE, ("SUCCESS",)))
        await stack.run_queue()
    assert len(handler.envelopes) == 1
    assert handler.envelopes[0][4] == []  # no NOTIFY sent to a server without DSN
    reports = await reports_to(stack, stack.accounts.doctor.address)
    assert [status_fields(r)[0]["Action"] for r in reports] == ["relayed"]


async def test_a_report_is_never_sent_to_the_null_sender(stack: SmtpStack, clock: Clock) -> None:
    route(stack, ("127.0.0.1", 9))
    raw = build_message(sender="MAILER-DAEMON@localhost", to=[REMOTE])
    queued = await stack.gateway.queue.enqueue(raw, "", [NewRecipient(REMOTE)], origin="dsn")
    clock.offset = timedelta(days=2)
    await stack.run_queue()
    assert await stack.gateway.queue.get(queued) is None
    assert await stack.gateway.queue.all() == []  # given up, and nothing queued about it


async def test_mx_routing_through_the_resolver(stack: SmtpStack) -> None:
    server_certificate = stack.pki.issue_server(PEER_HOST)
    async with recording_listener(credential=server_certificate) as (remote, recorder):
        host, port = remote.addresses()[0]
        stack.gateway.router.port = port
        stack.resolver.mx_records[PEER_DOMAIN] = [(20, "backup.example"), (10, PEER_HOST)]
        stack.resolver.hosts[PEER_HOST] = [host]
        await queue_from_doctor(stack, NewRecipient(REMOTE))
        await stack.run_queue()
    assert len(recorder.messages) == 1
    assert stack.resolver.questions[:2] == [f"MX {PEER_DOMAIN}", f"A {PEER_HOST}"]


@pytest.mark.parametrize(("records", "status"), [(None, "5.1.2"), ([(0, ".")], "5.1.10")])
async def test_a_domain_without_mail_bounces(
    stack: SmtpStack, records: object, status: str
) -> None:
    stack.resolver.mx_records["nowhere.mssante.fr"] = records  # type: ignore[assignment]
    await queue_from_doctor(stack, NewRecipient("x@nowhere.mssante.fr"))
    reports = await reports_to(stack, stack.accounts.doctor.address)
    assert [status_fields(r)[0]["Status"] for r in reports] == [status]


async def test_a_next_hop_without_starttls_is_never_used(stack: SmtpStack) -> None:
    async with recording_listener(tls="none") as (remote, recorder):
        route(stack, remote.addresses()[0])
        queued = await queue_from_doctor(stack, NewRecipient(REMOTE))
        await stack.run_queue()
    message = await stack.gateway.queue.get(queued)
    assert message is not None and message.recipients[0].last_reply.startswith("454 4.7.10")
    assert recorder.mails == []


def test_retry_schedule() -> None:
    schedule = [60.0, 300.0, 900.0]
    assert [retry_delay(schedule, n) for n in (1, 2, 3, 4, 10)] == [60, 300, 900, 900, 900]


async def test_the_accuse_de_reception_of_an_inbound_message(stack: SmtpStack) -> None:
    """NOTIFY=SUCCESS on mail from another operator: once delivered here, a "delivered" DSN
    goes back to the sender through the queue (the MSSanté accusé de réception)."""
    server_certificate = stack.pki.issue_server(PEER_HOST)
    paul = stack.accounts.parent.address
    async with recording_listener(credential=server_certificate) as (remote, recorder):
        route(stack, remote.addresses()[0])
        async with stack.mta_client() as client:
            await client.ehlo()
            await client.mail(REMOTE, options=["RET=HDRS", "ENVID=abc"])
            await client.rcpt(paul, options=["NOTIFY=SUCCESS", f"ORCPT=rfc822;{paul}"])
            await client.data(build_message(sender=REMOTE, to=[paul], subject="Convocation"))
        await stack.run_queue()
    assert [address for address, _ in recorder.recipients] == [REMOTE]
    sender, message = recorder.mails[0][0], recorder.messages[0][1]
    assert sender == ""  # the null reverse-path
    report = message_from_bytes(message)
    fields = status_fields(report)
    assert fields[0]["Action"] == "delivered" and fields[0]["Status"] == "2.0.0"
    assert fields[0]["Original-Recipient"] == f"rfc822;{paul}"


async def test_orphan_queue_files_are_swept_and_referenced_ones_kept(stack: SmtpStack) -> None:
    queue = stack.gateway.queue
    queued = await queue_from_doctor(stack, NewRecipient(REMOTE))
    message = await queue.get(queued)
    assert message is not None
    orphan = await queue.write_file(b"Subject: never committed\r\n\r\n")  # a crash before COMMIT
    assert await queue.sweep_files(grace=3600, now=datetime.now(UTC).timestamp()) == 0  # too young
    assert await queue.sweep_files(grace=0, now=datetime.now(UTC).timestamp() + 1) == 1
    remaining = {blob for blob, _ in queue.files.list()}
    assert message.blob_id in remaining and orphan not in remaining


async def test_stopping_lets_the_round_in_progress_finish_its_transaction(
    stack: SmtpStack,
) -> None:
    """A round cancelled inside its transaction (BEGIN sent, the connection not closed) can
    leave SQLite's write lock behind: the deliveries a graceful stop lets finish would then fail.
    The round started here waits for the write lock another transaction holds when the stop
    comes; it still leases, tries (a closed port: refused at once) and records."""
    route(stack, ("127.0.0.1", 1))
    queued = await queue_from_doctor(stack, NewRecipient(REMOTE))
    runner = stack.runner
    async with stack.store.transaction():  # the write lock, held
        await runner.start()  # its first round blocks on the lock
        stopping = asyncio.create_task(runner.stop(10))
        await asyncio.sleep(0)  # the stop has begun, the round still waits
        assert not stopping.done()
    await stopping
    assert runner._task is not None and not runner._task.cancelled()
    message = await stack.gateway.queue.get(queued)
    assert message is not None
    [recipient] = message.recipients
    assert (recipient.status, recipient.attempts) == (QUEUED, 1)
    assert recipient.last_reply.startswith("421 4.4.1 cannot connect")
