"""``nudge outbox``: what the local outbox (the embedded default's sender) would have sent, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from channels.outbox import OutboxEntry, get_outbox_message, list_outbox
from core.models import Channel
from nudge.commands.common import unit_of_work

app = typer.Typer(
    help="The local outbox: messages the embedded default kept instead of sending. List (the default) or show.",
    invoke_without_command=True,
)
SUMMARY_WIDTH = 60


@app.callback()
def list_(
    ctx: typer.Context,
    channel: Annotated[Channel | None, typer.Option(help="Only e-mails or only texts.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's messages (campaign key).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 20,
) -> None:
    """The newest outbox messages: id, when, channel, recipient, campaign, subject or text."""
    if ctx.invoked_subcommand is not None:
        return
    with unit_of_work() as session:
        entries = list_outbox(session, channel=channel, campaign_key=campaign, limit=limit)
    if not entries:
        typer.echo("the outbox is empty")
    for entry in entries:
        typer.echo("\t".join(_columns(entry)))


@app.command()
def show(outbox_id: Annotated[int, typer.Argument(metavar="ID", help="The id `nudge outbox` lists.")]) -> None:
    """One outbox message in full: its headers and text (the HTML body's length only)."""
    with unit_of_work() as session:
        entry = get_outbox_message(session, outbox_id)
    typer.echo("\n".join(describe(entry)))


def _columns(entry: OutboxEntry) -> list[str]:
    return [
        str(entry.id),
        f"{entry.created_at:%Y-%m-%d %H:%M} UTC",
        entry.channel.value,
        entry.to_address,
        entry.campaign_key,
        _shorten(entry.summary.replace("\n", " ")),
    ]


def _shorten(text: str) -> str:
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def describe(entry: OutboxEntry) -> list[str]:
    """The lines ``nudge outbox show`` prints for ``entry``."""
    variant = f" (variant {entry.variant})" if entry.variant else ""
    lines = [
        f"outbox message {entry.id} ({entry.channel.value}), message key {entry.message_key}",
        f"campaign: {entry.campaign_key}{variant}",
        f"stored:   {entry.created_at:%Y-%m-%d %H:%M:%S} UTC",
        f"to:       {entry.to_address}",
    ]
    if entry.channel is Channel.SMS:
        return [*lines, "", entry.sms_text or ""]
    headers = [f"  {name}: {value}" for name, value in entry.headers.items()]
    return [
        *lines,
        f"from:     {entry.from_address}",
        f"subject:  {entry.subject}",
        f"html:     {len(entry.body_html or '')} characters",
        *(["headers:", *headers] if headers else []),
        "",
        entry.body_text or "",
    ]
