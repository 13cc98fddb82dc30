"""Python's smtplib (a blocking client, run in a thread) against pli over real TLS: another
operator's delivery with DSN parameters, submission with AUTH LOGIN and PLAIN."""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage

from plitest.smtp import PEER_DOMAIN, PEER_HOST, SmtpStack
from plitest.store import build_message

from pli.mailbox.store.demo import DEMO_PASSWORD


async def count(stack: SmtpStack, address: str) -> int:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    return len(await stack.store.messages.uids(folder.id))


async def test_smtplib_as_another_operator_with_dsn_parameters(stack: SmtpStack) -> None:
    paul, doctor = stack.accounts.parent.address, f"dr.bernard@{PEER_DOMAIN}"
    host, port = stack.address("mta")
    raw = build_message(sender=doctor, to=[paul], subject="Résultats")

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(host, port, local_hostname=PEER_HOST, timeout=30) as client:
            client.starttls(context=stack.client_context())
            client.ehlo(PEER_HOST)
            assert client.has_extn("dsn") and client.has_extn("pipelining")
            return client.sendmail(
                doctor,
                [paul],
                raw,
                mail_options=["RET=HDRS", "ENVID=lettre-42"],
                rcpt_options=["NOTIFY=FAILURE,DELAY"],
            )

    before = await count(stack, paul)
    assert await asyncio.to_thread(send) == {}
    assert await count(stack, paul) == before + 1


async def test_smtplib_submission_with_login_and_plain(stack: SmtpStack) -> None:
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    host, port = stack.address("submission")
    context = stack.pki.client_context(with_client_cert=False)

    def submit(mechanism: str) -> None:
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.starttls(context=context)
            client.ehlo("poste.test")
            client.user, client.password = doctor, DEMO_PASSWORD
            code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
            assert code == 235
            client.send_message(
                _message(build_message(sender=doctor, to=[paul], subject=mechanism)), doctor, [paul]
            )

    before = await count(stack, paul)
    await asyncio.to_thread(submit, "LOGIN")
    await asyncio.to_thread(submit, "PLAIN")
    assert await count(stack, paul) == before + 2


def _message(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed
