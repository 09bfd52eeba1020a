"""Messages a dead worker left in flight are settled from the provider's own record: sent once, never twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from campaigns.reconcile import LOST_MARK, Reconciled, reconcile
from campaigns.sending import finish_if_done, send_batch
from channels.outbox import OutboxEmailSender
from channels.ports import OutboundEmail, SendReceipt
from core.db import Database
from core.models import (
    Campaign,
    CampaignState,
    Message,
    MessageStatus,
    OutboxMessage,
    Provider,
    ProviderEvent,
)
from tests.campaigns.test_sending import KEY, NOW, SETTINGS, seed

IN_FLIGHT = timedelta(seconds=SETTINGS.send_in_flight_seconds + 1)
ABSENT = timedelta(seconds=SETTINGS.send_reconcile_after_seconds + 1)
WITH_WEBHOOK = SETTINGS.model_copy(update={"sendgrid_webhook_public_key": "MFkw…"})


class Crashing(OutboxEmailSender):
    """Stores the batch, then the worker dies before the receipts are recorded: the outbox rows roll back."""

    def send_batch(self, batch: Sequence[OutboundEmail]) -> list[SendReceipt]:
        super().send_batch(batch)
        raise RuntimeError("worker lost")


def crash(db: Database, campaign_id: int, customers: Sequence[int]) -> None:
    with pytest.raises(RuntimeError), db.session() as session:  # the unit of work rolls back, as in a dead worker
        send_batch(session, SETTINGS, campaign_id, customers, NOW, email_sender=Crashing(session))


def run(db: Database, at: datetime, settings: object = SETTINGS) -> Reconciled:
    with db.session() as session:
        return reconcile(session, settings, at)  # type: ignore[arg-type]


def rows(db: Database) -> list[tuple[int, MessageStatus, str | None]]:
    with db.session() as session:
        query = select(Message.customer_id, Message.status, Message.error).order_by(Message.customer_id)
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def as_provider(db: Database, provider: Provider) -> None:
    with db.session() as session:
        session.execute(update(Message).values(provider=provider, updated_at=NOW))  # as written


def provider_event(db: Database, customer: int, kind: str = "processed") -> None:
    with db.session() as session:
        key = session.scalars(select(Message.message_key).where(Message.customer_id == customer)).one()
        session.add(
            ProviderEvent(
                provider=Provider.SENDGRID,
                event_id=f"evt-{customer}",
                fallback_key=f"evt-{customer}",
                kind=kind,
                message_key=key,
                payload={"event": kind, "sg_message_id": f"sg{customer}.filter"},
                received_at=NOW + timedelta(seconds=2),
            )
        )


def test_a_fresh_in_flight_row_is_left_to_its_worker(db: Database) -> None:
    campaign_id = seed(db, (1,))
    crash(db, campaign_id, [1])

    assert run(db, NOW + timedelta(seconds=30)) == Reconciled()
    assert rows(db) == [(1, MessageStatus.PENDING, None)]


def test_an_outbox_message_lost_in_a_crash_is_sent_again_once_and_the_campaign_finishes(db: Database) -> None:
    campaign_id = seed(db, (1, 2))
    crash(db, campaign_id, [1, 2])
    later = NOW + IN_FLIGHT

    result = run(db, later)

    assert result.resend == {campaign_id: [1, 2]}
    assert rows(db) == [(1, MessageStatus.PENDING, LOST_MARK), (2, MessageStatus.PENDING, LOST_MARK)]
    with db.session() as session:
        send_batch(session, SETTINGS, campaign_id, result.resend[campaign_id], later)
        assert finish_if_done(session, campaign_id, later) is True
    assert rows(db) == [(1, MessageStatus.SENT, None), (2, MessageStatus.SENT, None)]
    with db.session() as session:
        assert session.scalar(select(Campaign.state)) is CampaignState.SENT
        assert len(session.scalars(select(OutboxMessage)).all()) == 2
    assert run(db, later + IN_FLIGHT) == Reconciled()  # settled: nothing more to do


def test_a_provider_event_naming_the_message_settles_it_sent_and_nothing_is_resent(db: Database) -> None:
    campaign_id = seed(db, (1, 2))
    crash(db, campaign_id, [1, 2])
    as_provider(db, Provider.SENDGRID)
    provider_event(db, 1)

    result = run(db, NOW + ABSENT, WITH_WEBHOOK)

    assert (result.confirmed, result.finished, result.resend) == (1, {campaign_id}, {campaign_id: [2]})
    assert rows(db) == [(1, MessageStatus.SENT, None), (2, MessageStatus.PENDING, LOST_MARK)]
    with db.session() as session:
        sent_at = session.scalar(select(Message.sent_at).where(Message.customer_id == 1))
        assert sent_at is not None
        assert sent_at.replace(tzinfo=NOW.tzinfo) == NOW + timedelta(seconds=2)


def test_without_an_event_the_provider_is_given_the_reconcile_window_before_a_resend(db: Database) -> None:
    campaign_id = seed(db, (1,))
    crash(db, campaign_id, [1])
    as_provider(db, Provider.SENDGRID)

    assert run(db, NOW + IN_FLIGHT, WITH_WEBHOOK).unknown == 1
    assert rows(db) == [(1, MessageStatus.PENDING, None)]
    assert run(db, NOW + ABSENT, WITH_WEBHOOK).resend == {campaign_id: [1]}


def test_without_the_providers_events_a_lost_message_is_reported_and_never_resent(db: Database) -> None:
    seed(db, (1,))
    crash(db, _campaign_id(db), [1])
    as_provider(db, Provider.SENDGRID)

    result = run(db, NOW + ABSENT * 10, SETTINGS)  # no Event Webhook key: absence of events proves nothing

    assert (result.unknown, result.resend) == (1, {})
    assert rows(db) == [(1, MessageStatus.PENDING, None)]


def test_a_retry_marked_row_whose_task_gave_up_is_sent_again(db: Database) -> None:
    campaign_id = seed(db, (1,))
    crash(db, campaign_id, [1])
    with db.session() as session:
        session.execute(update(Message).values(error="retry: HTTP 503", updated_at=NOW))

    assert run(db, NOW + timedelta(seconds=30)).resend == {}  # its task may still be retrying
    assert run(db, NOW + IN_FLIGHT).resend == {campaign_id: [1]}


def test_a_cancelled_campaign_sends_nothing_more(db: Database) -> None:
    campaign_id = seed(db, (1,))
    crash(db, campaign_id, [1])
    with db.session() as session:
        session.execute(update(Campaign).values(state=CampaignState.CANCELLED))

    assert run(db, NOW + IN_FLIGHT).resend == {}
    assert rows(db) == [(1, MessageStatus.PENDING, LOST_MARK)]


def _campaign_id(db: Database) -> int:
    with db.session() as session:
        return session.scalars(select(Campaign.id).where(Campaign.key == KEY)).one()


def test_settings_default_to_windows_past_the_send_task_limit() -> None:
    assert SETTINGS.send_in_flight_seconds > 300  # workers.tasks.send_batch's hard time limit
    assert SETTINGS.send_reconcile_after_seconds > SETTINGS.send_in_flight_seconds
