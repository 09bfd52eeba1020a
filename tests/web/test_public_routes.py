"""Only health checks, signed webhooks, the signed unsubscribe and the login form are public: every other
route needs credentials (pages redirect to the login form, the API answers 401), and production publishes
no API docs."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.db import Database
from core.settings import Environment, Settings
from web.app import create_app

PUBLIC = {
    "/health/live",
    "/health/ready",
    # Provider webhooks: the signature is the credential (tests/web/test_webhooks_*.py pin the 401s).
    "/webhooks/sendgrid",
    "/webhooks/twilio/status",
    "/webhooks/twilio/inbound",
    # One-click unsubscribe and its page: the signed token is the credential (tests/web/test_unsubscribe.py).
    "/u/{token}",
    # The login form: its own double-submit token guards the post (tests/web/test_workspace.py).
    "/login",
}
API_PREFIXES = ("/v1/", "/api/")


def test_every_route_but_the_public_ones_requires_credentials(client: TestClient) -> None:
    routes = [route for route in client.app.routes if isinstance(route, APIRoute)]  # type: ignore[attr-defined]

    for route in routes:
        if route.path in PUBLIC:
            continue
        for method in route.methods:
            response = client.request(method, route.path, follow_redirects=False)
            if route.path.startswith(API_PREFIXES):
                assert response.status_code == 401, (method, route.path)
            else:
                assert response.status_code == 303, (method, route.path)
                assert response.headers["location"].startswith("/login"), (method, route.path)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_production_serves_no_api_docs(path: str, sqlite_db: Database) -> None:
    # The least production accepts to start (channels.factory.check_configured).
    settings = Settings(
        environment=Environment.PRODUCTION, signing_secret=SecretStr("secret"), public_base_url="https://nudge.example"
    )

    with TestClient(create_app(settings, database=sqlite_db)) as client:
        assert client.get(path).status_code == 404


def test_the_embedded_default_serves_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert {"/v1/identify", "/v1/track", "/v1/batch", "/health/live", "/health/ready"} <= set(schema["paths"])
