"""Measuring retrieval against a labelled set: recall@k and MRR, for the sample brand or any brand's own set.

A set is ``{"k": 5, "queries": [{"query": "…", "channel": "email" | "sms" | null, "relevant": [ids]}]}``
(``data/samples/brand/retrieval_eval.json``). ``library_from_folder`` indexes a brand folder's creative
in memory, without a database, so an evaluation needs only the files and the embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field

from agents.brand import CREATIVE_FILES
from agents.creative import document_for, parse_creative
from agents.files import raise_problems
from agents.ports import CreativeRetriever
from agents.retrieval import History, library_rates
from agents.vectorstore import LocalVectorStore
from core.models import Channel, CreativeItem, CreativeKind


class LabelledQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1)
    channel: Channel | None = None
    relevant: list[str] = Field(min_length=1)


class EvalSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=5, ge=1)
    queries: list[LabelledQuery] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class QueryResult:
    query: LabelledQuery
    retrieved: tuple[str, ...]

    @property
    def recall(self) -> float:
        return len(set(self.query.relevant) & set(self.retrieved)) / len(self.query.relevant)

    @property
    def reciprocal_rank(self) -> float:
        ranks = [rank for rank, item in enumerate(self.retrieved, start=1) if item in self.query.relevant]
        return 1 / ranks[0] if ranks else 0.0


@dataclass(frozen=True, slots=True)
class EvalResult:
    k: int
    results: tuple[QueryResult, ...]

    @property
    def recall(self) -> float:
        """Mean over queries of the share of relevant items in the top k."""
        return sum(result.recall for result in self.results) / len(self.results)

    @property
    def mrr(self) -> float:
        """Mean reciprocal rank of the first relevant item in the top k (0 when none is)."""
        return sum(result.reciprocal_rank for result in self.results) / len(self.results)

    def misses(self) -> list[QueryResult]:
        return [result for result in self.results if result.recall < 1]


def load_eval_set(path: Path) -> EvalSet:
    return EvalSet.model_validate(json.loads(path.read_text(encoding="utf-8")))


def evaluate(retriever: CreativeRetriever, eval_set: EvalSet, k: int | None = None) -> EvalResult:
    """Recall@k and MRR of ``retriever`` on every query of the set."""
    k = k or eval_set.k
    results = tuple(
        QueryResult(
            query, tuple(item.external_id for item in retriever.retrieve(query.query, channel=query.channel, k=k))
        )
        for query in eval_set.queries
    )
    return EvalResult(k, results)


def library_from_folder(folder: Path, embedding: Embeddings) -> tuple[LocalVectorStore, dict[Channel | None, float]]:
    """The folder's creative indexed in an unsaved local store, and the library's conversion rates by channel."""
    items = _items(folder)
    store = LocalVectorStore(embedding)
    store.add_documents([document_for(item) for item in items], ids=[item.external_id for item in items])
    rates = library_rates(
        (item.channel, History(item.sends, item.conversions))
        for item in items
        if item.kind is not CreativeKind.GUIDELINE
    )
    return store, rates


def _items(folder: Path) -> Sequence[CreativeItem]:
    items: list[CreativeItem] = []
    for name in CREATIVE_FILES:
        parsed = parse_creative((folder / name).read_bytes(), name)
        raise_problems(parsed.problems)
        items += [CreativeItem(**row.columns()) for row in parsed.rows]
    return items
