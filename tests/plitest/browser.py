"""A real browser on the webmail: Debian's Chromium driven by Playwright (never a downloaded
browser), the webmail served over HTTPS on 127.0.0.1 with the test PKI's server certificate,
the real submission pipeline, the reference document store and the filing worker.

    async with live_webmail(tmp_path, database_url) as live, chromium() as browser:
        page = await new_page(browser)
        await browser_login(page, live)
        await snapshot(page, "liste")                  # test-artifacts/webmail/liste.png

Screenshots go to ``test-artifacts/webmail/`` (gitignored; CI keeps them). :data:`A11Y_CHECK`
is the automated accessibility check run on every page the tests visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Locator, Page, async_playwright

from pli.certs.tls import server_context
from pli.config.schema import Listener
from pli.mailbox.filing import FilingWorker
from pli.mailbox.store.demo import DEMO_PASSWORD, PARENT_INS
from pli.mailbox.web.documents import StoreFiling
from pli.mailgateway.asgi import AsgiService
from plitest.docstore import docstore_config, running_docstore
from plitest.filing import filing_settings
from plitest.web import WebStack, latest_code, webmail_stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webmail"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]
PHONE = {"width": 375, "height": 740}


@dataclass
class LiveWebmail:
    stack: WebStack
    url: str
    worker: FilingWorker
    dialogs: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def live_webmail(
    tmp_path: Path, database_url: str, **sections: dict[str, Any]
) -> AsyncIterator[LiveWebmail]:
    """The webmail over HTTPS (Secure ``__Host-`` cookies), filing into a real document store."""
    web_sections = {"webmail": {"secure_cookies": True}, **sections}
    async with (
        docstore_config(tmp_path / "docstore") as config,
        running_docstore(config) as docstore_url,
        webmail_stack(
            tmp_path / "pli", database_url, sections=web_sections, filing_for=StoreFiling
        ) as stack,
    ):
        worker = FilingWorker(stack.store, filing_settings(docstore_url))
        await worker.start()
        listener = Listener(protocol="webmail", port=0, tls="implicit")
        service = AsgiService(
            "webmail", listener, stack.app, ssl_context=server_context(stack.smtp.settings.tls)
        )
        await service.start()
        try:
            host, port = service.addresses()[0]
            yield LiveWebmail(stack, f"https://{host}:{port}", worker)
        finally:
            await service.stop(5)
            await worker.stop(5)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, live: LiveWebmail, **options: Any) -> Page:
    """A fresh browser context (no cookies) trusting the test PKI's certificate; every
    JavaScript dialog (``alert``: an XSS that ran) is recorded in ``live.dialogs``."""
    context = await browser.new_context(ignore_https_errors=True, locale="fr-FR", **options)
    page = await context.new_page()

    async def on_dialog(dialog: Any) -> None:
        live.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


async def snapshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def wait_for_render(locator: Locator, within: float = 10.0) -> bool:
    """Wait until what ``locator`` shows has changed and then stays the same (a PDF drawn by the
    browser's viewer, which no DOM event announces); False if it did not within ``within``."""
    first = previous = await locator.screenshot()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # polling the pixels: the viewer draws out of the page's reach
        current = await locator.screenshot()
        if current != first and current == previous:
            return True
        previous = current
    return False


async def browser_login(page: Page, live: LiveWebmail, identifier: str = PARENT_INS) -> None:
    await page.goto(f"{live.url}/connexion")
    await page.get_by_label("Identifiant").fill(identifier)
    await page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await page.wait_for_url(re.compile(r".*/connexion/code$"))
    await page.get_by_label("Code reçu par e-mail").fill(latest_code(live.stack.outbox))
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(re.compile(r".*/messages$"))


#: Run in the page (through the DevTools protocol: the pages' CSP forbids every script of
#: theirs): the problems found, as short sentences. WCAG 2.1 AA: 1.1.1 (alternatives),
#: 1.3.1/2.4.6/3.3.2 (headings, labels), 1.4.3 (contrast 4.5:1, 3:1 for large text), 1.4.10
#: (reflow: no horizontal scrolling), 3.1.1 (page language), 4.1.2 (names of controls).
A11Y_CHECK = """() => {
  const problems = [];
  if (document.documentElement.lang !== 'fr') problems.push('page language is not fr');
  if (!document.title.trim()) problems.push('page without title');
  for (const el of document.querySelectorAll('input:not([type=hidden]), textarea, select')) {
    const label = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    if (!label && !el.getAttribute('aria-label') && !el.closest('label'))
      problems.push('field without label: ' + (el.name || el.type));
  }
  for (const img of document.querySelectorAll('img'))
    if (!img.hasAttribute('alt')) problems.push('image without alt: ' + img.src);
  for (const frame of document.querySelectorAll('iframe'))
    if (!frame.title) problems.push('frame without title');
  for (const control of document.querySelectorAll('a, button'))
    if (!control.textContent.trim() && !control.getAttribute('aria-label'))
      problems.push('control without name');
  const levels = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]);
  if (levels.filter(level => level === 1).length !== 1) problems.push('not exactly one h1');
  if (levels[0] !== 1) problems.push('first heading is not h1');
  for (let i = 1; i < levels.length; i++)
    if (levels[i] > levels[i - 1] + 1) problems.push('heading level skipped: h' + levels[i]);
  const main = document.querySelector('main');
  if (!main) problems.push('no main landmark');
  const skip = document.querySelector('a.skip');
  if (!skip || skip.getAttribute('href') !== '#' + (main && main.id)) problems.push('no skip link');
  const channel = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  const luminance = rgb =>
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]);
  const parse = text => (text.match(/[\\d.]+/g) || []).map(Number);
  const background = el => {
    for (let node = el; node; node = node.parentElement) {
      const value = parse(getComputedStyle(node).backgroundColor);
      if (value.length === 3 || (value.length === 4 && value[3] > 0)) return value;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll('body *')) {
    const ownText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.clip === 'rect(0px, 0px, 0px, 0px)') continue;
    const fore = luminance(parse(style.color)), back = luminance(background(el));
    const ratio = (Math.max(fore, back) + 0.05) / (Math.min(fore, back) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed)
      problems.push(
        'contrast ' + ratio.toFixed(2) + ' < ' + needed + ': ' + el.textContent.trim().slice(0, 40)
      );
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    problems.push('horizontal scrolling at ' + window.innerWidth + 'px');
  return problems;
}"""


async def accessibility_problems(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(A11Y_CHECK)
    return found
