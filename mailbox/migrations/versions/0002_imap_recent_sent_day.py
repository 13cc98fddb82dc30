"""IMAP: \\Recent bookkeeping per folder and the Date: header's calendar day per message.

- ``folders.first_recent_uid``: messages from this UID on are \\Recent to the next session that
  selects the folder read-write (RFC 3501 §2.3.2); existing folders start with nothing recent.
- ``messages.sent_day``: the calendar date written in the Date: header, in its own time zone
  (days since 1970-01-01), for SEARCH SENTBEFORE/SENTON/SENTSINCE (RFC 3501 §6.4.4); filled
  here from the cached ENVELOPE of existing messages.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pli.mailbox.store.search import calendar_day

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_recent_uid", sa.BigInteger(), server_default="1", nullable=False)
        )
    op.execute("UPDATE folders SET first_recent_uid = uidnext")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_day", sa.Integer(), nullable=True))
    connection = op.get_bind()
    messages = sa.table(
        "messages",
        sa.column("id", sa.Integer),
        sa.column("envelope", sa.Text),
        sa.column("sent_day"),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(messages.c.id, messages.c.envelope)
            .where(messages.c.id > last)
            .order_by(messages.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            day = calendar_day(json.loads(row.envelope)[0])
            if day is not None:
                updates.append({"row_id": row.id, "day": day})
        if updates:
            connection.execute(
                messages.update()
                .where(messages.c.id == sa.bindparam("row_id"))
                .values(sent_day=sa.bindparam("day")),
                updates,
            )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("sent_day")
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.drop_column("first_recent_uid")
