"""Protocol tier: command framing, literals and limits, fed whole, byte by byte and split at every
offset; the transcript (events and bytes written) must not depend on how the input is cut."""

from __future__ import annotations

import pytest
from plitest.imap_wire import byte_by_byte, every_split, run, whole

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.events import NEED_DATA, ConnectionClosed, ContinuationRequest, ProtocolError
from pli.mailbox.imap.framing import CommandFramer, Framed, LiteralAccepted, literal_marker
from pli.mailbox.imap.limits import Limits
from pli.mailbox.imap.states import State

LOGIN_WITH_LITERALS = b"a1 LOGIN {3}\r\njoe {6+}\r\nse\r\ncr\r\n"


def _same_everywhere(data: bytes, limits: Limits | None = None) -> tuple[list, bytes]:
    reference = run(whole(data), limits=limits)
    expected = (reference.events, bytes(reference.output))
    assert (lambda t: (t.events, bytes(t.output)))(run(byte_by_byte(data), limits=limits)) == (
        expected
    )
    for chunks in every_split(data):
        transcript = run(chunks, limits=limits)
        assert (transcript.events, bytes(transcript.output)) == expected, chunks
    return expected


def test_synchronizing_literal_asks_for_continuation_and_non_synchronizing_does_not() -> None:
    events, output = _same_everywhere(LOGIN_WITH_LITERALS)
    assert events == [
        ContinuationRequest(b"+ Ready for literal data\r\n"),
        c.Login("a1", "joe", "se\r\ncr"),
    ]
    assert output == b"+ Ready for literal data\r\na1 OK LOGIN done\r\n"


def test_pipelined_commands_come_one_at_a_time_in_order() -> None:
    data = b"a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n"
    events, output = _same_everywhere(data)
    assert events == [c.Noop("a"), c.Capability("b"), c.Logout("c"), ConnectionClosed()]
    assert output == b"a OK NOOP done\r\nb OK CAPABILITY done\r\n* BYE logging out\r\nc OK done\r\n"


def test_literal_framing_of_an_append_with_a_binary_message() -> None:
    message = b"Subject: x\r\n\r\n\x00\xff{5}\r\n"
    data = b"A APPEND INBOX (\\Seen) {%d+}\r\n%b\r\n" % (len(message), message)
    conn = ImapConnection(state=State.AUTHENTICATED)
    transcript = run(whole(data), conn=conn)
    [append] = transcript.commands
    assert isinstance(append, c.Append)
    assert append.message == message
    assert append.flags == ("\\Seen",)


def test_bare_lf_ends_a_line_like_crlf() -> None:
    events, _ = _same_everywhere(b"a NOOP\nb NOOP\r\n")
    assert events == [c.Noop("a"), c.Noop("b")]


def test_empty_lines_between_commands_are_ignored() -> None:
    events, output = _same_everywhere(b"\r\n\r\na NOOP\r\n  \r\n")
    assert events == [c.Noop("a")]
    assert output == b"a OK NOOP done\r\n"


def test_literal_containing_crlf_and_braces_is_not_reframed() -> None:
    events, _ = _same_everywhere(b'a LOGIN {7+}\r\nx {3}\r\n "p"\r\n')
    assert events == [c.Login("a", "x {3}\r\n", "p")]


@pytest.mark.parametrize(
    ("line", "marker"),
    [
        (b"a LOGIN {5}", (5, True)),
        (b"a LOGIN {5+}", (5, False)),
        (b"a APPEND x ~{12}", (12, True)),
        (b"a SELECT foo}", None),
        (b'a SELECT "{5}"', None),
        (b"a SELECT {x}", -1),
        (b"a SELECT {}", -1),
        (b"a SELECT {5-}", -1),
        (b"a SELECT {123456789012345678901}", -1),  # 21 digits: not a size we can read
        (b"a SELECT {a b}", None),
        (b"", None),
    ],
)
def test_literal_marker(line: bytes, marker: object) -> None:
    assert literal_marker(line) == marker


def test_framer_results_directly() -> None:
    framer = CommandFramer(Limits())
    buffer = bytearray(b"a LOGIN {2}\r\nab x\r\n")
    assert framer.next(buffer) == LiteralAccepted(2)
    assert framer.busy
    assert framer.next(buffer) == Framed([b"a LOGIN {2}", b"ab", b" x"])
    assert not framer.busy
    assert framer.next(buffer) is None
    assert buffer == b""


def test_end_of_stream_mid_command_is_an_incomplete_close() -> None:
    transcript = run([b"a LOGIN {10}\r\nabc"], eof=True)
    assert transcript.events == [
        ContinuationRequest(b"+ Ready for literal data\r\n"),
        ConnectionClosed(incomplete=True),
    ]
    transcript = run([b"a NOOP\r\n"], eof=True)
    assert transcript.events == [c.Noop("a"), ConnectionClosed(incomplete=False)]
    conn = transcript.conn
    assert conn is not None and conn.closed
    assert conn.next_event() == ConnectionClosed()


def test_nothing_is_read_after_a_fatal_error() -> None:
    transcript = run([b"a SELECT {x}\r\nb NOOP\r\n"])
    [error] = transcript.errors
    assert error.fatal and error.data == b"* BYE Invalid literal\r\n"
    assert transcript.commands == []
    conn = transcript.conn
    assert conn is not None and conn.closed
    conn.receive_data(b"c NOOP\r\n")
    assert conn.next_event() == ConnectionClosed()


def test_need_data_until_the_line_ends() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a NO")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"OP")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\r\n")
    assert conn.next_event() == c.Noop("a")


def test_line_too_long_is_refused_after_its_end_and_the_next_command_works() -> None:
    limits = Limits(line_length=8192)
    data = b"a1 LOGIN " + b"x" * 9000 + b" y\r\na2 NOOP\r\n"
    events, output = _same_everywhere_sampled(data, limits)
    assert events[0] == ProtocolError(
        "a1", "BAD", "Command line too long", b"a1 BAD Command line too long\r\n"
    )
    assert events[1] == c.Noop("a2")
    assert output.endswith(b"a2 OK NOOP done\r\n")


def _same_everywhere_sampled(data: bytes, limits: Limits) -> tuple[list, bytes]:
    """Like _same_everywhere, for long inputs: every split in the first and last 64 octets and
    around the limit, plus a few fixed chunk sizes."""
    reference = run(whole(data), limits=limits)
    expected = (reference.events, bytes(reference.output))
    offsets = [*range(1, 64), *range(len(data) - 64, len(data)), *range(8150, 8250)]
    for offset in offsets:
        transcript = run([data[:offset], data[offset:]], limits=limits)
        assert (transcript.events, bytes(transcript.output)) == expected, offset
    for size in (1, 7, 1000, 4096):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        transcript = run(chunks, limits=limits)
        assert (transcript.events, bytes(transcript.output)) == expected, size
    return expected


def test_overlong_line_total_counts_every_line_of_the_command() -> None:
    """The line budget is the command's text outside literals, over all its lines."""
    limits = Limits(line_length=8192)
    data = b"a LOGIN {1+}\r\nx " + b"y" * 8180 + b"\r\nb NOOP\r\n"
    transcript = run(whole(data), limits=limits)
    assert transcript.errors[0].text == "Command line too long"
    assert transcript.commands == [c.Noop("b")]
