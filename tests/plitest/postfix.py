"""A Postfix instance (Debian's postfix) playing another MSSanté operator, for integration tests.

It has its own configuration, queue and data directories in a temporary directory, listens on
127.0.0.1 (a free high port), and:

- relays mail for pli's domains to pli's inbound MTA over STARTTLS, presenting its operator
  client certificate (``smtp_tls_cert_file``): the path of mail from another operator;
- receives mail for its own domain (``clinique-demo.mssante.fr``) into virtual maildirs, over
  STARTTLS with its server certificate, asking for the client's certificate and writing what it
  saw in its Received: header (``smtpd_tls_received_header``): the path of pli's outbound mail.

Postfix logs to its standard output (``maillog_file = /dev/stdout``); tests wait on log lines
(:meth:`PostfixInstance.wait_for`), never on a clock. The instance is stopped by its master's
PID. Needs root (Postfix's master starts as root and runs its daemons as ``postfix``).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plitest.pki import Credential, SessionPki

POSTFIX = "/usr/sbin/postfix"
MAIL_OWNER = "postfix"
_LOG_WAIT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostfixInstance:
    root: Path
    port: int
    domain: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = _LOG_WAIT) -> re.Match[str]:
        """The next log line matching ``pattern`` (a regular expression); fails if Postfix ends
        or the time runs out."""
        compiled = re.compile(pattern)
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"Postfix never logged {pattern!r}:\n{self.log}") from None
            if line is None:
                raise AssertionError(f"Postfix ended before {pattern!r}:\n{self.log}")
            match = compiled.search(line)
            if match:
                return match

    @property
    def log(self) -> str:
        return "".join(self.lines[-60:])

    def maildir(self, user: str) -> list[bytes]:
        """The messages delivered to ``user``'s virtual maildir, oldest first."""
        directory = self.root / "mail" / user / "new"
        if not directory.is_dir():
            return []
        return [path.read_bytes() for path in sorted(directory.iterdir())]

    @property
    def master_pid(self) -> int | None:
        """The master daemon's PID (``start-fg`` runs it as a child of postfix-script)."""
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the master by its PID (it stops its daemons), then postfix-script ends."""
        pid = self.master_pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


def _copy_credential(credential: Credential, directory: Path, name: str) -> tuple[Path, Path]:
    certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
    shutil.copyfile(credential.certificate_path, certificate)
    shutil.copyfile(credential.key_path, key)
    key.chmod(0o600)
    return certificate, key


@contextlib.contextmanager
def postfix_operator(
    pki: SessionPki,
    *,
    domain: str,
    client: Credential,
    server: Credential,
    relay_domains: Sequence[str],
    pli_port: int,
    users: Sequence[str] = ("dr.bernard",),
) -> Iterator[PostfixInstance]:
    """A running Postfix for ``domain`` (see the module docstring); ``relay_domains`` go to pli's
    inbound MTA on 127.0.0.1:``pli_port``."""
    root = Path(tempfile.mkdtemp(prefix="pli-postfix-", dir="/tmp"))
    root.chmod(0o755)  # the daemons run as postfix and must reach their queue and data
    try:
        etc, data, mail, tls = root / "etc", root / "data", root / "mail", root / "tls"
        for directory in (etc, root / "queue", data, mail, tls):
            directory.mkdir()
        owner = pwd.getpwnam(MAIL_OWNER)
        group = grp.getgrnam(MAIL_OWNER)
        for directory in (data, mail):
            os.chown(directory, owner.pw_uid, group.gr_gid)
        client_certificate, client_key = _copy_credential(client, tls, "client")
        server_certificate, server_key = _copy_credential(server, tls, "server")
        anchors = tls / "anchors.pem"
        anchors.write_bytes(
            pki.pki.paths.trust_anchors.read_bytes() + pki.pki.paths.intermediates.read_bytes()
        )
        shutil.copyfile("/etc/postfix/master.cf", etc / "master.cf")
        shutil.copyfile("/etc/postfix/dynamicmaps.cf", etc / "dynamicmaps.cf")
        port = free_port()
        mailboxes = ", ".join(f"{user}@{domain}={user}/" for user in users)
        transports = ", ".join(
            f"{relayed}=smtp:[127.0.0.1]:{pli_port}" for relayed in relay_domains
        )
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(root / "queue"),
            "data_directory": str(data),
            "mail_owner": MAIL_OWNER,
            "setgid_group": "postdrop",
            "myhostname": f"mx.{domain}",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "maillog_file": "/dev/stdout",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relay_domains": ", ".join(relay_domains),
            "transport_maps": f"inline:{{ {transports} }}" if relay_domains else "",
            "virtual_mailbox_domains": domain,
            "virtual_mailbox_base": str(mail),
            "virtual_mailbox_maps": f"inline:{{ {mailboxes} }}",
            "virtual_uid_maps": f"static:{owner.pw_uid}",
            "virtual_gid_maps": f"static:{group.gr_gid}",
            # As another MSSanté operator: STARTTLS both ways, certificates both ways.
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_cert_file": str(client_certificate),
            "smtp_tls_key_file": str(client_key),
            "smtp_tls_CAfile": str(anchors),
            "smtp_tls_mandatory_protocols": ">=TLSv1.2",
            "smtp_tls_loglevel": "1",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": str(server_certificate),
            "smtpd_tls_key_file": str(server_key),
            "smtpd_tls_CAfile": str(anchors),
            "smtpd_tls_ask_ccert": "yes",
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_loglevel": "1",
            "minimal_backoff_time": "1s",
            "queue_run_delay": "1s",
        }
        (etc / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        subprocess.run(
            ["postconf", "-c", str(etc), "-F", "*/*/chroot = n"], check=True, capture_output=True
        )
        master = (etc / "master.cf").read_text()
        master = re.sub(r"(?m)^smtp\s+inet\s.*$", f"127.0.0.1:{port} inet n - n - - smtpd", master)
        (etc / "master.cf").write_text(master)
        process = subprocess.Popen(
            [POSTFIX, "-c", str(etc), "start-fg"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        instance = PostfixInstance(root, port, domain, process)
        threading.Thread(target=instance._read, daemon=True).start()
        try:
            instance.wait_for(r"postfix/master\[\d+\]: daemon started")
            yield instance
        finally:
            instance.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
