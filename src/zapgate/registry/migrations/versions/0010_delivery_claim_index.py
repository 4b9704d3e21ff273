"""Deliveries: an index for the dispatcher's claim (a webhook's pending deliveries in
event order), which otherwise walked every delivery the webhook ever made. The index on
webhook_id alone goes: the unique (webhook_id, event_seq) and the new index both start
with it, and each index costs every event's insert.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_webhook_id_status_event_seq",
        "deliveries",
        ["webhook_id", "status", "event_seq"],
    )
    op.drop_index("ix_deliveries_webhook_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_webhook_id", "deliveries", ["webhook_id"])
    op.drop_index("ix_deliveries_webhook_id_status_event_seq", table_name="deliveries")
