"""Retrieval quality with the real local model on the sample brand's labelled queries: recall@5 ≥ 0.9, for pure
similarity and for the blended ranking (``bench/retrieval.py`` prints the figures)."""

from __future__ import annotations

import pytest

from agents.evaluation import EvalResult, evaluate, library_from_folder, load_eval_set
from agents.retrieval import VectorRetriever
from nudge.commands.creative import SAMPLE_BRAND
from tests.support.embeddings import shared_local_embeddings


@pytest.fixture(scope="module")
def results() -> dict[str, EvalResult]:
    store, rates = library_from_folder(SAMPLE_BRAND, shared_local_embeddings())
    eval_set = load_eval_set(SAMPLE_BRAND / "retrieval_eval.json")
    return {
        "similarity": evaluate(VectorRetriever(store, rates=rates, weight=0.0), eval_set),
        "blended": evaluate(VectorRetriever(store, rates=rates), eval_set),
    }


def test_the_labelled_set_is_large_enough(results: dict[str, EvalResult]) -> None:
    assert results["blended"].k == 5
    assert len(results["blended"].results) >= 30


@pytest.mark.parametrize("ranking", ["similarity", "blended"])
def test_recall_at_5_is_at_least_0_9(results: dict[str, EvalResult], ranking: str) -> None:
    assert results[ranking].recall >= 0.9
    assert results[ranking].mrr >= 0.85


def test_local_vectors_are_normalised_python_floats() -> None:
    [vector] = shared_local_embeddings().embed_documents(["20% off your bill for three months"])

    assert len(vector) == 384
    assert all(type(value) is float for value in vector)
    assert sum(value * value for value in vector) == pytest.approx(1.0, abs=1e-5)
