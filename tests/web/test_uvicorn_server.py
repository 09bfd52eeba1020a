"""The real app under uvicorn on a loopback port, against PostgreSQL, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.db import Database
from core.settings import Settings
from tests.support.intake import basic_auth, new_write_key, snapshot
from web.app import create_app
from web.serving import serving


@pytest.fixture
def server_url(postgres_db: Database) -> Iterator[str]:
    with serving(create_app(Settings(intake_max_batch_bytes=50_000), database=postgres_db)) as url:
        yield url


def test_a_batch_posted_over_http_is_stored(server_url: str, postgres_db: Database) -> None:
    auth = basic_auth(new_write_key(postgres_db))
    batch = [
        {"type": "identify", "userId": f"u-{n}", "messageId": f"i-{n}", "traits": {"email": f"u{n}@x.io"}}
        for n in range(20)
    ] + [{"type": "track", "userId": f"u-{n % 20}", "messageId": f"t-{n}", "event": "Viewed"} for n in range(80)]

    response = httpx.post(f"{server_url}/v1/batch", json={"batch": batch}, headers=auth)
    replay = httpx.post(f"{server_url}/v1/batch", json={"batch": batch}, headers=auth)

    assert response.status_code == 200
    assert response.json() == {"success": True, "stored": 100, "duplicates": 0}
    assert replay.json() == {"success": True, "stored": 0, "duplicates": 100}
    rows = snapshot(postgres_db)
    assert (len(rows["events"]), len(rows["customers"])) == (100, 20)


def test_a_chunked_body_over_the_limit_is_refused_over_http(server_url: str, postgres_db: Database) -> None:
    auth = basic_auth(new_write_key(postgres_db))
    before = snapshot(postgres_db)

    def endless() -> Iterator[bytes]:
        yield b'{"batch": ['
        for _ in range(2_000):
            yield b'{"type": "track", "anonymousId": "a", "event": "e"},' * 10

    response = httpx.post(f"{server_url}/v1/batch", content=endless(), headers=auth)

    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "message": "the request body is larger than the limit of 50000 bytes",
    }
    assert snapshot(postgres_db) == before
