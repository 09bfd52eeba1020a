"""``nudge check``: the guardrail report of saved drafts, against today's catalog and brand rules; or the rule list.

    nudge check var/drafts/retention-2026-11-21-subscribers_month_to_month.json
    nudge check --rules

Exits 1 when a draft has a blocking finding, so a script can gate on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from campaigns.drafting import ReviewedDrafts, reviewed
from core.settings import get_settings
from guardrails.report import Report
from guardrails.repository import check_context
from guardrails.rules import RULES
from nudge.commands.common import clean_errors, ready_database


def check(
    drafts: Annotated[
        Path | None, typer.Argument(help="A saved draft file (nudge draft writes them under <data_dir>/drafts).")
    ] = None,
    rules: Annotated[bool, typer.Option("--rules", help="List every rule instead.")] = False,
) -> None:
    """Print the guardrail report of each draft in a saved draft file (exit 1 if any is blocked)."""
    if rules:
        show_rules()
        return
    if drafts is None:
        raise typer.BadParameter("give a saved draft file, or --rules")
    settings = get_settings()
    with clean_errors():
        saved = ReviewedDrafts.load(drafts)
        db = ready_database(settings)
        try:
            with db.session() as session:
                context = check_context(session, settings, now=datetime.now(UTC))
        finally:
            db.dispose()
        fresh = reviewed(saved.draft_set, context, saved.flagged_creative)
    for variant, report in fresh.reports.items():
        typer.echo(f"{saved.draft_set.brief.campaign_key} {variant}:")
        for line in report_lines(report):
            typer.echo(f"  {line}")
    if any(report.blocked for report in fresh.reports.values()):
        raise typer.Exit(1)


def report_lines(report: Report) -> list[str]:
    """A report as lines: a verdict, then one line per finding (severity, rule, where, what, how to fix)."""
    blocks = len(report.blocking())
    warns = len(report.findings) - blocks
    verdict = "BLOCKED" if report.blocked else "passes"
    lines = [f"guardrails: {verdict} ({blocks} blocking, {warns} warnings; {report.rules_version})"]
    for finding in report.findings:
        where = f" [{finding.field}]" if finding.field else ""
        excerpt = f" {finding.excerpt!r}" if finding.excerpt else ""
        hint = f" → {finding.hint}" if finding.hint else ""
        lines.append(f"  {finding.severity.value:<5} {finding.rule}{where}: {finding.message}{excerpt}{hint}")
    return lines


def show_rules() -> None:
    for rule in RULES:
        channels = ", ".join(sorted(channel.value for channel in rule.channels))
        typer.echo(f"{rule.id:<32} {rule.severity.value:<5} {channels:<10} {rule.summary} ({rule.source})")
