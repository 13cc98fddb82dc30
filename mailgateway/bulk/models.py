"""The bulk sender's tables, declared on the store's ``Base`` (migration
``mailbox/migrations/versions/0007_bulk.py``).

- ``bulk_campaigns``: one row per campaign: its id (explicit, or derived from its content), kind,
  sending mailbox and the structure it belongs to (for ``pli stats``), where its definition lives,
  its content hash, state, and the claim (``lease_owner``, ``lease_until``) of the process that
  runs it.
- ``bulk_rows``: one row per recipient line of the CSV, keyed by ``(campaign_id, row_key)``,
  with the Message-ID chosen for it before anything is sent, its state (the exactly-once state
  machine of ``ledger.py``), the refusal's reason and text, and what became of the message after
  the pipeline accepted it (``delivery``).

Tables only: no queries here. No health data is kept here beyond the recipient's address: the
names, birth dates and free fields stay in the establishment's CSV.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pli.mailbox.store.models import ADDRESS_LENGTH, MESSAGE_ID_LENGTH, Base, Id, UtcDateTime

from .limits import CAMPAIGN_ID_LENGTH, REASON_LENGTH, ROW_KEY_LENGTH


class CampaignRow(Base):
    __tablename__ = "bulk_campaigns"
    id: Mapped[str] = mapped_column(String(CAMPAIGN_ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    mailbox: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    structure_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(Text)  # the definition file (its directory holds the rest)
    content_hash: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(80))  # "cli" or "api:<client>"
    state: Mapped[str] = mapped_column(String(16))  # ready, finished, cancelled
    rows_total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CampaignRecipientRow(Base):
    __tablename__ = "bulk_rows"
    __table_args__ = (
        UniqueConstraint("campaign_id", "row_key"),
        Index("ix_bulk_rows_campaign_id_state", "campaign_id", "state"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("bulk_campaigns.id", ondelete="CASCADE"))
    row_key: Mapped[str] = mapped_column(String(ROW_KEY_LENGTH))
    line: Mapped[int] = mapped_column(Integer)  # the CSV line the row starts on
    recipient: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))  # "" when the INS is unusable
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending, submitting, submitted, refused, …
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH), default="")
    text: Mapped[str] = mapped_column(Text, default="")  # French, for the establishment
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # temporary refusals so far
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)  # retry of a deferral
    delivery: Mapped[str] = mapped_column(String(16), default="")  # delivered, deferred, bounced
    delivery_detail: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
