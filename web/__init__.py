"""Web: the FastAPI app — health checks, the event intake API, provider webhooks, one-click unsubscribe, the marketer's
UI and its REST API, and /metrics."""
