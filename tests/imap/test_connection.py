"""The connection: states and transitions, IDLE, AUTHENTICATE with SASL-IR and cancel, LOGOUT,
and the guard rails against driving it out of order; plus one long scenario fed whole, byte by
byte and split at every offset with the exact bytes written back."""

from __future__ import annotations

import base64

import pytest
from plitest.imap_wire import byte_by_byte, every_split, run, whole

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.connection import ImapConnection, Mode
from pli.mailbox.imap.errors import ConnectionMisuse
from pli.mailbox.imap.events import (
    NEED_DATA,
    ConnectionClosed,
    IdleDone,
    ProtocolError,
    SaslCancelled,
    SaslResponse,
)
from pli.mailbox.imap.states import ALLOWED, State, after, refusal


def test_every_command_word_of_the_parser_is_in_the_state_table() -> None:
    from pli.mailbox.imap.parser import _COMMANDS

    aliases = {"EXAMINE": "SELECT", "UNSUBSCRIBE": "SUBSCRIBE", "LSUB": "LIST"}
    assert {aliases.get(word, word) for word in _COMMANDS} == set(ALLOWED)


@pytest.mark.parametrize(
    ("state", "line", "reply"),
    [
        (
            State.NOT_AUTHENTICATED,
            b"a SELECT INBOX",
            b"a BAD Not authenticated: LOGIN or AUTHENTICATE first\r\n",
        ),
        (
            State.NOT_AUTHENTICATED,
            b"a FETCH 1 FLAGS",
            b"a BAD Not authenticated: LOGIN or AUTHENTICATE first\r\n",
        ),
        (
            State.NOT_AUTHENTICATED,
            b"a IDLE",
            b"a BAD Not authenticated: LOGIN or AUTHENTICATE first\r\n",
        ),
        (State.AUTHENTICATED, b"a FETCH 1 FLAGS", b"a BAD No mailbox selected\r\n"),
        (State.AUTHENTICATED, b"a CHECK", b"a BAD No mailbox selected\r\n"),
        (State.AUTHENTICATED, b"a UID EXPUNGE 1", b"a BAD No mailbox selected\r\n"),
        (State.AUTHENTICATED, b"a LOGIN x y", b"a BAD Already authenticated\r\n"),
        (
            State.AUTHENTICATED,
            b"a STARTTLS",
            b"a BAD STARTTLS is only valid before authentication\r\n",
        ),
        (State.SELECTED, b"a AUTHENTICATE PLAIN", b"a BAD Already authenticated\r\n"),
        (
            State.SELECTED,
            b"a ENABLE CONDSTORE",
            b"a BAD ENABLE is only valid before SELECT (RFC 5161 \xc2\xa73.1)\r\n",
        ),
    ],
)
def test_command_in_the_wrong_state_is_bad(state: State, line: bytes, reply: bytes) -> None:
    conn = ImapConnection(state=state)
    transcript = run([line + b"\r\nz NOOP\r\n"], conn=conn)
    assert transcript.events[0] == ProtocolError("a", "BAD", transcript.errors[0].text, reply)
    assert transcript.events[1] == c.Noop("z")
    assert conn.state is state


@pytest.mark.parametrize(
    ("state", "command", "status", "new_state"),
    [
        (State.NOT_AUTHENTICATED, "LOGIN", "OK", State.AUTHENTICATED),
        (State.NOT_AUTHENTICATED, "LOGIN", "NO", State.NOT_AUTHENTICATED),
        (State.NOT_AUTHENTICATED, "AUTHENTICATE", "OK", State.AUTHENTICATED),
        (State.AUTHENTICATED, "SELECT", "OK", State.SELECTED),
        (State.AUTHENTICATED, "SELECT", "NO", State.AUTHENTICATED),
        (State.SELECTED, "SELECT", "NO", State.AUTHENTICATED),  # RFC 3501 §6.3.1
        (State.SELECTED, "SELECT", "OK", State.SELECTED),
        (State.SELECTED, "CLOSE", "OK", State.AUTHENTICATED),
        (State.SELECTED, "UNSELECT", "OK", State.AUTHENTICATED),
        (State.SELECTED, "FETCH", "NO", State.SELECTED),
        (State.SELECTED, "LOGOUT", "OK", State.LOGOUT),
        (State.LOGOUT, "SELECT", "OK", State.LOGOUT),
    ],
)
def test_transitions(state: State, command: str, status: str, new_state: State) -> None:
    assert after(state, command, status) is new_state  # type: ignore[arg-type]


def test_refusal_of_an_unknown_word_is_bad() -> None:
    assert refusal(State.SELECTED, "NOPE") == ("BAD", "Command not valid in this state")


def test_pipelined_commands_are_checked_against_the_state_their_predecessors_left() -> None:
    """a LOGIN then b SELECT arrive together: SELECT is checked after LOGIN's answer."""
    conn = ImapConnection()
    conn.receive_data(b"a LOGIN joe pw\r\nb SELECT INBOX\r\nc FETCH 1 FLAGS\r\n")
    assert conn.next_event() == c.Login("a", "joe", "pw")
    with pytest.raises(ConnectionMisuse):
        conn.next_event()  # LOGIN is not answered yet
    conn.send_tagged("a", "OK", "welcome")
    assert conn.next_event() == c.Select("b", "INBOX")
    conn.send_tagged("b", "NO", "no such mailbox")
    error = conn.next_event()
    assert isinstance(error, ProtocolError) and error.data == b"c BAD No mailbox selected\r\n"


def test_send_tagged_must_answer_the_command_in_progress() -> None:
    conn = ImapConnection()
    with pytest.raises(ConnectionMisuse):
        conn.send_tagged("a", "OK", "nothing in progress")
    conn.receive_data(b"a NOOP\r\n")
    conn.next_event()
    with pytest.raises(ConnectionMisuse):
        conn.send_tagged("b", "OK", "wrong tag")
    with pytest.raises(ConnectionMisuse):
        conn.tls_established()
    with pytest.raises(ConnectionMisuse):
        conn.send_sasl_challenge(b"")
    assert conn.send_tagged("a", "OK", "") == b"a OK Done\r\n"
    with pytest.raises(ConnectionMisuse):
        conn.send_continuation("x")


def test_idle_then_done() -> None:
    conn = ImapConnection(state=State.SELECTED)
    conn.receive_data(b"a IDLE\r\n")
    assert conn.next_event() == c.Idle("a")
    assert conn.mode is Mode.IDLE
    assert conn.send_continuation("idling") == b"+ idling\r\n"
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"done\r\nb NOOP\r\n")  # DONE is case-insensitive; b is pipelined
    assert conn.next_event() == IdleDone("a")
    with pytest.raises(ConnectionMisuse):
        conn.next_event()  # IDLE still needs its tagged OK
    assert conn.send_tagged("a", "OK", "IDLE terminated") == b"a OK IDLE terminated\r\n"
    assert conn.next_event() == c.Noop("b")


def test_idle_ended_by_the_server() -> None:
    conn = ImapConnection(state=State.SELECTED)
    conn.receive_data(b"a IDLE\r\n")
    conn.next_event()
    assert conn.send_bye("Idle timeout") == b"* BYE Idle timeout\r\n"
    assert conn.closed
    assert conn.next_event() == ConnectionClosed()


def test_authenticate_exchange() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE LOGIN\r\n")
    assert conn.next_event() == c.Authenticate("a", "LOGIN")
    assert conn.mode is Mode.AUTHENTICATE
    with pytest.raises(ConnectionMisuse):
        conn.next_event()  # the server speaks first
    assert conn.send_sasl_challenge(b"Username:") == b"+ VXNlcm5hbWU6\r\n"
    assert conn.next_event() is NEED_DATA
    conn.receive_data(base64.b64encode(b"joe") + b"\r\n")
    assert conn.next_event() == SaslResponse("a", b"joe")
    assert conn.send_sasl_challenge(b"Password:") == b"+ UGFzc3dvcmQ6\r\n"
    conn.receive_data(b"\r\n")  # an empty response is valid
    assert conn.next_event() == SaslResponse("a", b"")
    assert conn.send_tagged("a", "OK", "Logged in") == b"a OK Logged in\r\n"
    assert conn.state is State.AUTHENTICATED and conn.mode is Mode.COMMAND


def test_authenticate_with_initial_response_sasl_ir() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=\r\n")
    assert conn.next_event() == c.Authenticate("a", "PLAIN", b"\x00joe\x00secret")
    conn.send_tagged("a", "NO", "[AUTHENTICATIONFAILED] Invalid credentials")
    assert conn.state is State.NOT_AUTHENTICATED and conn.mode is Mode.COMMAND


def test_authenticate_cancelled() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    conn.next_event()
    conn.send_sasl_challenge(b"")
    conn.receive_data(b"*\r\nb NOOP\r\n")
    assert conn.next_event() == SaslCancelled("a", b"a BAD Authentication cancelled\r\n")
    assert conn.next_event() == c.Noop("b")


def test_authenticate_bad_base64() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    conn.next_event()
    conn.send_sasl_challenge(b"")
    conn.receive_data(b"not base64!\r\n")
    assert conn.next_event() == ProtocolError(
        "a",
        "BAD",
        "Invalid base64 in authentication response",
        b"a BAD Invalid base64 in authentication response\r\n",
    )
    assert conn.mode is Mode.COMMAND and conn.in_progress is None


def test_end_of_stream_during_idle_and_authenticate() -> None:
    for line, state in (
        (b"a IDLE\r\n", State.SELECTED),
        (b"a AUTHENTICATE PLAIN\r\n", State.NOT_AUTHENTICATED),
    ):
        conn = ImapConnection(state=state)
        transcript = run([line, b"partial"], conn=conn, eof=True)
        assert transcript.events[-1] == ConnectionClosed(incomplete=True)


def test_logout() -> None:
    conn = ImapConnection(state=State.SELECTED)
    conn.receive_data(b"a LOGOUT\r\nb NOOP\r\n")
    assert conn.next_event() == c.Logout("a")
    out = conn.send_bye("IMAP4rev1 Server logging out") + conn.send_tagged(
        "a", "OK", "LOGOUT completed"
    )
    assert out == b"* BYE IMAP4rev1 Server logging out\r\na OK LOGOUT completed\r\n"
    assert conn.closed and conn.state is State.LOGOUT
    assert conn.next_event() == ConnectionClosed()


# --- the long scenario -----------------------------------------------------------------------

SCENARIO = (
    b"s1 CAPABILITY\r\n"
    b"s2 AUTHENTICATE PLAIN\r\n"
    b"AGpvZQBzZWNyZXQ=\r\n"
    b"s3 ENABLE CONDSTORE\r\n"
    b'S4 LIST "" "*"\r\n'
    b"s5 SELECT INBOX (CONDSTORE)\r\n"
    b"s6 FETCH 1:* (FLAGS UID BODY.PEEK[HEADER.FIELDS (From Subject)]) (CHANGEDSINCE 1)\r\n"
    b"s7 UID SEARCH CHARSET UTF-8 SUBJECT {5}\r\n\xc3\xa9t\xc3\xa9 NOT DELETED\r\n"
    b"s8 UID STORE 4:* +FLAGS.SILENT (\\Seen)\r\n"
    b"s9 APPEND Sent (\\Seen) {12+}\r\nHello\r\nWorld\r\n"
    b"s10 IDLE\r\n"
    b"DONE\r\n"
    b"s11 UID MOVE 4 Trash\r\n"
    b"s12 FETCH 1 BODYSTRUCTURE\r\n"
    b"bad line\r\n"
    b"s13 CLOSE\r\n"
    b"s14 FETCH 1 FLAGS\r\n"
    b"s15 LOGOUT\r\n"
)

SCENARIO_OUTPUT = (
    b"s1 OK CAPABILITY done\r\n"
    b"+ \r\n"
    b"s2 OK authenticated\r\n"
    b"s3 OK ENABLE done\r\n"
    b"S4 OK LIST done\r\n"
    b"s5 OK SELECT done\r\n"
    b"s6 OK FETCH done\r\n"
    b"+ Ready for literal data\r\n"
    b"s7 OK SEARCH done\r\n"
    b"s8 OK STORE done\r\n"
    b"s9 OK APPEND done\r\n"
    b"+ idling\r\n"
    b"s10 OK IDLE done\r\n"
    b"s11 OK MOVE done\r\n"
    b"s12 OK FETCH done\r\n"
    b"bad BAD unknown command LINE\r\n"
    b"s13 OK CLOSE done\r\n"
    b"s14 BAD No mailbox selected\r\n"
    b"* BYE logging out\r\n"
    b"s15 OK done\r\n"
)


def _transcript(chunks: list[bytes]) -> tuple[list[object], bytes]:
    transcript = run(chunks)
    return [type(e).__name__ for e in transcript.events], bytes(transcript.output)


def test_long_scenario_whole_byte_by_byte_and_split_everywhere() -> None:
    names, output = _transcript(whole(SCENARIO))
    assert output == SCENARIO_OUTPUT
    assert names == [
        "Capability",
        "Authenticate",
        "SaslResponse",
        "Enable",
        "List",
        "Select",
        "Fetch",
        "ContinuationRequest",
        "Search",
        "Store",
        "Append",
        "Idle",
        "IdleDone",
        "Move",
        "Fetch",
        "ProtocolError",
        "Close",
        "ProtocolError",
        "Logout",
        "ConnectionClosed",
    ]
    reference = run(whole(SCENARIO)).events
    assert run(byte_by_byte(SCENARIO)).events == reference
    for chunks in every_split(SCENARIO):
        transcript = run(chunks)
        assert transcript.events == reference, chunks[0][-20:]
        assert bytes(transcript.output) == SCENARIO_OUTPUT


def test_a_second_idle_reads_its_done_even_after_an_idle_the_server_ended() -> None:
    conn = ImapConnection(state=State.SELECTED)
    conn.receive_data(b"a IDLE\r\n")
    assert conn.next_event() == c.Idle("a")
    conn.receive_data(b"xxxxxxxxxxxx")  # half a line, then the server ends IDLE itself
    assert conn.next_event() is NEED_DATA
    conn.send_tagged("a", "NO", "mailbox deleted")
    conn.receive_data(b"\r\nb IDLE\r\nDONE\r\n")
    assert isinstance(conn.next_event(), ProtocolError)  # the half line, now a bad command
    assert conn.next_event() == c.Idle("b")
    assert conn.next_event() == IdleDone("b")


def test_expunge_may_not_interrupt_fetch_store_search() -> None:
    from pli.mailbox.imap.states import may_send_expunge

    assert not may_send_expunge(None)
    for word in ("FETCH", "STORE", "SEARCH"):
        assert not may_send_expunge(word)
        assert may_send_expunge(word, uid=True)
    for word in ("NOOP", "CHECK", "IDLE", "EXPUNGE", "COPY", "MOVE"):
        assert may_send_expunge(word)
