"""The IMAP state machine as data (RFC 3501 §3, §6; RFC 9051 §3).

- :data:`ALLOWED` — the states each command is valid in, by command word (``UID FETCH`` is
  ``FETCH``). A command outside its states is refused by :mod:`.connection` with the
  :data:`REFUSALS` response (BAD: RFC 3501 §6 lists each command's valid states and a command
  sent in another is a protocol error, as Dovecot answers it), before the session sees it.
- :data:`TRANSITIONS` — the state after a command's tagged response: (command, status) → state.
  A failed SELECT/EXAMINE leaves no mailbox selected (RFC 3501 §6.3.1).
- :func:`may_send_expunge` — whether untagged EXPUNGE may be sent while answering a command
  (RFC 3501 §7.4.1).

The sub-states of a command in progress (a literal being read, IDLE, an AUTHENTICATE exchange,
STARTTLS awaiting the handshake) are modes of :class:`~.connection.ImapConnection`, not IMAP
states: they end with the command.

Must not: do anything; this module is tables and two lookups.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from .errors import Status


class State(Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY: Final = frozenset(
    {State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED}
)  # RFC 3501 §6.1 (CAPABILITY, NOOP, LOGOUT), RFC 2971 §3.1 (ID)
_NOT_AUTHENTICATED: Final = frozenset({State.NOT_AUTHENTICATED})  # RFC 3501 §6.2
_AUTHENTICATED: Final = frozenset({State.AUTHENTICATED, State.SELECTED})  # RFC 3501 §6.3
_SELECTED: Final = frozenset({State.SELECTED})  # RFC 3501 §6.4

ALLOWED: Final[dict[str, frozenset[State]]] = {
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,
    "STARTTLS": _NOT_AUTHENTICATED,
    "AUTHENTICATE": _NOT_AUTHENTICATED,
    "LOGIN": _NOT_AUTHENTICATED,
    "SELECT": _AUTHENTICATED,
    "CREATE": _AUTHENTICATED,
    "DELETE": _AUTHENTICATED,
    "RENAME": _AUTHENTICATED,
    "SUBSCRIBE": _AUTHENTICATED,
    "LIST": _AUTHENTICATED,
    "NAMESPACE": _AUTHENTICATED,  # RFC 2342 §5
    "STATUS": _AUTHENTICATED,
    "APPEND": _AUTHENTICATED,
    "IDLE": _AUTHENTICATED,  # RFC 2177 §3 (RFC 9051 §6.3.13)
    # RFC 5161 §3.1: "only valid in the authenticated state" — before a mailbox is selected.
    "ENABLE": frozenset({State.AUTHENTICATED}),
    "CHECK": _SELECTED,
    "CLOSE": _SELECTED,
    "UNSELECT": _SELECTED,  # RFC 3691
    "EXPUNGE": _SELECTED,
    "SEARCH": _SELECTED,
    "SORT": _SELECTED,  # RFC 5256
    "THREAD": _SELECTED,  # RFC 5256
    "FETCH": _SELECTED,
    "STORE": _SELECTED,
    "COPY": _SELECTED,
    "MOVE": _SELECTED,  # RFC 6851
}

#: What a command sent in the wrong state gets, by the state the connection is in.
REFUSALS: Final[dict[State, tuple[Status, str]]] = {
    State.NOT_AUTHENTICATED: ("BAD", "Not authenticated: LOGIN or AUTHENTICATE first"),
    State.AUTHENTICATED: ("BAD", "No mailbox selected"),
    State.SELECTED: ("BAD", "Command not valid in this state"),
    State.LOGOUT: ("BAD", "Logging out"),
}
#: More precise texts where the reason is not the state's general one.
_SPECIFIC: Final[dict[tuple[State, str], str]] = {
    (State.AUTHENTICATED, "LOGIN"): "Already authenticated",
    (State.AUTHENTICATED, "AUTHENTICATE"): "Already authenticated",
    (State.AUTHENTICATED, "STARTTLS"): "STARTTLS is only valid before authentication",
    (State.SELECTED, "LOGIN"): "Already authenticated",
    (State.SELECTED, "AUTHENTICATE"): "Already authenticated",
    (State.SELECTED, "STARTTLS"): "STARTTLS is only valid before authentication",
    (State.SELECTED, "ENABLE"): "ENABLE is only valid before SELECT (RFC 5161 §3.1)",
}

_OK: Final = "OK"
_FAILED: Final = ("NO", "BAD")

TRANSITIONS: Final[dict[tuple[str, str], State]] = {
    ("LOGIN", _OK): State.AUTHENTICATED,
    ("AUTHENTICATE", _OK): State.AUTHENTICATED,
    ("SELECT", _OK): State.SELECTED,
    **{("SELECT", failed): State.AUTHENTICATED for failed in _FAILED},
    ("CLOSE", _OK): State.AUTHENTICATED,
    ("UNSELECT", _OK): State.AUTHENTICATED,
    ("LOGOUT", _OK): State.LOGOUT,
}


def refusal(state: State, command: str) -> tuple[Status, str] | None:
    """None when ``command`` is valid in ``state``, else the (status, text) to answer."""
    if state in ALLOWED.get(command, frozenset()):
        return None
    specific = _SPECIFIC.get((state, command))
    if specific is not None:
        return "BAD", specific
    return REFUSALS[state]


def after(state: State, command: str, status: Status) -> State:
    """The state once ``command``'s tagged ``status`` is sent."""
    if state is State.LOGOUT:
        return state
    return TRANSITIONS.get((command, status), state)


#: RFC 3501 §7.4.1: no EXPUNGE response while answering FETCH, STORE or SEARCH (and SORT and
#: THREAD, which are searches: RFC 5256 §3), nor when no command is in progress (sequence
#: numbers would shift under the client); the UID forms of these commands are other commands,
#: during which EXPUNGE may be sent.
_NO_EXPUNGE_DURING: Final = frozenset({"FETCH", "STORE", "SEARCH", "SORT", "THREAD"})


def may_send_expunge(command: str | None, uid: bool = False) -> bool:
    """``command``: the word of the command in progress (None: none), ``uid``: its UID form."""
    if command is None:
        return False
    return uid or command not in _NO_EXPUNGE_DURING
