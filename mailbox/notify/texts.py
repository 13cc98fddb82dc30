"""The fixed French e-mails sent to citizens' personal addresses.

A notification says only that a message is waiting: no health data, not even the sender's name
(mssante.md §4: the patient is told at the personal address and invited to read in the secure
space). It is the same text for the holder and for a guardian, so that it reveals nothing about
whose profile received the message. A login code e-mail carries the code and its lifetime.

Both are marked ``Auto-Submitted: auto-generated`` (RFC 3834 §5) so that auto-responders stay
quiet. This module builds bytes; it sends nothing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

NOTIFICATION_SUBJECT = "Nouveau message dans votre messagerie de santé"
NOTIFICATION_BODY = """\
Bonjour,

Un nouveau message vous attend dans votre messagerie de santé, ou dans celle d'un proche dont vous
gérez le profil.

Pour le lire, connectez-vous : {url}

Par sécurité, cet e-mail ne contient aucune information sur le message. Il est envoyé
automatiquement : merci de ne pas y répondre.
"""

CODE_SUBJECT = "Votre code de connexion à la messagerie de santé"
CODE_BODY = """\
Bonjour,

Votre code de connexion est : {code}

Il est valable {minutes} minutes et ne sert qu'une fois. Ne le communiquez à personne : aucun
service ne vous le demandera.

Si vous n'avez pas demandé à vous connecter, ignorez cet e-mail et, par précaution, changez votre
mot de passe.
"""


def _mail(sender: str, recipient: str, subject: str, body: str, domain: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5
    message.set_content(body, charset="utf-8")
    return message.as_bytes(policy=SMTP)


def notification_mail(sender: str, recipient: str, *, url: str, domain: str) -> bytes:
    return _mail(sender, recipient, NOTIFICATION_SUBJECT, NOTIFICATION_BODY.format(url=url), domain)


def code_mail(sender: str, recipient: str, *, code: str, lifetime: float, domain: str) -> bytes:
    minutes = max(1, round(lifetime / 60))
    return _mail(
        sender, recipient, CODE_SUBJECT, CODE_BODY.format(code=code, minutes=minutes), domain
    )
