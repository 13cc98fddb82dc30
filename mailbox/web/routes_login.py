"""Login pages: identifier and password, the e-mailed one-time code, a new code, logout.

The login forms exist before any session: their CSRF protection is the signed double-submit
token of :mod:`.security` (a nonce cookie and its HMAC in the form). The code form belongs to the
pending session and carries its synchronizer token. Each step gets a new session token
(:mod:`.sessions`: session fixation).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .login import LoginRefused, mask_address
from .pages import Forbidden, LoginRequired, Webmail
from .security import login_form_token, login_form_token_valid, new_token
from .sessions import PENDING_LIFETIME, WebSession

router = APIRouter()

NOTICES = {
    "deconnecte": "Vous êtes déconnecté.",
    "expire": "Votre session a expiré : reconnectez-vous.",
    "renvoye": "Un nouveau code vient de vous être envoyé.",
}


def web(request: Request) -> Webmail:
    found: Webmail = request.app.state.webmail
    return found


def remote(request: Request) -> str:
    return request.client.host if request.client else ""


def login_page(
    webmail: Webmail, *, error: str = "", identifier: str = "", notice: str = "", status: int = 200
) -> Response:
    nonce = new_token()
    response = webmail.render(
        "login.html",
        {
            "title": "Connexion",
            "form_token": login_form_token(webmail.key, nonce),
            "error": error,
            "notice": notice,
            "identifier": identifier,
        },
        status=status,
    )
    response.set_cookie(
        webmail.cookies.login,
        nonce,
        max_age=int(PENDING_LIFETIME),
        httponly=True,
        secure=webmail.config.secure_cookies,
        samesite="strict",
        path="/",
    )
    return response


@router.get("/connexion")
async def show_login(request: Request, etat: str = "") -> Response:
    webmail = web(request)
    try:
        await webmail.session(request)
    except LoginRequired:
        return login_page(webmail, notice=NOTICES.get(etat, ""))
    return webmail.redirect("/messages")


@router.post("/connexion")
async def submit_login(request: Request) -> Response:
    webmail = web(request)
    form = await webmail.read_form(request)
    token = form.get("jeton")
    if not login_form_token_valid(
        webmail.key,
        request.cookies.get(webmail.cookies.login),
        token if isinstance(token, str) else None,
    ):
        raise Forbidden
    identifier = str(form.get("identifiant") or "")
    password = str(form.get("mot_de_passe") or "")
    old = await webmail.sessions.load(request.cookies.get(webmail.cookies.session))
    if old is not None:  # a new login ends whatever session this browser had
        await webmail.sessions.destroy(old.token_hash)
    try:
        sent = await webmail.login.check_password(identifier, password, remote=remote(request))
    except LoginRefused as refused:
        return login_page(webmail, error=refused.text, identifier=identifier[:320], status=400)
    response = webmail.redirect("/connexion/code")
    webmail.set_session_cookie(response, sent.token)
    response.delete_cookie(webmail.cookies.login, path="/")
    return response


@router.get("/connexion/code")
async def show_code(request: Request, etat: str = "") -> Response:
    webmail = web(request)
    session = await webmail.pending(request)
    return code_page(webmail, session, notice=NOTICES.get(etat, ""))


def code_page(
    webmail: Webmail, session: WebSession, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    address = session.account.notification_address or ""
    return webmail.render(
        "code.html",
        {
            "title": "Code de connexion",
            "masked_address": mask_address(address) if address else "",
            "digits": webmail.config.code_digits,
            "minutes": max(1, round(webmail.config.code_lifetime / 60)),
            "error": error,
            "notice": notice,
        },
        session=session,
        status=status,
    )


@router.post("/connexion/code")
async def submit_code(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.pending(request)
    form = await webmail.form(request, session)
    try:
        token = await webmail.login.check_code(
            session, str(form.get("code") or ""), remote=remote(request)
        )
    except LoginRefused as refused:
        if refused.restart:
            response = login_page(webmail, error=refused.text, status=400)
            webmail.clear_session_cookie(response)
            return response
        return code_page(webmail, session, error=refused.text, status=400)
    response = webmail.redirect("/messages")
    webmail.set_session_cookie(response, token)
    return response


@router.post("/connexion/code/renvoyer")
async def resend_code(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.pending(request)
    await webmail.form(request, session)
    try:
        await webmail.login.resend(session, remote=remote(request))
    except LoginRefused as refused:
        response = login_page(webmail, error=refused.text, status=400)
        webmail.clear_session_cookie(response)
        return response
    return webmail.redirect("/connexion/code?etat=renvoye")


@router.post("/deconnexion")
async def logout(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    await webmail.form(request, session)
    await webmail.sessions.destroy(session.token_hash)
    await webmail.store.audit.record(
        session.account.address,
        "logout",
        mailbox=session.account.address,
        request=f"webmail from {remote(request)}",
        result="ok",
    )
    response = webmail.redirect("/connexion?etat=deconnecte")
    webmail.clear_session_cookie(response)
    return response
