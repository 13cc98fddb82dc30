"""SEARCH keys (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ): their types and their grammar.

The key tree is small on purpose, so that the session's evaluator has few cases:

- :class:`SearchAll`; :class:`SearchFlag` (``\\Seen`` … and keywords, present or absent; RECENT,
  NEW = RECENT UNSEEN and OLD = NOT RECENT are expressed with ``\\Recent``);
- :class:`SearchAddress` (FROM, TO, CC, BCC: matched against the addresses and display names),
  :class:`SearchHeader` (SUBJECT and HEADER: substring of the header value; an empty value
  matches any message having the field), :class:`SearchText` (BODY, TEXT);
- :class:`SearchDate` (BEFORE/ON/SINCE on the internal date, SENT* on the Date: header);
- :class:`SearchSize` (LARGER, SMALLER), :class:`SearchSequence` (sequence set or UID set),
  :class:`SearchModSeq`;
- :class:`SearchNot`, :class:`SearchOr`, :class:`SearchAnd` (the top level and parentheses).

Strings are decoded as UTF-8 (CHARSET US-ASCII and UTF-8 are accepted, anything else is
``NO [BADCHARSET (US-ASCII UTF-8)]``, RFC 3501 §6.4.4); invalid UTF-8 is BAD. Nesting is bounded
by :data:`~.limits.MAX_NESTING` and the number of keys by :data:`~.limits.MAX_LIST_ITEMS`.

Must not: evaluate keys (the session does, against the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, Union

from .dates import parse_date
from .errors import ParseError
from .flags import ANSWERED, DELETED, DRAFT, FLAGGED, RECENT, SEEN
from .limits import MAX_LIST_ITEMS, MAX_MODSEQ, MAX_NESTING
from .reader import RPAREN, Reader
from .sequence import SequenceSet

SUPPORTED_CHARSETS: Final = ("US-ASCII", "UTF-8")
BADCHARSET_CODE: Final = "BADCHARSET (US-ASCII UTF-8)"


AddressField = Literal["from", "to", "cc", "bcc"]
DateRelation = Literal["before", "on", "since"]


@dataclass(frozen=True, slots=True)
class SearchAll:
    pass


@dataclass(frozen=True, slots=True)
class SearchFlag:
    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchAddress:
    field: AddressField
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """``field`` lower-cased."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BODY (``body_only``) or TEXT (header and body)."""

    value: str
    body_only: bool


@dataclass(frozen=True, slots=True)
class SearchDate:
    """``sent`` compares the Date: header's date, else the internal date (both without time
    and time zone, RFC 3501 §6.4.4)."""

    relation: DateRelation
    when: date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize:
    relation: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class SearchSequence:
    sequence_set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """RFC 7162 §3.1.5; ``entry`` = (entry name, ``priv``/``shared``/``all``) when given."""

    modseq: int
    entry: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    keys: tuple[SearchKey, ...]


SearchKey = Union[  # noqa: UP007 (a forward-referenced alias needs Union at runtime)
    SearchAll,
    SearchFlag,
    SearchAddress,
    SearchHeader,
    SearchText,
    SearchDate,
    SearchSize,
    SearchSequence,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchAnd,
]

_FLAG_KEYS: Final[dict[str, SearchKey]] = {
    "ALL": SearchAll(),
    "ANSWERED": SearchFlag(ANSWERED),
    "DELETED": SearchFlag(DELETED),
    "DRAFT": SearchFlag(DRAFT),
    "FLAGGED": SearchFlag(FLAGGED),
    "SEEN": SearchFlag(SEEN),
    "RECENT": SearchFlag(RECENT),
    "UNANSWERED": SearchFlag(ANSWERED, False),
    "UNDELETED": SearchFlag(DELETED, False),
    "UNDRAFT": SearchFlag(DRAFT, False),
    "UNFLAGGED": SearchFlag(FLAGGED, False),
    "UNSEEN": SearchFlag(SEEN, False),
    "NEW": SearchAnd((SearchFlag(RECENT), SearchFlag(SEEN, False))),
    "OLD": SearchFlag(RECENT, False),
}
_ADDRESS_KEYS: Final[dict[str, AddressField]] = {
    "FROM": "from",
    "TO": "to",
    "CC": "cc",
    "BCC": "bcc",
}
_DATE_KEYS: Final[dict[str, tuple[DateRelation, bool]]] = {
    "BEFORE": ("before", False),
    "ON": ("on", False),
    "SINCE": ("since", False),
    "SENTBEFORE": ("before", True),
    "SENTON": ("on", True),
    "SENTSINCE": ("since", True),
}
_ENTRY_TYPES: Final = ("PRIV", "SHARED", "ALL")
_KEYS_WITH_ARGUMENT: Final = frozenset(
    (
        "SUBJECT",
        "HEADER",
        "BODY",
        "TEXT",
        "KEYWORD",
        "UNKEYWORD",
        "LARGER",
        "SMALLER",
        "UID",
        "MODSEQ",
    )
)


class _KeyParser:
    __slots__ = ("count", "reader")

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.count = 0

    def string(self) -> str:
        raw = self.reader.astring_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("search string is not valid UTF-8") from None

    def keys_until(self, closing: bool) -> SearchKey:
        """``search-key *(SP search-key)`` up to ``)`` (closing) or the end of the command."""
        keys = [self.key()]
        while self.reader.maybe_sp():
            keys.append(self.key())
        if closing and self.reader.peek() != RPAREN:
            raise ParseError("expected ')' in SEARCH")
        if not closing:
            self.reader.end()
        return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))

    def key(self) -> SearchKey:
        self.count += 1
        if self.count > MAX_LIST_ITEMS:
            raise ParseError(f"more than {MAX_LIST_ITEMS} search keys")
        reader = self.reader
        char = reader.peek()
        if char == 0x28:  # "(" search-key *(SP search-key) ")"
            reader.enter()
            group = self.keys_until(closing=True)
            reader.leave()
            return group
        if char is not None and (0x30 <= char <= 0x39 or char == 0x2A):
            return SearchSequence(SequenceSet.parse(reader.raw_until_space("a sequence set")))
        word = reader.word()
        fixed = _FLAG_KEYS.get(word)
        if fixed is not None:
            return fixed
        address = _ADDRESS_KEYS.get(word)
        if address is not None:
            reader.sp()
            return SearchAddress(address, self.string())
        if word in _DATE_KEYS:
            relation, sent = _DATE_KEYS[word]
            reader.sp()
            return SearchDate(relation, self.date(), sent)
        return self.key_with_arguments(word)

    def key_with_arguments(self, word: str) -> SearchKey:
        reader = self.reader
        if word in ("NOT", "OR"):
            return self.nested(word)
        if word not in _KEYS_WITH_ARGUMENT:
            raise ParseError(f"unknown search key {word[:20]}")
        reader.sp()
        if word == "SUBJECT":
            return SearchHeader("subject", self.string())
        if word == "HEADER":
            field = reader.astring().lower()
            reader.sp()
            return SearchHeader(field, self.string())
        if word in ("BODY", "TEXT"):
            return SearchText(self.string(), body_only=word == "BODY")
        if word in ("KEYWORD", "UNKEYWORD"):
            return SearchFlag(reader.atom(), present=word == "KEYWORD")
        if word in ("LARGER", "SMALLER"):
            return SearchSize("larger" if word == "LARGER" else "smaller", reader.number())
        if word == "UID":
            return SearchSequence(SequenceSet.parse(reader.raw_until_space("a UID set")), True)
        return self.modseq()

    def nested(self, word: str) -> SearchKey:
        reader = self.reader
        reader.depth += 1
        if reader.depth > MAX_NESTING:
            raise ParseError(f"search keys nested deeper than {MAX_NESTING}")
        reader.sp()
        first = self.key()
        result: SearchKey
        if word == "NOT":
            result = SearchNot(first)
        else:
            reader.sp()
            result = SearchOr(first, self.key())
        reader.depth -= 1
        return result

    def date(self) -> date:
        reader = self.reader
        raw = reader.quoted() if reader.peek() == 0x22 else reader.atom().encode("ascii")
        return parse_date(raw.decode("ascii", "replace"))

    def modseq(self) -> SearchKey:
        reader = self.reader
        entry = None
        if reader.peek() == 0x22:  # entry-name SP entry-type-req
            name = reader.quoted().decode("utf-8", "surrogateescape")
            reader.sp()
            kind = reader.word()
            if kind not in _ENTRY_TYPES:
                raise ParseError("MODSEQ entry type must be priv, shared or all")
            reader.sp()
            entry = (name, kind.lower())
        return SearchModSeq(reader.number(MAX_MODSEQ), entry)


#: RFC 4731 §3.1 search-return-opt (SAVE, RFC 5182, is not served).
RETURN_OPTIONS: Final = ("MIN", "MAX", "ALL", "COUNT")


def parse_return(reader: Reader) -> tuple[str, ...] | None:
    """``[RETURN SP "(" [option *(SP option)] ")" SP]`` (RFC 4731 §3.1): the options, with
    ``RETURN ()`` meaning ``ALL``; None when there is no RETURN."""
    if reader.peek_word() != b"RETURN":
        return None
    reader.atom()
    reader.sp()

    def option() -> str:
        word = reader.word()
        if word not in RETURN_OPTIONS:
            raise ParseError(f"unknown SEARCH return option {word[:20]}")
        return word

    options = reader.list_of(option, "SEARCH return options")
    reader.sp()
    return tuple(dict.fromkeys(options)) or ("ALL",)


def parse_charset(reader: Reader) -> str:
    """A search charset (upper-cased): US-ASCII or UTF-8, else ``NO [BADCHARSET …]``."""
    charset = reader.astring().upper()
    if charset not in SUPPORTED_CHARSETS:
        raise ParseError("unsupported charset (RFC 3501 §6.4.4)", status="NO", code=BADCHARSET_CODE)
    return charset


def parse_keys(reader: Reader) -> SearchKey:
    """``search-key *(SP search-key)`` to the end of the command."""
    return _KeyParser(reader).keys_until(closing=False)


def parse_search(reader: Reader) -> tuple[str | None, SearchKey]:
    """``[CHARSET SP astring SP] search-key *(SP search-key)`` to the end of the command."""
    charset = None
    if reader.peek_word() == b"CHARSET":
        reader.atom()
        reader.sp()
        charset = parse_charset(reader)
        reader.sp()
    return charset, parse_keys(reader)
