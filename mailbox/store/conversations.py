"""Conversation facts for the citizen policy: which professional mailbox wrote to which citizen,
whether the exchange is open or ended (by whom, when, by which message), and which Message-IDs
belong to it.

The store records and answers facts; deciding what a message means (is this subject ``[FIN]``?
may the citizen reply?) is the policy's job. The caller records each message's effect:
:meth:`Conversations.record_professional_message` with ``ends=True`` for an ending message
(policy P4), ``ends=False`` for an ordinary one (which opens, or reopens an ended exchange);
:meth:`Conversations.record_citizen_message` for a citizen's message to a professional.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .models import ConversationRow, ThreadMessageRow
from .prepared import Prepared
from .records import Conversation, ConversationState

if TYPE_CHECKING:
    from .service import Store, Transaction

TO_CITIZEN = "to-citizen"
FROM_CITIZEN = "from-citizen"


def conversation_from_row(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        professional=row.professional,
        ins=row.ins,
        state=ConversationState(row.state),
        opened_at=row.opened_at,
        last_professional_at=row.last_professional_at,
        last_citizen_at=row.last_citizen_at,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        ended_message_id=row.ended_message_id,
        reopened_at=row.reopened_at,
    )


#: Built once: the policy's facts read the conversation at every RCPT (accounts.py says why).
_ONE = Prepared(
    select(ConversationRow).where(
        ConversationRow.professional == bindparam("professional"),
        ConversationRow.ins == bindparam("ins"),
    )
)


@dataclass(frozen=True, slots=True)
class ConversationChange:
    """One message's effect on a conversation (:meth:`Conversations.record_many`): a
    professional's message (``ends``: an ending one, ``ended_by`` default the professional) or a
    citizen's (``from_citizen``); ``at`` default now."""

    professional: str
    ins: str
    message_id: str
    from_citizen: bool = False
    ends: bool = False
    ended_by: str | None = None
    at: datetime | None = None


class Conversations:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, professional: str, ins: str) -> Conversation | None:
        row = await self.store.db.first(_ONE, professional=professional.lower(), ins=ins.upper())
        return conversation_from_row(row) if row is not None else None

    async def for_citizen(self, ins: str) -> list[Conversation]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(ConversationRow)
                    .where(ConversationRow.ins == ins.upper())
                    .order_by(ConversationRow.professional)
                )
            ).all()
        return [conversation_from_row(row) for row in rows]

    async def by_message_ids(self, ins: str, message_ids: Sequence[str]) -> Conversation | None:
        """The citizen's conversation one of these Message-IDs (from In-Reply-To/References)
        belongs to; the most recently active when several match."""
        if not message_ids:
            return None
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(ConversationRow)
                    .join(ThreadMessageRow, ThreadMessageRow.conversation_id == ConversationRow.id)
                    .where(
                        ConversationRow.ins == ins.upper(),
                        ThreadMessageRow.message_id.in_(list(message_ids)),
                    )
                    .order_by(ThreadMessageRow.at.desc())
                    .limit(1)
                )
            ).all()
        return conversation_from_row(rows[0]) if rows else None

    async def record_professional_message(
        self,
        professional: str,
        ins: str,
        message_id: str,
        *,
        ends: bool,
        ended_by: str | None = None,
        at: datetime | None = None,
        tx: Transaction | None = None,
    ) -> Conversation:
        """A professional mailbox wrote to a citizen: opens the exchange, or reopens an ended
        one; with ``ends`` (policy P4: ``[FIN]`` / ``X-MSS-MES: FIN``) ends it, recording who
        (``ended_by``, default the mailbox), when and which message."""
        change = ConversationChange(
            professional, ins, message_id, ends=ends, ended_by=ended_by, at=at
        )
        return (await self.record_many([change], tx=tx))[0]

    async def record_citizen_message(
        self,
        professional: str,
        ins: str,
        message_id: str,
        *,
        at: datetime | None = None,
        tx: Transaction | None = None,
    ) -> Conversation:
        """A citizen wrote to a professional mailbox (accepted by the policy, e.g. a reply or
        a first message to a pharmacy)."""
        change = ConversationChange(professional, ins, message_id, from_citizen=True, at=at)
        return (await self.record_many([change], tx=tx))[0]

    async def record_many(
        self, changes: Sequence[ConversationChange], *, tx: Transaction | None = None
    ) -> list[Conversation]:
        """Record several messages' effects in order (a group commit's), in a fixed number of
        statements: the rows locked (created when missing) in one SELECT, the changes applied in
        order in memory, one UPDATE per row and one INSERT of the Message-IDs, each sent as one
        batch. Returns each change's conversation as it left it."""
        if not changes:
            return []
        now = datetime.now(UTC)
        changes = [
            replace(c, professional=c.professional.lower(), ins=c.ins.upper(), at=c.at or now)
            for c in changes
        ]
        async with self.store.writing(tx) as tx:
            current = await self._locked_many(tx, changes)
            after: list[Conversation] = []
            threads: list[dict[str, Any]] = []
            for change in changes:
                key = (change.professional, change.ins)
                current[key] = saved = _applied(current[key], change)
                after.append(saved)
                if change.message_id:
                    threads.append(
                        {
                            "conversation_id": saved.id,
                            "message_id": change.message_id[:998],
                            "direction": FROM_CITIZEN if change.from_citizen else TO_CITIZEN,
                            "at": change.at,
                        }
                    )
            await _UPDATE_CHANGED.many(
                tx.conn,
                [
                    {"row_id": row.id}
                    | {f"new_{name}": _column(getattr(row, name)) for name in _CHANGED}
                    for row in current.values()
                ],
            )
            if threads:
                insert_threads = _THREADS_SQLITE if self.store.db.is_sqlite else _THREADS_POSTGRESQL
                await insert_threads.many(tx.conn, threads)
            return after

    async def _locked_many(
        self, tx: Transaction, changes: Sequence[ConversationChange]
    ) -> dict[tuple[str, str], Conversation]:
        """The conversation of each (professional, INS) of ``changes``, created if missing,
        locked until commit (on PostgreSQL every conversation of these citizens, in id order;
        two first messages at once cannot both create one: INSERT … ON CONFLICT DO NOTHING)."""
        keys = sorted({(c.professional, c.ins) for c in changes})
        wanted = set(keys)
        citizens = sorted({ins for _, ins in keys})

        async def locked() -> dict[tuple[str, str], Any]:
            # Every conversation of these citizens (a handful each), the wanted ones kept.
            rows = await _OF_CITIZENS.all(tx.conn, citizens=citizens)
            return {
                (row.professional, row.ins): row
                for row in rows
                if (row.professional, row.ins) in wanted
            }

        found = await locked()
        missing = [key for key in keys if key not in found]
        if missing:
            first: dict[tuple[str, str], datetime | None] = {}
            for change in changes:
                first.setdefault((change.professional, change.ins), change.at)
            dialect_insert = sqlite_insert if self.store.db.is_sqlite else postgresql_insert
            await tx.conn.execute(
                dialect_insert(ConversationRow)
                .values(
                    [
                        {
                            "professional": professional,
                            "ins": ins,
                            "state": ConversationState.OPEN.value,
                            "opened_at": first[(professional, ins)],
                        }
                        for professional, ins in missing
                    ]
                )
                .on_conflict_do_nothing()
            )
            found = await locked()
        return {key: conversation_from_row(found[key]) for key in keys}


#: The columns a recorded message may change.
_CHANGED = (
    "state",
    "last_professional_at",
    "last_citizen_at",
    "ended_at",
    "ended_by",
    "ended_message_id",
    "reopened_at",
)


#: The group commit's lock of the conversations of some citizens, in id order (``prepared.py``).
_OF_CITIZENS = Prepared(
    select(ConversationRow)
    .where(ConversationRow.ins.in_(bindparam("citizens", expanding=True)))
    .order_by(ConversationRow.id)
    .with_for_update()
)
#: Its INSERT of the messages' Message-IDs (one already recorded is left as it is).
_THREADS_SQLITE = Prepared(sqlite_insert(ThreadMessageRow).on_conflict_do_nothing())
_THREADS_POSTGRESQL = Prepared(postgresql_insert(ThreadMessageRow).on_conflict_do_nothing())
#: The group commit's UPDATE of the conversations it changed (``prepared.py``).
_UPDATE_CHANGED = Prepared(
    update(ConversationRow)
    .where(ConversationRow.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in _CHANGED})
)


def _column(value: Any) -> Any:
    return value.value if isinstance(value, ConversationState) else value


def _applied(row: Conversation, change: ConversationChange) -> Conversation:
    """``row`` after ``change`` (policy P2: a professional's message opens or reopens the
    exchange; P4: an ending one ends it, recording who, when and which message)."""
    at = change.at
    if change.from_citizen:
        return replace(row, last_citizen_at=at)
    if change.ends:
        return replace(
            row,
            last_professional_at=at,
            state=ConversationState.ENDED,
            ended_at=at,
            ended_by=(change.ended_by or change.professional).lower(),
            ended_message_id=change.message_id or None,
        )
    if row.state == ConversationState.ENDED:
        return replace(row, last_professional_at=at, state=ConversationState.OPEN, reopened_at=at)
    return replace(row, last_professional_at=at)
