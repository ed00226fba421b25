"""The documents attached to one conversation: their chunks and vectors, in memory, searched by cosine.

Adding a document is all or nothing: it is parsed, chunked and embedded first, and joins the index
only when every chunk has its vector (a bad file, an error or Stop leaves the index as it was). A
file already attached (same content hash) is not embedded again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workbench.documents.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS, Chunk, chunk_document
from workbench.documents.embedding import Embedder, get_embedder
from workbench.documents.errors import DocumentCancelledError
from workbench.documents.model import Document

EMBED_BATCH = 16
"""Chunks embedded per call (progress is reported, and Stop checked, between calls)."""

IndexProgress = Callable[[str, int, int], None]
"""Called with (what, done, total): ``"pages"`` while parsing is reported by the caller, then
``"chunks"`` while embedding."""


@dataclass(frozen=True)
class AttachedFile:
    """A document attached to a conversation, as a list shows it.

    Attributes:
        name: The file's name.
        kind: ``pdf``, ``docx``, ...
        parts: How many pages, slides or parts it has.
        sha256: Its content hash.
        size: Its size in bytes.
    """

    name: str
    kind: str
    parts: int
    sha256: str
    size: int


@dataclass(frozen=True)
class Hit:
    """A chunk found for a query, with its cosine similarity."""

    chunk: Chunk
    score: float


def embed_chunks(
    chunks: list[Chunk],
    embedder: Embedder,
    progress: IndexProgress | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Embed the chunks' texts in batches; return an array (len(chunks), dim)."""
    vectors = []
    for start in range(0, len(chunks), EMBED_BATCH):
        if cancel is not None and cancel.is_set():
            raise DocumentCancelledError("Indexing the document was stopped; nothing of it was kept.")
        vectors.append(embedder.passages([chunk.text for chunk in chunks[start : start + EMBED_BATCH]]))
        if progress is not None:
            progress("chunks", min(start + EMBED_BATCH, len(chunks)), len(chunks))
    return np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32)


class DocumentIndex:
    """Documents and their embedded chunks; thread-safe."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    ) -> None:
        self._embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.documents: list[Document] = []
        self._chunks: list[Chunk] = []
        self._vectors: np.ndarray | None = None
        self._contents: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The embedder (the default one, loaded on first use)."""
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def chunks(self) -> list[Chunk]:
        """A copy of every chunk, in order."""
        with self._lock:
            return list(self._chunks)

    def sections(self) -> list[tuple[str, str, str]]:
        """(file, location, text) of every non-empty page, slide or part, in order."""
        with self._lock:
            documents = list(self.documents)
        return [
            (document.name, section.location, section.text)
            for document in documents
            for section in document.sections
            if section.text.strip()
        ]

    def listing(self) -> list[AttachedFile]:
        """The attached documents, in the order they were attached."""
        with self._lock:
            documents = list(self.documents)
        return [AttachedFile(d.name, d.kind, len(d.sections), d.sha256, d.size) for d in documents]

    def content(self, name: str) -> bytes | None:
        """The bytes of the attached file ``name``, when they were given to :meth:`add`; else None."""
        with self._lock:
            return self._contents.get(name)

    def has(self, sha256: str) -> bool:
        """Whether a document with this content hash is attached."""
        with self._lock:
            return any(document.sha256 == sha256 for document in self.documents)

    def add(
        self,
        document: Document,
        progress: IndexProgress | None = None,
        cancel: threading.Event | None = None,
        data: bytes | None = None,
    ) -> bool:
        """Chunk and embed ``document`` and add it; return False if the same content was attached already.

        Args:
            document: The parsed file.
            progress: Told ("chunks", done, total) while embedding.
            cancel: Set it to stop; the index is unchanged.
            data: The file's bytes, kept for :meth:`content` (Code mode puts the file in its folder).

        Raises:
            DocumentCancelledError: If ``cancel`` was set; the index is unchanged.
        """
        if self.has(document.sha256):
            return False
        chunks = chunk_document(document, self.embedder.count_tokens, self.chunk_tokens, self.overlap_tokens)
        vectors = embed_chunks(chunks, self.embedder, progress, cancel)
        with self._lock:
            if any(d.sha256 == document.sha256 for d in self.documents):
                return False
            self.documents.append(document)
            if data is not None:
                self._contents[document.name] = data
            self._chunks.extend(chunks)
            self._vectors = vectors if self._vectors is None else np.concatenate([self._vectors, vectors])
        return True

    def remove(self, name: str) -> None:
        """Detach the document called ``name`` and its chunks."""
        with self._lock:
            keep = [i for i, chunk in enumerate(self._chunks) if chunk.document != name]
            self.documents = [d for d in self.documents if d.name != name]
            self._contents.pop(name, None)
            self._chunks = [self._chunks[i] for i in keep]
            self._vectors = None if self._vectors is None else self._vectors[keep]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` chunks most similar to ``query``, best first."""
        with self._lock:
            chunks, vectors = list(self._chunks), self._vectors
        if not chunks or vectors is None:
            return []
        scores = vectors @ self.embedder.query(query)
        best = np.argsort(-scores)[:k]
        return [Hit(chunks[i], float(scores[i])) for i in best]
