"""Creative for the drafting agent: items similar to the brief, nudged toward the ones that worked.

``VectorRetriever`` implements ``agents.ports.CreativeRetriever``. The ranking rule:

1. **Candidate pool.** The ``pool_factor · k`` items (default 4k) most similar to the query by cosine
   similarity, from the vector store, restricted to the channel when one is given. Guidelines are never
   candidates (they reach the prompt whole, through ``guidelines``).
2. **Performance** ``p`` in [0, 1], from the item's history: conversions per send, shrunk toward the
   library's rate ``m`` for the item's channel (pooled over the library's sent campaigns and snippets) —
   the posterior mean of a beta-binomial with a prior worth ``n0`` sends (default 1,000)::

       r = (conversions + n0·m) / (sends + n0)        p = r / (r + m)

   so an item at the library's rate, or never sent, scores 0.5; twice the rate 0.67; half 0.33; and
   p → 1 or 0 only with a lot of evidence. Shrinkage is what keeps 2 conversions out of 10 sends (20 %)
   from beating 400 out of 10,000 (4 %): with m = 2 % the first moves r only to 2.2 % (p = 0.52), the
   second to 3.8 % (p = 0.66). Conversions are the measure because they are what a campaign is for;
   opens say more about the subject line than about the copy.
3. **Blend.** ``score = (1 − w)·similarity + w·p`` with ``w = 0.2`` by default. With the local model the
   sample brand's on-topic items sit at similarities of ~0.4–0.7 and p spreads over ~0.2–0.85, so a strong
   against a weak performer (Δp ≈ 0.4) is worth Δsimilarity = 0.4·w/(1 − w) = 0.1: enough to put the
   better of two nearly-as-relevant items first, not enough to lift a loosely related winner over the
   items that match the brief. ``bench/retrieval.py`` measures it on the sample brand's 42 labelled
   queries: recall@5 0.968 / MRR@5 0.960 by similarity alone, 0.956 / 0.929 blended at w = 0.2 — what
   the blend drops is mostly the on-topic poor performers, which is its purpose — and 0.944 / 0.883 at
   w = 0.3.
4. The ``k`` best by score (ties by external id), as ``RetrievedCreative``.

With a session the items' text and history come from the database (an id the store holds but the
database does not — a rolled-back import — is dropped); without one, from the vector metadata, with
``m`` given as ``rates`` or else taken from the pool. Text is sanitised again on the way out
(``agents.sanitize``), in case the store was written by something other than the importer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.creative import stored_items
from agents.ports import RetrievedCreative
from agents.sanitize import clean
from agents.vectorstore import store_errors
from core.errors import BadRequest
from core.models import Channel, CreativeItem, CreativeKind

DEFAULT_WEIGHT = 0.2
PRIOR_SENDS = 1000
POOL_FACTOR = 4
NEUTRAL = 0.5  # the performance of an item at the library's rate, or with no history
RETRIEVABLE_KINDS = (CreativeKind.CAMPAIGN.value, CreativeKind.SNIPPET.value)

Rates = Mapping[Channel | None, float]  # the library's conversions per send, by channel


@dataclass(frozen=True, slots=True)
class History:
    sends: int
    conversions: int


@dataclass(frozen=True, slots=True)
class Candidate:
    external_id: str
    kind: CreativeKind
    channel: Channel | None
    title: str
    subject: str | None
    body: str
    tags: tuple[str, ...]
    history: History
    similarity: float


def performance_score(history: History, rate: float, prior_sends: float = PRIOR_SENDS) -> float:
    """The item's shrunk conversion rate relative to the library's ``rate``, in [0, 1]; 0.5 at the library rate."""
    if rate <= 0:
        return NEUTRAL  # nothing in the library converted: history cannot tell items apart
    shrunk = (history.conversions + prior_sends * rate) / (history.sends + prior_sends)
    return shrunk / (shrunk + rate)


def blend(similarity: float, performance: float, weight: float = DEFAULT_WEIGHT) -> float:
    return (1 - weight) * similarity + weight * performance


def library_rates(histories: Iterable[tuple[Channel | None, History]]) -> dict[Channel | None, float]:
    """Pooled conversions per send by channel (items never sent count for nothing)."""
    sends: dict[Channel | None, int] = {}
    conversions: dict[Channel | None, int] = {}
    for channel, history in histories:
        sends[channel] = sends.get(channel, 0) + history.sends
        conversions[channel] = conversions.get(channel, 0) + history.conversions
    return {channel: conversions[channel] / total for channel, total in sends.items() if total}


class VectorRetriever:
    """``CreativeRetriever`` over a LangChain vector store: the rule is in the module docstring."""

    def __init__(
        self,
        store: VectorStore,
        session: Session | None = None,
        *,
        weight: float = DEFAULT_WEIGHT,
        prior_sends: float = PRIOR_SENDS,
        pool_factor: int = POOL_FACTOR,
        rates: Rates | None = None,
    ) -> None:
        if not 0 <= weight <= 1 or prior_sends < 0 or pool_factor < 1:
            raise BadRequest("weight must be in [0, 1], prior_sends >= 0 and pool_factor >= 1")
        self.store, self.session = store, session
        self.weight, self.prior_sends, self.pool_factor = weight, prior_sends, pool_factor
        self.rates = rates

    def retrieve(self, query: str, *, channel: Channel | None = None, k: int = 5) -> list[RetrievedCreative]:
        if k < 1:
            raise BadRequest(f"k must be at least 1, got {k}")
        candidates = self._candidates(self._pool(query, channel, k))
        rates = self._rates(candidates)
        ranked = sorted((self._ranked(candidate, rates) for candidate in candidates), key=_rank_key)
        return ranked[:k]

    def _pool(self, query: str, channel: Channel | None, k: int) -> list[tuple[Document, float]]:
        where: dict[str, Any] = {"kind": {"$in": list(RETRIEVABLE_KINDS)}}
        if channel is not None:
            where["channel"] = {"$eq": channel.value}
        with store_errors():
            return self.store.similarity_search_with_score(query, k=self.pool_factor * k, filter=where)

    def _candidates(self, pool: Sequence[tuple[Document, float]]) -> list[Candidate]:
        if self.session is None:
            return [_from_metadata(document, similarity) for document, similarity in pool]
        items = stored_items(self.session, [_id_of(document) for document, _ in pool])
        return [
            _from_item(items[_id_of(document)], similarity)
            for document, similarity in pool
            if _id_of(document) in items and items[_id_of(document)].kind is not CreativeKind.GUIDELINE
        ]

    def _rates(self, candidates: Sequence[Candidate]) -> Rates:
        if self.rates is not None:
            return self.rates
        if self.session is not None:
            return session_rates(self.session)
        return library_rates((candidate.channel, candidate.history) for candidate in candidates)

    def _ranked(self, candidate: Candidate, rates: Rates) -> RetrievedCreative:
        performance = performance_score(candidate.history, rates.get(candidate.channel, 0.0), self.prior_sends)
        return RetrievedCreative(
            external_id=candidate.external_id,
            kind=candidate.kind,
            channel=candidate.channel,
            title=clean(candidate.title),
            subject=None if candidate.subject is None else clean(candidate.subject),
            body=clean(candidate.body),
            tags=candidate.tags,
            similarity=candidate.similarity,
            performance=performance,
            score=blend(candidate.similarity, performance, self.weight),
        )


def _rank_key(item: RetrievedCreative) -> tuple[float, str]:
    return -item.score, item.external_id


def _id_of(document: Document) -> str:
    return str(document.metadata.get("external_id") or document.id)


def _from_item(item: CreativeItem, similarity: float) -> Candidate:
    return Candidate(
        external_id=item.external_id,
        kind=item.kind,
        channel=item.channel,
        title=item.title,
        subject=item.subject,
        body=item.body,
        tags=tuple(item.tags),
        history=History(item.sends, item.conversions),
        similarity=similarity,
    )


def _from_metadata(document: Document, similarity: float) -> Candidate:
    """A candidate from what the store keeps; numbers may come back as floats (Pinecone's JSON)."""
    metadata = document.metadata
    channel = metadata.get("channel")
    return Candidate(
        external_id=_id_of(document),
        kind=CreativeKind(metadata["kind"]),
        channel=Channel(channel) if channel else None,
        title=str(metadata.get("title", "")),
        subject=metadata.get("subject") or None,
        body=str(metadata.get("body", document.page_content)),
        tags=tuple(str(tag) for tag in metadata.get("tags", [])),
        history=History(int(metadata.get("sends", 0)), int(metadata.get("conversions", 0))),
        similarity=similarity,
    )


def session_rates(session: Session) -> dict[Channel | None, float]:
    """The library's pooled conversions per send by channel, from the database."""
    query = (
        select(CreativeItem.channel, func.sum(CreativeItem.sends), func.sum(CreativeItem.conversions))
        .where(CreativeItem.kind != CreativeKind.GUIDELINE)
        .group_by(CreativeItem.channel)
    )
    return library_rates(
        (channel, History(int(sends or 0), int(conversions or 0)))
        for channel, sends, conversions in session.execute(query)
    )


def guidelines(session: Session, channel: Channel | None = None) -> str:
    """The brand guidelines as one text for the prompt: those for every channel, plus ``channel``'s own.

    Each guideline is a ``## title`` section, in external-id order so the prompt (and its cache key) is stable.
    """
    query = select(CreativeItem).where(CreativeItem.kind == CreativeKind.GUIDELINE).order_by(CreativeItem.external_id)
    sections = [
        f"## {clean(item.title)}\n{clean(item.body)}"
        for item in session.scalars(query)
        if item.channel is None or item.channel is channel
    ]
    return "\n\n".join(sections)
