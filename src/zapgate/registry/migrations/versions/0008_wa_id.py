"""WhatsApp's id of each message beside the gateway's: receipts (and later replies,
reactions, edits, deletes) name a message by it, and WhatsApp assigns it on send.

Rows written before it get their own id: inbound messages are stored under WhatsApp's id,
and outbound ones were sent under the gateway's id by the sim (whatsmeow's were lost).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("wa_id", sa.String(128), nullable=True))
    op.execute("UPDATE messages SET wa_id = id")
    op.create_index("ix_messages_session_id_wa_id", "messages", ["session_id", "wa_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_session_id_wa_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("wa_id")
