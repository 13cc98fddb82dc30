"""OCSP: the responder's answers over HTTP, and the client's refusal of answers it must not
believe."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st
from plitest.pki import Credential, FileServer, SessionPki, foreign_pki

from pli.certs import ocsp
from pli.certs.ocsp import MAX_RESPONSE_SIZE, OcspError, build_request, check_response
from pli.certs.ocsp_server import answerer_for

NOW = dt.datetime.now(dt.UTC)


def _ask(pki: SessionPki, credential: Credential, issuer_role: str) -> ocsp.OcspAnswer:
    issuer = pki.pki.ca_certificate(issuer_role)
    request = build_request(credential.certificate, issuer)
    data = ocsp.fetch(pki.ocsp_server.url, request, timeout=5)
    return check_response(data, credential.certificate, issuer, now=NOW)


def test_good_revoked_and_unknown(pki: SessionPki) -> None:
    credential = pki.issue_org(ocsp=True)
    answer = _ask(pki, credential, "organisations")
    assert answer.status == "good"
    assert answer.next_update is not None and answer.cache_until() == answer.next_update
    pki.revoke(credential, "affiliation-changed")
    revoked = _ask(pki, credential, "organisations")
    assert (revoked.status, revoked.reason) == ("revoked", "affiliation_changed")
    assert revoked.revoked_at is not None
    # a serial the PKI never issued, under a CA it has: unknown
    issuer = pki.pki.ca_certificate("organisations")
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            *ocsp.cert_id_hashes(issuer, hashes.SHA1()), credential.serial + 1, hashes.SHA1()
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = x509_ocsp.load_der_ocsp_response(answerer_for(pki.pki).respond(request))
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.UNKNOWN


def test_get_requests_are_answered(pki: SessionPki) -> None:
    credential = pki.issue_org(ocsp=True)
    issuer = pki.pki.ca_certificate("organisations")
    encoded = base64.b64encode(build_request(credential.certificate, issuer)).decode()
    with urllib.request.urlopen(
        pki.ocsp_server.url + urllib.request.quote(encoded, safe=""), timeout=5
    ) as r:
        assert r.headers["Content-Type"] == "application/ocsp-response"
        assert check_response(r.read(), credential.certificate, issuer, now=NOW).status == "good"


def test_the_responder_refuses_what_it_cannot_answer(pki: SessionPki) -> None:
    answerer = answerer_for(pki.pki)
    malformed = x509_ocsp.load_der_ocsp_response(answerer.respond(b"garbage"))
    assert malformed.response_status is x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    foreign = foreign_pki()
    stranger = foreign.issue_org()
    request = build_request(stranger.certificate, foreign.pki.ca_certificate("organisations"))
    unauthorised = x509_ocsp.load_der_ocsp_response(answerer.respond(request))
    assert unauthorised.response_status is x509_ocsp.OCSPResponseStatus.UNAUTHORIZED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_the_responder_never_raises(data: bytes) -> None:
    from plitest.pki import session_pki

    response = answerer_for(session_pki().pki).respond(data)
    x509_ocsp.load_der_ocsp_response(response)


def test_unsuccessful_answers_are_refused(pki: SessionPki) -> None:
    credential = pki.issue_org()
    issuer = pki.pki.ca_certificate("organisations")
    with pytest.raises(OcspError, match="responder answered malformed_request"):
        check_response(answerer_for(pki.pki).respond(b"x"), credential.certificate, issuer, now=NOW)
    with pytest.raises(OcspError, match="not a DER OCSP response"):
        check_response(b"<html>", credential.certificate, issuer, now=NOW)


def _response(
    pki: SessionPki,
    credential: Credential,
    *,
    signer: x509.Certificate | None = None,
    signer_key: object = None,
    serial: int | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    certificates: list[x509.Certificate] | None = None,
) -> bytes:
    issuer = pki.pki.ca_certificate("organisations")
    builder = x509_ocsp.OCSPResponseBuilder().add_response_by_hash(
        *ocsp.cert_id_hashes(issuer, hashes.SHA1()),
        serial_number=serial if serial is not None else credential.serial,
        algorithm=hashes.SHA1(),
        cert_status=x509_ocsp.OCSPCertStatus.GOOD,
        this_update=this_update or NOW - dt.timedelta(minutes=1),
        next_update=next_update,
        revocation_time=None,
        revocation_reason=None,
    )
    builder = builder.responder_id(x509_ocsp.OCSPResponderEncoding.HASH, signer or issuer)
    if certificates:
        builder = builder.certificates(certificates)
    key = signer_key or pki.pki.ca_key("organisations")
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def test_answers_that_must_not_be_believed(pki: SessionPki) -> None:
    credential = pki.issue_org()
    issuer = pki.pki.ca_certificate("organisations")

    def check(data: bytes) -> ocsp.OcspAnswer:
        return check_response(data, credential.certificate, issuer, now=NOW)

    answer = check(_response(pki, credential))
    assert answer.status == "good" and answer.next_update is None
    assert answer.cache_until() == answer.this_update + ocsp.CACHE_WITHOUT_NEXT_UPDATE
    with pytest.raises(OcspError, match="does not mention this certificate"):
        check(_response(pki, credential, serial=credential.serial + 1))
    with pytest.raises(OcspError, match="dated in the future"):
        check(_response(pki, credential, this_update=NOW + dt.timedelta(hours=1)))
    with pytest.raises(OcspError, match=r"stale \(nextUpdate passed\)"):
        check(
            _response(
                pki,
                credential,
                this_update=NOW - dt.timedelta(hours=3),
                next_update=NOW - dt.timedelta(hours=1),
            )
        )
    # a signature altered in transit: refused (the signature ends the response)
    tampered = bytearray(_response(pki, credential))
    tampered[-1] ^= 0x01
    with pytest.raises(OcspError, match="signature does not verify"):
        check(bytes(tampered))
    other = foreign_pki().pki
    # a responder certificate from another CA: refused
    with pytest.raises(OcspError, match="not signed by the issuer or a responder it authorised"):
        check(
            _response(
                pki,
                credential,
                signer=other.ca_certificate("organisations"),
                signer_key=other.ca_key("organisations"),
                certificates=[other.ca_certificate("organisations")],
            )
        )


def _delegate(pki: SessionPki, usage: x509.ObjectIdentifier) -> Credential:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "OCSP ORGANISATIONS")])
    return pki.issue("org", subject, usages=(usage,), fresh_key=True)


def test_a_delegated_responder_is_accepted_only_with_ocsp_signing(pki: SessionPki) -> None:
    credential = pki.issue_org()
    issuer = pki.pki.ca_certificate("organisations")
    delegate = _delegate(pki, ExtendedKeyUsageOID.OCSP_SIGNING)
    data = _response(
        pki,
        credential,
        signer=delegate.certificate,
        signer_key=delegate.key,
        certificates=[delegate.certificate],
    )
    assert check_response(data, credential.certificate, issuer, now=NOW).status == "good"
    not_a_responder = _delegate(pki, ExtendedKeyUsageOID.CLIENT_AUTH)
    data = _response(
        pki,
        credential,
        signer=not_a_responder.certificate,
        signer_key=not_a_responder.key,
        certificates=[not_a_responder.certificate],
    )
    with pytest.raises(OcspError, match="not signed by the issuer or a responder it authorised"):
        check_response(data, credential.certificate, issuer, now=NOW)


def test_fetch_refuses_errors_and_oversized_answers(file_server: FileServer) -> None:
    url = file_server.url("/ocsp")
    file_server.routes["/ocsp"] = (500, b"oops")
    with pytest.raises(OcspError, match="answered HTTP 500"):
        ocsp.fetch(url, b"request", timeout=5)
    file_server.routes["/ocsp"] = (200, b"x" * (MAX_RESPONSE_SIZE + 1))
    with pytest.raises(OcspError, match=f"sent more than {MAX_RESPONSE_SIZE} bytes"):
        ocsp.fetch(url, b"request", timeout=5)
    file_server.routes["/ocsp"] = (200, b"x" * MAX_RESPONSE_SIZE)
    assert len(ocsp.fetch(url, b"request", timeout=5)) == MAX_RESPONSE_SIZE
    assert file_server.requests == ["POST /ocsp"] * 3


def test_fetch_reports_an_unreachable_responder() -> None:
    with pytest.raises(OcspError, match="unreachable: ConnectError"):
        ocsp.fetch("http://127.0.0.1:1/", b"request", timeout=5)


def test_only_http_responders_are_asked(pki: SessionPki) -> None:
    assert ocsp.ocsp_urls(pki.issue_org(ocsp=True).certificate) == [pki.ocsp_server.url]
    assert ocsp.ocsp_urls(pki.issue_org().certificate) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_from_a_responder_are_an_answer_or_an_ocsp_error(data: bytes) -> None:
    from plitest.pki import session_pki

    pki = session_pki()
    issuer = pki.pki.ca_certificate("servers")
    with contextlib.suppress(OcspError):
        check_response(data, pki.operator.certificate, issuer, now=NOW)
