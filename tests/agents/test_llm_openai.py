"""The ``openai`` and ``openai_compatible`` providers: the real ``ChatOpenAI`` client against a loopback fake
of OpenAI's HTTP API — structured output, usage, retries, fallback, refusals and secrets kept out of sight."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from agents.llm import NO_KEY, OpenAiLlm, OutputMode, chat_model, strict_compatible
from agents.ports import LlmRequest, LlmResult, LlmUsage
from core.errors import BadRequest, ServiceUnavailable
from core.settings import LlmProvider, Settings
from tests.support.fake_openai import FakeOpenAI

KEY = "sk-test-DO-NOT-PRINT-8f3a1c"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"subject": {"type": "string", "maxLength": 78}, "sms_text": {"type": "string"}},
    "required": ["subject", "sms_text"],
    "additionalProperties": False,
}
# What strict mode is sent: string lengths are left out (the agent checks them after parsing).
STRICT_SCHEMA: dict[str, Any] = {
    **SCHEMA,
    "properties": {"subject": {"type": "string"}, "sms_text": {"type": "string"}},
}
ANSWER = '{"subject": "We kept your seat warm", "sms_text": "Come back for 20% off. Reply STOP to opt out"}'
REQUEST = LlmRequest(
    system="You write retention copy.",
    user="Brief: lapsed subscribers, 20% off.",
    json_schema=SCHEMA,
    schema_name="draft_output",
    examples=(("Brief: cart left behind.", '{"subject": "Still thinking?", "sms_text": "Your cart waits."}'),),
    max_tokens=300,
    temperature=0.4,
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.answer(ANSWER, prompt_tokens=1000, completion_tokens=500)
        yield server


def _settings(fake: FakeOpenAI, provider: LlmProvider = LlmProvider.OPENAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm": provider,
        "llm_model": "gpt-4.1-mini",
        "llm_fallback_model": "gpt-4.1-nano",
        "llm_base_url": fake.base_url,
        "openai_api_key": SecretStr(KEY),
        "llm_max_retries": 2,
        "llm_timeout_seconds": 5.0,
    }
    return Settings(**(values | overrides))


def _formats(fake: FakeOpenAI) -> list[str]:
    return [
        request.body["response_format"]["type"] if "response_format" in request.body else "none"
        for request in fake.requests
    ]


def test_openai_returns_the_json_text_and_the_usage_the_server_reported(fake: FakeOpenAI) -> None:
    llm = chat_model(_settings(fake))

    result = llm.complete(REQUEST)

    assert result == LlmResult(text=ANSWER, usage=LlmUsage("gpt-4.1-mini", 1000, 500), cached=False)
    assert llm.provider == "openai"


def test_openai_asks_for_strict_structured_output_with_the_examples_as_turns(fake: FakeOpenAI) -> None:
    chat_model(_settings(fake)).complete(REQUEST)

    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-4.1-mini"
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "draft_output", "schema": STRICT_SCHEMA, "strict": True},
    }
    assert sent.body["messages"] == [
        {"role": "system", "content": "You write retention copy."},
        {"role": "user", "content": "Brief: cart left behind."},
        {"role": "assistant", "content": '{"subject": "Still thinking?", "sms_text": "Your cart waits."}'},
        {"role": "user", "content": "Brief: lapsed subscribers, 20% off."},
    ]
    assert sent.body["max_completion_tokens"] == 300
    assert sent.body["temperature"] == 0.4


def test_a_schema_strict_mode_cannot_take_is_sent_without_strict_and_keeps_its_lengths(fake: FakeOpenAI) -> None:
    open_schema = {"type": "object", "properties": {"subject": {"type": "string", "maxLength": 78}}}
    request = LlmRequest(system="s", user="u", json_schema=open_schema, schema_name="loose")

    chat_model(_settings(fake)).complete(request)

    assert fake.requests[0].body["response_format"]["json_schema"] == {
        "name": "loose",
        "schema": open_schema,
        "strict": False,
    }


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (SCHEMA, True),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, False),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, False),
        (
            {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"b": {}}}}},
                "required": ["items"],
                "additionalProperties": False,
            },
            False,
        ),
        ({"type": "string"}, True),
    ],
)
def test_strict_mode_needs_every_object_closed_and_every_property_required(
    schema: dict[str, Any], strict: bool
) -> None:
    assert strict_compatible(schema) is strict


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_failure_is_retried_by_the_client_then_succeeds(fake: FakeOpenAI, status: int) -> None:
    fake.fail(status, times=2)

    result = chat_model(_settings(fake, llm_max_retries=2)).complete(REQUEST)

    assert result.text == ANSWER
    assert [request.body["model"] for request in fake.requests] == ["gpt-4.1-mini"] * 3


def test_the_fallback_model_answers_when_the_primary_keeps_failing(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(500, times=100, model="gpt-4.1-mini")

    result = chat_model(_settings(fake, llm_max_retries=1)).complete(REQUEST)

    assert result.usage == LlmUsage("gpt-4.1-nano", 1000, 500)
    assert [request.body["model"] for request in fake.requests] == ["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4.1-nano"]
    assert "openai model 'gpt-4.1-mini' unavailable" in caplog.text


def test_every_model_failing_is_service_unavailable_naming_the_last_one(fake: FakeOpenAI) -> None:
    fake.fail(503, times=100, message="overloaded")

    with pytest.raises(ServiceUnavailable) as raised:
        chat_model(_settings(fake, llm_max_retries=1)).complete(REQUEST)

    assert raised.value.message == "openai model 'gpt-4.1-nano' failed after 1 retries (HTTP 503): overloaded"
    assert len(fake.requests) == 4  # two models, one try and one retry each


def test_a_rejected_request_is_bad_request_without_retry_or_fallback(fake: FakeOpenAI) -> None:
    fake.fail(400, message="Invalid value for 'temperature': must be at most 2")

    with pytest.raises(BadRequest) as raised:
        chat_model(_settings(fake)).complete(REQUEST)

    assert raised.value.message == (
        "openai refused the request to model 'gpt-4.1-mini' (HTTP 400): "
        "Invalid value for 'temperature': must be at most 2"
    )
    assert len(fake.requests) == 1


def test_refused_credentials_are_bad_request_naming_the_setting(fake: FakeOpenAI) -> None:
    fake.fail(401, message=f"Incorrect API key provided: {KEY}")

    with pytest.raises(BadRequest, match="check NUDGE_OPENAI_API_KEY"):
        chat_model(_settings(fake)).complete(REQUEST)

    assert len(fake.requests) == 1


def test_an_answer_cut_at_max_tokens_is_returned_with_the_tokens_it_cost(fake: FakeOpenAI) -> None:
    fake.answer('{"subject": "We kept your', prompt_tokens=1000, completion_tokens=300, finish_reason="length")

    result = chat_model(_settings(fake)).complete(REQUEST)

    assert result == LlmResult(text='{"subject": "We kept your', usage=LlmUsage("gpt-4.1-mini", 1000, 300))


def test_an_answer_stopped_by_the_content_filter_is_bad_request(fake: FakeOpenAI) -> None:
    fake.answer("", prompt_tokens=1000, completion_tokens=0, finish_reason="content_filter")

    with pytest.raises(BadRequest, match="content filter"):
        chat_model(_settings(fake)).complete(REQUEST)


def test_an_unreachable_server_is_service_unavailable(fake: FakeOpenAI) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    llm = chat_model(_settings(fake, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_max_retries=0))

    with pytest.raises(ServiceUnavailable, match="did not answer after 0 retries: Connection error"):
        llm.complete(REQUEST)


def test_openai_without_a_key_is_refused_naming_the_setting(fake: FakeOpenAI) -> None:
    with pytest.raises(ServiceUnavailable, match="set NUDGE_OPENAI_API_KEY"):
        chat_model(_settings(fake, openai_api_key=SecretStr("")))


def test_a_compatible_server_answers_through_the_same_client(fake: FakeOpenAI) -> None:
    llm = chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE, llm_model="llama-3.1-8b", llm_fallback_model=""))

    result = llm.complete(REQUEST)

    assert llm.provider == "openai_compatible"
    assert result.usage == LlmUsage("llama-3.1-8b", 1000, 500)
    assert _formats(fake) == ["json_schema"]


def test_a_compatible_server_needs_no_key(fake: FakeOpenAI) -> None:
    llm = chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE, openai_api_key=SecretStr("")))

    llm.complete(REQUEST)

    assert fake.requests[0].headers["authorization"] == f"Bearer {NO_KEY}"


def test_a_compatible_server_without_a_base_url_is_refused_naming_the_setting(fake: FakeOpenAI) -> None:
    with pytest.raises(ServiceUnavailable, match="set NUDGE_LLM_BASE_URL"):
        chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE, llm_base_url=" "))


def test_a_compatible_server_refusing_json_schema_gets_json_mode_from_then_on(fake: FakeOpenAI) -> None:
    fake.fail(400, times=100, response_format="json_schema", message="response_format json_schema is not supported")
    llm = chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE))
    assert isinstance(llm, OpenAiLlm)

    first = llm.complete(REQUEST)
    second = llm.complete(REQUEST)

    assert first.text == second.text == ANSWER
    assert _formats(fake) == ["json_schema", "json_object", "json_object"]
    assert llm.mode is OutputMode.JSON_OBJECT
    system = fake.requests[1].body["messages"][0]["content"]
    assert system.startswith("You write retention copy.\n\nAnswer with one JSON object and nothing else")
    assert '"required": ["subject", "sms_text"]' in system


def test_a_compatible_server_without_json_mode_gets_the_schema_by_prompt(fake: FakeOpenAI) -> None:
    fake.fail(400, times=100, response_format="json_schema")
    fake.fail(400, times=100, response_format="json_object")
    llm = chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE))
    assert isinstance(llm, OpenAiLlm)

    llm.complete(REQUEST)

    assert _formats(fake) == ["json_schema", "json_object", "none"]
    assert llm.mode is OutputMode.PROMPT


def test_a_request_every_mode_refuses_is_bad_request_and_keeps_the_mode(fake: FakeOpenAI) -> None:
    fake.fail(400, times=100, message="prompt is too long")
    llm = chat_model(_settings(fake, LlmProvider.OPENAI_COMPATIBLE))
    assert isinstance(llm, OpenAiLlm)

    with pytest.raises(BadRequest, match="prompt is too long"):
        llm.complete(REQUEST)

    assert _formats(fake) == ["json_schema", "json_object", "none"]
    assert llm.mode is OutputMode.JSON_SCHEMA


def test_the_key_never_appears_in_reprs_logs_or_errors(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(fake, llm_max_retries=1)
    llm = chat_model(settings)
    llm.complete(REQUEST)
    errors: list[Exception] = []
    for status, tries in ((401, 1), (400, 1), (500, 4)):  # 500: two models, a try and a retry each
        fake.fail(status, times=tries, message=f"the server echoed {KEY}")
        with pytest.raises((BadRequest, ServiceUnavailable)) as raised:
            llm.complete(REQUEST)
        errors.append(raised.value)

    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert "the server echoed ***" in str(errors[1])
    shown = [repr(llm), str(llm), repr(settings), str(settings.model_dump()), caplog.text]
    shown += [f"{error!s} {error!r}" for error in errors]
    assert all(KEY not in text for text in shown)
