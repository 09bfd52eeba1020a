"""``nudge outbox``: lists what the local outbox kept, newest first, and shows one message in full."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from channels.outbox import OutboxEmailSender, OutboxSmsSender
from channels.ports import OutboundEmail, OutboundSms
from core import migrate
from core.db import Database
from core.models import Channel, Customer, Message, OutboxMessage, Provider
from nudge.cli import app

runner = CliRunner()
SMS_TEXT = "Fablewave: your cart misses you. 10% off with CART10 until Sunday. Reply STOP to opt out"


@pytest.fixture
def outbox(cli_db: Database) -> Database:
    """An e-mail (winback, 10:00) and a text (cart, 11:00) in the command's database."""
    migrate.upgrade(cli_db.engine)
    with cli_db.session() as session:
        session.add(Customer(id=1, external_id="ada", email="ada@example.com", phone="+15555550123"))
        for key, channel, campaign, address in (
            ("m-email", Channel.EMAIL, "winback", "ada@example.com"),
            ("m-sms", Channel.SMS, "cart", "+15555550123"),
        ):
            session.add(_message(key, channel, campaign, address))
        session.flush()
        OutboxEmailSender(session).send_batch([_email()])
        OutboxSmsSender(session).send_batch([OutboundSms("m-sms", "+15555550123", SMS_TEXT)])
        for outbox_id, hour in ((1, 10), (2, 11)):
            at = datetime(2026, 11, 21, hour, 5, tzinfo=UTC)
            session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(created_at=at))
    return cli_db


def _message(key: str, channel: Channel, campaign: str, address: str) -> Message:
    return Message(
        message_key=key,
        idempotency_key=f"{campaign}:1:{channel.value}",
        campaign_key=campaign,
        variant="A" if channel is Channel.EMAIL else None,
        customer_id=1,
        channel=channel,
        address=address,
        provider=Provider.OUTBOX,
    )


def _email() -> OutboundEmail:
    return OutboundEmail(
        message_key="m-email",
        to_address="ada@example.com",
        subject="We miss you, Ada",
        body_text="Hi Ada,\n\nCome back for 10% off.\n\nThe Fablewave team",
        body_html="<p>Hi Ada,</p><p>Come back for 10% off.</p>",
        from_address="hello@fablewave.example",
        from_name="Fablewave",
        headers={"List-Unsubscribe": "<https://nudge.example/u/abc.def>"},
    )


def test_the_list_shows_the_newest_first(outbox: Database) -> None:
    result = runner.invoke(app, ["outbox"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2\t2026-11-21 11:05 UTC\tsms\t+15555550123\tcart\t" + SMS_TEXT[:59] + "…",
        "1\t2026-11-21 10:05 UTC\temail\tada@example.com\twinback\tWe miss you, Ada",
    ]


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--channel", "email"], ["1"]),
        (["--channel", "sms"], ["2"]),
        (["--campaign", "winback"], ["1"]),
        (["--campaign", "nope"], []),
        (["--limit", "1"], ["2"]),
    ],
)
def test_the_list_filters_by_channel_and_campaign_and_limits(
    outbox: Database, options: list[str], ids: list[str]
) -> None:
    result = runner.invoke(app, ["outbox", *options])

    assert result.exit_code == 0, result.output
    listed = [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line]
    assert listed == ids


def test_an_empty_outbox_says_so(cli_db: Database) -> None:
    result = runner.invoke(app, ["outbox"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "the outbox is empty\n"


def test_show_prints_an_email_in_full_and_the_html_length(outbox: Database) -> None:
    result = runner.invoke(app, ["outbox", "show", "1"])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "outbox message 1 (email), message key m-email\n"
        "campaign: winback (variant A)\n"
        "stored:   2026-11-21 10:05:00 UTC\n"
        "to:       ada@example.com\n"
        "from:     hello@fablewave.example\n"
        "subject:  We miss you, Ada\n"
        "html:     43 characters\n"
        "headers:\n"
        "  From: Fablewave <hello@fablewave.example>\n"
        "  List-Unsubscribe: <https://nudge.example/u/abc.def>\n"
        "\n"
        "Hi Ada,\n\nCome back for 10% off.\n\nThe Fablewave team\n"
    )


def test_show_prints_a_text_in_full(outbox: Database) -> None:
    result = runner.invoke(app, ["outbox", "show", "2"])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "outbox message 2 (sms), message key m-sms\n"
        "campaign: cart\n"
        "stored:   2026-11-21 11:05:00 UTC\n"
        "to:       +15555550123\n"
        "\n"
        f"{SMS_TEXT}\n"
    )


def test_show_of_an_unknown_id_exits_1(outbox: Database) -> None:
    result = runner.invoke(app, ["outbox", "show", "99"])

    assert result.exit_code == 1
    assert result.stderr == "error: no outbox message 99\n"
