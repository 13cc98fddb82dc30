"""The activity history of a mailbox as the citizen reads it: audit records (``store.audit``) in
French, with who acted (the citizen, a guardian, a professional, the service) and never a
message's content (the audit log holds none: Ségur SC.MSS/CONF.17).

Each record becomes a :class:`HistoryLine`: when, who, what, and whether it succeeded. Actions
this module does not know are shown as "Autre opération" with their code, never hidden: the
history is a trace, not a selection.

Pure: reads records and names given by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pli.mailbox.store import Account, AuditRecord

#: Records shown per page.
HISTORY_PAGE = 50
SERVICE_NAME = "Le service de messagerie"

#: action → (French label, label when refused)
LABELS: dict[str, tuple[str, str]] = {
    "login": ("Connexion", "Tentative de connexion refusée"),
    "logout": ("Déconnexion", "Déconnexion"),
    "switch-profile": ("Ouverture de ce profil", "Ouverture de ce profil refusée"),
    "webmail-read": ("Lecture d'un message", "Lecture d'un message"),
    "webmail-attachment": ("Ouverture d'une pièce jointe", "Ouverture d'une pièce jointe"),
    "webmail-send": ("Envoi d'un message", "Envoi d'un message refusé"),
    "read-receipt": ("Accusé de lecture envoyé", "Accusé de lecture non envoyé"),
    "read-receipt-declined": ("Accusé de lecture refusé par vous", "Accusé de lecture refusé"),
    "deliver": ("Réception d'un message", "Message refusé"),
    "smtp-receive": ("Réception d'un message", "Message refusé"),
    "submit": ("Réception d'un message", "Message refusé"),
    "dsn": ("Avis de remise reçu", "Avis de remise"),
    "filing-request": (
        "Demande d'enregistrement d'une pièce jointe dans vos documents",
        "Demande d'enregistrement refusée",
    ),
    "filing-filed": ("Pièce jointe enregistrée dans vos documents", "Enregistrement"),
    "filing-failed": ("Échec de l'enregistrement d'une pièce jointe", "Échec de l'enregistrement"),
}
CODE_SENT = "Code de connexion envoyé par e-mail"
_IMAP = ("Accès par un logiciel de messagerie", "Accès par un logiciel de messagerie refusé")
_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


@dataclass(frozen=True, slots=True)
class HistoryLine:
    id: int
    at: datetime
    who: str
    what: str
    correspondent: str | None  # a professional's name, when the record names one
    ok: bool


def succeeded(result: str) -> bool:
    """Whether a record's result says the action succeeded (results are free text: ``ok: …``,
    ``refused: …``, ``delivered``, the policy's ``action=reject …``)."""
    lowered = result.lower().strip()
    failed = lowered.startswith(("refused", "failed", "error")) or any(
        marker in lowered for marker in ("action=reject", "action=defer")
    )
    return not failed


def correspondent_address(record: AuditRecord) -> str | None:
    """The professional a record names (``from <…>``, ``to <…>`` in its request)."""
    found = _ADDRESS.search(record.request)
    return found.group(1).lower() if found else None


def label(record: AuditRecord, ok: bool) -> str:
    if record.action == "login" and ok and "code sent" in record.result:
        return CODE_SENT
    if record.action.startswith("imap-"):
        return _IMAP[0] if ok else _IMAP[1]
    known = LABELS.get(record.action)
    if known is None:
        return f"Autre opération ({record.action})"
    return known[0] if ok else known[1]


def who(record: AuditRecord, viewer: Account, mailbox: Account, names: dict[str, str]) -> str:
    actor = record.actor.lower()
    if actor == viewer.address:
        return "Vous"
    if actor == mailbox.address:
        return mailbox.display_name or "Le titulaire du profil"
    if "@" in actor:
        return names.get(actor) or "Un correspondant"
    return SERVICE_NAME


def lines(
    records: list[AuditRecord], viewer: Account, mailbox: Account, names: dict[str, str]
) -> list[HistoryLine]:
    """``names``: address → display name for actors and correspondents (accounts, directory)."""
    result = []
    for record in records:
        ok = succeeded(record.result)
        correspondent = correspondent_address(record)
        result.append(
            HistoryLine(
                id=record.id,
                at=record.at,
                who=who(record, viewer, mailbox, names),
                what=label(record, ok),
                correspondent=names.get(correspondent) if correspondent else None,
                ok=ok,
            )
        )
    return result


def addresses_named(records: list[AuditRecord]) -> list[str]:
    """Every address the records name (actors and correspondents), for one name lookup."""
    found = {record.actor.lower() for record in records if "@" in record.actor}
    found |= {address for record in records if (address := correspondent_address(record))}
    return sorted(found)
