"""The full application for ``nudge serve`` (``uvicorn --factory nudge.asgi:create_app``): the API wired to
the workers.

``web`` and ``workers`` are siblings and never import each other; this is where they meet. The API gets the
Celery tasks it enqueues after a request commits: processing of stored webhook events, and each abandoned-cart
check at its due instant.
"""

from __future__ import annotations

from fastapi import FastAPI

from core.settings import get_settings
from web.app import create_app as create_web_app
from workers.tasks import enqueue_cart_check, enqueue_event_processing


def create_app() -> FastAPI:
    """The API on the configured settings and database, with its follow-up work on Celery."""
    return create_web_app(
        get_settings(), schedule_processing=enqueue_event_processing, schedule_cart_check=enqueue_cart_check
    )
