"""The vector store the creative library is indexed in, picked by ``NUDGE_VECTOR_STORE``: a LangChain ``VectorStore``.

- ``local`` (embedded default): ``LocalVectorStore``, LangChain's ``InMemoryVectorStore`` persisted as one
  JSON file per namespace under ``<data_dir>/vectors/``. Chosen over FAISS because a brand's library is
  hundreds to a few thousand items and the drafting agent makes a few searches per campaign: an exact,
  filtered search measured ~30 ms over 1,000 items and ~110 ms over 5,000 (384 dimensions, on a busy
  2-core machine), next to 10–20 ms to embed the query. FAISS (under 1 ms at 10,000) would add a native
  index, a second file format and the sunset ``langchain-community`` for time nobody waits on; past
  ~10,000 items, or for searches per request, use Pinecone or revisit. The file records which embedding
  model made the vectors, and refuses to mix two.
- ``pinecone``: ``PineconeStore`` (``langchain_pinecone.PineconeVectorStore`` on the pinecone 7.3.0 SDK) on
  the index at ``NUDGE_PINECONE_HOST``, or looked up by ``NUDGE_PINECONE_INDEX``.

Both are always scoped to ``NUDGE_PINECONE_NAMESPACE`` (one namespace per brand or tenant, OWASP LLM08),
both take Pinecone's metadata filter language (``{"channel": {"$eq": "email"}, "kind": {"$in": [...]}}``;
the local store translates it), both score by cosine similarity, and both support ``get_by_ids``. Vector ids
are the creative items' external ids, so indexing an item again replaces its vector.

Provider failures surface as ``ServiceUnavailable`` (``store_errors``); vendor exceptions do not leave here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore
from langchain_pinecone import PineconeVectorStore
from pinecone import Pinecone
from pinecone.exceptions import PineconeException, UnauthorizedException
from urllib3.exceptions import HTTPError as Urllib3Error

from agents.embeddings import embedding_name
from core.errors import ServiceUnavailable
from core.settings import Settings, VectorStoreKind

FILE_FORMAT = 1
FETCH_CHUNK = 100  # ids per fetch call: Pinecone takes them in the query string
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Filter = Mapping[str, Any]  # Pinecone's metadata filter language


def vector_store(settings: Settings, embedding: Embeddings, *, fresh: bool = False) -> VectorStore:
    """The configured store in the configured namespace. ``fresh``: start the local store empty (a full re-index)."""
    if settings.vector_store is VectorStoreKind.PINECONE:
        return pinecone_store(settings, embedding)
    return LocalVectorStore.open(local_store_path(settings), embedding, fresh=fresh)


def local_store_path(settings: Settings) -> Path:
    namespace = settings.pinecone_namespace
    if not _NAMESPACE.fullmatch(namespace):
        raise ServiceUnavailable(f"NUDGE_PINECONE_NAMESPACE must be letters, digits, '_', '.', '-': {namespace!r}")
    return settings.data_dir / "vectors" / f"{namespace}.json"


# --- local ----------------------------------------------------------------------------------------


class LocalVectorStore(InMemoryVectorStore):
    """``InMemoryVectorStore`` that saves itself after every change and takes Pinecone-style dict filters."""

    def __init__(self, embedding: Embeddings, path: Path | None = None) -> None:
        super().__init__(embedding)
        self.path = path

    @classmethod
    def open(cls, path: Path, embedding: Embeddings, *, fresh: bool = False) -> LocalVectorStore:
        """The store saved at ``path`` (empty if there is none, or if ``fresh``)."""
        store = cls(embedding, path)
        if path.exists() and not fresh:
            store.store = _read_records(path, embedding_name(embedding))
        return store

    def add_documents(self, documents: list[Document], ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        added = super().add_documents(documents, ids=ids, **kwargs)
        self.save()
        return added

    def delete(self, ids: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().delete(ids, **kwargs)
        self.save()

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Callable[[Document], bool] | Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        if isinstance(filter, Mapping):
            filter = _matcher(filter)
        return super().similarity_search_with_score_by_vector(embedding, k, filter=filter, **kwargs)

    def save(self) -> None:
        """Write the store atomically: a crash mid-write leaves the previous file, never half of one."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FILE_FORMAT, "embedding": embedding_name(self.embedding), "records": self.store}
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(partial, self.path)


def _read_records(path: Path, embedding: str) -> dict[str, dict[str, Any]]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("format") != FILE_FORMAT:
        raise ServiceUnavailable(f"{path}: not a vector file this version reads; re-index with --reindex")
    if payload["embedding"] != embedding:
        raise ServiceUnavailable(
            f"{path} holds vectors from {payload['embedding']}, but the embeddings are {embedding}: "
            "re-index (nudge creative import --reindex)"
        )
    records: dict[str, dict[str, Any]] = payload["records"]
    return records


def _matcher(where: Filter) -> Callable[[Document], bool]:
    return lambda document: matches_filter(document.metadata, where)


def matches_filter(metadata: Mapping[str, Any], where: Filter) -> bool:
    """Pinecone's semantics: fields ANDed; ``$eq``/``$ne``/``$in``/``$nin`` (a bare value is ``$eq``); a
    list-valued field (tags) matches ``$eq``/``$in`` when any of its elements does."""
    for name, condition in where.items():
        operators = condition if isinstance(condition, Mapping) else {"$eq": condition}
        value = metadata.get(name)
        present = value if isinstance(value, list) else ([] if value is None else [value])
        if not all(_holds(operator, present, expected) for operator, expected in operators.items()):
            return False
    return True


def _holds(operator: str, present: list[Any], expected: Any) -> bool:
    if operator == "$eq":
        return expected in present
    if operator == "$ne":
        return expected not in present
    if operator == "$in":
        return any(value in expected for value in present)
    if operator == "$nin":
        return not any(value in expected for value in present)
    raise ValueError(f"filter operator {operator} is not supported")


# --- Pinecone -------------------------------------------------------------------------------------


class PineconeStore(PineconeVectorStore):
    """``PineconeVectorStore`` plus ``get_by_ids`` (a fetch in the store's namespace), which LangChain's lacks."""

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        found: list[Document] = []
        for start in range(0, len(ids), FETCH_CHUNK):
            response = self.index.fetch(ids=list(ids[start : start + FETCH_CHUNK]), namespace=self._namespace)
            for id_, vector in response.vectors.items():
                metadata = dict(vector.metadata or {})
                text = str(metadata.pop(self._text_key, ""))
                found.append(Document(id=id_, page_content=text, metadata=metadata))
        return found


def pinecone_store(settings: Settings, embedding: Embeddings) -> PineconeStore:
    """The index at ``NUDGE_PINECONE_HOST`` (or looked up by ``NUDGE_PINECONE_INDEX``) in the settings' namespace."""
    api_key = settings.pinecone_api_key.get_secret_value()
    if not api_key:
        raise ServiceUnavailable("NUDGE_VECTOR_STORE=pinecone needs NUDGE_PINECONE_API_KEY")
    with store_errors():
        client = Pinecone(api_key=api_key)
        if settings.pinecone_host:
            index = client.Index(host=settings.pinecone_host)
        else:
            index = client.Index(name=settings.pinecone_index)  # one describe_index call, then cached by the SDK
    return PineconeStore(index=index, embedding=embedding, namespace=settings.pinecone_namespace)


@contextmanager
def store_errors() -> Iterator[None]:
    """Vendor and network failures as ``ServiceUnavailable``; the vendor error is kept as the cause."""
    try:
        yield
    except UnauthorizedException as error:
        raise ServiceUnavailable("Pinecone refused the API key (NUDGE_PINECONE_API_KEY)") from error
    except (PineconeException, Urllib3Error) as error:
        raise ServiceUnavailable(f"the vector store failed: {type(error).__name__}") from error
