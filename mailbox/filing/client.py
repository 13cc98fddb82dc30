"""The document store's HTTP API as the filing worker uses it: file one document, and what the
answer means for the filing (filed, try again later, or refused for good).

The store's contract (docs/docstore.md, docs/docstore-openapi.json): ``POST
/v1/citizens/{ins}/documents`` (multipart) with ``Authorization: Bearer``, ``Pli-Actor``,
``Pli-Actor-Id`` and ``Idempotency-Key``; ``201`` filed, ``200`` filed before with this key (the
same document: retrying is always safe), refusals as ``{"reason", "detail"}`` problems, ``503``
with ``Retry-After`` when its database is busy.

How answers are read (:func:`classify`):

- 200/201 with a document id: filed.
- Passing failures, tried again later: no answer (connection refused or reset, time-out), 408,
  425, 429, 5xx, and answers that say our side is misconfigured rather than the document wrong
  (401 bad token, 404/405 wrong URL): an operator fixes those, the filing must not fail for
  them. 409 is passing unless it is ``idempotency-key-reused`` (our keys name the content, so
  the same key with other bytes cannot get better by retrying).
- Everything else (400, 403, 409 key reused, 410, 413, 415, 422, other 4xx): refused for good,
  with the store's reason code.

``Retry-After`` (RFC 9110 §10.2.3: seconds or an HTTP-date) is honoured on 429 and 503, capped
at :data:`~.limits.MAX_RETRY_AFTER`.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from .documents import OutgoingDocument
from .limits import ERROR_TEXT_LENGTH, MAX_RETRY_AFTER
from .reasons import KEY_REUSED, STORE_REFUSED

#: Statuses meaning "not now" rather than "not this document" (see the module docstring).
PASSING_STATUSES = frozenset({401, 404, 405, 408, 409, 425, 429})
#: Among them, those saying our side is misconfigured (bad token, wrong URL): the worker's
#: health check reports them until an answer comes back right.
MISCONFIGURED_STATUSES = frozenset({401, 404, 405})
#: Answers whose Retry-After is honoured (RFC 9110 §10.2.3, RFC 6585 §4).
RETRY_AFTER_STATUSES = frozenset({429, 503})
_DOCUMENT_ID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Filed:
    document_id: str
    created: bool  # False: the store had filed it before under this key


@dataclass(frozen=True, slots=True)
class TryLater:
    error: str  # for operators: the status and reason, or the transport error's kind
    retry_after: float | None = None  # seconds the store asked us to wait
    status: int | None = None  # the HTTP status, when there was an answer

    @property
    def misconfigured(self) -> bool:
        """An answer meaning our configuration is wrong (token, URL), not the store busy."""
        return self.status in MISCONFIGURED_STATUSES


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str
    detail: str  # the store's sentence, for operators


Outcome = Filed | TryLater | Refused


@dataclass(frozen=True, slots=True)
class Actor:
    """Who files, as the store records it (``Pli-Actor``, ``Pli-Actor-Id``)."""

    kind: str  # citizen-request, guardian, automatic-rule
    id: str


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date), within
    [0, MAX_RETRY_AFTER]; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text[:12]), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = (when - now).total_seconds()
    except OverflowError:
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _problem(body: bytes) -> tuple[str, str]:
    try:
        decoded = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(decoded, dict):
        return "", ""
    reason, detail = decoded.get("reason"), decoded.get("detail")
    return (
        reason[:64] if isinstance(reason, str) else "",
        detail[:ERROR_TEXT_LENGTH] if isinstance(detail, str) else "",
    )


def classify(status: int, retry_after: str | None, body: bytes, now: datetime) -> Outcome:
    """What the store's answer means for the filing (see the module docstring)."""
    if status in (200, 201):
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        document_id = decoded.get("id") if isinstance(decoded, dict) else None
        if isinstance(document_id, str) and 0 < len(document_id) <= _DOCUMENT_ID_LENGTH:
            return Filed(document_id, created=status == 201)
        return TryLater(f"{status} without a document id", status=status)
    reason, detail = _problem(body)
    wait = parse_retry_after(retry_after, now) if status in RETRY_AFTER_STATUSES else None
    if status >= 500 or (status in PASSING_STATUSES and reason != KEY_REUSED):
        return TryLater(f"{status} {reason or 'no reason'}", wait, status)
    if 400 <= status < 500:
        return Refused(status, reason or STORE_REFUSED, detail)
    return TryLater(f"unexpected status {status}", status=status)


class DocstoreClient:
    """Files documents over HTTP (one pooled httpx client per worker)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def file(
        self, ins: str, document: OutgoingDocument, actor: Actor, key: str, now: datetime
    ) -> Outcome:
        """POST one document; any failure to get an answer is a :class:`TryLater`."""
        headers = {"Pli-Actor": actor.kind, "Pli-Actor-Id": actor.id, "Idempotency-Key": key}
        upload_name = document.filename.encode("ascii", "replace").decode().replace("?", "_")
        try:
            response = await self._http.post(
                f"/v1/citizens/{ins}/documents",
                headers=headers,
                data=document.fields,
                files={"content": (upload_name, document.content, document.mime_type)},
            )
        except httpx.TimeoutException:
            return TryLater("timeout")
        except httpx.TransportError as error:
            return TryLater(f"transport: {type(error).__name__}")
        return classify(
            response.status_code, response.headers.get("Retry-After"), response.content, now
        )
