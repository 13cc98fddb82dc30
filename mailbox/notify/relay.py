"""Handing an e-mail to the outbound relay of notifications (``notifications.relay``).

- ``dev-outbox``: each e-mail becomes one file ``<key>.eml`` in ``notifications.outbox_dir``
  (written atomically, mode 0600: login codes are secrets). Writing the same key twice replaces
  the file, so a notification re-sent after a crash is never seen twice. ``pli outbox show``
  prints them; nothing leaves the machine.
- ``smtp://[user:password@]host[:port]``: SMTP with STARTTLS when the relay offers it;
  ``smtps://…``: implicit TLS (RFC 8314). Certificates are verified against the system's CAs.

A failure raises :class:`RelayError`, ``temporary`` when trying again may help (connection
failed, timeout, 4xx), permanent for a 5xx refusal. This module builds no message text.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from pli.certs.files import write_atomic
from pli.config.schema import Settings

log = structlog.get_logger(__name__)

DEV_OUTBOX = "dev-outbox"
#: Default ports: RFC 6409 §3.1 (submission, 587) and RFC 8314 §3.3 (implicit TLS, 465).
SMTP_DEFAULT_PORT = 587
SMTPS_DEFAULT_PORT = 465
#: A key names an outbox file: letters, digits, dot, dash, underscore only (no path).
_KEY = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: Outbox files are private: a login code is a secret (owner read/write only).
OUTBOX_FILE_MODE = 0o600


class RelayError(Exception):
    def __init__(self, detail: str, *, temporary: bool) -> None:
        super().__init__(detail)
        self.temporary = temporary


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One e-mail for one address. ``key`` identifies it (the dev outbox's file name)."""

    key: str
    sender: str
    recipient: str
    raw: bytes


class Relay(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Hand the e-mail over; raise RelayError on failure."""

    def describe(self) -> str:
        """Where e-mails go, for logs and start-up messages (never a password)."""


class DevOutbox:
    """Files in a directory: the development relay."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, mail: OutgoingMail) -> None:
        if not _KEY.match(mail.key):
            raise RelayError(f"invalid outbox key {mail.key!r}", temporary=False)
        path = self.directory / f"{mail.key}.eml"
        try:
            await asyncio.to_thread(write_atomic, path, mail.raw, mode=OUTBOX_FILE_MODE)
        except OSError as error:
            raise RelayError(f"dev outbox: {error.strerror or error}", temporary=True) from None
        log.info("dev-outbox", path=str(path), recipient=mail.recipient)

    def describe(self) -> str:
        return f"dev outbox {self.directory}"

    def files(self) -> list[Path]:
        """The outbox's e-mails, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [path for path in self.directory.iterdir() if path.suffix == ".eml"]
        return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name))


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None


def parse_relay_url(url: str) -> SmtpTarget:
    """``smtp://`` or ``smtps://`` URL → target; ValueError with a readable reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"expected {DEV_OUTBOX!r}, smtp://host:port or smtps://host:port")
    if not parts.hostname:
        raise ValueError("the relay URL names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the relay URL takes no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the relay URL's port is not a number from 0 to 65535") from None
    implicit = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=port or (SMTPS_DEFAULT_PORT if implicit else SMTP_DEFAULT_PORT),
        implicit_tls=implicit,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpRelay:
    def __init__(self, target: SmtpTarget, *, timeout: float, local_hostname: str) -> None:
        self.target = target
        self.timeout = timeout
        self.local_hostname = local_hostname

    async def send(self, mail: OutgoingMail) -> None:
        target = self.target
        try:
            await aiosmtplib.send(
                mail.raw,
                sender=mail.sender,
                recipients=[mail.recipient],
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.implicit_tls,
                start_tls=None if not target.implicit_tls else False,
                timeout=self.timeout,
                local_hostname=self.local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            raise RelayError(
                f"relay refused the recipient {codes}", temporary=not permanent
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise RelayError(
                f"relay answered {error.code}", temporary=not 500 <= error.code < 600
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise RelayError(f"relay unreachable: {type(error).__name__}", temporary=True) from None

    def describe(self) -> str:
        scheme = "smtps" if self.target.implicit_tls else "smtp"
        return f"{scheme}://{self.target.host}:{self.target.port}"


def relay_from_settings(settings: Settings) -> Relay:
    """The relay ``notifications.relay`` names (ValueError if it names none)."""
    section = settings.notifications
    if section.relay == DEV_OUTBOX:
        return DevOutbox(settings.server.data_dir / section.outbox_dir)
    return SmtpRelay(
        parse_relay_url(section.relay),
        timeout=section.relay_timeout,
        local_hostname=settings.server.hostname,
    )


def outbox_key(prefix: str, identifier: int | str) -> str:
    """A file-safe key: ``prefix-identifier`` (identifier digits/letters only)."""
    text = re.sub(r"[^A-Za-z0-9]", "", str(identifier))[:64] or os.urandom(8).hex()
    return f"{prefix}-{text}"
