"""Liveness never touches the database; readiness says whether the database answers at the current schema."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from core.db import Database
from core.settings import Settings
from web.app import create_app

NOTHING_LISTENS = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # port 1: connection refused at once


def test_live_answers_200_without_a_database() -> None:
    unreachable = Database.from_url(NOTHING_LISTENS)

    with TestClient(create_app(Settings(), database=unreachable)) as client:
        response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "live"}


def test_ready_answers_200_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_ready_answers_503_on_an_unmigrated_empty_database(tmp_path: Path) -> None:
    empty = Database.from_url(f"sqlite:///{tmp_path}/empty.db")

    with TestClient(create_app(Settings(), database=empty)) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "error": "service_unavailable",
        "message": "the database schema is not current: run `nudge db upgrade`",
    }


def test_ready_answers_503_when_the_database_does_not_answer() -> None:
    unreachable = Database.from_url(NOTHING_LISTENS)

    with TestClient(create_app(Settings(), database=unreachable)) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {"error": "service_unavailable", "message": "the database does not answer"}
