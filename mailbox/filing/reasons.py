"""Why a filing failed, as stable codes, and what the citizen reads about it (in French).

Codes come from three places, kept as they are so that logs, the audit and the document store
agree: our own (below), the IHE_XDM reader's (``xdm-…``, ``mailbox/xdm/model.py``) and the
document store's problems (``content-type-mismatch``, ``document-too-large``, …,
docs/docstore.md). The citizen never sees an English detail or an exception: only
:func:`citizen_text`.

Pure data and functions.
"""

from __future__ import annotations

from enum import StrEnum


class FilingStatus(StrEnum):
    """What the citizen sees of a filing."""

    PENDING = "pending"  # waiting for (another) attempt
    FILED = "filed"  # in the citizen's documents
    FAILED = "failed"  # refused for good; ``reason`` says why


# Our own reasons.
SOURCE_GONE = "source-gone"  # the message file no longer exists (deleted before filing)
PART_NOT_FOUND = "part-not-found"  # the message has no such part (or it is a multipart)
ENCODING_UNSUPPORTED = "encoding-unsupported"  # a Content-Transfer-Encoding we cannot decode
NOTHING_TO_FILE = "xdm-nothing-to-file"  # every document of the package is for professionals
INVISIBLE_TO_PATIENT = "invisible-to-patient"  # a skipped document (policy P7)
STORE_REFUSED = "store-refused"  # the store refused with a reason we do not know
# The document store's reasons the client acts on.
DOCUMENT_DELETED = "document-deleted"
KEY_REUSED = "idempotency-key-reused"

_TEXTS = {
    SOURCE_GONE: "Le message a été supprimé avant que la pièce jointe soit classée.",
    PART_NOT_FOUND: "Cette pièce jointe est introuvable dans le message.",
    ENCODING_UNSUPPORTED: "Cette pièce jointe est encodée d'une façon qui ne permet pas de la "
    "classer.",
    NOTHING_TO_FILE: "Ce dossier ne contient aucun document à classer dans vos documents.",
    DOCUMENT_DELETED: "Ce document avait été supprimé de vos documents ; il n'est pas classé "
    "de nouveau automatiquement. Vous pouvez demander à le classer.",
    "content-type-mismatch": "Le contenu du fichier ne correspond pas à son type annoncé : il "
    "n'a pas été classé.",
    "archive-refused": "Les archives (fichiers compressés) ne peuvent pas être classées dans "
    "vos documents.",
    "active-content-refused": "Ce fichier contient du contenu actif (script) : il ne peut pas "
    "être classé.",
    "unsupported-type": "Ce type de fichier ne peut pas être classé dans vos documents.",
    "truncated-document": "Ce document est incomplet : il ne peut pas être classé.",
    "empty-document": "Ce document est vide : il n'a pas été classé.",
    "document-too-large": "Ce document dépasse la taille maximale acceptée par vos documents.",
    "request-too-large": "Ce document dépasse la taille maximale acceptée par vos documents.",
    "xdm-wrong-patient": "Le dossier médical joint concerne un autre patient : il n'a pas été "
    "classé.",
    "xdm-too-large": "Le dossier médical joint est trop volumineux pour être classé.",
}
_XDM_TEXT = (
    "Le dossier médical joint (IHE_XDM) est invalide ou incohérent : il n'a pas été classé. "
    "L'expéditeur peut vous le renvoyer."
)
_DEFAULT_TEXT = "Vos documents ont refusé ce fichier : il n'a pas été classé."


def failure_text(reason: str | None) -> str:
    """The French sentence shown to the citizen for a failed filing."""
    if reason in _TEXTS:
        return _TEXTS[reason]
    if reason is not None and reason.startswith("xdm-"):
        return _XDM_TEXT
    return _DEFAULT_TEXT


def citizen_text(status: FilingStatus, reason: str | None, filed: int, delayed: bool) -> str:
    """What the citizen reads about one filing: its state in a sentence (``delayed``: an
    attempt failed for a passing reason and another is planned)."""
    if status is FilingStatus.FILED:
        if filed > 1:
            return f"{filed} documents ont été classés dans vos documents."
        return "Classé dans vos documents."
    if status is FilingStatus.FAILED:
        text = failure_text(reason)
        if filed:
            return f"{text} ({filed} autre(s) document(s) du dossier ont été classés.)"
        return text
    if delayed:
        return (
            "En attente : vos documents sont momentanément indisponibles, le classement sera "
            "fait dès que possible."
        )
    return "Classement en cours dans vos documents."
