"""What the store's API returns: frozen dataclasses, independent of SQLAlchemy.

Front ends (IMAP, webmail, SMTP, policy facts) only see these types and plain values; rows and
sessions never leave the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from .flags import flag_names


class AccountKind(StrEnum):
    """Professional BAL types of the national directory (mssante.md §3) and citizens."""

    PER = "PER"  # nominative: one professional (RPPS)
    ORG = "ORG"  # organisational: a secretariat, a service (structure id); has members
    APP = "APP"  # applicative: software sending automatically (certificate); may be no-reply
    CITIZEN = "CIT"  # <INS>@patient.mssante.fr


class ProfileStatus(StrEnum):
    """A citizen's Mon espace santé profile (policy P1: only open receives)."""

    OPEN = "open"
    OPPOSED = "opposed"
    CLOSED = "closed"


class SpecialUse(StrEnum):
    """RFC 6154 roles of the default folders."""

    SENT = "\\Sent"
    DRAFTS = "\\Drafts"
    TRASH = "\\Trash"
    ARCHIVE = "\\Archive"
    JUNK = "\\Junk"


class CredentialKind(StrEnum):
    PASSWORD = "password"  # noqa: S105 (a kind, not a secret)
    TOTP = "totp"
    CERTIFICATE = "certificate"
    OAUTH = "oauth"


class ConversationState(StrEnum):
    OPEN = "open"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    kind: AccountKind
    display_name: str
    rpps: str | None = None
    structure_id: str | None = None
    profession: str | None = None
    no_reply: bool = False
    ins: str | None = None
    profile_status: ProfileStatus | None = None
    notification_address: str | None = None
    disabled: bool = False
    created_at: datetime | None = None
    last_login_at: datetime | None = None

    @property
    def is_citizen(self) -> bool:
        return self.kind is AccountKind.CITIZEN


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """What a TLS client certificate says about its holder (any may be None except one)."""

    dn: str | None = None
    rpps: str | None = None
    structure_id: str | None = None
    fingerprint: str | None = None  # SHA-256 of the DER, lowercase hex


@dataclass(frozen=True, slots=True)
class Credentials:
    """The authentication means an account accepts (secrets are not exposed)."""

    has_password: bool
    has_totp: bool
    certificates: tuple[CertificateIdentity, ...]
    oauth_subjects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Guardian:
    account: Account
    relationship: str  # "parent" or "caregiver"


@dataclass(frozen=True, slots=True)
class Folder:
    """An IMAP mailbox. ``name`` uses '/' as hierarchy delimiter; INBOX is always "INBOX"."""

    id: int
    account_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    noselect: bool
    has_children: bool = False
    first_recent_uid: int = 1  # IMAP \Recent: UIDs from here on were seen by no session yet


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """SELECT/STATUS figures (RFC 9051 §6.3.1, §6.3.11; RFC 7162 HIGHESTMODSEQ)."""

    folder: Folder
    exists: int
    unseen: int
    first_unseen_uid: int | None
    deleted: int
    size: int
    recent: int = 0  # messages no session has seen yet (IMAP \Recent, STATUS RECENT)


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What FETCH needs without reading the message file.

    ``envelope`` and ``structure`` are the JSON documents of :mod:`pli.mailbox.mime.envelope` and
    :mod:`pli.mailbox.mime.structure` (None when not asked for)."""

    id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: datetime
    size: int
    blob_id: str
    envelope: list[Any] | None = None
    structure: dict[str, Any] | None = None

    @staticmethod
    def from_row(row: Any, *, envelope: bool, structure: bool) -> MessageMeta:
        return MessageMeta(
            id=row.id,
            uid=row.uid,
            modseq=row.modseq,
            flags=flag_names(row.flags, row.keywords),
            internal_date=datetime.fromtimestamp(row.internal_date, UTC),
            size=row.size,
            blob_id=row.blob_id,
            envelope=json.loads(row.envelope) if envelope else None,
            structure=json.loads(row.structure) if structure else None,
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """A folder as IMAP SELECT opens it (``messages.selection``): its row, every UID in order,
    the first unseen UID (None: all seen)."""

    folder: Folder
    uids: list[int]
    first_unseen_uid: int | None


class MessageRowData(NamedTuple):
    """A message's metadata as plain values, for bulk readers (``messages.fetch_rows``):
    ``internal_date`` in epoch seconds (UTC), ``envelope``/``structure`` the cache's JSON text
    (None when not asked for)."""

    id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: int
    size: int
    blob_id: str
    envelope: str | None
    structure: str | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """One recipient's copy of a delivered or appended message."""

    account_id: int
    folder_id: int
    uidvalidity: int
    uid: int
    message_id: int  # the row id (not the Message-ID header)
    blob_id: str


@dataclass(frozen=True, slots=True)
class FlagChange:
    uid: int
    flags: tuple[str, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Result of a STORE: the changed messages and, with UNCHANGEDSINCE, the UIDs whose MODSEQ was
    higher (RFC 7162 §3.1.3: reported in the MODIFIED response code)."""

    changed: tuple[FlagChange, ...]
    failed: tuple[int, ...]
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """COPYUID (RFC 4315 §3): destination UIDVALIDITY and (source UID, destination UID) pairs in
    source UID order."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]
    expunged: tuple[int, ...] = ()  # MOVE: the source UIDs removed


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a folder since a MODSEQ (RFC 7162 CONDSTORE/QRESYNC)."""

    highestmodseq: int
    changed: tuple[FlagChange, ...]
    vanished: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A professional mailbox, ours (``local``) or another operator's."""

    address: str
    bal_type: str
    display_name: str
    profession: str | None = None
    rpps: str | None = None
    structure_id: str | None = None
    structure_name: str | None = None
    pharmacy: bool = False
    no_reply: bool = False
    local: bool = False


@dataclass(frozen=True, slots=True)
class Conversation:
    """The state of the exchange between a professional mailbox and a citizen (policy P2, P4)."""

    id: int
    professional: str
    ins: str
    state: ConversationState
    opened_at: datetime
    last_professional_at: datetime | None
    last_citizen_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    ended_message_id: str | None
    reopened_at: datetime | None

    @property
    def professional_has_written(self) -> bool:
        return self.last_professional_at is not None

    @property
    def is_open(self) -> bool:
        return self.state is ConversationState.OPEN


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    acting_for: str | None
    mailbox: str | None
    action: str
    request: str
    result: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """``ok`` when every link holds; else ``broken_at`` is the id of the first bad record."""

    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A message as the webmail lists it (decoded, for people)."""

    folder_id: int
    uid: int
    message_row_id: int
    subject: str
    sender_address: str
    sender_name: str
    internal_date: datetime
    seen: bool
    flags: tuple[str, ...]
    size: int
    attachments: tuple[Any, ...] = field(default=())
