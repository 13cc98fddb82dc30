"""`pli init`: a working data directory from nothing.

Writes ``pli.toml`` (refusing to overwrite one), then brings up what the configuration needs. The
steps are idempotent so that ``pli serve --dev`` can run them on every start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pli.certs.ca import PkiError
from pli.certs.provision import ensure_demo_whitelist, ensure_pki
from pli.config.loading import CONFIG_FILE_NAME, ConfigError, load_settings
from pli.config.schema import Settings
from pli.mailbox.store.demo import prepare_store

from .dkim import ensure_dkim_key

DEMO_PROFESSIONAL_DOMAIN = "hopital-demo.mssante.fr"

_TEMPLATE = """\
# pli configuration. Every key, its default and unit: docs/configuration.md
# (or `pli config reference`). Relative paths are relative to data_dir.

[server]
hostname = "{hostname}"
data_dir = "."
log_format = "console"

[domains]
professional = [{professional}]
citizen = "patient.mssante.fr"

[docstore]
# Shared secret between pli and the document store (service-to-service authentication).
token = "{docstore_token}"

[listeners.admin]
# Health (/health) and Prometheus metrics (/metrics).
address = "127.0.0.1"
port = 9180

[listeners.docstore]
# The reference health document store (its own database and files in docstore/); plain HTTP:
# keep it on a loopback or private address. `pli docstore serve` runs it alone.
address = "127.0.0.1"
port = 8180

# SMTP (docs/smtp.md). Production ports: 25 (inbound MTA from other MSSanté operators, mutual
# TLS), 587 (submission, STARTTLS) and 465 (submission, implicit TLS); bind 0.0.0.0 there.
[listeners.mta]
address = "127.0.0.1"
port = 2525

[listeners.submission]
address = "127.0.0.1"
port = 5587

[listeners.submissions]
address = "127.0.0.1"
port = 5465

# IMAP (docs/imap.md), TLS only. Production ports: 143 (STARTTLS) and 993 (implicit TLS).
[listeners.imap]
address = "127.0.0.1"
port = 1143

[listeners.imaps]
address = "127.0.0.1"
port = 1993

# The citizen webmail (docs/webmail.md). Here plain HTTP on the loopback for development;
# production: tls = "implicit" (HTTPS with the server certificate) or a TLS proxy in front, and
# secure_cookies = true below.
[listeners.webmail]
protocol = "webmail"
address = "127.0.0.1"
port = 8080

[webmail]
public_url = "http://127.0.0.1:8080"
secure_cookies = false

[notifications]
# New-mail notifications and login codes for citizens' personal addresses. dev-outbox: one file
# per e-mail in outbox/ (`pli outbox show` prints them); production: "smtps://relay:465".
relay = "dev-outbox"
sender = "ne-pas-repondre@{hostname}"
{whitelist}"""

_DEMO_WHITELIST = """
[whitelist]
# Development: the list `pli init --demo` wrote (our own domains, our operator certificate's DN),
# never refreshed from ANS. Remove this table to follow ANS's list (`pli whitelist import`).
source = "whitelist/demo-listeblanche.xml"
refresh_interval = 0
"""


def write_config(directory: Path, *, demo: bool, hostname: str = "localhost") -> Path:
    """Write a starter ``pli.toml`` (mode 0600: it holds secrets); refuse to overwrite one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE_NAME
    text = _TEMPLATE.format(
        hostname=hostname,
        professional=f'"{DEMO_PROFESSIONAL_DOMAIN}"' if demo else "",
        docstore_token=secrets.token_urlsafe(32),
        whitelist=_DEMO_WHITELIST if demo else "",
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def initialise(directory: Path, *, demo: bool) -> tuple[Settings, list[str]]:
    """Create (or complete) the data directory; returns the settings and what was done."""
    done: list[str] = []
    path = directory / CONFIG_FILE_NAME
    if not path.exists():
        write_config(directory, demo=demo)
        done.append(f"wrote {path}")
    settings = load_settings(path)
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    try:  # the trust space: test PKI, our certificates, CRLs; the demo's whitelist
        done += ensure_pki(settings)
        if demo:
            done += ensure_demo_whitelist(settings)
    except PkiError as error:
        raise ConfigError(f"{settings.tls.ca_dir}: {error}") from None
    done += ensure_dkim_key(settings)  # DKIM: our signing key (`pli dkim dns` to publish)
    done += prepare_store(settings, demo=demo)  # the mail store: migrations, demo accounts
    if any(lst.protocol == "webmail" for lst in settings.enabled_listeners().values()):
        done.append(
            f"webmail: {settings.webmail.public_url} "
            f"(login codes and notifications: pli outbox show -c {path})"
        )
    return settings, done
