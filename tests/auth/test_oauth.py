"""Bearer tokens for OAUTHBEARER: signature, issuer, audience, dates, algorithm confusion."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pli.mailbox.auth.oauth import TokenRefused, TokenVerifier, jwks_json, load_issuer_keys

ISSUER = "https://auth.esante.gouv.fr/auth/realms/esante-wallet"
AUDIENCE = "pli-mssante"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "preferred_username": "810001234567",
        "sub": "f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:810001234567",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def verifier(key: Any, claim: str = "preferred_username") -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys={"k1": key.public_key()}, subject_claim=claim
    )


def test_a_good_rs256_token_gives_the_configured_subject(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    verified = verifier(rsa_key).verify(token)
    assert verified.subject == "810001234567"
    assert verified.claims["iss"] == ISSUER


def test_es256_is_accepted(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = jwt.encode(claims(), ec_key, algorithm="ES256")
    assert verifier(ec_key, "sub").verify(token).subject.endswith(":810001234567")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "token-expired"),
        ({"nbf": int(time.time()) + 3600}, "token-not-yet-valid"),
        ({"aud": "another-service"}, "token-audience"),
        ({"iss": "https://evil.example"}, "token-issuer"),
        ({"exp": None}, "token-invalid"),
        ({"preferred_username": None}, "token-subject"),
    ],
)
def test_bad_claims_are_refused_with_a_reason(
    rsa_key: rsa.RSAPrivateKey, overrides: dict[str, Any], reason: str
) -> None:
    token = jwt.encode(claims(**overrides), rsa_key, algorithm="RS256")
    with pytest.raises(TokenRefused) as refused:
        verifier(rsa_key).verify(token)
    assert refused.value.reason == reason


def test_a_token_signed_by_another_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), other, algorithm="RS256")
    with pytest.raises(TokenRefused) as refused:
        verifier(rsa_key).verify(token)
    assert refused.value.reason == "token-signature"


def test_hmac_with_the_public_key_as_secret_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """Algorithm confusion: HS256 signed with the issuer's public PEM must not verify."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims()).encode())
    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    token = (header + b"." + payload + b"." + jwt.utils.base64url_encode(signature)).decode()
    with pytest.raises(TokenRefused) as refused:
        verifier(rsa_key).verify(token)
    assert refused.value.reason == "token-algorithm"


def test_alg_none_and_garbage_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    for token, reason in ((unsigned, "token-algorithm"), ("not.a.jwt", "token-malformed")):
        with pytest.raises(TokenRefused) as refused:
            verifier(rsa_key).verify(token)
        assert refused.value.reason == reason
    with pytest.raises(TokenRefused) as refused:
        verifier(rsa_key).verify("a" * 10_000)
    assert refused.value.reason == "token-too-long"


def test_keys_from_pem_and_jwks_files(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    from_pem = TokenVerifier.from_file(issuer=ISSUER, audience=AUDIENCE, keys_file=pem)
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert from_pem.verify(token).subject.startswith("f:")

    jwks = tmp_path / "jwks.json"
    jwks.write_text(jwks_json({"r": rsa_key.public_key(), "e": ec_key.public_key()}))
    keys = load_issuer_keys(jwks)
    assert set(keys) == {"r", "e"}
    from_jwks = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=keys)
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "e"})
    assert from_jwks.verify(token).subject.startswith("f:")
    unknown = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "zz"})
    with pytest.raises(TokenRefused) as refused:
        from_jwks.verify(unknown)
    assert refused.value.reason == "token-key"


def test_an_issuer_and_audience_are_required(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer="", audience=AUDIENCE, keys={"k": rsa_key.public_key()})
