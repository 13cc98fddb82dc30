"""What the document store exchanges: documents, actors, filings, pages, problems (pydantic).

These models are the HTTP API's vocabulary (they make its OpenAPI description) and what the
store's operations return. Who may do what is decided here too (``may_delete``), as data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .categories import Category
from .limits import (
    MAX_CODE_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
)

#: An INS matricule: 13-character NIR or NIA (Corsica: 2A/2B) and a 2-digit key (mssante.md §3).
#: The store checks the shape only; the key is checked by pli before it calls the store.
INS_PATTERN = r"^[1-8][0-9]{4}(?:[0-9]{2}|2[ABab])[0-9]{8}$"
_INS = re.compile(INS_PATTERN)
#: Identifiers exchanged in headers: visible ASCII, no spaces (RFC 9110 §5.5 field values).
_TOKENISH = re.compile(r"^[\x21-\x7e]+$")


def _no_control_characters(value: str) -> str:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("control characters are not allowed")
    return value


CleanText = Annotated[str, AfterValidator(_no_control_characters)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone offset (Z or +01:00)")
    return value.astimezone(UTC)


UtcInstant = Annotated[datetime, AfterValidator(_utc)]


def is_ins_shaped(value: str) -> bool:
    return bool(_INS.match(value))


class ActorKind(StrEnum):
    """Who acts on a citizen's documents (policy P9: every action records who acted)."""

    CITIZEN = "citizen"  # the citizen, in pli's webmail
    GUARDIAN = "guardian"  # a parent or caregiver acting for the citizen
    CITIZEN_REQUEST = "citizen-request"  # pli filing on the citizen's request ("save")
    AUTOMATIC_RULE = "automatic-rule"  # pli filing by a rule, without a request
    OPERATOR = "operator"  # the service's operator (erasure, repair)


#: Filings that count as "filed by the citizen": the citizen may delete them.
CITIZEN_SIDE = frozenset({ActorKind.CITIZEN, ActorKind.GUARDIAN, ActorKind.CITIZEN_REQUEST})


def may_delete(actor: ActorKind, filed_by: ActorKind) -> bool:
    """A citizen (or their guardian) deletes only what they filed; documents filed by others
    (an automatic rule, the operator) can be hidden, not deleted. The operator deletes any."""
    if actor is ActorKind.OPERATOR:
        return True
    return actor in CITIZEN_SIDE and filed_by in CITIZEN_SIDE


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ActorKind
    id: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=_TOKENISH.pattern,
        description="The acting person or component (an INS, an account, a rule name).",
    )


class Confidentiality(StrEnum):
    """Whether professionals may see the document (Mon espace santé's "masquer aux
    professionnels", the MASQUE_PS restriction). The citizen always sees it."""

    VISIBLE = "visible"
    HIDDEN = "hidden"


#: The multipart field carrying the document's bytes, beside the FilingFields.
CONTENT_FIELD = "content"


class FilingFields(BaseModel):
    """The description of a document being filed (multipart form fields beside ``content``).
    An unknown field is refused: a misspelt ``confidentiality`` must not file a document
    visible to professionals."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _without_content(cls, data: object) -> object:
        if isinstance(data, dict) and CONTENT_FIELD in data:
            return {name: value for name, value in data.items() if name != CONTENT_FIELD}
        return data

    title: CleanText = Field(min_length=1, max_length=MAX_TITLE_LENGTH)
    category: Category | None = Field(
        None, description="Omitted: derived from type_code (LOINC, CI-SIS), else 'autre'."
    )
    document_date: UtcInstant | None = Field(
        None, description="When the document was written (ISO 8601 with offset); omitted: now."
    )
    type_code: CleanText | None = Field(
        None, max_length=MAX_CODE_LENGTH, description="Document type code (LOINC, CDA code)."
    )
    type_code_scheme: CleanText | None = Field(
        None, max_length=MAX_CODE_LENGTH, description="Its coding scheme (OID)."
    )
    author_name: CleanText | None = Field(None, max_length=MAX_NAME_LENGTH)
    author_id: CleanText | None = Field(
        None, max_length=MAX_NAME_LENGTH, description="The author's identifier (RPPS…)."
    )
    source_message_id: CleanText | None = Field(
        None, max_length=MAX_MESSAGE_ID_LENGTH, description="Message-ID of the source message."
    )
    source_part: CleanText | None = Field(
        None,
        max_length=MAX_NAME_LENGTH,
        description="The part of that message (MIME part path, or path inside an IHE_XDM.zip).",
    )
    confidentiality: Confidentiality = Confidentiality.VISIBLE
    mime_type: str | None = Field(
        None, max_length=255, description="Declared media type; omitted: the part's type."
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="SHA-256 of the content as the client sent it; a mismatch is refused.",
    )


class Event(BaseModel):
    action: str = Field(description="filed, hidden, unhidden or deleted.")
    actor: Actor
    at: datetime


class Document(BaseModel):
    id: str
    citizen_ins: str
    title: str
    category: Category
    category_label: str
    document_date: datetime
    type_code: str | None
    type_code_scheme: str | None
    author_name: str | None
    author_id: str | None
    source_message_id: str | None
    source_part: str | None
    mime_type: str
    declared_mime_type: str | None
    type_note: str | None = Field(description="Why the stored type differs from the declared.")
    size: int
    sha256: str
    confidentiality: Confidentiality
    filed_by: Actor
    filed_at: datetime
    updated_at: datetime
    idempotency_key: str
    history: list[Event] | None = Field(
        None, description="Who did what, oldest first (in single-document answers)."
    )


class DocumentPage(BaseModel):
    documents: list[Document]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last.")


class ConfidentialityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confidentiality: Confidentiality


class Problem(BaseModel):
    """Every refusal: a stable reason code and a sentence for people."""

    reason: str
    detail: str
