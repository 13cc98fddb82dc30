"""Submission (587 STARTTLS, 465 implicit TLS) with aiosmtplib over real TLS: AUTH only over TLS,
strong authentication by mailbox type, the sender and From: owned by the authenticated identity,
the policy per recipient, local delivery DKIM-signed, remote recipients queued."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from plitest.smtp import PEER_DOMAIN, SmtpStack, smtp_stack
from plitest.store import build_message

from pli.certs.identity import identity
from pli.mailbox.store.demo import DEMO_PASSWORD
from pli.mailbox.store.records import CertificateIdentity
from pli.mailgateway.dkim import DkimVerifier

ISSUER, AUDIENCE = "https://psc.test/realm", "pli-smtp"


async def inbox(stack: SmtpStack, address: str) -> list[bytes]:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    uids = await stack.store.messages.uids(folder.id)
    return [await stack.store.messages.read(folder.id, uid) for uid in uids]


def plain(user: str, password: str, authzid: str = "") -> bytes:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode())


async def auth(
    client: aiosmtplib.SMTP, user: str, password: str = DEMO_PASSWORD, authzid: str = ""
) -> aiosmtplib.SMTPResponse:
    await client.ehlo()
    return await client.execute_command(b"AUTH", b"PLAIN", plain(user, password, authzid))


async def test_a_doctor_writes_to_a_citizen_signed_and_delivered(stack: SmtpStack) -> None:
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    raw = build_message(sender=f"Dr Martin <{doctor}>", to=[paul], subject="Convocation")
    raw = raw.replace(b"Message-ID", b"X-Old-Id")  # the MSA adds a Message-ID (RFC 6409 §8.3)
    async with stack.submission_client() as client:
        assert (await auth(client, doctor)).code == 235
        errors, reply = await client.sendmail(doctor, [paul], raw)
    assert errors == {} and reply.startswith("2.0.0")
    stored = (await inbox(stack, paul))[-1]
    assert stored.startswith(
        f"Return-Path: <{doctor}>\r\nReceived: from poste.hopital-demo.mssante.fr".encode()
    )
    assert b"with ESMTPSA" in stored
    assert (
        b"\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=hopital-demo.mssante.fr"
        in stored
    )
    assert b"\r\nMessage-ID: <" in stored
    results = DkimVerifier(stack.dkim_dns).verify_blocking(stored.split(b"\r\n", 4)[4])
    assert [r.result for r in results] == ["pass"]
    conversation = await stack.store.conversations.get(doctor, stack.accounts.parent.ins or "")
    assert conversation is not None and conversation.is_open


async def test_implicit_tls_offers_and_accepts_auth(stack: SmtpStack) -> None:
    """aiosmtpd disables AUTH on implicit TLS (its _tls_protocol is None): ours does not."""
    async with stack.submission_client("submissions") as client:
        response = await client.ehlo()
        assert "AUTH PLAIN LOGIN" in response.message
        assert (
            await client.execute_command(
                b"AUTH", b"PLAIN", plain(stack.accounts.doctor.address, DEMO_PASSWORD)
            )
        ).code == 235


async def test_auth_before_tls_is_refused_538(stack: SmtpStack) -> None:
    host, port = stack.address("submission")
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=10)
    await client.connect()
    try:
        response = await client.ehlo()
        assert "AUTH" not in response.message and "STARTTLS" in response.message
        refused = await client.execute_command(b"AUTH", b"PLAIN", plain("dr.martin", DEMO_PASSWORD))
        assert (refused.code, refused.message.split()[0]) == (538, "5.7.11")
        mail = await client.execute_command(b"MAIL", b"FROM:<a@hopital-demo.mssante.fr>")
        assert (mail.code, mail.message.split()[0]) == (530, "5.7.0")
    finally:
        client.close()


async def test_mail_before_auth_is_refused_530(stack: SmtpStack) -> None:
    async with stack.submission_client() as client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(stack.accounts.doctor.address)
    assert refused.value.code == 530


async def test_a_failed_auth_says_nothing_about_the_cause(stack: SmtpStack) -> None:
    async with stack.submission_client() as client:
        wrong = await auth(client, stack.accounts.doctor.address, "not-the-password-1")
        unknown = await client.execute_command(
            b"AUTH", b"PLAIN", plain("nobody@hopital-demo.mssante.fr", DEMO_PASSWORD)
        )
    assert (wrong.code, wrong.message) == (535, "5.7.8 Authentication credentials invalid")
    assert (unknown.code, unknown.message) == (wrong.code, wrong.message)


async def test_mail_from_another_mailbox_is_refused(stack: SmtpStack) -> None:
    async with stack.submission_client() as client:
        await auth(client, stack.accounts.doctor.address)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(stack.accounts.reports.address)
    assert (refused.value.code, refused.value.message.split()[0]) == (553, "5.7.1")


async def test_a_from_header_of_another_mailbox_is_refused_at_data(stack: SmtpStack) -> None:
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    raw = build_message(sender=stack.accounts.secretariat.address, to=[paul])
    async with stack.submission_client() as client:
        await auth(client, doctor)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(doctor, [paul], raw)
    assert (refused.value.code, refused.value.message.split()[0]) == (550, "5.7.1")


async def test_a_member_sends_as_the_organisational_mailbox(stack: SmtpStack) -> None:
    secretary, org, paul = (
        stack.accounts.secretary.address,
        stack.accounts.secretariat.address,
        stack.accounts.parent.address,
    )
    raw = build_message(sender=f"Secrétariat <{org}>", to=[paul], subject="Rendez-vous")
    async with stack.submission_client() as client:
        await auth(client, secretary)
        errors, _ = await client.sendmail(org, [paul], raw)
    assert errors == {}
    conversation = await stack.store.conversations.get(org, stack.accounts.parent.ins or "")
    assert conversation is not None and conversation.is_open  # the ORG mailbox's exchange
    history = await stack.store.audit.history(paul)
    assert any(r.actor == secretary and r.action == "submit" for r in history)


async def test_the_policy_refuses_a_citizen_writing_first_at_rcpt(stack: SmtpStack) -> None:
    paul = stack.accounts.parent.address
    async with stack.submission_client() as client:
        await auth(client, paul)
        await client.mail(paul)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt(f"dr.bernard@{PEER_DOMAIN}")
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.7.1 ")


async def test_a_guardian_acts_for_the_child_and_is_recorded(stack: SmtpStack) -> None:
    paul, lea, doctor = stack.accounts.parent, stack.accounts.child, stack.accounts.doctor
    first = build_message(sender=doctor.address, to=[lea.address], subject="Vaccin")
    async with stack.submission_client() as client:
        await auth(client, doctor.address)
        await client.sendmail(doctor.address, [lea.address], first)
    reply = build_message(sender=lea.address, to=[doctor.address], subject="Re: Vaccin")
    async with stack.submission_client() as client:
        assert (await auth(client, paul.address, authzid=lea.address)).code == 235
        errors, _ = await client.sendmail(lea.address, [doctor.address], reply)
    assert errors == {}
    history = await stack.store.audit.history(doctor.address)
    assert any(r.actor == paul.address and r.acting_for == lea.address for r in history)


async def test_a_remote_recipient_is_queued_and_a_local_one_delivered(stack: SmtpStack) -> None:
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    remote = f"dr.bernard@{PEER_DOMAIN}"
    raw = build_message(sender=doctor, to=[paul, remote])
    async with stack.submission_client() as client:
        await auth(client, doctor)
        errors, _ = await client.sendmail(doctor, [paul, remote], raw)
    assert errors == {}
    queued = await stack.gateway.queue.all()
    assert [r.address for m in queued for r in m.recipients] == [remote]
    assert queued[0].origin == "submission"
    stored = await stack.gateway.queue.read(queued[0])
    assert b"DKIM-Signature:" in stored and stored.endswith(raw.split(b"\r\n\r\n", 1)[1])
    # RFC 5321 §4.4: Return-Path only in the local copy (the final delivery), never relayed
    assert b"Return-Path:" not in stored
    local = (await inbox(stack, paul))[-1]
    assert local.startswith(f"Return-Path: <{doctor}>\r\n".encode())
    assert local.endswith(stored)


async def test_a_read_receipt_with_the_null_sender_is_delivered_with_return_path_null(
    stack: SmtpStack,
) -> None:
    """RFC 8098 §3: an MDN goes with ``MAIL FROM:<>``; its copy says so (RFC 5321 §4.4)."""
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    raw = build_message(sender=doctor, to=[paul], subject="Accusé de lecture")
    async with stack.submission_client() as client:
        await auth(client, doctor)
        errors, _ = await client.sendmail("", [paul], raw)
    assert errors == {}
    stored = (await inbox(stack, paul))[-1]
    assert stored.startswith(b"Return-Path: <>\r\nReceived: from poste.hopital-demo.mssante.fr")


async def test_strong_authentication_needs_the_one_time_code(
    tmp_path: Path, database_url: str
) -> None:
    async with smtp_stack(
        tmp_path, database_url, sections={"auth": {"require_otp": True}}
    ) as stack:
        doctor = stack.accounts.doctor.address
        async with stack.submission_client() as client:
            assert (await auth(client, doctor)).code == 535  # no one-time code enrolled
        secret = await stack.enable_otp(doctor)
        async with stack.submission_client() as client:
            assert (await auth(client, doctor, DEMO_PASSWORD)).code == 535  # code missing
        async with stack.submission_client() as client:
            assert (await auth(client, doctor, stack.password_with_otp(secret))).code == 235


async def test_an_application_mailbox_authenticates_by_certificate_with_external(
    stack: SmtpStack,
) -> None:
    app = stack.accounts.reports
    credential = stack.pki.issue_org("750100001", "CH DEMO", service="CR-AUTO")
    peer = identity(credential.certificate)
    await stack.store.accounts.add_certificate(
        app.id,
        CertificateIdentity(
            dn=peer.dn, structure_id=peer.structure_id, fingerprint=peer.fingerprint_sha256
        ),
    )
    async with stack.submission_client(credential=credential) as client:
        response = await client.ehlo()
        assert "EXTERNAL" in response.message
        assert (await client.execute_command(b"AUTH", b"EXTERNAL", b"=")).code == 235
        errors, _ = await client.sendmail(
            app.address,
            [stack.accounts.parent.address],
            build_message(sender=app.address, to=[stack.accounts.parent.address]),
        )
    assert errors == {}
    async with stack.submission_client() as client:  # no certificate: EXTERNAL not offered
        assert "EXTERNAL" not in (await client.ehlo()).message
        assert (await auth(client, app.address)).code == 535  # APP: password refused


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def oauth_stack(
    tmp_path: Path, database_url: str, issuer_key: rsa.RSAPrivateKey
) -> AsyncIterator[SmtpStack]:
    keys = tmp_path / "issuer.pem"
    keys.write_bytes(
        issuer_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    auth_section = {"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_keys": str(keys)}
    async with smtp_stack(tmp_path, database_url, sections={"auth": auth_section}) as stack:
        yield stack


async def test_oauthbearer_with_a_pro_sante_connect_token(
    oauth_stack: SmtpStack, issuer_key: rsa.RSAPrivateKey
) -> None:
    stack = oauth_stack
    doctor = stack.accounts.doctor
    await stack.store.accounts.add_oauth_subject(doctor.id, "810101010101")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "preferred_username": "810101010101",
    }
    token = jwt.encode(claims, issuer_key, algorithm="RS256")
    response = base64.b64encode(f"n,a={doctor.address},\x01auth=Bearer {token}\x01\x01".encode())
    async with stack.submission_client() as client:
        await client.ehlo()
        assert (await client.execute_command(b"AUTH", b"OAUTHBEARER", response)).code == 235
    expired = jwt.encode(
        {**claims, "exp": now - 3600, "iat": now - 7200}, issuer_key, algorithm="RS256"
    )
    bad = base64.b64encode(f"n,,\x01auth=Bearer {expired}\x01\x01".encode())
    async with stack.submission_client() as client:
        await client.ehlo()
        challenge = await client.execute_command(b"AUTH", b"OAUTHBEARER", bad)
        assert challenge.code == 334  # RFC 7628 §3.2.2: the error as a challenge
        assert b'"status":"invalid_token"' in base64.b64decode(challenge.message)
        final = await client.execute_command(base64.b64encode(b"\x01"))
        assert final.code == 535
