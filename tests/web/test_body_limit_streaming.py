"""A streamed body over the limit is refused as soon as it passes the limit; the rest is never read."""

from __future__ import annotations

from typing import Any

import anyio

from core.db import Database
from core.settings import Settings
from tests.support.intake import basic_auth, snapshot
from web.app import create_app

CHUNK = b"x" * 100


def test_a_chunked_body_is_read_only_until_it_passes_the_limit(db: Database, write_key: str) -> None:
    app = create_app(Settings(intake_max_batch_bytes=1000), database=db)
    before = snapshot(db)
    received: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append(len(CHUNK))
        return {"type": "http.request", "body": CHUNK, "more_body": len(received) < 10_000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, _scope("/v1/batch", write_key), receive, send)

    assert sent[0]["status"] == 413
    assert len(received) == 11  # 1,100 bytes: the first chunk past 1,000
    assert snapshot(db) == before


def _scope(path: str, write_key: str) -> dict[str, Any]:
    headers = [(name.lower().encode(), value.encode()) for name, value in basic_auth(write_key).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
