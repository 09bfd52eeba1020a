"""Concurrent ingests that create and update the same customers, on PostgreSQL: no deadlock, nothing lost."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import func, select

from audience.intake import ingest
from audience.schemas import Identify, Message, Track
from core.db import Database
from core.models import Customer, Event

USERS = [f"u-{n:02d}" for n in range(30)]
CLIENTS, BATCHES, CALLS = 4, 12, 24


def batch(rng: random.Random, client: int, number: int) -> list[Message]:
    """Identify calls with two different sets of traits, and tracks, for users in random order."""
    calls: list[Message] = []
    for position, user in enumerate(rng.sample(USERS, CALLS)):
        message_id = f"{client}-{number}-{position}"
        if position % 3 == 0:
            calls.append(Track.model_validate({"userId": user, "messageId": message_id, "event": "Viewed"}))
        else:
            traits = {"email": f"{user}@x.io"} if position % 3 == 1 else {"plan": f"p{client}", "firstName": "Ann"}
            calls.append(Identify.model_validate({"userId": user, "messageId": message_id, "traits": traits}))
    return calls


def test_concurrent_batches_sharing_customers_neither_deadlock_nor_lose_calls(postgres_db: Database) -> None:
    def client(number: int) -> int:
        rng = random.Random(number)
        stored = 0
        for batch_number in range(BATCHES):
            with postgres_db.session() as session:
                result = ingest(
                    session, batch(rng, number, batch_number), source_id=None, received_at=datetime.now(UTC)
                )
            stored += result.stored
        return stored

    with ThreadPoolExecutor(CLIENTS) as pool:
        stored = sum(pool.map(client, range(CLIENTS)))  # a deadlock would raise here

    assert stored == CLIENTS * BATCHES * CALLS
    with postgres_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == stored
        assert session.scalar(select(func.count()).select_from(Customer)) == len(USERS)
