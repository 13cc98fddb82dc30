"""What the worker sends and how it reads answers, over real HTTP against a scripted service
(the answers the reference store does not give on demand): Retry-After honoured on 503 and 429,
passing failures kept pending with the schedule's delays (never given up), configuration errors
(401, 404) kept pending, permanent refusals failed at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime

import pytest
from plitest.docstore import CITIZEN, TEST_TOKEN
from plitest.filing import FakeClock, ScriptedStore, citizen_message, filing_settings, serving

from pli.mailbox.filing import (
    FilingState,
    FilingStatus,
    FilingWorker,
    filings_for,
    request_filing,
)
from pli.mailbox.store import Account, Store

FILED = (201, {}, {"id": "0b3a1a9e-6d0a-4c55-9a38-0d8b3f5b2a11"})
UNAVAILABLE = (503, {"Retry-After": "7"}, {"reason": "store-unavailable", "detail": "busy"})


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedStore, str]]:
    service = ScriptedStore([FILED])
    async with serving(service.app()) as url:
        yield service, url


Made = tuple[Account, int, int]


async def one_attempt(store: Store, url: str, clock: FakeClock, **filing: object) -> None:
    worker = FilingWorker(store, filing_settings(url, **filing), clock=clock)
    try:
        await worker.run_due()
    finally:
        await worker.client.close()


async def requested(store: Store, clock: FakeClock) -> Made:
    account, folder, uid = await citizen_message(store, message_id="<m1@hopital-demo.mssante.fr>")
    await request_filing(store, account, folder, uid, "2", now=clock())
    return account, folder, uid


async def state_of(store: Store, made: Made) -> FilingState:
    account, folder, uid = made
    [state] = await filings_for(store, account, folder, uid)
    return state


async def test_what_is_sent_names_the_citizen_the_actor_the_key_and_the_content(
    store: Store, scripted: tuple[ScriptedStore, str]
) -> None:
    service, url = scripted
    clock = FakeClock()
    made = await requested(store, clock)
    await one_attempt(store, url, clock)
    [sent] = service.received
    assert sent.path == f"/v1/citizens/{CITIZEN}/documents"
    assert sent.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert (sent.headers["pli-actor"], sent.headers["pli-actor-id"]) == ("citizen-request", CITIZEN)
    assert sent.headers["idempotency-key"].startswith("pli:m1@hopital-demo.mssante.fr#2@")
    assert sent.fields["source_message_id"] == "m1@hopital-demo.mssante.fr"
    assert sent.fields["source_part"] == "2"
    assert sent.fields["title"] == "compte-rendu.pdf"
    assert sent.fields["mime_type"] == "application/pdf"
    assert len(sent.fields["sha256"]) == 64
    assert sent.content.startswith(b"%PDF-")
    assert (await state_of(store, made)).status is FilingStatus.FILED


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (UNAVAILABLE, 7.0),
        ((429, {"Retry-After": "120"}, {"reason": "slow-down", "detail": ""}), 120.0),
        ((503, {"Retry-After": "86400"}, {"reason": "store-unavailable", "detail": ""}), 3600.0),
        ((503, {}, {"reason": "store-unavailable", "detail": ""}), 30.0),
        ((500, {"Retry-After": "7"}, {"reason": "internal-error", "detail": ""}), 30.0),
        ((502, {}, "<html>bad gateway</html>"), 30.0),
    ],
)
async def test_a_busy_store_is_retried_after_its_retry_after_or_the_schedule(
    store: Store,
    scripted: tuple[ScriptedStore, str],
    answer: tuple[int, dict[str, str], object],
    wait: float,
) -> None:
    service, url = scripted
    service.script = [answer]
    clock = FakeClock()
    made = await requested(store, clock)
    await one_attempt(store, url, clock, retry_schedule=[30, 60])
    state = await state_of(store, made)
    assert state.status is FilingStatus.PENDING
    assert state.next_attempt_at == clock() + timedelta(seconds=wait)
    assert state.last_error.startswith(str(answer[0]))


async def test_an_http_date_retry_after_is_honoured(
    store: Store, scripted: tuple[ScriptedStore, str]
) -> None:
    service, url = scripted
    clock = FakeClock()
    when = (clock() + timedelta(seconds=90)).replace(microsecond=0)
    service.script = [(503, {"Retry-After": format_datetime(when, usegmt=True)}, {})]
    made = await requested(store, clock)
    await one_attempt(store, url, clock)
    assert (await state_of(store, made)).next_attempt_at == when


async def test_passing_failures_follow_the_schedule_then_repeat_its_last_delay_forever(
    store: Store, scripted: tuple[ScriptedStore, str]
) -> None:
    service, url = scripted
    service.script = [(503, {}, {})] * 5 + [FILED]
    clock = FakeClock()
    made = await requested(store, clock)
    delays = []
    for _ in range(5):
        before = clock()
        await one_attempt(store, url, clock, retry_schedule=[10, 20, 40])
        state = await state_of(store, made)
        assert state.status is FilingStatus.PENDING
        assert state.next_attempt_at is not None
        delays.append((state.next_attempt_at - before).total_seconds())
        clock.advance(delays[-1])
    assert delays == [10, 20, 40, 40, 40]
    await one_attempt(store, url, clock)
    state = await state_of(store, made)
    assert (state.status, state.attempts) == (FilingStatus.FILED, 6)


@pytest.mark.parametrize("status", [401, 404, 405, 408, 425])
async def test_answers_meaning_our_side_is_misconfigured_or_slow_keep_the_filing_pending(
    store: Store, scripted: tuple[ScriptedStore, str], status: int
) -> None:
    service, url = scripted
    service.script = [(status, {}, {"reason": "x", "detail": ""})]
    clock = FakeClock()
    made = await requested(store, clock)
    await one_attempt(store, url, clock)
    assert (await state_of(store, made)).status is FilingStatus.PENDING


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "bad-request"),
        (403, "forbidden"),
        (409, "idempotency-key-reused"),
        (413, "document-too-large"),
        (415, "unsupported-type"),
        (422, "invalid-request"),
        (418, "store-refused"),
    ],
)
async def test_permanent_refusals_fail_at_once_with_the_store_reason(
    store: Store, scripted: tuple[ScriptedStore, str], status: int, reason: str
) -> None:
    service, url = scripted
    body = {"reason": reason, "detail": "why"} if reason != "store-refused" else "teapot"
    service.script = [(status, {}, body)]
    clock = FakeClock()
    made = await requested(store, clock)
    await one_attempt(store, url, clock)
    state = await state_of(store, made)
    assert (state.status, state.reason) == (FilingStatus.FAILED, reason)
    assert len(service.received) == 1


async def test_a_success_without_a_document_id_is_not_believed(
    store: Store, scripted: tuple[ScriptedStore, str]
) -> None:
    service, url = scripted
    service.script = [(201, {}, {"title": "no id"})]
    clock = FakeClock()
    made = await requested(store, clock)
    await one_attempt(store, url, clock)
    state = await state_of(store, made)
    assert (state.status, state.last_error) == (FilingStatus.PENDING, "201 without a document id")


async def test_the_health_check_reports_a_store_that_refuses_our_token_until_it_accepts_it(
    store: Store, scripted: tuple[ScriptedStore, str]
) -> None:
    service, url = scripted
    service.script = [(401, {}, {"reason": "unauthenticated", "detail": ""}), (503, {}, {}), FILED]
    clock = FakeClock()
    made = await requested(store, clock)
    worker = FilingWorker(store, filing_settings(url), clock=clock)
    try:
        assert await worker.health() is None
        await worker.run_due()
        problem = await worker.health()
        assert problem is not None and "401" in problem and "docstore.token" in problem
        clock.advance(60)
        await worker.run_due()  # busy is not a configuration problem, but proves nothing
        assert await worker.health() == problem
        clock.advance(60)
        await worker.run_due()
        assert await worker.health() is None
    finally:
        await worker.client.close()
    assert (await state_of(store, made)).status is FilingStatus.FILED
