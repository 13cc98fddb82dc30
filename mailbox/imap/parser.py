"""A framed command to a typed command (RFC 3501 §9 and the extensions of :mod:`.commands`).

:func:`parse_command` takes the segments :mod:`.framing` produced and returns a
:class:`~.commands.Command`, or raises :class:`~.errors.ParseError` (BAD, or NO for
BADCHARSET); nothing else escapes, whatever the input (tests/imap/test_parser_fuzz.py).
Unknown commands are a ParseError ("unknown command"), so they are answered BAD.

Must not: check the state (that is :mod:`.states`) or touch the store.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Final, cast

from . import commands as c
from .dates import parse_date_time
from .errors import ParseError
from .fetch import FetchAttribute, FetchItem, parse_fetch_attributes
from .flags import parse_flag, parse_flag_list
from .limits import (
    MAX_ID_FIELD,
    MAX_ID_PAIRS,
    MAX_ID_VALUE,
    MAX_LIST_ITEMS,
    MAX_MAILBOX_NAME,
    MAX_MODSEQ,
)
from .reader import TAG, Reader, text
from .search import parse_charset, parse_keys, parse_return, parse_search
from .sequence import SequenceSet

_BASE64: Final = re.compile(rb"[A-Za-z0-9+/]+={0,2}|=")
_SPECIAL_USE_WORD: Final = re.compile(rb"\\[^(){ %*\"\\\]\x00-\x1f\x7f-\xff]+")

SELECT_OPTIONS: Final = ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE")
RETURN_OPTIONS: Final = ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS")


def parse_tag(segments: list[bytes]) -> str | None:
    """The tag of a framed command, or None when it has none that is valid."""
    match = TAG.match(segments[0])
    if match is None or match.end() >= len(segments[0]) or segments[0][match.end()] != 0x20:
        return None
    return match.group().decode("ascii")


def parse_command(segments: list[bytes]) -> c.Command:
    reader = Reader(segments)
    tag = reader.token(TAG, "a tag").decode("ascii")
    reader.sp()
    word = reader.word()
    parse = _COMMANDS.get(word)
    if parse is None:
        if word == "UID":
            return _uid(reader, tag)
        raise ParseError(f"unknown command {word[:20]}")
    return parse(reader, tag)


# --- shared pieces ---------------------------------------------------------------------------


def mailbox(reader: Reader) -> str:
    """``mailbox = "INBOX" / astring``: the wire name, INBOX in any case as ``INBOX``."""
    name = reader.astring()
    if len(name) > MAX_MAILBOX_NAME:
        raise ParseError(f"mailbox name longer than {MAX_MAILBOX_NAME} octets")
    return "INBOX" if name.upper() == "INBOX" else name


def _sequence_set(reader: Reader) -> SequenceSet:
    return SequenceSet.parse(reader.raw_until_space("a sequence set"))


def _modifier(reader: Reader, name: str) -> int:
    """``SP "(" name SP mod-sequence ")"`` (RFC 7162 CHANGEDSINCE / UNCHANGEDSINCE)."""
    reader.enter()
    if reader.word() != name:
        raise ParseError(f"expected ({name} n)")
    reader.sp()
    value = reader.number(MAX_MODSEQ)
    reader.leave()
    return value


def _no_arguments(command: type[c.Command]) -> Callable[[Reader, str], c.Command]:
    def parse(reader: Reader, tag: str) -> c.Command:
        reader.end()
        return command(tag)

    return parse


# --- not authenticated -----------------------------------------------------------------------


def _authenticate(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    mechanism = reader.word()
    initial = None
    if reader.maybe_sp():  # RFC 4959 SASL-IR
        encoded = reader.token(_BASE64, "a base64 initial response")
        initial = decode_base64(encoded)
    reader.end()
    return c.Authenticate(tag, mechanism, initial)


def decode_base64(encoded: bytes) -> bytes:
    """RFC 4959 §3 / RFC 3501 §6.2.2: ``=`` is the empty response; anything not valid base64
    is BAD."""
    if encoded == b"=":
        return b""
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ParseError("invalid base64") from None


def _login(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    username = reader.astring()
    reader.sp()
    password = reader.astring()
    reader.end()
    return c.Login(tag, username, password)


# --- authenticated ---------------------------------------------------------------------------


def _select(read_only: bool) -> Callable[[Reader, str], c.Command]:
    def parse(reader: Reader, tag: str) -> c.Command:
        reader.sp()
        name = mailbox(reader)
        condstore = False
        if reader.maybe_sp():  # RFC 4466 select-params; RFC 7162 §3.1.8 CONDSTORE
            for option in reader.parenthesised():
                if option != "CONDSTORE":
                    raise ParseError(f"unsupported SELECT parameter {option[:20]}")
                condstore = True
        reader.end()
        return c.Select(tag, name, read_only=read_only, condstore=condstore)

    return parse


def _create(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    name = mailbox(reader)
    uses: list[str] = []
    if reader.maybe_sp():  # RFC 6154 §3: CREATE name (USE (\Sent …))
        reader.enter()
        if reader.word() != "USE":
            raise ParseError("unsupported CREATE parameter")
        reader.sp()
        uses = reader.list_of(
            lambda: reader.token(_SPECIAL_USE_WORD, "a special-use attribute").decode(),
            "special-use attributes",
        )
        reader.leave()
    reader.end()
    return c.Create(tag, name, tuple(uses))


def _delete(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    name = mailbox(reader)
    reader.end()
    return c.Delete(tag, name)


def _subscribe(subscribe: bool) -> Callable[[Reader, str], c.Command]:
    def parse(reader: Reader, tag: str) -> c.Command:
        reader.sp()
        name = mailbox(reader)
        reader.end()
        return c.Subscribe(tag, name, subscribe)

    return parse


def _rename(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    old = mailbox(reader)
    reader.sp()
    new = mailbox(reader)
    reader.end()
    return c.Rename(tag, old, new)


def _status_items(reader: Reader) -> tuple[c.StatusItem, ...]:
    words = reader.parenthesised()
    for word in words:
        if word not in c.STATUS_ITEMS:
            raise ParseError(f"unknown STATUS item {word[:20]}")
    if not words:
        raise ParseError("STATUS needs at least one item")
    return tuple(cast(c.StatusItem, word) for word in dict.fromkeys(words))


def _status(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    name = mailbox(reader)
    reader.sp()
    items = _status_items(reader)
    reader.end()
    return c.Status(tag, name, items)


def _list(reader: Reader, tag: str) -> c.Command:
    """RFC 3501 §6.3.8 with RFC 5258 (selection, patterns, RETURN), RFC 6154, RFC 5819."""
    reader.sp()
    extended = False
    select_options: list[str] = []
    if reader.peek() == 0x28:
        extended = True
        select_options = reader.parenthesised()
        for option in select_options:
            if option not in SELECT_OPTIONS:
                raise ParseError(f"unknown LIST selection option {option[:20]}")
        # RFC 5258 §3: RECURSIVEMATCH alone (or with only REMOTE) is an error.
        if "RECURSIVEMATCH" in select_options and not set(select_options) - {
            "RECURSIVEMATCH",
            "REMOTE",
        }:
            raise ParseError("RECURSIVEMATCH needs another selection option (RFC 5258 §3)")
        reader.sp()
    reference = reader.astring()
    reader.sp()
    if reader.peek() == 0x28:
        extended = True
        patterns = reader.list_of(reader.list_mailbox, "LIST patterns", allow_empty=False)
    else:
        patterns = [reader.list_mailbox()]
    return_options: list[str] = []
    status_items: tuple[c.StatusItem, ...] = ()
    if reader.maybe_sp():
        if reader.word() != "RETURN":
            raise ParseError("expected RETURN")
        extended = True
        reader.sp()
        return_options, status_items = _list_return(reader)
    reader.end()
    return c.List(
        tag,
        reference,
        tuple(patterns),
        select_options=tuple(cast(c.SelectOption, o) for o in dict.fromkeys(select_options)),
        return_options=tuple(cast(c.ReturnOption, o) for o in dict.fromkeys(return_options)),
        status_items=status_items,
        extended=extended,
    )


def _list_return(reader: Reader) -> tuple[list[str], tuple[c.StatusItem, ...]]:
    status_items: tuple[c.StatusItem, ...] = ()

    def option() -> str:
        nonlocal status_items
        word = reader.word()
        if word not in RETURN_OPTIONS:
            raise ParseError(f"unknown LIST return option {word[:20]}")
        if word == "STATUS":  # RFC 5819: STATUS (items)
            reader.sp()
            status_items = _status_items(reader)
        return word

    return reader.list_of(option, "LIST return options"), status_items


def _lsub(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    reference = reader.astring()
    reader.sp()
    pattern = reader.list_mailbox()
    reader.end()
    return c.List(tag, reference, (pattern,), lsub=True)


def _append(reader: Reader, tag: str) -> c.Command:
    """``APPEND SP mailbox 1*(SP [flag-list SP] [date-time SP] literal)`` (RFC 3501 §6.3.11,
    several messages: RFC 3502 MULTIAPPEND)."""
    reader.sp()
    name = mailbox(reader)
    reader.sp()
    messages = [_append_message(reader)]
    while reader.maybe_sp():
        if len(messages) >= MAX_LIST_ITEMS:
            raise ParseError(f"more than {MAX_LIST_ITEMS} messages in one APPEND")
        messages.append(_append_message(reader))
    reader.end()
    first = messages[0]
    return c.Append(
        tag, name, first.flags, first.date_time, first.message, first.binary, tuple(messages[1:])
    )


def _append_message(reader: Reader) -> c.AppendMessage:
    """``[flag-list SP] [date-time SP] literal``."""
    flags: tuple[str, ...] = ()
    if reader.peek() == 0x28:
        flags = parse_flag_list(reader)
        reader.sp()
    date_time = None
    if reader.peek() == 0x22:
        date_time = parse_date_time(reader.quoted().decode("ascii", "replace"))
        reader.sp()
    if not reader.literal_ahead():
        raise ParseError("APPEND needs the message as a literal")
    message, binary = reader.literal(allow_binary=True, allow_nul=True)
    return c.AppendMessage(flags, date_time, message, binary)


def _enable(reader: Reader, tag: str) -> c.Command:
    if not reader.maybe_sp():
        raise ParseError("ENABLE needs a capability name")
    names = reader.spaced(reader.word, "capabilities")
    reader.end()
    return c.Enable(tag, tuple(dict.fromkeys(names)))


def _id(reader: Reader, tag: str) -> c.Command:
    """RFC 2971: ``ID SP ("(" [string SP nstring *(SP string SP nstring)] ")" / NIL)``."""
    reader.sp()
    if reader.peek() != 0x28:
        if reader.word() != "NIL":
            raise ParseError("expected ID parameters or NIL")
        reader.end()
        return c.Id(tag, None)

    def pair() -> tuple[str, str | None]:
        field = text(reader.string())
        reader.sp()
        value = reader.nstring()
        if len(field) > MAX_ID_FIELD or (value is not None and len(value) > MAX_ID_VALUE):
            raise ParseError("ID field or value too long (RFC 2971 §3.3)")
        return field, value

    pairs = reader.list_of(pair, "ID pairs")
    if len(pairs) > MAX_ID_PAIRS:
        raise ParseError(f"more than {MAX_ID_PAIRS} ID pairs (RFC 2971 §3.3)")
    reader.end()
    return c.Id(tag, tuple(pairs))


# --- selected --------------------------------------------------------------------------------


def _search(reader: Reader, tag: str, uid: bool = False) -> c.Command:
    reader.sp()
    return_options = parse_return(reader)  # RFC 4731 ESEARCH
    charset, key = parse_search(reader)
    return c.Search(tag, key, charset, uid, return_options)


def _sort(reader: Reader, tag: str, uid: bool = False) -> c.Command:
    """RFC 5256 §3: ``SORT SP sort-criteria SP charset 1*(SP search-key)``."""
    reader.sp()

    def criterion() -> tuple[bool, c.SortKey]:
        word = reader.word()
        reverse = word == "REVERSE"
        if reverse:
            reader.sp()
            word = reader.word()
        if word not in c.SORT_KEYS:
            raise ParseError(f"unknown sort key {word[:20]}")
        return reverse, word

    criteria = reader.list_of(criterion, "sort criteria", allow_empty=False)
    reader.sp()
    charset = parse_charset(reader)
    reader.sp()
    return c.Sort(tag, tuple(criteria), charset, parse_keys(reader), uid)


def _thread(reader: Reader, tag: str, uid: bool = False) -> c.Command:
    """RFC 5256 §4: ``THREAD SP thread-alg SP charset 1*(SP search-key)``."""
    reader.sp()
    algorithm = reader.word()
    if algorithm not in ("ORDEREDSUBJECT", "REFERENCES"):
        raise ParseError(f"unknown threading algorithm {algorithm[:20]}")
    reader.sp()
    charset = parse_charset(reader)
    reader.sp()
    return c.Thread(tag, cast(c.ThreadAlgorithm, algorithm), charset, parse_keys(reader), uid)


def _fetch(reader: Reader, tag: str, uid: bool = False) -> c.Command:
    reader.sp()
    sequence_set = _sequence_set(reader)
    reader.sp()
    attributes: list[FetchAttribute] = parse_fetch_attributes(reader)
    changed_since = None
    if reader.maybe_sp():  # RFC 7162 §3.1.4.1 CHANGEDSINCE
        changed_since = _modifier(reader, "CHANGEDSINCE")
        if FetchItem.MODSEQ not in attributes:
            attributes.append(FetchItem.MODSEQ)
    reader.end()
    if uid and FetchItem.UID not in attributes:
        attributes.insert(0, FetchItem.UID)
    return c.Fetch(tag, sequence_set, tuple(attributes), uid, changed_since)


_STORE_ITEMS: Final[dict[str, tuple[c.StoreMode, bool]]] = {
    "FLAGS": ("replace", False),
    "FLAGS.SILENT": ("replace", True),
    "+FLAGS": ("add", False),
    "+FLAGS.SILENT": ("add", True),
    "-FLAGS": ("remove", False),
    "-FLAGS.SILENT": ("remove", True),
}


def _store(reader: Reader, tag: str, uid: bool = False) -> c.Command:
    reader.sp()
    sequence_set = _sequence_set(reader)
    reader.sp()
    unchanged_since = None
    if reader.peek() == 0x28:  # RFC 7162 §3.1.3 UNCHANGEDSINCE
        unchanged_since = _modifier(reader, "UNCHANGEDSINCE")
        reader.sp()
    sign = b"+" if reader.maybe(b"+") else b"-" if reader.maybe(b"-") else b""
    item = _STORE_ITEMS.get(sign.decode() + reader.word())
    if item is None:
        raise ParseError("expected [+|-]FLAGS[.SILENT]")
    reader.sp()
    if reader.peek() == 0x28:
        flags = parse_flag_list(reader)
    else:  # flag *(SP flag)
        flags = tuple(dict.fromkeys(reader.spaced(lambda: parse_flag(reader), "flags")))
    reader.end()
    mode, silent = item
    return c.Store(tag, sequence_set, mode, flags, silent, uid, unchanged_since)


def _copy_or_move(command: type[c.Copy] | type[c.Move]) -> Callable[..., c.Command]:
    def parse(reader: Reader, tag: str, uid: bool = False) -> c.Command:
        reader.sp()
        sequence_set = _sequence_set(reader)
        reader.sp()
        name = mailbox(reader)
        reader.end()
        return command(tag, sequence_set, name, uid)

    return parse


def _expunge(reader: Reader, tag: str) -> c.Command:
    reader.end()
    return c.Expunge(tag)


def _uid_expunge(reader: Reader, tag: str, uid: bool = True) -> c.Command:
    reader.sp()  # RFC 4315 §2.1: UID EXPUNGE sequence-set
    uids = _sequence_set(reader)
    reader.end()
    return c.Expunge(tag, uids)


_UID_COMMANDS: Final[dict[str, Callable[..., c.Command]]] = {
    "COPY": _copy_or_move(c.Copy),
    "MOVE": _copy_or_move(c.Move),
    "FETCH": _fetch,
    "SEARCH": _search,
    "STORE": _store,
    "EXPUNGE": _uid_expunge,
    "SORT": _sort,
    "THREAD": _thread,
}


def _uid(reader: Reader, tag: str) -> c.Command:
    reader.sp()
    word = reader.word()
    parse = _UID_COMMANDS.get(word)
    if parse is None:
        raise ParseError(f"unknown UID command {word[:20]}")
    return parse(reader, tag, uid=True)


_COMMANDS: Final[dict[str, Callable[[Reader, str], c.Command]]] = {
    "CAPABILITY": _no_arguments(c.Capability),
    "NOOP": _no_arguments(c.Noop),
    "LOGOUT": _no_arguments(c.Logout),
    "ID": _id,
    "STARTTLS": _no_arguments(c.StartTls),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": _select(read_only=False),
    "EXAMINE": _select(read_only=True),
    "CREATE": _create,
    "DELETE": _delete,
    "RENAME": _rename,
    "SUBSCRIBE": _subscribe(True),
    "UNSUBSCRIBE": _subscribe(False),
    "LIST": _list,
    "LSUB": _lsub,
    "NAMESPACE": _no_arguments(c.Namespace),
    "STATUS": _status,
    "APPEND": _append,
    "ENABLE": _enable,
    "IDLE": _no_arguments(c.Idle),
    "CHECK": _no_arguments(c.Check),
    "CLOSE": _no_arguments(c.Close),
    "UNSELECT": _no_arguments(c.Unselect),
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "SORT": _sort,
    "THREAD": _thread,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_or_move(c.Copy),
    "MOVE": _copy_or_move(c.Move),
}
