"""Signed, opaque unsubscribe tokens: the credential of the public ``/u/{token}`` endpoint (RFC 8058).

A mail client's one-click ``POST`` carries no cookie, no login and no context (RFC 8058 §3.2), so the token in
the URL alone must say whose address to suppress and on which channel, and must be impossible to forge. It
is ``<payload>.<mac>``, both URL-safe base64 without padding:

- the payload names the channel and either a message (``message_key``, itself an opaque random id) or a
  customer (their id), nothing readable about the person;
- the MAC is HMAC-SHA256 with the signing key over a version label and the payload, compared in
  constant time (``hmac.compare_digest``).

**Tokens never expire.** The law wants the opt-out to keep working at least 30 days after the send
(CAN-SPAM, 16 CFR 316.5 / 15 U.S.C. 7704) and 60 days (CASL s.11(2)); an old e-mail's link should still work
years later, and an unsubscribe that is honoured late is still better than one refused. There is no
timestamp to check, so changing the signing secret is what ends old links: keep it as long as the sent
e-mails live.

The key (``signing_key``) is ``NUDGE_SIGNING_SECRET``; the embedded default, when it is empty, makes a random
32-byte key once in ``<data_dir>/signing.key`` (mode 0600) and reuses it, so links survive a restart. In
production an empty secret is a configuration error (``channels.factory.check_configured``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import NotFound, ServiceUnavailable
from core.models import Channel
from core.settings import Environment, Settings

KEY_FILE = "signing.key"
KEY_BYTES = 32
MAX_TOKEN_LENGTH = 512  # a message key is at most 64 characters: anything longer is not ours
_LABEL = b"nudge-unsubscribe-v1\x00"  # domain separation: the key may one day sign other things
_MESSAGE, _CUSTOMER = "m", "c"
_CHANNELS = frozenset(channel.value for channel in Channel)
# Unpadded URL-safe base64 only: no "+", "/" or "=" spellings of the same bytes.
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """Whom a verified token is for: exactly one of ``message_key`` and ``customer_id`` is set.

    Attributes
    ----------
    channel : Channel
        The channel to unsubscribe from.
    message_key : str, optional
        The message whose link it is (the address is the one that message went to).
    customer_id : int, optional
        The customer it is for, when it is not tied to one message.
    """

    channel: Channel
    message_key: str | None = None
    customer_id: int | None = None

    @property
    def reference(self) -> str:
        """What the token points at, as the consent record's proof: the message key, or ``customer:<id>``."""
        return self.message_key if self.message_key is not None else f"customer:{self.customer_id}"


def message_token(key: bytes, message_key: str, channel: Channel) -> str:
    """The unsubscribe token for one message (the ``List-Unsubscribe`` link of that e-mail or text).

    Parameters
    ----------
    key : bytes
        ``signing_key(settings)``, read once per batch.
    message_key : str
        ``Message.message_key``.
    channel : Channel
        The channel the link unsubscribes from (the message's).
    """
    return _sign(key, f"{channel.value}:{_MESSAGE}:{message_key}")


def customer_token(key: bytes, customer_id: int, channel: Channel) -> str:
    """The unsubscribe token for a customer and channel, not tied to one message (a preference link)."""
    return _sign(key, f"{channel.value}:{_CUSTOMER}:{customer_id}")


def read_token(key: bytes, token: str) -> TokenSubject:
    """The subject of a token signed with ``key``.

    Raises
    ------
    NotFound
        The token is malformed, tampered with or signed with another key; the same answer for each, so a
        prober learns nothing.
    """
    parts = _verified_payload(key, token).split(":", 2)
    if len(parts) != 3 or parts[0] not in _CHANNELS or not parts[2]:
        raise _invalid()
    channel, kind, reference = Channel(parts[0]), parts[1], parts[2]
    if kind == _MESSAGE:
        return TokenSubject(channel, message_key=reference)
    if kind == _CUSTOMER and reference.isdigit():
        return TokenSubject(channel, customer_id=int(reference))
    raise _invalid()


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The public one-click URL for ``token``: ``<public_base_url>/u/<token>``."""
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


def signing_key(settings: Settings) -> bytes:
    """The key unsubscribe tokens are signed with (see the module docstring).

    Raises
    ------
    ServiceUnavailable
        In production with no ``NUDGE_SIGNING_SECRET``; or the embedded key file is unreadable or corrupt.
    """
    secret = settings.signing_secret.get_secret_value()
    if secret:
        return secret.encode()
    if settings.environment is Environment.PRODUCTION:
        raise ServiceUnavailable("NUDGE_SIGNING_SECRET must be set in production: it signs every unsubscribe link")
    return _embedded_key(settings.data_dir / KEY_FILE)


def _sign(key: bytes, payload: str) -> str:
    data = payload.encode()
    return f"{_b64(data)}.{_b64(_mac(key, data))}"


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, _LABEL + data, hashlib.sha256).digest()


def _verified_payload(key: bytes, token: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH or not _SHAPE.fullmatch(token):
        raise _invalid()
    data, _, mac = token.partition(".")
    try:
        payload, signature = _unb64(data), _unb64(mac)
    except (binascii.Error, ValueError):
        raise _invalid() from None
    # The last character's unused bits make several spellings decode alike: accept only the one we write.
    canonical = _b64(payload) == data and _b64(signature) == mac
    if not canonical or not hmac.compare_digest(signature, _mac(key, payload)):
        raise _invalid()
    try:
        return payload.decode()
    except UnicodeDecodeError:  # signed by us, so never; but a decode error must not become a 500
        raise _invalid() from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid() -> NotFound:
    return NotFound("this unsubscribe link is not valid")


def _embedded_key(path: Path) -> bytes:
    """The key in ``path``, made (32 random bytes, mode 0600) if there is none yet."""
    if not path.exists():
        _create_key_file(path)
    try:
        key = path.read_bytes()
    except OSError as error:
        raise ServiceUnavailable(f"cannot read the signing key {path}: {error.strerror}") from error
    if len(key) != KEY_BYTES:
        raise ServiceUnavailable(
            f"the signing key {path} is not {KEY_BYTES} bytes: restore it from a backup (a new key would break "
            "every unsubscribe link already sent), or set NUDGE_SIGNING_SECRET"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: two processes starting at once must end up with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        # link(), unlike rename(), refuses to replace: the first process's key wins and the others read it.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
