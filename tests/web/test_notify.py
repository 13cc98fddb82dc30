"""The notifier: new mail for a citizen → one e-mail to the personal address, no health data,
throttled, durable across restarts, never twice for one decision, guardians told."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plitest.store import build_message, open_test_store
from plitest.web import FakeClock, deliver_to_citizen, outbox_mails
from sqlalchemy import select

from pli.mailbox.notify.relay import DevOutbox, OutgoingMail, RelayError
from pli.mailbox.notify.service import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    Notifier,
    NotifierConfig,
    pending_outbox,
)
from pli.mailbox.notify.tables import NotifyOutboxRow
from pli.mailbox.notify.texts import NOTIFICATION_SUBJECT
from pli.mailbox.store import Store
from pli.mailbox.store.demo import CITIZEN_DOMAIN, DemoAccounts
from pli.policy.ins import make_ins

INTERVAL = 3600.0
PAUL = "paul.lefebvre@example.org"


def config(*, guardians: bool = True) -> NotifierConfig:
    return NotifierConfig(
        interval=INTERVAL,
        guardians=guardians,
        sender="ne-pas-repondre@pli.test",
        webmail_url="https://messagerie.pli.test",
        domain="pli.test",
        poll_interval=5.0,
    )


def notifier(store: Store, outbox: Path, clock: FakeClock, **kwargs: bool) -> Notifier:
    return Notifier(store, config(**kwargs), DevOutbox(outbox), clock=clock)


async def flushed(store: Store, outbox: Path, clock: FakeClock) -> Notifier:
    """A notifier that has announced the demo's own messages, with the interval passed."""
    service = notifier(store, outbox, clock)
    await service.run_once()
    clock.advance(INTERVAL + 1)
    return service


async def test_new_mail_sends_one_notification_without_health_data(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    service = await flushed(store, outbox, clock)
    before = len(outbox_mails(outbox))
    secret_subject = "Résultats de votre sérologie VIH"
    raw = build_message(subject=secret_subject, body="Charge virale indétectable.\n")
    await deliver_to_citizen(store, accounts.doctor, accounts.parent, raw)

    report = await service.run_once()

    assert (report.new_messages, report.decided, report.sent) == (1, 1, 1)
    mails = outbox_mails(outbox)[before:]
    assert len(mails) == 1
    mail = mails[0]
    assert mail["To"] == PAUL
    assert mail["Subject"] == NOTIFICATION_SUBJECT
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.as_string()
    for leak in ("VIH", "sérologie", "Charge", "Martin", "dr.martin", accounts.parent.ins or "?"):
        assert leak not in text
    assert "https://messagerie.pli.test" in text
    # Nothing new: nothing sent.
    assert await service.run_once() == type(report)()


async def test_mail_within_the_interval_waits_for_the_interval(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    service = await flushed(store, outbox, clock)
    await deliver_to_citizen(store, accounts.doctor, accounts.parent, build_message(subject="1"))
    assert (await service.run_once()).sent == 1
    for number in range(3):
        clock.advance(INTERVAL / 4)
        await deliver_to_citizen(
            store, accounts.doctor, accounts.parent, build_message(subject=f"n{number}")
        )
        report = await service.run_once()
        assert (report.new_messages, report.sent) == (1, 0)
    clock.advance(INTERVAL / 4 - 1)
    assert (await service.run_once()).sent == 0  # one second short of the interval
    clock.advance(1)
    assert (await service.run_once()).sent == 1  # the three messages, announced once
    clock.advance(INTERVAL * 5)
    assert (await service.run_once()).sent == 0  # nothing pending any more


async def test_a_family_sharing_one_address_gets_one_mail(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    """Léa (the child) and Paul (her guardian) are both registered with Paul's address."""
    outbox = tmp_path / "outbox"
    service = await flushed(store, outbox, clock)
    before = len(outbox_mails(outbox))
    await deliver_to_citizen(store, accounts.doctor, accounts.child, build_message(subject="x"))
    await deliver_to_citizen(store, accounts.doctor, accounts.parent, build_message(subject="y"))
    report = await service.run_once()
    assert (report.new_messages, report.sent) == (2, 1)
    assert [mail["To"] for mail in outbox_mails(outbox)[before:]] == [PAUL]


async def test_guardians_with_their_own_address_are_told_unless_configured_off(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    ward = await store.accounts.create_citizen(
        make_ins("1450275123458"),
        CITIZEN_DOMAIN,
        display_name="Jean Lefebvre",
        notification_address="jean@example.org",
    )
    await store.accounts.add_guardian(ward.id, accounts.parent.id, "caregiver")
    outbox = tmp_path / "outbox"
    service = await flushed(store, outbox, clock)
    before = len(outbox_mails(outbox))
    await deliver_to_citizen(store, accounts.doctor, ward, build_message(subject="x"))
    await service.run_once()
    assert sorted(mail["To"] for mail in outbox_mails(outbox)[before:]) == [
        "jean@example.org",
        PAUL,
    ]

    quiet = Notifier(store, config(guardians=False), DevOutbox(outbox), clock=clock)
    clock.advance(INTERVAL + 1)
    before = len(outbox_mails(outbox))
    await deliver_to_citizen(store, accounts.doctor, ward, build_message(subject="y"))
    await quiet.run_once()
    assert [mail["To"] for mail in outbox_mails(outbox)[before:]] == ["jean@example.org"]


async def test_mail_for_professionals_and_other_folders_is_not_announced(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    service = await flushed(store, outbox, clock)
    await store.messages.deliver(build_message(), [_target(accounts.doctor.id)])
    sent = await store.folders.get(accounts.parent.id, "Sent")
    await store.messages.append(sent.id, build_message(), flags=("\\Seen",))
    report = await service.run_once()
    assert (report.new_messages, report.sent) == (0, 0)


def _target(account_id: int):  # type: ignore[no-untyped-def]
    from pli.mailbox.store import DeliveryTarget

    return DeliveryTarget(account_id)


async def test_decided_notification_survives_a_restart_and_is_sent_once(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Killed after deciding, before sending: the next process sends it; the dev outbox file
    is named after the decision, so a second send replaces it."""
    outbox = tmp_path / "outbox"
    async with open_test_store(database_url, tmp_path, keep_schema=True) as store:
        from plitest.store import demo

        accounts = await demo(store)
        first = notifier(store, outbox, clock)
        await first.scan()
        assert await first.decide() == 1  # the demo's messages, for Paul
        assert outbox_mails(outbox) == []
        schema = store.feed.channel.removeprefix("pli_store").lstrip("_") or None
    async with open_test_store(database_url, tmp_path, schema=schema) as store:
        second = notifier(store, outbox, clock)
        report = await second.run_once()
        assert (report.new_messages, report.sent) == (0, 1)
        assert [mail["To"] for mail in outbox_mails(outbox)] == [PAUL]
        # Sending the same decision again (a crash after the relay took it) → the same file.
        async with store.db.read() as conn:
            outbox_id = await conn.scalar(select(NotifyOutboxRow.id))
        assert outbox_id is not None
        await second._send(outbox_id, PAUL)
        assert len(outbox_mails(outbox)) == 1
        assert accounts.parent.notification_address == PAUL


class FlakyRelay:
    """Fails with the given errors, in order, then succeeds."""

    def __init__(self, *errors: RelayError) -> None:
        self.errors = list(errors)
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(mail)

    def describe(self) -> str:
        return "flaky"


async def test_a_relay_down_delays_with_backoff_and_loses_nothing(
    store: Store, accounts: DemoAccounts, clock: FakeClock
) -> None:
    relay = FlakyRelay(RelayError("down", temporary=True), RelayError("451 later", temporary=True))
    service = Notifier(store, config(), relay, clock=clock)
    report = await service.run_once()
    assert (report.decided, report.sent, report.failed) == (1, 0, 0)
    assert await pending_outbox(store) == 1
    clock.advance(RETRY_SCHEDULE[0] - 1)
    assert (await service.run_once()).sent == 0  # not due yet
    clock.advance(1)
    assert (await service.run_once()).sent == 0  # second failure
    clock.advance(RETRY_SCHEDULE[1])
    assert (await service.run_once()).sent == 1
    assert [mail.recipient for mail in relay.sent] == [PAUL]
    assert await pending_outbox(store) == 0


async def test_a_permanent_refusal_or_too_many_attempts_gives_up(
    store: Store, accounts: DemoAccounts, clock: FakeClock
) -> None:
    relay = FlakyRelay(RelayError("550 no such user", temporary=False))
    service = Notifier(store, config(), relay, clock=clock)
    report = await service.run_once()
    assert (report.sent, report.failed) == (0, 1)
    assert await pending_outbox(store) == 0

    clock.advance(INTERVAL + 1)
    await deliver_to_citizen(store, accounts.doctor, accounts.parent, build_message())
    always_down = FlakyRelay(*[RelayError("down", temporary=True)] * MAX_ATTEMPTS)
    service = Notifier(store, config(), always_down, clock=clock)
    failed = 0
    for _ in range(MAX_ATTEMPTS):
        failed += (await service.run_once()).failed
        clock.advance(RETRY_SCHEDULE[-1])
    assert failed == 1
    assert always_down.sent == [] and await pending_outbox(store) == 0


async def test_two_notifiers_on_one_database_send_each_mail_once(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    outbox = tmp_path / "outbox"
    async with open_test_store(database_url, tmp_path, keep_schema=True) as one:
        from plitest.store import demo

        accounts = await demo(one)
        schema = one.feed.channel.removeprefix("pli_store").lstrip("_") or None
        async with open_test_store(database_url, tmp_path / "b", schema=schema) as two:
            relays = [FlakyRelay(), FlakyRelay()]
            services = [
                Notifier(store, config(), relay, clock=clock)
                for store, relay in zip((one, two), relays, strict=True)
            ]
            for round_ in range(5):
                await deliver_to_citizen(
                    one, accounts.doctor, accounts.parent, build_message(subject=str(round_))
                )
                await asyncio.gather(*(service.run_once() for service in services))
                clock.advance(INTERVAL + 1)
            sent = [mail.recipient for relay in relays for mail in relay.sent]
            assert sent == [PAUL] * 5
    assert outbox_mails(outbox) == []


async def test_the_service_wakes_at_once_on_new_mail_and_stops(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    """Polling set to an hour: only the change feed can have woken it."""
    outbox = tmp_path / "outbox"
    slow = NotifierConfig(INTERVAL, True, "n@pli.test", "https://x", "pli.test", 3600.0)
    service = Notifier(store, slow, DevOutbox(outbox), clock=clock)
    await service.start()
    try:
        first = await service.wait_pass()  # the start-up pass: the demo's messages
        assert first.sent == 1
        clock.advance(INTERVAL + 1)
        await deliver_to_citizen(store, accounts.doctor, accounts.parent, build_message())
        report = await asyncio.wait_for(service.wait_pass(), timeout=30)
        while report.sent == 0:  # a pass woken by another event of the same commit
            report = await asyncio.wait_for(service.wait_pass(), timeout=30)
        assert report.sent == 1
    finally:
        await service.stop(1)
    assert len(outbox_mails(outbox)) == 2


class HeldRelay(DevOutbox):
    """The dev outbox, but each e-mail waits until the test lets it through."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, mail: OutgoingMail) -> None:
        self.sending.set()
        await self.release.wait()
        await super().send(mail)


async def test_stopping_lets_the_pass_in_progress_finish_within_the_grace(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    """Stopped in the middle of a pass (an e-mail being handed to the relay), the notifier
    ends the pass instead of cutting it: the e-mail is sent and recorded as sent."""
    outbox = tmp_path / "outbox"
    relay = HeldRelay(outbox)
    service = Notifier(store, config(), relay, clock=clock)
    await service.start()
    await asyncio.wait_for(relay.sending.wait(), timeout=30)  # the demo's message announced
    stopping = asyncio.create_task(service.stop(30))
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waiting for the pass, not cancelling it
    relay.release.set()
    await asyncio.wait_for(stopping, timeout=30)
    assert len(outbox_mails(outbox)) == 1
    assert await pending_outbox(store) == 0
