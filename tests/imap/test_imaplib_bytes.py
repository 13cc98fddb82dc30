"""What a real client sends parses to the commands it means: Python's imaplib, connected over a
socket pair to the sans-IO core driven by a scripted session in a thread (no store yet; the
integration tier with a real server comes with the session layer)."""

from __future__ import annotations

import imaplib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pli.mailbox.imap import commands as c
from pli.mailbox.imap import response
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.events import (
    NEED_DATA,
    ConnectionClosed,
    ContinuationRequest,
    Event,
    ProtocolError,
    SaslResponse,
)
from pli.mailbox.imap.fetch import FetchBody, FetchItem, Section
from pli.mailbox.imap.search import SearchAnd, SearchFlag, SearchHeader, SearchSize
from pli.mailbox.imap.sequence import STAR, SequenceSet

CAPABILITIES = response.capabilities(
    tls_active=True, starttls_available=False, login_allowed=True, mechanisms=["PLAIN"]
)


def _answer(conn: ImapConnection, event: Event) -> bytes:
    if isinstance(event, (ContinuationRequest, ProtocolError)):
        return event.data
    if isinstance(event, c.Capability):
        return response.capability_response(CAPABILITIES) + conn.send_tagged(
            event.tag, "OK", "done"
        )
    if isinstance(event, c.Authenticate):
        return conn.send_sasl_challenge(b"")
    if isinstance(event, SaslResponse):
        return conn.send_tagged(event.tag, "OK", "authenticated")
    if isinstance(event, c.Select):
        return response.exists(3) + conn.send_tagged(event.tag, "OK", "selected", "READ-WRITE")
    if isinstance(event, c.Search):
        return response.search_response([1]) + conn.send_tagged(event.tag, "OK", "done")
    if isinstance(event, c.Logout):
        return conn.send_bye("bye") + conn.send_tagged(event.tag, "OK", "done")
    if isinstance(event, c.Command):
        return conn.send_tagged(event.tag, "OK", "done")
    return b""


def _serve(sock: socket.socket, seen: list[Event]) -> None:
    conn = ImapConnection()
    sock.sendall(response.greeting("pli test", CAPABILITIES))
    while not conn.closed:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        seen.append(event)
        if isinstance(event, ConnectionClosed):
            break
        sock.sendall(_answer(conn, event))
    sock.close()


class _PairedIMAP(imaplib.IMAP4):
    """imaplib over an already connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._given = sock
        super().__init__()

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        self.host, self.port = host, port
        self.sock = self._given
        self.file = self.sock.makefile("rb")


@pytest.fixture
def client() -> Iterator[tuple[_PairedIMAP, list[Event]]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(30)
    theirs.settimeout(30)
    seen: list[Event] = []
    server = threading.Thread(target=_serve, args=(ours, seen), daemon=True)
    server.start()
    imap = _PairedIMAP(theirs)
    yield imap, seen
    theirs.close()
    server.join(timeout=30)
    assert not server.is_alive()


def test_imaplib_session_parses_to_the_commands_it_means(
    client: tuple[_PairedIMAP, list[Event]],
) -> None:
    imap, seen = client
    imap.login("joe", 'p"w\\d x')
    imap.select("INBOX")
    imap.search("UTF-8", "UNSEEN", "SUBJECT", '"hello world"', "LARGER", "100")
    imap.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
    imap.uid("STORE", "3:4", "+FLAGS.SILENT", r"(\Deleted)")
    imap.append(
        "Sent", r"(\Seen)", datetime(2024, 2, 5, 10, 0, tzinfo=UTC), b"Subject: x\r\n\r\nhi\r\n"
    )
    imap.copy("1,2", "Archive")
    imap.logout()
    commands = [event for event in seen if isinstance(event, c.Command)]
    tags = [command.tag for command in commands]
    assert commands == [
        c.Capability(tags[0]),
        c.Login(tags[1], "joe", 'p"w\\d x'),
        c.Select(tags[2], "INBOX"),
        c.Search(
            tags[3],
            SearchAnd(
                (
                    SearchFlag("\\Seen", False),
                    SearchHeader("subject", "hello world"),
                    SearchSize("larger", 100),
                )
            ),
            "UTF-8",
        ),
        c.Fetch(
            tags[4],
            SequenceSet(((1, STAR),)),
            (
                FetchItem.UID,
                FetchItem.FLAGS,
                FetchBody(Section(text="HEADER.FIELDS", fields=("FROM", "SUBJECT")), peek=True),
            ),
        ),
        c.Store(tags[5], SequenceSet(((3, 4),)), "add", ("\\Deleted",), silent=True, uid=True),
        c.Append(
            tags[6],
            "Sent",
            ("\\Seen",),
            datetime(2024, 2, 5, 10, 0, tzinfo=UTC),
            b"Subject: x\r\n\r\nhi\r\n",
        ),
        c.Copy(tags[7], SequenceSet.of(1, 2), "Archive"),
        c.Logout(tags[8]),
    ]
    assert any(isinstance(event, ContinuationRequest) for event in seen)  # APPEND's literal


def test_imaplib_authenticate(client: tuple[_PairedIMAP, list[Event]]) -> None:
    imap, seen = client
    imap.authenticate("PLAIN", lambda _challenge: b"\x00joe\x00secret")
    imap.logout()
    assert [type(event).__name__ for event in seen] == [
        "Capability",
        "Authenticate",
        "SaslResponse",
        "Logout",
    ]
    assert SaslResponse(seen[1].tag, b"\x00joe\x00secret") in seen  # type: ignore[attr-defined]
