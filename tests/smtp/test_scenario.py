"""The long scenario of the issue, over real SMTP and TLS: a hospital's ORG mailbox writes to a
citizen, the citizen replies, the professional ends the exchange with [FIN], the citizen's next
reply is refused with the right reason; then the hospital writes again and the exchange
reopens. A second act crosses operators: a doctor elsewhere writes through the inbound MTA, the
citizen's reply leaves through the queue to that operator."""

from __future__ import annotations

import base64

import aiosmtplib
import pytest
from plitest.smtp import PEER_DOMAIN, PEER_HOST, SmtpStack, recording_listener
from plitest.store import build_message

from pli.mailbox.auth.sasl import PasswordCredentials
from pli.mailbox.store.demo import DEMO_PASSWORD
from pli.mailgateway.submission import EnvelopeRecipient
from pli.policy.reasons import DECISIONS, Reason, ascii_text


async def login(client: aiosmtplib.SMTP, user: str) -> None:
    await client.ehlo()
    response = await client.execute_command(
        b"AUTH", b"PLAIN", base64.b64encode(f"\0{user}\0{DEMO_PASSWORD}".encode())
    )
    assert response.code == 235


async def send(stack: SmtpStack, user: str, sender: str, recipient: str, raw: bytes) -> None:
    async with stack.submission_client() as client:
        await login(client, user)
        errors, reply = await client.sendmail(sender, [recipient], raw)
    assert errors == {} and reply.startswith("2.0.0"), reply


async def last_message(stack: SmtpStack, address: str) -> bytes:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    return await stack.store.messages.read(
        folder.id, (await stack.store.messages.uids(folder.id))[-1]
    )


async def test_org_writes_citizen_replies_fin_ends_it_next_reply_refused(stack: SmtpStack) -> None:
    secretary, org = stack.accounts.secretary.address, stack.accounts.secretariat.address
    paul = stack.accounts.parent.address
    # 1. The cardiology secretariat (an ORG mailbox, sent by one of its members) writes.
    await send(
        stack,
        secretary,
        org,
        paul,
        build_message(
            sender=org, to=[paul], subject="Votre rendez-vous", message_id="<rdv@hopital>"
        ),
    )
    assert b"Subject: Votre rendez-vous" in await last_message(stack, paul)
    # 2. The citizen replies to the mailbox that wrote.
    reply = build_message(
        sender=paul, to=[org], subject="Re: Votre rendez-vous", in_reply_to="<rdv@hopital>"
    )
    await send(stack, paul, paul, org, reply)
    assert b"Subject: Re: Votre rendez-vous" in await last_message(stack, org)
    # 3. The professional ends the exchange.
    await send(stack, secretary, org, paul, build_message(sender=org, to=[paul], subject="[FIN]"))
    # 4. The citizen's next reply is refused, with the reason, at RCPT.
    async with stack.submission_client() as client:
        await login(client, paul)
        await client.mail(paul)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt(org)
    ended = DECISIONS[Reason.THREAD_CLOSED]
    assert refused.value.code == 550
    assert refused.value.message == f"5.7.1 {ascii_text(ended.text)}"
    # The webmail (the Submitter protocol) gets the same decision, in French.
    principal = await stack.gateway.authenticator.authenticate(
        _password(paul), service="webmail", remote="127.0.0.1"
    )
    result = await stack.gateway.pipeline(
        principal, paul, [org], build_message(sender=paul, to=[org], subject="Encore")
    )
    [refusal] = result.refused
    assert (refusal.reason, refusal.text, refusal.smtp_code) == ("thread-closed", ended.text, 550)
    refusals = [r for r in await stack.store.audit.history(paul) if r.action == "submit-refused"]
    assert len(refusals) == 2  # at RCPT (SMTP) and through the webmail's pipeline
    assert all(r.result == "550 5.7.1 thread-closed" and r.actor == paul for r in refusals)
    # 5. A later ordinary message from the ORG mailbox reopens the exchange.
    await send(
        stack,
        secretary,
        org,
        paul,
        build_message(sender=org, to=[paul], subject="Nouveau rendez-vous"),
    )
    await send(stack, paul, paul, org, build_message(sender=paul, to=[org], subject="Merci"))
    assert b"Subject: Merci" in await last_message(stack, org)


def _password(user: str) -> PasswordCredentials:
    return PasswordCredentials(user, DEMO_PASSWORD)


async def test_across_operators_the_reply_leaves_through_the_queue(stack: SmtpStack) -> None:
    paul, doctor = stack.accounts.parent.address, f"dr.bernard@{PEER_DOMAIN}"
    async with stack.mta_client() as client:  # the other operator delivers the doctor's message
        await client.sendmail(
            doctor, [paul], build_message(sender=doctor, to=[paul], subject="Examen")
        )
    server_certificate = stack.pki.issue_server(PEER_HOST)
    async with recording_listener(credential=server_certificate) as (remote, recorder):
        stack.gateway.router.routes[PEER_DOMAIN] = remote.addresses()[0]
        await send(
            stack, paul, paul, doctor, build_message(sender=paul, to=[doctor], subject="Re: Examen")
        )
        await stack.run_queue()
    [(transaction, message)] = recorder.messages
    assert transaction.sender == paul and [r.address for r in transaction.recipients] == [doctor]
    assert b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=patient.mssante.fr" in message
    unknown = await stack.gateway.pipeline.submit(
        await stack.gateway.authenticator.authenticate(_password(paul), service="test", remote="-"),
        paul,
        [EnvelopeRecipient(f"dr.autre@{PEER_DOMAIN}")],
        build_message(sender=paul, to=[f"dr.autre@{PEER_DOMAIN}"]),
    )
    assert unknown.refused[0].reason == "citizen-not-contacted"
