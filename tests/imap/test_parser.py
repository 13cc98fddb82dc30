"""The typed commands: exact values for every command of RFC 3501 and the extensions, and the
BAD (or NO) every malformed one gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.errors import ParseError
from pli.mailbox.imap.fetch import FetchBody, FetchItem, Section
from pli.mailbox.imap.framing import CommandFramer, Framed
from pli.mailbox.imap.limits import MAX_ID_PAIRS, MAX_LIST_ITEMS, Limits
from pli.mailbox.imap.parser import parse_command, parse_tag
from pli.mailbox.imap.search import SearchAll, SearchAnd, SearchFlag, SearchSequence
from pli.mailbox.imap.sequence import STAR, SequenceSet


def parse(data: bytes) -> c.Command:
    """Frame ``data`` (a whole command with its CRLF, literals inline) and parse it."""
    framer = CommandFramer(Limits())
    buffer = bytearray(data)
    while True:
        result = framer.next(buffer)
        assert result is not None, "incomplete command"
        if isinstance(result, Framed):
            assert buffer == b""
            return parse_command(result.segments)


def bad(data: bytes) -> str:
    with pytest.raises(ParseError) as raised:
        parse(data)
    assert raised.value.status == "BAD"
    return raised.value.text


ALL_SET = SequenceSet(((1, STAR),))

PARSED = [
    (b"a CAPABILITY", c.Capability("a")),
    (b"a noop", c.Noop("a")),
    (b"a LOGOUT", c.Logout("a")),
    (b"a STARTTLS", c.StartTls("a")),
    (b"a NAMESPACE", c.Namespace("a")),
    (b"a CHECK", c.Check("a")),
    (b"a CLOSE", c.Close("a")),
    (b"a UNSELECT", c.Unselect("a")),
    (b"a EXPUNGE", c.Expunge("a")),
    (b"a IDLE", c.Idle("a")),
    (b"a ID NIL", c.Id("a", None)),
    (
        b'a ID ("name" "Thunderbird" "version" NIL)',
        c.Id("a", (("name", "Thunderbird"), ("version", None))),
    ),
    (b"a ID ()", c.Id("a", ())),
    (b"a AUTHENTICATE plain", c.Authenticate("a", "PLAIN")),
    (b"a AUTHENTICATE PLAIN =", c.Authenticate("a", "PLAIN", b"")),
    (b"a AUTHENTICATE PLAIN AGpvZQBwdw==", c.Authenticate("a", "PLAIN", b"\x00joe\x00pw")),
    (b"a AUTHENTICATE XOAUTH2 dXNlcj0=", c.Authenticate("a", "XOAUTH2", b"user=")),
    (b'a LOGIN joe "p w\\"\\\\"', c.Login("a", "joe", 'p w"\\')),
    (b"a LOGIN {3}\r\njo\xc3 {2+}\r\n\xe9t", c.Login("a", "jo\udcc3", "\udce9t")),
    (b"a LOGIN joe]x pw", c.Login("a", "joe]x", "pw")),
    (b"a SELECT inbox", c.Select("a", "INBOX")),
    (b"a SELECT INBOX.Sent", c.Select("a", "INBOX.Sent")),
    (b'a SELECT "Sent &AOk-l&AOk-ments"', c.Select("a", "Sent &AOk-l&AOk-ments")),
    (b"a SELECT INBOX (CONDSTORE)", c.Select("a", "INBOX", condstore=True)),
    (b"a EXAMINE Archive", c.Select("a", "Archive", read_only=True)),
    (b"a CREATE Drafts", c.Create("a", "Drafts")),
    (b"a CREATE Sent (USE (\\Sent))", c.Create("a", "Sent", ("\\Sent",))),
    (b"a DELETE x", c.Delete("a", "x")),
    (b"a RENAME old new", c.Rename("a", "old", "new")),
    (b"a RENAME inbox Old", c.Rename("a", "INBOX", "Old")),
    (b"a SUBSCRIBE x", c.Subscribe("a", "x")),
    (b"a UNSUBSCRIBE x", c.Subscribe("a", "x", subscribe=False)),
    (b'a LIST "" *', c.List("a", "", ("*",))),
    (b'a LIST "" ~foo', c.List("a", "", ("~foo",))),
    (b'a LIST "" NIL', c.List("a", "", ("NIL",))),
    (
        b'a LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*',
        c.List("a", "", ("!#$&'+,-.0123456789:;<=>?@^_`|[}%*",)),
    ),
    (b"a LIST INBOX. %", c.List("a", "INBOX.", ("%",))),
    (b'a LIST "" ("a*" b%)', c.List("a", "", ("a*", "b%"), extended=True)),
    (
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)',
        c.List(
            "a",
            "",
            ("%",),
            select_options=("SUBSCRIBED", "RECURSIVEMATCH"),
            return_options=("CHILDREN",),
            extended=True,
        ),
    ),
    (
        b'a LIST () "" % RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))',
        c.List(
            "a",
            "",
            ("%",),
            return_options=("SPECIAL-USE", "STATUS"),
            status_items=("MESSAGES", "UNSEEN"),
            extended=True,
        ),
    ),
    (
        b'a LIST (SPECIAL-USE) "" *',
        c.List("a", "", ("*",), select_options=("SPECIAL-USE",), extended=True),
    ),
    (b'a LSUB "" %', c.List("a", "", ("%",), lsub=True)),
    (
        b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT HIGHESTMODSEQ)",
        c.Status(
            "a",
            "INBOX",
            ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "HIGHESTMODSEQ"),
        ),
    ),
    (b"a STATUS x (messages messages)", c.Status("a", "x", ("MESSAGES",))),
    (b"a STATUS x (APPENDLIMIT)", c.Status("a", "x", ("APPENDLIMIT",))),
    (b"a APPEND INBOX {5}\r\nhello", c.Append("a", "INBOX", (), None, b"hello")),
    (
        b'a APPEND Sent (\\SEEN $Label1) "05-Feb-2024 13:14:15 -0130" {2+}\r\nhi',
        c.Append(
            "a",
            "Sent",
            ("\\Seen", "$Label1"),
            datetime(2024, 2, 5, 13, 14, 15, tzinfo=timezone(-timedelta(hours=1, minutes=30))),
            b"hi",
        ),
    ),
    (
        b'a APPEND x " 5-Feb-2024 01:02:03 +0000" ~{3}\r\n\x00\x01\x02',
        c.Append(
            "a", "x", (), datetime(2024, 2, 5, 1, 2, 3, tzinfo=UTC), b"\x00\x01\x02", binary=True
        ),
    ),
    (b"a APPEND x () {0}\r\n", c.Append("a", "x", (), None, b"")),
    (
        b"a APPEND x {1}\r\nA (\\Seen) {1}\r\nB",
        c.Append("a", "x", (), None, b"A", more=(c.AppendMessage(("\\Seen",), None, b"B"),)),
    ),
    (b"a ENABLE condstore utf8=accept", c.Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"a SEARCH ALL", c.Search("a", SearchAll())),
    (b"a SEARCH RETURN () ALL", c.Search("a", SearchAll(), return_options=("ALL",))),
    (
        b"a UID SEARCH RETURN (min COUNT min) CHARSET UTF-8 ALL",
        c.Search("a", SearchAll(), "UTF-8", True, ("MIN", "COUNT")),
    ),
    (
        b"a UID SEARCH CHARSET utf-8 SEEN 1:*",
        c.Search("a", SearchAnd((SearchFlag("\\Seen"), SearchSequence(ALL_SET))), "UTF-8", True),
    ),
    (b"a FETCH 1:* FLAGS", c.Fetch("a", ALL_SET, (FetchItem.FLAGS,))),
    (
        b"a FETCH 1 fast",
        c.Fetch(
            "a", SequenceSet.of(1), (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE)
        ),
    ),
    (
        b"a UID FETCH 5:* (FLAGS) (CHANGEDSINCE 12345)",
        c.Fetch(
            "a",
            SequenceSet(((5, STAR),)),
            (FetchItem.UID, FetchItem.FLAGS, FetchItem.MODSEQ),
            True,
            12345,
        ),
    ),
    (
        b"a UID FETCH 1 (FLAGS UID)",
        c.Fetch("a", SequenceSet.of(1), (FetchItem.FLAGS, FetchItem.UID), True),
    ),
    (b"a STORE 1 FLAGS (\\Deleted)", c.Store("a", SequenceSet.of(1), "replace", ("\\Deleted",))),
    (
        b"a STORE 1 +FLAGS.SILENT \\Seen \\Flagged",
        c.Store("a", SequenceSet.of(1), "add", ("\\Seen", "\\Flagged"), silent=True),
    ),
    (b"a STORE 1 -flags ()", c.Store("a", SequenceSet.of(1), "remove", ())),
    (b"a STORE 2 +flags NIL", c.Store("a", SequenceSet.of(2), "add", ("NIL",))),
    (
        b"a UID STORE 1:* (UNCHANGEDSINCE 7) FLAGS.SILENT ($x)",
        c.Store("a", ALL_SET, "replace", ("$x",), True, True, 7),
    ),
    (b"a COPY 1:3 Archive", c.Copy("a", SequenceSet(((1, 3),)), "Archive")),
    (b"a UID COPY 4 inbox", c.Copy("a", SequenceSet.of(4), "INBOX", True)),
    (b"a MOVE 1 Trash", c.Move("a", SequenceSet.of(1), "Trash")),
    (b"a UID MOVE 1,2 Trash", c.Move("a", SequenceSet.of(1, 2), "Trash", True)),
    (b"a UID EXPUNGE 3:5", c.Expunge("a", SequenceSet(((3, 5),)))),
    (b'A1.x]y SELECT "x"', c.Select("A1.x]y", "x")),
]


@pytest.mark.parametrize(
    ("line", "command"), PARSED, ids=[p[0].decode("latin-1")[:40] for p in PARSED]
)
def test_parse(line: bytes, command: c.Command) -> None:
    assert parse(line + b"\r\n") == command


BAD = [
    (b"a FOO", "unknown command FOO"),
    (b"a UID FOO 1", "unknown UID command FOO"),
    (b"a UID SELECT 1", "unknown UID command SELECT"),
    (b"a NOOP extra", "unexpected characters at end of command"),
    (b"a NOOP ", "unexpected characters at end of command"),
    (b"a  NOOP", "expected an atom"),
    (b"a LOGIN joe", "expected a space"),
    (b"a LOGIN joe pw x", "unexpected characters at end of command"),
    (b"a LOGIN (joe) pw", "expected a string"),
    (b"a AUTHENTICATE PLAIN !!", "expected a base64 initial response"),
    (b"a AUTHENTICATE PLAIN AAA", "invalid base64"),
    (b"a SELECT INBOX (QRESYNC)", "unsupported SELECT parameter QRESYNC"),
    (b"a SELECT INBOX (CONDSTORE", "expected ')'"),
    (b"a CREATE x (FOO)", "unsupported CREATE parameter"),
    (b"a STATUS x (MESSAGES FOO)", "unknown STATUS item FOO"),
    (b"a STATUS x ()", "STATUS needs at least one item"),
    (b"a STATUS x MESSAGES", "expected '('"),
    (b'a LIST (imaptest) "" ""', "unknown LIST selection option IMAPTEST"),
    (
        b'a LIST (recursivematch) "" ""',
        "RECURSIVEMATCH needs another selection option (RFC 5258 §3)",
    ),
    (
        b'a LIST (recursivematch remote) "" ""',
        "RECURSIVEMATCH needs another selection option (RFC 5258 §3)",
    ),
    (b'a LIST "" "" return (imaptest)', "unknown LIST return option IMAPTEST"),
    (b'a LIST "" "" FOO (x)', "expected RETURN"),
    (b"a APPEND x", "expected a space"),
    (b'a APPEND x "hello"', "invalid date-time (expected dd-Mon-yyyy hh:mm:ss +zzzz)"),
    (
        b'a APPEND x "31-Feb-2024 01:02:03 +0000" {1+}\r\nx',
        "invalid date-time (no such day or time)",
    ),
    (b'a APPEND x "01-Feb-2024 01:02:03 +9900" {1+}\r\nx', "invalid time zone in date-time"),
    (b"a APPEND x (\\Recent) {1+}\r\nx", "\\Recent cannot be stored (RFC 3501 §2.3.2)"),
    (b"a STORE 1 +FLAGS (\\Foo)", "\\Foo cannot be stored (RFC 3501 §2.3.2)"),
    (b"a STORE 1 FLAGZ (\\Seen)", "expected [+|-]FLAGS[.SILENT]"),
    (b"a STORE 0 FLAGS (\\Seen)", "invalid sequence set"),
    (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()", "expected a number"),
    (b"a FETCH 1 (CHANGEDSINCE 1)", "unknown FETCH attribute CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (VANISHED)", "expected (CHANGEDSINCE n)"),
    (b"a FETCH 1:2:3 FLAGS", "invalid sequence set"),
    (b"a FETCH 01 FLAGS", "invalid sequence set"),
    (b"a FETCH 4294967296 FLAGS", "number out of range in sequence set"),
    (b"a FETCH 1 (ALL)", "unknown FETCH attribute ALL"),
    (b"a FETCH 1 BINARY[1.HEADER]", "BINARY sections are part numbers only (RFC 3516)"),
    (b"a FETCH 1 BINARY.SIZES[1]", "unknown FETCH attribute BINARY.SIZES["),
    (b"a FETCH 1 BODY[1.MIME.TEXT]", "unknown section MIME.TEXT"),
    (b"a FETCH 1 BODY[MIME]", "MIME needs a part number (RFC 3501 §6.4.5)"),
    (b"a FETCH 1 BODY[0]", "expected a non-zero number"),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "expected header field names"),
    (b"a FETCH 1 ()", "expected FETCH attributes"),
    (b'a LIST "" ()', "expected LIST patterns"),
    (b"a STATUS x (MESSAGES", "expected ')'"),
    (b"a FETCH 1 BODY[]<1.0>", "expected a non-zero number"),
    (b"a FETCH 1 BODY[]<1>", "expected '.'"),
    (b"a ENABLE", "ENABLE needs a capability name"),
    (b"a ID", "expected a space"),
    (b'a ID ("k")', "expected a space"),
    (b"a ID FOO", "expected ID parameters or NIL"),
    (b"a SEARCH", "expected a space"),
    (b"a SEARCH FOO", "unknown search key FOO"),
    (b"a SEARCH RETURN (SAVE) ALL", "unknown SEARCH return option SAVE"),
    (b"a SEARCH RETURN ALL", "expected '('"),
    (b"a SEARCH (SEEN", "expected ')' in SEARCH"),
    (b"a SEARCH SEEN)", "unexpected characters at end of command"),
    (b"a SEARCH ()", "expected an atom"),
    (b"a SEARCH SINCE 32-Jan-2024", "invalid date (no such day)"),
    (b"a SEARCH SINCE 1-Foo-2024", "invalid month 'Foo' in date"),
    (b"a SEARCH SINCE 2024-01-01", "invalid date (expected d-Mon-yyyy)"),
    (b"a SEARCH LARGER -1", "expected a number"),
    (b"a SEARCH KEYWORD \\Seen", "expected an atom"),
    (b"a SEARCH SUBJECT {2+}\r\n\xff\xfe", "search string is not valid UTF-8"),
    (b'a SEARCH MODSEQ "/flags/\\\\Seen" bogus 5', "MODSEQ entry type must be priv, shared or all"),
    (b"a SEARCH MODSEQ 9223372036854775808", "number out of range"),
    (b"a SEARCH $", "unknown search key $"),
    (b"a SELECT " + b"x" * 4097, "mailbox name longer than 4096 octets"),
]


@pytest.mark.parametrize(("line", "text"), BAD, ids=[b[0].decode("latin-1")[:40] for b in BAD])
def test_bad(line: bytes, text: str) -> None:
    assert bad(line + b"\r\n").startswith(text)


def test_unsupported_charset_is_no_badcharset() -> None:
    with pytest.raises(ParseError) as raised:
        parse(b"a SEARCH CHARSET ISO-8859-1 SUBJECT x\r\n")
    assert (raised.value.status, raised.value.code) == ("NO", "BADCHARSET (US-ASCII UTF-8)")


def test_list_limits() -> None:
    flags = b" ".join(b"$k%d" % n for n in range(MAX_LIST_ITEMS + 1))
    assert bad(b"a STORE 1 +FLAGS (" + flags + b")\r\n") == f"more than {MAX_LIST_ITEMS} flags"
    assert bad(b"a STORE 1 +FLAGS " + flags + b"\r\n") == f"more than {MAX_LIST_ITEMS} flags"
    fields = b" ".join(b"X-%d" % n for n in range(MAX_LIST_ITEMS + 1))
    assert bad(b"a FETCH 1 BODY[HEADER.FIELDS (" + fields + b")]\r\n") == (
        f"more than {MAX_LIST_ITEMS} header field names"
    )
    atts = b" ".join([b"UID"] * (MAX_LIST_ITEMS + 1))
    assert bad(b"a FETCH 1 (" + atts + b")\r\n") == f"more than {MAX_LIST_ITEMS} FETCH attributes"


def test_id_limits_of_rfc_2971() -> None:
    pair = b'"%s" "%s"'
    at_limit = b" ".join(pair % (b"f" * 30, b"v" * 1024) for _ in range(MAX_ID_PAIRS))
    assert isinstance(parse(b"a ID (" + at_limit + b")\r\n"), c.Id)  # imaptest's id test
    assert bad(b'a ID ("' + b"f" * 31 + b'" "v")\r\n').startswith("ID field or value too long")
    assert bad(b'a ID ("f" "' + b"v" * 1025 + b'")\r\n').startswith("ID field or value too long")
    over = b" ".join(pair % (b"f", b"v") for _ in range(MAX_ID_PAIRS + 1))
    assert bad(b"a ID (" + over + b")\r\n") == "more than 30 ID pairs (RFC 2971 §3.3)"


def test_parse_tag() -> None:
    assert parse_tag([b"a1 NOOP"]) == "a1"
    assert parse_tag([b"a1"]) is None
    assert parse_tag([b"+a NOOP"]) is None
    assert parse_tag([b""]) is None


def test_fetch_bodies_and_labels() -> None:
    command = parse(
        b"a FETCH 1 (BODY[] BODY.PEEK[HEADER] BODY[1.2.MIME] BODY[TEXT]<5.10> "
        b'BODY.PEEK[2.HEADER.FIELDS.NOT (Date "X-Y z")] RFC822 RFC822.HEADER RFC822.TEXT)\r\n'
    )
    assert isinstance(command, c.Fetch)
    bodies = command.attributes
    assert [(a.label(), a.sets_seen) for a in bodies if isinstance(a, FetchBody)] == [
        (b"BODY[]", True),
        (b"BODY[HEADER]", False),
        (b"BODY[1.2.MIME]", True),
        (b"BODY[TEXT]<5>", True),
        (b'BODY[2.HEADER.FIELDS.NOT (Date "X-Y z")]', False),
        (b"RFC822", True),
        (b"RFC822.HEADER", False),
        (b"RFC822.TEXT", True),
    ]
    assert bodies[4] == FetchBody(Section((2,), "HEADER.FIELDS.NOT", ("Date", "X-Y z")), peek=True)
    assert bodies[3].cut(b"0123456789abcdefghij") == b"56789abcde"  # type: ignore[union-attr]
    assert bodies[3].cut(b"0123") == b""  # type: ignore[union-attr]


def test_fetch_macros_and_duplicates() -> None:
    full = parse(b"a FETCH 1 FULL\r\n")
    assert isinstance(full, c.Fetch)
    assert full.attributes == (
        FetchItem.FLAGS,
        FetchItem.INTERNALDATE,
        FetchItem.RFC822_SIZE,
        FetchItem.ENVELOPE,
        FetchItem.BODY,
    )
    dup = parse(b"a FETCH 1 (UID FLAGS uid BODYSTRUCTURE MODSEQ)\r\n")
    assert isinstance(dup, c.Fetch)
    assert dup.attributes == (
        FetchItem.UID,
        FetchItem.FLAGS,
        FetchItem.BODYSTRUCTURE,
        FetchItem.MODSEQ,
    )


def test_login_repr_hides_the_password() -> None:
    assert "secret" not in repr(c.Login("a", "joe", "secret"))
    assert "hello" not in repr(c.Append("a", "x", (), None, b"hello"))
