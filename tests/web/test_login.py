"""Logging in over HTTP: password, then the code e-mailed to the personal address (dev outbox);
wrong passwords and codes, lockout, expiry, new codes, logout, time-outs, session fixation, CSRF
of the login forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from plitest.web import (
    FakeClock,
    WebStack,
    csrf_of,
    latest_code,
    login,
    outbox_mails,
    webmail_stack,
)

from pli.mailbox.store.demo import CHILD_INS, PARENT_INS
from pli.mailbox.web.login import (
    BAD_CREDENTIALS,
    CODE_ATTEMPTS_EXHAUSTED,
    CODE_EXPIRED,
    CODE_SENDS_EXHAUSTED,
    NO_CONTACT,
)
from pli.mailbox.web.security import digest
from pli.mailbox.web.sessions import PENDING_LIFETIME

COOKIE = "pli-session"
IDLE = 900.0
LIFETIME = 3600.0


@pytest.fixture
async def stack(tmp_path: Path, database_url: str, clock: FakeClock) -> AsyncIterator[WebStack]:
    sections = {"webmail": {"session_idle": IDLE, "session_lifetime": LIFETIME}}
    async with webmail_stack(tmp_path, database_url, sections=sections, clock=clock) as opened:
        yield opened


@pytest.fixture
async def client(stack: WebStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as opened:
        yield opened


def jeton(html: str) -> str:
    found = re.search(r'name="jeton" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def password_step(
    client: httpx.AsyncClient, identifier: str = PARENT_INS, password: str = "demo-password-1234"
) -> httpx.Response:
    page = await client.get("/connexion")
    return await client.post(
        "/connexion",
        data={"jeton": jeton(page.text), "identifiant": identifier, "mot_de_passe": password},
    )


async def code_step(client: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await client.get("/connexion/code")
    return await client.post("/connexion/code", data={"csrf": csrf_of(page.text), "code": code})


async def test_login_with_the_code_from_the_dev_outbox(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    answer = await password_step(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/connexion/code"
    pending_token = client.cookies[COOKIE]
    [mail] = outbox_mails(stack.outbox)
    assert mail["To"] == "paul.lefebvre@example.org"
    code = latest_code(stack.outbox)
    assert re.fullmatch(r"\d{6}", code)
    page = await client.get("/connexion/code")
    assert "p…e@example.org" in page.text and code not in page.text
    answer = await code_step(client, code)
    assert answer.status_code == 303 and answer.headers["location"] == "/messages"
    assert client.cookies[COOKIE] != pending_token  # a new token once logged in
    page = await client.get("/messages")
    assert page.status_code == 200 and "Messages reçus" in page.text
    history = await stack.store.audit.history(stack.accounts.parent.address)
    assert [r.result for r in history if r.action == "login"][:2] == [
        "ok: password+email-code",
        "password ok: code sent",
    ]
    assert all(code not in r.request + r.result for r in history)


async def test_the_ins_or_the_whole_address_logs_in(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    await login(client, stack.outbox, stack.accounts.parent.address.upper())
    assert (await client.get("/messages")).status_code == 200


@pytest.mark.parametrize(
    ("identifier", "password"),
    [
        (PARENT_INS, "not-the-password"),
        ("999999999999999", "demo-password-1234"),  # nobody
        ("dr.martin@hopital-demo.mssante.fr", "demo-password-1234"),  # not a citizen
        ("", ""),
    ],
)
async def test_bad_credentials_get_one_answer_and_no_code(
    stack: WebStack, client: httpx.AsyncClient, identifier: str, password: str
) -> None:
    answer = await password_step(client, identifier, password)
    assert answer.status_code == 400
    assert escape(BAD_CREDENTIALS) in answer.text
    assert COOKIE not in client.cookies
    assert outbox_mails(stack.outbox) == []


async def test_lockout_after_repeated_failures_then_released(
    stack: WebStack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    limit = stack.smtp.settings.auth.failures_before_lockout
    for _ in range(limit):
        assert (await password_step(client, password="wrong-password-000")).status_code == 400
    answer = await password_step(client)  # the right password, now refused
    assert answer.status_code == 400 and "bloqué" in answer.text
    assert outbox_mails(stack.outbox) == []
    clock.advance(stack.smtp.settings.auth.lockout_duration + 1)
    assert (await password_step(client)).status_code == 303


async def test_wrong_codes_count_and_end_the_login(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    await password_step(client)
    code = latest_code(stack.outbox)
    wrong = "000000" if code != "000000" else "111111"
    answer = await code_step(client, wrong)
    assert answer.status_code == 400 and "Il vous reste 2 essai(s)" in answer.text
    await code_step(client, "abc")
    answer = await code_step(client, wrong)
    assert answer.status_code == 400 and escape(CODE_ATTEMPTS_EXHAUSTED) in answer.text
    assert COOKIE not in client.cookies
    # The right code is now useless: the pending login is gone.
    assert (await client.get("/connexion/code")).headers["location"] == "/connexion?etat=expire"


async def test_expired_code_asks_for_a_new_one_and_the_new_one_works(
    stack: WebStack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await password_step(client)
    old = latest_code(stack.outbox)
    clock.advance(stack.smtp.settings.auth.otp_lifetime)
    answer = await code_step(client, old)
    assert answer.status_code == 400 and escape(CODE_EXPIRED) in answer.text
    page = await client.get("/connexion/code")
    answer = await client.post("/connexion/code/renvoyer", data={"csrf": csrf_of(page.text)})
    assert answer.headers["location"] == "/connexion/code?etat=renvoye"
    assert len(outbox_mails(stack.outbox)) == 2
    new = latest_code(stack.outbox)
    if new != old:
        assert (await code_step(client, old)).status_code == 400  # the old code is replaced
    assert (await code_step(client, new)).status_code == 303


async def test_codes_sent_per_login_are_limited(stack: WebStack, client: httpx.AsyncClient) -> None:
    await password_step(client)
    sends = stack.smtp.settings.webmail.code_sends
    for _ in range(sends - 1):
        page = await client.get("/connexion/code")
        await client.post("/connexion/code/renvoyer", data={"csrf": csrf_of(page.text)})
    page = await client.get("/connexion/code")
    answer = await client.post("/connexion/code/renvoyer", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 400 and escape(CODE_SENDS_EXHAUSTED) in answer.text
    assert len(outbox_mails(stack.outbox)) == sends


async def test_pending_login_expires(
    stack: WebStack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await password_step(client)
    clock.advance(PENDING_LIFETIME)
    assert (await client.get("/connexion/code")).headers["location"] == "/connexion?etat=expire"


async def test_a_citizen_without_contact_address_is_told(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    await stack.store.accounts.set_notification_address(stack.accounts.child.id, None)
    answer = await password_step(client, CHILD_INS)
    assert answer.status_code == 400 and escape(NO_CONTACT) in answer.text


async def test_relay_down_means_no_pending_login(tmp_path: Path, database_url: str) -> None:
    blocked = tmp_path / "outbox"
    async with webmail_stack(tmp_path, database_url) as stack:
        blocked.write_text("a file where the outbox directory should be")
        async with stack.client() as client:
            answer = await password_step(client)
        assert answer.status_code == 400 and escape("n'a pas pu être envoyé") in answer.text
        assert COOKIE not in client.cookies


async def test_idle_and_absolute_timeouts(
    stack: WebStack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await login(client, stack.outbox, PARENT_INS)
    for _ in range(int(LIFETIME // (IDLE / 2))):
        clock.advance(IDLE / 2)
        answer = await client.get("/messages")
        if answer.status_code != 200:
            break
    assert answer.headers["location"] == "/connexion?etat=expire"  # the absolute lifetime
    await login(client, stack.outbox, PARENT_INS)
    clock.advance(IDLE)
    assert (await client.get("/messages")).headers["location"] == "/connexion?etat=expire"


async def test_logout_ends_the_session_for_good(stack: WebStack, client: httpx.AsyncClient) -> None:
    await login(client, stack.outbox, PARENT_INS)
    token = client.cookies[COOKIE]
    page = await client.get("/messages")
    answer = await client.post("/deconnexion", data={"csrf": csrf_of(page.text)})
    assert answer.headers["location"] == "/connexion?etat=deconnecte"
    async with stack.client(cookies={COOKIE: token}) as replay:
        assert (await replay.get("/messages")).status_code == 303
    history = await stack.store.audit.history(stack.accounts.parent.address)
    assert history[0].action == "logout"


def session_cookie_set(answer: httpx.Response) -> str:
    """The session token a response sets."""
    for header in answer.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";")[0]
    raise AssertionError("no session cookie set")


async def test_attack_session_fixation_planted_token_never_becomes_a_session(
    stack: WebStack,
) -> None:
    """An attacker plants a token in the victim's browser before login: after the victim logs
    in, the planted token opens nothing, and neither does the pending token."""
    planted = "attacker-chosen-token"
    async with stack.client() as victim:
        victim.cookies.set(COOKIE, planted, domain="testserver")
        pending = session_cookie_set(await password_step(victim))
        assert pending != planted
        active = session_cookie_set(await code_step(victim, latest_code(stack.outbox)))
        assert active not in (planted, pending)
        assert (await victim.get("/messages")).status_code == 200
    for token in (planted, pending):
        async with stack.client(cookies={COOKIE: token}) as attacker:
            assert (await attacker.get("/messages")).status_code == 303
    assert await stack.webmail.sessions.load(planted) is None
    assert await stack.webmail.sessions.load(active) is not None
    assert digest(active) != active  # the table keeps a digest, never the token


async def test_attack_login_csrf_without_the_signed_token_is_refused(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    """A page elsewhere posting the victim into the attacker's account (login CSRF)."""
    data = {"identifiant": PARENT_INS, "mot_de_passe": "demo-password-1234"}
    assert (await client.post("/connexion", data=data)).status_code == 403
    page = await client.get("/connexion")
    async with stack.client() as other:  # a token minted for another browser's nonce
        other_page = await other.get("/connexion")
    forged = {**data, "jeton": jeton(other_page.text)}
    assert (await client.post("/connexion", data=forged)).status_code == 403
    answer = await client.post(
        "/connexion",
        data={**data, "jeton": jeton(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert outbox_mails(stack.outbox) == []


async def test_cookies_are_httponly_and_strict(stack: WebStack, client: httpx.AsyncClient) -> None:
    page = await client.get("/connexion")
    assert (
        "HttpOnly" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
    )
    answer = await client.post(
        "/connexion",
        data={
            "jeton": jeton(page.text),
            "identifiant": PARENT_INS,
            "mot_de_passe": "demo-password-1234",
        },
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
