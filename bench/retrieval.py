"""Retrieval quality on the sample brand: recall@5 and MRR@5 with the local embeddings, pure similarity against
the blended ranking (similarity and shrunk performance, ``agents.retrieval``).

Indexes ``data/samples/brand`` (guidelines and creative) in memory — no database — and runs every query of
``data/samples/brand/retrieval_eval.json``, printing both rankings' figures, the queries that missed a
relevant item, and the time spent loading the model, indexing and querying.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval.py [--folder data/samples/brand] [--weight 0.25]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.embeddings import LocalEmbeddings
from agents.evaluation import EvalResult, evaluate, library_from_folder, load_eval_set
from agents.retrieval import DEFAULT_WEIGHT, VectorRetriever

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    args = _arguments()
    embedding = LocalEmbeddings()
    started = time.perf_counter()
    embedding.embed_query("warm up")  # loads the model: counted apart from indexing
    loaded = time.perf_counter()
    store, rates = library_from_folder(args.folder, embedding)
    indexed = time.perf_counter()
    eval_set = load_eval_set(args.folder / "retrieval_eval.json")
    rankings = {"similarity (w = 0)": 0.0, f"blended (w = {args.weight:g})": args.weight}
    results = {
        name: evaluate(VectorRetriever(store, weight=weight, rates=rates), eval_set)
        for name, weight in rankings.items()
    }
    queried = time.perf_counter()
    print(f"{len(store.store)} items, {len(eval_set.queries)} queries, k = {eval_set.k}")
    for name, result in results.items():
        print(f"{name:<22} recall@{result.k} {result.recall:.3f}   MRR@{result.k} {result.mrr:.3f}")
    for name, result in results.items():
        _print_misses(name, result)
    runs = len(rankings) * len(eval_set.queries)
    print(
        f"model load {loaded - started:.2f} s, indexing {indexed - loaded:.2f} s, "
        f"{(queried - indexed) / runs * 1000:.1f} ms per query"
    )


def _print_misses(name: str, result: EvalResult) -> None:
    for miss in result.misses():
        missing = sorted(set(miss.query.relevant) - set(miss.retrieved))
        print(f"  {name} missed {', '.join(missing)} for {miss.query.query!r}; got {', '.join(miss.retrieved)}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=ROOT / "data" / "samples" / "brand")
    parser.add_argument("--weight", type=float, default=DEFAULT_WEIGHT, help="the blend's performance weight")
    return parser.parse_args()


if __name__ == "__main__":
    main()
