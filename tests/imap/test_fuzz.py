"""Hypothesis on the parser and the connection: whatever the input, the only exception out of
the parser is ParseError, the connection never raises, and every reply it writes is whole lines;
valid SEARCH and FETCH commands generated at random parse back to the values they came from."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.imap_wire import run

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.dates import MONTHS
from pli.mailbox.imap.errors import ParseError
from pli.mailbox.imap.events import (
    ConnectionClosed,
    ContinuationRequest,
    IdleDone,
    ProtocolError,
    SaslCancelled,
    SaslResponse,
)
from pli.mailbox.imap.fetch import FetchBody, FetchItem, Section
from pli.mailbox.imap.limits import Limits
from pli.mailbox.imap.parser import parse_command
from pli.mailbox.imap.search import (
    SearchAddress,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSize,
    SearchText,
)
from pli.mailbox.imap.states import State
from pli.mailbox.imap.wire import string

_WORDS = (
    "LOGIN AUTHENTICATE SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE LIST LSUB STATUS "
    "APPEND SEARCH FETCH STORE COPY MOVE UID EXPUNGE IDLE ENABLE ID NIL DONE STARTTLS "
    "CHARSET OR NOT SEEN ALL FLAGS +FLAGS.SILENT BODY BODY.PEEK[ HEADER.FIELDS RFC822 "
    "MODSEQ CHANGEDSINCE UNCHANGEDSINCE RETURN SUBSCRIBED RECURSIVEMATCH CONDSTORE "
    "INBOX 1 1:* *:3 4294967296 01-Jan-2024 \\Seen \\Recent $kw PLAIN = AGpvZQ== TEXT MIME "
    "SORT THREAD REFERENCES ORDEREDSUBJECT REVERSE ARRIVAL DISPLAYFROM UTF-8 MIN MAX COUNT "
    "BINARY[ BINARY.PEEK[ BINARY.SIZE["
)
TOKENS = [
    *(word.encode() for word in _WORDS.split(" ")),
    b" ",
    b"(",
    b")",
    b"[",
    b"]",
    b"<",
    b">",
    b".",
    b'"',
    b'"q\\"s"',
    b"\\",
    b"{3}\r\nabc",
    b"{2+}\r\nxy",
    b"~{1}\r\n\x00",
    b"{",
    b"}",
    b"\r\n",
    b"\n",
    b"\x00",
    b"\xff",
    b"%",
    b"*",
]

command_bytes = st.lists(st.sampled_from(TOKENS), max_size=25).map(b"".join)


@given(command_bytes, st.lists(st.binary(max_size=6), max_size=3))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_parser_raises_only_parse_error(text: bytes, literals: list[bytes]) -> None:
    segments = [b"t " + text.replace(b"\n", b"")]
    for literal in literals:
        segments[-1] += b" {%d}" % len(literal)
        segments += [literal, b""]
    try:
        command = parse_command(segments)
    except ParseError as error:
        assert error.text and "\r" not in error.text and "\n" not in error.text
    else:
        assert isinstance(command, c.Command) and command.tag == "t"


EVENT_TYPES = (
    c.Command,
    ContinuationRequest,
    ProtocolError,
    IdleDone,
    SaslResponse,
    SaslCancelled,
    ConnectionClosed,
)


@given(
    st.lists(st.one_of(command_bytes, st.binary(max_size=40)), max_size=12),
    st.sampled_from(list(State)[:3]),
    st.booleans(),
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_connection_never_raises(chunks: list[bytes], state: State, eof: bool) -> None:
    tagged = [b"t%d " % i + chunk + b"\r\n" for i, chunk in enumerate(chunks)]
    conn = ImapConnection(Limits(line_length=8192), state=state)
    transcript = run(tagged, conn=conn, eof=eof)
    for event in transcript.events:
        assert isinstance(event, EVENT_TYPES)
        if isinstance(event, ProtocolError):
            assert event.data.endswith(b"\r\n") and event.data.count(b"\n") == 1


# --- generated valid commands parse back to their values -------------------------------------

atoms = st.text(alphabet="abcXYZ019$-_.", min_size=1, max_size=8).filter(
    lambda s: s.upper() != "NIL"
)
texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


def _date(day: date) -> str:
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def leaf_keys() -> st.SearchStrategy[SearchKey]:
    return st.one_of(
        st.just(SearchAll()),
        st.builds(
            SearchFlag, st.sampled_from(["\\Seen", "\\Deleted", "\\Answered"]), st.booleans()
        ),
        st.builds(SearchFlag, atoms, st.booleans()),
        st.builds(SearchAddress, st.sampled_from(["from", "to", "cc", "bcc"]), texts),
        st.builds(SearchHeader, atoms.map(str.lower), texts),
        st.builds(SearchText, texts, st.booleans()),
        st.builds(SearchDate, st.sampled_from(["before", "on", "since"]), dates, st.booleans()),
        st.builds(SearchSize, st.sampled_from(["larger", "smaller"]), st.integers(0, 2**32 - 1)),
    )


keys = st.recursive(
    leaf_keys(),
    lambda children: st.one_of(
        st.builds(SearchNot, children),
        st.builds(SearchOr, children, children),
        st.lists(children, min_size=2, max_size=3).map(lambda k: SearchAnd(tuple(k))),
    ),
    max_leaves=12,
)


def wire(key: SearchKey) -> bytes:
    """The client's spelling of a key (the inverse of the parser)."""
    if isinstance(key, SearchAll):
        return b"ALL"
    if isinstance(key, SearchFlag):
        names = {"\\Seen": b"SEEN", "\\Deleted": b"DELETED", "\\Answered": b"ANSWERED"}
        if key.flag in names:
            return names[key.flag] if key.present else b"UN" + names[key.flag]
        return (b"KEYWORD " if key.present else b"UNKEYWORD ") + key.flag.encode()
    if isinstance(key, SearchAddress):
        return key.field.upper().encode() + b" " + string(key.value)
    if isinstance(key, SearchHeader):
        return b"HEADER " + key.field.encode() + b" " + string(key.value)
    if isinstance(key, SearchText):
        return (b"BODY " if key.body_only else b"TEXT ") + string(key.value)
    if isinstance(key, SearchDate):
        word = (b"SENT" if key.sent else b"") + key.relation.upper().encode()
        return word + b" " + _date(key.when).encode()
    if isinstance(key, SearchSize):
        return key.relation.upper().encode() + b" %d" % key.size
    if isinstance(key, SearchNot):
        return b"NOT " + wire(key.key)
    if isinstance(key, SearchOr):
        return b"OR " + wire(key.left) + b" " + wire(key.right)
    assert isinstance(key, SearchAnd)
    return b"(" + b" ".join(wire(k) for k in key.keys) + b")"


def _segments(line: bytes) -> list[bytes]:
    """Split a line whose strings may be literals ``{n}\\r\\n…`` into framed segments."""
    from pli.mailbox.imap.framing import CommandFramer, Framed

    framer = CommandFramer(Limits())
    buffer = bytearray(line + b"\r\n")
    while True:
        result = framer.next(buffer)
        assert result is not None
        if isinstance(result, Framed):
            return result.segments


def _unwrap(key: SearchKey) -> SearchKey:
    """A parenthesised single key is that key; a group is an AND of its keys."""
    if isinstance(key, SearchAnd) and len(key.keys) == 1:
        return _unwrap(key.keys[0])
    if isinstance(key, SearchAnd):
        return SearchAnd(tuple(_unwrap(k) for k in key.keys))
    if isinstance(key, SearchNot):
        return SearchNot(_unwrap(key.key))
    if isinstance(key, SearchOr):
        return SearchOr(_unwrap(key.left), _unwrap(key.right))
    return key


@given(keys)
@settings(max_examples=300)
def test_generated_search_parses_back(key: SearchKey) -> None:
    command = parse_command(_segments(b"t SEARCH CHARSET UTF-8 " + wire(key)))
    assert isinstance(command, c.Search)
    assert command.key == _unwrap(key)


sections = st.builds(
    Section,
    st.lists(st.integers(1, 30), max_size=3).map(tuple),
    st.sampled_from(["", "HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"]),
)
bodies = st.builds(
    lambda section, fields, peek, partial: FetchBody(
        Section(section.part, section.text, tuple(fields) if "FIELDS" in section.text else ()),
        peek,
        partial,
    ),
    sections,
    st.lists(atoms, min_size=1, max_size=3, unique=True),
    st.booleans(),
    st.none() | st.tuples(st.integers(0, 1000), st.integers(1, 1000)),
)
attributes = st.lists(
    st.sampled_from(list(FetchItem)) | bodies, min_size=1, max_size=6, unique=True
)


@given(attributes)
def test_generated_fetch_parses_back(wanted: list[FetchItem | FetchBody]) -> None:
    def spell(attribute: FetchItem | FetchBody) -> bytes:
        if isinstance(attribute, FetchItem):
            return attribute.value.encode()
        label = attribute.label().replace(b"BODY[", b"BODY.PEEK[" if attribute.peek else b"BODY[")
        if attribute.partial is not None:
            label = label.rsplit(b"<", 1)[0] + b"<%d.%d>" % attribute.partial
        return label

    line = b"t FETCH 1:* (" + b" ".join(spell(a) for a in wanted) + b")"
    command = parse_command(_segments(line))
    assert isinstance(command, c.Fetch)
    assert list(command.attributes) == wanted


@given(
    st.lists(command_bytes, min_size=1, max_size=6),
    st.lists(st.integers(1, 40), max_size=12),
    st.sampled_from(list(State)[:3]),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_transcript_does_not_depend_on_packet_boundaries(
    commands: list[bytes], cuts: list[int], state: State
) -> None:
    data = b"".join(b"t%d " % i + command + b"\r\n" for i, command in enumerate(commands))
    pieces, position = [], 0
    for size in cuts:
        pieces.append(data[position : position + size])
        position += size
    pieces.append(data[position:])
    pieces = [piece for piece in pieces if piece]  # b"" would mean end of stream
    limits = Limits(line_length=8192)
    whole = run([data], conn=ImapConnection(limits, state=state), eof=True)
    cut = run(pieces, conn=ImapConnection(limits, state=state), eof=True)
    assert cut.events == whole.events
    assert cut.output == whole.output
