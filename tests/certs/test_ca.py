"""The test PKI: its hierarchy, files and permissions, revocation and CRLs."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from plitest.pki import SessionPki

from pli.certs.ca import (
    CA_COMMON_NAMES,
    CA_ROLES,
    CRL_REPUBLISH_AFTER,
    CRL_VALIDITY,
    LEAF_VALIDITY,
    MAX_KEY_SIZE,
    MIN_KEY_SIZE,
    PkiError,
    PkiPaths,
    TestPki,
    generate_key,
    parse_serial,
    serial_hex,
)
from pli.certs.profiles import Holder, server_subject


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _paths(root: Path) -> PkiPaths:
    return PkiPaths(root / "ca", root / "crl", root / "trust/anchors.pem", root / "trust/inter.pem")


@pytest.fixture(scope="module")
def own_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A PKI of this module's own (its CRLs are changed here)."""
    pki = TestPki(_paths(tmp_path_factory.mktemp("pki")))
    pki.create(organisation="PLI TEST CA")
    return pki


def test_the_hierarchy_is_a_root_and_three_intermediates(own_pki: TestPki) -> None:
    root = own_pki.ca_certificate("root")
    assert root.subject == root.issuer
    assert root.subject.rfc4514_string() == (
        "CN=TEST PLI AC RACINE IGC-SANTE,OU=IGC-SANTE TEST,O=PLI TEST CA,C=FR"
    )
    for role in ("servers", "persons", "organisations"):
        certificate = own_pki.ca_certificate(role)
        assert certificate.issuer == root.subject
        certificate.verify_directly_issued_by(root)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert CA_COMMON_NAMES[role] in certificate.subject.rfc4514_string()
    assert own_pki.paths.trust_anchors.read_bytes().count(b"BEGIN CERTIFICATE") == 1
    assert own_pki.paths.intermediates.read_bytes().count(b"BEGIN CERTIFICATE") == 3


def test_keys_are_private_and_public_material_is_readable(own_pki: TestPki) -> None:
    ca_dir = own_pki.paths.ca_dir
    assert _mode(ca_dir) == 0o700
    for role in CA_ROLES:
        assert _mode(ca_dir / f"{role}.key") == 0o600
        assert _mode(ca_dir / f"{role}.crt") == 0o644
        assert _mode(own_pki.crl_path(role)) == 0o644
    assert _mode(ca_dir / "index.json") == 0o600
    assert _mode(own_pki.paths.trust_anchors) == 0o644
    assert not list(ca_dir.glob(".*.tmp"))  # no temporary file left behind


def test_a_second_create_is_refused(own_pki: TestPki) -> None:
    before = own_pki.paths.ca_dir.joinpath("root.key").read_bytes()
    with pytest.raises(PkiError, match="already exists"):
        TestPki(own_pki.paths).create()
    assert own_pki.paths.ca_dir.joinpath("root.key").read_bytes() == before


def test_issued_certificates_are_recorded_with_their_issuer(own_pki: TestPki) -> None:
    holder = Holder("X", "1990000001", "")
    issued = own_pki.issue("operator", server_subject("mx.x.fr", holder), hostnames=["mx.x.fr"])
    assert issued.certificate.issuer == own_pki.ca_certificate("servers").subject
    assert issued.chain == (own_pki.ca_certificate("servers"),)
    assert issued.chain_pem().count(b"BEGIN CERTIFICATE") == 2
    validity = issued.certificate.not_valid_after_utc - issued.certificate.not_valid_before_utc
    assert validity == LEAF_VALIDITY + dt.timedelta(hours=1)
    usages = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    record = own_pki.find(issued.certificate.serial_number)
    assert record is not None
    assert (record.kind, record.issuer, record.subject) == (
        "operator",
        "servers",
        "CN=mx.x.fr,OU=1990000001,O=X,C=FR",
    )
    assert not record.revoked


def _crl(own_pki: TestPki, role: str) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(own_pki.crl_path(role).read_bytes())


def test_revoking_republishes_the_issuers_crl_at_once(own_pki: TestPki) -> None:
    holder = Holder("X", "1990000001", "")
    issued = own_pki.issue("server", server_subject("mx.y.fr", holder), hostnames=["mx.y.fr"])
    number_before = _crl(own_pki, "servers").extensions.get_extension_for_class(x509.CRLNumber)
    record = own_pki.revoke(issued.certificate.serial_number, "key-compromise")
    assert record.revoked and record.reason == "key-compromise"
    crl = _crl(own_pki, "servers")
    assert crl.is_signature_valid(own_pki.ca_certificate("servers").public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(issued.certificate.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == number_before.value.crl_number + 1
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == CRL_VALIDITY + dt.timedelta(hours=1)
    # revoking again keeps the first date; the OCSP lookup agrees
    again = own_pki.revoke(issued.certificate.serial_number, "superseded")
    assert (again.revoked_at, again.reason) == (record.revoked_at, "key-compromise")
    status, _, flag = own_pki.revocation_state("servers", issued.certificate.serial_number)
    assert (status, flag) == ("revoked", x509.ReasonFlags.key_compromise)


def test_unspecified_reason_is_left_out_of_the_crl_entry(own_pki: TestPki) -> None:
    holder = Holder("X", "1990000001", "")
    issued = own_pki.issue("server", server_subject("mx.z.fr", holder), hostnames=["mx.z.fr"])
    own_pki.revoke(issued.certificate.serial_number)
    entry = _crl(own_pki, "servers").get_revoked_certificate_by_serial_number(
        issued.certificate.serial_number
    )
    assert entry is not None
    assert len(entry.extensions) == 0  # RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent


def test_revocation_errors_are_explained(own_pki: TestPki) -> None:
    with pytest.raises(PkiError, match="no certificate with serial ABC"):
        own_pki.revoke(0xABC)
    with pytest.raises(PkiError, match="unknown reason 'bored'"):
        own_pki.revoke(0xABC, "bored")
    with pytest.raises(PkiError, match="the root cannot be revoked"):
        own_pki.revoke(own_pki.ca_certificate("root").serial_number)


def test_an_intermediate_is_revoked_on_the_roots_crl(tmp_path: Path) -> None:
    pki = TestPki(_paths(tmp_path))
    pki.create()
    pki.revoke(pki.ca_certificate("persons").serial_number, "ca-compromise")
    crl = x509.load_der_x509_crl(pki.crl_path("root").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(pki.ca_certificate("persons").serial_number)


def test_crls_are_republished_only_when_half_way_to_next_update(own_pki: TestPki) -> None:
    assert own_pki.publish_crls(only_stale=True) == []
    later = dt.datetime.now(dt.UTC) + CRL_REPUBLISH_AFTER + dt.timedelta(hours=2)
    written = own_pki.publish_crls(now=later, only_stale=True)
    assert sorted(path.name for path in written) == sorted(f"{r}.crl" for r in CA_ROLES)
    own_pki.crl_path("persons").unlink()
    assert own_pki.publish_crls(only_stale=True) == [own_pki.crl_path("persons")]


def test_serials_are_read_as_pli_pki_list_prints_them() -> None:
    assert parse_serial(serial_hex(0x1F84FF32)) == 0x1F84FF32
    assert parse_serial("1f:84:ff:32") == 0x1F84FF32
    assert parse_serial("0x1F84FF32") == 0x1F84FF32
    with pytest.raises(PkiError, match="not a serial number"):
        parse_serial("zz")


def test_key_sizes_are_bounded() -> None:
    for size in (MIN_KEY_SIZE - 1, MAX_KEY_SIZE + 1):
        with pytest.raises(PkiError, match=f"key size {size}"):
            generate_key(size)


def test_an_empty_directory_is_not_a_pki(tmp_path: Path) -> None:
    pki = TestPki(_paths(tmp_path))
    assert not pki.exists()
    with pytest.raises(PkiError, match="run `pli pki init`"):
        pki.settings()
    with pytest.raises(PkiError, match="run `pli pki init`"):
        pki.ca_certificate("root")
    assert pki.records() == []


def test_validity_can_be_chosen_and_must_be_positive(pki: SessionPki) -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    credential = pki.issue_org(not_before=start, not_after=start + dt.timedelta(days=2))
    assert credential.certificate.not_valid_before_utc == start
    with pytest.raises(PkiError, match="end before it starts"):
        pki.issue_org(not_before=start, not_after=start)


def test_the_index_is_json_a_human_can_read(own_pki: TestPki) -> None:
    index = json.loads((own_pki.paths.ca_dir / "index.json").read_text())
    assert set(index) == {"version", "crl_numbers", "certificates"}
    kinds = {entry["kind"] for entry in index["certificates"]}
    assert {"root", "ca", "server", "operator"} <= kinds
