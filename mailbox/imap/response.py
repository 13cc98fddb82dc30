"""Server responses (RFC 3501 §7) as bytes: status lines, data responses, FETCH items, codes.

Everything returns complete ``bytes`` (a whole response line, CRLF included, or a FETCH item or
response code to put into one). Strings go through :mod:`.wire` (atom, quoted or literal as
needed), human text through :func:`.wire.safe_text`. ENVELOPE and BODYSTRUCTURE are in
:mod:`.bodystructure`.

The FETCH path is built for volume (10,000 messages in one response): ``%``-formatting of bytes,
one join per line, pre-encoded constants, flag lists cached by value.

Must not: decide what to answer (the session does); this module only spells answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

from .dates import format_date_time
from .errors import Status
from .fetch import FetchBody
from .sequence import format_numbers
from .wire import CRLF, NIL, astring, literal, nstring, safe_text, string

# --- status responses ------------------------------------------------------------------------


def _status_line(prefix: bytes, status: Status, text: str, code: str | None) -> bytes:
    body = safe_text(text) or b"Done"
    if code:
        return b"%b %b [%b] %b\r\n" % (prefix, status.encode(), safe_text(code), body)
    return b"%b %b %b\r\n" % (prefix, status.encode(), body)


def tagged(tag: str, status: Status, text: str, code: str | None = None) -> bytes:
    """``tag OK [CODE] text`` (RFC 3501 §7.1)."""
    return _status_line(tag.encode("ascii"), status, text, code)


def untagged(status: Status, text: str, code: str | None = None) -> bytes:
    """``* OK [CODE] text``, ``* NO …``, ``* BAD …``, ``* PREAUTH …``, ``* BYE …``."""
    return _status_line(b"*", status, text, code)


def bye(text: str) -> bytes:
    return untagged("BYE", text)


def continuation(text: str = "") -> bytes:
    """``+ text`` (RFC 3501 §7.5)."""
    return b"+ " + safe_text(text) + CRLF


# --- capabilities (RFC 3501 §7.2.1) ----------------------------------------------------------

#: What the core parses, by the issue's list: RFC 3501, 7888, 4959, 2971, 5161, 2177, 2342,
#: 4315, 6851, 6154, 3691, 7162, 3348.
BASE_CAPABILITIES: Final = (
    "IMAP4rev1",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "SPECIAL-USE",
    "UNSELECT",
    "CONDSTORE",
    "CHILDREN",
)


def capabilities(
    *,
    tls_active: bool,
    starttls_available: bool,
    login_allowed: bool,
    mechanisms: Iterable[str] = (),
    authenticated: bool = False,
    append_limit: int | None = None,
    extra: Iterable[str] = (),
) -> list[str]:
    """The capability list for the connection's situation: STARTTLS only on a plain
    connection that can upgrade; LOGINDISABLED when LOGIN is refused (RFC 3501 §6.2.3, before
    TLS); AUTH= mechanisms only before authentication; APPENDLIMIT=n (RFC 7889)."""
    names = list(BASE_CAPABILITIES)
    if append_limit is not None:
        names.append(f"APPENDLIMIT={append_limit}")
    names.extend(extra)
    if not authenticated:
        if starttls_available and not tls_active:
            names.append("STARTTLS")
        if not login_allowed:
            names.append("LOGINDISABLED")
        names.extend(f"AUTH={mechanism}" for mechanism in mechanisms)
    return names


def capability_response(names: Iterable[str]) -> bytes:
    return b"* CAPABILITY " + " ".join(names).encode("ascii") + CRLF


def capability_code(names: Iterable[str]) -> str:
    """``CAPABILITY …`` as a response code (greeting, LOGIN OK)."""
    return "CAPABILITY " + " ".join(names)


def greeting(text: str, names: Iterable[str] | None = None, *, preauth: bool = False) -> bytes:
    """``* OK [CAPABILITY …] text`` (or PREAUTH), RFC 3501 §7.1.1/§7.1.4."""
    code = capability_code(names) if names is not None else None
    return untagged("PREAUTH" if preauth else "OK", text, code)


# --- mailbox data (RFC 3501 §7.2, §7.3) ------------------------------------------------------

_FLAG_CACHE: dict[tuple[str, ...], bytes] = {}
_FLAG_CACHE_MAX: Final = 4096


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label1)``; lists are few and repeat, so their bytes are cached."""
    key = tuple(flags)
    cached = _FLAG_CACHE.get(key)
    if cached is None:
        if len(_FLAG_CACHE) >= _FLAG_CACHE_MAX:
            _FLAG_CACHE.clear()
        cached = b"(" + " ".join(key).encode("utf-8", "surrogateescape") + b")"
        _FLAG_CACHE[key] = cached
    return cached


def flags_response(flags: Iterable[str]) -> bytes:
    return b"* FLAGS " + flag_list(flags) + CRLF


def exists(count: int) -> bytes:
    return b"* %d EXISTS\r\n" % count


def recent(count: int) -> bytes:
    return b"* %d RECENT\r\n" % count


def expunge(sequence_number: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % sequence_number


def list_response(
    attributes: Iterable[str],
    delimiter: str | None,
    mailbox: str,
    *,
    lsub: bool = False,
    extended: bytes = b"",
) -> bytes:
    """``* LIST (\\HasNoChildren) "/" name`` (RFC 3501 §7.2.2); ``mailbox`` is the wire name;
    ``extended`` is RFC 5258 extended data, such as ``(CHILDINFO ("SUBSCRIBED"))``."""
    kind = b"LSUB" if lsub else b"LIST"
    separator = NIL if delimiter is None else string(delimiter)
    line = b"* %b %b %b %b" % (kind, flag_list(attributes), separator, astring(mailbox))
    if extended:
        line += b" " + extended
    return line + CRLF


def status_response(mailbox: str, items: Iterable[tuple[str, int]]) -> bytes:
    """``* STATUS name (MESSAGES 3 UIDNEXT 9)`` (RFC 3501 §7.2.4, RFC 7162 HIGHESTMODSEQ)."""
    values = " ".join(f"{name} {value}" for name, value in items).encode("ascii")
    return b"* STATUS %b (%b)\r\n" % (astring(mailbox), values)


def search_response(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH 2 3 5`` and RFC 7162 §3.1.5's ``(MODSEQ n)`` when a MODSEQ key was used."""
    found = " ".join(map(str, numbers)).encode("ascii")
    line = b"* SEARCH " + found if found else b"* SEARCH"
    if modseq is not None and found:
        line += b" (MODSEQ %d)" % modseq
    return line + CRLF


def esearch_response(
    tag: str,
    *,
    uid: bool,
    minimum: int | None = None,
    maximum: int | None = None,
    count: int | None = None,
    numbers: Sequence[int] | None = None,
    modseq: int | None = None,
) -> bytes:
    """RFC 4731 §3.1: ``* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 4 ALL 2:3,9`` (each part
    only when given; ALL only when ``numbers`` is non-empty); RFC 7162 §3.2 ``MODSEQ n``."""
    parts = [b"* ESEARCH (TAG " + string(tag) + b")"]
    if uid:
        parts.append(b"UID")
    if minimum is not None:
        parts.append(b"MIN %d" % minimum)
    if maximum is not None:
        parts.append(b"MAX %d" % maximum)
    if count is not None:
        parts.append(b"COUNT %d" % count)
    if numbers:
        parts.append(b"ALL " + format_numbers(numbers).encode("ascii"))
    if modseq is not None:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + CRLF


def sort_response(numbers: Iterable[int]) -> bytes:
    """RFC 5256 §4: ``* SORT 2 3 1``."""
    found = " ".join(map(str, numbers)).encode("ascii")
    return b"* SORT " + found + CRLF if found else b"* SORT\r\n"


#: A thread: a message number and its children (RFC 5256 §4 thread-list).
ThreadNode = tuple[int, Sequence["ThreadNode"]]


def _thread_members(node: ThreadNode) -> str:
    """``1 2 (3)(4 5)``: a chain while each member has one child, then the children; a node
    numbered 0 is a dummy (a message not in the set): only its children, ``(3)(5)``."""
    if node[0] == 0:
        return "".join(f"({_thread_members(child)})" for child in node[1])
    numbers = [str(node[0])]
    children = node[1]
    while len(children) == 1:
        numbers.append(str(children[0][0]))
        children = children[0][1]
    text = " ".join(numbers)
    if children:
        text += " " + "".join(f"({_thread_members(child)})" for child in children)
    return text


def thread_response(roots: Iterable[ThreadNode]) -> bytes:
    """RFC 5256 §4: ``* THREAD (2)(3 6 (4 23)(44 7 96))``."""
    body = "".join(f"({_thread_members(root)})" for root in roots)
    return b"* THREAD " + body.encode("ascii") + CRLF if body else b"* THREAD\r\n"


def enabled_response(names: Iterable[str]) -> bytes:
    """RFC 5161 §3.2: ``* ENABLED`` with the capabilities that were enabled now."""
    listed = " ".join(names).encode("ascii")
    return b"* ENABLED " + listed + CRLF if listed else b"* ENABLED\r\n"


def id_response(parameters: Mapping[str, str | None] | None) -> bytes:
    """RFC 2971 §3.2: ``* ID ("name" "pli" …)`` or ``* ID NIL``."""
    if not parameters:
        return b"* ID NIL\r\n"
    pairs = b" ".join(string(key) + b" " + nstring(value) for key, value in parameters.items())
    return b"* ID (" + pairs + b")\r\n"


Namespace = Sequence[tuple[str, str | None]]


def namespace_response(
    personal: Namespace | None, other: Namespace | None = None, shared: Namespace | None = None
) -> bytes:
    """RFC 2342 §5: ``* NAMESPACE (("" "/")) NIL NIL``."""

    def one(spaces: Namespace | None) -> bytes:
        if not spaces:
            return NIL
        return (
            b"("
            + b"".join(
                b"(" + string(prefix) + b" " + (NIL if sep is None else string(sep)) + b")"
                for prefix, sep in spaces
            )
            + b")"
        )

    return b"* NAMESPACE %b %b %b\r\n" % (one(personal), one(other), one(shared))


# --- FETCH (RFC 3501 §7.4.2) -----------------------------------------------------------------


def fetch_response(sequence_number: int, items: Iterable[bytes]) -> bytes:
    """``* 12 FETCH (UID 40 FLAGS (\\Seen))`` from items built by the ``fetch_*`` helpers."""
    return b"* %d FETCH (%b)\r\n" % (sequence_number, b" ".join(items))


def fetch_flags(flags: Iterable[str]) -> bytes:
    return b"FLAGS " + flag_list(flags)


def fetch_uid(uid: int) -> bytes:
    return b"UID %d" % uid


def fetch_size(size: int) -> bytes:
    return b"RFC822.SIZE %d" % size


def fetch_modseq(modseq: int) -> bytes:
    return b"MODSEQ (%d)" % modseq  # RFC 7162 §3.1.4


def fetch_internaldate(moment: datetime) -> bytes:
    return b"INTERNALDATE " + format_date_time(moment)


def fetch_section(attribute: FetchBody, data: bytes | None) -> bytes:
    """``BODY[TEXT]<0> {n}…``: ``data`` is the whole section (the partial range is applied
    here); None (a part that does not exist) gives NIL, as Dovecot answers. BINARY content
    with a NUL goes as a literal8, ``~{n}`` (RFC 3516 §4.2)."""
    if data is None:
        return attribute.label() + b" NIL"
    cut = attribute.cut(data)
    if attribute.binary and b"\x00" in cut:
        return attribute.label() + b" ~" + literal(cut)
    return attribute.label() + b" " + literal(cut)


# --- response codes (RFC 3501 §7.1, RFC 4315, RFC 7162) -------------------------------------


def copyuid_code(uidvalidity: int, source: Iterable[int], destination: Iterable[int]) -> str:
    """RFC 4315 §3: ``COPYUID uidvalidity source-set dest-set``, both in corresponding order."""
    return f"COPYUID {uidvalidity} {format_numbers(source)} {format_numbers(destination)}"


def appenduid_code(uidvalidity: int, uid: int) -> str:
    """RFC 4315 §3: ``APPENDUID uidvalidity uid``."""
    return f"APPENDUID {uidvalidity} {uid}"


def permanentflags_code(flags: Iterable[str], keywords_allowed: bool = True) -> str:
    """RFC 3501 §7.1: ``PERMANENTFLAGS (\\Seen … \\*)``, ``\\*`` when keywords may be created."""
    names = [*flags, "\\*"] if keywords_allowed else list(flags)
    return "PERMANENTFLAGS (" + " ".join(names) + ")"
