"""Contacts and calls (issue 10): each session's cached answers to "is this number on
WhatsApp?", the calls it received (and when one was rejected), and the per-session
setting that rejects calls, with the text sent to the caller.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("reject_calls", sa.Boolean(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("reject_calls_message", sa.Text(), nullable=True))
    op.create_table(
        "number_checks",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("on_whatsapp", sa.Boolean(), nullable=False),
        sa.Column("jid", sa.String(64), nullable=True),
        sa.Column("lid", sa.String(40), nullable=True),
        sa.Column("business", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "phone", name="pk_number_checks"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_number_checks_session_id_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "calls",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("caller_lid", sa.String(40), nullable=True),
        sa.Column("video", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_group", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("auto_reject", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "id", name="pk_calls"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_calls_session_id_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_calls_received_at", "calls", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_received_at", table_name="calls")
    op.drop_table("calls")
    op.drop_table("number_checks")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("reject_calls_message")
        batch.drop_column("reject_calls")
