"""SMTP replies: one type carrying the code, the enhanced status code and the public text, and
the replies pli sends, named.

Deep code raises :class:`SmtpError`; the session turns it into a reply line at one place. Texts
are ASCII (RFC 5321 §4.2: reply text is US-ASCII) and never carry an exception's string.
Enhanced status codes: RFC 3463, RFC 5248 (registry), RFC 3207, RFC 4954, RFC 7372.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str
    text: str

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"not an SMTP reply code: {self.code}")

    @property
    def line(self) -> str:
        """The reply as one line (without CRLF)."""
        text = _ascii(self.text)
        return f"{self.code} {self.enhanced} {text}" if self.enhanced else f"{self.code} {text}"

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def positive(self) -> bool:
        return self.code < 400

    def with_text(self, text: str) -> Reply:
        return Reply(self.code, self.enhanced, text)


def _ascii(text: str) -> str:
    """Printable ASCII only (CR, LF and controls would break the reply's framing)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class SmtpError(Exception):
    """A command refused with ``reply``; ``close`` asks the session to close afterwards."""

    def __init__(self, reply: Reply, *, close: bool = False) -> None:
        super().__init__(reply.line)
        self.reply = reply
        self.close = close


# -- positive ---------------------------------------------------------------------------------
OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
RESET = Reply(250, "2.0.0", "Reset")
START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
BYE = Reply(221, "2.0.0", "Bye")
READY_FOR_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
VRFY_CANNOT = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message for delivery")

# -- syntax and sequence (RFC 5321 §4.2.2, §4.3.2) --------------------------------------------
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
UNKNOWN_COMMAND = Reply(500, "5.5.2", "Command not recognized")
SYNTAX = Reply(501, "5.5.2", "Syntax error")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
PARAM_NOT_RECOGNISED = Reply(555, "5.5.4", "Parameter not recognized or not implemented")
BAD_ADDRESS = Reply(553, "5.1.3", "Malformed address")
BAD_SENDER_ADDRESS = Reply(553, "5.1.7", "Malformed sender address")
SMTPUTF8_REQUIRED = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
BARE_LINE_END = Reply(
    554, "5.6.11", "Bare CR or LF in message data is not allowed (RFC 5321 2.3.8)"
)
BARE_LINE_END_CLOSING = Reply(
    421, "4.5.0", "Closing after bare CR or LF (SMTP smuggling protection)"
)
DATA_LINE_TOO_LONG = Reply(554, "5.6.0", "Message line longer than 998 octets")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
TOO_MANY_JUNK = Reply(421, "4.7.0", "Too many commands without a message, closing connection")
TOO_MANY_MESSAGES = Reply(421, "4.7.0", "Too many messages on one connection, please reconnect")
TIMEOUT = Reply(421, "4.4.2", "Timeout, closing connection")
SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, please try again later")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, please try again later")
TOO_MANY_PEER_CONNECTIONS = Reply(
    421, "4.7.0", "Too many connections from your address, please try again later"
)
SERVER_ERROR = Reply(451, "4.3.0", "Internal error, please try again later")

# -- size and recipients (RFC 1870, RFC 5321 §4.5.3.1.10) -------------------------------------
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds the fixed maximum message size")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")

# -- TLS and authentication (RFC 3207, RFC 4954) ----------------------------------------------
TLS_REQUIRED = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available")
TLS_ALREADY = Reply(503, "5.5.1", "TLS already active")
CLIENT_CERTIFICATE_REQUIRED = Reply(530, "5.7.0", "A client certificate is required")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
AUTH_NEEDS_TLS = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_MECHANISM_UNKNOWN = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
AUTH_ABORTED = Reply(501, "5.7.0", "Authentication aborted")
AUTH_NOT_AVAILABLE = Reply(502, "5.5.1", "Authentication not available on this service")
AUTH_TEMPORARY = Reply(454, "4.7.0", "Temporary authentication failure")
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by the authenticated identity")
FROM_NOT_OWNED = Reply(550, "5.7.1", "From: address not owned by the authenticated identity")

# -- routing ----------------------------------------------------------------------------------
RELAY_DENIED = Reply(
    550, "5.7.1", "Relay access denied: this server only receives mail for its domains"
)
MAILBOX_UNKNOWN = Reply(550, "5.1.1", "Mailbox unknown")
MAILBOX_DISABLED = Reply(550, "5.2.1", "Mailbox disabled")
TRUST_UNAVAILABLE = Reply(451, "4.7.0", "Trust decision unavailable, please try again later")
