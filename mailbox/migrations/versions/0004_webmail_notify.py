"""Webmail sessions and read receipts; the notifier's watermark, throttle and outbox.

The notifier's watermark starts at the newest message already stored: mail delivered before this
revision is not announced (it was not new to anyone by then).

Revision ID: 0004_webmail
Revises: 0003_queue
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_webmail"
down_revision: str | None = "0003_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _account(column: str = "account_id") -> sa.Column[int]:
    return sa.Column(column, _ID, nullable=False)


def upgrade() -> None:
    op.create_table(
        "webmail_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _account(),
        _account("acting_as_id"),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("code_sends", sa.Integer(), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webmail_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["acting_as_id"],
            ["accounts.id"],
            name=op.f("fk_webmail_sessions_acting_as_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_webmail_sessions")),
    )
    with op.batch_alter_table("webmail_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webmail_sessions_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_webmail_sessions_last_seen_at"), ["last_seen_at"])

    op.create_table(
        "webmail_read_receipts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        _account(),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webmail_read_receipts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webmail_read_receipts")),
        sa.UniqueConstraint(
            "account_id",
            "message_key",
            name=op.f("uq_webmail_read_receipts_account_id_message_key"),
        ),
    )

    watermark = op.create_table(
        "notify_watermark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_watermark")),
    )
    newest = op.get_bind().scalar(sa.text("SELECT MAX(id) FROM messages"))
    op.bulk_insert(watermark, [{"id": 1, "last_message_id": int(newest or 0)}])

    op.create_table(
        "notify_folders",
        sa.Column("folder_id", _ID, nullable=False),
        sa.Column("seen_uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name=op.f("fk_notify_folders_folder_id_folders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("folder_id", name=op.f("pk_notify_folders")),
    )

    op.create_table(
        "notify_recipients",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("pending_since", sa.DateTime(), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_notify_recipients")),
    )
    with op.batch_alter_table("notify_recipients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_recipients_pending_since"), ["pending_since"])

    op.create_table(
        "notify_outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
    )
    with op.batch_alter_table("notify_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_notify_outbox_due", ["sent_at", "failed_at", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "notify_outbox",
        "notify_recipients",
        "notify_folders",
        "notify_watermark",
        "webmail_read_receipts",
        "webmail_sessions",
    ):
        op.drop_table(table)
