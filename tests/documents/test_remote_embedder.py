"""A remote embedder (any OpenAI-compatible /v1/embeddings), against a real ``serve`` in a thread."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.documents import files
from tests.scripted import ScriptedBackend, hermes
from tests.server.helpers import server_thread
from workbench.chat_model import ChatModel
from workbench.documents import DocumentError
from workbench.documents.embedding import get_embedder
from workbench.documents.remote_embedder import RemoteEmbedder
from workbench.knowledge import KnowledgeBases
from workbench.server.app import create_app
from workbench.shared import SharedModel


@pytest.fixture(scope="module")
def spec() -> Iterator[str]:
    """``openai:URL#e5`` of a Workbench server (its /v1/embeddings runs the embedded e5)."""
    slot = SharedModel(ScriptedBackend().spec)
    slot._model = ChatModel(ScriptedBackend(), hermes())
    with server_thread(create_app(slot, model_id="scripted")) as url:
        yield f"openai:{url}#e5"


def test_vectors_come_from_the_server(spec: str) -> None:
    remote = RemoteEmbedder(spec)
    assert remote.dim == 384 and remote.name == spec
    vector = remote.query("北京今天的天气怎么样？")
    assert np.allclose(vector, get_embedder("e5").query("北京今天的天气怎么样？"), atol=1e-5)
    assert remote.passages(["a", "b"]).shape == (2, 384)
    assert remote.count_tokens("天气很好") == 4 and remote.count_tokens("abcdef") == 2  # an estimate


def test_a_knowledge_base_on_a_remote_embedder(spec: str, tmp_path: Path) -> None:
    with KnowledgeBases.open(f"sqlite:///{tmp_path / 'kb.sqlite3'}") as bases:
        bases.create("remote", embedder=spec)
        bases.add("remote", [("manual.pdf", files.pdf(["Intro.", "The Zephyr turbine spins at 3000 rpm."]))])
        assert bases.info("remote").embedder == spec
        assert bases.search("remote", "How fast does the turbine spin?", 1)[0].chunk.location == "page 2"


def test_bad_specs_and_servers_say_what_to_do() -> None:
    with pytest.raises(DocumentError, match="openai:http://HOST:PORT/v1#MODEL"):
        RemoteEmbedder("openai:ftp://host/v1#m")
    with pytest.raises(DocumentError, match="WORKBENCH_EMBEDDINGS_API_KEY, not in the URL"):
        RemoteEmbedder("openai:http://me:secret@host/v1#m")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(
        DocumentError, match=rf"The embeddings server http://127.0.0.1:{port}/v1 \(model m\) failed"
    ):
        RemoteEmbedder(f"openai:http://127.0.0.1:{port}/v1#m")
