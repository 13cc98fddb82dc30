"""The webmail's tables (on the store's :class:`Base`; created by migration 0004).

- ``webmail_sessions``: server-side sessions. The cookie holds a random token; the table holds
  only its SHA-256 (a copy of the table opens no session). A session is first waiting for the
  e-mailed one-time code (``state = "code"``, with the code's keyed digest, expiry, attempts and
  sends), then ``active`` under a new token (session fixation: the token changes at each step).
- ``webmail_read_receipts``: one row per (mailbox, message) whose read receipt was sent or
  declined (RFC 8098 §2.1: at most one MDN per message and disposition).

Declarations only: no queries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pli.mailbox.store.models import ADDRESS_LENGTH, Base, Id, UtcDateTime

#: Hex SHA-256 length: session token hashes, code digests, message keys.
DIGEST_LENGTH = 64


class WebSessionRow(Base):
    __tablename__ = "webmail_sessions"
    token_hash: Mapped[str] = mapped_column(String(DIGEST_LENGTH), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    acting_as_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(8))
    csrf_token: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    code_digest: Mapped[str | None] = mapped_column(String(DIGEST_LENGTH))
    code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    code_sends: Mapped[int] = mapped_column(Integer, default=0)
    remote: Mapped[str] = mapped_column(String(64), default="")


class ReadReceiptRow(Base):
    __tablename__ = "webmail_read_receipts"
    __table_args__ = (UniqueConstraint("account_id", "message_key"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    state: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
