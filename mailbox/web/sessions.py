"""Server-side sessions of the webmail (table ``webmail_sessions``).

A session is named by a random token (256 bits) held in an ``HttpOnly``, ``SameSite=Strict``
cookie (``Secure`` with the ``__Host-`` prefix unless configured off for plain-HTTP
development); the table keeps only the token's SHA-256. States:

- ``code``: the password was right; the session waits for the one-time code e-mailed to the
  citizen (its keyed digest, expiry, attempts and sends live in the row). It lasts at most
  :data:`PENDING_LIFETIME`.
- ``active``: logged in. Closed after ``webmail.session_idle`` without a request, or
  ``webmail.session_lifetime`` after login whatever happens (OWASP session management: idle and
  absolute time-outs).

The token changes at each step (password → code → active; :meth:`SessionStore.replace`), so a
token planted in a victim's browser before login never becomes a logged-in session (session
fixation, OWASP ASVS 3.2.1). Each session has its own CSRF token (synchronizer token pattern),
checked on every POST. Logout deletes the row.

The acting profile (``acting_as``: the holder, or a ward the holder is the guardian of, policy
P9) is part of the session; switching checks ``may_act_for``.

What this module must not do: render pages or check passwords.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from pli.mailbox.auth.service import AuthMethod, Principal
from pli.mailbox.store import Account, Store, Transaction
from pli.mailbox.store.accounts import account_from_row
from pli.mailbox.store.models import AccountRow

from .security import digest, new_token
from .tables import WebSessionRow

#: A login waiting for its one-time code is dropped after this (seconds).
PENDING_LIFETIME = 900.0
#: ``last_seen_at`` is written at most this often per session (seconds): a page view is not a
#: database write, and the idle time-out is exact to within this.
TOUCH_INTERVAL = 60.0
#: Longest ``remote`` kept (an IPv6 address with a port fits).
REMOTE_LENGTH = 64

CODE, ACTIVE = "code", "active"


@dataclass(frozen=True, slots=True)
class WebSession:
    token_hash: str
    account: Account  # who logged in
    acting_as: Account  # whose mailbox is shown (the holder, or a ward: policy P9)
    state: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    code_digest: str | None
    code_expires_at: datetime | None
    code_attempts: int
    code_sends: int

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def principal(self) -> Principal:
        """The submission pipeline's view: who acts, in which mailbox."""
        return Principal(
            account=self.account,
            method=AuthMethod.PASSWORD_OTP,
            acting_as=self.acting_as,
            detail="webmail",
        )

    @property
    def acting_for(self) -> str | None:
        """The ward's address when a guardian acts (the audit's ``acting_for``)."""
        return self.acting_as.address if self.acting_as.id != self.account.id else None


class SessionStore:
    def __init__(
        self,
        store: Store,
        *,
        idle: float,
        lifetime: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock

    async def create(
        self,
        account: Account,
        state: str,
        *,
        remote: str = "",
        code_digest: str | None = None,
        code_expires_at: datetime | None = None,
        code_sends: int = 0,
        tx: Transaction | None = None,
    ) -> str:
        """A new session; returns its token (for the cookie)."""
        token = new_token()
        now = self.clock()
        async with self.store.writing(tx) as tx:
            await tx.conn.execute(
                insert(WebSessionRow).values(
                    token_hash=digest(token),
                    account_id=account.id,
                    acting_as_id=account.id,
                    state=state,
                    csrf_token=new_token(),
                    created_at=now,
                    last_seen_at=now,
                    code_digest=code_digest,
                    code_expires_at=code_expires_at,
                    code_attempts=0,
                    code_sends=code_sends,
                    remote=remote[:REMOTE_LENGTH],
                )
            )
        return token

    async def replace(self, session: WebSession, state: str, *, remote: str = "") -> str:
        """End ``session`` and open a new one for the same person (a new token, a new CSRF
        token): the rotation at each login step."""
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                delete(WebSessionRow).where(WebSessionRow.token_hash == session.token_hash)
            )
            return await self.create(session.account, state, remote=remote, tx=tx)

    async def load(self, token: str | None) -> WebSession | None:
        """The live session of a cookie's token; an expired one is deleted and None returned."""
        if not token or len(token) > 128:
            return None
        token_hash = digest(token)
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(
                    select(WebSessionRow).where(WebSessionRow.token_hash == token_hash)
                )
            ).first()
            if row is None:
                return None
            accounts = {
                account.id: account_from_row(account)
                for account in (
                    await conn.execute(
                        select(AccountRow).where(
                            AccountRow.id.in_({row.account_id, row.acting_as_id})
                        )
                    )
                ).all()
            }
        now = self.clock()
        account = accounts.get(row.account_id)
        acting_as = accounts.get(row.acting_as_id)
        if account is None or acting_as is None or account.disabled or self._expired(row, now):
            await self.destroy(token_hash)
            return None
        if row.state == ACTIVE and now - row.last_seen_at >= timedelta(seconds=TOUCH_INTERVAL):
            await self._touch(token_hash, now)
        return WebSession(
            token_hash=token_hash,
            account=account,
            acting_as=acting_as,
            state=row.state,
            csrf_token=row.csrf_token,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            code_digest=row.code_digest,
            code_expires_at=row.code_expires_at,
            code_attempts=row.code_attempts,
            code_sends=row.code_sends,
        )

    def _expired(self, row: Any, now: datetime) -> bool:
        if row.state != ACTIVE:
            return now - row.created_at >= timedelta(seconds=PENDING_LIFETIME)
        return now - row.last_seen_at >= timedelta(seconds=self.idle) or (
            now - row.created_at >= timedelta(seconds=self.lifetime)
        )

    async def _touch(self, token_hash: str, now: datetime) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == token_hash)
                .values(last_seen_at=now)
            )

    async def destroy(self, token_hash: str) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                delete(WebSessionRow).where(WebSessionRow.token_hash == token_hash)
            )

    async def set_acting_as(self, session: WebSession, mailbox: Account) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == session.token_hash)
                .values(acting_as_id=mailbox.id)
            )

    async def set_code(self, session: WebSession, code_digest: str, expires_at: datetime) -> None:
        """A new code was sent: its digest and expiry, attempts reset, one more send."""
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == session.token_hash)
                .values(
                    code_digest=code_digest,
                    code_expires_at=expires_at,
                    code_attempts=0,
                    code_sends=WebSessionRow.code_sends + 1,
                )
            )

    async def count_attempt(self, session: WebSession) -> int:
        """One more wrong code; returns the attempts so far."""
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == session.token_hash)
                .values(code_attempts=WebSessionRow.code_attempts + 1)
            )
            attempts = await tx.conn.scalar(
                select(WebSessionRow.code_attempts).where(
                    WebSessionRow.token_hash == session.token_hash
                )
            )
        return int(attempts or 0)

    async def purge_expired(self) -> int:
        """Delete sessions past their time-outs; returns how many."""
        now = self.clock()
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                delete(WebSessionRow).where(
                    or_(
                        (WebSessionRow.state != ACTIVE)
                        & (WebSessionRow.created_at <= now - timedelta(seconds=PENDING_LIFETIME)),
                        WebSessionRow.last_seen_at <= now - timedelta(seconds=self.idle),
                        WebSessionRow.created_at <= now - timedelta(seconds=self.lifetime),
                    )
                )
            )
        return int(result.rowcount or 0)
