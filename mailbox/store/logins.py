"""Failed logins within the lockout window, shared by every process (``auth.lockout_duration``).

With several SMTP worker processes, IMAP and the webmail each holding their own counter, an
attacker would get ``failures_before_lockout`` tries per process, and a restart would forgive
everything; Dovecot's ``anvil`` keeps its auth penalties in one process for the same reason.
Here the database is the one place: a failure is a row, a lockout check counts the rows of one
key since the window's start, a success deletes them. Recording a failure also forgets every
row older than the window, so the table holds at most one window of failures.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select

from .models import ADDRESS_LENGTH, LoginFailureRow

if TYPE_CHECKING:
    from .service import Store, Transaction


def failure_key(key: str) -> str:
    """The stored key: a user name is the client's text, so it is cut to the column's size (a
    longer one names no mailbox; such keys share a row set, which only locks them sooner)."""
    return key[:ADDRESS_LENGTH]


class LoginFailures:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def count(self, key: str, since: datetime) -> int:
        """The failures of ``key`` at or after ``since``."""
        async with self.store.db.read() as conn:
            query = select(func.count()).where(
                LoginFailureRow.key == failure_key(key), LoginFailureRow.at >= since
            )
            return int((await conn.execute(query)).scalar_one())

    async def record(
        self, key: str, at: datetime, *, forget_before: datetime, tx: Transaction | None = None
    ) -> None:
        """One more failure of ``key``; every row older than ``forget_before`` goes."""
        async with self.store.writing(tx) as tx:
            await tx.conn.execute(delete(LoginFailureRow).where(LoginFailureRow.at < forget_before))
            await tx.conn.execute(insert(LoginFailureRow).values(key=failure_key(key), at=at))

    async def clear(self, key: str, *, tx: Transaction | None = None) -> int:
        """A success, or an operator's unlock: the failures of ``key`` are forgiven (how many)."""
        async with self.store.writing(tx) as tx:
            result = await tx.conn.execute(
                delete(LoginFailureRow).where(LoginFailureRow.key == failure_key(key))
            )
        return int(result.rowcount)
