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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .models import ConversationRow, ThreadMessageRow
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


class Conversations:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, professional: str, ins: str) -> Conversation | None:
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(
                    select(ConversationRow).where(
                        ConversationRow.professional == professional.lower(),
                        ConversationRow.ins == ins.upper(),
                    )
                )
            ).first()
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
        at = at or datetime.now(UTC)
        professional, ins = professional.lower(), ins.upper()
        async with self.store.writing(tx) as tx:
            row = await self._locked(tx, professional, ins, at)
            values: dict[str, Any] = {"last_professional_at": at}
            if ends:
                values |= {
                    "state": ConversationState.ENDED.value,
                    "ended_at": at,
                    "ended_by": (ended_by or professional).lower(),
                    "ended_message_id": message_id or None,
                }
            elif row.state == ConversationState.ENDED.value:
                values |= {"state": ConversationState.OPEN.value, "reopened_at": at}
            saved = await self._save(tx, row, values)
            await self._thread(tx, saved.id, message_id, TO_CITIZEN, at)
            return saved

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
        at = at or datetime.now(UTC)
        professional, ins = professional.lower(), ins.upper()
        async with self.store.writing(tx) as tx:
            row = await self._locked(tx, professional, ins, at)
            saved = await self._save(tx, row, {"last_citizen_at": at})
            await self._thread(tx, saved.id, message_id, FROM_CITIZEN, at)
            return saved

    async def _locked(self, tx: Transaction, professional: str, ins: str, at: datetime) -> Any:
        """The conversation row, created if missing, locked until commit (two first messages
        at once cannot both create it: INSERT … ON CONFLICT DO NOTHING)."""
        query = (
            select(ConversationRow)
            .where(ConversationRow.professional == professional, ConversationRow.ins == ins)
            .with_for_update()
        )
        row = (await tx.conn.execute(query)).first()
        if row is not None:
            return row
        dialect_insert = sqlite_insert if self.store.db.is_sqlite else postgresql_insert
        await tx.conn.execute(
            dialect_insert(ConversationRow)
            .values(
                professional=professional,
                ins=ins,
                state=ConversationState.OPEN.value,
                opened_at=at,
            )
            .on_conflict_do_nothing()
        )
        return (await tx.conn.execute(query)).one()

    async def _save(self, tx: Transaction, row: Any, values: dict[str, Any]) -> Conversation:
        """Update the locked row; the row as saved (one statement: UPDATE … RETURNING)."""
        saved = (
            await tx.conn.execute(
                update(ConversationRow)
                .where(ConversationRow.id == row.id)
                .values(**values)
                .returning(*ConversationRow.__table__.columns)
            )
        ).one()
        return conversation_from_row(saved)

    async def _thread(
        self, tx: Transaction, conversation_id: int, message_id: str, direction: str, at: datetime
    ) -> None:
        """Record the Message-ID in the conversation unless it is there (one statement)."""
        if not message_id:
            return
        dialect_insert = sqlite_insert if self.store.db.is_sqlite else postgresql_insert
        await tx.conn.execute(
            dialect_insert(ThreadMessageRow)
            .values(
                conversation_id=conversation_id,
                message_id=message_id[:998],
                direction=direction,
                at=at,
            )
            .on_conflict_do_nothing()
        )
