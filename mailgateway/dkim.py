"""DKIM: signing outgoing mail (RFC 6376, RSA-SHA256; Ed25519-SHA256, RFC 8463) and verifying
incoming mail, with the result as an Authentication-Results header (RFC 8601).

**Signing** is ours: relaxed/relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4) and the
signature computed by ``cryptography`` (OpenSSL; about a millisecond, where dkimpy's pure-Python
RSA takes 12-36 ms). It still runs in a worker thread (:meth:`DkimSigner.sign_async`), never on
the event loop. The signed header fields are the usual ones that are present, plus ``From`` once
more (oversigning, RFC 6376 §8.15: a second From: added later breaks the signature).

**Verifying** is dkimpy's, in a worker thread, with an injectable DNS lookup (tests use a fake;
never the internet), but we refuse what RFC 8301 forbids before dkimpy sees it: ``rsa-sha1``
signatures (dkimpy accepts them; OpenDKIM does not) and RSA keys under 1024 bits.

**Authentication-Results**: one ``dkim=`` result per signature, or ``dkim=none``; any
Authentication-Results header claiming our own authserv-id is removed from incoming mail first
(RFC 8601 §5), so a sender cannot forge our verdict.

Keys: ``pli init`` writes ``dkim.key`` (RSA 2048 by default, RFC 8301 §3.2), ``pli dkim dns``
prints the TXT record to publish at ``<selector>._domainkey.<domain>``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dkim
import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from pli.config.schema import DkimSection, Settings

from .fields import drop_fields

log = structlog.get_logger(__name__)

#: RFC 8301 §3.2: signers use RSA keys of at least 1024 bits, SHOULD use 2048.
RSA_KEY_BITS = 2048
#: RFC 8301 §3.2: verifiers MUST accept 1024-4096 bits and MAY refuse smaller keys (we do).
MIN_VERIFY_KEY_BITS = 1024
#: Header fields signed when present (RFC 6376 §5.4.1's recommendations, MIME, MSSanté's).
SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "disposition-notification-to",
    "x-mss-mes",
    "x-mss-nil",
    "x-mss-ins",
    "x-mss-codecda",
)
#: Signatures checked per message at most (a hostile message may carry thousands).
MAX_SIGNATURES = 5

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n)")
_TRAILING_EMPTY_LINES = re.compile(rb"(\r\n)+$")

DnsFunction = Callable[..., bytes | None]


# -- canonicalization (RFC 6376 §3.4) ---------------------------------------------------------


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(header fields as (name, raw value with its folding and CRLF), body)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        header, body = message, b""
    else:
        header, body = message[: end + 2], message[end + 4 :]
    fields: list[tuple[bytes, bytes]] = []
    for line in header.split(b"\r\n")[:-1] if header.endswith(b"\r\n") else header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields, body


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded value, whitespace runs as one space, none at
    the ends; ``name:value`` then CRLF."""
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t\r\n")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: whitespace at line ends removed, runs as one space, empty lines at the
    end removed, CRLF at the end of a non-empty body."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = _TRAILING_WSP.sub(b"", _WSP_RUN.sub(b" ", body))
    body = _TRAILING_EMPTY_LINES.sub(b"", body)
    return body + b"\r\n" if body else b""


def _selected(fields: list[tuple[bytes, bytes]], names: list[str]) -> list[tuple[bytes, bytes]]:
    """RFC 6376 §5.4.2: for each name in h=, the next instance from the bottom (a name listed
    more often than present selects nothing: oversigning)."""
    used: dict[bytes, int] = {}
    chosen = []
    for name in names:
        key = name.encode().lower()
        instances = [field for field in fields if field[0].strip().lower() == key]
        index = used.get(key, 0)
        used[key] = index + 1
        if index < len(instances):
            chosen.append(instances[len(instances) - 1 - index])
    return chosen


# -- signing -----------------------------------------------------------------------------------

SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimError(Exception):
    """A key that cannot be used for signing (the message names the file)."""


def generate_key(path: Path, algorithm: str = "rsa-sha256") -> None:
    """Write a new private key (PEM, mode 0600); refuses to overwrite."""
    key: SigningKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519-sha256"
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


def ensure_dkim_key(settings: Settings) -> list[str]:
    """The `pli init` step: our signing key, written once (what was done, for the report)."""
    if not settings.dkim.enabled or settings.dkim.key.exists():
        return []
    generate_key(settings.dkim.key, settings.dkim.algorithm)
    return [f"DKIM key {settings.dkim.key} ({settings.dkim.algorithm}); publish: pli dkim dns"]


def load_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise DkimError(f"{path}: no such file (run `pli init` or `pli dkim generate`)") from None
    except (ValueError, TypeError) as error:
        raise DkimError(f"{path}: not a PEM private key ({error})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise DkimError(f"{path}: DKIM keys are RSA or Ed25519")
    return key


def dns_record(key: SigningKey) -> str:
    """The TXT record value publishing the public key (RFC 6376 §3.6.1, RFC 8463 §4.2)."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


class DkimSigner:
    """Signs with one key for every domain we sign for (``d=``: the From: domain)."""

    def __init__(self, key: SigningKey, selector: str, *, clock: Callable[[], float] = time.time):
        self.key = key
        self.selector = selector
        self.algorithm = (
            "ed25519-sha256" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-sha256"
        )
        self._clock = clock

    @classmethod
    def from_settings(cls, section: DkimSection) -> DkimSigner:
        key = load_key(section.key)
        signer = cls(key, section.selector)
        if signer.algorithm != section.algorithm:
            raise DkimError(
                f"{section.key}: the key does not match dkim.algorithm = {section.algorithm!r}"
            )
        return signer

    def sign(self, message: bytes, domain: str) -> bytes:
        """The ``DKIM-Signature:`` header field (with CRLF) to prepend to ``message``."""
        fields, body = split_message(message)
        present = {name.strip().lower().decode("ascii", "replace") for name, _ in fields}
        names = [
            name for name in SIGNED_HEADERS for _ in range(_count(fields, name)) if name in present
        ]
        names.append("from")  # oversigning (RFC 6376 §8.15)
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
        tags = [
            "v=1",
            f"a={self.algorithm}",
            "c=relaxed/relaxed",
            f"d={domain}",
            f"s={self.selector}",
            f"t={int(self._clock())}",
            f"h={':'.join(names)}",
            f"bh={body_hash}",
            "b=",
        ]
        value = (
            "; ".join(tags[:4]) + ";\r\n\t" + "; ".join(tags[4:7]) + ";\r\n\t" + "; ".join(tags[7:])
        )
        data = b"".join(relaxed_header(n, v) for n, v in _selected(fields, names))
        data += relaxed_header(b"DKIM-Signature", b" " + value.encode()).removesuffix(b"\r\n")
        signature = self._signature(data)
        folded = "\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return b"DKIM-Signature: " + value.encode() + folded.encode() + b"\r\n"

    def _signature(self, data: bytes) -> str:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            raw = self.key.sign(hashlib.sha256(data).digest())  # RFC 8463 §3
        else:
            raw = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()

    async def sign_async(self, message: bytes, domain: str) -> bytes:
        """:meth:`sign` in a worker thread, the signed message returned."""
        header = await asyncio.to_thread(self.sign, message, domain)
        return header + message


def _count(fields: list[tuple[bytes, bytes]], name: str) -> int:
    key = name.encode()
    return sum(1 for field_name, _ in fields if field_name.strip().lower() == key)


# -- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One signature's verdict (RFC 8601 §2.7.1: pass, fail, neutral, temperror, permerror), or
    ``none`` for an unsigned message."""

    result: str
    domain: str = ""
    selector: str = ""
    signature: str = ""  # the first characters of b= (RFC 6008 header.b)
    reason: str = ""

    def properties(self) -> str:
        parts = [f"dkim={self.result}"]
        if self.reason:
            parts.append(f'reason="{_quoted(self.reason)}"')
        if self.domain:
            parts.append(f"header.d={self.domain}")
        if self.selector:
            parts.append(f"header.s={self.selector}")
        if self.signature:
            parts.append(f"header.b={self.signature}")
        return " ".join(parts)


NONE = DkimResult("none")
_SIGNATURE_FIELD = re.compile(rb"(?:^|\n)dkim-signature[ \t]*:", re.IGNORECASE)


def _has_signature(message: bytes) -> bool:
    """Whether the header section has a DKIM-Signature field (a cheap look before dkimpy)."""
    end = message.find(b"\r\n\r\n")
    return _SIGNATURE_FIELD.search(message, 0, len(message) if end < 0 else end + 2) is not None


def _quoted(text: str) -> str:
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')[:120]


class DkimVerifier:
    """Verifies every DKIM signature of a message (up to :data:`MAX_SIGNATURES`)."""

    def __init__(self, dnsfunc: DnsFunction | None = None, *, timeout: float = 5.0) -> None:
        self.dnsfunc = dnsfunc or dkim.dnsplug.get_txt
        self.timeout = timeout

    async def verify(self, message: bytes) -> list[DkimResult]:
        if not _has_signature(message):  # most messages: no thread, no parse
            return [NONE]
        return await asyncio.to_thread(self.verify_blocking, message)

    def verify_blocking(self, message: bytes) -> list[DkimResult]:
        try:
            checker = dkim.DKIM(message, minkey=MIN_VERIFY_KEY_BITS, timeout=self.timeout)
        except Exception as error:  # dkimpy on hostile input: no verdict
            return [DkimResult("permerror", reason=f"unparsable message: {type(error).__name__}")]
        signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
        if not signatures:
            return [DkimResult("none")]
        return [
            self._one(checker, index, value)
            for index, value in enumerate(signatures[:MAX_SIGNATURES])
        ]

    def _one(self, checker: dkim.DKIM, index: int, value: bytes) -> DkimResult:
        try:
            tags = dkim.util.parse_tag_value(value)
        except Exception:
            return DkimResult("permerror", reason="malformed signature")
        domain = tags.get(b"d", b"").decode("ascii", "replace")
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        short_b = re.sub(rb"\s", b"", tags.get(b"b", b""))[:8].decode("ascii", "replace")
        known = {"domain": domain, "selector": selector, "signature": short_b}
        if tags.get(b"a", b"").strip().lower() == b"rsa-sha1":  # RFC 8301 §3.1
            return DkimResult("fail", reason="rsa-sha1 is not accepted (RFC 8301)", **known)
        try:
            good = checker.verify(idx=index, dnsfunc=self._lookup)
        except dkim.KeyFormatError as error:
            return DkimResult("permerror", reason=f"key: {error}"[:120], **known)
        except dkim.DnsTimeoutError:
            return DkimResult("temperror", reason="key lookup timed out", **known)
        except dkim.ValidationError as error:
            if str(error).startswith("body hash mismatch"):  # RFC 8601 §2.7.1: fail
                return DkimResult("fail", reason="body hash did not verify", **known)
            return DkimResult("permerror", reason=str(error)[:120], **known)
        except dkim.DKIMException as error:
            return DkimResult("permerror", reason=str(error)[:120], **known)
        except Exception as error:
            return DkimResult("temperror", reason=type(error).__name__, **known)
        if good:
            return DkimResult("pass", **known)
        return DkimResult("fail", reason="signature did not verify", **known)

    def _lookup(self, name: bytes, timeout: float = 5.0) -> bytes | None:
        return self.dnsfunc(name, timeout=min(timeout, self.timeout))


def authentication_results(authserv_id: str, results: list[DkimResult]) -> bytes:
    """The Authentication-Results header field (RFC 8601 §2.2), with CRLF."""
    body = ";\r\n\t".join(result.properties() for result in results)
    return f"Authentication-Results: {authserv_id};\r\n\t{body}\r\n".encode()


_AR_NAME = frozenset({b"authentication-results"})


def strip_forged_results(message: bytes, authserv_id: str) -> bytes:
    """Remove Authentication-Results fields that claim ``authserv_id`` (RFC 8601 §5)."""
    wanted = authserv_id.lower().encode()

    def claims_us(name: bytes, value: bytes) -> bool:
        claimed = value.strip().split(b";", 1)[0].split()[:1]
        return bool(claimed) and claimed[0].lower() == wanted

    return drop_fields(message, _AR_NAME, claims_us)
