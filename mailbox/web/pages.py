"""The webmail's request plumbing, shared by the route modules: templates, the session of a
request, the CSRF check of a form, cookies, folders, and the audit records of page actions.

- :meth:`Webmail.session` gives the request's active session or raises :class:`LoginRequired`
  (the app answers with a redirection to the login page).
- :meth:`Webmail.form` reads a POST's form within limits and checks, in this order, the Origin
  (same origin only) and the session's synchronizer token (field ``csrf``); a failure raises
  :class:`Forbidden` (403, nothing done).
- :meth:`Webmail.render` renders a template with the base context (session, profile, CSRF token).

What this module must not do: decide what a page shows (the route modules do).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from pli.mailbox.store import Folder, NotFound, SpecialUse

from .compose import MAX_BODY_CHARS, MAX_UPLOADS
from .context import WebmailDeps
from .login import Login
from .mdn import ReceiptBook
from .security import load_or_create_key, origin_allowed, page_headers, same
from .sessions import ACTIVE, CODE, SessionStore, WebSession

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
#: Form fields per request.
MAX_FORM_FIELDS = 20
#: Bytes of one text field as sent: a text one character over compose's limit must still reach
#: it (to be refused with a sentence): 4 bytes of UTF-8 per character, percent-encoded (×3) in
#: an urlencoded form, and some room.
MAX_FIELD_BYTES = 3 * 4 * MAX_BODY_CHARS + 64 * 1024
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
)  # fmt: skip
#: The folders a citizen sees: URL name → (IMAP name or special use, French title).
BOXES = {"reception": "INBOX", "envoyes": SpecialUse.SENT.value}
BOX_TITLES = {"reception": "Messages reçus", "envoyes": "Messages envoyés"}


class LoginRequired(Exception):
    """No live session: go to the login page."""


class Forbidden(Exception):
    """A POST failed the same-origin or CSRF check."""


class PageNotFound(Exception):
    """Nothing here for this profile (an unknown message, part or box)."""


def french_date(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year} à {moment:%H:%M}"


def french_size(size: int) -> str:
    if size < 1024:
        return f"{size} octets"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} Ko"
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")


@dataclass(frozen=True, slots=True)
class Cookies:
    session: str
    login: str  # the signed double-submit nonce of the login forms


class Webmail:
    def __init__(self, deps: WebmailDeps) -> None:
        self.deps = deps
        self.store = deps.store
        self.config = deps.config
        self.key = load_or_create_key(deps.config.secret_file)
        self.sessions = SessionStore(
            deps.store,
            idle=deps.config.session_idle,
            lifetime=deps.config.session_lifetime,
            clock=deps.clock,
        )
        self.login = Login(
            deps.store,
            deps.config,
            self.sessions,
            deps.relay,
            self.key,
            clock=lambda: deps.clock().timestamp(),
        )
        self.receipts = ReceiptBook(deps.store)
        prefix = "__Host-" if deps.config.secure_cookies else ""
        self.cookies = Cookies(f"{prefix}pli-session", f"{prefix}pli-login")
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["date"] = french_date
        self.templates.filters["size"] = french_size

    # -- sessions and forms ------------------------------------------------------------------

    async def session(self, request: Request, *, state: str = ACTIVE) -> WebSession:
        session = await self.sessions.load(request.cookies.get(self.cookies.session))
        if session is None or session.state != state:
            raise LoginRequired
        if session.acting_for is not None and not await self.store.accounts.may_act_for(
            session.account.id, session.acting_as.id
        ):  # the guardianship ended: back to the holder's own profile (policy P9)
            await self.sessions.set_acting_as(session, session.account)
            session = replace(session, acting_as=session.account)
        return session

    async def pending(self, request: Request) -> WebSession:
        """The login waiting for its code (else LoginRequired: back to the login page)."""
        return await self.session(request, state=CODE)

    async def read_form(self, request: Request) -> FormData:
        """The form within limits (a malformed body is a 400 from Starlette)."""
        if not origin_allowed(
            request.headers.get("origin"), request.headers.get("host"), self.config.public_url
        ):
            raise Forbidden
        # One file more than compose accepts, so that it refuses it with a sentence.
        return await request.form(
            max_files=MAX_UPLOADS + 1, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
        )

    async def form(self, request: Request, session: WebSession) -> FormData:
        """A POST's form, after the Origin and CSRF checks (synchronizer token)."""
        form = await self.read_form(request)
        token = form.get("csrf")
        if not isinstance(token, str) or not same(token, session.csrf_token):
            raise Forbidden
        return form

    def set_session_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            self.cookies.session,
            token,
            httponly=True,
            secure=self.config.secure_cookies,
            samesite="strict",
            path="/",
        )

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(
            self.cookies.session,
            path="/",
            secure=self.config.secure_cookies,
            httponly=True,
            samesite="strict",
        )

    # -- folders -----------------------------------------------------------------------------

    async def folder(self, session: WebSession, box: str) -> Folder:
        wanted = BOXES.get(box)
        if wanted is None:
            raise PageNotFound
        if wanted == "INBOX":
            return await self.store.folders.get(session.acting_as.id, "INBOX")
        for folder in await self.store.folders.all(session.acting_as.id):
            if folder.special_use == wanted:
                return folder
        raise PageNotFound

    async def sent_folder(self, session: WebSession) -> Folder | None:
        try:
            return await self.folder(session, "envoyes")
        except (PageNotFound, NotFound):
            return None

    # -- audit and rendering -----------------------------------------------------------------

    async def audit(
        self, session: WebSession, action: str, request: str, result: str = "ok"
    ) -> None:
        """A record in the acting profile's history, naming the guardian who acted (P9)."""
        await self.store.audit.record(
            session.account.address,
            action,
            mailbox=session.acting_as.address,
            acting_for=session.acting_for,
            request=request,
            result=result,
        )

    def render(
        self,
        name: str,
        context: dict[str, Any],
        *,
        session: WebSession | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        template = self.templates.get_template(name)
        html = template.render(
            session=session,
            csrf=session.csrf_token if session is not None else "",
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=self.headers())

    def headers(self, **options: str) -> dict[str, str]:
        return page_headers(secure=self.config.secure_cookies, **options)

    def redirect(self, url: str) -> RedirectResponse:
        """303 See Other: the POST-redirect-GET of every form."""
        return RedirectResponse(url, status_code=303, headers=self.headers())
