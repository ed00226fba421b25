"""An embedder on another server: any OpenAI-compatible ``/v1/embeddings`` (``openai:URL#MODEL``).

vLLM, llama.cpp's server, Ollama, OpenAI itself, or another Workbench's ``serve``. The key comes from
``WORKBENCH_EMBEDDINGS_API_KEY`` (else ``OPENAI_API_KEY``) and is never saved: a spec holding a password
in its URL is refused, since knowledge bases store the spec. The server's tokenizer is unknown here, so
chunks are measured by an estimate: a token per Chinese (Japanese, Korean, ...) character, and one per
three other characters.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from workbench.documents.errors import DocumentError

PREFIX = "openai:"
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff]"
)


def is_remote(name: str) -> bool:
    """Whether an embedder name is a remote spec (``openai:URL#MODEL``)."""
    return name.startswith(PREFIX)


class RemoteEmbedder:
    """Embeddings from an OpenAI-compatible server; vectors are L2-normalised here."""

    def __init__(self, spec: str) -> None:
        """Connect to ``spec`` (``openai:http://host:8000/v1#model``) and learn its dimension.

        Raises:
            DocumentError: If the spec is malformed, holds a password, or the server does not answer.
        """
        url, _, model = spec[len(PREFIX) :].partition("#")
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or not model:
            raise DocumentError(
                f"An embedder on a server is written openai:http://HOST:PORT/v1#MODEL, not {spec!r}."
            )
        if parts.password:
            raise DocumentError(
                "Put the embeddings server's key in WORKBENCH_EMBEDDINGS_API_KEY, not in the URL "
                "(knowledge bases save the embedder's name)."
            )
        import openai

        key = os.environ.get("WORKBENCH_EMBEDDINGS_API_KEY") or os.environ.get("OPENAI_API_KEY") or "unused"
        self.name = spec
        self.url, self.model = url, model
        self._client: Any = openai.OpenAI(base_url=url, api_key=key, max_retries=1, timeout=120)
        self._lock = threading.Lock()
        self.dim = int(self._embed(["dimension"]).shape[1])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        try:
            answer = self._client.embeddings.create(
                model=self.model, input=list(texts), encoding_format="float"
            )
        except openai.OpenAIError as exc:
            raise DocumentError(
                f"The embeddings server {self.url} (model {self.model}) failed: {exc}. Check the URL, the model "
                "and WORKBENCH_EMBEDDINGS_API_KEY."
            ) from exc
        vectors = np.array(
            [item.embedding for item in sorted(answer.data, key=lambda i: i.index)], dtype=np.float32
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (the server gets them as they are)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(texts)

    def query(self, text: str) -> np.ndarray:
        """Embed one query."""
        return self._embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """An estimate (the server's tokenizer is not known here)."""
        unspaced = len(_UNSPACED.findall(text))
        return unspaced + (len(text) - unspaced + 2) // 3
