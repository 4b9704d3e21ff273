"""LIDs: the chat's LID beside its address on each message, and each session's LID <->
phone map, learned from the events that carry both.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("chat_lid", sa.String(40), nullable=True))
    op.create_index("ix_messages_session_id_chat_lid", "messages", ["session_id", "chat_lid"])
    op.create_table(
        "lid_phones",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("lid", sa.String(40), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "lid", name="pk_lid_phones"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_lid_phones_session_id_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_lid_phones_session_id_phone", "lid_phones", ["session_id", "phone"])


def downgrade() -> None:
    op.drop_index("ix_lid_phones_session_id_phone", table_name="lid_phones")
    op.drop_table("lid_phones")
    op.drop_index("ix_messages_session_id_chat_lid", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("chat_lid")
