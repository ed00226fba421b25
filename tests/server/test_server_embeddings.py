"""``POST /v1/embeddings`` under the official ``openai`` client: the embedded e5 embedder (issue 26)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest

from tests.scripted import ScriptedBackend, hermes
from tests.server.helpers import server_thread
from workbench.chat_model import ChatModel
from workbench.documents.embedding import get_embedder
from workbench.server.app import create_app
from workbench.shared import SharedModel


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    """The API on a scripted chat model (embeddings need none), as ``serve`` serves it."""
    slot = SharedModel(ScriptedBackend().spec)
    slot._model = ChatModel(ScriptedBackend(), hermes())
    with server_thread(create_app(slot, model_id="scripted")) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)


def test_embeddings_in_both_languages(client: openai.OpenAI) -> None:
    texts = [
        "北京今天的天气怎么样？",
        "What is the weather like in Beijing today?",
        "A recipe for banana bread.",
    ]
    answer = client.embeddings.create(model="e5", input=texts)  # the client asks for base64 and decodes it
    vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    assert vectors.shape == (3, 384) and [item.index for item in answer.data] == [0, 1, 2]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # the same question across languages
    assert answer.model == "e5" and answer.usage.prompt_tokens > 0
    direct = get_embedder("e5").query(texts[0])  # the same numbers as the embedder used directly
    assert np.allclose(vectors[0], direct, atol=1e-6)


def test_floats_passages_and_one_string(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(
        model="multilingual-e5-small",
        input="颐和园在北京。",
        encoding_format="float",
        extra_body={"input_type": "passage"},
    )
    [item] = answer.data
    assert np.allclose(item.embedding, get_embedder("e5").passages(["颐和园在北京。"])[0], atol=1e-6)


def test_bad_requests_name_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="No embedding model 'gpt-x'"):
        client.embeddings.create(model="gpt-x", input="hi")
    with pytest.raises(openai.BadRequestError, match="384 dimensions only"):
        client.embeddings.create(model="e5", input="hi", dimensions=100)
    with pytest.raises(openai.BadRequestError, match="token arrays are not taken"):
        client.embeddings.create(model="e5", input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="An input is empty"):
        client.embeddings.create(model="e5", input=["ok", "  "])
