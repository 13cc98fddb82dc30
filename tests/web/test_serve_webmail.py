"""The demo as a user runs it: `pli init --demo`, `pli serve` (real processes), the notification
of the demo's messages in the dev outbox, log in to the webmail with the code `pli outbox show`
prints, read, reply."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
from plitest.process import PliProcess, run_pli

from pli.mailbox.notify.texts import NOTIFICATION_SUBJECT

PORTS_AT_ZERO = {
    f"PLI_LISTENERS__{name}__PORT": "0"
    for name in (
        "ADMIN",
        "DOCSTORE",
        "MTA",
        "SUBMISSION",
        "SUBMISSIONS",
        "IMAP",
        "IMAPS",
        "WEBMAIL",
    )
}


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_demo_login_with_the_code_pli_outbox_show_prints(tmp_path: Path) -> None:
    assert run_pli("init", "--dir", str(tmp_path), "--demo").returncode == 0
    config = str(tmp_path / "pli.toml")
    server = PliProcess(["serve", "-c", config], env=PORTS_AT_ZERO)
    try:
        host, port = server.listening()["webmail"]
        server.wait_for("notification-sent")  # the demo's two messages, announced once
        shown = run_pli("outbox", "show", "-c", config)
        assert f"Objet : {NOTIFICATION_SUBJECT}" in shown.stdout
        assert "paul.lefebvre@example.org" in shown.stdout
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
            page = client.get("/connexion")
            answer = client.post(
                "/connexion",
                data={
                    "jeton": form_value(page.text, "jeton"),
                    "identifiant": "180017512345660",
                    "mot_de_passe": "demo-password-1234",
                },
            )
            assert answer.headers["location"] == "/connexion/code"
            printed = run_pli("outbox", "show", "-c", config, "--last", "1").stdout
            code = re.search(r"code de connexion est : (\d{6})", printed)
            assert code, printed
            page = client.get("/connexion/code")
            answer = client.post(
                "/connexion/code",
                data={"csrf": form_value(page.text, "csrf"), "code": code.group(1)},
            )
            assert answer.headers["location"] == "/messages"
            listing = client.get("/messages")
            assert "Dr Claire Martin" in listing.text
            assert "Comptes rendus (ne pas répondre)" in listing.text
            message = client.get("/messages/reception/1")
            answer = client.post(
                "/messages/reception/1/repondre",
                data={"csrf": form_value(message.text, "csrf"), "corps": "Merci, à bientôt."},
            )
            assert answer.headers["location"] == "/messages/reception/1?etat=envoye"
            assert "Re: Votre rendez-vous de contrôle" in client.get("/envoyes").text
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.stop()


def test_a_webmail_listener_with_starttls_is_refused_in_one_line(tmp_path: Path) -> None:
    assert run_pli("init", "--dir", str(tmp_path)).returncode == 0
    result = run_pli(
        "serve",
        "-c",
        str(tmp_path / "pli.toml"),
        env={**PORTS_AT_ZERO, "PLI_LISTENERS__WEBMAIL__TLS": "starttls"},
    )
    assert result.returncode == 1
    assert "pli: listener 'webmail': the webmail speaks HTTPS" in result.stderr


def test_outbox_show_on_an_empty_or_smtp_outbox(tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text('[server]\ndata_dir = "."\n')
    result = run_pli("outbox", "show", "-c", str(config))
    assert result.returncode == 0 and "the dev outbox is empty" in result.stdout
    config.write_text('[notifications]\nrelay = "smtps://relay.example.fr:465"\n')
    result = run_pli("outbox", "show", "-c", str(config))
    assert result.returncode == 1 and "not the dev outbox" in result.stderr
