"""The drafting agent: a brief in, N checked variants out, through any ``StructuredLlm``.

One retrieval per brief, then one LLM call per variant — never per recipient: personalisation is
slots, filled at send time. Each answer is parsed, finished by the brand's layout (``agents.layout``:
the e-mail footer and HTML, the SMS frame) and checked (``agents.checks``); a rejected answer
is sent back with its problems (the repair prompt) until it passes or ``max_attempts`` is spent.
A variant that still fails is recorded with its problems (``DraftSet.failed``) and the others are
kept; only when every variant fails does the brief fail, with ``ValidationFailed`` naming each.

The agent trusts no provider to enforce the schema: OpenAI's structured outputs, an
OpenAI-compatible server and the local model's grammar all go through the same parse and checks.
Every request carries ``campaign_key``, ``variant``, ``purpose`` ("draft" or "repair") and
``attempt`` in its metadata, so the metering wrapper attributes what it costs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pydantic import ValidationError

from agents.checks import DraftCheck, check_output
from agents.layout import finish
from agents.ports import CreativeRetriever, LlmRequest, LlmResult, RetrievedCreative, StructuredLlm
from agents.prompts import (
    ANGLES,
    EXAMPLE_OUTPUTS,
    PROMPT_VERSION,
    Angle,
    creative_for_variant,
    creative_label,
    prose_slots,
    repair_prompt,
    retrieval_query,
    system_prompt,
    user_prompt,
    worked_example,
)
from agents.schemas import (
    Brief,
    Draft,
    DraftOutput,
    DraftSet,
    FailedVariant,
    UsageSummary,
    output_schema,
    writer_problems,
)
from core.errors import BadRequest, ValidationFailed, field_errors
from core.models import Channel
from core.sms import normalize_typography

RETRIEVAL_K = 8
DRAFT_TEMPERATURE = 0.7
# Each repair samples hotter: at 0.2 the local model repeated its rejected answer word for word, and at the
# draft's 0.7 it kept the worked example's subject through every attempt.
REPAIR_TEMPERATURE_STEP = 0.2
# Room for every field the writer writes at its maxLength (about 3 characters a token) plus the JSON, and no more.
MAX_TOKENS = {Channel.EMAIL: 700, Channel.SMS: 200}
PURPOSE_DRAFT = "draft"
PURPOSE_REPAIR = "repair"

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


@dataclass(frozen=True, slots=True)
class _Variant:
    """One variant's plan: its id, angle, creative and first request."""

    variant: str
    angle: Angle
    creative: tuple[RetrievedCreative, ...]
    request: LlmRequest

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(creative_label(position) for position in range(len(self.creative)))


def draft_campaign(
    brief: Brief,
    *,
    retriever: CreativeRetriever,
    llm: StructuredLlm,
    max_attempts: int = 3,
    extra_checks: Sequence[DraftCheck] = (),
) -> DraftSet:
    """Draft ``brief.n_variants`` different variants of one campaign.

    Parameters
    ----------
    brief : Brief
        What to write, for whom (aggregates only) and with which offers.
    retriever : CreativeRetriever
        Asked once, for the ``RETRIEVAL_K`` best items for the brief.
    llm : StructuredLlm
        Asked once per variant, plus once per repair.
    max_attempts : int
        Calls allowed per variant, the first ask included.
    extra_checks : sequence of DraftCheck
        Further checks run on every answer after the agent's own (the guardrails' hook).

    Returns
    -------
    DraftSet
        The drafts in variant order (``v1`` …), with attempts and token usage per variant, and the
        variants that still failed after ``max_attempts`` calls, with their problems.

    Raises
    ------
    ValidationFailed
        Every variant still fails its checks after ``max_attempts`` calls; ``details`` lists the problems.
    BadRequest
        ``max_attempts`` is below 1.
    """
    if max_attempts < 1:
        raise BadRequest(f"max_attempts must be at least 1, not {max_attempts}")
    query = retrieval_query(brief)
    retrieved = _distinct(retriever.retrieve(query, channel=brief.channel, k=RETRIEVAL_K))
    drafts: list[Draft] = []
    failed: list[FailedVariant] = []
    for index in range(brief.n_variants):
        # A variant must differ from those before it, and must not parrot the worked example (small models do).
        earlier = [
            ("the worked example", finish(EXAMPLE_OUTPUTS[brief.channel], brief.channel, brief.goal)),
            *((f"variant {d.variant}", d) for d in drafts),
        ]
        outcome = _draft_variant(brief, _plan(brief, retrieved, index), llm, max_attempts, earlier, extra_checks)
        if isinstance(outcome, Draft):
            drafts.append(outcome)
        else:
            failed.append(outcome)
    if not drafts:
        raise _every_variant_failed(brief, failed)
    return DraftSet(
        brief=brief,
        drafts=tuple(drafts),
        failed=tuple(failed),
        prompt_version=PROMPT_VERSION,
        retrieval_query=query,
        retrieved_ids=tuple(item.external_id for item in retrieved),
    )


def _distinct(items: Iterable[RetrievedCreative]) -> tuple[RetrievedCreative, ...]:
    # A retriever that repeats an item or returns more than asked must not grow the prompt (OWASP LLM10).
    unique: dict[str, RetrievedCreative] = {}
    for item in items:
        unique.setdefault(item.external_id, item)
    return tuple(unique.values())[:RETRIEVAL_K]


def _plan(brief: Brief, retrieved: Sequence[RetrievedCreative], index: int) -> _Variant:
    variant, angle = f"v{index + 1}", ANGLES[index]
    creative = creative_for_variant(retrieved, index, brief.n_variants)
    labels = [creative_label(position) for position in range(len(creative))]
    request = LlmRequest(
        system=system_prompt(brief.channel),
        user=user_prompt(brief, angle, creative),
        json_schema=output_schema(brief.channel, offer_codes=[o.code for o in brief.offers], creative_ids=labels),
        schema_name=f"draft_{brief.channel}",
        examples=(worked_example(brief.channel),),
        max_tokens=MAX_TOKENS[brief.channel],
        temperature=DRAFT_TEMPERATURE,
        prose_slots=prose_slots(brief),
        metadata={
            "campaign_key": brief.campaign_key,
            "variant": variant,
            "purpose": PURPOSE_DRAFT,
            "attempt": "1",
            "prompt_version": PROMPT_VERSION,
        },
    )
    return _Variant(variant, angle, creative, request)


def _draft_variant(
    brief: Brief,
    variant: _Variant,
    llm: StructuredLlm,
    max_attempts: int,
    earlier: Sequence[tuple[str, DraftOutput]],
    extra_checks: Sequence[DraftCheck],
) -> Draft | FailedVariant:
    results: list[LlmResult] = []
    request = variant.request
    for attempt in range(1, max_attempts + 1):
        result = llm.complete(request)
        results.append(result)
        output, problems = _judge(result.text, brief, variant, earlier, extra_checks)
        if output is not None:
            return _draft(output, brief, variant, attempts=attempt, usage=UsageSummary.of(results))
        request = _repair(variant.request, result.text, problems, attempt + 1)
    return FailedVariant(
        variant=variant.variant,
        angle=variant.angle.key,
        attempts=max_attempts,
        problems=tuple(problems),
        usage=UsageSummary.of(results),
    )


def _every_variant_failed(brief: Brief, failed: Sequence[FailedVariant]) -> ValidationFailed:
    summary = " | ".join(f"{f.variant} ({f.angle}): {'; '.join(f.problems)}" for f in failed)
    return ValidationFailed(
        f"every variant of campaign {brief.campaign_key!r} still fails its checks after its attempts: {summary}",
        details=[{"path": f.variant, "message": problem} for f in failed for problem in f.problems],
    )


def _judge(
    text: str,
    brief: Brief,
    variant: _Variant,
    earlier: Sequence[tuple[str, DraftOutput]],
    extra_checks: Sequence[DraftCheck],
) -> tuple[DraftOutput | None, list[str]]:
    """The finished answer if it passes every check, else ``None`` and its problems."""
    output, problems = read_answer(text)
    if output is None:
        return None, problems
    if problems := writer_problems(output, brief.channel):
        return None, problems
    finished = finish(output, brief.channel, brief.goal)
    problems = check_output(finished, brief, creative_labels=variant.labels, earlier=earlier, extra_checks=extra_checks)
    return (None, problems) if problems else (finished, [])


def _repair(first: LlmRequest, answer: str, problems: Sequence[str], attempt: int) -> LlmRequest:
    # Always built on the first request, so a repair carries only the latest answer and its problems.
    metadata = {**first.metadata, "purpose": PURPOSE_REPAIR, "attempt": str(attempt)}
    user = repair_prompt(first.user, answer, problems)
    temperature = round(first.temperature + REPAIR_TEMPERATURE_STEP * (attempt - 1), 2)
    return replace(first, user=user, temperature=temperature, metadata=metadata)


def read_answer(text: str) -> tuple[DraftOutput | None, list[str]]:
    """Parse a model's answer into a ``DraftOutput``, or say why it cannot be.

    Returns the output (its ``sms_text`` typography made plain: curly quotes and long dashes would
    make a whole SMS UCS-2) and no problems, or ``None`` and the problems as messages for the model.
    """
    try:
        data = _json_object(text)
    except ValueError as error:
        return None, [f"the answer is not one JSON object: {error}"]
    try:
        output = DraftOutput.model_validate(data)
    except ValidationError as error:
        return None, [f"{item['path'] or 'answer'}: {item['message']}" for item in field_errors(error.errors())]
    return output.model_copy(update={"sms_text": normalize_typography(output.sms_text)}), []


def _json_object(text: str) -> dict[str, object]:
    # Lenient about form only: some servers fence JSON in ```, base models may lead with prose, and the local
    # model writes raw line breaks inside strings (strict=False reads them; the copy checks judge the rest).
    stripped = _FENCE.sub("", text.strip())
    start = stripped.find("{")
    if start < 0:
        raise ValueError("no JSON object found")
    value, _ = json.JSONDecoder(strict=False).raw_decode(stripped, start)
    if not isinstance(value, dict):
        raise ValueError("no JSON object found")
    return value


def _draft(output: DraftOutput, brief: Brief, variant: _Variant, *, attempts: int, usage: UsageSummary) -> Draft:
    ids = dict(zip(variant.labels, (item.external_id for item in variant.creative), strict=True))
    content = output.model_dump(exclude={"creative_ids", "offer_codes"})
    return Draft(
        **content,
        creative_ids=tuple(dict.fromkeys(ids[label] for label in output.creative_ids)),
        offer_codes=tuple(dict.fromkeys(output.offer_codes)),
        variant=variant.variant,
        angle=variant.angle.key,
        channel=brief.channel,
        attempts=attempts,
        usage=usage,
    )
