"""The FastAPI application factory (``uvicorn --factory web.app:create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema

from channels.factory import check_configured
from core.db import Database
from core.settings import Environment, Settings, get_settings
from web import admin, api, errors, health, intake, login, metrics, pages, unsubscribe, webhooks

STATIC = Path(__file__).parent / "static"
DESCRIPTION = """\
Nudge's HTTP API.

**Event intake** speaks the Segment HTTP Tracking API (`/v1/identify`, `/v1/track`, `/v1/batch`):
authenticate with a source's write key as the HTTP Basic username (`nudge sources create NAME`).
A call is stored once per `messageId`; a replay answers 200 and counts as a duplicate.

**Review** (`/api/…`): read campaigns, edit a draft's copy (its guardrails run again), submit, approve,
reject, request changes, schedule and cancel. Authenticate with an API token as a bearer token
(`Authorization: Bearer nudge_…`, from `nudge users token create USERNAME NAME` or the API tokens page);
it acts with its owner's role (viewer < marketer < approver < admin).

Every error answers `{"error": code, "message": text, "details"?: [{"path", "message"}]}`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.database.dispose()


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    schedule_processing: webhooks.ScheduleProcessing | None = None,
    schedule_cart_check: intake.ScheduleCartCheck | None = None,
) -> FastAPI:
    """The app, on ``database`` (default: the configured one); shutdown disposes it.

    ``schedule_processing`` starts the processing of stored webhook events; ``nudge.asgi`` gives the Celery
    task, and without one they are processed in this process after the request commits. ``schedule_cart_check``
    enqueues an abandoned-cart check for its due instant (``nudge.asgi``: the Celery task); without one, the
    beat's minute scan checks due carts.
    """
    settings = settings or get_settings()
    check_configured(settings)  # a selected provider without its settings fails here, at start, not at a send
    # Only health checks and signed webhooks may be public; until the API has accounts, production serves no docs.
    docs = settings.environment is Environment.EMBEDDED
    app = FastAPI(
        title="Nudge",
        version=version("nudge"),
        description=DESCRIPTION,
        lifespan=_lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.settings = settings
    app.state.database = database or settings.open_database()
    app.state.schedule_processing = schedule_processing or webhooks.process_after_commit(app.state.database, settings)
    app.state.schedule_cart_check = schedule_cart_check
    errors.install(app)
    metrics.install(app)  # HTTP latency middleware and /metrics (bearer token or allowed networks)
    app.include_router(health.router)
    app.include_router(intake.router)
    app.include_router(unsubscribe.router)  # public: the signed token in its URL is the credential
    app.include_router(webhooks.router)  # public: the provider's signature is the credential
    app.include_router(login.router)  # public: the login form (and logout)
    app.include_router(api.router)  # API tokens
    app.include_router(pages.router)  # signed-in users; CSRF-checked
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")  # public: CSS and JS only
    app.openapi = _openapi_with_request_models(app)  # type: ignore[method-assign]
    return app


def _openapi_with_request_models(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Intake bodies are parsed by hand, so FastAPI does not see their models; add them to the components."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            _, definitions = models_json_schema(
                [(model, "validation") for model in intake.REQUEST_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
