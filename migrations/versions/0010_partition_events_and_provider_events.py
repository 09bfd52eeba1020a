"""Intake events and provider events: idempotency keys in their own tables, the logs partitioned by month.

``event_keys`` (``message_id``) and ``provider_event_keys`` (``(provider, event_id)``; ``(provider,
fallback_key)`` unique) take the writers' ``ON CONFLICT DO NOTHING``; they are filled from the existing rows.
``outcomes`` gains ``event_received_at`` and references its event by ``(event_id, event_received_at)``,
``ON DELETE SET NULL`` (retention clears it; an outcome lives as long as its message); ``provider_events``
declares ``(id, received_at)`` unique for it on SQLite, where the primary key is the id alone (on PostgreSQL the
primary key is those columns). The index on ``provider_events.processed_at`` becomes a partial index of the
pending events' ids, the claim's queue, and ``(message_key, received_at)`` is indexed for reconciliation.

On PostgreSQL ``events`` and ``provider_events`` are rebuilt as tables range-partitioned by month on
``received_at`` with the primary key ``(id, received_at)``: renamed away, created anew (keeping their id
sequences), given a partition for each month their rows span and this month and three ahead, copied, dropped.
The copy is one ``INSERT … SELECT`` per table: run it in a maintenance window on a large database.
``nudge_ensure_month_partition`` now runs with the time zone set to UTC, so a ``timestamptz`` partition's bounds
are UTC midnights (a ``date`` one is unaffected), and ``nudge_drop_month_partitions_before`` detaches a partition
before dropping it (PostgreSQL refuses to drop a partition of a table a foreign key references).
SQLite keeps plain tables (and no comments): the unique constraints move to the key tables.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 14:30:00.000000
"""

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.models.base

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0009, with the bounds read in UTC (the function-level SET applies to its EXECUTE).
ENSURE_PARTITION = r"""
CREATE OR REPLACE FUNCTION nudge_ensure_month_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
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
            EXECUTE format('ALTER TABLE %I DETACH PARTITION partitions.%I', parent, child);
            EXECUTE format('DROP TABLE partitions.%I', child);
            RETURN NEXT child;
        END IF;
    END LOOP;
END $$;
"""

MONTHS_AHEAD = 3
# provider_events' claim queue: pending events by id (replaces the index on processed_at).
PENDING = sa.text('processed_at IS NULL')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
EVENT_COLUMNS = ('id', 'message_id', 'type', 'name', 'customer_id', 'user_id', 'anonymous_id', 'properties',
                 'context', 'occurred_at', 'received_at', 'source_id')
PROVIDER_EVENT_COLUMNS = ('id', 'provider', 'event_id', 'fallback_key', 'kind', 'message_key', 'payload',
                          'received_at', 'processed_at')


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def _provider_enum() -> sa.Enum:
    return sa.Enum('outbox', 'sendgrid', 'twilio', name='provider', native_enum=False, create_constraint=True, length=32)


def _event_id_comment() -> str:
    return "The provider's id (sg_event_id, a Twilio SID+status)."


def _fallback_comment() -> str:
    return 'sha256 of what identifies the event without its id: retries may carry new ids.'


def upgrade() -> None:
    postgres = _is_postgres()
    _create_key_tables()
    op.execute('INSERT INTO event_keys (message_id, received_at) SELECT message_id, received_at FROM events')
    op.execute('INSERT INTO provider_event_keys (provider, event_id, fallback_key, received_at) '
               'SELECT provider, event_id, fallback_key, received_at FROM provider_events')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_received_at', core.models.base.UTCDateTime(timezone=True), nullable=True, comment='ProviderEvent.received_at.'))
    op.execute('UPDATE outcomes SET event_received_at = '
               '(SELECT received_at FROM provider_events WHERE provider_events.id = outcomes.event_id)')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outcomes_event_id_provider_events'), type_='foreignkey')
        batch_op.alter_column('event_id', existing_type=BIG_ID, nullable=True, comment='ProviderEvent.id; NULL once that event is past retention.')
    if postgres:
        op.execute(ENSURE_PARTITION)
        op.execute(DROP_PARTITIONS)
        _rebuild('events', lambda: _create_events(partitioned=True), EVENT_COLUMNS)
        _rebuild('provider_events', lambda: _create_provider_events(partitioned=True), PROVIDER_EVENT_COLUMNS)
    else:
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.drop_constraint('uq_events_message_id', type_='unique')
        with op.batch_alter_table('provider_events', schema=None) as batch_op:
            batch_op.drop_constraint('uq_provider_events_provider_event_id', type_='unique')
            batch_op.drop_constraint('uq_provider_events_provider_fallback_key', type_='unique')
            batch_op.create_unique_constraint(batch_op.f('uq_provider_events_id_received_at'), ['id', 'received_at'])
            batch_op.create_index(batch_op.f('ix_provider_events_message_key_received_at'), ['message_key', 'received_at'], unique=False)
            batch_op.drop_index(batch_op.f('ix_provider_events_processed_at'))
            batch_op.create_index('ix_provider_events_pending', ['id'], unique=False, sqlite_where=PENDING)
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_outcomes_event_id_provider_events'), 'provider_events',
                                    ['event_id', 'event_received_at'], ['id', 'received_at'], ondelete='SET NULL')


def downgrade() -> None:
    postgres = _is_postgres()
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outcomes_event_id_provider_events'), type_='foreignkey')
    if postgres:
        _rebuild('events', lambda: _create_events(partitioned=False), EVENT_COLUMNS)
        _rebuild('provider_events', lambda: _create_provider_events(partitioned=False), PROVIDER_EVENT_COLUMNS)
        op.execute(_DROP_PARTITIONS_0009)
        op.execute(_ENSURE_PARTITION_0009)
    else:
        with op.batch_alter_table('provider_events', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_provider_events_message_key_received_at'))
            batch_op.drop_index('ix_provider_events_pending')
            batch_op.create_index(batch_op.f('ix_provider_events_processed_at'), ['processed_at'], unique=False)
            batch_op.drop_constraint(batch_op.f('uq_provider_events_id_received_at'), type_='unique')
            batch_op.create_unique_constraint(batch_op.f('uq_provider_events_provider_event_id'), ['provider', 'event_id'])
            batch_op.create_unique_constraint(batch_op.f('uq_provider_events_provider_fallback_key'), ['provider', 'fallback_key'])
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.create_unique_constraint(batch_op.f('uq_events_message_id'), ['message_id'])
    # An outcome whose event is past retention has no event to point at any more: it cannot stay.
    op.execute('DELETE FROM outcomes WHERE event_id IS NULL')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.alter_column('event_id', existing_type=BIG_ID, nullable=False, comment=None)
        batch_op.drop_column('event_received_at')
        batch_op.create_foreign_key(batch_op.f('fk_outcomes_event_id_provider_events'), 'provider_events',
                                    ['event_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('provider_event_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_event_keys_received_at'))
    op.drop_table('provider_event_keys')
    with op.batch_alter_table('event_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_keys_received_at'))
    op.drop_table('event_keys')


def _create_key_tables() -> None:
    op.create_table('event_keys',
    sa.Column('message_id', sa.String(length=128), nullable=False, comment='Segment messageId.'),
    sa.Column('received_at', core.models.base.UTCDateTime(timezone=True), nullable=False, comment='When it was first stored: Event.received_at.'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_event_keys'))
    )
    with op.batch_alter_table('event_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_keys_received_at'), ['received_at'], unique=False)

    op.create_table('provider_event_keys',
    sa.Column('provider', _provider_enum(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False, comment=_event_id_comment()),
    sa.Column('fallback_key', sa.String(length=128), nullable=False, comment=_fallback_comment()),
    sa.Column('received_at', core.models.base.UTCDateTime(timezone=True), nullable=False, comment='ProviderEvent.received_at: retention deletes by it.'),
    sa.PrimaryKeyConstraint('provider', 'event_id', name=op.f('pk_provider_event_keys')),
    sa.UniqueConstraint('provider', 'fallback_key', name=op.f('uq_provider_event_keys_provider_fallback_key'))
    )
    with op.batch_alter_table('provider_event_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_event_keys_received_at'), ['received_at'], unique=False)


def _create_events(*, partitioned: bool) -> None:
    op.create_table('events',
    # Not autoincrement: the table keeps the sequence it had (``_rebuild``).
    sa.Column('id', sa.BigInteger(), nullable=False, autoincrement=False),
    sa.Column('message_id', sa.String(length=128), nullable=False, comment='Segment messageId; unique by event_keys.' if partitioned else 'Segment messageId: the idempotency key.'),
    sa.Column('type', sa.Enum('identify', 'track', name='eventtype', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True, comment='Track event name; NULL for identify.'),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('user_id', sa.String(length=128), nullable=True),
    sa.Column('anonymous_id', sa.String(length=128), nullable=True),
    sa.Column('properties', JSON, nullable=False, comment='Track properties or identify traits.'),
    sa.Column('context', JSON, nullable=False),
    sa.Column('occurred_at', core.models.base.UTCDateTime(timezone=True), nullable=False, comment='Segment timestamp, corrected for client clock skew.'),
    sa.Column('received_at', core.models.base.UTCDateTime(timezone=True), nullable=False, comment='The partition key on PostgreSQL.' if partitioned else None),
    sa.Column('source_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_events_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_events_source_id_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint(*(('id', 'received_at') if partitioned else ('id',)), name=op.f('pk_events')),
    *(() if partitioned else (sa.UniqueConstraint('message_id', name=op.f('uq_events_message_id')),)),
    postgresql_partition_by='RANGE (received_at)' if partitioned else None,
    )
    op.create_index(op.f('ix_events_customer_id_occurred_at'), 'events', ['customer_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_events_name_occurred_at'), 'events', ['name', 'occurred_at'], unique=False)


def _create_provider_events(*, partitioned: bool) -> None:
    op.create_table('provider_events',
    # Not autoincrement: the table keeps the sequence it had (``_rebuild``).
    sa.Column('id', sa.BigInteger(), nullable=False, autoincrement=False),
    sa.Column('provider', _provider_enum(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False, comment=_event_id_comment()),
    sa.Column('fallback_key', sa.String(length=128), nullable=False, comment=_fallback_comment()),
    sa.Column('kind', sa.String(length=32), nullable=False, comment="The provider's event or status name."),
    sa.Column('message_key', sa.String(length=64), nullable=True),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('received_at', core.models.base.UTCDateTime(timezone=True), nullable=False, comment='The partition key on PostgreSQL.' if partitioned else None),
    sa.Column('processed_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint(*(('id', 'received_at') if partitioned else ('id',)), name=op.f('pk_provider_events')),
    # Partitioned, the primary key is the target of outcomes' foreign key; the models' unique (id, received_at),
    # which SQLite needs for it, would be dropped by PostgreSQL as redundant, so it is not written here.
    *(() if partitioned else (
        sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_events_provider_event_id')),
        sa.UniqueConstraint('provider', 'fallback_key', name=op.f('uq_provider_events_provider_fallback_key')),
    )),
    postgresql_partition_by='RANGE (received_at)' if partitioned else None,
    )
    if partitioned:
        op.create_index('ix_provider_events_pending', 'provider_events', ['id'], unique=False, postgresql_where=PENDING)
        op.create_index(op.f('ix_provider_events_message_key_received_at'), 'provider_events', ['message_key', 'received_at'], unique=False)
    else:
        op.create_index(op.f('ix_provider_events_processed_at'), 'provider_events', ['processed_at'], unique=False)


def _rebuild(table: str, create: Callable[[], None], columns: Sequence[str]) -> None:
    """PostgreSQL: rename ``table`` and its indexes away, ``create`` it anew (with a partition for every month
    its rows span, and this month and three ahead, if partitioned), hand it the id sequence, copy the rows,
    drop the old table."""
    keep_sequence = f'{table}_id_seq'  # made by 0001 / 0006 as a BIGSERIAL's
    old = f'{table}_before_0010'
    bind = op.get_bind()
    indexes = bind.execute(sa.text('SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() '
                                   'AND tablename = :table'), {'table': table}).scalars().all()
    op.rename_table(table, old)
    for index in indexes:
        op.execute(f'ALTER INDEX {index} RENAME TO {index}_before_0010')
    create()
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{keep_sequence}')")
    op.execute(f'ALTER SEQUENCE {keep_sequence} OWNED BY {table}.id')
    partitioned = bind.scalar(sa.text("SELECT relkind = 'p' FROM pg_class WHERE oid = CAST(:table AS regclass)"),
                              {'table': table})
    if partitioned:
        months = bind.execute(sa.text(f"SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC')::date "
                                      f'FROM {old}')).scalars().all()
        for month in sorted({*months, *_months_ahead()}):
            op.execute(sa.text('SELECT nudge_ensure_month_partition(:parent, :month)').bindparams(parent=table, month=month))
    names = ', '.join(columns)
    op.execute(f'INSERT INTO {table} ({names}) SELECT {names} FROM {old}')
    op.execute(f'DROP TABLE {old}')


def _months_ahead() -> list[date]:
    this_month = datetime.now(UTC).date().replace(day=1)
    months = []
    for offset in range(MONTHS_AHEAD + 1):
        year, month = divmod(this_month.month - 1 + offset, 12)
        months.append(date(this_month.year + year, month + 1, 1))
    return months


# 0009's functions, restored by the downgrade.
_ENSURE_PARTITION_0009 = ENSURE_PARTITION.replace(" SET timezone = 'UTC'", '')
_DROP_PARTITIONS_0009 = DROP_PARTITIONS.replace(
    "            EXECUTE format('ALTER TABLE %I DETACH PARTITION partitions.%I', parent, child);\n", '')
