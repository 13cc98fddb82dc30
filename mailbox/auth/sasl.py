"""SASL mechanisms as sans-IO exchanges: PLAIN, LOGIN, EXTERNAL, OAUTHBEARER, XOAUTH2.

A mechanism is fed the client's responses (already base64-decoded by the protocol layer) and
answers with either a challenge to send or the credentials it extracted. Checking those
credentials is the caller's job (the store knows accounts). Malformed responses raise
:class:`SaslError` whose text is safe to send to the peer.

- PLAIN: RFC 4616 (``authzid NUL authcid NUL passwd``, UTF-8, no NUL in the parts).
- LOGIN: draft-murchison-sasl-login (two challenges: ``Username:``, ``Password:``).
- EXTERNAL: RFC 4422 Appendix A (the identity comes from the TLS client certificate; the client
  may name an authorization identity).
- OAUTHBEARER: RFC 7628 §3.1 (GS2 header ``n,a=authzid,`` then ``^Aauth=Bearer TOKEN^A^A``);
  on failure the server sends the JSON error challenge of §3.2.2 and the client answers ``^A``.
- XOAUTH2: Google's variant (``user=…^Aauth=Bearer TOKEN^A^A``), accepted for older clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

MAX_SASL_RESPONSE = 16384  # octets of one decoded response (a JWT is a few KB)

Mechanism = Literal["PLAIN", "LOGIN", "EXTERNAL", "OAUTHBEARER", "XOAUTH2"]
MECHANISMS: tuple[Mechanism, ...] = ("PLAIN", "LOGIN", "EXTERNAL", "OAUTHBEARER", "XOAUTH2")


class SaslError(Exception):
    """A malformed client response; ``str()`` is safe to send to the client."""


@dataclass(frozen=True, slots=True)
class PasswordCredentials:
    username: str
    password: str
    authzid: str = ""


@dataclass(frozen=True, slots=True)
class ExternalCredentials:
    """The identity is the TLS client certificate; ``authzid`` is the mailbox asked for, if any."""

    authzid: str = ""


@dataclass(frozen=True, slots=True)
class BearerCredentials:
    token: str
    authzid: str = ""


Credentials = PasswordCredentials | ExternalCredentials | BearerCredentials


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


def _text(raw: bytes, what: str) -> str:
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not UTF-8") from None
    if "\x00" in value:
        raise SaslError(f"{what} contains NUL")
    return value


def _check_size(response: bytes) -> None:
    if len(response) > MAX_SASL_RESPONSE:
        raise SaslError("response too long")


class SaslExchange:
    """One authentication exchange. Call :meth:`step` with each client response (``None`` when
    the client sent no initial response); it returns a :class:`Challenge` or the credentials."""

    def __init__(self, mechanism: str) -> None:
        name = mechanism.upper()
        if name not in MECHANISMS:
            raise SaslError(f"unsupported mechanism {mechanism[:32]!r}")
        self.mechanism: Mechanism = name
        self._username: str | None = None
        self._failed_bearer = False

    def step(self, response: bytes | None) -> Challenge | Credentials:
        if response is not None:
            _check_size(response)
        if self._failed_bearer:
            raise SaslError("authentication failed")
        handler = getattr(self, f"_step_{self.mechanism.lower()}")
        result: Challenge | Credentials = handler(response)
        return result

    def bearer_failure_challenge(self, scope: str = "", status: str = "invalid_token") -> Challenge:
        """RFC 7628 §3.2.2: the JSON error sent before the final failure (OAUTHBEARER only)."""
        self._failed_bearer = True
        body: dict[str, str] = {"status": status}
        if scope:
            body["scope"] = scope
        return Challenge(json.dumps(body, separators=(",", ":")).encode())

    def _step_plain(self, response: bytes | None) -> Challenge | Credentials:
        if response is None:
            return Challenge(b"")
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise SaslError("PLAIN response must be authzid NUL authcid NUL password")
        authzid, username, password = (_text(part, "PLAIN field") for part in parts)
        if not username or not password:
            raise SaslError("PLAIN response has an empty user name or password")
        return PasswordCredentials(username=username, password=password, authzid=authzid)

    def _step_login(self, response: bytes | None) -> Challenge | Credentials:
        if self._username is None:
            if response is None:
                return Challenge(b"Username:")
            self._username = _text(response, "user name")
            if not self._username:
                raise SaslError("empty user name")
            return Challenge(b"Password:")
        if response is None:
            raise SaslError("missing password")
        return PasswordCredentials(username=self._username, password=_text(response, "password"))

    def _step_external(self, response: bytes | None) -> Challenge | Credentials:
        if response is None:
            return Challenge(b"")
        return ExternalCredentials(authzid=_text(response, "authorization identity"))

    def _step_oauthbearer(self, response: bytes | None) -> Challenge | Credentials:
        if response is None:
            return Challenge(b"")
        header, separator, rest = response.partition(b"\x01")
        if not separator:
            raise SaslError("OAUTHBEARER response has no key/value part")
        gs2 = _text(header, "GS2 header").split(",")
        if len(gs2) < 3 or gs2[0] not in ("n", "y") or gs2[2] != "":
            raise SaslError("OAUTHBEARER GS2 header must be 'n,[a=authzid],'")
        authzid = ""
        if gs2[1]:
            if not gs2[1].startswith("a="):
                raise SaslError("OAUTHBEARER GS2 header must be 'n,[a=authzid],'")
            authzid = gs2[1][2:].replace("=2C", ",").replace("=3D", "=")
        token = _bearer_token(_key_values(rest))
        return BearerCredentials(token=token, authzid=authzid)

    def _step_xoauth2(self, response: bytes | None) -> Challenge | Credentials:
        if response is None:
            return Challenge(b"")
        values = _key_values(response)
        return BearerCredentials(token=_bearer_token(values), authzid=values.get("user", ""))


def _key_values(raw: bytes) -> dict[str, str]:
    """``key=value^A…^A^A`` (RFC 7628 §3.1 kvpairs) into a dict."""
    if not raw.endswith(b"\x01\x01") and not raw.endswith(b"\x01"):
        raise SaslError("key/value pairs must end with ^A^A")
    values: dict[str, str] = {}
    for pair in raw.rstrip(b"\x01").split(b"\x01"):
        key, separator, value = _text(pair, "key/value pair").partition("=")
        if not separator or not key.isalpha():
            raise SaslError("malformed key/value pair")
        values[key] = value
    return values


def _bearer_token(values: dict[str, str]) -> str:
    scheme, _, token = values.get("auth", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SaslError("expected auth=Bearer <token>")
    return token.strip()
