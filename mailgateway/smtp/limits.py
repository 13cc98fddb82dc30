"""Every limit of pli's SMTP server, as a named constant with its source, and the per-listener
values read from the configuration.

Fixed by the standards (not configurable):

- command lines: 512 octets with CRLF (RFC 5321 §4.5.3.1.4), plus what the advertised extensions
  add to MAIL and RCPT (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 §5 DSN);
- text lines in DATA: 998 octets before CRLF (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1), plus the
  leading transparency dot (RFC 5321 §4.5.2);
- recipients: at least 100 must be accepted (RFC 5321 §4.5.3.1.8), more are refused with
  ``452 4.5.3`` (RFC 5321 §4.5.3.1.10, RFC 3463).

Configurable (``[limits]``): message size, recipients, connections per peer and per listener,
errors and junk commands before disconnect, messages per connection, timeouts.

This module holds numbers only; the server enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pli.config.schema import Settings

#: RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
COMMAND_LINE = 512
#: RFC 1870 §3: SIZE adds 26 octets to MAIL ("SP SIZE=" and 20 digits).
MAIL_SIZE_EXTRA = 26
#: RFC 6152 / RFC 3030: " BODY=8BITMIME" (14 octets; BINARYMIME is longer but not offered).
MAIL_BODY_EXTRA = 14
#: RFC 6531 §3.4: SMTPUTF8 adds 10 octets to MAIL.
MAIL_SMTPUTF8_EXTRA = 10
#: RFC 3461 §5: ENVID and RET add up to 100 octets to MAIL.
MAIL_DSN_EXTRA = 100
#: RFC 3461 §5: NOTIFY and ORCPT add up to 500 octets to RCPT.
RCPT_DSN_EXTRA = 500
#: RFC 6531 §3.4: a UTF-8 address may be longer in octets than in characters; allow the local
#: part's 64 characters four octets each.
SMTPUTF8_ADDRESS_EXTRA = 3 * 64
MAIL_LINE = (
    COMMAND_LINE
    + MAIL_SIZE_EXTRA
    + MAIL_BODY_EXTRA
    + MAIL_SMTPUTF8_EXTRA
    + MAIL_DSN_EXTRA
    + SMTPUTF8_ADDRESS_EXTRA
)
RCPT_LINE = COMMAND_LINE + RCPT_DSN_EXTRA + SMTPUTF8_ADDRESS_EXTRA
#: RFC 4954 §4: an AUTH initial response may be as long as a SASL response; a JWT for
#: OAUTHBEARER is a few KB (pli.mailbox.auth.sasl.MAX_SASL_RESPONSE, base64: 4/3 of it).
AUTH_LINE = 4 * 16384 // 3 + 64
#: RFC 5321 §4.5.3.1.6: 998 octets of text before CRLF.
TEXT_LINE = 998
#: RFC 5321 §4.5.2: a line starting with "." is sent with one more.
DATA_LINE = TEXT_LINE + 1
#: RFC 5321 §4.5.3.1.1-2: local part 64 octets, domain 255 octets.
LOCAL_PART = 64
DOMAIN = 255
#: RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
PATH = 256
#: RFC 3461 §4.2: ORCPT's xtext decodes to at most 500 characters (with its type).
ORCPT = 500
#: RFC 3461 §4.4: ENVID is at most 100 characters.
ENVID = 100
#: RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
MIN_RECIPIENTS = 100
#: Octets read from the socket at once while receiving DATA.
DATA_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class SmtpLimits:
    """The limits one listener enforces (from ``[limits]``)."""

    message_size: int = 25 * 1024 * 1024
    recipients: int = 500
    connections: int = 1000
    connections_per_peer: int = 20
    errors_before_disconnect: int = 10
    junk_commands: int = 100
    messages_per_connection: int = 10000
    command_timeout: float = 300.0
    data_timeout: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpLimits:
        limits = settings.limits
        return cls(
            message_size=limits.message_size,
            recipients=limits.recipients,
            connections=limits.smtp_connections,
            connections_per_peer=limits.smtp_connections_per_peer,
            errors_before_disconnect=limits.smtp_errors_before_disconnect,
            junk_commands=limits.smtp_junk_commands,
            messages_per_connection=limits.smtp_messages_per_connection,
            command_timeout=limits.smtp_command_timeout,
            data_timeout=limits.smtp_data_timeout,
        )


def line_limit(verb: str) -> int:
    """The longest command line (CRLF included) accepted for ``verb`` (upper case)."""
    if verb == "MAIL":
        return MAIL_LINE
    if verb == "RCPT":
        return RCPT_LINE
    if verb == "AUTH":
        return AUTH_LINE
    return COMMAND_LINE
