"""The webmail's protections that are not about sessions: the server key, keyed digests, CSRF
tokens of the login forms, the response headers (Content-Security-Policy and friends), and the
same-origin check of POST requests.

- The key (``webmail.secret_file``, 32 random bytes, mode 0600) is created once, atomically (a
  hard link that fails if another process made it first), and shared by every process.
- Before login there is no session: the login forms use a signed double-submit token (OWASP CSRF
  cheat sheet): a random nonce in a cookie, and ``HMAC(key, nonce)`` in the form.
- One-time codes are kept as ``HMAC(key, session || code)``: a copy of the database does not
  give the codes.
- Every page forbids scripts (``script-src`` falls back to ``default-src 'none'``): the webmail
  has no JavaScript at all, so no script, from a message or elsewhere, ever runs.

What this module must not do: look at accounts, sessions or messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from pli.certs.files import PRIVATE_FILE_MODE, ensure_dir

#: Bytes of the server key (HMAC-SHA256 keys of 256 bits, RFC 2104 §3: at least the hash size).
KEY_BYTES = 32
#: Random bytes of session tokens, CSRF tokens and nonces (256 bits; OWASP ASVS 3.2.2 asks ≥ 64).
TOKEN_BYTES = 32

#: The application's pages: nothing but our own stylesheet, images and frames; no script at all.
APP_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: A message's HTML, inside a sandboxed frame: inline styles, embedded and our own images,
#: no script, no form, no plugin; links open outside the sandbox, in a new tab.
MESSAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
#: An attachment shown inline (PDF, text, JPEG): framed by our pages only, nothing else loaded.
ATTACHMENT_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
)

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # same-origin: no Referer to other sites, and browsers still send Origin on our POSTs
    # (with no-referrer they send "Origin: null", Fetch §3.2.5).
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # health data never stays in a shared cache
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
#: HTTPS only (RFC 6797): one year.
HSTS = "max-age=31536000"


def load_or_create_key(path: Path) -> bytes:
    """The server key at ``path``, created (mode 0600) if missing."""
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    ensure_dir(path.parent, private=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: expected a {KEY_BYTES}-byte key, found {len(key)} bytes")
    return key


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(text: str) -> str:
    """SHA-256 of a token, hex (what the session table keeps)."""
    return hashlib.sha256(text.encode()).hexdigest()


def keyed_digest(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 of the parts (NUL-separated, so that no two lists collide), hex."""
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def same(first: str, second: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(first.encode(), second.encode())


def login_form_token(key: bytes, nonce: str) -> str:
    return keyed_digest(key, "login-form", nonce)


def login_form_token_valid(key: bytes, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return same(login_form_token(key, nonce), token)


def origin_allowed(origin: str | None, host: str | None, public_url: str) -> bool:
    """A POST is same-origin: no Origin header (non-browser clients; the CSRF token still
    applies), or an Origin equal to the configured public URL or to this request's own host."""
    if origin is None:
        return True
    if origin == "null":
        return False
    if origin.rstrip("/") == public_url:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.netloc == host and parts.scheme in ("https", "http")


def page_headers(*, secure: bool, csp: str = APP_CSP, frame: str = "DENY") -> dict[str, str]:
    headers = dict(BASE_HEADERS)
    headers["Content-Security-Policy"] = csp
    headers["X-Frame-Options"] = frame
    if secure:
        headers["Strict-Transport-Security"] = HSTS
    return headers
