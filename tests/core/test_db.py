"""The session scope commits what succeeds and keeps nothing of what fails; time comes back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.models import Customer, Order


def test_session_scope_commits_on_success(db: Database) -> None:
    with db.session() as session:
        session.add(Customer(external_id="c-1"))

    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1


def _add_customer_then_fail(db: Database) -> None:
    with db.session() as session:
        session.add(Customer(external_id="c-1"))
        session.flush()
        raise RuntimeError("boom")


def test_session_scope_rolls_back_everything_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _add_customer_then_fail(db)

    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_datetimes_are_stored_and_read_back_as_utc(db: Database) -> None:
    paris_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.session() as session:
        customer = Customer(external_id="c-1")
        session.add(customer)
        session.flush()
        session.add(Order(customer_id=customer.id, amount="12.50", currency="EUR", ordered_at=paris_noon))

    with db.session() as session:
        order = session.scalars(select(Order)).one()
        assert order.ordered_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
        assert order.ordered_at.tzinfo is UTC
        assert str(order.amount) == "12.50"
