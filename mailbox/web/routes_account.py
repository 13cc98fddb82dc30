"""Profile pages: the profiles a guardian manages (policy P9: their children, a relative) and the
switch between them, and the activity history of the profile shown.

Switching checks ``may_act_for`` at every request (a guardianship removed meanwhile ends the
access: the session's profile is then refused and reset to the holder's own).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pli.mailbox.store import Account

from . import history
from .pages import Webmail
from .routes_login import web
from .sessions import WebSession

router = APIRouter()

RELATIONSHIPS = {"parent": "Enfant", "caregiver": "Proche aidé"}


async def profiles(webmail: Webmail, session: WebSession) -> list[tuple[Account, str]]:
    """The holder's own profile, then the wards (account, French relationship)."""
    found = [(session.account, "Mon profil")]
    for guardian in await webmail.store.accounts.wards(session.account.id):
        found.append((guardian.account, RELATIONSHIPS.get(guardian.relationship, "Proche")))
    return found


@router.get("/profils")
async def show_profiles(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    return webmail.render(
        "profiles.html",
        {"title": "Changer de profil", "profiles": await profiles(webmail, session)},
        session=session,
    )


@router.post("/profils")
async def switch_profile(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    form = await webmail.form(request, session)
    wanted = str(form.get("profil") or "")
    choices = {str(account.id): account for account, _ in await profiles(webmail, session)}
    target = choices.get(wanted)
    if target is None or not await webmail.store.accounts.may_act_for(
        session.account.id, target.id
    ):
        await webmail.store.audit.record(
            session.account.address,
            "switch-profile",
            mailbox=session.account.address,
            request=f"profile={wanted[:20]}",
            result="refused: not-a-ward",
        )
        return webmail.redirect("/profils")
    await webmail.sessions.set_acting_as(session, target)
    await webmail.store.audit.record(
        session.account.address,
        "switch-profile",
        mailbox=target.address,
        acting_for=target.address if target.id != session.account.id else None,
        request="webmail",
        result="ok",
    )
    return webmail.redirect("/messages")


@router.get("/historique")
async def show_history(
    request: Request, avant: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    mailbox = session.acting_as
    records = await webmail.store.audit.history(
        mailbox.address, limit=history.HISTORY_PAGE + 1, before_id=avant
    )
    more = len(records) > history.HISTORY_PAGE
    records = records[: history.HISTORY_PAGE]
    names = await webmail.store.directory.display_names(history.addresses_named(records))
    accounts = {session.account.address: session.account, mailbox.address: mailbox}
    for address, account in accounts.items():
        names.setdefault(address, account.display_name)
    return webmail.render(
        "history.html",
        {
            "title": "Historique d'activité",
            "lines": history.lines(records, session.account, mailbox, names),
            "next_before": records[-1].id if more and records else None,
        },
        session=session,
    )
