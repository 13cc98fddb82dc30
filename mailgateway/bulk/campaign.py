"""A campaign ready to check or run: its definition, recipients, compiled templates and common
attachments read, its content hash and id computed.

The **campaign id** is the definition's ``id``, else ``c-`` and the first 20 hexadecimal digits
of the **content hash**: SHA-256 over the definition file, the recipients file, both templates
and the common attachments (name and bytes). Per-row attachments are named by the recipients
file (their paths are hashed with it), not hashed themselves: they are read when each row is
sent. A campaign registered once is run again only with the same content hash (``ledger.py``).

File-system reads happen here (bounded: the recipients file by ``bulk.max_csv_size``, each
attachment by ``bulk.max_attachment_size``); nothing is sent.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pli.config.schema import BulkSection

from .definition import Definition, DefinitionError, load_definition, resolve
from .recipients import RecipientFile, RecipientFileError, parse_recipients
from .templates import CampaignTemplates, TemplateDefinitionError

#: Row problems about attachments (stable reason codes).
ATTACHMENT_MISSING = "attachment-missing"
ATTACHMENT_UNREADABLE = "attachment-unreadable"
ATTACHMENT_TOO_LARGE = "attachment-too-large"
ATTACHMENT_OUTSIDE = "attachment-outside-campaign"
#: Media types of common extensions (``mimetypes`` knows the rest).
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".xml": "text/xml",
    ".txt": "text/plain",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}


class CampaignError(Exception):
    """The campaign cannot be used at all; ``text`` is French."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class RowProblem(Exception):
    """One row cannot be sent: a stable ``reason`` and a French ``text``."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = b""

    @property
    def is_xml(self) -> bool:
        return self.filename.lower().endswith(".xml")


@dataclass(frozen=True)
class CampaignLimits:
    max_rows: int
    max_csv_size: int
    max_attachment_size: int

    @classmethod
    def from_settings(cls, bulk: BulkSection) -> CampaignLimits:
        return cls(bulk.max_rows, bulk.max_csv_size, bulk.max_attachment_size)


@dataclass(frozen=True)
class Campaign:
    id: str
    definition: Definition
    file: Path  # the definition file
    content_hash: str
    recipients: RecipientFile
    templates: CampaignTemplates
    common: tuple[Attachment, ...]
    limits: CampaignLimits
    confined: bool  # paths must stay inside the campaign directory (HTTP API campaigns)

    @property
    def base(self) -> Path:
        return self.file.parent

    def row_attachment(self, path: str) -> Attachment:
        """A per-row attachment, read now (RowProblem when missing, unreadable, too large)."""
        try:
            target = resolve(self.base, path, confined=self.confined)
        except DefinitionError:
            raise RowProblem(ATTACHMENT_OUTSIDE, f"{path} : en dehors du dossier") from None
        return read_attachment(target, path, self.limits.max_attachment_size)


def media_type(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    guessed = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0]
    return guessed or "application/octet-stream"


def read_attachment(target: Path, shown: str, max_size: int) -> Attachment:
    """An attachment file (RowProblem when it cannot be sent)."""
    try:
        if not target.is_file():
            raise RowProblem(ATTACHMENT_MISSING, f"{shown} : fichier introuvable")
        size = target.stat().st_size
        if size > max_size:
            raise RowProblem(
                ATTACHMENT_TOO_LARGE, f"{shown} : {size} octets, plus que {max_size} permis"
            )
        with target.open("rb") as file:
            data = file.read(max_size + 1)
    except OSError as error:
        raise RowProblem(
            ATTACHMENT_UNREADABLE, f"{shown} : illisible ({error.strerror or error})"
        ) from None
    if len(data) > max_size:  # grew while read
        raise RowProblem(ATTACHMENT_TOO_LARGE, f"{shown} : plus de {max_size} octets")
    return Attachment(target.name, media_type(target.name), data)


def _read_text(base: Path, relative: str, confined: bool, what: str) -> str:
    path = resolve(base, relative, confined=confined)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise CampaignError(f"{what} {relative} : {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CampaignError(f"{what} {relative} : le modèle doit être en UTF-8") from None


def load_campaign(
    path: Path, *, limits: CampaignLimits, today: date, confined: bool = False
) -> Campaign:
    """Read and check a campaign (CampaignError names what is wrong)."""
    try:
        definition, file, definition_bytes = load_definition(path)
        base = file.parent
        digest = hashlib.sha256()
        digest.update(b"definition\0" + definition_bytes)
        recipients_path = resolve(base, definition.recipients, confined=confined)
        try:
            size = recipients_path.stat().st_size
            if size > limits.max_csv_size:
                raise CampaignError(
                    f"{definition.recipients} : {size} octets, plus que {limits.max_csv_size}"
                )
            csv_bytes = recipients_path.read_bytes()
        except OSError as error:
            raise CampaignError(
                f"destinataires {definition.recipients} : {error.strerror or error}"
            ) from None
        digest.update(b"\0recipients\0" + csv_bytes)
        subject = definition.subject
        if subject is None:
            subject = _read_text(base, definition.subject_file or "", confined, "objet")
        body = definition.body
        if body is None:
            body = _read_text(base, definition.body_file or "", confined, "corps")
        digest.update(b"\0subject\0" + subject.encode() + b"\0body\0" + body.encode())
        common = []
        for name in definition.attachments:
            try:
                attachment = read_attachment(
                    resolve(base, name, confined=confined), name, limits.max_attachment_size
                )
            except RowProblem as problem:
                raise CampaignError(f"pièce jointe commune {problem.text}") from None
            digest.update(b"\0attachment\0" + name.encode() + b"\0" + attachment.data)
            common.append(attachment)
        templates = CampaignTemplates(subject, body)
        recipients = parse_recipients(csv_bytes, max_rows=limits.max_rows, today=today)
    except DefinitionError as error:
        raise CampaignError(error.text) from None
    except TemplateDefinitionError as error:
        raise CampaignError(f"modèle : {error.text}") from None
    except RecipientFileError as error:
        raise CampaignError(f"destinataires {definition.recipients} : {error.text}") from None
    content_hash = digest.hexdigest()
    return Campaign(
        id=definition.id or f"c-{content_hash[:20]}",
        definition=definition,
        file=file,
        content_hash=content_hash,
        recipients=recipients,
        templates=templates,
        common=tuple(common),
        limits=limits,
        confined=confined,
    )
