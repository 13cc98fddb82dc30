"""The typed schema of pli's configuration file.

One TOML file, one table per section below; every key has a default, a unit where it has one, and a
description (``pli config reference`` prints them all, docs/configuration.md is generated from it).
Unknown keys are errors. Relative paths are relative to ``server.data_dir``, itself relative to the
directory of the configuration file.

This module imports nothing else of pli.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .units import Duration, Size

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain(value: str) -> str:
    lowered = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(lowered):
        raise ValueError("expected a domain name such as 'ch-exemple.mssante.fr'")
    return lowered


Domain = Annotated[str, AfterValidator(_domain)]
Port = Annotated[int, Field(ge=0, le=65535)]


class Section(BaseModel):
    """A configuration table: unknown keys are refused, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


Protocol = Literal["smtp", "submission", "imap", "webmail", "admin", "docstore"]
TlsMode = Literal["none", "starttls", "implicit"]


class Listener(Section):
    protocol: Protocol = Field(
        description="What is served: smtp (inbound MTA for other operators), submission, imap, "
        "webmail, admin (health, metrics, admin API) or docstore (the reference document store)."
    )
    address: str = Field("127.0.0.1", description="Address to bind (IPv4 or IPv6 literal).")
    port: Port = Field(description="TCP port; 0 picks a free port (tests).")
    tls: TlsMode = Field(
        "none",
        description="none, starttls (plain, upgraded by STARTTLS) or implicit (TLS from the "
        "first byte: 465, 993, HTTPS).",
    )
    enabled: bool = Field(True, description="Start this listener with `pli serve`.")
    processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes serving the listener: pli serve accepts and hands connections "
        "round-robin to the others (SMTP throughput).",
    )


def default_listeners() -> dict[str, Listener]:
    """The listeners a fresh configuration has; a file's ``[listeners.NAME]`` table overrides the
    listener of that name key by key, or adds a new one."""
    return {
        "admin": Listener(protocol="admin", port=9180),
        "docstore": Listener(protocol="docstore", port=8180),
        # SMTP on non-privileged ports for development; production uses 25 (inbound MTA),
        # 587 (submission, STARTTLS) and 465 (submission, implicit TLS): docs/smtp.md.
        "mta": Listener(protocol="smtp", port=2525, tls="starttls"),
        "submission": Listener(protocol="submission", port=5587, tls="starttls"),
        "submissions": Listener(protocol="submission", port=5465, tls="implicit"),
        # IMAP likewise: production uses 143 (STARTTLS) and 993 (implicit TLS): docs/imap.md.
        "imap": Listener(protocol="imap", port=1143, tls="starttls"),
        "imaps": Listener(protocol="imap", port=1993, tls="implicit"),
    }


class ServerSection(Section):
    hostname: str = Field(
        "localhost", description="Name of this host in SMTP greetings, Received and Message-ID."
    )
    data_dir: Path = Field(
        Path(),
        description="Directory of the database, message files, certificates and outboxes; "
        "relative to the configuration file's directory.",
    )
    log_format: Literal["console", "json"] = Field(
        "console", description="console (for humans) or json (one object per line, for machines)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level written to the log."
    )
    shutdown_grace: Duration = Field(
        30.0,
        description="On SIGTERM/SIGINT, how long in-flight transactions may take to finish "
        "before connections are closed (seconds).",
    )


class DatabaseSection(Section):
    url: str = Field(
        "",
        description="SQLAlchemy URL. Empty: the SQLite file pli.sqlite3 in data_dir. "
        "postgresql://user@host/db is accepted (driven by asyncpg).",
    )
    busy_timeout: Duration = Field(
        10.0, description="SQLite: how long a writer waits for the write lock (seconds)."
    )
    pool_size: int = Field(
        20,
        ge=1,
        le=200,
        description="PostgreSQL: connections kept in each process's pool (as many again may "
        "be opened for a moment under load); at least the concurrent SMTP sessions expected.",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite: full fsyncs the log at every commit (an acknowledged message "
        "survives power loss); normal survives a killed process but may lose the last commits "
        "on power loss.",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if url and not url.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("expected empty (SQLite file), sqlite:///PATH or postgresql://…")
        return url


class StorageSection(Section):
    messages_dir: Path = Field(
        Path("messages"), description="Directory of message files (written once, never changed)."
    )
    orphan_grace: Duration = Field(
        3600.0,
        description="A message file no message refers to is removed by the sweep only once it "
        "is older than this (seconds): a delivery in progress is never swept.",
    )
    sweep_interval: Duration = Field(
        3600.0,
        description="How often `pli serve` removes unreferenced message files and purges audit "
        "records past their retention (seconds; 0: never).",
    )


class DomainsSection(Section):
    professional: list[Domain] = Field(
        default_factory=list,
        description="Professional MSSanté domains hosted here (mailboxes PER, ORG, APP).",
    )
    professional_enabled: bool = Field(
        True, description="Serve the professional role (operator for health professionals)."
    )
    citizen: Domain = Field(
        "patient.mssante.fr", description="The citizen domain: mailboxes <INS>@this domain."
    )
    citizen_enabled: bool = Field(
        True, description="Serve the citizen role (Mon espace santé mailboxes)."
    )

    @model_validator(mode="after")
    def _citizen_domain_is_not_professional(self) -> DomainsSection:
        if self.citizen in self.professional:
            raise ValueError(
                f"{self.citizen!r} cannot be both the citizen and a professional domain"
            )
        return self


class TlsSection(Section):
    profile: Literal["mssante", "mssante+tls13"] = Field(
        "mssante",
        description="mssante: TLS 1.2 only with the four ECDHE-RSA suites of Référentiel #2 "
        "ECO.1.1.2-3; mssante+tls13: the same suites for TLS 1.2, and TLS 1.3 allowed.",
    )
    certificate: Path = Field(
        Path("pki/server/server.crt"),
        description="Our server certificate chain (PEM: leaf then intermediates).",
    )
    key: Path = Field(Path("pki/server/server.key"), description="Its private key (PEM).")
    client_certificate: Path = Field(
        Path("pki/server/operator.crt"),
        description="Our operator certificate, presented as client certificate to other operators.",
    )
    client_key: Path = Field(Path("pki/server/operator.key"), description="Its private key (PEM).")
    trust_anchors: Path = Field(
        Path("pki/trust/anchors.pem"),
        description="Root certificates trusted for peers and clients (IGC Santé roots, PEM).",
    )
    intermediates: Path = Field(
        Path("pki/trust/intermediates.pem"),
        description="Intermediate CA certificates used to complete peers' chains (PEM).",
    )
    crl_dir: Path = Field(
        Path("pki/crl"), description="Directory of CRL files (DER or PEM), one per issuing CA."
    )
    ca_dir: Path = Field(
        Path("pki/ca"),
        description="The test PKI's CA keys and state (`pli pki`, `pli init`); mode 0700.",
    )
    key_size: int = Field(
        2048, ge=2048, le=8192, description="RSA key size of keys issued by `pli pki` (bits)."
    )
    crl_download: bool = Field(
        True,
        description="Download a missing or stale CRL from the distribution points a "
        "certificate names (stored in crl_dir).",
    )
    crl_timeout: Duration = Field(10.0, description="CRL download timeout (seconds).")
    ocsp: bool = Field(
        False, description="Ask the OCSP responder named in a certificate's AIA extension."
    )
    ocsp_timeout: Duration = Field(5.0, description="OCSP request timeout (seconds).")
    revocation_failure: Literal["hard", "soft"] = Field(
        "hard",
        description="When revocation cannot be checked (CRL stale or missing, OCSP unreachable): "
        "hard refuses the peer, soft accepts it; both are logged.",
    )


class WhitelistSection(Section):
    source: str = Field(
        "https://espacedeconfiance.mssante.fr/listeblanchemssante.xml",
        description="Where `pli whitelist import` and the scheduled refresh read ANS's list "
        "(URL or file path).",
    )
    sha256_source: str = Field(
        "",
        description="URL or file of the list's SHA-256 checksum; empty: no checksum is fetched "
        "(an explicit --sha256 still applies).",
    )
    refresh_interval: Duration = Field(
        86400.0, description="How often the list is refreshed while serving (seconds; 0: never)."
    )
    enforce: bool = Field(
        True,
        description="Refuse inbound mail whose MAIL FROM domain is not listed for the peer's "
        "certificate DN.",
    )
    path: Path = Field(
        Path("whitelist/listeblanchemssante.xml"),
        description="Where the last good list is kept (its metadata beside it, .json).",
    )
    fetch_timeout: Duration = Field(
        60.0, description="Time allowed to download the list or its checksum (seconds)."
    )
    max_size: Size = Field(
        64 * 1024 * 1024,
        description="Largest list accepted, in bytes (the 2025 list is 3.7 MB).",
    )


class LimitsSection(Section):
    message_size: Size = Field(
        25 * 1024 * 1024,
        description="Largest message accepted, in bytes (SMTP SIZE, IMAP APPEND, uploads).",
    )
    recipients: int = Field(
        500, ge=100, description="Recipients per message (RFC 5321 §4.5.3.1.8 requires ≥ 100)."
    )
    smtp_connections_per_peer: int = Field(
        20, ge=1, description="Concurrent SMTP connections from one IP address."
    )
    smtp_errors_before_disconnect: int = Field(
        10, ge=1, description="Failed SMTP commands before the connection is closed."
    )
    smtp_command_timeout: Duration = Field(
        300.0, description="Idle time waiting for an SMTP command (RFC 5321 §4.5.3.2.7: 5 min)."
    )
    smtp_data_timeout: Duration = Field(
        600.0, description="Time allowed to receive a message's data (seconds)."
    )
    smtp_connections: int = Field(
        1000, ge=1, description="Concurrent connections one SMTP listener process serves."
    )
    smtp_messages_per_connection: int = Field(
        10000, ge=1, description="Messages accepted on one SMTP connection before 421."
    )
    smtp_junk_commands: int = Field(
        100,
        ge=1,
        description="NOOP, RSET, VRFY, HELP and EHLO/HELO accepted on one SMTP connection "
        "before it is closed (as Postfix's smtpd_junk_command_limit).",
    )
    imap_line_length: Size = Field(
        65536,
        ge=8192,
        description="Longest IMAP command line outside literals, in bytes (RFC 7162 §4: at "
        "least 8192).",
    )
    imap_sessions_per_account: int = Field(
        20, ge=1, description="Concurrent IMAP sessions of one account."
    )
    imap_idle_timeout: Duration = Field(
        1800.0,
        description="Idle time before an IMAP session is logged out (RFC 9051 §5.4: ≥ 30 min).",
    )
    imap_commands_per_second: int = Field(
        200, ge=1, description="IMAP commands per second per session before it is slowed."
    )


class AuthSection(Section):
    oauth_issuer: str = Field(
        "", description="Issuer (iss) of accepted OAUTHBEARER tokens (Pro Santé Connect)."
    )
    oauth_audience: str = Field("", description="Audience (aud) the tokens must carry.")
    oauth_keys: Path = Field(
        Path("auth/oauth-issuer-keys.pem"),
        description="The issuer's public keys (PEM or a JWKS JSON file).",
    )
    oauth_subject_claim: str = Field(
        "preferred_username",
        description="Claim naming the authenticated person (Pro Santé Connect: the national "
        "identifier, 8 + RPPS).",
    )
    require_otp: bool = Field(
        True,
        description="Password logins need the one-time code appended (strong authentication, "
        "mssante.md §2). false: a password alone is accepted (development only).",
    )
    otp_lifetime: Duration = Field(300.0, description="Lifetime of a one-time code (seconds).")
    otp_digits: int = Field(6, ge=6, le=10, description="Digits in a one-time code.")
    failures_before_lockout: int = Field(
        5, ge=1, description="Failed logins of an account before it is locked."
    )
    lockout_duration: Duration = Field(900.0, description="How long a lockout lasts (seconds).")


class PolicySection(Section):
    pharmacy_rule: Literal["listed", "dispensation"] = Field(
        "dispensation",
        description="Policy P3: a citizen may write first to a pharmacy that is listed in the "
        "directory (listed), or only where a dispensation happened recently (dispensation).",
    )
    dispensation_window: Duration = Field(
        365 * 86400.0, description="How recent a dispensation must be for P3 (seconds; 365d)."
    )


class QueueSection(Section):
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0],
        description="Delays between delivery attempts; the last one repeats (seconds).",
    )
    delay_warning: Duration = Field(
        14400.0,
        description="Send a delay DSN after a message waited this long (seconds; 0: never).",
    )
    max_lifetime: Duration = Field(
        5 * 86400.0, description="Bounce what could not be delivered within this time (seconds)."
    )
    concurrency: int = Field(20, ge=1, description="Deliveries in progress at once.")
    connect_timeout: Duration = Field(30.0, description="Outbound SMTP connect timeout (seconds).")
    routes: dict[str, str] = Field(
        default_factory=dict,
        description="Static routes, domain → 'host:port', used instead of MX lookups "
        "(private setups, tests).",
    )
    directory: Path = Field(
        Path("queue"), description="Directory of queued message files (written once)."
    )
    poll_interval: Duration = Field(
        5.0,
        description="How often the queue runner looks for due deliveries queued by other "
        "processes (seconds; its own process wakes it at once).",
    )
    command_timeout: Duration = Field(
        300.0,
        description="Outbound SMTP: time allowed for each reply (RFC 5321 §4.5.3.2: 5 min; the "
        "reply to the end of DATA gets twice this).",
    )
    require_tls: bool = Field(
        True,
        description="Deliver only over STARTTLS with a verified, whitelisted server certificate "
        "(MSSanté); false only for private test setups.",
    )


class DkimSection(Section):
    enabled: bool = Field(True, description="Sign outgoing mail and verify incoming signatures.")
    selector: str = Field("pli", description="Selector of our signing key (DNS name part).")
    key: Path = Field(Path("dkim/private.pem"), description="Our signing key (PEM).")
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = Field(
        "rsa-sha256", description="Signing algorithm (RFC 6376, RFC 8463)."
    )
    dns_timeout: Duration = Field(
        5.0, description="Time allowed to fetch a signer's public key when verifying (seconds)."
    )


class SmtpSection(Section):
    group_commit_window: Duration = Field(
        0.002,
        description="How long the first delivery of a batch waits for others before one "
        "transaction commits them all (seconds; 0: commit each at once).",
    )
    group_commit_size: int = Field(
        64, ge=1, le=1000, description="Deliveries committed together at most."
    )


#: A bearer secret shorter than this is refused (128 bits of base64url text, OWASP ASVS 2.9).
DOCSTORE_TOKEN_MIN_LENGTH = 22
_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # PostgreSQL: 63-byte names


class DocstoreSection(Section):
    url: str = Field(
        "http://127.0.0.1:8180", description="Base URL of the document store's internal API."
    )
    token: str = Field(
        "",
        description="Bearer secret shared with the document store (service-to-service); at "
        f"least {DOCSTORE_TOKEN_MIN_LENGTH} characters. Empty: the store refuses to start.",
    )
    data_dir: Path = Field(
        Path("docstore"),
        description="Where the reference store keeps its database and files when served by pli.",
    )
    database_url: str = Field(
        "",
        description="The reference store's own database (never the mail store's). Empty: the "
        "SQLite file docstore.sqlite3 in docstore.data_dir; postgresql://user@host/db accepted.",
    )
    database_schema: str = Field(
        "",
        description="PostgreSQL: schema holding the store's tables (created if missing); empty: "
        "the server's search_path. Lets the store share a database with the mail store.",
    )
    max_document_size: Size = Field(
        25 * 1024 * 1024,
        description="Largest document filed, in bytes (25 MB, the size Mon espace santé bounces "
        "above); the request body may exceed it by the form fields' allowance only.",
    )
    page_size: int = Field(
        50, ge=1, le=500, description="Documents per page when a listing does not say."
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if token and len(token) < DOCSTORE_TOKEN_MIN_LENGTH:
            raise ValueError(f"expected at least {DOCSTORE_TOKEN_MIN_LENGTH} characters")
        return token

    @field_validator("database_url")
    @classmethod
    def _known_docstore_backend(cls, url: str) -> str:
        return DatabaseSection._known_backend(url)

    @field_validator("database_schema")
    @classmethod
    def _sql_identifier(cls, schema: str) -> str:
        if schema and not _SQL_IDENTIFIER.match(schema):
            raise ValueError("expected a lower-case SQL name such as 'docstore'")
        return schema


class NotificationsSection(Section):
    enabled: bool = Field(True, description="Tell citizens by e-mail that new mail arrived.")
    relay: str = Field(
        "dev-outbox",
        description="dev-outbox (write to data_dir/outbox, for development) or "
        "smtp://host:port / smtps://host:port (a relay).",
    )
    sender: str = Field("ne-pas-repondre@localhost", description="From: address of notifications.")
    interval: Duration = Field(
        3600.0, description="At most one notification per citizen per interval (seconds)."
    )
    outbox_dir: Path = Field(Path("outbox"), description="Directory of the dev outbox.")
    guardians: bool = Field(
        True,
        description="Also tell the guardians of a citizen (parents, caregivers: policy P9), at "
        "their own notification address; a child's profile often has none of its own.",
    )
    poll_interval: Duration = Field(
        5.0, description="How often new mail for citizens is looked for (seconds)."
    )
    relay_timeout: Duration = Field(
        30.0, description="Time allowed to hand one e-mail to the relay (seconds)."
    )

    @field_validator("relay")
    @classmethod
    def _known_relay(cls, relay: str) -> str:
        if relay != "dev-outbox" and not re.match(r"^smtps?://[^/?#\s]+/?$", relay):
            raise ValueError("expected dev-outbox, smtp://host:port or smtps://host:port")
        return relay


class WebmailSection(Section):
    public_url: str = Field(
        "http://127.0.0.1:8080",
        description="Address of the webmail as citizens reach it (notification e-mails link to "
        "it; a POST whose Origin differs is refused).",
    )
    secure_cookies: bool = Field(
        True,
        description="Session cookies carry Secure (sent over HTTPS only) and the __Host- prefix; "
        "false only for plain-HTTP development on 127.0.0.1.",
    )
    session_idle: Duration = Field(
        900.0, description="A session unused for this long is closed (seconds)."
    )
    session_lifetime: Duration = Field(
        43200.0, description="A session is closed this long after login, used or not (seconds)."
    )
    code_attempts: int = Field(
        3, ge=1, le=10, description="Wrong one-time codes accepted before the login restarts."
    )
    code_sends: int = Field(
        3, ge=1, le=10, description="One-time codes e-mailed for one login before it restarts."
    )
    read_receipts: Literal["always", "ask", "never"] = Field(
        "ask",
        description="Read receipts (MDN, RFC 8098) asked for by a message: always (sent when the "
        "message is first opened, unless the address differs from the Return-Path: then asked), "
        "ask (the citizen chooses), never.",
    )
    upload_size: Size = Field(
        10 * 1024 * 1024,
        description="Largest file attached to a reply, in bytes (the whole message stays "
        "under limits.message_size).",
    )
    page_size: int = Field(100, ge=10, le=500, description="Messages listed per page.")
    secret_file: Path = Field(
        Path("webmail/secret.key"),
        description="Key of the login forms' CSRF tokens and of one-time code digests; created "
        "(mode 0600) at first start.",
    )

    @field_validator("public_url")
    @classmethod
    def _web_origin(cls, url: str) -> str:
        if not re.match(r"^https?://[^/?#\s]+/?$", url):
            raise ValueError("expected an origin such as https://messagerie.example.fr")
        return url.rstrip("/")


class AuditSection(Section):
    retention: Duration = Field(
        183 * 86400.0,
        description="How long audit records are kept (seconds; 6 months, Ségur SC.MSS/CONF.18).",
    )


#: A filing rule's name: it names the rule in the document store (Pli-Actor-Id) and the audit.
_FILING_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: A media type or a ``type/*`` family (RFC 6838 §4.2 restricted names, lowercased).
_MEDIA_RANGE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/(?:[a-z0-9][a-z0-9!#$&^_.+-]{0,126}|\*)$"
)


class FilingRule(Section):
    """An automatic filing rule: which attachments of messages delivered to a citizen's INBOX
    are filed into the citizen's document store without a request (docs/filing.md)."""

    name: str = Field(
        description="The rule's name (lower-case letters, digits, '-'; at most 64): recorded as "
        "who filed the document."
    )
    match: Literal["ihe-xdm", "content-type"] = Field(
        description="ihe-xdm: every document of an IHE_XDM.zip attachment; content-type: "
        "attachments whose declared type is one of `types`."
    )
    types: list[str] = Field(
        default_factory=list,
        description="match = content-type: media types ('application/pdf') or families "
        "('image/*'); required there, refused otherwise.",
    )
    from_domains: list[Domain] = Field(
        default_factory=list,
        description="Only messages whose From: address is in one of these domains; empty: any.",
    )
    enabled: bool = Field(True, description="false keeps the rule written but unused.")

    @field_validator("name")
    @classmethod
    def _rule_name(cls, name: str) -> str:
        if not _FILING_RULE_NAME.match(name):
            raise ValueError("expected a name of lower-case letters, digits and '-' (≤ 64)")
        return name

    @field_validator("types")
    @classmethod
    def _media_ranges(cls, types: list[str]) -> list[str]:
        lowered = [value.strip().lower() for value in types]
        for value in lowered:
            if not _MEDIA_RANGE.match(value):
                raise ValueError(f"{value!r}: expected a media type such as 'application/pdf'")
        return lowered

    @model_validator(mode="after")
    def _types_only_for_content_type(self) -> FilingRule:
        if self.match == "content-type" and not self.types:
            raise ValueError('match = "content-type" needs types = ["application/pdf", …]')
        if self.match != "content-type" and self.types:
            raise ValueError(f'types is only for match = "content-type", not {self.match!r}')
        return self


class FilingSection(Section):
    enabled: bool = Field(
        True,
        description="Run the filing worker with `pli serve` (when the citizen role is served): "
        "it sends filing requests to the document store (docstore.url) and applies the rules.",
    )
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0],
        description="Delays between attempts while the document store is down or busy; the "
        "last one repeats, a request is never given up (seconds). A Retry-After wins.",
    )
    concurrency: int = Field(4, ge=1, le=64, description="Filing requests sent at once.")
    timeout: Duration = Field(
        60.0, description="Time allowed for one answer of the document store (seconds)."
    )
    lease: Duration = Field(
        300.0,
        description="How long a worker owns a request it sends (renewed per document); another "
        "process takes it over after that if the worker died (seconds).",
    )
    poll_interval: Duration = Field(
        5.0,
        description="How often the worker looks for due requests made by other processes "
        "(seconds; requests of its own process and the change feed wake it at once).",
    )
    scan_interval: Duration = Field(
        60.0,
        description="How often the rules look for new messages in every citizen INBOX, in case "
        "the change feed missed one (seconds).",
    )
    rules: list[FilingRule] = Field(
        default_factory=list,
        description="Automatic rules, [[filing.rules]] tables with keys name, match "
        '("ihe-xdm" | "content-type"), types, from_domains, enabled; they apply to messages '
        "delivered to a citizen's INBOX after the rules first ran (docs/filing.md).",
    )

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, schedule: list[float]) -> list[float]:
        if not schedule or any(delay <= 0 for delay in schedule):
            raise ValueError("expected at least one delay, each above 0")
        return schedule

    @model_validator(mode="after")
    def _consistent(self) -> FilingSection:
        if self.lease <= self.timeout:
            raise ValueError("filing.lease must be longer than filing.timeout")
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        return self


#: A bulk API bearer token is stored as the SHA-256 of its text: 64 hexadecimal digits.
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: An API client's name: it names the client in the audit and the campaign's origin.
_BULK_CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class BulkClient(Section):
    """An establishment's information system allowed to submit campaigns over the HTTP API
    (docs/bulk.md)."""

    name: str = Field(
        description="The client's name (lower-case letters, digits, '.', '_', '-'; ≤ 64): "
        "recorded as the campaigns' origin."
    )
    token_sha256: str = Field(
        description="SHA-256 (hexadecimal) of the client's bearer token; `pli bulk token NAME` "
        "makes a token and prints this line. The token itself is never stored."
    )
    mailboxes: list[str] = Field(
        description="The APP or ORG mailboxes its campaigns may be sent from (addresses)."
    )

    @field_validator("name")
    @classmethod
    def _client_name(cls, name: str) -> str:
        if not _BULK_CLIENT_NAME.match(name):
            raise ValueError("expected lower-case letters, digits, '.', '_' or '-' (≤ 64)")
        return name

    @field_validator("token_sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        lowered = value.strip().lower()
        if not _SHA256_HEX.match(lowered):
            raise ValueError("expected the SHA-256 of the token: 64 hexadecimal digits")
        return lowered

    @field_validator("mailboxes")
    @classmethod
    def _addresses(cls, mailboxes: list[str]) -> list[str]:
        lowered = [address.strip().lower() for address in mailboxes]
        if not lowered or any("@" not in address for address in lowered):
            raise ValueError("expected at least one mailbox address")
        return lowered


class BulkSection(Section):
    enabled: bool = Field(
        True,
        description="Run the campaign runner with `pli serve` (campaigns submitted over the "
        "HTTP API, and campaigns left unfinished by a stopped `pli bulk send`).",
    )
    rate: float = Field(
        20.0,
        gt=0,
        le=10000,
        description="Messages per second one campaign runner submits at most (token bucket).",
    )
    burst: int = Field(
        10, ge=1, le=10000, description="Messages the token bucket lets through at once."
    )
    concurrency: int = Field(
        8, ge=1, le=256, description="Campaign messages in the submission pipeline at once."
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="Rows whose state is written in one transaction (bounds how long the "
        "store's write lock is held, and how many rows are checked again after a crash).",
    )
    max_rows: int = Field(
        100_000, ge=1, description="Recipients (CSV rows) in one campaign at most."
    )
    max_csv_size: Size = Field(64 * 1024 * 1024, description="Largest recipients file, in bytes.")
    max_attachment_size: Size = Field(
        20 * 1024 * 1024,
        description="Largest attachment file, in bytes (the whole message also stays under "
        "limits.message_size).",
    )
    lease: Duration = Field(
        60.0,
        description="How long a runner owns a campaign without renewing its claim; after that "
        "another process may resume it (seconds).",
    )
    poll_interval: Duration = Field(
        5.0, description="How often `pli serve` looks for campaigns to run (seconds)."
    )
    directory: Path = Field(
        Path("bulk"),
        description="Where campaigns submitted over the HTTP API are kept (their definition, "
        "recipients and files).",
    )
    api_max_request_size: Size = Field(
        512 * 1024 * 1024,
        description="Largest campaign submission accepted by POST /bulk/campaigns, in bytes.",
    )
    clients: list[BulkClient] = Field(
        default_factory=list,
        description="[[bulk.clients]] tables (name, token_sha256, mailboxes): the information "
        "systems allowed to use the HTTP API on the admin listener. None: the API answers 401.",
    )

    @model_validator(mode="after")
    def _unique_clients(self) -> BulkSection:
        names = [client.name for client in self.clients]
        digests = [client.token_sha256 for client in self.clients]
        if len(set(names)) != len(names) or len(set(digests)) != len(digests):
            raise ValueError("bulk client names and tokens must be unique")
        return self


def async_database_url(url: str, default_sqlite_file: Path) -> str:
    """The SQLAlchemy async URL of a configured URL (its async driver added), or of the SQLite
    file when the URL is empty."""
    if not url:
        return f"sqlite+aiosqlite:///{default_sqlite_file}"
    for prefix, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


class Settings(Section):
    """The whole configuration. ``source`` is the file it came from (None: defaults only)."""

    server: ServerSection = Field(default_factory=ServerSection)
    listeners: dict[str, Listener] = Field(default_factory=default_listeners)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    domains: DomainsSection = Field(default_factory=DomainsSection)
    tls: TlsSection = Field(default_factory=TlsSection)
    whitelist: WhitelistSection = Field(default_factory=WhitelistSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    queue: QueueSection = Field(default_factory=QueueSection)
    dkim: DkimSection = Field(default_factory=DkimSection)
    smtp: SmtpSection = Field(default_factory=SmtpSection)
    docstore: DocstoreSection = Field(default_factory=DocstoreSection)
    filing: FilingSection = Field(default_factory=FilingSection)
    notifications: NotificationsSection = Field(default_factory=NotificationsSection)
    webmail: WebmailSection = Field(default_factory=WebmailSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    bulk: BulkSection = Field(default_factory=BulkSection)
    source: Path | None = Field(None, exclude=True, description="File the settings came from.")

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL: the configured one with its driver, or the SQLite file."""
        return async_database_url(self.database.url, self.server.data_dir / "pli.sqlite3")

    def enabled_listeners(self) -> dict[str, Listener]:
        return {name: lst for name, lst in self.listeners.items() if lst.enabled}
