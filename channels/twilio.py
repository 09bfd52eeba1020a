"""The Twilio SMS sender: ``SmsSender`` on the ``twilio`` SDK (9.13), one Messages API call per message.

Every text goes out through the configured Messaging Service (``MessagingServiceSid``, never a ``From``
number), so Twilio picks the sender from the service's pool and applies its opt-out list, and each carries
its own ``StatusCallback`` URL (the message key travels in it and comes back in the status webhook).

What Twilio answers becomes a receipt (``channels.ports``), never an exception:

- 201 → ``ACCEPTED`` with the ``SM…`` sid.
- 429 or error 20429 → ``RETRY`` with ``retry_after`` from the ``Retry-After`` header when there is one.
  Twilio documents a 429 as never processed, so it is always safe to retry.
- 5xx, a refused or broken connection, a timeout → ``RETRY``. A 5xx or a read timeout may hide a message
  Twilio did create (§5 of the provider reference): the ``error_code`` (``"timeout"``, the HTTP status or
  Twilio's code) lets the caller reconcile before it sends again.
- 401 → ``RETRY``: our credentials were refused, nothing was sent, and the messages are fine; marking them
  rejected for good would drop a whole campaign over a configuration slip that a person can fix.
- Any other 4xx → ``REJECTED`` with Twilio's code and message; 21610 (the recipient replied STOP) also sets
  ``opted_out``; 21211 and 21614 (not a valid or not a mobile number) are plain rejections.

Twilio has no batch API, so a batch is a loop and each message gets its own receipt in order: a failure on
one message never loses the receipts of those before it. After a failure that says the provider itself is
out of reach or pushing back (429, 401, a connection error, a timeout) the rest of the batch is not tried:
each comes back ``RETRY`` with ``error_code="not_attempted"``. Another 99 calls would meet the same answer,
and after a timeout each would wait the full timeout, which could outlast the task's time limit.

The auth token lives only inside the SDK client: it is never in a receipt, a log line, an error or a repr.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias

import requests
from pydantic import SecretStr
from twilio.base.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped, unused-ignore]
from twilio.rest import Client  # type: ignore[import-untyped, unused-ignore]

from channels.ports import OutboundSms, ReceiptStatus, SendReceipt
from core.clock import utcnow
from core.errors import ServiceUnavailable
from core.models import Provider
from core.settings import Settings

logger = logging.getLogger(__name__)

# One HTTPS call per message at roughly 0.1–0.3 s each: 100 messages take 10–30 s, which fits inside a task's
# time limit, and a redelivered task has at most 100 messages to look up again.
MAX_BATCH = 100
DEFAULT_TIMEOUT_SECONDS = 10.0

OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient": the number replied STOP
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
RATE_LIMITED = 20429

NOT_ATTEMPTED = "not_attempted"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"

TwilioError: TypeAlias = TwilioRestException | TwilioServiceException  # the SDK raises the second for RFC 9457 bodies
_SDK_PREFIX = "Unable to create record: "


class TwilioSender:
    """Sends texts through a Twilio Messaging Service; see the module docstring for what each answer becomes.

    Parameters
    ----------
    account_sid : str
        The account (``AC…``).
    auth_token : SecretStr
        The account's auth token; it stays inside the SDK client.
    messaging_service_sid : str
        The Messaging Service that sends (``MG…``).
    timeout_seconds : float
        Connect and read timeout of each API call (the SDK's default is none: a stuck call would hang).
    api_base_url : str, optional
        Where the SDK sends its requests instead of ``https://api.twilio.com``: for tests against a loopback
        fake of the Messages API (``tests/support/fake_twilio.py``), or a gateway. Deliberately not a setting.

    Raises
    ------
    ServiceUnavailable
        When a credential is missing or a sid is not of its kind.
    """

    provider = Provider.TWILIO
    max_batch = MAX_BATCH

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: SecretStr,
        messaging_service_sid: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        api_base_url: str | None = None,
    ) -> None:
        _check_credentials(account_sid, auth_token, messaging_service_sid)
        self.account_sid = account_sid
        self.messaging_service_sid = messaging_service_sid
        self._auth_token = auth_token
        self._last_response = threading.local()  # the SDK's exceptions drop the headers; Retry-After is one
        http_client = TwilioHttpClient(timeout=timeout_seconds, request_hooks={"response": [self._keep_headers]})
        self._client = Client(account_sid, auth_token.get_secret_value(), http_client=http_client)
        # The SDK reads TWILIO_REGION and TWILIO_EDGE from os.environ, which would move the API host: settings only.
        self._client.region = self._client.edge = None
        if api_base_url:
            self._client.api.base_url = api_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings, *, api_base_url: str | None = None) -> TwilioSender:
        """The sender ``NUDGE_TWILIO_*`` describe.

        Parameters
        ----------
        settings : Settings
            Reads ``twilio_account_sid``, ``twilio_auth_token`` and ``twilio_messaging_service_sid``.
        api_base_url : str, optional
            See the class docstring: tests point the SDK at a fake with it.

        Raises
        ------
        ServiceUnavailable
            Naming every missing ``NUDGE_TWILIO_*`` variable.
        """
        return cls(
            account_sid=settings.twilio_account_sid.strip(),
            auth_token=settings.twilio_auth_token,
            messaging_service_sid=settings.twilio_messaging_service_sid.strip(),
            api_base_url=api_base_url,
        )

    def __repr__(self) -> str:
        return f"TwilioSender(account_sid={self.account_sid!r}, messaging_service_sid={self.messaging_service_sid!r})"

    def send_batch(self, messages: Sequence[OutboundSms]) -> list[SendReceipt]:
        """Send each message in turn; one receipt per message, in order.

        Raises
        ------
        ValueError
            When ``messages`` holds more than ``max_batch`` (before anything is sent).
        """
        if len(messages) > self.max_batch:
            raise ValueError(f"a Twilio batch takes at most {self.max_batch} messages, got {len(messages)}")
        receipts: list[SendReceipt] = []
        halted_by: SendReceipt | None = None
        for message in messages:
            if halted_by is not None:
                receipts.append(_not_attempted(message, halted_by))
                continue
            receipt, halts = self._send(message)
            receipts.append(receipt)
            halted_by = receipt if halts else None
        return receipts

    def _send(self, message: OutboundSms) -> tuple[SendReceipt, bool]:
        """One message's receipt, and whether the rest of the batch should wait."""
        self._last_response.retry_after = None
        try:
            created = self._client.messages.create(**self._create_params(message))
        except (TwilioRestException, TwilioServiceException) as error:
            return self._refused(message, error)
        except requests.Timeout as error:
            return self._transient(message, TIMEOUT, f"no answer from Twilio in time ({type(error).__name__})"), True
        except requests.RequestException as error:
            return self._transient(message, CONNECTION_ERROR, f"Twilio unreachable ({type(error).__name__})"), True
        logger.debug("twilio accepted message %s as %s", message.message_key, created.sid)
        return SendReceipt(message.message_key, ReceiptStatus.ACCEPTED, provider_message_id=str(created.sid)), False

    def _create_params(self, message: OutboundSms) -> dict[str, str]:
        params = {"to": message.to_phone, "body": message.body, "messaging_service_sid": self.messaging_service_sid}
        if message.status_callback_url:
            params["status_callback"] = message.status_callback_url
        return params

    def _refused(self, message: OutboundSms, error: TwilioError) -> tuple[SendReceipt, bool]:
        status, code = int(error.status), _code_of(error)
        text = self._redact(_message_of(error))
        if status == 429 or code == str(RATE_LIMITED):
            retry_after = _parse_retry_after(self._last_response.retry_after)
            return self._transient(message, code, text, retry_after=retry_after), True
        if status >= 500:
            return self._transient(message, code, text), False
        if status == 401:
            return self._transient(message, code, f"Twilio refused the credentials (NUDGE_TWILIO_*): {text}"), True
        # Not the text: Twilio's may quote the phone number, and the receipt carries it to where it is kept.
        logger.info("twilio rejected message %s (code %s)", message.message_key, code)
        receipt = SendReceipt(
            message.message_key, ReceiptStatus.REJECTED, error=text, error_code=code, opted_out=code == str(OPTED_OUT)
        )
        return receipt, False

    def _transient(
        self, message: OutboundSms, code: str, text: str, *, retry_after: float | None = None
    ) -> SendReceipt:
        text = self._redact(text)
        logger.warning("twilio could not take message %s now: %s (code %s)", message.message_key, text, code)
        return SendReceipt(
            message.message_key, ReceiptStatus.RETRY, error=text, error_code=code, retry_after=retry_after
        )

    def _keep_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: keep what the SDK's exception will not carry."""
        self._last_response.retry_after = response.headers.get("Retry-After")

    def _redact(self, text: str) -> str:
        # Twilio never echoes the token, but an error text is stored and shown: make sure of it.
        token = self._auth_token.get_secret_value()
        return text.replace(token, "[redacted]") if token else text


def _check_credentials(account_sid: str, auth_token: SecretStr, messaging_service_sid: str) -> None:
    values = {
        "NUDGE_TWILIO_ACCOUNT_SID": account_sid,
        "NUDGE_TWILIO_AUTH_TOKEN": auth_token.get_secret_value(),
        "NUDGE_TWILIO_MESSAGING_SERVICE_SID": messaging_service_sid,
    }
    missing = [name for name, value in values.items() if not value.strip()]
    if missing:
        raise ServiceUnavailable(f"NUDGE_SMS_PROVIDER=twilio needs {', '.join(missing)}")
    # A wrong kind of sid (a phone number's PN…, say) would have Twilio reject every message one by one.
    if not account_sid.startswith("AC"):
        raise ServiceUnavailable("NUDGE_TWILIO_ACCOUNT_SID must be an account sid (AC…)")
    if not messaging_service_sid.startswith("MG"):
        raise ServiceUnavailable("NUDGE_TWILIO_MESSAGING_SERVICE_SID must be a Messaging Service sid (MG…)")


def _code_of(error: TwilioError) -> str:
    """Twilio's error code, else the HTTP status (the SDK puts the status in ``code`` when the body has none)."""
    return str(error.code if error.code is not None else error.status)


def _message_of(error: TwilioError) -> str:
    if isinstance(error, TwilioServiceException):
        return f"{error.title}: {error.detail}" if error.detail else str(error.title)
    # The SDK prefixes Twilio's message with its own "Unable to create record: ".
    return str(error.msg).removeprefix(_SDK_PREFIX)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    return max(seconds, 0.0) if seconds is not None and math.isfinite(seconds) else None


def _seconds_until(http_date: str) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - utcnow()).total_seconds()


def _not_attempted(message: OutboundSms, cause: SendReceipt) -> SendReceipt:
    return replace(
        cause,
        message_key=message.message_key,
        error=f"not attempted: an earlier message in the batch got {cause.error_code} ({cause.error})",
        error_code=NOT_ATTEMPTED,
    )
