"""The verification matrix: good and bad certificates, each refused with its exact reason."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from plitest.pki import Credential, SessionPki, foreign_pki

from pli.certs import refusals
from pli.certs.identity import IdentityKind
from pli.certs.ocsp import OcspError
from pli.certs.refusals import REASONS, CertificateRefused
from pli.certs.verify import MAX_CHAIN_DEPTH, TrustError, TrustStore
from pli.certs.whitelist import parse_whitelist, require_listed

NOW = dt.datetime.now(dt.UTC)


def refusal(call: Callable[[], object]) -> CertificateRefused:
    with pytest.raises(CertificateRefused) as refused:
        call()
    assert refused.value.reason in REASONS
    return refused.value


# -- accepted ------------------------------------------------------------------------------------


def test_our_server_certificate_is_accepted_as_a_server(pki: SessionPki) -> None:
    peer = pki.trust_store().verify(pki.server.certificate, "server", hostname="localhost")
    assert peer.identity.kind is IdentityKind.OPERATOR
    assert [c.subject for c in peer.chain] == [
        pki.server.certificate.subject,
        pki.pki.ca_certificate("servers").subject,
        pki.pki.ca_certificate("root").subject,
    ]
    assert [r.status for r in peer.revocation] == ["good", "good"]  # leaf, intermediate
    assert peer.warnings == ()


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda pki: pki.operator, IdentityKind.OPERATOR),
        (lambda pki: pki.issue_person(), IdentityKind.PERSON),
        (lambda pki: pki.issue_org(), IdentityKind.ORGANISATION),  # no SAN at all
    ],
)
def test_client_certificates_of_every_kind_are_accepted(
    pki: SessionPki, make: Callable[[SessionPki], Credential], kind: IdentityKind
) -> None:
    credential = make(pki)
    peer = pki.trust_store().verify(credential.der, "client")  # DER, as ssl gives it
    assert peer.identity.kind is kind
    assert peer.certificate == credential.certificate


def test_a_server_name_is_checked_when_given(pki: SessionPki) -> None:
    store = pki.trust_store()
    store.verify(pki.server.certificate, "server", hostname="127.0.0.1")
    store.verify(pki.server.certificate, "server", hostname="LOCALHOST.")
    wildcard = pki.issue_server("mx.wild.fr", sans=["*.wild.fr"])
    store.verify(wildcard.certificate, "server", hostname="smtp.wild.fr")
    for wrong in ("other.fr", "a.b.wild.fr", "10.0.0.1"):
        found = refusal(lambda w=wrong: store.verify(wildcard.certificate, "server", hostname=w))
        assert found.reason == refusals.HOSTNAME_MISMATCH
        assert found.text == f"{wrong} is not named by the certificate"


# -- the refusal matrix ---------------------------------------------------------------------------


def test_expired(pki: SessionPki) -> None:
    start = (NOW - dt.timedelta(days=400)).replace(microsecond=0)
    credential = pki.issue_operator(
        "old.fr", not_before=start, not_after=start + dt.timedelta(days=365)
    )
    found = refusal(lambda: pki.trust_store().verify(credential.certificate, "client"))
    assert found.reason == "expired"
    assert found.text == f"expired on {(start + dt.timedelta(days=365)).isoformat()}"
    assert found.public_text == "certificate expired"


def test_not_yet_valid(pki: SessionPki) -> None:
    start = (NOW + dt.timedelta(days=2)).replace(microsecond=0)
    credential = pki.issue_operator("early.fr", not_before=start)
    found = refusal(lambda: pki.trust_store().verify(credential.certificate, "client"))
    assert (found.reason, found.text) == ("not-yet-valid", f"valid from {start.isoformat()}")


def test_expiry_is_judged_at_the_time_given(pki: SessionPki) -> None:
    store = pki.trust_store()
    later = pki.server.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    assert refusal(lambda: store.verify(pki.server.certificate, "server", now=later)).reason == (
        "expired"
    )


@pytest.mark.parametrize(
    ("purpose", "usages", "text"),
    [
        (
            "client",
            (ExtendedKeyUsageOID.SERVER_AUTH,),
            "issued for serverAuth; clientAuth is required",
        ),
        (
            "server",
            (ExtendedKeyUsageOID.CLIENT_AUTH,),
            "issued for clientAuth; serverAuth is required",
        ),
        (
            "client",
            (ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING),
            "issued for emailProtection, codeSigning; clientAuth is required",
        ),
    ],
)
def test_wrong_eku(pki: SessionPki, purpose: str, usages: tuple, text: str) -> None:
    credential = pki.issue_operator("eku.fr", usages=usages)
    found = refusal(lambda: pki.trust_store().verify(credential.certificate, purpose))  # type: ignore[arg-type]
    assert (found.reason, found.text) == ("wrong-eku", text)


def test_an_empty_eku_is_malformed(pki: SessionPki) -> None:
    credential = pki.issue_operator("eku.fr", usages=())  # SEQUENCE SIZE (1..MAX) violated
    assert refusal(lambda: pki.trust_store().verify(credential.der, "client")).reason == "malformed"


def test_no_eku_at_all_is_wrong_eku(pki: SessionPki) -> None:
    # A certificate without the extension (RFC 5280 would allow any use; IGC Santé always sets it).
    subject = pki.server.certificate.subject
    issued = pki.pki.issue("operator", subject, key=pki.shared_key)
    without = _reissue_without(pki, issued.certificate, x509.ExtendedKeyUsage)
    found = refusal(lambda: pki.trust_store().verify(without, "client"))
    assert (found.reason, found.text) == (
        "wrong-eku",
        "no extended key usage; clientAuth is required",
    )


def test_any_extended_key_usage_is_accepted(pki: SessionPki) -> None:
    credential = pki.issue_operator("any.fr", usages=(x509.ObjectIdentifier("2.5.29.37.0"),))
    pki.trust_store().verify(credential.certificate, "client")


def test_wrong_key_usage(pki: SessionPki) -> None:
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    subject = pki.server.certificate.subject
    issued = pki.pki.issue("operator", subject, key=pki.shared_key)
    replaced = _reissue_without(pki, issued.certificate, x509.KeyUsage, add=(usage, True))
    found = refusal(lambda: pki.trust_store().verify(replaced, "client"))
    assert found.reason == "wrong-key-usage"


def _reissue_without(
    pki: SessionPki,
    template: x509.Certificate,
    extension: type[x509.ExtensionType],
    add: tuple[x509.ExtensionType, bool] | None = None,
) -> x509.Certificate:
    """The same certificate, signed by the same CA, without (or with a replaced) extension."""
    from cryptography.hazmat.primitives import hashes

    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(template.public_key())  # type: ignore[arg-type]
        .serial_number(template.serial_number)
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for existing in template.extensions:
        if not isinstance(existing.value, extension):
            builder = builder.add_extension(existing.value, existing.critical)
    if add is not None:
        builder = builder.add_extension(*add)
    return builder.sign(pki.pki.ca_key("servers"), hashes.SHA256())


def test_unknown_ca(pki: SessionPki) -> None:
    stranger = foreign_pki().issue_operator("mx.etranger.fr")
    found = refusal(lambda: pki.trust_store().verify(stranger.certificate, "client"))
    assert found.reason == "unknown-ca"
    assert found.text == (
        "issuer CN=TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS,OU=IGC-SANTE TEST,"
        "O=PLI ETRANGERE,C=FR is none of our CAs"
    )


def test_a_ca_impersonating_ours_by_name_is_a_bad_signature(
    pki: SessionPki, tmp_path: Path
) -> None:
    impostor = SessionPki(tmp_path)  # same names as ours (O=PLI TEST), other keys
    credential = impostor.issue_operator("mx.imposteur.fr")
    assert credential.certificate.issuer == pki.operator.certificate.issuer
    found = refusal(lambda: pki.trust_store().verify(credential.certificate, "client"))
    assert found.reason == "bad-signature"
    impostor.close()


def test_an_intermediate_we_hold_but_cannot_anchor_is_unknown_ca(pki: SessionPki) -> None:
    # The foreign intermediate is in our intermediates file, its root is not an anchor.
    foreign = foreign_pki()
    store = TrustStore(
        pki.pki.anchors(),
        [*pki.pki.intermediates(), *foreign.pki.intermediates()],
        crl_dir=pki.crl_dir,
    )
    found = refusal(lambda: store.verify(foreign.issue_org().certificate, "client"))
    assert found.reason == "unknown-ca"
    assert found.text.startswith("no path from CN=TEST PLI AC IGC-SANTE ELEMENTAIRE ORGANISATIONS")


def test_self_signed(pki: SessionPki) -> None:
    found = refusal(lambda: pki.trust_store().verify(pki.self_signed().certificate, "client"))
    assert found.reason == "self-signed"
    assert found.text == (
        "CN=localhost,OU=1990000001,O=PLI DEMO OPERATEUR,ST=Paris (75),C=FR is self-signed"
    )


def test_unknown_critical_extension(pki: SessionPki) -> None:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.250.1.999.1"), b"\x05\x00")
    credential = pki.issue_operator("odd.fr", extra_extensions=[(odd, True)])
    found = refusal(lambda: pki.trust_store().verify(credential.certificate, "client"))
    assert (found.reason, found.text) == (
        "unknown-critical-extension",
        "critical extension 1.2.250.1.999.1 is not understood",
    )
    # the same extension, not critical, is ignored (RFC 5280 §4.2)
    tolerated = pki.issue_operator("odd.fr", extra_extensions=[(odd, False)])
    pki.trust_store().verify(tolerated.certificate, "client")


@pytest.mark.parametrize("data", [b"", b"not a certificate", b"\x30\x03\x02\x01\x01"])
def test_malformed(pki: SessionPki, data: bytes) -> None:
    assert refusal(lambda: pki.trust_store().verify(data, "client")).reason == "malformed"


def test_revoked_by_crl(pki: SessionPki) -> None:
    credential = pki.issue_person("10000000008", "REVOQUE", "Paul")
    store = pki.trust_store()
    store.verify(credential.certificate, "client")
    pki.revoke(credential, "key-compromise")
    with structlog.testing.capture_logs() as logs:
        found = refusal(lambda: store.verify(credential.certificate, "client"))
    assert found.reason == "revoked"
    assert found.text.startswith(f"{credential.dn}: listed in {pki.crl_dir}/persons.crl since ")
    assert found.text.endswith("(key_compromise)")
    assert [entry["event"] for entry in logs] == ["certificate-revoked"]


def test_a_revoked_intermediate_revokes_what_it_issued(tmp_path: Path) -> None:
    own = SessionPki(tmp_path)
    credential = own.issue_org()
    own.trust_store().verify(credential.certificate, "client")
    own.pki.revoke(own.pki.ca_certificate("organisations").serial_number, "ca-compromise")
    found = refusal(lambda: own.trust_store().verify(credential.certificate, "client"))
    assert found.reason == "revoked"
    assert found.text.startswith("CN=TEST PLI AC IGC-SANTE ELEMENTAIRE ORGANISATIONS")
    own.close()


def _crl_snapshot(pki: SessionPki, tmp_path: Path) -> Path:
    snapshot = tmp_path / "crl"
    shutil.copytree(pki.crl_dir, snapshot)
    return snapshot


def test_revoked_by_ocsp(pki: SessionPki, tmp_path: Path) -> None:
    credential = pki.issue_person("10000000016", "OCSP", "Anne", ocsp=True)
    stale_view = _crl_snapshot(pki, tmp_path)  # CRLs from before the revocation
    pki.revoke(credential, "privilege-withdrawn")
    by_crl_only = pki.trust_store(crl_dir=stale_view)
    by_crl_only.verify(credential.certificate, "client")  # the old CRL does not list it
    store = pki.trust_store(crl_dir=stale_view, ocsp=True)
    found = refusal(lambda: store.verify(credential.certificate, "client"))
    assert found.reason == "revoked"
    assert f"OCSP ({pki.ocsp_server.url}): revoked since " in found.text
    assert found.text.endswith("(privilege_withdrawn)")


def test_ocsp_good_answers_are_cached_until_next_update(pki: SessionPki) -> None:
    credential = pki.issue_operator("ocsp-cache.fr", ocsp=True)
    store = pki.trust_store(ocsp=True)
    before = pki.ocsp_server.requests
    first = store.verify(credential.certificate, "client")
    store.verify(credential.certificate, "client")
    assert pki.ocsp_server.requests == before + 1
    assert first.revocation[0].source == "ocsp"
    later = NOW + dt.timedelta(hours=2)  # past the answer's nextUpdate (1 h)
    store.verify(credential.certificate, "client", now=later)
    assert pki.ocsp_server.requests == before + 2


def test_missing_crl_is_revocation_unknown_and_hard_by_default(
    pki: SessionPki, tmp_path: Path
) -> None:
    empty = tmp_path / "no-crl"
    empty.mkdir()
    store = pki.trust_store(crl_dir=empty)
    with structlog.testing.capture_logs() as logs:
        found = refusal(lambda: store.verify(pki.operator.certificate, "client"))
    assert found.reason == "revocation-unknown"
    assert found.text.endswith(
        f"no CRL of CN=TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS,OU=IGC-SANTE TEST,"
        f"O=PLI TEST,C=FR in {empty}"
    )
    assert [(e["event"], e["policy"]) for e in logs] == [("revocation-unknown", "hard")]


def test_soft_failure_accepts_and_still_logs(pki: SessionPki, tmp_path: Path) -> None:
    empty = tmp_path / "no-crl"
    empty.mkdir()
    store = pki.trust_store(crl_dir=empty, revocation_failure="soft")
    with structlog.testing.capture_logs() as logs:
        peer = store.verify(pki.operator.certificate, "client")
    assert [r.status for r in peer.revocation] == ["unknown", "unknown"]
    assert len(peer.warnings) == 2 and peer.warnings[0].startswith(
        "revocation unknown for CN=localhost"
    )
    assert [(e["event"], e["policy"]) for e in logs] == [("revocation-unknown", "soft")] * 2


def test_a_stale_crl_is_revocation_unknown(pki: SessionPki) -> None:
    later = NOW + dt.timedelta(days=40)  # past every CRL's nextUpdate (30 days)
    found = refusal(lambda: pki.trust_store().verify(pki.operator.certificate, "client", now=later))
    assert found.reason == "revocation-unknown"
    assert "servers.crl is stale (nextUpdate " in found.text


def test_a_crl_not_signed_by_its_ca_is_ignored(pki: SessionPki, tmp_path: Path) -> None:
    crl_dir = tmp_path / "crl"
    crl_dir.mkdir()
    forged = foreign_pki().crl_dir / "servers.crl"  # same issuer name, other key
    shutil.copy(forged, crl_dir / "servers.crl")
    with structlog.testing.capture_logs() as logs:
        found = refusal(
            lambda: pki.trust_store(crl_dir=crl_dir).verify(pki.operator.certificate, "client")
        )
    assert found.reason == "revocation-unknown"
    assert {
        "event": "crl-ignored",
        "path": str(crl_dir / "servers.crl"),
        "why": "not signed by a known CA",
        "log_level": "warning",
    } in logs


def test_crls_in_pem_and_any_file_name_are_read(pki: SessionPki, tmp_path: Path) -> None:
    crl_dir = tmp_path / "crl"
    crl_dir.mkdir()
    for path in pki.crl_dir.iterdir():
        crl = x509.load_der_x509_crl(path.read_bytes())
        (crl_dir / f"{path.stem}-copy.pem").write_bytes(
            crl.public_bytes(serialization.Encoding.PEM)
        )
    (crl_dir / "README").write_text("not a CRL")  # ignored, logged
    pki.trust_store(crl_dir=crl_dir).verify(pki.operator.certificate, "client")


def test_ocsp_unreachable_without_crl_is_unknown(pki: SessionPki, tmp_path: Path) -> None:
    credential = pki.issue_operator("ocsp-down.fr", ocsp=True)
    empty = tmp_path / "no-crl"
    empty.mkdir()

    def unreachable(url: str, request: bytes, timeout: float) -> bytes:
        raise OcspError(f"responder {url} unreachable: ConnectError")

    store = TrustStore.load(pki.tls_settings(crl_dir=empty, ocsp=True), fetch=unreachable)
    found = refusal(lambda: store.verify(credential.certificate, "client"))
    assert found.reason == "revocation-unknown"
    assert "unreachable: ConnectError" in found.text and "no CRL of" in found.text


def test_ocsp_unreachable_falls_back_to_a_current_crl(pki: SessionPki) -> None:
    credential = pki.issue_operator("ocsp-down2.fr", ocsp=True)

    def unreachable(url: str, request: bytes, timeout: float) -> bytes:
        raise OcspError("down")

    store = TrustStore.load(pki.tls_settings(ocsp=True), fetch=unreachable)
    peer = store.verify(credential.certificate, "client")
    assert (peer.revocation[0].status, peer.revocation[0].source) == ("good", "crl")


def test_wrong_dn_for_the_domain(pki: SessionPki) -> None:
    sender = pki.issue_operator("mx.hopital-a.fr")
    other = pki.issue_operator("mx.hopital-b.fr")
    whitelist = parse_whitelist(
        pki.whitelist_xml({"hopital-a.mssante.fr": [sender], "hopital-b.mssante.fr": [other]})
    )
    peer = pki.trust_store().verify(sender.certificate, "client")
    require_listed(whitelist, peer.identity, "hopital-a.mssante.fr")
    require_listed(whitelist, sender.certificate.subject, "HOPITAL-A.mssante.fr")
    found = refusal(lambda: require_listed(whitelist, peer.identity, "hopital-b.mssante.fr"))
    assert found.reason == "dn-not-whitelisted"
    assert found.text == (
        f"{sender.dn} may not send for hopital-b.mssante.fr (listed DNs: {other.dn})"
    )
    found = refusal(lambda: require_listed(whitelist, peer.identity, "inconnu.mssante.fr"))
    assert found.text.endswith("(the domain is not in the list)")


def test_trust_files_are_reread_when_they_change(pki: SessionPki, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(foreign_pki().pki.paths.trust_anchors.read_bytes())
    store = TrustStore.load(pki.tls_settings(trust_anchors=anchors))
    assert refusal(lambda: store.verify(pki.operator.certificate, "client")).reason == "unknown-ca"
    anchors.write_bytes(pki.pki.paths.trust_anchors.read_bytes() + b"\n")
    store.verify(pki.operator.certificate, "client")


def test_missing_anchors_are_a_trust_error(pki: SessionPki, tmp_path: Path) -> None:
    with pytest.raises(TrustError, match="no such file"):
        TrustStore.load(pki.tls_settings(trust_anchors=tmp_path / "none.pem"))
    (tmp_path / "garbage.pem").write_text("garbage")
    with pytest.raises(TrustError, match="not PEM certificates"):
        TrustStore.load(pki.tls_settings(trust_anchors=tmp_path / "garbage.pem"))
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(TrustError, match="no trust anchor"):
        TrustStore.load(pki.tls_settings(trust_anchors=tmp_path / "empty.pem"))


async def test_verify_async_runs_off_the_event_loop(pki: SessionPki) -> None:
    peer = await pki.trust_store().verify_async(pki.operator.der, "client")
    assert peer.identity.common_name == "localhost"


def test_every_reason_has_a_public_text_without_detail() -> None:
    for reason in REASONS:
        text = CertificateRefused(reason, "CN=secret,O=internal").public_text
        assert text and "CN=" not in text
    assert MAX_CHAIN_DEPTH >= 3  # root → intermediate → leaf
