"""The filing client: its durable outbox (filing_requests), the automatic rules' per-INBOX
marks (filing_marks) and since when the rules run (filing_scan_state). Models:
mailbox/filing/models.py.

Revision ID: 0005_filing
Revises: 0004_webmail
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_filing"
down_revision: str | None = "0004_webmail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "filing_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("ins", sa.String(length=15), nullable=False),
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=1024), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("key_generation", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("filed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_filing_requests_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_requests")),
        sa.UniqueConstraint(
            "account_id", "source_key", name=op.f("uq_filing_requests_account_id_source_key")
        ),
    )
    with op.batch_alter_table("filing_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_filing_requests_account_id_source_hash", ["account_id", "source_hash"], unique=False
        )
        batch_op.create_index(
            "ix_filing_requests_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )
    op.create_table(
        "filing_marks",
        sa.Column("folder_id", _ID, nullable=False),
        sa.Column("next_uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name=op.f("fk_filing_marks_folder_id_folders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("folder_id", name=op.f("pk_filing_marks")),
    )
    op.create_table(
        "filing_scan_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_scan_state")),
    )


def downgrade() -> None:
    op.drop_table("filing_scan_state")
    op.drop_table("filing_marks")
    with op.batch_alter_table("filing_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_filing_requests_state_next_attempt_at")
        batch_op.drop_index("ix_filing_requests_account_id_source_hash")
    op.drop_table("filing_requests")
