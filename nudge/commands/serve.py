"""``nudge serve``: run the HTTP API (health, event intake) under uvicorn."""

from __future__ import annotations

import socket

import typer
import uvicorn
from uvicorn.supervisors import Multiprocess

from core.settings import get_settings
from nudge.commands.common import clean_errors, ready_database

APP = "nudge.asgi:create_app"  # the API wired to the workers


def serve(
    host: str | None = typer.Option(None, help="Interface to bind [default: NUDGE_API_HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Port [default: NUDGE_API_PORT, 8000]."),
    reload: bool = typer.Option(False, help="Restart on code changes (development only; one process)."),
    workers: int = typer.Option(1, min=1, help="Worker processes: about one per core that PostgreSQL does not need."),
) -> None:
    """Serve the API. The embedded SQLite database is migrated first; any other must already be current."""
    settings = get_settings()
    with clean_errors():
        ready_database(settings).dispose()
    options = {
        "host": host or settings.api_host,
        "port": port or settings.api_port,
        "log_level": settings.log_level.lower(),
    }
    if workers > 1 and not reload:
        config = uvicorn.Config(APP, factory=True, workers=workers, **options)  # type: ignore[arg-type]
        Multiprocess(config, sockets=[_with_tcp_protocol(config.bind_socket())]).run()
    else:
        uvicorn.run(APP, factory=True, reload=reload, **options)  # type: ignore[arg-type]


def _with_tcp_protocol(listener: socket.socket) -> socket.socket:
    """The same listening socket, its ``proto`` read back from the kernel (IPPROTO_TCP).

    uvicorn binds it with ``proto`` 0 for ``--workers`` (Kludex/uvicorn#3149); accepted connections inherit
    that, asyncio then skips TCP_NODELAY, and every keep-alive response waits ~40 ms for a delayed ACK:
    ``/health/live`` took 44 ms with 2 workers against 0.6 ms with one.
    """
    return socket.socket(fileno=listener.detach())
