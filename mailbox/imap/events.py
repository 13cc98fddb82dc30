"""What :meth:`ImapConnection.next_event <.connection.ImapConnection.next_event>` returns.

Every command of :mod:`.commands` is an event too (the session executes it and answers with
:meth:`~.connection.ImapConnection.send_tagged`). The others:

- :class:`ContinuationRequest` — a synchronizing literal ``{n}`` was accepted: write ``data``
  (``+ …``) so that the client sends the octets (RFC 3501 §7.5).
- :class:`IdleDone` — ``DONE`` ended IDLE (RFC 2177): answer the IDLE tag with OK.
- :class:`SaslResponse` — one client line of AUTHENTICATE, base64-decoded: answer with
  :meth:`~.connection.ImapConnection.send_sasl_challenge` or a tagged response.
- :class:`SaslCancelled` — the client sent ``*``; the core already answered BAD (RFC 3501
  §6.2.2): write ``data``.
- :class:`ProtocolError` — input the core refused: write ``data`` (tagged BAD when the tag is
  known, ``* BAD`` otherwise, ``* BYE`` when ``fatal``) and close the transport when ``fatal``.
- :class:`ConnectionClosed` — the peer closed its side (``receive_data(b"")``) or the connection
  is closed; ``incomplete`` tells whether a command was cut short.
- :data:`NEED_DATA` — nothing more until :meth:`~.connection.ImapConnection.receive_data`.

Must not: hold behaviour; these are plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import Status


class Event:
    """Base of everything :meth:`next_event` returns."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ContinuationRequest(Event):
    data: bytes


@dataclass(frozen=True, slots=True)
class IdleDone(Event):
    tag: str


@dataclass(frozen=True, slots=True)
class SaslResponse(Event):
    tag: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SaslCancelled(Event):
    tag: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    tag: str | None
    status: Status
    text: str
    data: bytes
    code: str | None = None
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    incomplete: bool = False


class _NeedData(Event):
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
