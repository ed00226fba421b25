"""Documents in a conversation: parse, chunk, embed, find the passages a question needs, cite them.

``attach(index, name, data)`` is what a page or the CLI calls: it parses the file and adds it to a
conversation's :class:`DocumentIndex`, all or nothing, telling ``progress`` the pages and the chunks.
"""

from __future__ import annotations

import threading
from typing import Protocol

from workbench.documents.context import Retriever, Source, render_question, select_sources, sources_of
from workbench.documents.errors import DocumentCancelledError, DocumentError
from workbench.documents.index import AttachedFile, DocumentIndex, Hit, IndexProgress
from workbench.documents.model import Document, Section
from workbench.documents.parsing import KINDS, parse_document, read_document

__all__ = [
    "KINDS",
    "AttachedDocuments",
    "AttachedFile",
    "Document",
    "DocumentCancelledError",
    "DocumentError",
    "DocumentIndex",
    "Hit",
    "Section",
    "Source",
    "attach",
    "parse_document",
    "read_document",
    "render_question",
    "select_sources",
    "sources_of",
]


class AttachedDocuments(Retriever, Protocol):
    """A conversation's attached files (in memory, or saved with the conversation in the store).

    :class:`DocumentIndex` keeps them in memory; :class:`workbench.knowledge.ConversationDocuments` in
    the conversations' database.
    """

    def listing(self) -> list[AttachedFile]:
        """The attached documents, in the order they were attached."""
        ...

    def content(self, name: str) -> bytes | None:
        """The file's bytes (None when they were not kept)."""
        ...

    def has(self, sha256: str) -> bool:
        """Whether a file with this content is attached."""
        ...

    def add(
        self,
        document: Document,
        progress: IndexProgress | None = None,
        cancel: threading.Event | None = None,
        data: bytes | None = None,
    ) -> bool:
        """Chunk, embed and keep ``document``, all or nothing; False if its content was attached already."""
        ...

    def remove(self, name: str) -> None:
        """Detach the document called ``name``."""
        ...


def attach(
    index: AttachedDocuments,
    name: str,
    data: bytes,
    progress: IndexProgress | None = None,
    cancel: threading.Event | None = None,
) -> Document:
    """Parse the file ``name`` (its bytes ``data``) and add it to ``index``.

    Args:
        index: The conversation's documents.
        name: The file's name (its extension says what it is).
        data: Its content.
        progress: Told ("pages", done, total) while parsing, then ("chunks", done, total).
        cancel: Set it to stop; nothing of the file is kept.

    Raises:
        DocumentError: If the file cannot be used; the message names it. The index is unchanged.
    """
    document = parse_document(
        name,
        data,
        progress=None if progress is None else lambda done, total: progress("pages", done, total),
        cancel=cancel,
    )
    index.add(document, progress, cancel, data=data)
    return document
