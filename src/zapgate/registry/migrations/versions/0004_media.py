"""Media messages: what kind of media a message carries and where its bytes are.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("media_type", sa.String(16), nullable=True))
        batch.add_column(sa.Column("media_mime", sa.String(200), nullable=True))
        batch.add_column(sa.Column("media_name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("media_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("media_ref", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name in ("media_ref", "media_size", "media_name", "media_mime", "media_type"):
            batch.drop_column(name)
