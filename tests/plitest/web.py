"""Helpers for the webmail and notification tests: a clock the test moves, reading the dev
outbox, delivering a message to a citizen as the SMTP pipeline would (conversation facts
recorded), a one-time code read from the outbox."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from pli.mailbox.auth.service import AuthMethod, Principal
from pli.mailbox.notify.relay import DevOutbox
from pli.mailbox.store import Account, DeliveryTarget, Store
from pli.mailbox.store.demo import CITIZEN_DOMAIN, DEMO_DOMAIN, DEMO_PASSWORD, DemoAccounts
from pli.mailbox.web.app import create_webmail_app, webmail_of
from pli.mailbox.web.context import Filing, WebmailConfig, WebmailDeps, utc_now
from pli.mailbox.web.pages import Webmail
from pli.policy.ending import is_end_header, is_end_subject
from plitest.pki import session_pki
from plitest.smtp import SmtpStack, smtp_stack
from plitest.store import build_message

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """``clock()`` gives the current fake time; ``advance(seconds)`` moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()


def outbox_mails(directory: Path) -> list[EmailMessage]:
    """The dev outbox's e-mails, oldest first (by file time, then name)."""
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), key=lambda path: (path.stat().st_mtime_ns, path.name))
    mails = []
    for path in paths:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mails.append(parsed)
    return mails


def latest_code(directory: Path) -> str:
    """The one-time code of the newest login e-mail in the dev outbox."""
    for mail in reversed(outbox_mails(directory)):
        body = mail.get_body(("plain",))
        assert body is not None
        found = re.search(r"code de connexion est : (\d+)", body.get_content())
        if found:
            return found.group(1)
    raise AssertionError("no login code in the dev outbox")


async def deliver_to_citizen(
    store: Store, professional: Account, citizen: Account, raw: bytes, *, subject: str = ""
) -> int:
    """Deliver ``raw`` to the citizen's INBOX and record the exchange (opened, or ended by
    ``[FIN]``/X-MSS-MES), as the SMTP pipeline does; returns the UID."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    message_id = str(parsed.get("Message-ID", "")).strip().strip("<>")
    ends = is_end_subject(subject or str(parsed.get("Subject", ""))) or is_end_header(
        tuple(str(value) for value in parsed.get_all("X-MSS-MES") or [])
    )
    async with store.transaction() as tx:
        delivered = await store.messages.deliver(raw, [DeliveryTarget(citizen.id)], tx=tx)
        await store.conversations.record_professional_message(
            professional.address, citizen.ins or "", message_id, ends=ends, tx=tx
        )
        await store.audit.record(
            professional.address,
            "deliver",
            mailbox=citizen.address,
            request="test delivery",
            result="delivered",
            tx=tx,
        )
    return delivered[0].uid


# -- a webmail over the real submission pipeline ---------------------------------------------

PHARMACY_DOMAIN = "pharmacie-demo.mssante.fr"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_JETON = re.compile(r'name="jeton" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class WebStack:
    """The webmail app on a real store and the real submission pipeline (``smtp``: the SMTP
    stack it shares), e-mails in ``outbox`` (the dev outbox)."""

    smtp: SmtpStack
    app: Any
    outbox: Path
    deps: WebmailDeps

    @property
    def store(self) -> Store:
        return self.smtp.store

    @property
    def accounts(self) -> DemoAccounts:
        return self.smtp.accounts

    @property
    def webmail(self) -> Webmail:
        return webmail_of(self.app)

    def client(self, **options: Any) -> httpx.AsyncClient:
        """An HTTP client speaking to the app in process (cookies kept)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("198.51.100.7", 40000)),
            base_url="http://testserver",
            **options,
        )

    async def send_as(self, sender: Account, to: Account, raw: bytes) -> None:
        """``sender`` submits ``raw`` to ``to`` through the pipeline (conversation effects,
        audit), as a professional's mail client would."""
        principal = Principal(sender, AuthMethod.PASSWORD_OTP, sender)
        result = await self.smtp.gateway.pipeline(principal, sender.address, [to.address], raw)
        assert all(item.accepted for item in result.recipients), result

    async def write_to_citizen(
        self, sender: Account, citizen: Account, *, subject: str = "Bonjour", **kwargs: Any
    ) -> int:
        """A professional's message delivered to the citizen; returns its INBOX UID."""
        raw = build_message(
            sender=f"{sender.display_name} <{sender.address}>",
            to=[citizen.address],
            subject=subject,
            **kwargs,
        )
        await self.send_as(sender, citizen, raw)
        inbox = await self.store.folders.get(citizen.id, "INBOX")
        return max(await self.store.messages.uids(inbox.id))

    async def inbox_of(self, account: Account) -> list[bytes]:
        inbox = await self.store.folders.get(account.id, "INBOX")
        return [
            await self.store.messages.read(inbox.id, uid)
            for uid in await self.store.messages.uids(inbox.id)
        ]


def web_sections(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base: dict[str, dict[str, Any]] = {
        "webmail": {"secure_cookies": False, "public_url": "http://testserver"},
        "notifications": {"sender": "ne-pas-repondre@localhost"},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


@contextlib.asynccontextmanager
async def webmail_stack(
    tmp_path: Path,
    database_url: str,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    clock: Callable[[], datetime] | None = None,
    filing: Filing | None = None,
    filing_for: Callable[[Store], Filing] | None = None,
) -> AsyncIterator[WebStack]:
    """The webmail (see :class:`WebStack`); ``sections`` override settings; the pharmacy's
    domain is in the trust space (listed with the other operator's certificate)."""
    pki = session_pki()
    async with smtp_stack(
        tmp_path,
        database_url,
        sections=web_sections(**(sections or {})),
        listeners=(),
        whitelist={
            DEMO_DOMAIN: [pki.operator],
            CITIZEN_DOMAIN: [pki.operator],
            PHARMACY_DOMAIN: [pki.operator],
        },
    ) as smtp:
        outbox = tmp_path / "outbox"
        deps = WebmailDeps(
            store=smtp.store,
            config=WebmailConfig.from_settings(smtp.settings),
            facts=smtp.gateway.facts,
            submit=smtp.gateway.pipeline,
            relay=DevOutbox(outbox),
            filing=filing or (filing_for(smtp.store) if filing_for else None),
            clock=clock or utc_now,
        )
        yield WebStack(smtp, create_webmail_app(deps), outbox, deps)


async def login(
    client: httpx.AsyncClient,
    outbox: Path,
    identifier: str,
    password: str = DEMO_PASSWORD,
) -> None:
    """The whole login: password, then the code read from the dev outbox."""
    page = await client.get("/connexion")
    token = _JETON.search(page.text)
    assert token, page.text
    answer = await client.post(
        "/connexion",
        data={"jeton": token.group(1), "identifiant": identifier, "mot_de_passe": password},
    )
    assert answer.status_code == 303, answer.text
    page = await client.get("/connexion/code")
    answer = await client.post(
        "/connexion/code", data={"csrf": csrf_of(page.text), "code": latest_code(outbox)}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/messages", answer.text


def text_pdf(*lines: str) -> bytes:
    """A small valid PDF (one A4 page, Helvetica) showing ``lines``: what a browser's PDF
    viewer renders in the screenshots. Text is Latin-1 (WinAnsi) with PDF string escapes."""

    def escaped(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    commands = ["BT", "/F1 16 Tf", "72 770 Td", "20 TL"]
    commands += [f"({escaped(line)}) '" for line in lines]
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(output)
