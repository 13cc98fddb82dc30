"""The webmail in a real browser (Debian's Chromium, Playwright), over HTTPS, on the real
submission pipeline, document store and filing worker: log in with the e-mailed code, read,
view a PDF, save it to the documents, reply, see the reply refused after [FIN], switch to a
child's profile; XSS payloads never run; every page passes the accessibility check, on a
desktop and a phone screen. Screenshots: test-artifacts/webmail/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from plitest.browser import (
    PHONE,
    LiveWebmail,
    accessibility_problems,
    browser_login,
    chromium,
    live_webmail,
    new_page,
    snapshot,
    wait_for_render,
)
from plitest.filing import PDF, all_settled, eventually
from plitest.web import csrf_of, text_pdf

from pli.mailbox.filing import FilingStatus, filings_for
from pli.mailbox.store.demo import PARENT_INS
from pli.policy.reasons import DECISIONS, Reason

pytestmark = pytest.mark.slow

REPORT = text_pdf(
    "Centre hospitalier de démonstration - Imagerie",
    "Compte rendu d'IRM du genou droit",
    "Conclusion : pas de lésion méniscale.",
)


@pytest.fixture
async def live(tmp_path: Path, database_url: str) -> AsyncIterator[LiveWebmail]:
    async with live_webmail(tmp_path, database_url) as opened:
        yield opened
    assert opened.dialogs == [], "a script ran in the page"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as opened:
        yield opened


async def check_page(page: Page, name: str) -> None:
    """Screenshot, then the accessibility check."""
    await snapshot(page, name)
    assert await accessibility_problems(page) == [], name


async def test_login_read_view_pdf_save_to_documents_and_reply(
    live: LiveWebmail, browser: Browser
) -> None:
    stack = live.stack
    await stack.write_to_citizen(
        stack.accounts.doctor,
        stack.accounts.parent,
        subject="Compte rendu de votre IRM",
        body="Bonjour,\nvoici le compte rendu de votre IRM.\nDr Martin\n",
        attachments=[("compte-rendu-irm.pdf", "application/pdf", REPORT)],
    )
    page = await new_page(browser, live)
    await page.goto(f"{live.url}/connexion")
    await check_page(page, "01-connexion")
    await browser_login(page, live)
    cookies = await page.context.cookies()
    [session] = [cookie for cookie in cookies if cookie["name"] == "__Host-pli-session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    await check_page(page, "02-messages")
    await expect(page.get_by_role("heading", name="Dr Claire Martin")).to_be_visible()

    await page.get_by_role("link", name=re.compile("Compte rendu de votre IRM")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Compte rendu de votre IRM")
    await expect(page.get_by_text("voici le compte rendu de votre IRM")).to_be_visible()
    await check_page(page, "03-message")

    async with page.expect_response(re.compile(r".*/pieces/2/contenu$")) as shown:
        await page.get_by_role("link", name=re.compile("^Voir")).click()
    response = await shown.value
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    await expect(page.get_by_role("heading", level=1)).to_have_text("compte-rendu-irm.pdf")
    await wait_for_render(page.locator("iframe.viewer"))
    await check_page(page, "04-pdf")
    await page.get_by_role("link", name=re.compile("Retour au message")).click()

    await page.get_by_role("button", name=re.compile("Enregistrer dans mes documents")).click()
    await expect(page.get_by_role("status").first).to_contain_text("prise en compte")
    await eventually(lambda: all_settled(stack.store), [live.worker])
    inbox = await stack.store.folders.get(stack.accounts.parent.id, "INBOX")
    [filing] = await filings_for(stack.store, stack.accounts.parent, inbox.id, 3)
    assert filing.status is FilingStatus.FILED, filing
    await page.reload()
    await expect(page.get_by_text(filing.text)).to_be_visible()
    await check_page(page, "05-enregistre")

    await page.get_by_label(re.compile("Votre réponse")).fill("Merci docteur, bien reçu.")
    await page.get_by_role("button", name="Envoyer la réponse").click()
    await expect(page.get_by_role("status").first).to_have_text("Votre message a été envoyé.")
    await check_page(page, "06-reponse-envoyee")
    received = await stack.inbox_of(stack.accounts.doctor)
    assert b"Re: Compte rendu de votre IRM" in received[-1]
    await page.get_by_role("link", name="Messages envoyés").click()
    await expect(page.get_by_text("Re: Compte rendu de votre IRM")).to_be_visible()
    await check_page(page, "07-envoyes")
    await page.get_by_role("link", name="Historique").click()
    await expect(page.get_by_text("Envoi d'un message").first).to_be_visible()
    await check_page(page, "08-historique")
    await page.get_by_role("button", name="Se déconnecter").click()
    await expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()


async def test_reply_refused_after_fin(live: LiveWebmail, browser: Browser) -> None:
    stack = live.stack
    uid = await stack.write_to_citizen(
        stack.accounts.doctor, stack.accounts.parent, subject="[FIN]", body="Fin du suivi.\n"
    )
    page = await new_page(browser, live)
    await browser_login(page, live)
    await page.goto(f"{live.url}/messages/reception/{uid}")
    await expect(page.get_by_text(DECISIONS[Reason.THREAD_CLOSED].text)).to_be_visible()
    await expect(page.get_by_role("button", name="Envoyer la réponse")).to_have_count(0)
    await check_page(page, "10-fin-refus")
    await page.goto(f"{live.url}/ecrire")
    await expect(page.get_by_text(DECISIONS[Reason.THREAD_CLOSED].text)).to_be_visible()
    await check_page(page, "11-ecrire")


async def test_guardian_switches_to_a_child_profile(live: LiveWebmail, browser: Browser) -> None:
    stack = live.stack
    await stack.write_to_citizen(
        stack.accounts.doctor, stack.accounts.child, subject="Rappel de vaccination de Léa"
    )
    page = await new_page(browser, live)
    await browser_login(page, live)
    await page.get_by_role("link", name="Changer de profil").click()
    await check_page(page, "20-profils")
    await page.get_by_label(re.compile("Léa Lefebvre")).check()
    await page.get_by_role("button", name="Afficher ce profil").click()
    await expect(page.get_by_text("Profil affiché : Léa Lefebvre")).to_be_visible()
    await expect(page.get_by_text("Rappel de vaccination de Léa")).to_be_visible()
    await check_page(page, "21-profil-enfant")
    history = await stack.store.audit.history(stack.accounts.child.address)
    assert history[0].action == "switch-profile"
    assert history[0].actor == stack.accounts.parent.address
    assert history[0].acting_for == stack.accounts.child.address


async def test_pharmacy_and_phone_screen(live: LiveWebmail, browser: Browser) -> None:
    page = await new_page(browser, live, viewport=PHONE)
    await browser_login(page, live)
    await check_page(page, "30-telephone-messages")
    await page.goto(f"{live.url}/messages/reception/1")
    await check_page(page, "31-telephone-message")
    await page.goto(f"{live.url}/ecrire?q=centrale")
    await page.get_by_role("link", name=re.compile("Écrire à Pharmacie Centrale")).click()
    await page.get_by_label("Objet").fill("Renouvellement")
    await page.get_by_label("Message").fill("Bonjour, mon ordonnance est-elle prête ?")
    await check_page(page, "32-telephone-pharmacie")
    await page.get_by_role("button", name="Envoyer").click()
    await expect(page.get_by_text("Renouvellement")).to_be_visible()


async def test_keyboard_reaches_the_content_through_the_skip_link(
    live: LiveWebmail, browser: Browser
) -> None:
    page = await new_page(browser, live)
    await page.goto(f"{live.url}/connexion")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "identifiant"
    await page.keyboard.type(PARENT_INS)
    await page.keyboard.press("Tab")
    await page.keyboard.type("demo-password-1234")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/connexion/code$"))


async def test_attack_xss_payloads_never_run(live: LiveWebmail, browser: Browser) -> None:
    stack = live.stack
    payload = "<script>alert('sujet')</script><img src=x onerror=alert('img')>"
    uid = await stack.write_to_citizen(
        stack.accounts.doctor,
        stack.accounts.parent,
        subject=f"Analyse {payload}",
        body=f"Texte {payload}\n",
        attachments=[(f"{payload}.pdf", "application/pdf", PDF)],
    )
    html = (
        "<p>Bonjour</p><script>alert('html')</script><img src=x onerror=\"alert('onerror')\">"
        "<svg onload=\"alert('svg')\"></svg><a href=\"javascript:alert('lien')\">lien</a>"
        "<iframe srcdoc=\"<script>alert('srcdoc')</script>\"></iframe>"
        "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>"
    )
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Dr Claire Martin <dr.martin@hopital-demo.mssante.fr>"
    message["To"] = stack.accounts.parent.address
    message["Subject"] = "Lettre HTML"
    message.set_content(html, subtype="html")
    await stack.send_as(stack.accounts.doctor, stack.accounts.parent, message.as_bytes())
    page = await new_page(browser, live)
    await browser_login(page, live)
    await check_page(page, "40-xss-liste")
    await page.goto(f"{live.url}/messages/reception/{uid}")
    await check_page(page, "41-xss-message")
    await page.goto(f"{live.url}/messages/reception/{uid}/pieces/2/voir")
    await page.goto(f"{live.url}/messages/reception/{uid + 1}")
    frame = page.frame_locator("iframe.body")
    await expect(frame.get_by_text("Bonjour")).to_be_visible()
    await page.get_by_title("Contenu du message").hover()
    await check_page(page, "42-xss-html")
    await page.goto(f"{live.url}/messages/reception/{uid + 1}/corps")  # opened on its own
    assert live.dialogs == []


async def test_attack_csrf_from_another_site_is_refused(
    live: LiveWebmail, browser: Browser
) -> None:
    """A page on another origin posts a reply form to the webmail with the victim's session:
    the SameSite=Strict cookie is not sent, and the token is missing: nothing is sent."""
    stack = live.stack
    page = await new_page(browser, live)
    await browser_login(page, live)
    before = len(await stack.inbox_of(stack.accounts.doctor))
    token = csrf_of(await page.content())
    attacker = await page.context.new_page()
    await attacker.set_content(
        f'<form method="post" action="{live.url}/messages/reception/1/repondre">'
        f'<input name="csrf" value="{token}"><input name="corps" value="forged">'
        '<button id="go">go</button></form>'
    )
    await attacker.click("#go")
    await attacker.wait_for_load_state()
    assert "Votre message a été envoyé" not in await attacker.content()
    assert len(await stack.inbox_of(stack.accounts.doctor)) == before


async def test_the_accessibility_check_finds_what_it_looks_for(
    live: LiveWebmail, browser: Browser
) -> None:
    """The check is not a rubber stamp: a page with each defect gets each finding."""
    page = await new_page(browser, live)
    await page.set_content(
        '<html><head><title>x</title></head><body style="width:2000px">'
        '<h2>Niveau deux d\'abord</h2><h4>saut</h4><input name="sans-label">'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button>'
        '<p style="color:#999;background:#fff">gris clair</p><iframe></iframe></body></html>'
    )
    problems = "\n".join(await accessibility_problems(page))
    for finding in (
        "page language",
        "field without label: sans-label",
        "image without alt",
        "frame without title",
        "control without name",
        "not exactly one h1",
        "first heading is not h1",
        "heading level skipped: h4",
        "no main landmark",
        "no skip link",
        "contrast 2.85 < 4.5: gris clair",
        "horizontal scrolling",
    ):
        assert finding in problems, finding
