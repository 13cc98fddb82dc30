"""The usage indicators' test data (tests/bulk_stats): the activity of three establishments
over two ISO weeks around the spring daylight-saving change in Paris (Sunday 30 March 2025),
written through the store's own APIs: conversations, the campaign ledger and the filing
outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pli.mailbox.filing.outbox import NewFiling, Settlement, claim, enqueue, settle
from pli.mailbox.filing.reasons import FilingStatus
from pli.mailbox.store import AccountKind, Store
from pli.mailbox.store.records import Account, DirectoryEntry
from pli.mailgateway.bulk.ledger import REFUSED, SUBMITTED, Ledger, NewRow, RowOutcome
from pli.policy.ins import make_ins

CITIZEN_DOMAIN = "patient.mssante.fr"
STRUCTURE = "750100001"
STRUCTURE_NAME = "CH Exemple - secrétariat"
REMOTE_STRUCTURE = "330000001"
REMOTE_NAME = "Clinique Autre"
ORG = "secretariat@ch-exemple.mssante.fr"
APP = "convocations-noreply@ch-exemple.mssante.fr"
REMOTE = "dr.remote@clinique-autre.mssante.fr"
SOLO = "dr.solo@cabinet-solo.mssante.fr"
OLD = "dr.old@ancien.mssante.fr"
INS_A = make_ins("1800175123456")
INS_B = make_ins("2850375123789")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Activity:
    store: Store
    citizen_a: Account
    citizen_b: Account


async def exchange(
    store: Store, professional: str, ins: str, message_id: str, at: datetime
) -> None:
    await store.conversations.record_professional_message(
        professional, ins, message_id, ends=False, at=at
    )


async def campaign(
    store: Store,
    campaign_id: str,
    *,
    kind: str,
    mailbox: str,
    structure_id: str | None,
    outcomes: list[str],
    at: datetime,
) -> None:
    """A campaign whose rows the pipeline accepted or refused at ``at`` (through the ledger's
    state machine, as the runner drives it)."""
    ledger = Ledger(store)
    rows = [
        NewRow(
            key=f"k{i}",
            line=i + 2,
            recipient=f"{INS_A}@{CITIZEN_DOMAIN}",
            message_id=f"<bulk.{campaign_id}.{i}@x>",
        )
        for i in range(len(outcomes))
    ]
    await ledger.register(
        campaign_id=campaign_id,
        kind=kind,
        mailbox=mailbox,
        structure_id=structure_id,
        source="/nowhere/campaign.toml",
        content_hash=campaign_id.ljust(64, "0"),
        origin="cli",
        rows=rows,
        now=at,
    )
    due = await ledger.due_rows(campaign_id, 100, now=at)
    await ledger.mark_submitting([row.id for row in due], now=at)
    await ledger.record(
        [RowOutcome(row.id, state) for row, state in zip(due, outcomes, strict=True)], now=at
    )


async def filing(
    store: Store, citizen: Account, message_id: str, part: str, status: FilingStatus, at: datetime
) -> None:
    """An attachment of ``message_id`` enqueued, claimed by a worker and settled at ``at``."""
    new = NewFiling(
        account_id=citizen.id,
        ins=citizen.ins or "",
        message_id=message_id,
        blob_id="b" * 64,
        part=part,
        kind="attachment",
        actor_kind="rule",
        actor_id="test",
    )
    async with store.transaction() as tx:
        await enqueue(tx, [new], at)
    (claimed,) = await claim(store, "worker-test", 1, at, 60.0)
    await settle(store, claimed, "worker-test", Settlement(status), at)


async def write_activity(store: Store) -> Activity:
    """Paris weeks: 2025-W13 is [2025-03-23 23:00Z, 2025-03-30 22:00Z) (CET then CEST), W14
    [2025-03-30 22:00Z, 2025-04-06 22:00Z)."""
    await store.accounts.create(
        ORG, AccountKind.ORG, display_name=STRUCTURE_NAME, structure_id=STRUCTURE
    )
    await store.accounts.create(APP, AccountKind.APP, structure_id=STRUCTURE, no_reply=True)
    await store.accounts.create(SOLO, AccountKind.PER, display_name="Dr Solo")
    await store.directory.upsert(
        [
            DirectoryEntry(
                address=REMOTE,
                bal_type="PER",
                display_name="Dr Remote",
                profession=None,
                rpps=None,
                structure_id=REMOTE_STRUCTURE,
                structure_name=REMOTE_NAME,
                pharmacy=False,
                no_reply=False,
                local=False,
            )
        ]
    )
    a = await store.accounts.create_citizen(INS_A, CITIZEN_DOMAIN)
    b = await store.accounts.create_citizen(INS_B, CITIZEN_DOMAIN)

    await exchange(store, ORG, INS_A, "<before@x>", utc(2025, 3, 23, 22, 30))  # Sun 23:30 CET
    await exchange(store, ORG, INS_A, "<w13-first@x>", utc(2025, 3, 23, 23, 30))  # Mon 00:30
    await store.conversations.record_citizen_message(
        ORG, INS_A, "<reply@y>", at=utc(2025, 3, 25, 10)
    )
    await exchange(store, APP, INS_B, "<w13-last@x>", utc(2025, 3, 30, 21, 30))  # Sun 23:30 CEST
    await exchange(store, APP, INS_A, "<w14-first@x>", utc(2025, 3, 30, 22, 30))  # Mon 00:30
    await exchange(store, APP, INS_B, "<w14-first@x>", utc(2025, 3, 30, 22, 30))
    await exchange(store, REMOTE, INS_A, "<remote@z>", utc(2025, 4, 2, 9))
    await exchange(store, SOLO, INS_B, "<solo-sunday@s>", utc(2025, 4, 6, 21))  # Sun 23:00
    await exchange(store, SOLO, INS_B, "<solo-monday@s>", utc(2025, 4, 6, 22, 30))  # W15
    await exchange(store, OLD, INS_B, "<old@o>", utc(2024, 1, 10, 9))  # idle since

    at_w14 = utc(2025, 3, 31, 8)
    await campaign(
        store,
        "convocations-avril",
        kind="convocation",
        mailbox=APP,
        structure_id=STRUCTURE,
        outcomes=[SUBMITTED, SUBMITTED, REFUSED],
        at=at_w14,
    )
    await campaign(
        store,
        "rappels",
        kind="reminder",
        mailbox=ORG,
        structure_id=None,  # found through the ORG account
        outcomes=[SUBMITTED],
        at=utc(2025, 3, 26, 8),
    )

    filed_at = utc(2025, 4, 1, 12)
    await filing(store, a, "<w13-first@x>", "2", FilingStatus.FILED, filed_at)
    await filing(store, a, "<w13-first@x>", "3", FilingStatus.FILED, filed_at)
    await filing(store, b, "<w13-first@x>", "2", FilingStatus.FILED, filed_at)  # not B's message
    await filing(store, a, "<remote@z>", "2", FilingStatus.FAILED, filed_at)
    return Activity(store, a, b)
