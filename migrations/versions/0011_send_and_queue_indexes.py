"""Indexes for two hot reads: a campaign's messages by customer (the send's "who is left" anti-join, which
PostgreSQL otherwise plans as a nested loop over every message while a fresh campaign's statistics are stale),
and campaigns by state, newest first (the review queue), replacing the index on state alone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_campaign_key_customer_id"), ["campaign_key", "customer_id"], unique=False
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_state"))
        batch_op.create_index(batch_op.f("ix_campaigns_state_updated_at_id"), ["state", "updated_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_state_updated_at_id"))
        batch_op.create_index(batch_op.f("ix_campaigns_state"), ["state"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_campaign_key_customer_id"))
