"""A campaign definition: a TOML or JSON file (or a directory holding ``campaign.toml`` or
``campaign.json``) naming the recipients file, the templates, the common attachments, the
sending mailbox and the options. Paths are relative to the file's directory.

::

    id = "convocations-2025-03"             # optional: else derived from the content
    kind = "convocation"                    # what the campaign sends (pli stats counts them)
    mailbox = "cr-patient-noreply@ch-exemple.mssante.fr"   # an APP or ORG mailbox
    recipients = "patients.csv"
    subject = "Votre convocation du {{ date_rdv }}"        # or subject_file
    body_file = "convocation.txt.j2"                        # or body
    attachments = ["livret-accueil.pdf"]                    # in every message
    read_receipt = false                    # Disposition-Notification-To: the mailbox
    no_reply = true                         # X-MSS-MES: FIN (policy P4: no reply possible)

    [xdm]                                   # CDA documents of each row as IHE_XDM.zip
    enabled = true
    class_code = "11"
    confidentiality = ["N"]
    author_id = "810001234567"              # RPPS-based national id of the author
    author_family = "MARTIN"
    author_given = "Jeanne"
    institution = "CH Exemple"              # default: the mailbox's display name
    institution_id = "750100001"            # default: the mailbox's structure id

Loading checks the file (unknown keys, kinds, sizes) and, for campaigns submitted over the HTTP
API (``confined``), that every path stays inside the campaign's directory. Reading the files
the definition names is ``campaign.py``'s job.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .limits import CAMPAIGN_ID_LENGTH, MAX_COMMON_ATTACHMENTS, MAX_DEFINITION_SIZE

DEFINITION_NAMES = ("campaign.toml", "campaign.json")
#: A campaign id is dot-atom text (RFC 5322 §3.2.3), lower case: it is part of Message-IDs.
CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*$")
#: What a campaign sends (product.md: convocations, pre-admission documents, appointment
#: reminders, discharge letters, operative and lab reports, satisfaction questionnaires).
Kind = Literal[
    "convocation",
    "pre-admission",
    "reminder",
    "discharge-letter",
    "report",
    "questionnaire",
    "other",
]
#: A confidentiality code: HL7 (N, R, V) or a French restriction (TRE_A07).
Confidentiality = Literal["N", "R", "V", "INVISIBLE_PATIENT", "MASQUE_PS", "INVISIBLE_REP_LEGAUX"]


class DefinitionError(Exception):
    """The definition cannot be used; ``text`` is French and names the file and the key."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XdmOptions(_Strict):
    enabled: bool = False
    class_code: str = Field("11", min_length=1, max_length=64)
    class_display: str = Field("Compte rendu", max_length=256)
    confidentiality: list[Confidentiality] = Field(
        default_factory=lambda: list[Confidentiality](["N"]), min_length=1
    )
    author_id: str = Field("", max_length=64)
    author_family: str = Field("", max_length=128)
    author_given: str = Field("", max_length=128)
    institution: str = Field("", max_length=256)
    institution_id: str = Field("", max_length=64)
    source_oid: str = Field("", pattern=r"^$|^[0-2](\.(0|[1-9][0-9]*)){1,40}$")


class Definition(_Strict):
    id: str | None = Field(None, max_length=CAMPAIGN_ID_LENGTH)
    kind: Kind = "other"
    mailbox: str = Field(min_length=3, max_length=320)
    recipients: str = Field(min_length=1)
    subject: str | None = None
    subject_file: str | None = None
    body: str | None = None
    body_file: str | None = None
    attachments: list[str] = Field(default_factory=list, max_length=MAX_COMMON_ATTACHMENTS)
    read_receipt: bool = False
    no_reply: bool = False
    xdm: XdmOptions = Field(default_factory=XdmOptions)

    @field_validator("id")
    @classmethod
    def _campaign_id(cls, value: str | None) -> str | None:
        if value is not None and not CAMPAIGN_ID.match(value):
            raise ValueError("expected lower-case letters, digits, '-', '_' and single dots (≤ 64)")
        return value

    @field_validator("mailbox")
    @classmethod
    def _address(cls, value: str) -> str:
        lowered = value.strip().lower()
        if lowered.count("@") != 1:
            raise ValueError("expected a mailbox address")
        return lowered

    @model_validator(mode="after")
    def _one_of_each(self) -> Definition:
        for name in ("subject", "body"):
            given = [getattr(self, name) is not None, getattr(self, f"{name}_file") is not None]
            if sum(given) != 1:
                raise ValueError(f"give exactly one of {name} and {name}_file")
        return self


def definition_file(path: Path) -> Path:
    """The definition file of ``path`` (itself, or the campaign file of a directory)."""
    if path.is_dir():
        for name in DEFINITION_NAMES:
            if (path / name).is_file():
                return path / name
        raise DefinitionError(f"{path} : ni campaign.toml ni campaign.json dans ce dossier")
    return path


def parse_definition(data: bytes, name: str) -> Definition:
    """A definition from its bytes (TOML, or JSON when ``name`` ends in .json)."""
    if len(data) > MAX_DEFINITION_SIZE:
        raise DefinitionError(f"{name} : plus de {MAX_DEFINITION_SIZE} octets")
    try:
        text = data.decode("utf-8-sig")
        raw = json.loads(text) if name.lower().endswith(".json") else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as error:  # TOMLDecodeError, JSONDecodeError
        raise DefinitionError(f"{name} : illisible ({error})") from None
    if not isinstance(raw, dict):
        raise DefinitionError(f"{name} : un objet (table) est attendu")
    try:
        return Definition.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(fichier)'} : {problem['msg']}"
            for problem in error.errors()
        )
        raise DefinitionError(f"{name} : {problems}") from None


def load_definition(path: Path) -> tuple[Definition, Path, bytes]:
    """(definition, its file, its bytes) of a file or directory."""
    file = definition_file(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise DefinitionError(f"{file} : {error.strerror or error}") from None
    return parse_definition(data, file.name), file, data


def resolve(base: Path, relative: str, *, confined: bool) -> Path:
    """``relative`` from ``base``; when ``confined``, refused unless it stays inside ``base``
    (symbolic links followed)."""
    candidate = (base / relative).resolve()
    if confined and not candidate.is_relative_to(base.resolve()):
        raise DefinitionError(f"{relative} : en dehors du dossier de la campagne")
    return candidate
