"""The HTTP API for hospital information systems, on the admin listener (docs/bulk.md "HTTP
API"): submit a campaign, dry-run it, follow it, fetch its report, cancel it.

::

    POST /bulk/campaigns                 submit (multipart or JSON: upload.py) → 201, or 200
                                         when the same content was submitted before
    POST /bulk/check                     dry run of the same body: nothing kept, nothing sent
    GET  /bulk/campaigns                 the client's campaigns, newest first
    GET  /bulk/campaigns/{id}            status: counts per state, rate, ETA
    GET  /bulk/campaigns/{id}/report     per row (?format=json, the default, or csv)
    POST /bulk/campaigns/{id}/cancel     rows not yet sent are cancelled

**Authentication** (RFC 6750 §2.1): ``Authorization: Bearer <token>``; the token's SHA-256 must
be the ``token_sha256`` of one of the ``[[bulk.clients]]`` (compared in constant time). With no
client configured every request is refused (401). A client submits only from its
``mailboxes``, and sees and cancels only the campaigns sent from them (404 for the others:
their existence is not disclosed).

**Submission.** The body is received into ``<bulk.directory>/incoming/<random>`` (bounded,
fsynced), read as a campaign ``confined`` to that directory (``campaign.py``), its mailbox
checked against the client, then: the campaign id known with the same content hash → the
existing campaign (200, nothing changed: idempotent); with another hash → 409; new → the
directory is renamed to ``<bulk.directory>/campaigns/<id>`` and the campaign registered
(``runner.register_campaign``, origin ``api:<client>``) before the answer (201): the
``pli serve`` runner (``service.py``) sends it, woken at once.

Errors are JSON: ``{"detail": {"error": "<code>", "message": "<text>"}}`` (the campaign's own
problems in French, as ``pli bulk`` prints them).

What this module must not do: send (the runner does), or read a file outside the campaign's
directory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import shutil
import time
import uuid
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from pli.config.schema import BulkClient, Settings
from pli.docstore.blobs import fsync_directory

from ..services import Runtime
from .campaign import Campaign, CampaignError
from .check import BulkContext, check_campaign, check_csv, open_campaign
from .ledger import CampaignConflict, CampaignRecord, Ledger
from .report import campaign_json, campaign_report, campaign_status, report_csv, report_json
from .runner import register_campaign
from .upload import (
    MAX_JSON_BODY,
    Staging,
    UploadError,
    bounded,
    check_declared_length,
    receive_multipart,
    write_json_submission,
)

log = structlog.get_logger(__name__)

REALM = "pli-bulk"
#: Campaigns listed by GET /bulk/campaigns at most (newest first).
LIST_LIMIT = 500
#: A staging directory older than this was left by a request that died: removed.
STAGING_MAX_AGE = 24 * 3600.0
CSV_TYPE = "text/csv; charset=utf-8"
#: ``?format=`` of the dry run and the report.
Format = Annotated[str, Query(alias="format", pattern="^(json|csv)$")]


def problem(status: int, code: str, message: str, **headers: str) -> HTTPException:
    return HTTPException(status, {"error": code, "message": message}, headers=headers or None)


def unauthorized(code: str, message: str) -> HTTPException:
    """RFC 6750 §3: the challenge, with ``invalid_token`` when a token was given."""
    challenge = f'Bearer realm="{REALM}"'
    if code == "invalid-token":
        challenge += ', error="invalid_token"'
    return problem(401, code, message, **{"WWW-Authenticate": challenge})


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_client(settings: Settings, authorization: str | None) -> BulkClient:
    """The client whose token the ``Authorization`` header carries (HTTPException 401)."""
    clients = settings.bulk.clients
    if not clients:
        raise unauthorized("api-disabled", "the bulk API has no client: see [[bulk.clients]]")
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("token-missing", "Authorization: Bearer <token> is required")
    digest = token_digest(token)
    found = None
    for client in clients:  # every digest compared: the time does not tell which matched
        if hmac.compare_digest(digest, client.token_sha256):
            found = client
    if found is None:
        raise unauthorized("invalid-token", "the token is not one of a bulk client")
    return found


def may_use(client: BulkClient, mailbox: str) -> bool:
    return mailbox.lower() in {address.lower() for address in client.mailboxes}


def is_stale(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > STAGING_MAX_AGE
    except OSError:
        return False


class BulkApi:
    """The API's state: where campaigns live, the lock that makes one submission of a content
    register it once."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        root = settings.server.data_dir / settings.bulk.directory
        self.incoming = root / "incoming"
        self.campaigns = root / "campaigns"
        self.max_body = settings.bulk.api_max_request_size
        self._register = asyncio.Lock()

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def ledger(self) -> Ledger:
        if self.runtime.store is None:
            raise problem(503, "store-unavailable", "the mail store is not open")
        return Ledger(self.runtime.store)

    def context(self) -> BulkContext:
        if self.runtime.gateway is None:
            raise problem(
                503,
                "pipeline-unavailable",
                "the submission pipeline does not run in this process (enable an smtp, "
                "submission or webmail listener)",
            )
        return BulkContext.from_gateway(self.runtime.gateway)

    def wake_runner(self) -> None:
        service = self.runtime.bulk
        if service is not None:
            service.wake.set()

    # -- receiving -----------------------------------------------------------------------------

    async def receive(self, request: Request) -> Staging:
        """The request body written under a new staging directory (UploadError)."""
        content_type = request.headers.get("content-type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media not in ("multipart/form-data", "application/json"):
            raise UploadError(
                415,
                "unsupported-media-type",
                "send multipart/form-data (definition, files) or application/json",
            )
        limit = (
            self.max_body if media == "multipart/form-data" else min(self.max_body, MAX_JSON_BODY)
        )
        check_declared_length(request.headers, limit)
        await asyncio.to_thread(self._sweep_stale)
        staging = Staging(self.incoming / uuid.uuid4().hex)
        staging.root.mkdir(parents=True)
        try:
            stream = bounded(request.stream(), limit)
            if media == "multipart/form-data":
                await receive_multipart(content_type, stream, staging)
            else:
                body = b"".join([chunk async for chunk in stream])
                await asyncio.to_thread(write_json_submission, body, staging)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, staging.root, True)
            raise
        return staging

    def _sweep_stale(self) -> None:
        """Remove staging directories requests that died left behind."""
        if not self.incoming.is_dir():
            return
        now = time.time()
        for entry in self.incoming.iterdir():
            if is_stale(entry, now):
                shutil.rmtree(entry, ignore_errors=True)

    async def open(self, staging: Staging, client: BulkClient) -> Campaign:
        """The staged campaign, read confined to its directory, from a mailbox of the client."""
        definition = staging.root / (staging.definition or "")
        try:
            campaign = await asyncio.to_thread(
                open_campaign, self.settings, definition, confined=True
            )
        except CampaignError as error:
            raise problem(422, "campaign-invalid", error.text) from None
        if not may_use(client, campaign.definition.mailbox):
            raise problem(
                403,
                "mailbox-not-allowed",
                f"client {client.name} may not send from {campaign.definition.mailbox}",
            )
        return campaign

    # -- registering ---------------------------------------------------------------------------

    async def register(self, campaign: Campaign, client: BulkClient) -> tuple[CampaignRecord, bool]:
        """Register a staged campaign (see the module docstring); (record, created now)."""
        ledger = self.ledger()
        context = self.context()
        async with self._register:
            existing = await ledger.get(campaign.id)
            if existing is not None:
                if existing.content_hash != campaign.content_hash:
                    raise problem(
                        409,
                        "campaign-conflict",
                        f"la campagne {campaign.id} existe avec un autre contenu : donnez-lui "
                        "un autre id",
                    )
                if not may_use(client, existing.mailbox):
                    raise problem(409, "campaign-conflict", f"campaign {campaign.id} exists")
                return existing, False
            final = self.campaigns / campaign.id
            await asyncio.to_thread(self._install, campaign.base, final)
            placed = dataclasses.replace(campaign, file=final / campaign.file.name)
            try:
                return await register_campaign(context, placed, origin=f"api:{client.name}")
            except BaseException as error:
                await asyncio.to_thread(shutil.rmtree, final, True)
                if isinstance(error, CampaignConflict):
                    raise problem(409, "campaign-conflict", error.text) from None
                if isinstance(error, CampaignError):  # the mailbox cannot send campaigns
                    raise problem(422, "campaign-invalid", error.text) from None
                raise

    def _install(self, staged: Path, final: Path) -> None:
        """Move the staged directory to its campaign's place (a leftover of a registration
        that never committed is replaced: nothing refers to it)."""
        self.campaigns.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
        fsync_directory(self.campaigns)

    async def visible(self, campaign_id: str, client: BulkClient) -> CampaignRecord:
        record = await self.ledger().get(campaign_id)
        if record is None or not may_use(client, record.mailbox):
            raise problem(404, "campaign-unknown", f"no campaign {campaign_id}")
        return record


def create_bulk_router(runtime: Runtime) -> APIRouter:
    """The ``/bulk`` routes (mounted by ``admin.py``)."""
    api = BulkApi(runtime)

    def authenticate(request: Request) -> None:
        """Every route: the client, before the body is read (``request.state.bulk_client``)."""
        request.state.bulk_client = find_client(
            runtime.settings, request.headers.get("authorization")
        )

    def client_of(request: Request) -> BulkClient:
        found: BulkClient = request.state.bulk_client
        return found

    router = APIRouter(prefix="/bulk", tags=["bulk"], dependencies=[Depends(authenticate)])

    async def staged(request: Request, who: BulkClient) -> tuple[Staging, Campaign]:
        try:
            staging = await api.receive(request)
        except UploadError as error:
            raise problem(error.status, error.code, error.text) from None
        try:
            return staging, await api.open(staging, who)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, staging.root, True)
            raise

    @router.post("/campaigns")
    async def submit(request: Request) -> JSONResponse:
        """Submit a campaign; 201 with its id, 200 if this content was submitted already."""
        who = client_of(request)
        staging, campaign = await staged(request, who)
        try:
            record, created = await api.register(campaign, who)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging.root, True)
        if created:
            api.wake_runner()
        log.info("bulk-api-submit", client=who.name, campaign=record.id, created=created)
        body = {**campaign_json(record), "created": created}
        headers = {"Location": f"/bulk/campaigns/{record.id}"}
        return JSONResponse(body, status_code=201 if created else 200, headers=headers)

    @router.post("/check")
    async def check(request: Request, form: Format = "json") -> Response:
        """Dry run: every row checked as the submission would take it; nothing kept."""
        who = client_of(request)
        staging, campaign = await staged(request, who)
        try:
            report = await check_campaign(api.context(), campaign, origin=f"api:{who.name}")
        except CampaignError as error:
            raise problem(422, "campaign-invalid", error.text) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, staging.root, True)
        if form == "csv":
            return Response(check_csv(report), media_type=CSV_TYPE)
        return JSONResponse(report.as_json())

    @router.get("/campaigns")
    async def listing(request: Request) -> JSONResponse:
        who = client_of(request)
        records = await api.ledger().campaigns(limit=LIST_LIMIT)
        return JSONResponse([campaign_json(r) for r in records if may_use(who, r.mailbox)])

    @router.get("/campaigns/{campaign_id}")
    async def status(request: Request, campaign_id: str) -> JSONResponse:
        who = client_of(request)
        await api.visible(campaign_id, who)
        found = await campaign_status(api.ledger(), campaign_id)
        if found is None:
            raise problem(404, "campaign-unknown", f"no campaign {campaign_id}")
        return JSONResponse(found.as_json())

    @router.get("/campaigns/{campaign_id}/report")
    async def report(request: Request, campaign_id: str, form: Format = "json") -> Response:
        who = client_of(request)
        await api.visible(campaign_id, who)
        found = await campaign_report(api.ledger(), campaign_id)
        if found is None:
            raise problem(404, "campaign-unknown", f"no campaign {campaign_id}")
        if form == "csv":
            return Response(report_csv(found), media_type=CSV_TYPE)
        return JSONResponse(report_json(found))

    @router.post("/campaigns/{campaign_id}/cancel")
    async def cancel(request: Request, campaign_id: str) -> JSONResponse:
        who = client_of(request)
        await api.visible(campaign_id, who)
        ledger = api.ledger()
        cancelled = await ledger.cancel(campaign_id)
        log.info("bulk-api-cancel", client=who.name, campaign=campaign_id, rows=cancelled)
        found = await campaign_status(ledger, campaign_id)
        assert found is not None
        return JSONResponse({**found.as_json(), "cancelled": cancelled})

    return router
