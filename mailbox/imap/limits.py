"""The limits of the IMAP protocol core: named constants with their sources, and :class:`Limits`.

Every limit bounds memory or work per connection so that hostile input costs us a constant; what
exceeds one is answered (BAD, NO [TOOBIG], or ``* BYE`` and close) by :mod:`.connection`, never
buffered. The configurable ones come from ``[limits]`` (:meth:`Limits.from_settings`).

Also the per-session command rate limiter (a token bucket on a caller-supplied clock), so the
asyncio adapter only has to sleep for what it returns.

Must not: do I/O or read the clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pli.config.schema import Settings

#: RFC 7162 §4 asks servers to accept command lines of at least 8192 octets (clients send long
#: UID sets after CONDSTORE/QRESYNC resynchronisation); a smaller configured value is refused.
MIN_LINE_LENGTH: Final = 8192

#: Default text of one command outside its literals (``limits.imap_line_length``). 64 KiB is
#: Dovecot's ``imap_max_line_length``: it holds the 30 × 1024-octet ID of imaptest's ``id`` test
#: and UID sets of ~10,000 ranges, and bounds what an unterminated line costs.
DEFAULT_LINE_LENGTH: Final = 65536

#: One literal outside APPEND's message (a mailbox name, a password, a search string). Nothing
#: legitimate comes near it; APPEND's message literal is bounded by ``limits.message_size``.
MAX_ARGUMENT_LITERAL: Final = 65536

#: All literals of one command except APPEND's message: bounds a command made of many literals.
MAX_ARGUMENT_LITERALS_TOTAL: Final = 262144

#: A non-synchronizing literal over its limit is read and discarded (RFC 7888 lets the server
#: choose between that and closing). Beyond this size, discarding wastes our bandwidth for a
#: client that is broken or hostile: ``* BYE`` and close instead.
MAX_DISCARDED_LITERAL: Final = 64 * 1024 * 1024

#: RFC 3501 §9: number = 32-bit unsigned (sequence numbers, UIDs, sizes, partial offsets).
MAX_NUMBER: Final = 4294967295

#: RFC 7162 §7: mod-sequence-value is a 63-bit unsigned number.
MAX_MODSEQ: Final = 9223372036854775807

#: Parentheses nesting in a command (SEARCH groups, FETCH lists). Real clients nest two or three
#: levels; the bound keeps the recursive parser far from Python's recursion limit.
MAX_NESTING: Final = 32

#: Items of one parenthesised list (flags, FETCH attributes, header field names, STATUS items,
#: LIST patterns) and search keys of one SEARCH: bounds the work one command can ask for.
MAX_LIST_ITEMS: Final = 1000

#: Ranges of one sequence set. A 64 KiB line holds ~10,000 ranges of 5-digit UIDs; a set is
#: normalised (sorted, merged) before use, so this bounds parsing, not evaluation.
MAX_SEQUENCE_SET_RANGES: Final = 16384

#: One line of an AUTHENTICATE exchange: base64 of mailbox/auth/sasl.py's 16 KiB decoded response
#: limit (a Pro Santé Connect JWT is a few KB) is 21,848 octets; 24 KiB leaves room.
MAX_SASL_LINE: Final = 24576

#: RFC 2971 §3.3: at most 30 field-value pairs, fields of at most 30 octets, values of at most
#: 1024 octets.
MAX_ID_PAIRS: Final = 30
MAX_ID_FIELD: Final = 30
MAX_ID_VALUE: Final = 1024

#: Mailbox name on the wire (modified UTF-7). Dovecot's mailbox_list_name_max_length is 4096.
MAX_MAILBOX_NAME: Final = 4096

#: Commands a session may send in a burst before the rate limit applies (token bucket depth).
COMMAND_BURST: Final = 50


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one connection enforces; built once per listener."""

    line_length: int = DEFAULT_LINE_LENGTH
    message_size: int = 25 * 1024 * 1024  # limits.message_size default
    argument_literal: int = MAX_ARGUMENT_LITERAL
    argument_literals_total: int = MAX_ARGUMENT_LITERALS_TOTAL
    discarded_literal: int = MAX_DISCARDED_LITERAL
    sasl_line: int = MAX_SASL_LINE
    commands_per_second: int = 200  # limits.imap_commands_per_second default
    idle_timeout: float = 1800.0  # limits.imap_idle_timeout: RFC 9051 §5.4, ≥ 30 minutes
    sessions_per_account: int = 20  # limits.imap_sessions_per_account default

    def __post_init__(self) -> None:
        if self.line_length < MIN_LINE_LENGTH:
            raise ValueError(
                f"limits.imap_line_length must be at least {MIN_LINE_LENGTH} bytes (RFC 7162 §4)"
            )
        if self.message_size < 1:
            raise ValueError("limits.message_size must be at least 1 byte")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        limits = settings.limits
        return cls(
            line_length=limits.imap_line_length,
            message_size=limits.message_size,
            commands_per_second=limits.imap_commands_per_second,
            idle_timeout=limits.imap_idle_timeout,
            sessions_per_account=limits.imap_sessions_per_account,
        )


class CommandRateLimiter:
    """A token bucket: ``rate`` commands per second after a burst of ``burst``.

    ``delay(now)`` is called once per command with a monotonic time in seconds and returns how
    long to wait before executing it (0.0 when within the rate). Work is not refused, only
    slowed, so a busy honest client still completes."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: int, burst: int = COMMAND_BURST) -> None:
        if rate < 1 or burst < 1:
            raise ValueError("rate and burst must be at least 1")
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def delay(self, now: float) -> float:
        if self._last is not None and now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        if self._last is None or now > self._last:
            self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            return 0.0
        return -self._tokens / self._rate
