"""The filing client's tables, declared on the mail store's ``Base`` (migration
``mailbox/migrations/versions/0005_filing.py``).

- ``filing_requests``: the durable outbox. One row per attachment a citizen's document store
  should receive (per citizen account, source message and MIME part: the unique
  ``source_key``), whoever asked (the citizen, a guardian, an automatic rule). Its state is what
  the citizen sees; the lease columns (``locked_until``, ``locked_by``) let several workers share
  the outbox without sending one row twice at the same time.
- ``filing_marks``: for each citizen INBOX, the next UID the automatic rules have not looked at
  yet (UIDs grow in commit order: a per-folder mark misses nothing, see ``scanner.py``).
- ``filing_scan_state``: one row, when the rules first ran (messages of folders older than that
  are not filed retroactively).

Tables only: no queries here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pli.mailbox.store.models import MESSAGE_ID_LENGTH, Base, Id, UtcDateTime

from .limits import (
    ACTOR_ID_LENGTH,
    PART_PATH_LENGTH,
    REASON_LENGTH,
    SOURCE_ID_LENGTH,
)


class FilingRequestRow(Base):
    """One attachment to file into one citizen's document store, and how it went."""

    __tablename__ = "filing_requests"
    __table_args__ = (
        UniqueConstraint("account_id", "source_key"),
        Index("ix_filing_requests_account_id_source_hash", "account_id", "source_hash"),
        Index("ix_filing_requests_state_next_attempt_at", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    ins: Mapped[str] = mapped_column(String(15))
    # sha256 hex of (source_id, part): the unique name of "this attachment of this message"
    source_key: Mapped[str] = mapped_column(String(64))
    # the message's Message-ID, or "blob:<id>" when it has none, and its sha256 hex (indexed:
    # a Message-ID may be too long for an index entry)
    source_id: Mapped[str] = mapped_column(String(SOURCE_ID_LENGTH))
    source_hash: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), default="")
    blob_id: Mapped[str] = mapped_column(String(64))
    part: Mapped[str] = mapped_column(String(PART_PATH_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))  # "attachment" or "ihe-xdm"
    actor_kind: Mapped[str] = mapped_column(String(16))  # citizen-request, guardian, rule
    actor_id: Mapped[str] = mapped_column(String(ACTOR_ID_LENGTH))
    state: Mapped[str] = mapped_column(String(8))  # pending, filed, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    key_generation: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    detail: Mapped[str] = mapped_column(Text, default="")  # for operators, never for citizens
    last_error: Mapped[str] = mapped_column(Text, default="")  # the last temporary failure
    results: Mapped[str] = mapped_column(Text, default="[]")  # JSON: one object per document
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    filed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class FilingMarkRow(Base):
    """The next UID of a citizen INBOX the automatic rules have not examined."""

    __tablename__ = "filing_marks"
    folder_id: Mapped[int] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True
    )
    next_uid: Mapped[int] = mapped_column(BigInteger)


class FilingScanStateRow(Base):
    """The single row saying since when the automatic rules run."""

    __tablename__ = "filing_scan_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
