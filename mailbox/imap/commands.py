"""The typed commands of RFC 3501 and the extensions pli serves (one frozen dataclass each).

Every command carries its ``tag``; ``name`` (a class attribute) is the command word the state
table of :mod:`.states` is keyed by. The ``UID`` forms are the same classes with ``uid=True``.

Conventions:
- Mailbox names are the **wire** form (modified UTF-7, RFC 3501 §5.1.3), INBOX in any case
  normalised to ``"INBOX"`` (RFC 3501 §5.1); decode them with :func:`.mutf7.decode`, which raises
  :class:`~.errors.MailboxNameError` (answer NO) for invalid names.
- LIST/LSUB patterns and references stay wire strings (matched against encoded names).
- Strings that are not names (user names, passwords, search strings) are ``str`` decoded as
  UTF-8 with surrogate escapes, so 8-bit input round-trips to the same bytes.
- System flags are spelled canonically (``\\Seen``); keywords keep their case.

Must not: execute anything; these are plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from .events import Event
from .fetch import FetchAttribute
from .search import SearchKey
from .sequence import SequenceSet

StatusItem = Literal[
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "APPENDLIMIT"
]
#: RFC 3501 §6.3.10, RFC 7162 §3.1.6 (HIGHESTMODSEQ), RFC 7889 (APPENDLIMIT).
STATUS_ITEMS: tuple[StatusItem, ...] = (
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "HIGHESTMODSEQ",
    "APPENDLIMIT",
)
SelectOption = Literal["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"]
ReturnOption = Literal["SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"]
StoreMode = Literal["replace", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Command(Event):
    tag: str
    name: ClassVar[str] = ""


# --- any state (RFC 3501 §6.1, RFC 2971) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability(Command):
    name: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    name: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    name: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971; ``parameters`` is None for ``ID NIL``."""

    parameters: tuple[tuple[str, str | None], ...] | None
    name: ClassVar[str] = "ID"


# --- not authenticated (RFC 3501 §6.2) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls(Command):
    name: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """``initial_response`` is the decoded SASL-IR response (RFC 4959; ``=`` gives b"") or None."""

    mechanism: str
    initial_response: bytes | None = None
    name: ClassVar[str] = "AUTHENTICATE"


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: str
    password: str
    name: ClassVar[str] = "LOGIN"

    def __repr__(self) -> str:  # never log a password
        return f"Login(tag={self.tag!r}, username={self.username!r}, password='***')"


# --- authenticated (RFC 3501 §6.3 and extensions) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT, or EXAMINE when ``read_only``; ``condstore`` for the RFC 7162 §3.1.8 parameter."""

    mailbox: str
    read_only: bool = False
    condstore: bool = False
    name: ClassVar[str] = "SELECT"


@dataclass(frozen=True, slots=True)
class Create(Command):
    """``special_use``: the RFC 6154 §3 ``USE`` attributes asked for (``\\Sent`` …)."""

    mailbox: str
    special_use: tuple[str, ...] = ()
    name: ClassVar[str] = "CREATE"


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: str
    name: ClassVar[str] = "DELETE"


@dataclass(frozen=True, slots=True)
class Rename(Command):
    mailbox: str
    new_name: str
    name: ClassVar[str] = "RENAME"


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """SUBSCRIBE, or UNSUBSCRIBE when not ``subscribe``."""

    mailbox: str
    subscribe: bool = True
    name: ClassVar[str] = "SUBSCRIBE"


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST (RFC 3501 §6.3.8 with RFC 5258 LIST-EXTENDED, RFC 6154, RFC 5819) or LSUB.

    ``patterns`` has one pattern unless the RFC 5258 ``(p1 p2)`` form was used. ``lsub`` is the
    RFC 3501 §6.3.9 LSUB command (no options then). ``status_items`` is set when RETURN
    (STATUS (…)) was asked (RFC 5819)."""

    reference: str
    patterns: tuple[str, ...]
    select_options: tuple[SelectOption, ...] = ()
    return_options: tuple[ReturnOption, ...] = ()
    status_items: tuple[StatusItem, ...] = ()
    lsub: bool = False
    extended: bool = False
    name: ClassVar[str] = "LIST"


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    name: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: str
    items: tuple[StatusItem, ...]
    name: ClassVar[str] = "STATUS"


@dataclass(frozen=True, slots=True)
class Append(Command):
    """``message`` is the literal's octets; ``binary`` when sent as ``~{n}`` (RFC 3516);
    ``more`` the further messages of a MULTIAPPEND (RFC 3502), appended with the first one or
    not at all."""

    mailbox: str
    flags: tuple[str, ...]
    date_time: datetime | None
    message: bytes
    binary: bool = False
    more: tuple[AppendMessage, ...] = ()
    name: ClassVar[str] = "APPEND"

    def __repr__(self) -> str:
        return (
            f"Append(tag={self.tag!r}, mailbox={self.mailbox!r}, flags={self.flags!r}, "
            f"date_time={self.date_time!r}, message=<{len(self.message)} octets>, "
            f"more={len(self.more)})"
        )

    @property
    def messages(self) -> tuple[AppendMessage, ...]:
        """Every message of the command, the first one included."""
        return (AppendMessage(self.flags, self.date_time, self.message, self.binary), *self.more)


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (RFC 3502 ``append-message``)."""

    flags: tuple[str, ...]
    date_time: datetime | None
    message: bytes
    binary: bool = False

    def __repr__(self) -> str:
        return f"AppendMessage(flags={self.flags!r}, message=<{len(self.message)} octets>)"


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """RFC 5161: the capability names, upper-cased."""

    capabilities: tuple[str, ...]
    name: ClassVar[str] = "ENABLE"


@dataclass(frozen=True, slots=True)
class Idle(Command):
    name: ClassVar[str] = "IDLE"


# --- selected (RFC 3501 §6.4 and extensions) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check(Command):
    name: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    name: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    name: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE (RFC 4315 §2.1) when ``uids`` is given."""

    uids: SequenceSet | None = None
    name: ClassVar[str] = "EXPUNGE"


@dataclass(frozen=True, slots=True)
class Search(Command):
    """``key`` is an :class:`~.search.SearchAnd` of the top-level keys (or the single key);
    ``charset`` is upper-cased (``UTF-8`` or ``US-ASCII``; None when not given);
    ``return_options`` the RFC 4731 ESEARCH ``RETURN (…)`` options (``MIN``, ``MAX``, ``ALL``,
    ``COUNT``; ``RETURN ()`` is ``("ALL",)``), None for a plain SEARCH."""

    key: SearchKey
    charset: str | None = None
    uid: bool = False
    return_options: tuple[str, ...] | None = None
    name: ClassVar[str] = "SEARCH"


SortKey = Literal[
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"
]
#: RFC 5256 §3 sort keys, and RFC 5957 DISPLAYFROM/DISPLAYTO.
SORT_KEYS: tuple[SortKey, ...] = (
    "ARRIVAL",
    "CC",
    "DATE",
    "FROM",
    "SIZE",
    "SUBJECT",
    "TO",
    "DISPLAYFROM",
    "DISPLAYTO",
)
ThreadAlgorithm = Literal["ORDEREDSUBJECT", "REFERENCES"]


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """RFC 5256 SORT: ``criteria`` are (reverse, key) pairs in order; the search as in SEARCH
    (the charset is mandatory here)."""

    criteria: tuple[tuple[bool, SortKey], ...]
    charset: str
    key: SearchKey
    uid: bool = False
    name: ClassVar[str] = "SORT"


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """RFC 5256 THREAD with ``algorithm`` ORDEREDSUBJECT or REFERENCES."""

    algorithm: ThreadAlgorithm
    charset: str
    key: SearchKey
    uid: bool = False
    name: ClassVar[str] = "THREAD"


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """``attributes`` in request order, macros expanded (RFC 3501 §6.4.5), ``UID`` added for
    UID FETCH (§6.4.8) and ``MODSEQ`` when CHANGEDSINCE is given (RFC 7162 §3.1.4.1)."""

    sequence_set: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    uid: bool = False
    changed_since: int | None = None
    name: ClassVar[str] = "FETCH"


@dataclass(frozen=True, slots=True)
class Store(Command):
    """``mode``: replace (FLAGS), add (+FLAGS), remove (-FLAGS); ``silent`` for .SILENT;
    ``unchanged_since`` for RFC 7162 §3.1.3."""

    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchanged_since: int | None = None
    name: ClassVar[str] = "STORE"


@dataclass(frozen=True, slots=True)
class Copy(Command):
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False
    name: ClassVar[str] = "COPY"


@dataclass(frozen=True, slots=True)
class Move(Command):
    """RFC 6851."""

    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False
    name: ClassVar[str] = "MOVE"
