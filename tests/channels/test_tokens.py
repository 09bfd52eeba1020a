"""Unsubscribe tokens: signed, opaque, URL-safe, never expiring; the embedded key is made once and kept."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from channels.tokens import (
    TokenSubject,
    customer_token,
    message_token,
    read_token,
    signing_key,
    unsubscribe_url,
)
from core.errors import NotFound, ServiceUnavailable
from core.models import Channel
from core.settings import Environment, Settings

KEY = b"k" * 32


def test_a_message_token_reads_back_as_its_message_and_channel() -> None:
    token = message_token(KEY, "msg_7f3a9c", Channel.EMAIL)

    assert read_token(KEY, token) == TokenSubject(Channel.EMAIL, message_key="msg_7f3a9c")
    assert read_token(KEY, token).reference == "msg_7f3a9c"


def test_a_customer_token_reads_back_as_its_customer_and_channel() -> None:
    token = customer_token(KEY, 42, Channel.SMS)

    assert read_token(KEY, token) == TokenSubject(Channel.SMS, customer_id=42)
    assert read_token(KEY, token).reference == "customer:42"


def test_a_token_is_url_safe_unpadded_base64_and_fits_a_header() -> None:
    token = message_token(KEY, "m" * 64, Channel.EMAIL)

    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)
    assert len(token) < 200


def test_the_same_inputs_make_the_same_token_and_the_channel_changes_it() -> None:
    assert message_token(KEY, "m1", Channel.EMAIL) == message_token(KEY, "m1", Channel.EMAIL)
    assert message_token(KEY, "m1", Channel.EMAIL) != message_token(KEY, "m1", Channel.SMS)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="signature"),
        pytest.param(lambda token: ("A" if token[0] != "A" else "B") + token[1:], id="payload"),
        pytest.param(lambda token: token.split(".")[0], id="no signature"),
        pytest.param(lambda token: token[:-2], id="truncated"),
        pytest.param(lambda token: token.replace("-", "+").replace("_", "/") + "=", id="other alphabet"),
        pytest.param(lambda token: token + "." + token, id="two dots"),
        pytest.param(lambda token: "x" * 600, id="too long"),
        pytest.param(lambda token: "", id="empty"),
    ],
)
def test_a_tampered_token_is_refused(tamper: Callable[[str], str]) -> None:
    token = message_token(KEY, "msg_7f3a9c", Channel.EMAIL)

    with pytest.raises(NotFound, match="this unsubscribe link is not valid"):
        read_token(KEY, tamper(token))


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = message_token(b"another secret", "msg_7f3a9c", Channel.EMAIL)

    with pytest.raises(NotFound):
        read_token(KEY, token)


def test_the_configured_secret_is_the_key(tmp_path: Path) -> None:
    settings = Settings(signing_secret=SecretStr("s3cret"), data_dir=tmp_path, environment=Environment.PRODUCTION)

    assert signing_key(settings) == b"s3cret"
    assert list(tmp_path.iterdir()) == []


def test_the_embedded_key_file_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    first = signing_key(settings)
    second = signing_key(settings)

    key_file = tmp_path / "data" / "signing.key"
    assert first == second == key_file.read_bytes()
    assert len(first) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(path.name for path in key_file.parent.iterdir()) == ["signing.key"]  # no temporary file left


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "signing.key").write_bytes(b"x" * 32)

    assert signing_key(Settings(data_dir=tmp_path)) == b"x" * 32


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "signing.key").write_bytes(b"short")

    with pytest.raises(ServiceUnavailable, match="is not 32 bytes: restore it from a backup"):
        signing_key(Settings(data_dir=tmp_path))
    assert (tmp_path / "signing.key").read_bytes() == b"short"


def test_production_without_a_secret_is_refused_and_makes_no_key_file(tmp_path: Path) -> None:
    settings = Settings(environment=Environment.PRODUCTION, data_dir=tmp_path)

    with pytest.raises(ServiceUnavailable, match="NUDGE_SIGNING_SECRET must be set in production"):
        signing_key(settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("base", ["https://nudge.example.com", "https://nudge.example.com/"])
def test_the_unsubscribe_url_is_the_public_base_url_and_the_token(base: str) -> None:
    settings = Settings(public_base_url=base)

    assert unsubscribe_url(settings, "abc.def") == "https://nudge.example.com/u/abc.def"
