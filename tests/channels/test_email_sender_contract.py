"""One contract for every ``EmailSender``: the same calls and the same assertions for each adapter.

SendGrid runs as the real SDK against the loopback fake of Mail Send; the local outbox runs on SQLite, with
the ``Message`` rows written first, as the send path writes them. Each adapter gets a ``Harness`` that does
what the send path does before calling a sender, and can make the provider refuse one message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from channels.outbox import OutboxEmailSender
from channels.ports import EmailSender, OutboundEmail, ReceiptStatus
from channels.rendering import BrandValues, EmailDraftCopy, EmailTemplate, RecipientValues
from channels.sendgrid import SendGridSender
from core.db import Database
from core.models import Channel, Customer, Message, Provider
from core.settings import EmailProvider, Settings
from tests.support.fake_sendgrid import FakeSendGrid

# EXTEND: every EmailSender adapter belongs in this list, with a harness in `_HARNESSES` below.
EMAIL_SENDERS = ["sendgrid", "outbox"]

BRAND = BrandValues("Fablewave", "hello@fablewave.example.com", "100 Example Street, Anytown, CA 90000")
DRAFT = EmailDraftCopy(
    subject="A note for {{first_name}}",
    body_text="Hi {{first_name}}.\n\n{{brand_name}}, {{postal_address}}\nUnsubscribe: {{unsubscribe_url}}",
    body_html='<p>Hi {{first_name}}.</p><p>Unsubscribe: <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a></p>',
)


@dataclass
class Harness:
    """An adapter under test, and the set-up the send path does before calling it.

    ``ready(messages, refuse)`` prepares ``messages`` so the provider takes them, except those whose keys are
    in ``refuse``, which it must refuse for good.
    """

    sender: EmailSender
    ready: Callable[[Sequence[OutboundEmail], Collection[str]], None]


def _sendgrid(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with FakeSendGrid() as fake:
        settings = Settings(
            email_provider=EmailProvider.SENDGRID, sendgrid_api_key=SecretStr(fake.api_key), sendgrid_host=fake.host
        )

        def ready(messages: Sequence[OutboundEmail], refuse: Collection[str]) -> None:
            fake.refuse(*(message.to_address for message in messages if message.message_key in refuse))

        yield Harness(SendGridSender.from_settings(settings), ready)


def _outbox(request: pytest.FixtureRequest) -> Iterator[Harness]:
    database: Database = request.getfixturevalue("sqlite_db")
    session = database.sessionmaker()
    customer = Customer(external_id="contract-customer", email="contract@example.com")
    session.add(customer)
    session.flush()

    def ready(messages: Sequence[OutboundEmail], refuse: Collection[str]) -> None:
        # The outbox refuses a message whose Message row was never written.
        session.add_all(_message_row(customer.id, message) for message in messages if message.message_key not in refuse)
        session.flush()

    try:
        yield Harness(OutboxEmailSender(session), ready)
    finally:
        session.rollback()
        session.close()


def _message_row(customer_id: int, message: OutboundEmail) -> Message:
    return Message(
        message_key=message.message_key,
        idempotency_key=f"contract:{message.message_key}:email",
        campaign_key="contract",
        customer_id=customer_id,
        channel=Channel.EMAIL,
        address=message.to_address,
        provider=Provider.OUTBOX,
    )


_HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Iterator[Harness]]] = {
    "sendgrid": _sendgrid,
    "outbox": _outbox,
}


@pytest.fixture(params=EMAIL_SENDERS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    yield from _HARNESSES[request.param](request)


def emails(count: int, prefix: str = "k") -> list[OutboundEmail]:
    """``count`` e-mails rendered from one template, each to its own address."""
    template = EmailTemplate.from_draft(DRAFT, BRAND, campaign_key="contract", variant="v1")
    return [
        template.render(
            RecipientValues(
                first_name=f"Name{n}",
                email=f"{prefix}-{n}@example.com",
                unsubscribe_url=f"https://fablewave.example.com/u/{prefix}-{n}",
            ),
            f"{prefix}-{n}",
        )
        for n in range(count)
    ]


def plain(key: str, subject: str) -> OutboundEmail:
    """An e-mail built by hand, not from a template."""
    return OutboundEmail(
        message_key=key,
        to_address=f"{key}@example.com",
        subject=subject,
        body_text=f"{subject}.\nUnsubscribe: https://fablewave.example.com/u/{key}",
        body_html=f"<p>{subject}.</p>",
        from_address=BRAND.sender_address,
        from_name=BRAND.brand_name,
        headers={"List-Unsubscribe": f"<https://fablewave.example.com/u/{key}>"},
        categories=("triggers",),
    )


def test_the_sender_declares_its_provider_and_batch_size(harness: Harness) -> None:
    assert isinstance(harness.sender.provider, Provider)
    assert harness.sender.max_batch >= 1


def test_each_message_gets_one_receipt_in_order(harness: Harness) -> None:
    batch = emails(5)
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert [receipt.message_key for receipt in receipts] == ["k-0", "k-1", "k-2", "k-3", "k-4"]
    assert {receipt.status for receipt in receipts} == {ReceiptStatus.ACCEPTED}


def test_an_accepted_message_has_a_provider_id_and_no_error(harness: Harness) -> None:
    batch = emails(3)
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    # Not necessarily its own: SendGrid gives one id to every message of a request.
    assert all(receipt.provider_message_id for receipt in receipts)
    assert [(receipt.error, receipt.error_code, receipt.retry_after, receipt.opted_out) for receipt in receipts] == [
        (None, None, None, False)
    ] * 3


def test_templated_and_hand_built_messages_in_one_batch_keep_their_order(harness: Harness) -> None:
    rendered = emails(2)
    batch = [rendered[0], plain("p-0", "First"), rendered[1], plain("p-1", "Second")]
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert [(receipt.message_key, receipt.status) for receipt in receipts] == [
        ("k-0", ReceiptStatus.ACCEPTED),
        ("p-0", ReceiptStatus.ACCEPTED),
        ("k-1", ReceiptStatus.ACCEPTED),
        ("p-1", ReceiptStatus.ACCEPTED),
    ]


def test_a_refused_message_is_rejected_and_its_neighbours_still_go(harness: Harness) -> None:
    batch = emails(3)
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
    batch = emails(harness.sender.max_batch, prefix="full")
    harness.ready(batch, ())

    receipts = harness.sender.send_batch(batch)

    assert len(receipts) == harness.sender.max_batch
    assert {receipt.status for receipt in receipts} == {ReceiptStatus.ACCEPTED}
