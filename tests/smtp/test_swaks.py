"""swaks (Debian) against pli's listeners over real TLS: another operator's delivery with its
client certificate, submission with AUTH on STARTTLS and on implicit TLS, pipelining."""

from __future__ import annotations

import asyncio

import pytest
from plitest.smtp import PEER_DOMAIN, SmtpStack

from pli.mailbox.store.demo import DEMO_PASSWORD


async def swaks(*arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "swaks",
        "--timeout",
        "30",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode("utf-8", "replace")


def server(stack: SmtpStack, name: str) -> str:
    host, port = stack.address(name)
    return f"{host}:{port}"


async def count(stack: SmtpStack, address: str) -> int:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    return len(await stack.store.messages.uids(folder.id))


async def test_swaks_delivers_as_another_operator_with_its_certificate(stack: SmtpStack) -> None:
    paul = stack.accounts.parent.address
    before = await count(stack, paul)
    code, output = await swaks(
        "--server",
        server(stack, "mta"),
        "--tls",
        "--tls-cert",
        str(stack.peer.certificate_path),
        "--tls-key",
        str(stack.peer.key_path),
        "--ehlo",
        "mx.clinique-demo.mssante.fr",
        "--from",
        f"dr.bernard@{PEER_DOMAIN}",
        "--to",
        paul,
        "--pipeline",
    )
    assert code == 0, output
    assert "<~  250 2.0.0 OK, delivered as" in output
    assert await count(stack, paul) == before + 1


async def test_swaks_without_a_certificate_is_refused(stack: SmtpStack) -> None:
    code, output = await swaks(
        "--server",
        server(stack, "mta"),
        "--tls",
        "--from",
        f"dr.bernard@{PEER_DOMAIN}",
        "--to",
        stack.accounts.parent.address,
    )
    assert code != 0
    assert "<~* 530 5.7.0 A client certificate is required" in output


@pytest.mark.parametrize(
    ("listener", "tls"), [("submission", "--tls"), ("submissions", "--tls-on-connect")]
)
async def test_swaks_submits_with_auth(stack: SmtpStack, listener: str, tls: str) -> None:
    doctor, paul = stack.accounts.doctor.address, stack.accounts.parent.address
    before = await count(stack, paul)
    code, output = await swaks(
        "--server",
        server(stack, listener),
        tls,
        "--auth",
        "PLAIN",
        "--auth-user",
        doctor,
        "--auth-password",
        DEMO_PASSWORD,
        "--from",
        doctor,
        "--to",
        paul,
        "--header",
        "Subject: Bonjour",
    )
    assert code == 0, output
    assert "<~  235 2.7.0 Authentication successful" in output
    assert await count(stack, paul) == before + 1
