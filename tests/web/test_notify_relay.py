"""The notification relays: the dev outbox (files) and an SMTP relay (a real aiosmtpd server on
127.0.0.1), with their failures classified as temporary or permanent."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given
from hypothesis import strategies as st
from plitest.web import outbox_mails

from pli.config.schema import Settings
from pli.mailbox.notify.relay import (
    SMTP_DEFAULT_PORT,
    SMTPS_DEFAULT_PORT,
    DevOutbox,
    OutgoingMail,
    RelayError,
    SmtpRelay,
    SmtpTarget,
    parse_relay_url,
    relay_from_settings,
)
from pli.mailbox.notify.texts import code_mail, notification_mail


def mail(key: str = "notification-1", raw: bytes | None = None) -> OutgoingMail:
    raw = raw or notification_mail("n@pli.test", "a@example.org", url="https://x", domain="t")
    return OutgoingMail(key, "n@pli.test", "a@example.org", raw)


async def test_dev_outbox_writes_one_private_file_per_key(tmp_path: Path) -> None:
    outbox = DevOutbox(tmp_path / "outbox")
    await outbox.send(
        mail(
            "code-1",
            code_mail("n@pli.test", "a@example.org", code="123456", lifetime=300, domain="t"),
        )
    )
    await outbox.send(mail("notification-1"))
    await outbox.send(mail("notification-1"))  # the same decision sent again: replaced
    files = outbox.files()
    assert [path.name for path in files] == ["code-1.eml", "notification-1.eml"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
    texts = [
        message.get_body(("plain",)).get_content() for message in outbox_mails(outbox.directory)
    ]  # type: ignore[union-attr]
    assert "123456" in texts[0] and "5 minutes" in texts[0]


@pytest.mark.parametrize("key", ["../escape", "a/b", "", "x" * 200, "é"])
async def test_dev_outbox_refuses_a_key_that_is_not_a_plain_name(tmp_path: Path, key: str) -> None:
    with pytest.raises(RelayError) as refused:
        await DevOutbox(tmp_path).send(mail(key))
    assert not refused.value.temporary
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's temporary directory)


async def test_dev_outbox_that_cannot_be_written_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RelayError) as failed:
        await DevOutbox(blocker / "outbox").send(mail())
    assert failed.value.temporary


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("smtp://relay.example.org", SmtpTarget("relay.example.org", SMTP_DEFAULT_PORT, False)),
        ("smtps://relay.example.org", SmtpTarget("relay.example.org", SMTPS_DEFAULT_PORT, True)),
        ("smtp://127.0.0.1:2525/", SmtpTarget("127.0.0.1", 2525, False)),
        (
            "smtps://user%40x:p%3Ass@relay:465",
            SmtpTarget("relay", 465, True, "user@x", "p:ss"),
        ),
    ],
)
def test_relay_urls(url: str, target: SmtpTarget) -> None:
    assert parse_relay_url(url) == target


@pytest.mark.parametrize(
    "url", ["http://relay", "smtp://", "smtp://relay/path", "smtp://relay?x=1", "smtp://r:99999"]
)
def test_bad_relay_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_relay_url(url)


@given(st.text(max_size=60))
def test_parse_relay_url_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_relay_url(text)


def test_settings_choose_the_relay(tmp_path: Path) -> None:
    dev = relay_from_settings(Settings(server={"data_dir": tmp_path}))
    assert isinstance(dev, DevOutbox) and dev.directory == tmp_path / "outbox"
    smtp = relay_from_settings(Settings(notifications={"relay": "smtps://relay:465"}))
    assert isinstance(smtp, SmtpRelay) and smtp.describe() == "smtps://relay:465"
    with pytest.raises(ValueError, match="dev-outbox"):
        Settings(notifications={"relay": "mailto:x"})


class Recorder:
    """An aiosmtpd handler that records messages and answers RCPT as told."""

    def __init__(self, rcpt_reply: str = "250 OK") -> None:
        self.rcpt_reply = rcpt_reply
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[Recorder, int]]:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder, hostname="relay.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield recorder, port
    finally:
        server.close()
        await server.wait_closed()


def relay_to(port: int) -> SmtpRelay:
    return SmtpRelay(SmtpTarget("127.0.0.1", port, False), timeout=5, local_hostname="pli.test")


async def test_smtp_relay_hands_the_mail_over(smtp_server: tuple[Recorder, int]) -> None:
    recorder, port = smtp_server
    await relay_to(port).send(mail())
    [(sender, recipients, content)] = recorder.received
    assert (sender, recipients) == ("n@pli.test", ["a@example.org"])
    assert b"Auto-Submitted: auto-generated" in content


@pytest.mark.parametrize(
    ("reply", "temporary"), [("550 5.1.1 unknown", False), ("450 4.2.1 busy", True)]
)
async def test_smtp_relay_refusals_are_classified(
    smtp_server: tuple[Recorder, int], reply: str, temporary: bool
) -> None:
    recorder, port = smtp_server
    recorder.rcpt_reply = reply
    with pytest.raises(RelayError) as refused:
        await relay_to(port).send(mail())
    assert refused.value.temporary is temporary
    assert recorder.received == []


async def test_smtp_relay_unreachable_is_temporary() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RelayError) as failed:
        await relay_to(port).send(mail())
    assert failed.value.temporary
