"""LLM spend budgets (campaign, UTC day, UTC month) and an index for the day and month spend queries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models.base

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('budgets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.Enum('campaign', 'day', 'month', name='budgetscope', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('campaign_key', sa.String(length=128), nullable=True, comment='Set for campaign budgets only.'),
    sa.Column('max_tokens', sa.BigInteger(), nullable=True, comment='Prompt plus completion tokens.'),
    sa.Column('max_usd', sa.Numeric(precision=14, scale=6), nullable=True, comment='US dollars, priced like the ledger.'),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(scope = 'campaign' AND campaign_key IS NOT NULL) OR (scope <> 'campaign' AND campaign_key IS NULL)", name=op.f('ck_budgets_campaign_key_iff_campaign_scope')),
    sa.CheckConstraint('max_tokens IS NULL OR max_tokens >= 0', name=op.f('ck_budgets_max_tokens_not_negative')),
    sa.CheckConstraint('max_usd IS NULL OR max_usd >= 0', name=op.f('ck_budgets_max_usd_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budgets')),
    sa.UniqueConstraint('scope', 'campaign_key', name=op.f('uq_budgets_scope_campaign_key'))
    )
    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.create_index('uq_budgets_one_per_period', ['scope'], unique=True, postgresql_where=sa.text('campaign_key IS NULL'), sqlite_where=sa.text('campaign_key IS NULL'))

    with op.batch_alter_table('llm_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_llm_calls_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('llm_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_llm_calls_created_at'))

    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.drop_index('uq_budgets_one_per_period', postgresql_where=sa.text('campaign_key IS NULL'), sqlite_where=sa.text('campaign_key IS NULL'))

    op.drop_table('budgets')
