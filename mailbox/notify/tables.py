"""The notifier's tables (on the store's :class:`Base`; created by migration 0004).

- ``notify_watermark``: one row, the message row id up to which new mail has been looked at.
- ``notify_folders``: per citizen INBOX, the highest UID already counted (a message looked at
  twice, after a restart or a re-scan, is counted once).
- ``notify_recipients``: per notification address (a citizen's, a guardian's: a family often
  shares one), whether new mail waits to be announced (``pending_since``) and when the last
  e-mail went (the throttle).
- ``notify_outbox``: e-mails decided and not yet handed to the relay, with their retry state.

Declarations only: no queries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pli.mailbox.store.models import ADDRESS_LENGTH, Base, Id, UtcDateTime

#: Characters of a relay error kept (for operators; never shown to citizens).
ERROR_LENGTH = 255


class NotifyWatermarkRow(Base):
    __tablename__ = "notify_watermark"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_message_id: Mapped[int] = mapped_column(BigInteger, default=0)


class NotifyFolderRow(Base):
    __tablename__ = "notify_folders"
    folder_id: Mapped[int] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True
    )
    seen_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class NotifyRecipientRow(Base):
    __tablename__ = "notify_recipients"
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    pending_since: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NotifyOutboxRow(Base):
    __tablename__ = "notify_outbox"
    __table_args__ = (Index("ix_notify_outbox_due", "sent_at", "failed_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(String(ERROR_LENGTH), default="")
