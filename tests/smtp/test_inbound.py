"""The inbound MTA with real clients over real TLS: trust checks at MAIL, policy at RCPT and
DATA, delivery into the store with trace and Authentication-Results, audit."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import pytest
from plitest.smtp import PEER_DOMAIN, SmtpStack
from plitest.store import build_message
from plitest.xdm import XdmDoc, build_xdm, cda_document

from pli.mailbox.store.demo import DEMO_DOMAIN

DOCTOR_ELSEWHERE = f"dr.bernard@{PEER_DOMAIN}"


async def inbox(stack: SmtpStack, address: str) -> list[bytes]:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    return [
        await stack.store.messages.read(folder.id, uid)
        for uid in await stack.store.messages.uids(folder.id)
    ]


async def test_another_operator_delivers_to_a_citizen_with_trace_and_dkim_result(
    stack: SmtpStack,
) -> None:
    paul = stack.accounts.parent.address
    before = len(await inbox(stack, paul))
    raw = build_message(sender=f"Dr Bernard <{DOCTOR_ELSEWHERE}>", to=[paul], subject="Résultats")
    forged = b"Return-Path: <espion@ailleurs.test>\r\n"  # only the final delivery knows it
    async with stack.mta_client() as client:
        errors, reply = await client.sendmail(DOCTOR_ELSEWHERE, [paul], forged + raw)
    assert errors == {}
    assert reply.startswith("2.0.0 OK")
    messages = await inbox(stack, paul)
    assert len(messages) == before + 1
    stored = messages[-1]
    # RFC 5321 §4.4: the envelope's reverse-path first, the message's own one removed
    assert stored.startswith(
        f"Return-Path: <{DOCTOR_ELSEWHERE}>\r\nReceived: from mx.clinique-demo.mssante.fr".encode()
    )
    assert stored.count(b"Return-Path:") == 1
    assert b"with ESMTPS (TLSv1.2 ECDHE-RSA-" in stored
    assert b"Authentication-Results: localhost;\r\n\tdkim=none" in stored
    assert stored.endswith(raw)
    conversation = await stack.store.conversations.get(
        DOCTOR_ELSEWHERE, stack.accounts.parent.ins or ""
    )
    assert conversation is not None and conversation.is_open
    history = await stack.store.audit.history(paul)
    assert any(
        r.action == "smtp-receive" and "professional-to-citizen" in r.result for r in history
    )


async def test_mail_before_starttls_is_refused_530(stack: SmtpStack) -> None:
    async with stack.mta_client(starttls=False) as client:
        await client.ehlo()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(DOCTOR_ELSEWHERE)
    assert refused.value.code == 530
    assert refused.value.message.startswith("5.7.0")


async def test_no_client_certificate_is_refused_at_mail(stack: SmtpStack) -> None:
    async with stack.mta_client(with_client_cert=False) as client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(DOCTOR_ELSEWHERE)
    assert (refused.value.code, refused.value.message) == (
        530,
        "5.7.0 A client certificate is required",
    )


async def test_a_dn_not_listed_for_the_sender_domain_is_refused_550(stack: SmtpStack) -> None:
    async with stack.mta_client() as client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(f"someone@{DEMO_DOMAIN}")  # our domain: listed with our DN only
    assert refused.value.code == 550
    assert "not listed for this domain" in refused.value.message


async def test_relaying_to_a_domain_we_do_not_serve_is_refused(stack: SmtpStack) -> None:
    async with stack.mta_client() as client:
        await client.mail(DOCTOR_ELSEWHERE)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("someone@elsewhere.mssante.fr")
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.7.1 Relay access denied")


async def test_a_document_invisible_to_the_patient_is_refused_at_data(stack: SmtpStack) -> None:
    """Policy P7 through the inbound MTA: the DATA moment reads the IHE_XDM package of the
    message as it would be filed."""
    paul = stack.accounts.parent.address
    before = len(await inbox(stack, paul))
    ins = stack.accounts.parent.ins or ""
    document = XdmDoc(
        cda_document(ins), confidentiality=(("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13"),)
    )
    package = build_xdm([document], patient_ins=ins)
    message = EmailMessage()
    message["From"] = DOCTOR_ELSEWHERE
    message["To"] = paul
    message["Subject"] = "Compte rendu"
    message.set_content("Ci-joint.")
    message.add_attachment(package, maintype="application", subtype="zip", filename="IHE_XDM.zip")
    async with stack.mta_client() as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(DOCTOR_ELSEWHERE, [paul], message.as_bytes())
    assert refused.value.code == 550 and "non visible par le patient" in refused.value.message
    assert len(await inbox(stack, paul)) == before
    history = await stack.store.audit.history(paul)
    assert any(
        r.action == "smtp-refuse" and "invisible-to-patient" in (r.result or "") for r in history
    )
