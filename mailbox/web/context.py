"""What the webmail is given by the process wiring, and the settings it reads.

:class:`WebmailDeps` gathers the store, the policy facts (``pli.mailbox.policyfacts``), the
submission pipeline (a ``pli.mailbox.submit.Submitter``), the filing service (optional: the
"save to my documents" button is hidden without it), the relay that carries login codes, the
settings and a clock. Tests inject the same things with a fake clock.

This module holds types only: no routes, no queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pli.config.schema import Settings
from pli.mailbox.notify.relay import Relay
from pli.mailbox.policyfacts import PolicyFacts
from pli.mailbox.store import Account, Store
from pli.mailbox.submit import Submitter


class FilingView(Protocol):
    """One filing as the citizen sees it: the attachment (IMAP section), its state
    (``pending``, ``filed``, ``failed``) and a French sentence."""

    @property
    def part(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def text(self) -> str: ...


class Filing(Protocol):
    """The filing client (``mailbox/filing``) as the webmail calls it."""

    async def request(
        self, citizen: Account, folder_id: int, uid: int, part: str, *, actor: Account
    ) -> FilingView:
        """File this attachment into the citizen's documents (idempotent: asking twice files
        once); returns its state. Raises ``StoreUserError`` for a part that cannot be filed."""
        ...

    async def states(self, citizen: Account, folder_id: int, uid: int) -> Sequence[FilingView]:
        """The filings of this message's attachments."""
        ...


@dataclass(frozen=True, slots=True)
class WebmailConfig:
    """The settings the webmail reads, resolved once."""

    public_url: str
    secure_cookies: bool
    session_idle: float
    session_lifetime: float
    code_lifetime: float
    code_digits: int
    code_attempts: int
    code_sends: int
    failures_before_lockout: int
    lockout_duration: float
    read_receipts: str
    upload_size: int
    message_size: int
    page_size: int
    secret_file: Path
    citizen_domain: str
    hostname: str
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> WebmailConfig:
        web, auth = settings.webmail, settings.auth
        return cls(
            public_url=web.public_url,
            secure_cookies=web.secure_cookies,
            session_idle=web.session_idle,
            session_lifetime=web.session_lifetime,
            code_lifetime=auth.otp_lifetime,
            code_digits=auth.otp_digits,
            code_attempts=web.code_attempts,
            code_sends=web.code_sends,
            failures_before_lockout=auth.failures_before_lockout,
            lockout_duration=auth.lockout_duration,
            read_receipts=web.read_receipts,
            upload_size=web.upload_size,
            message_size=settings.limits.message_size,
            page_size=web.page_size,
            secret_file=settings.server.data_dir / web.secret_file,
            citizen_domain=settings.domains.citizen,
            hostname=settings.server.hostname,
            sender=settings.notifications.sender,
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebmailDeps:
    store: Store
    config: WebmailConfig
    facts: PolicyFacts
    submit: Submitter
    relay: Relay
    filing: Filing | None = None
    clock: Callable[[], datetime] = field(default=utc_now)


def webmail_deps(
    settings: Settings, store: Store, facts: PolicyFacts, submit: Submitter
) -> WebmailDeps:
    """The webmail of ``pli serve``: the notification relay carries login codes, the filing
    client files attachments (its worker runs as its own service)."""
    from pli.mailbox.notify.relay import relay_from_settings

    from .documents import StoreFiling

    return WebmailDeps(
        store=store,
        config=WebmailConfig.from_settings(settings),
        facts=facts,
        submit=submit,
        relay=relay_from_settings(settings),
        filing=StoreFiling(store),
    )
