"""The queue's tables, declared on the store's ``Base`` (migration
``mailbox/migrations/versions/0003_outbound_queue.py``).

``queue_messages``: one row per queued message (its file, envelope and DSN parameters, its
Message-ID, when it expires, whether a delay report was sent). ``queue_recipients``: one row per
recipient (status, priority, attempts, when to try next, the last reply), so that every recipient
has its own result.

Priority (migration ``0007_bulk``): interactive mail is :data:`PRIORITY_INTERACTIVE`; a message
marked ``Precedence: bulk`` (the bulk sender's campaigns, RFC 2076 §3.9) is
:data:`PRIORITY_BULK`, attempted after every due interactive recipient (docs/bulk.md, fairness).

Tables only: no queries here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pli.mailbox.store.models import ADDRESS_LENGTH, MESSAGE_ID_LENGTH, Base, Id, UtcDateTime

#: Recipient states: waiting for (another) attempt, accepted by the next hop or delivered here,
#: given up (a failure report was due).
QUEUED, SENT, FAILED = "queued", "sent", "failed"
#: Lease order: lower first. Interactive mail (people, reports) before campaigns.
PRIORITY_INTERACTIVE, PRIORITY_BULK = 0, 10


class QueuedMessageRow(Base):
    __tablename__ = "queue_messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    blob_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))  # "" for the null path
    envid: Mapped[str | None] = mapped_column(String(100))
    ret: Mapped[str | None] = mapped_column(String(4))
    eight_bit: Mapped[bool] = mapped_column(Boolean, default=False)
    smtputf8: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger)
    origin: Mapped[str] = mapped_column(String(32))  # submission, relay, dsn
    received_from: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delay_reported: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Message-ID field's identifier (without <>), "" when absent: the bulk sender looks its
    # campaign messages up by it after a crash.
    message_id: Mapped[str] = mapped_column(
        String(MESSAGE_ID_LENGTH), default="", server_default="", index=True
    )


class QueuedRecipientRow(Base):
    __tablename__ = "queue_recipients"
    __table_args__ = (
        Index(
            "ix_queue_recipients_status_priority_next_attempt_at",
            "status",
            "priority",
            "next_attempt_at",
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("queue_messages.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    domain: Mapped[str] = mapped_column(String(255))
    notify: Mapped[str | None] = mapped_column(String(32))  # "SUCCESS,FAILURE" / "NEVER" / None
    orcpt: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    last_status: Mapped[str] = mapped_column(String(16), default="")
    remote_mta: Mapped[str] = mapped_column(String(255), default="")
