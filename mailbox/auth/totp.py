"""One-time codes: TOTP (RFC 6238) for "password plus one-time code" over IMAP and SMTP.

A professional's mail client sends the password followed by the current code in the password
field (``motdepasse`` + ``123456``): mail clients have no second prompt. :func:`split_code`
separates them. A code is accepted in a window of one step either side (RFC 6238 §5.2) and only
once: the caller keeps the last accepted counter per account and passes it back (§5.2, replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time

TOTP_STEP_SECONDS = 30  # RFC 6238 §4 default time step X
TOTP_WINDOW_STEPS = 1  # accepted clock drift either side (RFC 6238 §5.2 recommends at most one)
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA-1 block the RFC 4226 §4 R6 recommends


def new_secret() -> str:
    """A random shared secret, base32 as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def hotp(secret: str, counter: int, digits: int = 6) -> str:
    """RFC 4226 §5.3: HMAC-SHA-1, dynamic truncation, modulo 10^digits."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


def totp(secret: str, at: float | None = None, digits: int = 6) -> str:
    return hotp(secret, _counter(at), digits)


def _counter(at: float | None) -> int:
    return int((time.time() if at is None else at) // TOTP_STEP_SECONDS)


def verify_totp(
    secret: str, code: str, *, at: float | None = None, digits: int = 6, last_counter: int = -1
) -> int | None:
    """The counter of the step ``code`` matches, or None. A counter not above ``last_counter``
    (already used) is refused."""
    if len(code) != digits or not code.isdigit():
        return None
    now = _counter(at)
    for counter in range(now - TOTP_WINDOW_STEPS, now + TOTP_WINDOW_STEPS + 1):
        if counter > last_counter and hmac.compare_digest(hotp(secret, counter, digits), code):
            return counter
    return None


def split_code(password_and_code: str, digits: int = 6) -> tuple[str, str] | None:
    """``("motdepasse", "123456")`` from ``"motdepasse123456"``; None if no code is appended."""
    if len(password_and_code) <= digits or not password_and_code[-digits:].isdigit():
        return None
    return password_and_code[:-digits], password_and_code[-digits:]
