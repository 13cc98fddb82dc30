"""`pli pki …`, `pli whitelist …` and the trust material of `pli init`.

`pli init` and one lookup run as real processes; the other commands run in this process through
click's test runner (a `pli` process costs seconds of imports).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from plitest.pki import FileServer
from plitest.process import PLI, run_pli

from pli.certs.identity import IdentityKind, identity
from pli.certs.ocsp import build_request, check_response, fetch
from pli.certs.verify import TrustStore
from pli.config.loading import load_settings
from pli.mailgateway.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pli init --demo` once for the module (the trust material is what is tested)."""
    directory = tmp_path_factory.mktemp("pli") / "d"
    result = run_pli("init", "--dir", str(directory), "--demo")
    assert result.returncode == 0, result.stderr
    assert "created the test PKI in" in result.stdout
    assert "issued our server certificate for localhost" in result.stdout
    assert "issued our operator certificate for localhost" in result.stdout
    assert "wrote and imported a demo whitelist (2 domains" in result.stdout
    return directory


def _config(data_dir: Path) -> str:
    return str(data_dir / "pli.toml")


Pli = Callable[..., Result]
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def pli() -> Iterator[Pli]:
    """Run a `pli` command in this process; the commands configure structlog when nobody has,
    so the default configuration is restored afterwards."""
    configured = structlog.is_configured()
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False, env=env)

    yield run
    if not configured:
        structlog.reset_defaults()


def test_init_leaves_material_the_default_config_uses(data_dir: Path) -> None:
    settings = load_settings(data_dir / "pli.toml", environ={})
    tls = settings.tls
    for path in (tls.key, tls.client_key, tls.ca_dir / "root.key"):
        assert _mode(path) == 0o600
    assert _mode(tls.ca_dir) == 0o700 and _mode(tls.key.parent) == 0o700
    assert _mode(tls.certificate) == 0o644
    store = TrustStore.load(tls)
    server = x509.load_pem_x509_certificates(tls.certificate.read_bytes())
    assert len(server) == 2  # leaf, then its intermediate
    store.verify(server[0], "server", hostname="localhost")
    operator = x509.load_pem_x509_certificates(tls.client_certificate.read_bytes())[0]
    peer = store.verify(operator, "client")
    assert peer.identity.kind is IdentityKind.OPERATOR
    assert sorted(p.name for p in tls.crl_dir.iterdir()) == [
        "organisations.crl",
        "persons.crl",
        "root.crl",
        "servers.crl",
    ]


def test_init_again_regenerates_nothing(pli: Pli, data_dir: Path) -> None:
    settings = load_settings(data_dir / "pli.toml", environ={})
    watched = [settings.tls.certificate, settings.tls.key, settings.tls.ca_dir / "root.key"]
    before = [path.read_bytes() for path in watched]
    result = pli("init", "--dir", str(data_dir), "--demo")
    assert result.exit_code == 0, result.stderr
    assert "test PKI" not in result.stdout and "issued" not in result.stdout
    assert [path.read_bytes() for path in watched] == before


def test_the_demo_whitelist_lists_our_domains_with_our_dn(pli: Pli, data_dir: Path) -> None:
    dn = "CN=localhost,OU=1990000001,O=PLI DEMO OPERATEUR,ST=Paris (75),C=FR"
    shown = run_pli("whitelist", "show", "hopital-demo.mssante.fr", "-c", _config(data_dir))
    assert (shown.returncode, shown.stdout) == (0, dn + "\n")
    allowed = pli(
        "whitelist",
        "check",
        "--dn",
        "c=FR, st=Paris (75), o=PLI DEMO OPERATEUR, ou=1990000001, cn=localhost",
        "--domain",
        "patient.mssante.fr",
        "-c",
        _config(data_dir),
    )
    assert allowed.exit_code == 0 and allowed.stdout.startswith("allowed:")
    status = pli("whitelist", "status", "-c", _config(data_dir))
    assert status.exit_code == 0
    assert "entries     2 (2 domains)" in status.stdout and "refresh     never" in status.stdout


def test_issue_each_kind_list_and_revoke(pli: Pli, data_dir: Path, tmp_path: Path) -> None:
    config = _config(data_dir)
    out = tmp_path / "issued"
    server = pli(
        "pki",
        "issue",
        "server",
        "mx.hopital-demo.fr",
        "--san",
        "10.0.0.5",
        "--out",
        str(out),
        "-c",
        config,
    )
    assert server.exit_code == 0, server.stderr
    assert "subject     CN=mx.hopital-demo.fr,OU=1990000001,O=PLI DEMO OPERATEUR" in server.stdout
    person = pli(
        "pki",
        "issue",
        "person",
        "10003461033",
        "--surname",
        "Martin",
        "--given-name",
        "Claire",
        "--email",
        "claire.martin@hopital-demo.mssante.fr",
        "--days",
        "30",
        "--out",
        str(out),
        "-c",
        config,
    )
    assert person.exit_code == 0, person.stderr
    org = pli(
        "pki",
        "issue",
        "org",
        "18310021300028",
        "CH DEMO",
        "--service",
        "CR-AUTO",
        "--out",
        str(out),
        "-c",
        config,
    )
    assert org.exit_code == 0, org.stderr
    operator = pli(
        "pki",
        "issue",
        "operator",
        "mx.autre.fr",
        "--organisation",
        "AUTRE",
        "--structure-id",
        "990000002",
        "--state",
        "Nord (59)",
        "--out",
        str(out),
        "-c",
        config,
    )
    assert operator.exit_code == 0, operator.stderr
    files = sorted(path.name for path in out.iterdir())
    assert files == [
        "mx.autre.fr-operator.crt",
        "mx.autre.fr-operator.key",
        "mx.hopital-demo.fr-server.crt",
        "mx.hopital-demo.fr-server.key",
        "org-318310021300028-cr-auto.crt",
        "org-318310021300028-cr-auto.key",
        "person-810003461033.crt",
        "person-810003461033.key",
    ]
    assert all(_mode(out / f) == (0o600 if f.endswith(".key") else 0o644) for f in files)
    certificate = x509.load_pem_x509_certificates((out / "person-810003461033.crt").read_bytes())[0]
    found = identity(certificate)
    assert (found.kind, found.rpps, found.emails) == (
        IdentityKind.PERSON,
        "10003461033",
        ("claire.martin@hopital-demo.mssante.fr",),
    )
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days == 30
    org_identity = identity(
        x509.load_pem_x509_certificates((out / "org-318310021300028-cr-auto.crt").read_bytes())[0]
    )
    assert (org_identity.kind, org_identity.siret) == (IdentityKind.ORGANISATION, "18310021300028")

    again = pli("pki", "issue", "server", "mx.hopital-demo.fr", "--out", str(out), "-c", config)
    assert again.exit_code == 1 and "exists (--force to overwrite" in again.stderr

    serial = hex(certificate.serial_number)
    listed = pli("pki", "list", "-c", config)
    assert format(certificate.serial_number, "X") in listed.stdout
    revoked = pli("pki", "revoke", serial, "--reason", "key-compromise", "-c", config)
    assert revoked.exit_code == 0, revoked.stderr
    assert "(key-compromise)" in revoked.stdout and "persons.crl" in revoked.stdout
    settings = load_settings(data_dir / "pli.toml", environ={})
    crl = x509.load_der_x509_crl((settings.tls.crl_dir / "persons.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    listed = pli("pki", "list", "--json", "-c", config)
    assert '"reason": "key-compromise"' in listed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pki", "issue", "person", "123", "--surname", "A", "--given-name", "B"],
            "'123' is not an RPPS number",
        ),
        (["pki", "issue", "org", "12", "CH"], "'12' is not a FINESS"),
        (["pki", "issue", "server", "not a host"], "'not a host' is not a host name"),
        (["pki", "revoke", "zz"], "'zz' is not a serial number"),
        (["pki", "revoke", "ABCDEF"], "no certificate with serial ABCDEF"),
        (["whitelist", "show", "inconnu.mssante.fr"], "inconnu.mssante.fr is not in the whitelist"),
        (
            ["whitelist", "check", "--dn", "CN=x,C=FR", "--domain", "hopital-demo.mssante.fr"],
            "refused: CN=x,C=FR is not listed for hopital-demo.mssante.fr; listed: CN=localhost",
        ),
    ],
)
def test_refusals_exit_1_with_the_reason(
    pli: Pli, data_dir: Path, args: list[str], message: str
) -> None:
    result = pli(*args, "-c", _config(data_dir))
    assert result.exit_code == 1
    assert message in result.stderr


def test_a_bad_dn_is_a_usage_error(pli: Pli, data_dir: Path) -> None:
    result = pli("whitelist", "check", "--dn", "CN", "--domain", "x.fr", "-c", _config(data_dir))
    assert result.exit_code == 2 and "--dn: at offset 2" in result.stderr


def test_whitelist_import_of_the_real_list_from_a_url(
    pli: Pli, data_dir: Path, real_list: bytes, file_server: FileServer, tmp_path: Path
) -> None:
    directory = tmp_path / "w"
    assert pli("init", "--dir", str(directory)).exit_code == 0
    config = str(directory / "pli.toml")
    missing = pli("whitelist", "status", "-c", config)
    assert missing.exit_code == 1 and "run `pli whitelist import`" in missing.stderr
    file_server.routes["/listeblanchemssante.xml"] = (200, real_list)
    file_server.routes["/checksum"] = (200, hashlib.sha256(real_list).hexdigest().encode())
    file_server.routes["/truncated.xml"] = (200, real_list[:100_000])
    url = file_server.url("/listeblanchemssante.xml")
    wrong = pli("whitelist", "import", url, "--sha256", "0" * 64, "-c", config)
    assert wrong.exit_code == 1 and "checksum mismatch" in wrong.stderr
    done = pli(
        "whitelist", "import", url, "--sha256-file", file_server.url("/checksum"), "-c", config
    )
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("imported: 6553 entries, 5001 domains, generated 2025-03-13")
    assert "(verified)" in done.stdout and "skipped entry 6055" in done.stdout
    cut = pli("whitelist", "import", file_server.url("/truncated.xml"), "-c", config)
    assert cut.exit_code == 1
    assert "whitelist refused, the current one stays: " in cut.stderr and "truncated" in cut.stderr
    shown = pli("whitelist", "show", "patient.mssante.fr", "-c", config)
    assert shown.stdout.count("O=CNAM") == 2
    status = pli("whitelist", "status", "-c", config)
    assert "entries     6553 (5001 domains)" in status.stdout and "(verified)" in status.stdout
    again = pli("whitelist", "import", url, "-c", config)
    assert again.stdout.startswith("unchanged (already in place)")
    assert "(verified)" in again.stdout  # the same content, verified when it came


def test_pki_init_on_an_existing_directory_and_crl_publishing(pli: Pli, data_dir: Path) -> None:
    config = _config(data_dir)
    result = pli("pki", "init", "-c", config)
    assert result.exit_code == 0 and result.stdout.startswith("nothing to do")
    published = pli("pki", "crl", "-c", config)
    assert published.exit_code == 0 and published.stdout.count("published ") == 4


def test_a_bad_configuration_exits_2(pli: Pli, tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text("[tls]\nkey_size = 1024\n")
    result = pli("pki", "init", "-c", str(config))
    assert result.exit_code == 2 and "tls.key_size = 1024" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_ocsp_responder_command_answers_until_interrupted(
    data_dir: Path, stop: signal.Signals
) -> None:
    settings = load_settings(data_dir / "pli.toml", environ={})
    operator = x509.load_pem_x509_certificates(settings.tls.client_certificate.read_bytes())
    responder = subprocess.Popen(
        [*PLI, "pki", "ocsp", "serve", "--port", "0", "-c", _config(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert responder.stdout is not None
        line = responder.stdout.readline()
        assert line.startswith("OCSP responder on http://127.0.0.1:"), responder.stderr
        url = line.split(" on ", 1)[1].strip()
        leaf, issuer = operator
        answer = check_response(
            fetch(url, build_request(leaf, issuer), timeout=10), leaf, issuer, now=NOW
        )
        assert answer.status == "good"
        responder.send_signal(stop)
        try:
            code = responder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            responder.kill()
            pytest.fail(f"no exit 30 s after {stop.name}: {responder.communicate()[1][-2000:]}")
        assert code == 0
    finally:
        if responder.poll() is None:
            responder.kill()
            responder.wait()


def test_issued_keys_have_the_configured_size(pli: Pli, data_dir: Path, tmp_path: Path) -> None:
    result = pli(
        "pki", "issue", "org", "990000003", "CH TAILLE", "--out", str(tmp_path),
        "-c", _config(data_dir), env={"PLI_TLS__KEY_SIZE": "3072"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    key = serialization.load_pem_private_key(
        (tmp_path / "org-1990000003-ch-taille.key").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
