"""Bulk sending: campaigns and their rows (bulk_campaigns, bulk_rows; models:
mailgateway/bulk/models.py), and what the queue needs for them: each queued message's
Message-ID (found again after a crash) and each recipient's priority (campaigns after
interactive mail; mailgateway/queue/models.py).

Revision ID: 0007_bulk
Revises: 0006_imap_subscriptions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_bulk"
down_revision: str | None = "0006_imap_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bulk_campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("structure_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_campaigns")),
    )
    with op.batch_alter_table("bulk_campaigns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bulk_campaigns_structure_id"), ["structure_id"], unique=False
        )
    op.create_table(
        "bulk_rows",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=128), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("delivery_detail", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["bulk_campaigns.id"],
            name=op.f("fk_bulk_rows_campaign_id_bulk_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_rows")),
        sa.UniqueConstraint(
            "campaign_id", "row_key", name=op.f("uq_bulk_rows_campaign_id_row_key")
        ),
    )
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bulk_rows_campaign_id_state", ["campaign_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_bulk_rows_message_id"), ["message_id"], unique=False)
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_id", sa.String(length=998), server_default="", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_queue_messages_message_id"), ["message_id"], unique=False
        )
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False)
        )
        batch_op.drop_index("ix_queue_recipients_status_next_attempt_at")
        batch_op.create_index(
            "ix_queue_recipients_status_priority_next_attempt_at",
            ["status", "priority", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_recipients_status_priority_next_attempt_at")
        batch_op.create_index(
            "ix_queue_recipients_status_next_attempt_at",
            ["status", "next_attempt_at"],
            unique=False,
        )
        batch_op.drop_column("priority")
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_messages_message_id"))
        batch_op.drop_column("message_id")
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_rows_message_id"))
        batch_op.drop_index("ix_bulk_rows_campaign_id_state")
    op.drop_table("bulk_rows")
    with op.batch_alter_table("bulk_campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_campaigns_structure_id"))
    op.drop_table("bulk_campaigns")
