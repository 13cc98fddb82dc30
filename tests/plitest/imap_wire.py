"""Drive a sans-IO :class:`ImapConnection` with bytes cut in any way, as the adapter would.

``Transcript`` records every event and every octet written back; a scripted responder plays the
session (OK to every command, ``+ idling`` for IDLE, an empty challenge then OK for
AUTHENTICATE), so that protocol tests compare whole transcripts across ways of cutting the
input (whole, byte by byte, split at every offset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.events import (
    NEED_DATA,
    ConnectionClosed,
    ContinuationRequest,
    Event,
    IdleDone,
    ProtocolError,
    SaslCancelled,
    SaslResponse,
)
from pli.mailbox.imap.limits import Limits

Responder = Callable[[ImapConnection, Event], bytes]


def ok_to_everything(conn: ImapConnection, event: Event) -> bytes:
    """The default session: OK, with IDLE and AUTHENTICATE played through."""
    if isinstance(event, (ContinuationRequest, ProtocolError, SaslCancelled)):
        return event.data
    if isinstance(event, c.Idle):
        return conn.send_continuation("idling")
    if isinstance(event, c.Authenticate):
        if event.initial_response is not None:
            return conn.send_tagged(event.tag, "OK", "authenticated")
        return conn.send_sasl_challenge(b"")
    if isinstance(event, SaslResponse):
        return conn.send_tagged(event.tag, "OK", "authenticated")
    if isinstance(event, IdleDone):
        return conn.send_tagged(event.tag, "OK", "IDLE done")
    if isinstance(event, c.Logout):
        return conn.send_bye("logging out") + conn.send_tagged(event.tag, "OK", "done")
    if isinstance(event, c.Command):
        return conn.send_tagged(event.tag, "OK", f"{event.name} done")
    return b""


@dataclass
class Transcript:
    events: list[Event] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    conn: ImapConnection | None = None

    @property
    def commands(self) -> list[c.Command]:
        return [event for event in self.events if isinstance(event, c.Command)]

    @property
    def errors(self) -> list[ProtocolError]:
        return [event for event in self.events if isinstance(event, ProtocolError)]


def run(
    chunks: Iterable[bytes],
    *,
    limits: Limits | None = None,
    responder: Responder = ok_to_everything,
    conn: ImapConnection | None = None,
    eof: bool = False,
) -> Transcript:
    """Feed ``chunks`` one by one, handling every event after each; ``eof`` ends the stream."""
    conn = conn or ImapConnection(limits)
    transcript = Transcript(conn=conn)

    def drain() -> bool:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return True
            transcript.events.append(event)
            if isinstance(event, ConnectionClosed):
                return False
            transcript.output += responder(conn, event)

    for chunk in chunks:
        conn.receive_data(chunk)
        if not drain():
            return transcript
    if eof:
        conn.receive_data(b"")
        drain()
    return transcript


def whole(data: bytes) -> list[bytes]:
    return [data]


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[index : index + 1] for index in range(len(data))]


def every_split(data: bytes) -> Iterator[list[bytes]]:
    """``data`` cut in two at every offset."""
    for offset in range(1, len(data)):
        yield [data[:offset], data[offset:]]
