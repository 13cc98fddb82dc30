"""Bearer tokens (SASL OAUTHBEARER): JWT access tokens verified against the issuer's keys.

Pro Santé Connect issues OpenID Connect tokens (mssante.md §2); how a token travels over IMAP/SMTP
is SASL OAUTHBEARER (RFC 7628). We verify locally, without calling the issuer: signature with one
of the configured public keys (PEM certificates/keys or a JWKS file), ``iss``, ``aud``, ``exp``,
``nbf`` and ``iat`` (RFC 7519 §4.1) with a small clock leeway. Only asymmetric algorithms are
accepted: ``none`` and HMAC (a key confusion attack with a public key as HMAC secret) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pli.config.schema import AuthSection

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
CLOCK_LEEWAY_SECONDS = 60  # tolerated clock difference with the issuer
MAX_TOKEN_LENGTH = 8192  # octets; a PSC access token is about 1.5 KB


class TokenRefused(Exception):
    """A token that does not authenticate; ``reason`` is a stable code, ``str()`` is for logs."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    """The identity the token names (the configured claim: PSC's national identifier)."""
    claims: Mapping[str, Any]


def load_issuer_keys(path: Path) -> dict[str | None, Any]:
    """Public keys by ``kid`` from a JWKS JSON file, or from a PEM file of public keys and/or
    certificates (the first PEM key has kid None, the others their position as a string)."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        jwks = jwt.PyJWKSet.from_json(data.decode("utf-8"))
        return {key.key_id: key.key for key in jwks.keys}
    keys: dict[str | None, Any] = {}
    for index, match in enumerate(_PEM_BLOCK.finditer(data)):
        block = match.group(0)
        if match.group(1) == b"CERTIFICATE":
            key: Any = x509.load_pem_x509_certificate(block).public_key()
        else:
            key = serialization.load_pem_public_key(block)
        keys[None if index == 0 else str(index)] = key
    if not keys:
        raise ValueError(f"{path}: no public key found (expected PEM or JWKS)")
    return keys


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: Mapping[str | None, Any],
        subject_claim: str = "sub",
    ) -> None:
        if not issuer or not audience:
            raise ValueError("an issuer and an audience are required to accept bearer tokens")
        self._issuer = issuer
        self._audience = audience
        self._keys = dict(keys)
        self._subject_claim = subject_claim

    @classmethod
    def from_file(
        cls, *, issuer: str, audience: str, keys_file: Path, subject_claim: str = "sub"
    ) -> TokenVerifier:
        return cls(
            issuer=issuer,
            audience=audience,
            keys=load_issuer_keys(keys_file),
            subject_claim=subject_claim,
        )

    def verify(self, token: str) -> VerifiedToken:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRefused("token-too-long", f"{len(token)} octets")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenRefused("token-malformed", str(error)) from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise TokenRefused("token-algorithm", f"algorithm {algorithm!r} is not accepted")
        key = self._key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token-expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("token-not-yet-valid", "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("token-audience", "the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("token-issuer", "the token comes from another issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("token-signature", "the signature does not verify") from None
        except jwt.PyJWTError as error:
            raise TokenRefused("token-invalid", str(error)) from None
        subject = claims.get(self._subject_claim)
        if not isinstance(subject, str) or not subject:
            raise TokenRefused("token-subject", f"the token has no {self._subject_claim!r} claim")
        return VerifiedToken(subject=subject, claims=claims)

    def _key_for(self, kid: object) -> Any:
        if isinstance(kid, str) and kid in self._keys:
            return self._keys[kid]
        if len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise TokenRefused("token-key", f"no issuer key with kid {kid!r}")


def token_verifier_from_settings(auth: AuthSection) -> TokenVerifier | None:
    """The verifier ``[auth]`` configures (None when no issuer is set); ValueError, naming the
    keys file, when its keys cannot be used."""
    if not auth.oauth_issuer:
        return None
    try:
        return TokenVerifier.from_file(
            issuer=auth.oauth_issuer,
            audience=auth.oauth_audience,
            keys_file=auth.oauth_keys,
            subject_claim=auth.oauth_subject_claim,
        )
    except (OSError, ValueError) as error:
        raise ValueError(f"{auth.oauth_keys}: OAUTHBEARER keys unusable ({error})") from None


def jwks_json(keys: Mapping[str, Any]) -> str:
    """A JWKS document for public keys by kid (to publish a test issuer's keys)."""
    entries = []
    for kid, key in keys.items():
        codec = RSAAlgorithm if isinstance(key, rsa.RSAPublicKey) else ECAlgorithm
        entry = json.loads(codec.to_jwk(key))
        entry["kid"] = kid
        entries.append(entry)
    return json.dumps({"keys": entries})
