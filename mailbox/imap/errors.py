"""The errors of the IMAP protocol core.

- :class:`ParseError`: a command that does not follow the grammar (or breaks a limit). The
  parser raises it; :class:`~.connection.ImapConnection` turns it into a tagged BAD (or the
  status/code it carries, such as ``NO [BADCHARSET …]``). Its text is safe to send to the peer.
- :class:`MailboxNameError`: a mailbox name that is not valid modified UTF-7 (RFC 3501 §5.1.3);
  the caller answers NO (imaptest's ``atoms`` expects ``NO`` for SELECT of such a name).
- :class:`ConnectionMisuse`: the session layer drove the connection out of order (a bug in our
  code, never the peer's doing).

Must not: carry exception strings of other libraries to the peer.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["OK", "NO", "BAD", "PREAUTH", "BYE"]


class ParseError(Exception):
    """A malformed command. ``str(error)`` is the text for the peer."""

    def __init__(self, text: str, *, status: Status = "BAD", code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status: Status = status
        self.code = code


class MailboxNameError(ValueError):
    """A mailbox name that cannot be decoded; ``str(error)`` is safe to send to the peer."""


class ConnectionMisuse(RuntimeError):
    """The connection was driven out of order by our own code (a programming error)."""
