"""Postfix (Debian) as another MSSanté operator: it relays its doctor's mail to pli presenting
its client certificate, and receives pli's outbound mail with mutual TLS; the citizen's reply
goes back through pli's queue to Postfix's mailbox."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import aiosmtplib
import pytest
from plitest.postfix import PostfixInstance, postfix_operator
from plitest.smtp import CITIZEN_DOMAIN, PEER_DOMAIN, PEER_HOST, SmtpStack
from plitest.store import build_message

from pli.mailbox.auth.sasl import PasswordCredentials
from pli.mailbox.store.demo import DEMO_DOMAIN, DEMO_PASSWORD
from pli.mailgateway.submission import EnvelopeRecipient

DOCTOR = f"dr.bernard@{PEER_DOMAIN}"


@pytest.fixture
def postfix(stack: SmtpStack) -> Iterator[PostfixInstance]:
    with postfix_operator(
        stack.pki,
        domain=PEER_DOMAIN,
        client=stack.peer,
        server=stack.pki.issue_server(PEER_HOST),
        relay_domains=[DEMO_DOMAIN, CITIZEN_DOMAIN],
        pli_port=stack.address("mta")[1],
    ) as instance:
        stack.gateway.router.routes[PEER_DOMAIN] = ("127.0.0.1", instance.port)
        yield instance


async def wait_for(postfix: PostfixInstance, pattern: str) -> str:
    match = await asyncio.to_thread(postfix.wait_for, pattern)
    return match.group(0)


async def inbox(stack: SmtpStack, address: str) -> list[bytes]:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    uids = await stack.store.messages.uids(folder.id)
    return [await stack.store.messages.read(folder.id, uid) for uid in uids]


async def test_postfix_relays_its_doctors_mail_to_pli_with_its_client_certificate(
    stack: SmtpStack, postfix: PostfixInstance
) -> None:
    paul = stack.accounts.parent.address
    before = len(await inbox(stack, paul))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=postfix.port, start_tls=False, timeout=30)
    await client.connect()
    await client.sendmail(
        DOCTOR, [paul], build_message(sender=DOCTOR, to=[paul], subject="Bilan sanguin")
    )
    await client.quit()
    line = await wait_for(postfix, rf"to=<{paul}>.*status=\w+ .*")
    assert "status=sent (250 2.0.0 OK, delivered as" in line
    assert (
        "Trusted TLS connection established" in postfix.log
        or "TLS connection established" in postfix.log
    )
    messages = await inbox(stack, paul)
    assert len(messages) == before + 1
    assert messages[-1].startswith(
        f"Return-Path: <{DOCTOR}>\r\n"
        "Received: from mx.clinique-demo.mssante.fr ([127.0.0.1])".encode()
    )
    history = await stack.store.audit.history(paul)
    assert any(r.action == "smtp-receive" and r.actor == stack.peer.dn for r in history)


async def test_pli_delivers_to_postfix_with_mutual_tls_and_dkim(
    stack: SmtpStack, postfix: PostfixInstance
) -> None:
    doctor = stack.accounts.doctor.address
    async with stack.submission_client() as client:
        await client.ehlo()
        auth = base64.b64encode(f"\0{doctor}\0{DEMO_PASSWORD}".encode())
        assert (await client.execute_command(b"AUTH", b"PLAIN", auth)).code == 235
        await client.sendmail(
            doctor, [DOCTOR], build_message(sender=doctor, to=[DOCTOR], subject="Avis")
        )
    await stack.run_queue()
    await wait_for(
        postfix, r"to=<dr\.bernard@clinique-demo\.mssante\.fr>, relay=virtual.*status=sent"
    )
    [delivered] = postfix.maildir("dr.bernard")
    # Postfix saw and verified our operator certificate (smtpd_tls_received_header).
    issuer = b"TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS"
    assert b'(Client CN "localhost", Issuer "' + issuer + b'" (verified OK))' in delivered
    assert (
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=hopital-demo.mssante.fr"
        in delivered
    )
    assert await stack.gateway.queue.all() == []


async def test_a_postfix_refusal_bounces_to_the_local_sender(
    stack: SmtpStack, postfix: PostfixInstance
) -> None:
    doctor = stack.accounts.doctor.address
    unknown = f"inconnu@{PEER_DOMAIN}"
    await stack.gateway.pipeline.submit(
        await stack.gateway.authenticator.authenticate(
            _password(doctor), service="test", remote="-"
        ),
        doctor,
        [_recipient(unknown)],
        build_message(sender=doctor, to=[unknown]),
    )
    await stack.run_queue()  # Postfix refuses the recipient: a failure report is queued
    await stack.run_queue()  # and delivered to the doctor
    reports = [m for m in await inbox(stack, doctor) if b"report-type=delivery-status" in m]
    assert len(reports) == 1
    assert b"Action: failed" in reports[0] and b"Status: 5.1.1" in reports[0]


async def test_the_citizen_reply_to_a_postfix_doctor_goes_back_through_the_queue(
    stack: SmtpStack, postfix: PostfixInstance
) -> None:
    paul = stack.accounts.parent.address
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=postfix.port, start_tls=False, timeout=30)
    await client.connect()
    await client.sendmail(DOCTOR, [paul], build_message(sender=DOCTOR, to=[paul], subject="Examen"))
    await client.quit()
    await wait_for(postfix, rf"to=<{paul}>.*status=sent")
    result = await stack.gateway.pipeline.submit(
        await stack.gateway.authenticator.authenticate(_password(paul), service="test", remote="-"),
        paul,
        [_recipient(DOCTOR)],
        build_message(sender=paul, to=[DOCTOR], subject="Re: Examen"),
    )
    assert result.recipients[0].reason == "citizen-reply"
    await stack.run_queue()
    await wait_for(
        postfix, r"to=<dr\.bernard@clinique-demo\.mssante\.fr>, relay=virtual.*status=sent"
    )
    assert b"Subject: Re: Examen" in postfix.maildir("dr.bernard")[-1]


def _password(user: str) -> PasswordCredentials:
    return PasswordCredentials(user, DEMO_PASSWORD)


def _recipient(address: str) -> EnvelopeRecipient:
    return EnvelopeRecipient(address)
