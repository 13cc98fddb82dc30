"""DKIM: our signer's output verifies with dkimpy (RSA-SHA256 and Ed25519-SHA256), tampering
fails, RFC 8301 refusals (rsa-sha1, short keys), canonicalization vectors of RFC 6376 §3.4.5,
Authentication-Results and the removal of forged ones; hypothesis: any message we sign
verifies."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.smtp import FakeDkimDns
from plitest.store import build_message

from pli.mailgateway.dkim import (
    DkimResult,
    DkimSigner,
    DkimVerifier,
    authentication_results,
    dns_record,
    generate_key,
    load_key,
    relaxed_body,
    relaxed_header,
    strip_forged_results,
)

DOMAIN = "hopital-demo.mssante.fr"


@pytest.fixture(scope="module", params=["rsa-sha256", "ed25519-sha256"])
def signer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DkimSigner:
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    generate_key(path, request.param)
    return DkimSigner(load_key(path), "pli")


def dns_for(signer: DkimSigner) -> FakeDkimDns:
    fake = FakeDkimDns()
    fake.publish("pli", DOMAIN, dns_record(signer.key))
    return fake


def verify(signer: DkimSigner, message: bytes) -> list[DkimResult]:
    return DkimVerifier(dns_for(signer)).verify_blocking(message)


def test_our_signature_verifies_and_tampering_fails(signer: DkimSigner) -> None:
    message = build_message(
        sender=f"Dr Martin <dr.martin@{DOMAIN}>", subject="Résultats  d'analyse"
    )
    signed = signer.sign(message, DOMAIN) + message
    assert signed.startswith(
        f"DKIM-Signature: v=1; a={signer.algorithm}; c=relaxed/relaxed".encode()
    )
    [result] = verify(signer, signed)
    assert (result.result, result.domain, result.selector) == ("pass", DOMAIN, "pli")
    assert dkim.verify(signed, dnsfunc=dns_for(signer))  # dkimpy's own entry point agrees
    assert (
        verify(signer, signed.replace(b"ceci est un test", b"ceci est un faux"))[0].result == "fail"
    )
    to = b"To: 180017512345660@patient.mssante.fr"
    assert to in signed
    assert verify(signer, signed.replace(to, to.replace(b"1800", b"2800")))[0].result == "fail"


def test_a_second_from_added_later_breaks_the_signature(signer: DkimSigner) -> None:
    message = build_message(sender=f"dr.martin@{DOMAIN}")
    signed = signer.sign(message, DOMAIN) + message
    header, body = signed.split(b"\r\n\r\n", 1)
    forged = header + b"\r\nFrom: attacker@evil.fr\r\n\r\n" + body
    assert verify(signer, forged)[0].result == "fail"  # From: is oversigned


def test_an_unsigned_message_and_an_unknown_key() -> None:
    assert DkimVerifier(FakeDkimDns()).verify_blocking(build_message()) == [DkimResult("none")]


def test_rsa_sha1_signatures_are_refused(tmp_path: Path) -> None:
    """dkimpy accepts rsa-sha1; RFC 8301 §3.1 forbids it: we refuse before asking dkimpy."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    message = build_message(sender=f"a@{DOMAIN}")
    signature = dkim.sign(message, b"old", DOMAIN.encode(), pem, signature_algorithm=b"rsa-sha1")
    fake = FakeDkimDns()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.publish("old", DOMAIN, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}")
    assert dkim.verify(signature + message, dnsfunc=fake)  # what we protect against
    [result] = DkimVerifier(fake).verify_blocking(signature + message)
    assert (result.result, result.reason) == ("fail", "rsa-sha1 is not accepted (RFC 8301)")


#: The public half of a 768-bit RSA key (openssl genrsa 768): too short (RFC 8301 §3.2).
WEAK_PUBLIC_KEY = (
    "MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhALaj8RVfa9j8FurAGk5ptUyVmtfB51F8UYtkguUN0RyJO1El1UybP+clwG7"
    "fhOkO/BVm7280GVWo15dHNXJ4rJoO+ABDAzOkvXkHE2f0qXyh9WUR2uW1YNWB+Qp1yXSIbwIDAQAB"
)


def test_keys_under_1024_bits_are_refused(signer: DkimSigner) -> None:
    message = build_message(sender=f"a@{DOMAIN}")
    fake = FakeDkimDns()
    fake.publish("pli", DOMAIN, f"v=DKIM1; k=rsa; p={WEAK_PUBLIC_KEY}")
    [result] = DkimVerifier(fake).verify_blocking(signer.sign(message, DOMAIN) + message)
    assert result.result != "pass"  # dkimpy's minkey check: the signature does not count


def test_relaxed_canonicalization_rfc6376_example() -> None:
    """RFC 6376 §3.4.6 example (relaxed headers and body)."""
    assert relaxed_header(b"A", b" X \r\n") == b"a:X\r\n"
    assert relaxed_header(b"B ", b" Y\t\r\n\tZ  \r\n") == b"b:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert relaxed_body(b"") == b""
    assert relaxed_body(b"no end") == b"no end\r\n"


def test_authentication_results_and_forged_ones() -> None:
    header = authentication_results(
        "mx.hopital-demo.mssante.fr",
        [
            DkimResult("pass", DOMAIN, "pli", "abcdefgh"),
            DkimResult("fail", "x.fr", reason='bad "key"'),
        ],
    )
    assert header == (
        b"Authentication-Results: mx.hopital-demo.mssante.fr;\r\n"
        b"\tdkim=pass header.d=hopital-demo.mssante.fr header.s=pli header.b=abcdefgh;\r\n"
        b'\tdkim=fail reason="bad key" header.d=x.fr\r\n'
    )
    kept = b"Authentication-Results: other.test; dkim=fail\r\nSubject: s\r\n\r\n"
    body = b"Authentication-Results: mx.test; in the body\r\n"
    message = b"Authentication-Results: MX.test;\r\n\tdkim=pass\r\n" + kept + body
    assert strip_forged_results(message, "mx.test") == kept + body


_HEADER_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=32,
        max_codepoint=0x2FF,
        exclude_categories=("Cc", "Cs"),
        exclude_characters=":",
    ),
    max_size=60,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=_HEADER_TEXT, body=st.text(max_size=500), extra=st.lists(_HEADER_TEXT, max_size=3))
def test_any_message_we_sign_verifies(
    signer: DkimSigner, subject: str, body: str, extra: list[str]
) -> None:
    headers = {f"X-Extra-{index}": value for index, value in enumerate(extra)}
    message = build_message(
        sender=f"dr.martin@{DOMAIN}", subject=subject, body=body, headers=headers
    )
    assert verify(signer, signer.sign(message, DOMAIN) + message)[0].result == "pass"
