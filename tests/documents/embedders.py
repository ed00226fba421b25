"""An embedder double for the knowledge tests: the real one, watched while it embeds a query."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy.engine import Engine

from workbench.documents.embedding import Embedder, get_embedder


class NoConnectionWhileEmbedding:
    """The real embedder ``name``, whose :meth:`query` fails if ``engine`` has a connection checked out.

    A query is embedded by a model (seconds on a busy CPU): holding a pooled database connection, and a
    transaction on it, meanwhile starves the other users of the pool. ``during_query`` runs (if set)
    inside each query, before it is embedded, to change the database meanwhile.
    """

    def __init__(self, engine: Engine, name: str = "e5") -> None:
        self.engine = engine
        self.real: Embedder = get_embedder(name)
        self.name = self.real.name
        self.dim = self.real.dim
        self.queries: list[str] = []
        self.during_query: Callable[[], None] | None = None

    def __call__(self, name: str) -> Embedder:
        """What ``KnowledgeBases`` and ``ConversationDocuments`` take as their ``embedder``."""
        assert name == self.name, name
        return self

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.passages(texts)

    def query(self, text: str) -> np.ndarray:
        held = self.engine.pool.checkedout()  # type: ignore[attr-defined]  # QueuePool's count
        assert held == 0, f"{held} database connection(s) held while the query is embedded"
        self.queries.append(text)
        if self.during_query is not None:
            self.during_query()
        return self.real.query(text)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)
