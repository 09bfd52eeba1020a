"""One contract for every ``SmsSender``: the same calls and the same assertions for each adapter.

Twilio runs as the real SDK against the loopback fake of its Messages API; the local outbox runs on SQLite,
with the ``Message`` rows written first, as the send path writes them. Each adapter gets a ``Harness`` that
does what the send path does before calling a sender, and can make the provider refuse one message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import pytest

from channels.outbox import OutboxSmsSender
from channels.ports import OutboundSms, ReceiptStatus, SmsSender
from channels.twilio import TwilioSender
from core.db import Database
from core.models import Channel, Customer, Message, Provider
from core.settings import Settings, SmsProvider
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, INVALID_NUMBER, MESSAGING_SERVICE_SID, FakeTwilio

# EXTEND: every SmsSender adapter belongs in this list, with a harness in `_HARNESSES` below.
SMS_SENDERS = ["twilio", "outbox"]


@dataclass
class Harness:
    """An adapter under test, and the set-up the send path does before calling it.

    ``ready(messages, refuse=...)`` prepares ``messages`` so the provider takes them, except those in
    ``refuse``, which it must refuse for good.
    """

    sender: SmsSender
    ready: Callable[[Sequence[OutboundSms], Collection[str]], None]


def _twilio(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with FakeTwilio() as fake:
        settings = Settings(
            sms_provider=SmsProvider.TWILIO,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_messaging_service_sid=MESSAGING_SERVICE_SID,
        )

        def ready(messages: Sequence[OutboundSms], refuse: Collection[str]) -> None:
            for message in messages:
                if message.message_key in refuse:
                    fake.fail_to(message.to_phone, INVALID_NUMBER)

        yield Harness(TwilioSender.from_settings(settings, api_base_url=fake.base_url), ready)


def _outbox(request: pytest.FixtureRequest) -> Iterator[Harness]:
    database: Database = request.getfixturevalue("sqlite_db")
    session = database.sessionmaker()
    customer = Customer(external_id="contract-customer", phone="+15555550100")
    session.add(customer)
    session.flush()

    def ready(messages: Sequence[OutboundSms], refuse: Collection[str]) -> None:
        # The outbox refuses a message whose Message row was never written.
        session.add_all(_message_row(customer.id, message) for message in messages if message.message_key not in refuse)
        session.flush()

    try:
        yield Harness(OutboxSmsSender(session), ready)
    finally:
        session.rollback()
        session.close()


def _message_row(customer_id: int, message: OutboundSms) -> Message:
    return Message(
        message_key=message.message_key,
        idempotency_key=f"contract:{message.message_key}:sms",
        campaign_key="contract",
        customer_id=customer_id,
        channel=Channel.SMS,
        address=message.to_phone,
        provider=Provider.OUTBOX,
    )


_HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Iterator[Harness]]] = {"twilio": _twilio, "outbox": _outbox}


@pytest.fixture(params=SMS_SENDERS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    yield from _HARNESSES[request.param](request)


def texts(count: int, prefix: str = "k") -> list[OutboundSms]:
    return [
        OutboundSms(
            message_key=f"{prefix}-{n}",
            to_phone=f"+1555555{n:04d}",
            body=f"Fablewave: offer {n}. Reply STOP to opt out",
            status_callback_url=f"https://nudge.example.com/webhooks/twilio/status?message_key={prefix}-{n}",
        )
        for n in range(count)
    ]


def test_the_sender_declares_its_provider_and_batch_size(harness: Harness) -> None:
    assert isinstance(harness.sender.provider, Provider)
    assert harness.sender.max_batch >= 1


def test_each_message_gets_one_receipt_in_order(harness: Harness) -> None:
    batch = texts(5)
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert [receipt.message_key for receipt in receipts] == ["k-0", "k-1", "k-2", "k-3", "k-4"]
    assert {receipt.status for receipt in receipts} == {ReceiptStatus.ACCEPTED}


def test_an_accepted_message_has_its_own_provider_id_and_no_error(harness: Harness) -> None:
    batch = texts(3)
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert len({receipt.provider_message_id for receipt in receipts}) == 3
    assert all(receipt.provider_message_id for receipt in receipts)
    assert [(receipt.error, receipt.error_code, receipt.retry_after, receipt.opted_out) for receipt in receipts] == [
        (None, None, None, False)
    ] * 3


def test_a_refused_message_is_rejected_and_its_neighbours_still_go(harness: Harness) -> None:
    batch = texts(3)
    harness.ready(batch, {"k-1"})

    receipts = harness.sender.send_batch(batch)

    assert [(receipt.message_key, receipt.status) for receipt in receipts] == [
        ("k-0", ReceiptStatus.ACCEPTED),
        ("k-1", ReceiptStatus.REJECTED),
        ("k-2", ReceiptStatus.ACCEPTED),
    ]
    assert receipts[1].error
    assert receipts[1].error_code
    assert receipts[1].provider_message_id is None


def test_an_empty_batch_gives_no_receipts(harness: Harness) -> None:
    assert harness.sender.send_batch([]) == []


def test_a_full_batch_is_taken_whole(harness: Harness) -> None:
    batch = texts(harness.sender.max_batch, prefix="full")
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert len(receipts) == harness.sender.max_batch
    assert {receipt.status for receipt in receipts} == {ReceiptStatus.ACCEPTED}
