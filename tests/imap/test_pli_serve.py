"""Integration tier: `pli serve` runs the IMAP listeners of a configuration made by `pli init
--demo` (its PKI, its demo accounts): imaplib logs in over STARTTLS and over implicit TLS."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
from pathlib import Path

from plitest.process import PliProcess, run_pli

from pli.mailbox.store.demo import DEMO_PASSWORD

DOCTOR = "dr.martin@hopital-demo.mssante.fr"
PORTS_ZERO = {
    f"PLI_LISTENERS__{name}__PORT": "0"
    for name in ("ADMIN", "DOCSTORE", "MTA", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS")
}


def client_context(data_dir: Path) -> ssl.SSLContext:
    """Trusts the data directory's own test PKI (TLS 1.2: the MSSanté profile)."""
    context = ssl.create_default_context(cafile=str(data_dir / "pki/trust/anchors.pem"))
    context.check_hostname = False
    return context


async def test_pli_serve_answers_imap_on_both_listeners(tmp_path: Path) -> None:
    assert run_pli("init", "--demo", "--dir", str(tmp_path)).returncode == 0
    server = PliProcess(
        ["serve", "-c", str(tmp_path / "pli.toml")],
        env={**PORTS_ZERO, "PLI_AUTH__REQUIRE_OTP": "false"},  # this test only: no TOTP
    )
    try:
        where = await asyncio.to_thread(server.listening)
        context = client_context(tmp_path)

        def starttls() -> list[bytes]:
            host, port = where["imap"]
            with imaplib.IMAP4(host, port) as imap:
                assert "STARTTLS" in imap.capabilities and "LOGINDISABLED" in imap.capabilities
                imap.starttls(context)
                imap.login(DOCTOR, DEMO_PASSWORD)
                status, data = imap.select("INBOX")
                assert status == "OK"
                return data  # type: ignore[return-value]

        def implicit() -> str:
            host, port = where["imaps"]
            with imaplib.IMAP4_SSL(host, port, ssl_context=context) as imap:
                imap.login(DOCTOR, DEMO_PASSWORD)
                status, _ = imap.namespace()
                return status

        assert (await asyncio.to_thread(starttls))[0].isdigit()
        assert await asyncio.to_thread(implicit) == "OK"
    finally:
        server.stop()
