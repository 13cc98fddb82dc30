"""Small pieces: the server key, the same-origin rule, names shown for senders, the activity
history's French lines, session bookkeeping (touch interval, purge), display helpers."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from plitest.web import FakeClock

from pli.mailbox.store import Account, AccountKind, AuditRecord, Store
from pli.mailbox.store.demo import DemoAccounts
from pli.mailbox.web import history
from pli.mailbox.web.correspondents import fallback_name, presentable
from pli.mailbox.web.login import mask_address
from pli.mailbox.web.pages import french_date, french_size
from pli.mailbox.web.security import KEY_BYTES, load_or_create_key, origin_allowed
from pli.mailbox.web.sessions import ACTIVE, CODE, PENDING_LIFETIME, TOUCH_INTERVAL, SessionStore


def test_the_server_key_is_created_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "webmail" / "secret.key"
    first = load_or_create_key(path)
    assert len(first) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_a_damaged_key_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="32-byte key"):
        load_or_create_key(path)
    assert path.read_bytes() == b"short"


def test_concurrent_creation_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    pid = os.fork()
    if pid == 0:  # the other process
        load_or_create_key(path)
        os._exit(0)
    mine = load_or_create_key(path)
    os.waitpid(pid, 0)
    assert load_or_create_key(path) == mine == path.read_bytes()


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8080", True),  # no Origin: a non-browser client (CSRF token applies)
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("https://messagerie.example.fr", "10.0.0.5:8080", True),  # the public URL (a proxy)
        ("https://evil.example", "127.0.0.1:8080", False),
        ("null", "127.0.0.1:8080", False),  # sandboxed or opaque origins
        ("http://127.0.0.1:8081", "127.0.0.1:8080", False),
        ("ftp://127.0.0.1:8080", "127.0.0.1:8080", False),
        ("http://127.0.0.1:8080", None, False),
    ],
)
def test_same_origin_rule(origin: str | None, host: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, host, "https://messagerie.example.fr") is allowed


@pytest.mark.parametrize(
    ("name", "address", "shown"),
    [
        ("Dr Claire Martin", "dr.martin@h.mssante.fr", "Dr Claire Martin"),
        ("  Dr   Martin ", "x@h.mssante.fr", "Dr Martin"),
        ("", "x@clinique.mssante.fr", "Correspondant de santé (clinique.mssante.fr)"),
        ("x@clinique.mssante.fr", "x@clinique.mssante.fr", fallback_name("x@clinique.mssante.fr")),
    ],
)
def test_names_shown_are_never_addresses(name: str, address: str, shown: str) -> None:
    assert presentable(name, address) == shown


def test_masked_contact_address() -> None:
    assert mask_address("paul.lefebvre@example.org") == "p…e@example.org"
    assert mask_address("ab@example.org") == "a…@example.org"


def test_french_dates_and_sizes() -> None:
    assert french_date(datetime(2026, 8, 3, 9, 5, tzinfo=UTC)) == "3 août 2026 à 09:05"
    assert french_date(None) == ""
    assert [french_size(n) for n in (12, 2048, 3 * 1024 * 1024 // 2)] == [
        "12 octets",
        "2 Ko",
        "1,5 Mo",
    ]


def _record(
    record_id: int, actor: str, action: str, request: str = "", result: str = "ok"
) -> AuditRecord:
    return AuditRecord(
        record_id, datetime(2026, 3, 2, tzinfo=UTC), actor, None, "m@p", action, request, result,
        "0", "1",
    )  # fmt: skip


def _account(account_id: int, address: str, name: str) -> Account:
    return Account(account_id, address, AccountKind.CITIZEN, name)


def test_history_lines_say_who_did_what_in_french() -> None:
    viewer = _account(1, "parent@p", "Paul")
    ward = _account(2, "child@p", "Léa")
    records = [
        _record(6, "parent@p", "webmail-read", "uid=3 from <dr@h.fr>"),
        _record(5, "child@p", "login", result="refused: bad-password"),
        _record(4, "dr@h.fr", "submit", "from <dr@h.fr>", "delivered"),
        _record(3, "pli", "filing-filed", result="filed doc-1"),
        _record(2, "x@other.fr", "imap-select", "SELECT INBOX"),
        _record(1, "parent@p", "brand-new-action"),
        _record(0, "parent@p", "login", "webmail from 198.51.100.7", "password ok: code sent"),
    ]
    names = {"dr@h.fr": "Dr Martin"}
    assert history.addresses_named(records) == ["child@p", "dr@h.fr", "parent@p", "x@other.fr"]
    lines = history.lines(records, viewer, ward, names)
    assert [(line.who, line.what, line.correspondent, line.ok) for line in lines] == [
        ("Vous", "Lecture d'un message", "Dr Martin", True),
        ("Léa", "Tentative de connexion refusée", None, False),
        ("Dr Martin", "Réception d'un message", "Dr Martin", True),
        ("Le service de messagerie", "Pièce jointe enregistrée dans vos documents", None, True),
        ("Un correspondant", "Accès par un logiciel de messagerie", None, True),
        ("Vous", "Autre opération (brand-new-action)", None, True),
        ("Vous", "Code de connexion envoyé par e-mail", None, True),
    ]


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        ("ok: password+email-code", True),
        ("delivered", True),
        ("queued citizen-reply", True),
        ("refused: thread-closed", False),
        ("failed: store-refused", False),
        ("sender=a kind=citizen action=reject reason=thread-closed", False),
        ("action=defer reason=facts-unavailable", False),
    ],
)
def test_history_tells_failures(result: str, ok: bool) -> None:
    assert history.succeeded(result) is ok


async def test_sessions_touch_at_most_once_per_interval_and_purge(
    store: Store, accounts: DemoAccounts, clock: FakeClock
) -> None:
    sessions = SessionStore(store, idle=900, lifetime=3600, clock=clock)
    token = await sessions.create(accounts.parent, ACTIVE)
    pending = await sessions.create(accounts.child, CODE)
    started = clock.now
    clock.advance(TOUCH_INTERVAL - 1)
    session = await sessions.load(token)
    assert session is not None and session.last_seen_at == started  # not written yet
    clock.advance(1)
    await sessions.load(token)
    session = await sessions.load(token)
    assert session is not None and session.last_seen_at == clock.now
    assert await sessions.purge_expired() == 0
    clock.advance(PENDING_LIFETIME)
    assert await sessions.purge_expired() == 2  # the pending one, and the idle one
    assert await sessions.load(token) is None and await sessions.load(pending) is None


async def test_a_disabled_account_loses_its_sessions(
    store: Store, accounts: DemoAccounts, clock: FakeClock
) -> None:
    sessions = SessionStore(store, idle=900, lifetime=3600, clock=clock)
    token = await sessions.create(accounts.parent, ACTIVE)
    await store.accounts.set_disabled(accounts.parent.id, True)
    assert await sessions.load(token) is None
    assert await sessions.load("x" * 500) is None  # an absurd cookie is no session
