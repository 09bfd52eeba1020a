"""``SendGridSender``: the ``EmailSender`` port on SendGrid's v3 Mail Send API (sendgrid-python 6.12.5).

Batching. One Mail Send request carries up to 1,000 personalizations but only one subject and one content,
so rendered e-mails are grouped by what they share:

- ``PersonalizedEmail``s of one template (``channels.rendering``) go as one request per 1,000: the
  template's ``SubstitutionForm`` as subject and content, each recipient's values (first name, unsubscribe
  link, offer link) as its personalization's ``substitutions``. An e-mail goes this way only if
  substituting its values into the form gives back exactly its rendered strings (checked per e-mail, a few
  microseconds), so SendGrid delivers what the guardrails checked and the outbox would show.
- Any other ``OutboundEmail`` is grouped with those of identical subject and content, one request per
  group: correct, but batching only as far as the content repeats.

Every personalization carries ``custom_args.message_key`` (it comes back flattened into each webhook event)
and its own ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers (RFC 8058: our one-click link). The
request carries the categories, ``asm.group_id`` when an unsubscribe group is set, the sandbox setting, and
tracking settings that keep the body as rendered: click tracking off (it would rewrite every link, the
unsubscribe link included, to SendGrid's domain) and subscription tracking off (we place our own link and
headers); open tracking on. An address appears at most once per request, as SendGrid requires.

Outcomes, per request, as receipts (``channels.ports``): 202 (200 in sandbox mode) → ``ACCEPTED`` with the
``X-Message-Id`` (shared by the request's messages; webhooks are matched by ``message_key``); 429 →
``RETRY`` after ``Retry-After`` or ``X-RateLimit-Reset``; 5xx, network errors and timeouts → ``RETRY`` (a
timeout is ambiguous: SendGrid may have taken the request); a 400 whose errors all name personalizations
(an invalid address) → those ``REJECTED`` and the request sent again without them; any other 4xx →
``REJECTED`` with SendGrid's error messages.

The API key never appears in a receipt or a log line: python-http-client logs request headers (with the key),
payloads (with addresses) and response bodies at DEBUG, and those lines are dropped.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]

from channels.ports import OutboundEmail, ReceiptStatus, SendReceipt
from channels.rendering import PersonalizedEmail, SubstitutionForm
from core.errors import ServiceUnavailable
from core.models import Provider
from core.settings import Settings

MAX_PERSONALIZATIONS = 1000  # per request, and recipients per request (SendGrid's limits)
DEFAULT_TIMEOUT_SECONDS = 10.0  # the SDK's default is none: a hung connection would hold a worker forever
_ERROR_TEXT_MAX = 500
_REFUSAL_ROUNDS = 2  # re-sends after a 400 that named recipients (SendGrid names every bad one at once)
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)\b")
_HTTP_LOGGER = "python_http_client.client"

logger = logging.getLogger(__name__)


@dataclass
class _Request:
    """One Mail Send request being built: the messages it carries, by their index in the batch."""

    indexes: list[int] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one request's answer means for its messages (``rejected`` by position in the request)."""

    status: ReceiptStatus
    provider_message_id: str | None = None
    error: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    rejected: Mapping[int, str] | None = None


class SendGridSender:
    """The ``EmailSender`` port on SendGrid's v3 Mail Send API.

    Parameters
    ----------
    api_key : str
        A SendGrid API key with Mail Send access.
    host : str
        The API's base URL (SendGrid's, an EU host, a gateway, or a local fake).
    sandbox : bool
        SendGrid validates every request and delivers nothing.
    unsubscribe_group_id : int, optional
        The ASM unsubscribe group marketing mail belongs to.
    open_tracking : bool
        Whether SendGrid adds its open-tracking pixel.
    timeout : float
        Seconds to wait for SendGrid's answer.
    clock : callable
        Unix time now, to turn ``X-RateLimit-Reset`` into a wait.
    """

    provider = Provider.SENDGRID
    max_batch = MAX_PERSONALIZATIONS

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        sandbox: bool = False,
        unsubscribe_group_id: int | None = None,
        open_tracking: bool = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            # The SDK would fall back to the SENDGRID_API_KEY variable; settings are the one source.
            raise ServiceUnavailable("SendGrid needs an API key (NUDGE_SENDGRID_API_KEY)")
        _quiet_http_client_logs()
        self._client = SendGridAPIClient(api_key=api_key, host=host)
        self._client.client.timeout = timeout
        self._key = api_key
        self.host = host
        self._clock = clock
        self._settings: dict[str, Any] = {
            "mail_settings": {"sandbox_mode": {"enable": sandbox}},
            "tracking_settings": {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": open_tracking},
                "subscription_tracking": {"enable": False},
            },
        }
        if unsubscribe_group_id is not None:
            self._settings["asm"] = {"group_id": unsubscribe_group_id}

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridSender:
        """The sender ``settings`` describe (``sendgrid_*``).

        Raises
        ------
        ServiceUnavailable
            No API key is set.
        """
        return cls(
            settings.sendgrid_api_key.get_secret_value(),
            host=settings.sendgrid_host,
            sandbox=settings.sendgrid_sandbox,
            unsubscribe_group_id=settings.sendgrid_unsubscribe_group_id,
        )

    def __repr__(self) -> str:
        return f"SendGridSender(host={self.host!r})"

    def send_batch(self, messages: Sequence[OutboundEmail]) -> list[SendReceipt]:
        """Hand ``messages`` to SendGrid in as few requests as their content allows.

        Parameters
        ----------
        messages : sequence of OutboundEmail
            Rendered e-mails; any number (requests hold at most ``max_batch`` each).

        Returns
        -------
        list of SendReceipt
            One per message, in order (see the module docstring for what each status means).
        """
        forms = [_form(message) for message in messages]
        receipts: dict[int, SendReceipt] = {}
        for indexes in _grouped(messages, forms):
            for request in _split(messages, indexes):
                receipts.update(self._send(messages, forms, request.indexes))
        return [receipts[index] for index in range(len(messages))]

    def _send(
        self, messages: Sequence[OutboundEmail], forms: Sequence[SubstitutionForm | None], indexes: list[int]
    ) -> dict[int, SendReceipt]:
        """One request's receipts, by index; sent again without the recipients a 400 named, a few times at most."""
        receipts: dict[int, SendReceipt] = {}
        for round_ in range(_REFUSAL_ROUNDS + 1):
            outcome = self._post(self._body(messages, forms, indexes))
            rejected = outcome.rejected or {}
            for position, error in rejected.items():
                key = messages[indexes[position]].message_key
                receipts[indexes[position]] = SendReceipt(key, ReceiptStatus.REJECTED, error=error, error_code="400")
            indexes = [index for position, index in enumerate(indexes) if position not in rejected]
            if not rejected or not indexes or round_ == _REFUSAL_ROUNDS:
                break
        receipts.update((index, _receipt(messages[index].message_key, outcome)) for index in indexes)
        return receipts

    def _body(
        self, messages: Sequence[OutboundEmail], forms: Sequence[SubstitutionForm | None], indexes: list[int]
    ) -> dict[str, Any]:
        first, form = messages[indexes[0]], forms[indexes[0]]
        subject, text, html = (form.subject, form.body_text, form.body_html) if form else _content(first)
        body: dict[str, Any] = {
            "personalizations": [_personalization(messages[index], forms[index]) for index in indexes],
            "from": {"email": first.from_address, "name": first.from_name},
            "subject": subject,
            # text/plain first, as SendGrid requires; an empty part is left out (SendGrid refuses empty values).
            "content": [
                {"type": kind, "value": value} for kind, value in (("text/plain", text), ("text/html", html)) if value
            ],
        }
        if first.categories:
            body["categories"] = list(first.categories)
        return body | self._settings

    def _post(self, body: dict[str, Any]) -> _Outcome:
        count = len(body["personalizations"])
        try:
            response = self._client.send(body)
        except HTTPError as error:
            outcome = self._refused(error)
        except (OSError, http.client.HTTPException) as error:  # refused, reset, DNS, timeout, cut short
            outcome = _Outcome(ReceiptStatus.RETRY, error=self._redacted(f"SendGrid unreachable: {error!r}"))
        else:
            message_id = response.headers.get("X-Message-Id")
            logger.debug("SendGrid accepted %d messages (%s)", count, message_id)
            return _Outcome(ReceiptStatus.ACCEPTED, provider_message_id=message_id)
        logger.warning("SendGrid did not take %d messages: %s %s", count, outcome.status, outcome.error)
        return outcome

    def _refused(self, error: HTTPError) -> _Outcome:
        status = int(error.status_code)
        errors = _errors(error.body)
        text = self._redacted(f"SendGrid {status}: " + "; ".join(_describe(item) for item in errors))
        if status == 429 or status >= 500:
            return _Outcome(ReceiptStatus.RETRY, error=text, error_code=str(status), retry_after=self._wait(error))
        rejected = _rejected_personalizations(errors) if status == 400 else None
        if rejected:
            # Only the named personalizations are at fault and nothing was sent: the others go again (``_send``).
            text = "not sent: SendGrid kept refusing other recipients of the same request"
            return _Outcome(ReceiptStatus.RETRY, error=text, error_code=str(status), rejected=rejected)
        return _Outcome(ReceiptStatus.REJECTED, error=text, error_code=str(status))

    def _wait(self, error: HTTPError) -> float | None:
        headers = error.headers or {}
        if (retry_after := headers.get("Retry-After")) is not None:
            return _retry_after_seconds(retry_after, self._clock())
        if (reset := headers.get("X-RateLimit-Reset")) is not None:
            try:
                return max(0.0, float(reset) - self._clock())
            except ValueError:
                return None
        return None

    def _redacted(self, text: str) -> str:
        return text.replace(self._key, "[redacted]")[:_ERROR_TEXT_MAX]


def _form(message: OutboundEmail) -> SubstitutionForm | None:
    """The substitution form ``message`` can be sent by, if it is a ``PersonalizedEmail`` that fills it exactly."""
    return message.form if isinstance(message, PersonalizedEmail) and message.is_substitutable() else None


def _grouped(messages: Sequence[OutboundEmail], forms: Sequence[SubstitutionForm | None]) -> list[list[int]]:
    """Indexes of the messages that can share a request, groups in order of their first message."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, (message, form) in enumerate(zip(messages, forms, strict=True)):
        shared = (message.from_address, message.from_name, message.categories)
        content = (id(form),) if form is not None else _content(message)
        groups.setdefault((*shared, *content), []).append(index)
    return list(groups.values())


def _split(messages: Sequence[OutboundEmail], indexes: list[int]) -> list[_Request]:
    """``indexes`` as requests of at most 1,000 recipients, no address twice in one."""
    requests: list[_Request] = []
    for index in indexes:
        address = messages[index].to_address.lower()
        request = next(
            (r for r in requests if len(r.indexes) < MAX_PERSONALIZATIONS and address not in r.addresses), None
        )
        if request is None:
            requests.append(request := _Request())
        request.indexes.append(index)
        request.addresses.add(address)
    return requests


def _content(message: OutboundEmail) -> tuple[str, str, str]:
    return message.subject, message.body_text, message.body_html


def _personalization(message: OutboundEmail, form: SubstitutionForm | None) -> dict[str, Any]:
    to: dict[str, str] = {"email": message.to_address}
    if message.to_name:
        to["name"] = message.to_name
    personalization: dict[str, Any] = {"to": [to], "custom_args": {"message_key": message.message_key}}
    if message.headers:
        personalization["headers"] = dict(message.headers)
    if form is not None and isinstance(message, PersonalizedEmail):
        personalization["substitutions"] = message.substitutions()
    return personalization


def _receipt(message_key: str, outcome: _Outcome) -> SendReceipt:
    return SendReceipt(
        message_key,
        outcome.status,
        provider_message_id=outcome.provider_message_id,
        error=outcome.error,
        error_code=outcome.error_code,
        retry_after=outcome.retry_after,
    )


def _errors(body: bytes | str | None) -> list[dict[str, Any]]:
    """SendGrid's ``errors`` list, or the start of whatever else the body holds."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(raw)["errors"]
    except (ValueError, KeyError, TypeError):
        return [{"message": raw[:200] or "no error message"}]
    return [item for item in errors if isinstance(item, dict)] if isinstance(errors, list) else []


def _describe(item: Mapping[str, Any]) -> str:
    message = str(item.get("message") or "no message")
    return f"{item['field']}: {message}" if item.get("field") else message


def _rejected_personalizations(errors: list[dict[str, Any]]) -> dict[int, str] | None:
    """Each named personalization's error, if every error names one; else ``None`` (the whole request)."""
    rejected: dict[int, str] = {}
    for item in errors:
        match = _PERSONALIZATION_FIELD.match(str(item.get("field") or ""))
        if match is None:
            return None
        position = int(match.group(1))
        rejected[position] = "; ".join(filter(None, (rejected.get(position), f"SendGrid 400: {_describe(item)}")))
    return rejected or None


def _retry_after_seconds(value: str, now: float) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class _DropSecrets(logging.Filter):
    """Drops python-http-client's DEBUG lines with request headers (the API key), payloads (addresses) and
    response bodies (which can echo either back)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith(("HEADERS:", "PAYLOAD:")) or " Response: " in message or "Bearer " in message)


def _quiet_http_client_logs() -> None:
    http_logger = logging.getLogger(_HTTP_LOGGER)
    if not any(isinstance(existing, _DropSecrets) for existing in http_logger.filters):
        http_logger.addFilter(_DropSecrets())
