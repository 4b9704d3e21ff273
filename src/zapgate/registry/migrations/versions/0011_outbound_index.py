"""The outbound queue's scans (`due_outbound`, `expired`) find the few queued or pending
messages by status instead of reading every message ever stored.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_messages_status_deadline_at", "messages", ["status", "deadline_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_status_deadline_at", "messages")
