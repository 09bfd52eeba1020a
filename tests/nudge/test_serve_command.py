"""``nudge serve``: migrates the embedded SQLite file first; refuses a production database that is behind."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from core import migrate
from core.db import Database
from core.settings import get_settings
from nudge.cli import app

runner = CliRunner()


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record uvicorn.run instead of serving."""
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "nudge.commands.serve.uvicorn.run", lambda target, **options: runs.append({"target": target, **options})
    )
    return runs


def test_embedded_serve_migrates_the_database_then_runs_the_app_factory(
    cli_db: Database, uvicorn_runs: list[dict[str, Any]]
) -> None:
    result = runner.invoke(app, ["serve", "--port", "9123"])

    assert result.exit_code == 0, result.output
    assert uvicorn_runs == [
        {
            "target": "nudge.asgi:create_app",
            "factory": True,
            "host": "127.0.0.1",
            "port": 9123,
            "reload": False,
            "log_level": "info",
        }
    ]
    assert migrate.is_current(cli_db.engine)


def test_production_serve_refuses_a_database_that_is_not_current(
    cli_db: Database, monkeypatch: pytest.MonkeyPatch, uvicorn_runs: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("NUDGE_ENVIRONMENT", "production")
    get_settings.cache_clear()

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 1
    assert result.stderr == "error: the database schema is not current: run `nudge db upgrade` first\n"
    assert uvicorn_runs == []


def test_several_workers_share_a_listener_whose_connections_get_tcp_nodelay(
    cli_db: Database, monkeypatch: pytest.MonkeyPatch, uvicorn_runs: list[dict[str, Any]]
) -> None:
    started: list[tuple[str, int, int]] = []

    class Supervisor:
        """Records what uvicorn's Multiprocess supervisor would be given."""

        def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
            started.append((config.app, config.workers, sockets[0].proto))
            sockets[0].close()

        def run(self) -> None:
            pass

    monkeypatch.setattr("nudge.commands.serve.Multiprocess", Supervisor)

    result = runner.invoke(app, ["serve", "--port", "0", "--workers", "2"])

    assert result.exit_code == 0, result.output
    # proto IPPROTO_TCP is what makes asyncio set TCP_NODELAY on accepted connections (Kludex/uvicorn#3149).
    assert started == [("nudge.asgi:create_app", 2, socket.IPPROTO_TCP)]
    assert uvicorn_runs == []
