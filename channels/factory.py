"""Which sender sends: the local outbox (the embedded default), SendGrid or Twilio, chosen by settings alone.

``check_configured`` is the start-up check: the API (``web.app.create_app``) calls it so that a production
provider selected without its credentials fails at start, naming every missing setting at once, rather than
at the first send. The provider adapters are imported only when selected, so the outbox path never depends
on the vendor SDKs.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from channels.outbox import OutboxEmailSender, OutboxSmsSender
from channels.ports import EmailSender, SmsSender
from core.errors import ServiceUnavailable
from core.settings import EmailProvider, Environment, Settings, SmsProvider


def email_sender(settings: Settings, session: Session) -> EmailSender:
    """The configured e-mail sender.

    Parameters
    ----------
    settings : Settings
        ``email_provider`` picks: ``outbox`` keeps messages in ``session``; ``sendgrid`` calls SendGrid.
    session : Session
        The caller's unit of work (the outbox writes to it; SendGrid does not use it).
    """
    if settings.email_provider is EmailProvider.OUTBOX:
        return OutboxEmailSender(session)
    from channels.sendgrid import SendGridSender  # here: an outbox-only process never loads a vendor SDK

    return SendGridSender.from_settings(settings)


def sms_sender(settings: Settings, session: Session) -> SmsSender:
    """The configured SMS sender: ``sms_provider`` ``outbox`` or ``twilio`` (see ``email_sender``)."""
    if settings.sms_provider is SmsProvider.OUTBOX:
        return OutboxSmsSender(session)
    from channels.twilio import TwilioSender  # here: an outbox-only process never loads a vendor SDK

    return TwilioSender.from_settings(settings)


def missing_settings(settings: Settings) -> list[str]:
    """Every setting that must be set or changed for the selected providers and environment, in a fixed order.

    Each item reads ``NUDGE_NAME`` or ``NUDGE_NAME (why)``; empty when the configuration is complete.
    """
    missing: list[str] = []
    if settings.email_provider is EmailProvider.SENDGRID:
        missing += _empty(
            {
                "NUDGE_SENDGRID_API_KEY": settings.sendgrid_api_key.get_secret_value(),
                "NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY": settings.sendgrid_webhook_public_key,
            }
        )
    if settings.sms_provider is SmsProvider.TWILIO:
        missing += _empty(
            {
                "NUDGE_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
                "NUDGE_TWILIO_AUTH_TOKEN": settings.twilio_auth_token.get_secret_value(),
                "NUDGE_TWILIO_MESSAGING_SERVICE_SID": settings.twilio_messaging_service_sid,
            }
        )
    if settings.environment is Environment.PRODUCTION:
        missing += _empty({"NUDGE_SIGNING_SECRET": settings.signing_secret.get_secret_value()})
        if problem := _public_url_problem(settings.public_base_url):
            missing.append(f"NUDGE_PUBLIC_BASE_URL ({problem})")
    return missing


def check_configured(settings: Settings) -> None:
    """Refuse to start with a selected provider or the production environment missing settings.

    Raises
    ------
    ServiceUnavailable
        Listing every missing setting (``details``), so one restart fixes them all.
    """
    if missing := missing_settings(settings):
        raise ServiceUnavailable(f"Nudge is not configured: set {', '.join(missing)}", details=missing)


def _empty(values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if not value.strip()]


def _public_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the address recipients and providers reach, or ``None``.

    RFC 8058 requires an HTTPS ``List-Unsubscribe`` URI, and a loopback host reaches nobody outside.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        return "an https:// URL reachable from outside"
    if host == "localhost" or host.endswith(".localhost") or _is_loopback(host):
        return f"{host} is this machine, not an address reachable from outside"
    return None


def _is_loopback(host: str) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
