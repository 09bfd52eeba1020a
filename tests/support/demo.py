"""``nudge demo`` run in this process on an embedded SQLite data directory, for the tests that need its database.

The demo loads the real samples, trains, scores, drafts with the offline model and sends: minutes of work.
Tests that read what it made (the README's screenshots, the command's own test) share one run per session
through the ``demo_run`` fixture rather than each building their own.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.db import Database
from core.settings import get_settings


@dataclass(frozen=True)
class DemoRun:
    """What one ``nudge demo`` left behind: its data directory (SQLite file, models, drafts) and what it printed."""

    data_dir: Path
    exit_code: int
    stdout: str
    output: str  # stdout and stderr interleaved: the message to show when the run failed

    @property
    def database_url(self) -> str:
        """The embedded SQLite file the demo wrote, as ``Settings`` derives it from the data directory."""
        return f"sqlite:///{(self.data_dir / 'nudge.db').resolve()}"

    def open_database(self) -> Database:
        """A new engine on the demo's database; the caller disposes it."""
        return Database.from_url(self.database_url)


def run_demo(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> DemoRun:
    """Run ``nudge demo`` once on ``data_dir`` with the CLI runner, as a user would from a shell.

    The environment points the command at the embedded database in ``data_dir``, whatever it said before
    (``monkeypatch`` restores it). ``get_settings`` caches what it read, so the cache is cleared before the run
    and after it: the next command reads the environment again.
    """
    from nudge.cli import app  # here, not at the top: the root conftest imports this module for every session

    monkeypatch.setenv("NUDGE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("NUDGE_DATABASE_URL", raising=False)  # else it would win over the data directory
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo"])
    finally:
        get_settings.cache_clear()
    return DemoRun(data_dir=data_dir, exit_code=result.exit_code, stdout=result.stdout, output=_output(result))


def _output(result: Result) -> str:
    """What the run printed, and the traceback of an unexpected exception (the runner catches it silently)."""
    if result.exc_info is None or isinstance(result.exception, SystemExit):
        return result.output
    return result.output + "".join(traceback.format_exception(*result.exc_info))
