"""What the filing API returns: the state of a filing as the citizen (and the operator) sees
it. Frozen dataclasses, independent of SQLAlchemy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .reasons import FilingStatus, citizen_text

#: Outcome of one document of a filing (an attachment is one document, a package several).
DOCUMENT_FILED, DOCUMENT_REFUSED, DOCUMENT_SKIPPED = "filed", "refused", "skipped"


@dataclass(frozen=True, slots=True)
class DocumentResult:
    source_part: str
    status: str  # filed, refused, skipped (invisible to the patient: policy P7)
    title: str = ""
    document_id: str | None = None  # the store's id, once filed
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "part": self.source_part,
            "status": self.status,
            "title": self.title,
            "document_id": self.document_id,
            "reason": self.reason,
        }

    @staticmethod
    def from_json(item: dict[str, Any]) -> DocumentResult:
        return DocumentResult(
            str(item.get("part", "")),
            str(item.get("status", "")),
            str(item.get("title", "")),
            item.get("document_id"),
            item.get("reason"),
        )


def results_json(results: list[DocumentResult] | tuple[DocumentResult, ...]) -> str:
    return json.dumps([result.to_json() for result in results], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class FilingState:
    """One filing: an attachment of a message, to file into one citizen's documents."""

    id: int
    account_id: int
    ins: str
    source_id: str  # the Message-ID, or "blob:<id>"
    part: str  # the MIME part (IMAP section number)
    kind: str  # "attachment" or "ihe-xdm"
    status: FilingStatus
    reason: str | None  # why it failed (a stable code), when it did
    text: str  # what the citizen reads, in French
    documents: tuple[DocumentResult, ...]
    requested_by: str  # citizen-request, guardian, automatic-rule
    requester: str  # the citizen's INS, the guardian, the rule's name
    attempts: int
    next_attempt_at: datetime | None  # when pending
    created_at: datetime
    updated_at: datetime
    filed_at: datetime | None
    detail: str = ""  # for operators: the store's or the reader's sentence
    last_error: str = ""  # for operators: the last passing failure

    @property
    def document_ids(self) -> tuple[str, ...]:
        return tuple(d.document_id for d in self.documents if d.document_id is not None)

    @staticmethod
    def from_row(row: Any) -> FilingState:
        status = FilingStatus(row.state)
        documents = tuple(DocumentResult.from_json(item) for item in json.loads(row.results))
        filed = sum(1 for document in documents if document.status == DOCUMENT_FILED)
        delayed = status is FilingStatus.PENDING and bool(row.last_error)
        return FilingState(
            id=row.id,
            account_id=row.account_id,
            ins=row.ins,
            source_id=row.source_id,
            part=row.part,
            kind=row.kind,
            status=status,
            reason=row.reason,
            text=citizen_text(status, row.reason, filed, delayed),
            documents=documents,
            requested_by=row.actor_kind,
            requester=row.actor_id,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if status is FilingStatus.PENDING else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            filed_at=row.filed_at,
            detail=row.detail,
            last_error=row.last_error,
        )
