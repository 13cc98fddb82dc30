"""The webmail application: ``create_webmail_app(deps)`` returns the FastAPI app that
``pli serve`` runs for a ``webmail`` listener (``mailgateway/serve.py``) and tests drive.

It adds, around the route modules (:mod:`.routes_login`, :mod:`.routes_mail`,
:mod:`.routes_write`, :mod:`.routes_account`):

- a request body limit (``limits.message_size`` plus the form's own allowance): a larger body is
  refused with 413 before it is read;
- the security headers of :mod:`.security` on every response that did not set its own;
- one error page per kind of failure, in French, never with an exception's text: 303 to the
  login page without a session, 403 for a failed CSRF or Origin check, 404, 400 for malformed
  requests, 413, 503 when the store cannot answer.

No OpenAPI document, no docs pages: this is a site for people.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pli.mailbox.store import NotFound, StoreUnavailable

from . import routes_account, routes_login, routes_mail, routes_write
from .context import WebmailDeps
from .pages import STATIC, Forbidden, LoginRequired, PageNotFound, Webmail
from .security import page_headers

log = structlog.get_logger(__name__)

#: Bytes a request body may exceed the message size limit by (form fields, multipart framing,
#: base64 growth of nothing: uploads arrive as raw bytes).
FORM_ALLOWANCE = 1024 * 1024

ERRORS = {
    400: ("Demande invalide", "Cette demande n'a pas pu être comprise."),
    403: (
        "Action refusée",
        "Votre session a expiré ou le formulaire n'est plus valable. Rechargez la page et "
        "recommencez.",
    ),
    404: ("Page introuvable", "Cette page n'existe pas ou n'est pas accessible avec ce profil."),
    413: ("Envoi trop volumineux", "Les fichiers envoyés dépassent la taille autorisée."),
    503: (
        "Service momentanément indisponible",
        "La messagerie ne peut pas répondre pour le moment. Réessayez dans quelques minutes.",
    ),
}


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes: at once from Content-Length, else while they
    are read (the app sees a disconnect and answers 413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited, send)


async def _too_large(send: Send) -> None:
    body = ERRORS[413][1].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the default page headers to responses that did not set them."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.defaults = [
            (name.lower().encode(), value.encode())
            for name, value in page_headers(secure=secure).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.defaults if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_webmail_app(deps: WebmailDeps) -> FastAPI:
    webmail = Webmail(deps)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="pli webmail")
    app.state.webmail = webmail
    for module in (routes_login, routes_mail, routes_write, routes_account):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def error_page(status: int) -> Response:
        title, text = ERRORS[status]
        return webmail.render("error.html", {"title": title, "text": text}, status=status)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired) -> Response:
        return webmail.redirect("/connexion?etat=expire")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, error: Forbidden) -> Response:
        log.info("webmail-forbidden", path=request.url.path)
        return error_page(403)

    @app.exception_handler(PageNotFound)
    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: Exception) -> Response:
        return error_page(404)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return error_page(404 if request.method == "GET" else 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        status = error.status_code if error.status_code in ERRORS else 400
        return error_page(status)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    async def unavailable(request: Request, error: Exception) -> Response:
        log.warning("webmail-store-unavailable", error=type(error).__name__)
        return error_page(503)

    limit = deps.config.message_size + FORM_ALLOWANCE
    app.add_middleware(BodyLimit, limit=limit)
    app.add_middleware(SecurityHeaders, secure=deps.config.secure_cookies)
    return app


def webmail_of(app: Any) -> Webmail:
    """The runtime object of an app made by :func:`create_webmail_app` (tests)."""
    found: Webmail = app.state.webmail
    return found
