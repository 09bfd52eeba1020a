"""Retrieval ranking on a hand-built library with exact similarities: a pool by similarity (channel-filtered,
no guidelines), performance shrunk toward the library's rate, and the blend of the two."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from langchain_core.documents import Document

from agents.creative import document_for, import_creative
from agents.ports import RetrievedCreative
from agents.retrieval import DEFAULT_WEIGHT, History, VectorRetriever, blend, performance_score
from agents.vectorstore import LocalVectorStore
from core.db import Database
from core.errors import BadRequest
from core.models import Channel, CreativeItem, CreativeKind
from tests.support.embeddings import FixedEmbeddings

QUERY = "win back lapsed buyers"


def at(similarity: float) -> list[float]:
    """A unit vector whose cosine with the query's [1, 0] is ``similarity``."""
    return [similarity, math.sqrt(1 - similarity**2)]


# title → (external id, kind, channel, similarity to the query, sends, conversions)
LIBRARY: dict[str, tuple[str, CreativeKind, Channel | None, float, int, int]] = {
    "Poor close": ("poor-close", CreativeKind.CAMPAIGN, Channel.EMAIL, 0.80, 10_000, 50),
    "Strong near": ("strong-near", CreativeKind.CAMPAIGN, Channel.EMAIL, 0.76, 10_000, 400),
    "Lucky small": ("lucky-small", CreativeKind.CAMPAIGN, Channel.EMAIL, 0.70, 10, 2),
    "Solid big": ("solid-big", CreativeKind.CAMPAIGN, Channel.EMAIL, 0.70, 10_000, 300),
    "Never sent": ("never-sent", CreativeKind.SNIPPET, Channel.EMAIL, 0.60, 0, 0),
    "Far winner": ("far-winner", CreativeKind.CAMPAIGN, Channel.EMAIL, 0.30, 10_000, 900),
    "Text close": ("sms-close", CreativeKind.CAMPAIGN, Channel.SMS, 0.90, 5_000, 200),
    "Voice": ("gl-voice", CreativeKind.GUIDELINE, None, 0.95, 0, 0),
}
EMBEDDINGS = FixedEmbeddings({QUERY: [1.0, 0.0]} | {title: at(row[3]) for title, row in LIBRARY.items()})


def item(title: str) -> CreativeItem:
    external_id, kind, channel, _, sends, conversions = LIBRARY[title]
    return CreativeItem(
        external_id=external_id,
        kind=kind,
        channel=channel,
        title=title,
        subject="Subject" if channel is Channel.EMAIL and kind is CreativeKind.CAMPAIGN else None,
        body=f"Body of {title}.",
        tags=["winback"],
        sends=sends,
        conversions=conversions,
    )


def library_store() -> LocalVectorStore:
    store = LocalVectorStore(EMBEDDINGS)
    items = [item(title) for title in LIBRARY]
    store.add_documents([document_for(entry) for entry in items], ids=[entry.external_id for entry in items])
    return store


def ranked(found: list[RetrievedCreative]) -> list[str]:
    return [entry.external_id for entry in found]


def test_performance_is_the_shrunk_rate_relative_to_the_library() -> None:
    assert performance_score(History(0, 0), 0.02) == 0.5
    assert performance_score(History(10_000, 200), 0.02) == pytest.approx(0.5)
    assert performance_score(History(10, 2), 0.02) == pytest.approx(22 / 1010 / (22 / 1010 + 0.02))  # 0.521
    assert performance_score(History(10_000, 400), 0.02) == pytest.approx(420 / 11_000 / (420 / 11_000 + 0.02))
    assert performance_score(History(10_000, 400), 0.02, prior_sends=0) == pytest.approx(2 / 3)
    assert performance_score(History(50, 5), 0.0) == 0.5


def test_blend_weights_performance_by_w() -> None:
    assert DEFAULT_WEIGHT == 0.2
    assert blend(0.8, 0.25) == pytest.approx(0.8 * 0.8 + 0.2 * 0.25)
    assert blend(0.8, 0.25, weight=0.0) == 0.8


def test_a_high_performer_beats_a_slightly_more_similar_poor_one() -> None:
    store = library_store()

    blended = VectorRetriever(store, rates={Channel.EMAIL: 0.02}).retrieve(QUERY, channel=Channel.EMAIL, k=2)
    similar = VectorRetriever(store, rates={Channel.EMAIL: 0.02}, weight=0).retrieve(QUERY, channel=Channel.EMAIL, k=2)

    assert ranked(similar) == ["poor-close", "strong-near"]
    assert ranked(blended) == ["strong-near", "poor-close"]
    strong, poor = blended
    assert [strong.similarity, poor.similarity] == pytest.approx([0.76, 0.80])
    assert strong.performance == pytest.approx(0.65625, abs=1e-5)
    assert poor.performance == pytest.approx(0.24138, abs=1e-5)
    assert strong.score == pytest.approx(0.8 * 0.76 + 0.2 * strong.performance)
    assert poor.score == pytest.approx(0.8 * 0.80 + 0.2 * poor.performance)


def test_shrinkage_keeps_a_lucky_small_send_below_a_proven_large_one() -> None:
    found = VectorRetriever(library_store(), rates={Channel.EMAIL: 0.02}).retrieve(QUERY, channel=Channel.EMAIL, k=5)

    by_id = {entry.external_id: entry for entry in found}
    # 2 of 10 (20 %) is weak evidence; 300 of 10,000 (3 %) is strong: same similarity, the proven one ranks first
    assert by_id["solid-big"].performance > by_id["lucky-small"].performance > 0.5
    assert ranked(found).index("solid-big") < ranked(found).index("lucky-small")
    assert by_id["never-sent"].performance == 0.5


def test_guidelines_are_never_retrieved_and_the_channel_filters() -> None:
    retriever = VectorRetriever(library_store(), rates={Channel.EMAIL: 0.02, Channel.SMS: 0.04})

    everything = ranked(retriever.retrieve(QUERY, k=10))
    texts = ranked(retriever.retrieve(QUERY, channel=Channel.SMS, k=10))

    assert sorted(everything) == [
        "far-winner",
        "lucky-small",
        "never-sent",
        "poor-close",
        "sms-close",
        "solid-big",
        "strong-near",
    ]
    assert texts == ["sms-close"]


def test_without_rates_or_session_the_pool_sets_the_library_rate() -> None:
    [first] = VectorRetriever(library_store()).retrieve(QUERY, channel=Channel.EMAIL, k=1)

    # pool of 4 (4·k): poor-close, strong-near, lucky-small, solid-big → 752 conversions in 30,010 sends
    assert first.performance == pytest.approx(performance_score(History(10_000, 400), 752 / 30_010))


def test_the_pool_is_four_times_k() -> None:
    retriever = VectorRetriever(library_store(), rates={Channel.EMAIL: 0.02}, weight=1.0)  # rank by performance only

    # k = 1: a pool of the 4 most similar e-mail items, which leaves out the far (0.30) best performer
    assert ranked(retriever.retrieve(QUERY, channel=Channel.EMAIL, k=1)) == ["strong-near"]
    # k = 2: a pool of 8 holds all 6 e-mail items
    assert ranked(retriever.retrieve(QUERY, channel=Channel.EMAIL, k=2)) == ["far-winner", "strong-near"]


def test_k_must_be_positive() -> None:
    with pytest.raises(BadRequest, match="k must be at least 1"):
        VectorRetriever(library_store()).retrieve(QUERY, k=0)


def library_file() -> bytes:
    items: list[dict[str, Any]] = []
    for title in LIBRARY:
        entry = item(title)
        items.append(
            {
                "external_id": entry.external_id,
                "kind": entry.kind.value,
                "channel": entry.channel.value if entry.channel else None,
                "title": title,
                "subject": entry.subject,
                "body": entry.body,
                "tags": entry.tags,
                "performance": {"sends": entry.sends, "conversions": entry.conversions},
            }
        )
    return json.dumps({"creative": items}).encode()


def test_with_a_session_text_and_history_come_from_the_database(db: Database) -> None:
    store = LocalVectorStore(EMBEDDINGS)
    with db.session() as session:
        import_creative(session, library_file(), store=store)
    # A vector whose item is not in the database (a rolled-back import) is ignored.
    ghost = {"external_id": "ghost", "kind": "campaign", "channel": "email"}
    store.add_documents([Document(page_content="Poor close", metadata=ghost)], ids=["ghost"])

    with db.session() as session:
        found = VectorRetriever(store, session).retrieve(QUERY, channel=Channel.EMAIL, k=2)

    assert ranked(found) == ["strong-near", "poor-close"]
    # the library's e-mail rate from the database: 1,652 conversions in 40,010 sends
    expected = performance_score(History(10_000, 400), 1_652 / 40_010)
    assert found[0] == RetrievedCreative(
        external_id="strong-near",
        kind=CreativeKind.CAMPAIGN,
        channel=Channel.EMAIL,
        title="Strong near",
        subject="Subject",
        body="Body of Strong near.",
        tags=("winback",),
        similarity=pytest.approx(0.76),  # type: ignore[arg-type]
        performance=pytest.approx(expected),  # type: ignore[arg-type]
        score=pytest.approx(0.8 * 0.76 + 0.2 * expected),  # type: ignore[arg-type]
    )
