"""The two ports the drafting agent depends on, so providers and stores can change without touching it.

- ``CreativeRetriever``: creative for a query, ranked by the blended similarity/performance rule.
- ``StructuredLlm``: one completion constrained to a JSON schema, returned as text plus token usage.
  OpenAI (structured outputs), any OpenAI-compatible server and the local llama.cpp model (JSON
  grammar) all implement it; the agent parses and validates the text itself, so every provider is
  held to the same schema and the same repair loop.

Plain data crosses these ports; no vendor object does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.models import Channel, CreativeKind


@dataclass(frozen=True, slots=True)
class RetrievedCreative:
    """A creative item as the agent sees it: untrusted text plus why it was chosen."""

    external_id: str
    kind: CreativeKind
    channel: Channel | None
    title: str
    subject: str | None
    body: str
    tags: tuple[str, ...]
    similarity: float  # cosine similarity to the query, in [-1, 1]
    performance: float  # the performance score the ranking blends in, in [0, 1]
    score: float  # the blended score the ranking used


class CreativeRetriever(Protocol):
    def retrieve(self, query: str, *, channel: Channel | None = None, k: int = 5) -> list[RetrievedCreative]:
        """The ``k`` best items for ``query`` (guidelines excluded unless asked for by kind elsewhere)."""
        ...


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """One structured completion: instructions, the task, a JSON schema the answer must satisfy."""

    system: str
    user: str
    json_schema: dict[str, Any]
    schema_name: str
    examples: tuple[tuple[str, str], ...] = ()  # (user, assistant) pairs for few-shot prompting
    max_tokens: int = 900
    temperature: float = 0.7
    metadata: dict[str, str] = field(default_factory=dict)  # campaign_key, variant, purpose — for accounting
    # When set, free text is plain prose plus these placeholders ("{{first_name}}" …) wherever the provider
    # constrains decoding (the local model's grammar): no digits, markup, braces or links can be written.
    prose_slots: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LlmUsage:
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class LlmResult:
    text: str  # the model's answer, expected to be JSON for the request's schema
    usage: LlmUsage
    cached: bool = False


class StructuredLlm(Protocol):
    provider: str

    def complete(self, request: LlmRequest) -> LlmResult:
        """Answer ``request``; raise ``core.errors`` ``ServiceUnavailable`` on provider failure after retries."""
        ...
