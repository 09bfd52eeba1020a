"""Only health checks are public: every other route needs credentials, and production publishes no API docs."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from core.db import Database
from core.settings import Environment, Settings
from web.app import create_app

PUBLIC = {"/health/live", "/health/ready"}


def test_every_route_but_health_requires_a_write_key(client: TestClient) -> None:
    routes = [route for route in client.app.routes if isinstance(route, APIRoute)]  # type: ignore[attr-defined]

    for route in routes:
        if route.path in PUBLIC:
            continue
        for method in route.methods:
            response = client.request(method, route.path)
            assert response.status_code == 401, (method, route.path)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_production_serves_no_api_docs(path: str, sqlite_db: Database) -> None:
    settings = Settings(environment=Environment.PRODUCTION)

    with TestClient(create_app(settings, database=sqlite_db)) as client:
        assert client.get(path).status_code == 404


def test_the_embedded_default_serves_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert {"/v1/identify", "/v1/track", "/v1/batch", "/health/live", "/health/ready"} <= set(schema["paths"])
