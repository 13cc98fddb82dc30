"""What every command handler of a session shares: the session's state, its output, the shared
services of the listener, and the one way a command fails.

Handlers (``auth``, ``mailboxes``, ``selection``, ``fetching``, ``searching``, ``changes``) are
functions of a :class:`SessionState` and a typed command; they write untagged responses to
``state.out`` and return a :class:`Reply` (the tagged status) or raise :class:`CommandFailed`.
The dispatcher (:mod:`.session`) writes the tagged response.

Must not: parse bytes (the core does) or touch sockets (the adapter does).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

from pli.mailbox.auth.service import Authenticator, Principal
from pli.mailbox.store import Store, Subscription

from .. import response
from ..connection import ImapConnection
from ..errors import Status
from ..limits import Limits
from .rendering import RenderCache

if TYPE_CHECKING:
    from pli.certs.verify import TrustStore

    from .auth import SaslInProgress
    from .namespaces import MailboxRef, Namespaces
    from .view import SelectedView

#: Octets of responses buffered before the session waits for the client to take them (a FETCH
#: of a whole mailbox's bodies is streamed, never built in memory).
OUTPUT_HIGH_WATER: Final = 256 * 1024


class Output(Protocol):
    """Where a session writes: the adapter's transport (or a test's buffer)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class Reply(NamedTuple):
    status: Status
    text: str
    code: str | None = None


class CommandFailed(Exception):
    """A command answered NO or BAD; ``text`` is safe to send."""

    def __init__(self, status: Status, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.reply = Reply(status, text, code)


def no(text: str, code: str | None = None) -> CommandFailed:
    return CommandFailed("NO", text, code)


def bad(text: str, code: str | None = None) -> CommandFailed:
    return CommandFailed("BAD", text, code)


class SessionRegistry:
    """Sessions per authenticated account in this process (``limits.imap_sessions_per_account``)
    and every live session, so that a shutdown can say goodbye."""

    def __init__(self, per_account: int) -> None:
        self.per_account = per_account
        self._counts: Counter[int] = Counter()

    def acquire(self, account_id: int) -> bool:
        if self._counts[account_id] >= self.per_account:
            return False
        self._counts[account_id] += 1
        return True

    def release(self, account_id: int) -> None:
        self._counts[account_id] -= 1
        if self._counts[account_id] <= 0:
            del self._counts[account_id]

    def count(self, account_id: int) -> int:
        return self._counts[account_id]


@dataclass
class SessionServices:
    """Shared by every session of a listener."""

    store: Store
    authenticator: Authenticator
    limits: Limits
    trust: TrustStore | None = None  # verifies client certificates (SASL EXTERNAL)
    bearer_enabled: bool = False  # an OAUTHBEARER issuer is configured
    hostname: str = "localhost"
    render_cache: RenderCache = field(default_factory=RenderCache)
    registry: SessionRegistry = field(default_factory=lambda: SessionRegistry(20))


class BufferedOutput:
    """An :class:`Output` that collects what is written (tests, and the adapter's buffer)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def take(self) -> bytes:
        taken = bytes(self.data)
        self.data.clear()
        return taken


@dataclass
class SessionState:
    services: SessionServices
    conn: ImapConnection
    out: Output
    remote: str = ""
    principal: Principal | None = None
    namespaces: Namespaces | None = None
    view: SelectedView | None = None
    subscription: Subscription | None = None
    condstore: bool = False
    tls_peer_certificate: bool = False  # the client presented a certificate (AUTH=EXTERNAL)
    ssl_object: ssl.SSLObject | None = None
    sasl: SaslInProgress | None = None
    auth_failures: int = 0
    pending_output: int = 0

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def authenticated(self) -> Principal:
        if self.principal is None or self.namespaces is None:
            raise no("not authenticated")
        return self.principal

    @property
    def names(self) -> Namespaces:
        if self.namespaces is None:
            raise no("not authenticated")
        return self.namespaces

    @property
    def selected(self) -> SelectedView:
        if self.view is None:
            raise bad("No mailbox selected")
        return self.view

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 §3.1): from now on FETCH responses carry
        MODSEQ; enabled while a mailbox is selected, its HIGHESTMODSEQ is announced at once."""
        if self.condstore:
            return
        self.condstore = True
        if self.view is not None:
            self.out.write(response.untagged("OK", "Highest", f"HIGHESTMODSEQ {self.view.modseq}"))

    async def write(self, data: bytes) -> None:
        """Write, and let the client catch up past :data:`OUTPUT_HIGH_WATER`."""
        self.out.write(data)
        self.pending_output += len(data)
        if self.pending_output >= OUTPUT_HIGH_WATER:
            self.pending_output = 0
            await self.out.drain()

    async def audit(self, ref: MailboxRef, action: str, request: str, result: str = "ok") -> None:
        """Every action in another's mailbox is recorded with ``acting_for`` (policy P9,
        mssante.md: the audit trail of a mailbox says who acted)."""
        if not ref.foreign:
            return
        principal = self.authenticated
        await self.store.audit.record(
            principal.account.address,
            action,
            mailbox=ref.owner.address,
            acting_for=ref.owner.address,
            request=request,
            result=result,
        )
