"""Directory imports (national extract, CSV), dispensations, and conversation facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pli.mailbox.store import AccountKind, ConversationState, Store
from pli.mailbox.store.conversations import ConversationChange
from pli.mailbox.store.directory_import import parse_extract

NATIONAL = (
    "Type de BAL|Adresse BAL|Type d'identifiant PP|Identifiant PP|Identification nationale PP|"
    "Nom d'exercice|Prénom d'exercice|Libellé profession|Identifiant structure|"
    "Raison sociale structure BAL|Service de rattachement|Code secteur d'activité\n"
    "PER|jean.dupont@ch-xyz.mssante.fr|8|10001|810001|DUPONT|Jean|Médecin|||| \n"
    "ORG|officine@pharma.mssante.fr||||||||Pharmacie du Port||SA33\n"
    "ORG|cardio@ch-xyz.mssante.fr||||||||CH XYZ|Cardiologie|SA01\n"
    "XYZ|bad-type@ch-xyz.mssante.fr||||||||||\n"
    "PER|not-an-address||||||||||\n"
    "PER|short@row.mssante.fr\n"
)


def test_national_extract_rows_are_kept_or_reported_with_line_numbers() -> None:
    parsed = parse_extract(NATIONAL)
    assert parsed.shape == "national"
    entries = {e.address: e for e in parsed.entries}
    assert entries["jean.dupont@ch-xyz.mssante.fr"].display_name == "Jean DUPONT"
    assert entries["jean.dupont@ch-xyz.mssante.fr"].rpps == "810001"
    assert entries["officine@pharma.mssante.fr"].pharmacy
    assert entries["cardio@ch-xyz.mssante.fr"].display_name == "CH XYZ - Cardiologie"
    assert not entries["cardio@ch-xyz.mssante.fr"].pharmacy
    assert [(p.line, p.message.split()[0]) for p in parsed.problems] == [
        (5, "unknown"),
        (6, "invalid"),
        (7, "2"),
    ]


def test_csv_and_bad_headers() -> None:
    parsed = parse_extract(
        "address,bal_type,display_name,pharmacy,no_reply\n"
        "a@x.mssante.fr,ORG,Pharmacie A,oui,\n"
        "b@x.mssante.fr,APP,Robot,,1\n"
        "b@x.mssante.fr,APP,Dup,,\n"
    )
    assert [(e.address, e.pharmacy, e.no_reply) for e in parsed.entries] == [
        ("a@x.mssante.fr", True, False),
        ("b@x.mssante.fr", False, True),
    ]
    assert parsed.problems[0].line == 4 and "duplicate" in parsed.problems[0].message
    assert parse_extract("foo,bar\n1,2\n").problems[0].line == 1
    assert parse_extract("").problems[0].message == "empty file"


@given(st.text(max_size=500))
def test_any_text_imports_without_exception(text: str) -> None:
    parsed = parse_extract(text)
    assert all(p.line >= 1 for p in parsed.problems)


async def test_import_lookup_and_dispensations(store: Store) -> None:
    report = await store.directory.import_bytes(NATIONAL.encode("latin-1"), source="t")
    assert (report.added, report.updated, len(report.problems)) == (3, 0, 3)
    again = await store.directory.import_bytes(NATIONAL.encode(), source="t")
    assert (again.added, again.updated) == (0, 3)
    entry = await store.directory.lookup("OFFICINE@pharma.mssante.fr")
    assert entry is not None and entry.pharmacy and not entry.local
    local = await store.accounts.create("robot@ch-xyz.mssante.fr", AccountKind.APP, no_reply=True)
    found = await store.directory.lookup(local.address)
    assert found is not None and found.local and found.no_reply and found.bal_type == "APP"
    assert await store.directory.lookup("nobody@x.mssante.fr") is None
    now = datetime.now(UTC)
    await store.directory.add_dispensation(
        "180017512345660", "officine@pharma.mssante.fr", now - timedelta(days=100)
    )
    assert not await store.directory.add_dispensation(
        "180017512345660", "officine@pharma.mssante.fr", now - timedelta(days=100)
    )
    year_ago = now - timedelta(days=365)
    assert await store.directory.has_dispensation(
        "180017512345660", "officine@pharma.mssante.fr", year_ago
    )
    assert not await store.directory.has_dispensation(
        "180017512345660", "officine@pharma.mssante.fr", now
    )
    assert not await store.directory.has_dispensation(
        "146026322000196", "officine@pharma.mssante.fr", year_ago
    )


async def test_conversation_opens_ends_and_reopens(store: Store) -> None:
    conversations = store.conversations
    doctor, ins = "dr.martin@hopital-demo.mssante.fr", "180017512345660"
    assert await conversations.get(doctor, ins) is None
    first = await conversations.record_professional_message(doctor, ins, "m1@x", ends=False)
    assert first.state is ConversationState.OPEN and first.professional_has_written
    reply = await conversations.record_citizen_message(doctor, ins, "r1@y")
    assert reply.last_citizen_at is not None
    ended = await conversations.record_professional_message(
        doctor, ins, "fin@x", ends=True, ended_by="j.durand@hopital-demo.mssante.fr"
    )
    assert ended.state is ConversationState.ENDED
    assert (ended.ended_by, ended.ended_message_id) == ("j.durand@hopital-demo.mssante.fr", "fin@x")
    reopened = await conversations.record_professional_message(doctor, ins, "m2@x", ends=False)
    assert reopened.is_open and reopened.reopened_at is not None and reopened.id == first.id
    thread = await conversations.by_message_ids(ins, ["unknown@z", "r1@y"])
    assert thread is not None and thread.id == first.id
    assert await conversations.by_message_ids("146026322000196", ["r1@y"]) is None
    assert [c.professional for c in await conversations.for_citizen(ins)] == [doctor]


async def test_record_many_applies_a_batch_in_order_as_one_by_one_would(store: Store) -> None:
    """A group commit records its messages' effects at once: two messages to one citizen in
    the batch (the second ends the exchange), an existing exchange ended then reopened, a
    citizen's reply; each change sees the ones before it, and the store keeps the last."""
    conversations = store.conversations
    doctor, other = "Dr.Martin@hopital-demo.mssante.fr", "j.durand@hopital-demo.mssante.fr"
    ins, ins2 = "180017512345660", "146026322000196"
    at = datetime(2026, 11, 1, tzinfo=UTC)
    existing = await conversations.record_professional_message(other, ins2, "old@x", ends=False)
    results = await conversations.record_many(
        [
            ConversationChange(doctor, ins, "m1@x", at=at),
            ConversationChange(other, ins2, "fin@x", ends=True, at=at),
            ConversationChange(doctor, ins, "r1@y", from_citizen=True, at=at + timedelta(1)),
            ConversationChange(doctor, ins, "fin2@x", ends=True, at=at + timedelta(2)),
            ConversationChange(other, ins2, "again@x", at=at + timedelta(3)),
        ]
    )
    assert [r.state for r in results] == [
        ConversationState.OPEN,
        ConversationState.ENDED,
        ConversationState.OPEN,
        ConversationState.ENDED,
        ConversationState.OPEN,
    ]
    assert results[0].id == results[2].id == results[3].id != existing.id
    assert results[1].id == results[4].id == existing.id
    ended = await conversations.get(doctor, ins)
    assert ended is not None and ended.state is ConversationState.ENDED
    assert (ended.ended_by, ended.ended_message_id) == (doctor.lower(), "fin2@x")
    assert ended.opened_at == at and ended.last_citizen_at == at + timedelta(1)
    reopened = await conversations.get(other, ins2)
    assert reopened is not None and reopened.is_open
    assert reopened.reopened_at == at + timedelta(3) and reopened.ended_message_id == "fin@x"
    for message_id, expected in (("r1@y", ended.id), ("again@x", existing.id), ("m1@x", ended.id)):
        thread = await conversations.by_message_ids(
            ins if expected == ended.id else ins2, [message_id]
        )
        assert thread is not None and thread.id == expected
    assert await conversations.record_many([]) == []
