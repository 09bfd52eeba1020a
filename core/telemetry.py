"""Process counters for things that happen in any layer: LLM tokens spent, messages handed to providers.

Defined once here so every domain can count without importing ``web`` or ``workers``; the process that counts
exposes them (``web.metrics`` serves the API's, ``workers.metrics`` each worker's). Labels are small closed sets —
a model name, a channel, a status — never a customer, an address or a campaign.
"""

from __future__ import annotations

from prometheus_client import Counter

LLM_TOKENS = Counter(
    "nudge_llm_tokens", "Tokens billed by LLM calls that reached a model, by model and kind.", ["model", "kind"]
)
LLM_CALLS = Counter(
    "nudge_llm_calls", "LLM completions asked for, by model and whether the cache answered.", ["model", "cached"]
)
MESSAGES = Counter(
    "nudge_messages", "Messages handed to a provider, by channel and resulting status.", ["channel", "status"]
)
