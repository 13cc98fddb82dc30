"""`pli pki …` and `pli whitelist …`: the operator's commands for the trust space.

Registered on the `pli` command by ``mailgateway/cli.py``. Each command reads the configuration
(``-c FILE``, else ``$PLI_CONFIG``, else ``./pli.toml``), prints what it did, and exits 0 on
success, 1 when the operation is refused (with the reason on stderr), 2 for a bad configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pli.config.command import EXIT_CONFIG, config_option, fail, load_or_exit
from pli.config.schema import Settings

from .ca import (
    BACKDATE,
    REVOCATION_REASONS,
    IssuedCertificate,
    PkiError,
    TestPki,
    generate_key,
    parse_serial,
    utcnow,
)
from .names import DnSyntaxError, dn_key
from .ocsp_server import OcspServer
from .profiles import (
    Holder,
    ProfileError,
    organisation_subject,
    person_national_id,
    person_subject,
    server_subject,
    structure_national_id,
)
from .provision import DEMO_HOLDER, ensure_pki, host_names, write_issued
from .whitelist import WhitelistError
from .whitelist_store import WhitelistStore, parse_checksum, read_source, resolve_source

F = TypeVar("F", bound=Callable[..., Any])
ISSUED_DIR = Path("pki/issued")


# -- pli pki -----------------------------------------------------------------------------------


@click.group("pki")
def pki_group() -> None:
    """The test PKI (IGC Santé-shaped): create it, issue, revoke, publish CRLs, answer OCSP."""


@pki_group.command("init")
@config_option
@click.option("--ocsp-url", default="", help="OCSP address put in issued certificates (AIA).")
def pki_init(config: Path | None, ocsp_url: str) -> None:
    """Create the test PKI, our server and operator certificates and the CRLs (what is present
    is kept)."""
    settings = load_or_exit(config)
    try:
        done = ensure_pki(settings, ocsp_url=ocsp_url)
    except PkiError as error:
        fail(str(error))
    for line in done or [f"nothing to do: the test PKI in {settings.tls.ca_dir} is complete"]:
        click.echo(line)


def _holder_options(function: F) -> F:
    for option in reversed(
        [
            click.option("--organisation", help="O: the organisation's name."),
            click.option("--structure-id", help="OU: FINESS (9), SIRET (14) or idNat_Struct."),
            click.option("--state", default=None, help='ST, e.g. "Paris (75)".'),
        ]
    ):
        function = option(function)
    return function


def _output_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--out",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Directory for the files (default: data_dir/pki/issued).",
            ),
            click.option("--name", default=None, help="File name stem (default from the kind)."),
            click.option("--days", type=click.IntRange(1, 3650), default=None, help="Validity."),
            click.option("--force", is_flag=True, help="Overwrite existing files."),
            config_option,
        ]
    ):
        function = option(function)
    return function


def _holder(organisation: str | None, structure_id: str | None, state: str | None) -> Holder:
    try:
        return Holder(
            organisation=organisation or DEMO_HOLDER.organisation,
            structure_id=structure_national_id(structure_id)
            if structure_id
            else DEMO_HOLDER.structure_id,
            state=DEMO_HOLDER.state if state is None else state,
        )
    except ProfileError as error:
        fail(str(error))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-") or "certificate"


def _issue(
    ctx: click.Context, kind: str, make: Callable[[TestPki, Any], IssuedCertificate], stem: str
) -> None:
    params = ctx.params
    settings = load_or_exit(params["config"])
    pki = TestPki.from_tls(settings.tls)
    directory = params["out"] or settings.server.data_dir / ISSUED_DIR
    name = params["name"] or stem
    certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
    if not params["force"] and (certificate.exists() or key.exists()):
        fail(f"{certificate} or {key} exists (--force to overwrite, --name to choose another)")
    try:
        issued = make(pki, {**params, "key": generate_key(settings.tls.key_size)})
    except (PkiError, ProfileError) as error:
        fail(str(error))
    write_issued(issued, certificate, key)
    pki.note_files(issued.certificate.serial_number, [certificate, key])
    click.echo(f"issued {kind} certificate {issued.record.serial}")
    click.echo(f"  subject     {issued.record.subject}")
    click.echo(f"  valid until {issued.record.not_after}")
    click.echo(f"  certificate {certificate} (leaf then intermediate)")
    click.echo(f"  key         {key} (mode 0600)")


def _issue_options(params: dict[str, Any]) -> dict[str, Any]:
    """The key (of ``tls.key_size`` bits, generated by ``_issue``) and the validity asked."""
    options: dict[str, Any] = {"key": params["key"]}
    if params["days"] is not None:
        start = utcnow() - BACKDATE
        options.update(not_before=start, not_after=start + dt.timedelta(days=params["days"]))
    return options


@pki_group.group("issue")
def pki_issue() -> None:
    """Issue a certificate: server, operator, person or org."""


def _server_like(kind: str) -> Callable[..., None]:
    @click.argument("hostname")
    @click.option("--san", multiple=True, help="Another DNS name or IP address (repeatable).")
    @_holder_options
    @_output_options
    @click.pass_context
    def command(ctx: click.Context, hostname: str, san: tuple[str, ...], **_: Any) -> None:
        holder = _holder(
            ctx.params["organisation"], ctx.params["structure_id"], ctx.params["state"]
        )

        def make(pki: TestPki, params: dict[str, Any]) -> IssuedCertificate:
            return pki.issue(
                kind,  # type: ignore[arg-type]
                server_subject(hostname, holder),
                hostnames=[*host_names(hostname), *san],
                **_issue_options(params),
            )

        _issue(ctx, kind, make, f"{_slug(hostname)}-{kind}")

    return command


pki_issue.command(
    "server", help="A TLS server certificate (serverAuth) for HOSTNAME, DN like the whitelist's."
)(_server_like("server"))
pki_issue.command(
    "operator",
    help="An operator (client) certificate (clientAuth) for HOSTNAME: what we present to peers.",
)(_server_like("operator"))


@pki_issue.command("person")
@click.argument("rpps")
@click.option("--surname", required=True, help="SN (written upper case).")
@click.option("--given-name", required=True, help="GN.")
@click.option("--title", default="", help="T: the profession.")
@click.option("--email", multiple=True, help="An e-mail address for the SAN (repeatable).")
@click.option("--organisation", default=None, help="O: the structure the person acts for.")
@click.option("--structure-id", default=None, help="OU: its FINESS, SIRET or idNat_Struct.")
@_output_options
@click.pass_context
def pki_issue_person(ctx: click.Context, rpps: str, **_: Any) -> None:
    """A person certificate (CPS-like, clientAuth) for RPPS (11 digits): CN=8<RPPS>, SN, GN."""
    params = ctx.params
    holder = None
    if params["structure_id"]:
        holder = _holder(params["organisation"], params["structure_id"], "")

    def make(pki: TestPki, params: dict[str, Any]) -> IssuedCertificate:
        subject = person_subject(
            rpps, params["surname"], params["given_name"], holder, params["title"]
        )
        return pki.issue("person", subject, emails=params["email"], **_issue_options(params))

    try:
        stem = f"person-{person_national_id(rpps)}"
    except ProfileError as error:
        fail(str(error))
    _issue(ctx, "person", make, stem)


@pki_issue.command("org")
@click.argument("identifier")
@click.argument("organisation_name", metavar="NAME")
@click.option("--service", default=None, help="CN: the service or application (default NAME).")
@click.option("--state", default="", help='ST, e.g. "Paris (75)".')
@click.option("--email", multiple=True, help="An e-mail address for the SAN (repeatable).")
@_output_options
@click.pass_context
def pki_issue_org(ctx: click.Context, identifier: str, organisation_name: str, **_: Any) -> None:
    """An organisation certificate (ORG AUTH_CLI-like, clientAuth, no SAN unless --email) for the
    structure IDENTIFIER (FINESS, SIRET or idNat_Struct) named NAME."""
    params = ctx.params
    holder = _holder(organisation_name, identifier, params["state"])
    service = params["service"] or organisation_name

    def make(pki: TestPki, params: dict[str, Any]) -> IssuedCertificate:
        subject = organisation_subject(service, holder)
        return pki.issue("org", subject, emails=params["email"], **_issue_options(params))

    _issue(ctx, "org", make, f"org-{holder.structure_id}-{_slug(service)}")


@pki_group.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    type=click.Choice(sorted(REVOCATION_REASONS)),
    default="unspecified",
    show_default=True,
)
@config_option
def pki_revoke(serial: str, reason: str, config: Path | None) -> None:
    """Revoke the certificate SERIAL (hexadecimal, as `pli pki list` shows) and re-publish its
    CA's CRL."""
    settings = load_or_exit(config)
    pki = TestPki.from_tls(settings.tls)
    try:
        record = pki.revoke(parse_serial(serial), reason)
    except PkiError as error:
        fail(str(error))
    click.echo(
        f"revoked {record.serial} ({record.reason}) at {record.revoked_at}: {record.subject}"
    )
    click.echo(f"published {pki.crl_path(record.issuer)}")


@pki_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate.")
def pki_list(config: Path | None, as_json: bool) -> None:
    """Every certificate the test PKI issued, with its state."""
    settings = load_or_exit(config)
    pki = TestPki.from_tls(settings.tls)
    if not pki.exists():
        fail(f"no test PKI in {settings.tls.ca_dir} (run `pli pki init`)")
    for record in pki.records():
        if as_json:
            click.echo(json.dumps(record.__dict__, ensure_ascii=False))
            continue
        state = (
            f"revoked {record.revoked_at[:10]} ({record.reason})" if record.revoked_at else "valid"
        )
        click.echo(
            f"{record.serial:>40}  {record.kind:<8}  until {record.not_after[:10]}  {state:<28}  "
            f"{record.subject}"
        )


@pki_group.command("crl")
@config_option
def pki_crl(config: Path | None) -> None:
    """Publish every CA's CRL now (new CRL numbers, nextUpdate in 30 days)."""
    settings = load_or_exit(config)
    try:
        written = TestPki.from_tls(settings.tls).publish_crls()
    except PkiError as error:
        fail(str(error))
    for path in written:
        click.echo(f"published {path}")


@pki_group.group("ocsp")
def pki_ocsp() -> None:
    """The test PKI's OCSP responder."""


@pki_ocsp.command("serve")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True)
def pki_ocsp_serve(config: Path | None, host: str, port: int) -> None:
    """Answer OCSP requests for the test PKI's certificates until Ctrl-C or SIGTERM."""
    settings = load_or_exit(config)
    pki = TestPki.from_tls(settings.tls)
    try:
        server = OcspServer(pki, host, port)
    except (PkiError, OSError) as error:
        fail(f"cannot start the responder: {error}")
    click.echo(f"OCSP responder on {server.url}")
    # Ctrl-C or SIGTERM stops it, even started from a script in the background, where the shell
    # leaves SIGINT ignored and Python then installs no KeyboardInterrupt handler of its own.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# -- pli whitelist -----------------------------------------------------------------------------


@click.group("whitelist")
def whitelist_group() -> None:
    """ANS's whitelist of MSSanté domains: import it, look it up."""


@whitelist_group.command("import")
@click.argument("source", required=False)
@click.option("--sha256", default=None, help="The expected SHA-256 of the file (hex).")
@click.option("--sha256-file", default=None, help="A file or URL holding the expected SHA-256.")
@click.option("--allow-older", is_flag=True, help="Accept a list generated before the current.")
@config_option
def whitelist_import(
    source: str | None,
    sha256: str | None,
    sha256_file: str | None,
    allow_older: bool,
    config: Path | None,
) -> None:
    """Import the list from SOURCE (a file or an http(s) URL; default: whitelist.source) after
    checking its checksum; a bad list never replaces the current one."""
    settings = load_or_exit(config)
    section = settings.whitelist
    if sha256 and sha256_file:
        fail("give --sha256 or --sha256-file, not both")
    if source is None:
        source = resolve_source(section.source, settings.server.data_dir)
        if not sha256 and not sha256_file and section.sha256_source:
            sha256_file = resolve_source(section.sha256_source, settings.server.data_dir)
    store = WhitelistStore.from_settings(section)
    try:
        if sha256_file:
            sha256 = parse_checksum(
                read_source(sha256_file, max_size=4096, timeout=section.fetch_timeout), sha256_file
            )
        result = store.import_from(source, sha256=sha256, allow_older=allow_older)
    except WhitelistError as error:
        fail(f"whitelist refused, the current one stays: {error}")
    metadata = result.metadata
    verb = "imported" if result.changed else "unchanged (already in place)"
    click.echo(
        f"{verb}: {metadata.entries} entries, {metadata.domains} domains, "
        f"generated {metadata.generated_at}"
    )
    click.echo(
        f"  sha256 {metadata.sha256} "
        f"({'verified' if metadata.checksum_verified else 'NOT verified: no checksum given'})"
    )
    for problem in metadata.skipped:
        click.echo(f"  skipped {problem}")


def _current(settings: Settings) -> tuple[WhitelistStore, Any]:
    store = WhitelistStore.from_settings(settings.whitelist)
    whitelist = store.current()
    if whitelist is None:
        fail(f"no whitelist in {settings.whitelist.path} (run `pli whitelist import`)")
    return store, whitelist


@whitelist_group.command("show")
@click.argument("domain")
@config_option
def whitelist_show(domain: str, config: Path | None) -> None:
    """The operator certificate DNs listed for DOMAIN (exit 1: not in the list)."""
    _, whitelist = _current(load_or_exit(config))
    dns = whitelist.dns_for(domain)
    if not dns:
        fail(f"{domain} is not in the whitelist")
    for dn in dns:
        click.echo(dn)


@whitelist_group.command("check")
@click.option("--dn", required=True, help="A certificate subject DN (any attribute order).")
@click.option("--domain", required=True, help="The sending or receiving domain.")
@config_option
def whitelist_check(dn: str, domain: str, config: Path | None) -> None:
    """May the operator whose certificate has DN send for DOMAIN? exit 0 yes, 1 no."""
    _, whitelist = _current(load_or_exit(config))
    try:
        key = dn_key(dn)
    except DnSyntaxError as error:
        fail(f"--dn: {error}", EXIT_CONFIG)
    if whitelist.allows(key, domain):
        click.echo(f"allowed: {dn} is listed for {domain}")
        return
    listed = whitelist.dns_for(domain)
    fail(
        f"refused: {dn} is not listed for {domain}"
        + (f"; listed: {'; '.join(listed)}" if listed else "; the domain is not in the list")
    )


@whitelist_group.command("status")
@config_option
def whitelist_status(config: Path | None) -> None:
    """Where the current list came from, its checksum, dates and size."""
    settings = load_or_exit(config)
    store = WhitelistStore.from_settings(settings.whitelist)
    metadata = store.metadata()
    if metadata is None:
        fail(f"no whitelist in {settings.whitelist.path} (run `pli whitelist import`)")
    click.echo(f"file        {store.path}")
    click.echo(f"source      {metadata.source}")
    verified = "verified" if metadata.checksum_verified else "not verified"
    click.echo(f"sha256      {metadata.sha256} ({verified})")
    click.echo(f"generated   {metadata.generated_at}")
    click.echo(f"imported    {metadata.imported_at}")
    click.echo(f"checked     {metadata.checked_at}")
    click.echo(f"entries     {metadata.entries} ({metadata.domains} domains)")
    for problem in metadata.skipped:
        click.echo(f"skipped     {problem}")
    interval = settings.whitelist.refresh_interval
    click.echo(f"refresh     {'every ' + format(interval, 'g') + ' s' if interval else 'never'}")
