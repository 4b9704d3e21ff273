"""Messages beyond text and media (issue 9): each message's kind, its extras (quote,
mentions, location, contacts, poll) as JSON, the gateway id of the message it replies to,
whether the phone sent it, when it was edited, revoked or read; reactions and poll votes;
an index for chats and their histories.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), server_default="text", nullable=False))
        batch.add_column(sa.Column("content", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reply_to", sa.String(128), nullable=True))
        batch.add_column(sa.Column("from_me", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE messages SET kind = 'media' WHERE media_type IS NOT NULL")
    op.create_index("ix_messages_session_id_chat_pk", "messages", ["session_id", "chat", "pk"])
    for table, who, value, value_type in (
        ("reactions", "reactor", "emoji", sa.String(64)),
        ("poll_votes", "voter", "selected", sa.Text()),
    ):
        op.create_table(
            table,
            sa.Column("message_pk", sa.BigInteger(), nullable=False),
            sa.Column(who, sa.String(200), nullable=False),
            sa.Column(value, value_type, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("message_pk", who, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["message_pk"],
                ["messages.pk"],
                name=f"fk_{table}_message_pk_messages",
                ondelete="CASCADE",
            ),
        )


def downgrade() -> None:
    op.drop_table("poll_votes")
    op.drop_table("reactions")
    op.drop_index("ix_messages_session_id_chat_pk", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in ("read_at", "revoked_at", "edited_at", "from_me", "reply_to", "content"):
            batch.drop_column(column)
        batch.drop_column("kind")
