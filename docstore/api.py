"""The document store's HTTP API (FastAPI): file, list, get, read, hide/unhide and delete a
citizen's documents, behind service-to-service bearer authentication.

Every path is under ``/v1/citizens/{ins}``; who acts is named by the ``Pli-Actor`` and
``Pli-Actor-Id`` headers of every change. Every refusal is a ``Problem`` (a stable ``reason`` and
a ``detail`` sentence), never an exception text. ``/health`` and ``/openapi.json`` need no token.

This module turns HTTP into store calls and store errors into answers; the decisions are in
``store.py``, ``sniffing.py`` and ``documents.py``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the nested
# endpoint functions at runtime, and they name local dependencies.
import asyncio
import base64
import hmac
from pathlib import Path as FilePath
from typing import Annotated, Any

import structlog
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from .blobs import TooLarge
from .body_limit import BodyLimit
from .categories import Category
from .documents import (
    INS_PATTERN,
    Actor,
    ActorKind,
    ConfidentialityChange,
    Document,
    DocumentPage,
    FilingFields,
    Problem,
)
from .limits import (
    FORM_FIELDS_ALLOWANCE,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PAGE_SIZE,
    SMALL_BODY_LIMIT,
)
from .store import DocstoreError, DocumentStore

log = structlog.get_logger(__name__)

#: The version of this HTTP API (not of pli): it changes when the contract changes.
API_VERSION = "1.0.0"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: Form parsing bounds (Starlette's defaults allow 1000 fields of 1 MiB each).
FORM_LIMITS = {"max_fields": 16, "max_files": 1, "max_part_size": 16 * 1024}
_REALM = 'Bearer realm="pli-docstore"'
#: Seconds a client is asked to wait when the database is busy or down (RFC 9110 §10.2.3).
RETRY_AFTER = 5
_MAX_DETAIL = 500

_GENERIC_REASONS = {
    400: "bad-request",
    401: "unauthenticated",
    404: "not-found",
    405: "method-not-allowed",
    413: "request-too-large",
    415: "unsupported-media-type",
}

Ins = Annotated[
    str,
    Path(pattern=INS_PATTERN, description="The citizen's INS matricule (15 characters)."),
]
DocumentId = Annotated[str, Path(pattern=UUID_PATTERN)]


def _problem(
    status: int, reason: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Problem(reason=reason, detail=detail[:_MAX_DETAIL]).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _problems(
    *statuses: int, also: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses``: a Problem for each status, and ``also``."""
    return {**(also or {}), **{status: {"model": Problem} for status in statuses}}


def create_docstore_app(store: DocumentStore) -> FastAPI:
    """The ASGI application serving ``store`` (opened and closed by the caller)."""
    config = store.config
    app = FastAPI(
        title="pli reference document store",
        version=API_VERSION,
        description=(
            "A citizen's health documents (the role the DMP plays for Mon espace santé), "
            "filed by pli from messages. Service-to-service: every /v1 call carries "
            "`Authorization: Bearer <docstore.token>`."
        ),
        docs_url=None,
        redoc_url=None,
        form_limits=FORM_LIMITS,  # type: ignore[arg-type]
    )
    app.add_middleware(
        BodyLimit,
        filing_limit=config.max_document_size + FORM_FIELDS_ALLOWANCE,
        other_limit=SMALL_BODY_LIMIT,
    )
    bearer = HTTPBearer(auto_error=False, description="The shared secret docstore.token.")
    expected = config.token.encode()

    async def authenticated(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None:
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": _REALM}
            )
        given = credentials.credentials.encode("utf-8", errors="replace")
        # constant time: the comparison does not tell how much of the secret matched
        if not expected or not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "the bearer token is not valid",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )

    async def acting(
        kind: Annotated[ActorKind, Header(alias="Pli-Actor", description="Who acts.")],
        actor_id: Annotated[
            str,
            Header(
                alias="Pli-Actor-Id",
                min_length=1,
                max_length=MAX_NAME_LENGTH,
                description="The acting person or component (an INS, an account, a rule).",
            ),
        ],
    ) -> Actor:
        return Actor(kind=kind, id=actor_id)

    router = APIRouter(
        prefix="/v1/citizens/{ins}",
        dependencies=[Depends(authenticated)],
        responses=_problems(401, 422),
    )

    @router.post(
        "/documents",
        status_code=201,
        responses=_problems(
            400,
            409,
            410,
            413,
            415,
            also={200: {"model": Document, "description": "Filed before with this key."}},
        ),
        summary="File a document",
    )
    async def file_document(
        ins: Ins,
        fields: Annotated[FilingFields, Form()],
        content: Annotated[UploadFile, File(description="The document's bytes.")],
        actor: Annotated[Actor, Depends(acting)],
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
                description="Names this filing: the same key files once. Omitted: "
                "derived from source_message_id and source_part.",
            ),
        ] = None,
    ) -> Document:
        """File a document for a citizen: 201 with the new document, or 200 with the one this
        idempotency key filed before (same content); 409 if that key filed other content, 410
        if its document was deleted since."""
        key = idempotency_key or _source_key(fields)
        declared = fields.mime_type or content.content_type
        try:
            upload = await asyncio.to_thread(
                store.blobs.receive, content.file, config.max_document_size
            )
        except TooLarge as error:
            raise DocstoreError(413, "document-too-large", str(error)) from None
        document, created = await store.file(
            ins.upper(), key, fields.model_copy(update={"mime_type": declared}), upload, actor
        )
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/v1/citizens/{ins.upper()}/documents/{document.id}"
        return document

    @router.get("/documents", summary="List a citizen's documents", responses=_problems(400))
    async def list_documents(
        ins: Ins,
        category: Category | None = None,
        include_hidden: Annotated[
            bool, Query(description="false: only what professionals may see.")
        ] = True,
        limit: Annotated[
            int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="Default: docstore.page_size.")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> DocumentPage:
        """Newest document date first."""
        return await store.list_documents(
            ins.upper(),
            category=category,
            include_hidden=include_hidden,
            limit=limit,
            cursor=cursor,
        )

    @router.get(
        "/documents/{document_id}", summary="Describe a document", responses=_problems(404, 410)
    )
    async def get_document(ins: Ins, document_id: DocumentId) -> Document:
        """The document's description and its history (who filed, hid, showed it)."""
        return await store.get(ins.upper(), document_id)

    @router.get(
        "/documents/{document_id}/content",
        summary="Read a document's bytes",
        response_class=FileResponse,
        responses=_problems(404, 410, also={200: {"content": {"application/octet-stream": {}}}}),
    )
    async def read_content(ins: Ins, document_id: DocumentId) -> FileResponse:
        document, path = await store.content(ins.upper(), document_id)
        if not await asyncio.to_thread(FilePath(path).is_file):
            raise DocstoreError(500, "content-missing", "the document's bytes are missing")
        digest = base64.b64encode(bytes.fromhex(document.sha256)).decode()
        return FileResponse(
            path,
            media_type=document.mime_type,
            headers={
                "ETag": f'"{document.sha256}"',
                "Repr-Digest": f"sha-256=:{digest}:",  # RFC 9530
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "Cache-Control": "private, no-store",
                "Content-Disposition": f'attachment; filename="{document.id}"',
            },
        )

    @router.put(
        "/documents/{document_id}/confidentiality",
        summary="Hide a document from professionals, or show it again",
        responses=_problems(404, 410),
    )
    async def set_confidentiality(
        ins: Ins,
        document_id: DocumentId,
        change: ConfidentialityChange,
        actor: Annotated[Actor, Depends(acting)],
    ) -> Document:
        return await store.set_confidentiality(
            ins.upper(), document_id, change.confidentiality, actor
        )

    @router.delete(
        "/documents/{document_id}",
        status_code=204,
        summary="Delete a document",
        responses=_problems(403, 404),
    )
    async def delete_document(
        ins: Ins, document_id: DocumentId, actor: Annotated[Actor, Depends(acting)]
    ) -> Response:
        """A citizen (or guardian) deletes only what they filed; 403 otherwise (hide it
        instead). Deleting a deleted document answers 204 again."""
        await store.delete(ins.upper(), document_id, actor)
        return Response(status_code=204)

    app.include_router(router)

    @app.get("/health", summary="Readiness", responses={503: {"model": Problem}})
    async def health() -> dict[str, str]:
        problem = await store.health()
        if problem is not None:
            raise DocstoreError(503, "unhealthy", problem)
        return {"status": "ok"}

    _install_error_handlers(app)
    return app


def _source_key(fields: FilingFields) -> str:
    if not fields.source_message_id:
        raise DocstoreError(
            400,
            "idempotency-key-required",
            "give an Idempotency-Key header, or the source_message_id (and source_part) the "
            "key is derived from",
        )
    return f"source:{fields.source_message_id}#{fields.source_part or ''}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DocstoreError)
    async def _docstore_error(_request: Request, error: DocstoreError) -> JSONResponse:
        return _problem(error.status, error.reason, error.text)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
        return _problem(422, "invalid-request", "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException) -> JSONResponse:
        reason = _GENERIC_REASONS.get(error.status_code, "http-error")
        detail = error.detail if isinstance(error.detail, str) else reason
        if error.status_code == 413:
            detail = "the request body is larger than the store accepts"
        return _problem(error.status_code, reason, detail, dict(error.headers or {}))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(_request: Request, error: Exception) -> JSONResponse:
        log.warning("docstore-database-unavailable", error=type(error).__name__)
        return _problem(
            503,
            "store-unavailable",
            "the store's database is busy or unreachable: retry later",
            {"Retry-After": str(RETRY_AFTER)},
        )

    @app.exception_handler(Exception)
    async def _internal(_request: Request, error: Exception) -> JSONResponse:
        # the traceback is logged by the server; the client never sees the exception's text
        return _problem(500, "internal-error", "the store failed to answer this request")
