"""The database schema of the mail store (SQLAlchemy 2 declarative models).

The same models serve SQLite and PostgreSQL; Alembic migrations in ``mailbox/migrations`` create
them (a test checks that autogenerate finds no difference). Times are integer seconds since the
epoch (UTC) where the IMAP server reads them in bulk (fast, portable comparisons), aware
datetimes elsewhere. Other subsystems may add tables: declare them on :class:`Base` and add a
migration (see docs/store.md).

This module declares tables only: no queries, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names the same on every backend (Alembic batch mode on SQLite needs them).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: An integer primary key: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

ADDRESS_LENGTH = 320  # RFC 5321 §4.5.3.1: 64-octet local part + '@' + 255-octet domain
MESSAGE_ID_LENGTH = 998  # RFC 5322 §2.1.1: a header line's limit bounds one identifier
FOLDER_NAME_LENGTH = 1024  # longest folder path accepted (mox and Dovecot use similar bounds)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive-UTC (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AccountRow(Base):
    """A mailbox owner: a professional BAL (PER, ORG, APP) or a citizen (CIT)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    rpps: Mapped[str | None] = mapped_column(String(32), index=True)
    structure_id: Mapped[str | None] = mapped_column(String(64))
    profession: Mapped[str | None] = mapped_column(String(255))
    no_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    ins: Mapped[str | None] = mapped_column(String(15), unique=True)
    profile_status: Mapped[str | None] = mapped_column(String(8))
    notification_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)


class CredentialRow(Base):
    """One authentication means an account accepts (password, TOTP, certificate, OAuth)."""

    __tablename__ = "credentials"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    totp_secret: Mapped[str | None] = mapped_column(String(128))
    totp_last_counter: Mapped[int] = mapped_column(BigInteger, default=-1)
    cert_dn: Mapped[str | None] = mapped_column(Text)
    cert_rpps: Mapped[str | None] = mapped_column(String(32))
    cert_structure_id: Mapped[str | None] = mapped_column(String(64))
    cert_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    oauth_subject: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MembershipRow(Base):
    """A person account that may act in an ORG mailbox."""

    __tablename__ = "memberships"
    org_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GuardianshipRow(Base):
    """A guardian (parent, caregiver) acting in a citizen's profile (policy P9)."""

    __tablename__ = "guardianships"
    ward_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    guardian_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    relationship: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FolderRow(Base):
    """An IMAP mailbox (called folder here to avoid the clash with 'mailbox' = account)."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(FOLDER_NAME_LENGTH))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1)
    highestmodseq: Mapped[int] = mapped_column(BigInteger, default=1)
    special_use: Mapped[str | None] = mapped_column(String(16))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    noselect: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # IMAP \Recent (RFC 3501 §2.3.2): messages from this UID on were seen by no session yet;
    # the first session to select the folder read-write claims them (folders.claim_recent).
    first_recent_uid: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")


class LostSubscriptionRow(Base):
    """A subscription that outlived its folder: RFC 3501 §6.3.6, a server MUST NOT remove a
    name from the subscription list because its mailbox no longer exists. Re-creating the
    folder makes it subscribed again; unsubscribing removes the row."""

    __tablename__ = "lost_subscriptions"
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(FOLDER_NAME_LENGTH), primary_key=True)


class LoginFailureRow(Base):
    """One failed authentication, kept for the lockout window (``logins.py``): in the database
    so that every process of the server, and the next one after a restart, counts it."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class MessageRow(Base):
    """A message in a folder: IMAP metadata, the blob holding its bytes, the parse cache."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_messages_folder_id_modseq", "folder_id", "modseq"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
    blob_id: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    internal_date: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    keywords: Mapped[str] = mapped_column(Text, default="")
    envelope: Mapped[str] = mapped_column(Text)
    structure: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_text: Mapped[str] = mapped_column(Text, default="")
    to_text: Mapped[str] = mapped_column(Text, default="")
    cc_text: Mapped[str] = mapped_column(Text, default="")
    bcc_text: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), default="", index=True)
    in_reply_to: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), default="")
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    # The calendar date written in the Date: header, in its own zone (days since 1970-01-01):
    # SEARCH SENTBEFORE/SENTON/SENTSINCE disregard time and zone (RFC 3501 §6.4.4).
    sent_day: Mapped[int | None] = mapped_column(Integer)


class ExpungedRow(Base):
    """A tombstone: this UID was expunged at this MODSEQ (RFC 7162 §3.2.10 VANISHED)."""

    __tablename__ = "expunged"
    __table_args__ = (Index("ix_expunged_folder_id_modseq", "folder_id", "modseq"),)
    folder_id: Mapped[int] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True
    )
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    modseq: Mapped[int] = mapped_column(BigInteger)


class DirectoryEntryRow(Base):
    """A professional mailbox of the national directory (ours or another operator's)."""

    __tablename__ = "directory_entries"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), unique=True)
    bal_type: Mapped[str] = mapped_column(String(8))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    profession: Mapped[str | None] = mapped_column(String(255))
    rpps: Mapped[str | None] = mapped_column(String(32))
    structure_id: Mapped[str | None] = mapped_column(String(64), index=True)
    structure_name: Mapped[str | None] = mapped_column(String(255))
    pharmacy: Mapped[bool] = mapped_column(Boolean, default=False)
    no_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DispensationRow(Base):
    """A reimbursed dispensation of a citizen at a pharmacy (policy P3)."""

    __tablename__ = "dispensations"
    __table_args__ = (
        UniqueConstraint("ins", "pharmacy", "dispensed_on"),
        Index("ix_dispensations_ins_pharmacy", "ins", "pharmacy"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ins: Mapped[str] = mapped_column(String(15))
    pharmacy: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    dispensed_on: Mapped[datetime] = mapped_column(UtcDateTime)


class ConversationRow(Base):
    """The exchange between one professional mailbox and one citizen (policy P2, P4)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("professional", "ins"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    professional: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    ins: Mapped[str] = mapped_column(String(15), index=True)
    state: Mapped[str] = mapped_column(String(8))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_professional_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_citizen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    ended_message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_LENGTH))
    reopened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ThreadMessageRow(Base):
    """A Message-ID that belongs to a conversation (threading by In-Reply-To/References)."""

    __tablename__ = "thread_messages"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), primary_key=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditRecordRow(Base):
    """One audit record, chained to the previous one by hash (never message content)."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_mailbox_at", "mailbox", "at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    acting_for: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    mailbox: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    request: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainRow(Base):
    """The single row that serialises audit writers and anchors the chain after a purge."""

    __tablename__ = "audit_chain"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    purged: Mapped[int] = mapped_column(BigInteger, default=0)
