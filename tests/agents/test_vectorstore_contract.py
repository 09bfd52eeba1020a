"""One contract for both vector stores: the local store, and ``PineconeVectorStore`` on the real pinecone 7.3.0
SDK talking HTTP to a loopback fake of Pinecone. Same calls, same assertions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from urllib3.exceptions import MaxRetryError

from agents.vectorstore import LocalVectorStore, PineconeStore, store_errors, vector_store
from core.errors import ServiceUnavailable
from core.settings import Settings, VectorStoreKind
from tests.support.embeddings import KeywordEmbeddings
from tests.support.fake_pinecone import FakePineconeState, fake_pinecone

API_KEY = "pc-test-key"
MakeStore = Callable[[str], VectorStore]


@pytest.fixture
def pinecone() -> Iterator[FakePineconeState]:
    with fake_pinecone(api_key=API_KEY, dimension=64) as state:
        yield state


def pinecone_settings(state: FakePineconeState, namespace: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "vector_store": VectorStoreKind.PINECONE,
        "pinecone_api_key": API_KEY,
        "pinecone_host": state.host,
        "pinecone_namespace": namespace,
    }
    values.update(changes)
    return Settings.model_validate(values)


@pytest.fixture(params=["local", "pinecone"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A store in the given namespace, configured the way the application configures it."""
    if request.param == "local":
        return lambda namespace: vector_store(
            Settings(data_dir=tmp_path, pinecone_namespace=namespace), KeywordEmbeddings()
        )
    state: FakePineconeState = request.getfixturevalue("pinecone")
    return lambda namespace: vector_store(pinecone_settings(state, namespace), KeywordEmbeddings())


def documents() -> list[Document]:
    return [
        Document(
            page_content="loyalty discount for month to month subscribers",
            metadata={"external_id": "em-loyal", "kind": "campaign", "channel": "email", "tags": ["retention"]},
        ),
        Document(
            page_content="free shipping on vinyl records",
            metadata={"external_id": "sms-vinyl", "kind": "campaign", "channel": "sms", "tags": ["music", "vinyl"]},
        ),
        Document(
            page_content="voice and tone: warm and plain",
            metadata={"external_id": "gl-voice", "kind": "guideline", "tags": ["style"]},
        ),
    ]


def ids_of(found: list[tuple[Document, float]]) -> list[str]:
    return [str(document.metadata["external_id"]) for document, _ in found]


def add(store: VectorStore) -> list[str]:
    return store.add_documents(documents(), ids=["em-loyal", "sms-vinyl", "gl-voice"])


def test_documents_are_kept_under_the_given_ids(make_store: MakeStore) -> None:
    store = make_store("brand-a")

    assert add(store) == ["em-loyal", "sms-vinyl", "gl-voice"]

    [loyal, voice] = sorted(store.get_by_ids(["em-loyal", "gl-voice", "unknown"]), key=lambda doc: str(doc.id))
    assert (loyal.id, loyal.page_content, loyal.metadata) == (
        "em-loyal",
        "loyalty discount for month to month subscribers",
        {"external_id": "em-loyal", "kind": "campaign", "channel": "email", "tags": ["retention"]},
    )
    assert (voice.id, voice.metadata["kind"]) == ("gl-voice", "guideline")


def test_search_ranks_by_cosine_similarity(make_store: MakeStore) -> None:
    store = make_store("brand-a")
    add(store)

    found = store.similarity_search_with_score("free shipping on vinyl records", k=3)

    assert ids_of(found)[0] == "sms-vinyl"
    assert found[0][1] == pytest.approx(1.0)
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert found[0][0].page_content == "free shipping on vinyl records"


def test_search_takes_pinecone_filters(make_store: MakeStore) -> None:
    store = make_store("brand-a")
    add(store)

    def search(where: dict[str, object]) -> list[str]:
        return sorted(ids_of(store.similarity_search_with_score("discount", k=10, filter=where)))

    assert search({"channel": {"$eq": "email"}}) == ["em-loyal"]
    assert search({"kind": {"$in": ["campaign", "snippet"]}}) == ["em-loyal", "sms-vinyl"]
    assert search({"kind": {"$in": ["campaign"]}, "channel": {"$eq": "sms"}}) == ["sms-vinyl"]
    assert search({"tags": {"$in": ["vinyl", "style"]}}) == ["gl-voice", "sms-vinyl"]
    assert search({"kind": {"$nin": ["guideline"]}, "tags": {"$ne": "music"}}) == ["em-loyal"]
    assert search({"channel": "email"}) == ["em-loyal"]


def test_indexing_an_id_again_replaces_it(make_store: MakeStore) -> None:
    store = make_store("brand-a")
    add(store)

    store.add_documents(
        [Document(page_content="new copy", metadata={"external_id": "em-loyal", "kind": "snippet", "tags": []})],
        ids=["em-loyal"],
    )

    assert len(store.similarity_search_with_score("anything", k=10)) == 3
    [loyal] = store.get_by_ids(["em-loyal"])
    assert (loyal.page_content, loyal.metadata["kind"]) == ("new copy", "snippet")


def test_delete_removes_by_id(make_store: MakeStore) -> None:
    store = make_store("brand-a")
    add(store)

    store.delete(["sms-vinyl"])

    assert store.get_by_ids(["sms-vinyl"]) == []
    assert sorted(ids_of(store.similarity_search_with_score("vinyl", k=10))) == ["em-loyal", "gl-voice"]


def test_namespaces_do_not_see_each_other(make_store: MakeStore) -> None:
    add(make_store("brand-a"))

    other = make_store("brand-b")

    assert other.similarity_search_with_score("vinyl", k=10) == []
    assert other.get_by_ids(["sms-vinyl"]) == []


# --- what only one of them has --------------------------------------------------------------------


def test_the_local_store_persists_per_namespace_and_refuses_vectors_of_another_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pinecone_namespace="brand-a")
    add(vector_store(settings, KeywordEmbeddings()))

    reopened = vector_store(settings, KeywordEmbeddings())

    assert isinstance(reopened, LocalVectorStore)
    assert reopened.path == tmp_path / "vectors" / "brand-a.json"
    assert sorted(reopened.store) == ["em-loyal", "gl-voice", "sms-vinyl"]
    assert vector_store(settings, KeywordEmbeddings(), fresh=True).get_by_ids(["em-loyal"]) == []
    other_model = KeywordEmbeddings(size=32)
    other_model.name = "keywords-32"
    with pytest.raises(ServiceUnavailable, match="holds vectors from keywords-64, but the embeddings are keywords-32"):
        vector_store(settings, other_model)


def test_the_local_namespace_must_be_a_safe_file_name(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable, match="NUDGE_PINECONE_NAMESPACE must be"):
        vector_store(Settings(data_dir=tmp_path, pinecone_namespace="../etc"), KeywordEmbeddings())


def test_pinecone_calls_carry_the_key_and_namespace(pinecone: FakePineconeState) -> None:
    store = vector_store(pinecone_settings(pinecone, "brand-a"), KeywordEmbeddings())
    assert isinstance(store, PineconeStore)

    add(store)
    store.similarity_search_with_score("vinyl", k=2, filter={"channel": {"$eq": "sms"}})

    assert store.index.describe_index_stats()["namespaces"]["brand-a"]["vector_count"] == 3
    assert {request.api_key for request in pinecone.requests} == {API_KEY}
    upsert, query = (next(r for r in pinecone.requests if r.path == path) for path in ("/vectors/upsert", "/query"))
    assert upsert.body["namespace"] == query.body["namespace"] == "brand-a"
    assert query.body["filter"] == {"channel": {"$eq": "sms"}}
    assert all(isinstance(value, float) for value in upsert.body["vectors"][0]["values"])


def test_pinecone_index_is_found_by_name_without_a_host(
    pinecone: FakePineconeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINECONE_CONTROLLER_HOST", pinecone.host)  # the SDK's control-plane address

    store = vector_store(pinecone_settings(pinecone, "brand-a", pinecone_host=""), KeywordEmbeddings())
    add(store)

    assert pinecone.requests[0].path == "/indexes/nudge-creative"
    assert sorted(pinecone.namespaces["brand-a"]) == ["em-loyal", "gl-voice", "sms-vinyl"]


def test_pinecone_failures_are_service_unavailable(pinecone: FakePineconeState) -> None:
    wrong_key = vector_store(pinecone_settings(pinecone, "brand-a", pinecone_api_key="nope"), KeywordEmbeddings())

    with pytest.raises(ServiceUnavailable, match="Pinecone refused the API key"), store_errors():
        wrong_key.similarity_search_with_score("vinyl", k=1)
    with pytest.raises(ServiceUnavailable, match="needs NUDGE_PINECONE_API_KEY"):
        vector_store(pinecone_settings(pinecone, "brand-a", pinecone_api_key=""), KeywordEmbeddings())
    assert pinecone.namespaces == {}


def test_a_network_failure_is_service_unavailable_with_the_cause_kept() -> None:
    # An unreachable host makes the SDK retry for ~8 s before urllib3 gives up; the mapping is the same.
    failure = MaxRetryError(None, "/query")  # type: ignore[arg-type]

    with pytest.raises(ServiceUnavailable, match="the vector store failed: MaxRetryError") as error, store_errors():
        raise failure

    assert error.value.__cause__ is failure
