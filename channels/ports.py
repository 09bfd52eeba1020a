"""The two sender ports, their plain DTOs, and the receipts that come back.

``EmailSender.send_batch`` and ``SmsSender.send_batch`` take rendered messages and return one
``SendReceipt`` per message, in order. A sender never raises for what happened to a message: it says
so in the receipt, in one of three ways, because the caller's next step differs:

- ``ACCEPTED``: the provider took it (``provider_message_id`` set).
- ``RETRY``: a transient failure — network, timeout, 5xx, 429 — nothing was sent; try again after
  ``retry_after`` seconds (the provider's Retry-After when it gave one).
- ``REJECTED``: the provider refused it for good (4xx): record it, never retry. ``opted_out`` marks
  Twilio's 21610 (the recipient replied STOP): the address is suppressed.

A batch can end half sent (Twilio is one call per message), so per-message receipts are the only
honest answer. Vendor objects never cross the port; configuration errors (no key) fail at start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from core.models import Provider


class ReceiptStatus(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OutboundEmail:
    """One rendered e-mail for one recipient.

    Attributes
    ----------
    message_key : str
        Our opaque id (``Message.message_key``); travels in ``custom_args`` and comes back in webhooks.
    to_address, to_name : str
        The recipient.
    from_address, from_name : str
        The sender (the brand's).
    subject, body_text, body_html : str
        The message, both alternatives.
    headers : mapping of str to str
        ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) and any other.
    categories : tuple of str
        Labels for the provider's statistics (campaign key, variant): never personal data.
    """

    message_key: str
    to_address: str
    subject: str
    body_text: str
    body_html: str
    from_address: str
    from_name: str
    to_name: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One rendered text for one recipient: ``to_phone`` in E.164, ``body`` as it will be billed."""

    message_key: str
    to_phone: str
    body: str
    status_callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What the provider did with one message (see the module docstring)."""

    message_key: str
    status: ReceiptStatus
    provider_message_id: str | None = None
    error: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    opted_out: bool = False


class EmailSender(Protocol):
    provider: Provider
    max_batch: int  # messages one send_batch call takes at most

    def send_batch(self, messages: Sequence[OutboundEmail]) -> list[SendReceipt]:
        """Hand ``messages`` to the provider; one receipt per message, in order."""
        ...


class SmsSender(Protocol):
    provider: Provider
    max_batch: int

    def send_batch(self, messages: Sequence[OutboundSms]) -> list[SendReceipt]:
        """Hand ``messages`` to the provider; one receipt per message, in order."""
        ...
