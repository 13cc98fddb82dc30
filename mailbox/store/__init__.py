"""The mail store: accounts, folders, messages (files + index), directory, conversations, audit,
change feed. Every front end (IMAP, webmail, SMTP, policy facts) goes through :class:`Store`.

Start at :mod:`.service` (how to open the store and the transaction model), then the parts:
:mod:`.accounts`, :mod:`.folders`, :mod:`.messages` (+ :mod:`.search`, :mod:`.uidset`),
:mod:`.listing`, :mod:`.directory`, :mod:`.conversations`, :mod:`.audit`, :mod:`.feed`;
the returned types are in :mod:`.records`, the errors in :mod:`.errors`. Message parsing for the
IMAP cache is :mod:`pli.mailbox.mime`. Schema changes: :mod:`.models` and ``mailbox/migrations``.

The store must not import ``pli.mailgateway`` or ``pli.docstore``, and holds no protocol syntax.
"""

from .errors import (
    AlreadyExists,
    InvalidRequest,
    NotFound,
    StoreError,
    StoreUnavailable,
    StoreUserError,
    TooLarge,
)
from .feed import ChangeFeed, EventKind, FeedEvent, Subscription
from .messages import DeliveryTarget
from .records import (
    Account,
    AccountKind,
    AuditRecord,
    AuditVerification,
    Changes,
    Conversation,
    ConversationState,
    CopyResult,
    Delivered,
    DirectoryEntry,
    FlagChange,
    Folder,
    FolderStatus,
    MessageMeta,
    MessageRowData,
    ProfileStatus,
    Selection,
    SpecialUse,
    StoreResult,
)
from .service import Store, StoreOptions, Transaction

__all__ = [
    "Account",
    "AccountKind",
    "AlreadyExists",
    "AuditRecord",
    "AuditVerification",
    "ChangeFeed",
    "Changes",
    "Conversation",
    "ConversationState",
    "CopyResult",
    "Delivered",
    "DeliveryTarget",
    "DirectoryEntry",
    "EventKind",
    "FeedEvent",
    "FlagChange",
    "Folder",
    "FolderStatus",
    "InvalidRequest",
    "MessageMeta",
    "MessageRowData",
    "NotFound",
    "ProfileStatus",
    "Selection",
    "SpecialUse",
    "Store",
    "StoreError",
    "StoreOptions",
    "StoreResult",
    "StoreUnavailable",
    "StoreUserError",
    "Subscription",
    "TooLarge",
    "Transaction",
]
