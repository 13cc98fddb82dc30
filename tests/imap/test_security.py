"""Attack-named tests: what hostile input gets (BAD, NO, or BYE and close), never a crash, never
unbounded memory, never an injected command."""

from __future__ import annotations

import pytest
from plitest.imap_wire import byte_by_byte, every_split, run, whole

from pli.mailbox.imap import commands as c
from pli.mailbox.imap import mutf7
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.errors import MailboxNameError
from pli.mailbox.imap.events import (
    NEED_DATA,
    ConnectionClosed,
    ContinuationRequest,
    ProtocolError,
)
from pli.mailbox.imap.limits import (
    MAX_ARGUMENT_LITERAL,
    MAX_DISCARDED_LITERAL,
    MAX_LIST_ITEMS,
    MAX_NESTING,
    Limits,
)
from pli.mailbox.imap.response import tagged
from pli.mailbox.imap.states import State

INJECTED = b"b LOGIN joe secret\r\nc SELECT INBOX\r\n"


def _starttls_until_handshake(chunks: list[bytes]) -> ImapConnection:
    """Play STARTTLS: the command, the OK, then the plaintext chunks that arrive before the
    handshake; returns the connection once TLS is established."""
    conn = ImapConnection()
    started = False
    for chunk in chunks:
        conn.receive_data(chunk)
        event = conn.next_event()
        if not started and event is not NEED_DATA:
            assert event == c.StartTls("a")
            assert conn.send_tagged("a", "OK", "Begin TLS negotiation now") == (
                b"a OK Begin TLS negotiation now\r\n"
            )
            started = True
            event = conn.next_event()
        assert event is NEED_DATA
    assert started
    conn.tls_established()
    return conn


def test_starttls_command_injection_is_discarded() -> None:
    """Commands pipelined after STARTTLS in the plaintext stream never run, wherever the packet
    boundaries fall (CVE-2011-0411 class, "NO STARTTLS")."""
    plaintext = b"a STARTTLS\r\n" + INJECTED
    for chunks in [whole(plaintext), *every_split(plaintext)]:
        conn = _starttls_until_handshake(chunks)
        assert conn.discarded_after_starttls == len(INJECTED)
        assert conn.next_event() is NEED_DATA  # nothing of the injection is left
        conn.receive_data(b"d LOGIN joe secret\r\n")  # now inside TLS
        assert conn.next_event() == c.Login("d", "joe", "secret")
        assert conn.tls_active and conn.state is State.NOT_AUTHENTICATED


def test_starttls_injection_inside_a_literal_is_discarded_too() -> None:
    conn = _starttls_until_handshake([b"a STARTTLS\r\nb LOGIN {5}\r\n", b"joe x\r\n"])
    assert conn.next_event() is NEED_DATA


def test_starttls_refused_when_tls_is_already_active() -> None:
    conn = ImapConnection(tls_active=True)
    transcript = run([b"a STARTTLS\r\nb NOOP\r\n"], conn=conn)
    assert transcript.events[0] == ProtocolError(
        "a", "BAD", "TLS is already active", b"a BAD TLS is already active\r\n"
    )
    assert transcript.events[1] == c.Noop("b")


def test_starttls_declined_by_the_session_returns_to_commands() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a STARTTLS\r\n")
    assert conn.next_event() == c.StartTls("a")
    conn.send_tagged("a", "NO", "TLS not available")
    conn.receive_data(b"b NOOP\r\n")
    assert conn.next_event() == c.Noop("b")


def test_literal_too_large() -> None:
    """A synchronizing literal over the limit is refused before the client sends it."""
    data = b"a LOGIN {%d}\r\nb NOOP\r\n" % (MAX_ARGUMENT_LITERAL + 1)
    for chunks in [whole(data), byte_by_byte(data)]:
        transcript = run(chunks)
        assert transcript.events == [
            ProtocolError("a", "BAD", "Literal too large", b"a BAD Literal too large\r\n"),
            c.Noop("b"),
        ]
    # exactly at the limit: accepted
    transcript = run([b"a LOGIN {%d}\r\n" % MAX_ARGUMENT_LITERAL])
    assert transcript.events == [ContinuationRequest(b"+ Ready for literal data\r\n")]


def test_append_too_large_is_toobig() -> None:
    limits = Limits(message_size=1000)
    conn = ImapConnection(limits, state=State.AUTHENTICATED)
    transcript = run([b"a APPEND INBOX {1001}\r\nb NOOP\r\n"], conn=conn)
    assert transcript.events[0] == ProtocolError(
        "a", "NO", "Message too large", b"a NO [TOOBIG] Message too large\r\n", "TOOBIG"
    )
    assert transcript.events[1] == c.Noop("b")
    conn = ImapConnection(limits, state=State.SELECTED)
    accepted = run([b"a APPEND INBOX {1000}\r\n"], conn=conn)
    assert accepted.events == [ContinuationRequest(b"+ Ready for literal data\r\n")]


def test_anonymous_append_cannot_make_us_buffer_a_message() -> None:
    """Before authentication APPEND's literal gets the small argument limit, not message_size:
    an anonymous peer cannot make the server hold megabytes."""
    transcript = run([b"a APPEND INBOX {%d}\r\n" % (MAX_ARGUMENT_LITERAL + 1)])
    assert transcript.errors[0].data == b"a BAD Literal too large\r\n"


def test_literal_too_large_non_synchronizing_is_discarded_in_constant_memory() -> None:
    """{n+} over the limit: the octets are read and dropped as they come (RFC 7888 §4), so the
    commands hidden inside never run and memory stays at one chunk."""
    hidden = b"x DELETE INBOX\r\n" * 20000
    size = len(hidden)
    assert size > MAX_ARGUMENT_LITERAL
    data = b"a LOGIN joe {%d+}\r\n%b more\r\nb NOOP\r\n" % (size, hidden)
    conn = ImapConnection(state=State.NOT_AUTHENTICATED)
    events = []
    for start in range(0, len(data), 4096):
        conn.receive_data(data[start : start + 4096])
        assert len(conn._buffer) <= 4096
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, c.Command):
                conn.send_tagged(event.tag, "OK", "done")
    assert events == [
        ProtocolError("a", "BAD", "Literal too large", b"a BAD Literal too large\r\n"),
        c.Noop("b"),
    ]


def test_huge_non_synchronizing_literal_closes_the_connection() -> None:
    transcript = run([b"a APPEND INBOX {%d+}\r\n" % (MAX_DISCARDED_LITERAL + 1)])
    assert transcript.events[1:] == [ConnectionClosed()]
    [error] = transcript.errors
    assert error.fatal
    assert error.data == b"* BYE Literal too large\r\n"
    assert transcript.conn is not None and transcript.conn.closed


def test_unparseable_literal_size_closes_the_connection() -> None:
    """If the size of a literal cannot be read, its octets cannot be skipped: answering BAD and
    reading on would run them as commands. Close instead."""
    for marker in (b"{5x+}", b"{}", b"{99999999999999999999999}"):
        transcript = run([b"a LOGIN joe " + marker + b"\r\nz DELETE INBOX\r\n"])
        assert [type(e) for e in transcript.events] == [ProtocolError, ConnectionClosed]
        assert transcript.errors[0].fatal
        assert transcript.commands == []


def test_unterminated_literal() -> None:
    """The peer announces a literal and stops: nothing is emitted, and at end of stream the
    connection closes as incomplete."""
    transcript = run([b"a LOGIN {64}\r\n", b"only a few octets"], eof=True)
    assert transcript.events == [
        ContinuationRequest(b"+ Ready for literal data\r\n"),
        ConnectionClosed(incomplete=True),
    ]
    assert transcript.commands == []


def test_unterminated_quoted_string_is_bad() -> None:
    transcript = run([b'a LOGIN "joe\r\nb NOOP\r\n'])
    assert transcript.events[0] == ProtocolError(
        "a", "BAD", "unterminated quoted string", b"a BAD unterminated quoted string\r\n"
    )
    assert transcript.events[1] == c.Noop("b")


def test_overlong_line_in_constant_memory() -> None:
    limits = Limits(line_length=8192)
    conn = ImapConnection(limits)
    conn.receive_data(b"a1 LOGIN ")
    for _ in range(2000):  # 8 MB without a line end
        conn.receive_data(b"x" * 4096)
        assert conn.next_event() is NEED_DATA
        assert len(conn._buffer) <= limits.line_length + 4096
    conn.receive_data(b"\r\na2 NOOP\r\n")
    assert conn.next_event() == ProtocolError(
        "a1", "BAD", "Command line too long", b"a1 BAD Command line too long\r\n"
    )
    assert conn.next_event() == c.Noop("a2")


def test_overlong_line_ending_with_a_non_synchronizing_literal_skips_the_literal() -> None:
    limits = Limits(line_length=8192)
    data = b"a LOGIN " + b"x" * 9000 + b" {20+}\r\nz DELETE INBOX\r\n    \r\nb NOOP\r\n"
    transcript = run(whole(data), limits=limits)
    assert [e.tag for e in transcript.events] == ["a", "b"]
    assert transcript.commands == [c.Noop("b")]


def _search(depth: int) -> bytes:
    return b"a SEARCH " + b"(" * depth + b"ALL" + b")" * depth + b"\r\n"


def test_deep_parentheses() -> None:
    conn = ImapConnection(state=State.SELECTED)
    transcript = run([_search(MAX_NESTING)], conn=conn)
    assert [type(e) for e in transcript.events] == [c.Search]
    for depth in (MAX_NESTING + 1, 5000):
        conn = ImapConnection(state=State.SELECTED)
        transcript = run([_search(depth)], conn=conn)
        [error] = transcript.errors
        assert error.data == b"a BAD parentheses nested deeper than %d\r\n" % MAX_NESTING


def test_deep_not_and_or_chains() -> None:
    for prefix in (b"NOT ", b"OR ALL "):
        conn = ImapConnection(state=State.SELECTED)
        transcript = run([b"a SEARCH " + prefix * 5000 + b"ALL\r\n"], conn=conn)
        [error] = transcript.errors
        assert error.data == b"a BAD search keys nested deeper than %d\r\n" % MAX_NESTING


def test_too_many_search_keys() -> None:
    conn = ImapConnection(state=State.SELECTED)
    transcript = run([b"a SEARCH" + b" SEEN" * (MAX_LIST_ITEMS + 1) + b"\r\n"], conn=conn)
    [error] = transcript.errors
    assert error.data == b"a BAD more than %d search keys\r\n" % MAX_LIST_ITEMS


def test_invalid_utf7_name() -> None:
    """The name is framed and parsed (the wire form is kept); decoding it refuses it with a
    clear error for the session's NO (imaptest atoms: `no select` of such a name)."""
    for wire in ("&Jjo", "!#$&'+,-.0123456789:;<=>?@^_`|[}", "&AGE-", "&AOQ-&AOQ-", "caf\xe9"):
        conn = ImapConnection(state=State.AUTHENTICATED)
        literal = wire.encode("utf-8", "surrogateescape")
        transcript = run([b"a SELECT {%d+}\r\n%b\r\n" % (len(literal), literal)], conn=conn)
        [select] = transcript.commands
        assert isinstance(select, c.Select) and select.mailbox == wire
        with pytest.raises(MailboxNameError, match=r"RFC 3501 §5\.1\.3"):
            mutf7.decode(select.mailbox)


def test_response_text_cannot_inject_a_line() -> None:
    line = tagged("a", "NO", "no mailbox x\r\n* OK [ALERT] fake\r\nb OK", "TRYCREATE")
    assert line.count(b"\r\n") == 1 and line.endswith(b"\r\n")
    assert b"\x00" not in tagged("a", "NO", "nul\x00here")


def test_sasl_response_too_long() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    assert conn.next_event() == c.Authenticate("a", "PLAIN")
    conn.send_sasl_challenge(b"")
    conn.receive_data(b"A" * (conn.limits.sasl_line + 10) + b"\r\nb NOOP\r\n")
    error = conn.next_event()
    assert error == ProtocolError(
        "a",
        "BAD",
        "Authentication response too long",
        b"a BAD Authentication response too long\r\n",
    )
    assert conn.next_event() == c.Noop("b")
    assert conn.state is State.NOT_AUTHENTICATED


def test_invalid_tag_gets_untagged_bad() -> None:
    for line in (b"+a NOOP\r\n", b"a\xff NOOP\r\n", b"NOOP\r\n", b"(x) NOOP\r\n", b"a\r\n"):
        transcript = run([line, b"b NOOP\r\n"])
        assert transcript.events[0] == ProtocolError(
            None,
            "BAD",
            "Invalid tag or missing command",
            b"* BAD Invalid tag or missing command\r\n",
        ), line
        assert transcript.events[1] == c.Noop("b")


def test_nul_and_bad_escapes_in_quoted_strings_are_bad() -> None:
    for argument, text in ((b'"a\x00b"', b"NUL in string"), (b'"a\\nb"', b"invalid escape")):
        transcript = run([b"a LOGIN " + argument + b' "p"\r\n'])
        assert transcript.errors[0].data.startswith(b"a BAD " + text)


def test_nul_in_a_literal_argument_is_bad() -> None:
    transcript = run([b"a LOGIN {3+}\r\na\x00b x\r\n"])
    assert transcript.errors[0].data == b"a BAD NUL in literal\r\n"


def test_idle_accepts_only_done() -> None:
    conn = ImapConnection(state=State.AUTHENTICATED)
    conn.receive_data(b"a IDLE\r\nb LOGOUT\r\nc NOOP\r\n")
    assert conn.next_event() == c.Idle("a")
    assert conn.send_continuation("idling") == b"+ idling\r\n"
    assert conn.next_event() == ProtocolError(
        "a", "BAD", "Expected DONE to end IDLE", b"a BAD Expected DONE to end IDLE\r\n"
    )
    assert conn.in_progress is None
    assert conn.next_event() == c.Noop("c")
