"""Web: the FastAPI app — health checks, the event intake API, and later the marketer's UI."""
