"""The cost ledger (range-partitioned by month on PostgreSQL) and drift measurements.

On PostgreSQL ``cost_entries`` is a partitioned table: its primary key is ``(id, day)`` (a partitioned table's
keys must hold the partition key) and two functions manage its monthly partitions — ``nudge_ensure_month_partition``
creates one ahead of need, ``nudge_drop_month_partitions_before`` drops those past retention (``core.partitions``).
The partitions live in their own schema, ``partitions``, out of the application's sight (and of the schema
comparison the tests make); queries go through the parent. SQLite keeps one plain table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 13:20:08.274626
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

import core.models.base

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENSURE_PARTITION = r"""
CREATE OR REPLACE FUNCTION nudge_ensure_month_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    starts date := date_trunc('month', month)::date;
    child text := format('%s_p%s', parent, to_char(starts, 'YYYY_MM'));
BEGIN
    IF to_regclass(format('partitions.%I', child)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE partitions.%I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   child, parent, starts, (starts + interval '1 month')::date);
    RETURN true;
EXCEPTION WHEN duplicate_table THEN
    RETURN false;  -- another session created it first
END $$;
"""

DROP_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION nudge_drop_month_partitions_before(parent text, cutoff date) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    child text;
BEGIN
    FOR child IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass AND c.relname ~ ('^' || parent || '_p[0-9]{4}_[0-9]{2}$')
        ORDER BY c.relname
    LOOP
        IF (to_date(right(child, 7), 'YYYY_MM') + interval '1 month')::date <= cutoff THEN
            EXECUTE format('DROP TABLE partitions.%I', child);
            RETURN NEXT child;
        END IF;
    END LOOP;
END $$;
"""

MONTHS_AHEAD = 3


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    op.create_table('cost_entries',
    # autoincrement: a BIGSERIAL on PostgreSQL although the key is (id, day)
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, autoincrement=True),
    sa.Column('component', sa.Enum('llm', 'email', 'sms', 'offer', 'infrastructure', name='costcomponent', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('source', sa.String(length=160), nullable=False, comment='The event that cost: llm_call:42, message:7 …'),
    sa.Column('day', sa.Date(), nullable=False, comment='UTC day of the source event; the partition key.'),
    sa.Column('campaign_key', sa.String(length=128), nullable=True, comment='Who it is attributed to, if anyone.'),
    sa.Column('customer_id', sa.BigInteger(), nullable=True, comment='The customer contacted (e-mail, SMS, offer); no foreign key: costs outlive customers.'),
    sa.Column('item', sa.String(length=64), nullable=True, comment='Model, channel, offer code or stage.'),
    sa.Column('quantity', sa.BigInteger(), nullable=False, comment='Tokens, e-mails, segments, redemptions or days.'),
    sa.Column('amount', sa.Numeric(precision=14, scale=6), nullable=False, comment='US dollars.'),
    sa.Column('recorded_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint(*(('id', 'day') if postgres else ('id',)), name=op.f('pk_cost_entries')),
    sa.UniqueConstraint('source', 'day', name=op.f('uq_cost_entries_source_day')),
    postgresql_partition_by='RANGE (day)',
    )
    with op.batch_alter_table('cost_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cost_entries_campaign_key_component'), ['campaign_key', 'component'], unique=False)
        batch_op.create_index(batch_op.f('ix_cost_entries_day_component'), ['day', 'component'], unique=False)

    op.create_table('drift_measurements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('churn_contractual', 'churn_noncontractual', 'clv', name='modelkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('feature', sa.String(length=64), nullable=False),
    sa.Column('psi', sa.Double(), nullable=False),
    sa.Column('measured_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_measurements'))
    )
    with op.batch_alter_table('drift_measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_measurements_kind_measured_at'), ['kind', 'measured_at'], unique=False)

    if postgres:
        op.execute('CREATE SCHEMA IF NOT EXISTS partitions')
        op.execute(ENSURE_PARTITION)
        op.execute(DROP_PARTITIONS)
        this_month = datetime.now(UTC).date().replace(day=1)
        for offset in range(MONTHS_AHEAD + 1):
            year, month = divmod(this_month.month - 1 + offset, 12)
            first = date(this_month.year + year, month + 1, 1)
            op.execute(sa.text("SELECT nudge_ensure_month_partition('cost_entries', :month)").bindparams(month=first))


def downgrade() -> None:
    with op.batch_alter_table('drift_measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drift_measurements_kind_measured_at'))

    op.drop_table('drift_measurements')
    with op.batch_alter_table('cost_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cost_entries_day_component'))
        batch_op.drop_index(batch_op.f('ix_cost_entries_campaign_key_component'))

    op.drop_table('cost_entries')  # its partitions go with it
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS nudge_drop_month_partitions_before(text, date)')
        op.execute('DROP FUNCTION IF EXISTS nudge_ensure_month_partition(text, date)')
        op.execute('DROP SCHEMA IF EXISTS partitions')
