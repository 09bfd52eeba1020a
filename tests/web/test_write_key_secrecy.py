"""A write key is shown once: never in logs (SQL parameters included), error bodies or reprs."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from audience.sources import create_source, hash_write_key
from core.db import Database
from tests.support.intake import basic_auth


def test_the_write_key_never_appears_in_logs_or_reprs(
    client: TestClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and their parameters
    with db.session() as session:
        new = create_source(session, "website")
        reprs = f"{new!r} {new.source!r} {vars(new.source)!r}"
    key = new.write_key

    ok = client.post("/v1/track", json={"userId": "u-1", "event": "Clicked"}, headers=basic_auth(key))
    refused = client.post("/v1/track", json={"userId": "u-1"}, headers=basic_auth(key))

    assert (ok.status_code, refused.status_code) == (200, 400)
    assert hash_write_key(key) in caplog.text  # the SQL was logged with its parameters
    assert key not in caplog.text
    assert key not in reprs
    assert key not in refused.text
